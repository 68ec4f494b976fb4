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

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cm_auth.h"
#include "cm_endian.h"

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

/* HMAC-SHA-256 of label || data under key; false on failure. */
static bool
hmac_label(const uint8_t *key, size_t keylen, const char *label,
		   const uint8_t *data, size_t len, uint8_t *out)
{
	uint8_t		msg[64 + CM_AUTH_KEY_LEN];
	size_t		llen = strlen(label);
	unsigned int outlen = CM_AUTH_KEY_LEN;

	if (llen > 64 || len > CM_AUTH_KEY_LEN)
		return false;
	memcpy(msg, label, llen);
	if (len > 0)
		memcpy(msg + llen, data, len);
	return HMAC(EVP_sha256(), key, (int) keylen, msg, llen + len, out, &outlen) != NULL &&
		outlen == CM_AUTH_KEY_LEN;
}

void
cm_auth_transcript_init(CmAuthTranscript *t)
{
	memset(t->hash, 0, sizeof(t->hash));
}

bool
cm_auth_transcript_add(CmAuthTranscript *t, const uint8_t *frame, size_t len)
{
	static const char label[] = "CMWD2 transcript";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int outlen = sizeof(t->hash);
	bool		ok;

	if (ctx == NULL)
		return false;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, label, sizeof(label) - 1) == 1 &&
		EVP_DigestUpdate(ctx, t->hash, sizeof(t->hash)) == 1 &&
		EVP_DigestUpdate(ctx, frame, len) == 1 &&
		EVP_DigestFinal_ex(ctx, t->hash, &outlen) == 1 && outlen == sizeof(t->hash);
	EVP_MD_CTX_free(ctx);
	return ok;
}

bool
cm_auth_conmgr_proof(const CmAuthSecret *secret, const CmAuthTranscript *t,
					 uint8_t *proof)
{
	return hmac_label(secret->data, secret->len, "CMWD2 conmgr proof",
					  t->hash, sizeof(t->hash), proof);
}

bool
cm_auth_watchdog_proof(const CmAuthSecret *secret, const CmAuthTranscript *t,
					   uint8_t *proof)
{
	return hmac_label(secret->data, secret->len, "CMWD2 watchdog proof",
					  t->hash, sizeof(t->hash), proof);
}

bool
cm_auth_session_keys(const CmAuthSecret *secret, const CmAuthTranscript *t,
					 CmAuthKeys *keys)
{
	uint8_t		k[CM_AUTH_KEY_LEN];
	uint8_t		id[CM_AUTH_KEY_LEN];
	bool		ok;


	ok = hmac_label(secret->data, secret->len, "CMWD2 session key",
					t->hash, sizeof(t->hash), k) &&
		hmac_label(k, sizeof(k), "CMWD2 conmgr to watchdog", NULL, 0,
				   keys->to_watchdog) &&
		hmac_label(k, sizeof(k), "CMWD2 watchdog to conmgr", NULL, 0,
				   keys->to_conmgr) &&
		hmac_label(k, sizeof(k), "CMWD2 datagram id", NULL, 0, id);
	if (ok)
		memcpy(keys->datagram_id, id, CM_AUTH_DGRAM_ID_LEN);
	OPENSSL_cleanse(k, sizeof(k));
	return ok;
}

/*
 * The HMAC context that computes the tags of sealed frames, one per thread
 * and reused for every key: rekeying it costs two SHA-256 blocks, where the
 * one-shot HMAC() would also look the algorithm up by name and allocate and
 * free a context for every frame (three times the cost, twice per
 * heartbeat).  NULL when it could not be made; the next call tries again.
 */
static _Thread_local EVP_MAC_CTX *seal_ctx;

static EVP_MAC_CTX *
seal_context(void)
{
	if (seal_ctx == NULL)
	{
		EVP_MAC	   *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		OSSL_PARAM	params[2];

		if (mac == NULL)
			return NULL;
		seal_ctx = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);		/* the context keeps its own reference */
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
													 (char *) "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (seal_ctx != NULL && EVP_MAC_CTX_set_params(seal_ctx, params) != 1)
		{
			EVP_MAC_CTX_free(seal_ctx);
			seal_ctx = NULL;
		}
	}
	return seal_ctx;
}

