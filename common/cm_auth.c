/*-------------------------------------------------------------------------
 *
 * cm_auth.c
 *	  Heartbeat authentication: secret files and HMAC-SHA-256 proofs.
 *	  See cm_auth.h.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_auth.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cm_auth.h"

bool
cm_auth_read_secret(const char *path, CmAuthSecret *secret, char *err, size_t errcap)
{
	struct stat st;
	uint8_t		buf[CM_AUTH_SECRET_MAX + 2];
	uint8_t		more[64];
	size_t		len = 0;
	bool		too_long = false;
	int			fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
	{
		snprintf(err, errcap, "could not open secret file \"%s\": %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0)
	{
		snprintf(err, errcap, "could not stat secret file \"%s\": %s", path, strerror(errno));
		close(fd);
		return false;
	}
	if (!S_ISREG(st.st_mode))
	{
		snprintf(err, errcap, "secret file \"%s\" is not a regular file", path);
		close(fd);
		return false;
	}
	if (st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		snprintf(err, errcap,
				 "secret file \"%s\" has group or world access (mode %04o): allow its owner only (chmod 600)",
				 path, (unsigned) (st.st_mode & 07777));
		close(fd);
		return false;
	}
	if (st.st_uid == 0 && (st.st_mode & S_IRWXO) != 0)
	{
		snprintf(err, errcap,
				 "secret file \"%s\" owned by root has world access (mode %04o): allow root and its group only (chmod 640)",
				 path, (unsigned) (st.st_mode & 07777));
		close(fd);
		return false;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		snprintf(err, errcap,
				 "secret file \"%s\" must be owned by the user running this process or by root",
				 path);
		close(fd);
		return false;
	}
	/*
	 * Read the whole file: once buf is full, only the trailing CR and LF
	 * may follow, or the secret is too long (buf alone would hold its first
	 * bytes, and a CR or LF there would pass for a trailing one).
	 */
	for (;;)
	{
		bool		in_buf = len < sizeof(buf);
		ssize_t		n = in_buf ? read(fd, buf + len, sizeof(buf) - len) :
			read(fd, more, sizeof(more));
		ssize_t		i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			snprintf(err, errcap, "could not read secret file \"%s\": %s", path, strerror(errno));
			close(fd);
			return false;
		}
		if (n == 0)
			break;
		if (in_buf)
		{
			len += (size_t) n;
			continue;
		}
		for (i = 0; i < n && (more[i] == '\n' || more[i] == '\r'); i++)
			;
		if (i < n)
		{
			too_long = true;
			break;
		}
	}
	close(fd);
	OPENSSL_cleanse(more, sizeof(more));
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (too_long || len > CM_AUTH_SECRET_MAX)
	{
		snprintf(err, errcap, "secret file \"%s\" is longer than %d bytes", path,
				 CM_AUTH_SECRET_MAX);
		return false;
	}
	if (len < CM_AUTH_SECRET_MIN)
	{
		snprintf(err, errcap, "secret in file \"%s\" is shorter than %d bytes", path,
				 CM_AUTH_SECRET_MIN);
		return false;
	}
	memcpy(secret->data, buf, len);
	secret->len = len;
	OPENSSL_cleanse(buf, sizeof(buf));
	return true;
}

bool
cm_auth_random(uint8_t *buf, size_t len)
{
	return RAND_bytes(buf, (int) len) == 1;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

/* HMAC-SHA-256 over label || a || b || the integers; false on failure. */
static bool
proof(const CmAuthSecret *secret, const char *label, const uint8_t *a,
	  const uint8_t *b, const uint32_t *ints, int nints, uint8_t *out)
{
	uint8_t		msg[32 + 2 * CM_AUTH_NONCE_LEN + 2 * 4];
	size_t		len = strlen(label);
	unsigned int outlen = CM_AUTH_PROOF_LEN;
	int			i;

	memcpy(msg, label, len);
	memcpy(msg + len, a, CM_AUTH_NONCE_LEN);
	len += CM_AUTH_NONCE_LEN;
	memcpy(msg + len, b, CM_AUTH_NONCE_LEN);
	len += CM_AUTH_NONCE_LEN;
	for (i = 0; i < nints; i++, len += 4)
		put_u32(msg + len, ints[i]);
	return HMAC(EVP_sha256(), secret->data, (int) secret->len, msg, len, out, &outlen) != NULL &&
		outlen == CM_AUTH_PROOF_LEN;
}

bool
cm_auth_conmgr_proof(const CmAuthSecret *secret, const uint8_t *nc, const uint8_t *ns,
					 uint32_t heartbeat_interval_ms, uint32_t heartbeat_timeout_ms,
					 uint8_t *out)
{
	uint32_t	ints[2] = {heartbeat_interval_ms, heartbeat_timeout_ms};

	return proof(secret, "CMWD conmgr", nc, ns, ints, 2, out);
}

bool
cm_auth_watchdog_proof(const CmAuthSecret *secret, const uint8_t *ns, const uint8_t *nc,
					   uint32_t server_timeout_ms, uint8_t *out)
{
	uint32_t	ints[1] = {server_timeout_ms};

	return proof(secret, "CMWD watchdog", ns, nc, ints, 1, out);
}

bool
cm_auth_proof_equal(const uint8_t *a, size_t alen, const uint8_t *b)
{
	return alen == CM_AUTH_PROOF_LEN && CRYPTO_memcmp(a, b, CM_AUTH_PROOF_LEN) == 0;
}