/* The tag of a sealed frame: HMAC(key, channel || frame up to the tag). */
static bool
seal_tag(const uint8_t *key, uint8_t channel, const uint8_t *frame,
		 size_t len, uint8_t *tag)
{
	EVP_MAC_CTX *ctx = seal_context();
	uint8_t		full[CM_AUTH_KEY_LEN];
	size_t		outlen = 0;

	if (ctx == NULL || len > CM_AUTH_SEALED_MAX ||
		EVP_MAC_init(ctx, key, CM_AUTH_KEY_LEN, NULL) != 1 ||
		EVP_MAC_update(ctx, &channel, 1) != 1 ||
		EVP_MAC_update(ctx, frame, len) != 1 ||
		EVP_MAC_final(ctx, full, &outlen, sizeof(full)) != 1 ||
		outlen != sizeof(full))
		return false;
	memcpy(tag, full, CM_AUTH_TAG_LEN);
	OPENSSL_cleanse(full, sizeof(full));
	return true;
}

size_t
cm_auth_seal(const uint8_t *key, uint8_t channel, uint64_t seq,
			 uint8_t *frame, size_t len, size_t cap)
{
	uint32_t	mlen;

	if (len < 5 || len + CM_AUTH_SEAL_LEN > cap)
		return 0;
	mlen = (uint32_t) (len - 1 + CM_AUTH_SEAL_LEN);
	cm_put_u32(frame + 1, mlen);
	cm_put_u64(frame + len, seq);
	if (!seal_tag(key, channel, frame, len + 8, frame + len + 8))
		return 0;
	return len + CM_AUTH_SEAL_LEN;
}

bool
cm_auth_open(const uint8_t *key, uint8_t channel, uint8_t *frame, size_t len,
			 uint64_t *seq, size_t *inner_len)
{
	uint8_t		tag[CM_AUTH_TAG_LEN];
	uint32_t	mlen;

	if (len < 5 + CM_AUTH_SEAL_LEN)
		return false;
	if (!seal_tag(key, channel, frame, len - CM_AUTH_TAG_LEN, tag) ||
		CRYPTO_memcmp(tag, frame + len - CM_AUTH_TAG_LEN, CM_AUTH_TAG_LEN) != 0)
		return false;
	*seq = cm_get_u64(frame + len - CM_AUTH_SEAL_LEN);
	*inner_len = len - CM_AUTH_SEAL_LEN;
	mlen = (uint32_t) (*inner_len - 1);
	cm_put_u32(frame + 1, mlen);
	return true;
}

size_t
cm_auth_datagram_make(const uint8_t *key, const uint8_t *id, uint64_t seq,
					  const uint8_t *frame, size_t len, uint8_t *out, size_t cap)
{
	size_t		n;

	if (cap > CM_AUTH_DGRAM_MAX)
		cap = CM_AUTH_DGRAM_MAX;
	if (cap < CM_AUTH_DGRAM_ID_LEN || len > cap - CM_AUTH_DGRAM_ID_LEN)
		return 0;
	memcpy(out, id, CM_AUTH_DGRAM_ID_LEN);
	memcpy(out + CM_AUTH_DGRAM_ID_LEN, frame, len);
	n = cm_auth_seal(key, CM_AUTH_CHANNEL_DATAGRAM, seq,
					 out + CM_AUTH_DGRAM_ID_LEN, len, cap - CM_AUTH_DGRAM_ID_LEN);
	return n == 0 ? 0 : CM_AUTH_DGRAM_ID_LEN + n;
}

const uint8_t *
cm_auth_datagram_id(const uint8_t *dgram, size_t len)
{
	const uint8_t *f = dgram + CM_AUTH_DGRAM_ID_LEN;
	uint32_t	mlen;

	if (len < CM_AUTH_DGRAM_ID_LEN + 5 + CM_AUTH_SEAL_LEN || len > CM_AUTH_DGRAM_MAX)
		return NULL;
	/* the frame's length field counts all of it but the type byte */
	mlen = cm_get_u32(f + 1);
	if (mlen != len - CM_AUTH_DGRAM_ID_LEN - 1)
		return NULL;
	return dgram;
}

bool
cm_auth_datagram_open(const uint8_t *key, uint8_t *dgram, size_t len,
					  uint64_t *seq, size_t *inner_len)
{
	if (cm_auth_datagram_id(dgram, len) == NULL)
		return false;
	return cm_auth_open(key, CM_AUTH_CHANNEL_DATAGRAM, dgram + CM_AUTH_DGRAM_ID_LEN,
						len - CM_AUTH_DGRAM_ID_LEN, seq, inner_len);
}

bool
cm_auth_proof_equal(const uint8_t *a, size_t alen, const uint8_t *b)
{
	return alen == CM_AUTH_PROOF_LEN && CRYPTO_memcmp(a, b, CM_AUTH_PROOF_LEN) == 0;
}
