/*-------------------------------------------------------------------------
 *
 * test_auth.c
 *	  Unit tests of common/cm_auth.c: the HMAC-SHA-256 proofs against
 *	  vectors computed independently from the definition in cm_auth.h
 *	  (Python's hmac module), their sensitivity to every input, and the
 *	  rules for secret files.
 *
 *	test_auth DIRECTORY     (an empty directory for the secret files)
 *
 * Prints one "ok N - ..." / "not ok N - ..." line per check (t/001_unit.pl).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/test_auth.c
 *
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_auth.h"

static int	ntests = 0;
static int	nfailed = 0;

static void
check(int cond, const char *what, const char *detail)
{
	ntests++;
	if (!cond)
		nfailed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", ntests, what);
	if (!cond && detail)
		printf("# %s\n", detail);
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static CmAuthSecret
secret_of(const char *s)
{
	CmAuthSecret sec;

	memset(&sec, 0, sizeof(sec));
	sec.len = strlen(s);
	memcpy(sec.data, s, sec.len);
	return sec;
}

/* Write a file with content and mode; returns its path (static buffer). */
static const char *
make_file(const char *dir, const char *name, const char *content, size_t len, mode_t mode)
{
	static char path[4096];
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, len) != (ssize_t) len || close(fd) != 0 ||
		chmod(path, mode) != 0)
	{
		perror(path);
		exit(2);
	}
	return path;
}

static void
test_proofs(void)
{
	CmAuthSecret sec = secret_of("correct horse battery staple");
	CmAuthSecret other = secret_of("correct horse battery stapleX");
	uint8_t		nc[CM_AUTH_NONCE_LEN];
	uint8_t		ns[CM_AUTH_NONCE_LEN];
	uint8_t		p[CM_AUTH_PROOF_LEN];
	uint8_t		q[CM_AUTH_PROOF_LEN];
	char		h[2 * CM_AUTH_PROOF_LEN + 1];
	int			i;

	for (i = 0; i < CM_AUTH_NONCE_LEN; i++)
	{
		nc[i] = (uint8_t) i;
		ns[i] = (uint8_t) (32 + i);
	}

	check(cm_auth_conmgr_proof(&sec, nc, ns, 1000, 3000, p), "conmgr proof computed", NULL);
	hex(p, sizeof(p), h);
	check(strcmp(h, "43d6f39b96bc56f47218d7a8a1987ef9d2a8e3807fe4c0551072a21ea35a0a26") == 0,
		  "conmgr proof matches the independent vector", h);
	check(cm_auth_watchdog_proof(&sec, ns, nc, 5000, q), "watchdog proof computed", NULL);
	hex(q, sizeof(q), h);
	check(strcmp(h, "976d59fe635e20a463ebe1a1359793552937e8b73fb8882eb4d5779e78b6ae6c") == 0,
		  "watchdog proof matches the independent vector", h);

	/* every input changes the proof */
	cm_auth_conmgr_proof(&sec, nc, ns, 1000, 3000, p);
	cm_auth_conmgr_proof(&other, nc, ns, 1000, 3000, q);
	check(!cm_auth_proof_equal(q, sizeof(q), p), "another secret gives another proof", NULL);
	cm_auth_conmgr_proof(&sec, ns, nc, 1000, 3000, q);
	check(!cm_auth_proof_equal(q, sizeof(q), p), "swapped nonces give another proof", NULL);
	cm_auth_conmgr_proof(&sec, nc, ns, 1001, 3000, q);
	check(!cm_auth_proof_equal(q, sizeof(q), p), "another heartbeat_interval gives another proof", NULL);
	cm_auth_conmgr_proof(&sec, nc, ns, 1000, 3001, q);
	check(!cm_auth_proof_equal(q, sizeof(q), p), "another heartbeat_timeout gives another proof", NULL);
	nc[31] ^= 1;
	cm_auth_conmgr_proof(&sec, nc, ns, 1000, 3000, q);
	nc[31] ^= 1;
	check(!cm_auth_proof_equal(q, sizeof(q), p), "one bit of conmgr's nonce changes the proof", NULL);
	ns[0] ^= 0x80;
	cm_auth_conmgr_proof(&sec, nc, ns, 1000, 3000, q);
	ns[0] ^= 0x80;
	check(!cm_auth_proof_equal(q, sizeof(q), p), "one bit of the challenge changes the proof", NULL);

	/* the two roles never answer for each other (no reflection) */
	cm_auth_watchdog_proof(&sec, nc, ns, 1000, q);
	check(!cm_auth_proof_equal(q, sizeof(q), p), "a watchdog proof is never a conmgr proof", NULL);

	/* comparison */
	cm_auth_conmgr_proof(&sec, nc, ns, 1000, 3000, q);
	check(cm_auth_proof_equal(q, sizeof(q), p), "the same inputs give the same proof", NULL);
	check(!cm_auth_proof_equal(q, sizeof(q) - 1, p), "a short proof is never equal", NULL);
	check(!cm_auth_proof_equal(q, 0, p), "an empty proof is never equal", NULL);

	/* random nonces */
	check(cm_auth_random(nc, sizeof(nc)) && cm_auth_random(ns, sizeof(ns)),
		  "random nonces generated", NULL);
	check(memcmp(nc, ns, sizeof(nc)) != 0, "two random nonces differ", NULL);
}

static void
expect_secret(const char *path, int ok, const char *want, size_t want_len, const char *what)
{
	CmAuthSecret sec;
	char		err[600] = "";
	char		detail[800];
	int			got = cm_auth_read_secret(path, &sec, err, sizeof(err));

	snprintf(detail, sizeof(detail), "error: %s", err);
	if (ok)
		check(got && sec.len == want_len && memcmp(sec.data, want, want_len) == 0, what, detail);
	else
		check(!got && strstr(err, want) != NULL && strstr(err, path) != NULL, what, detail);
}

static void
test_files(const char *dir)
{
	char		big[CM_AUTH_SECRET_MAX + 10];
	char		lines[CM_AUTH_SECRET_MAX + 200];
	const char *p;

	p = make_file(dir, "good", "0123456789abcdef\n", 17, 0600);
	expect_secret(p, 1, "0123456789abcdef", 16, "a 16-byte secret with a newline is read without it");
	p = make_file(dir, "crlf", "0123456789abcdefXYZ\r\n\r\n", 23, 0400);
	expect_secret(p, 1, "0123456789abcdefXYZ", 19, "trailing CR and LF are removed, read-only mode is fine");
	p = make_file(dir, "inner", "0123456789\nabcdef\n", 18, 0600);
	expect_secret(p, 1, "0123456789\nabcdef", 17, "an inner newline is part of the secret");
	p = make_file(dir, "short", "0123456789abcde\n", 16, 0600);
	expect_secret(p, 0, "shorter than 16 bytes", 0, "a 15-byte secret is refused");
	p = make_file(dir, "empty", "", 0, 0600);
	expect_secret(p, 0, "shorter than 16 bytes", 0, "an empty file is refused");
	memset(big, 'x', sizeof(big));
	p = make_file(dir, "max", big, CM_AUTH_SECRET_MAX, 0600);
	expect_secret(p, 1, big, CM_AUTH_SECRET_MAX, "a secret of the largest size is read");
	p = make_file(dir, "long", big, CM_AUTH_SECRET_MAX + 1, 0600);
	expect_secret(p, 0, "longer than 1024 bytes", 0, "a longer secret is refused");

	/*
	 * Line ends inside a longer file are not trailing ones, even where the
	 * largest secret ends (found by test/fuzz/fuzz_secret).
	 */
	memset(lines, 'x', sizeof(lines));
	memcpy(lines + CM_AUTH_SECRET_MAX, "\r\nmore\n", 7);
	p = make_file(dir, "long-crlf", lines, CM_AUTH_SECRET_MAX + 7, 0600);
	expect_secret(p, 0, "longer than 1024 bytes", 0,
				  "a longer secret with CR LF after its first 1024 bytes is refused");
	memset(lines + 740, '\n', 300);
	p = make_file(dir, "long-blank-lines", lines, sizeof(lines), 0600);
	expect_secret(p, 0, "longer than 1024 bytes", 0,
				  "a longer secret with blank lines around byte 1024 is refused");
	memset(lines + CM_AUTH_SECRET_MAX, '\n', sizeof(lines) - CM_AUTH_SECRET_MAX);
	memset(lines, 'x', CM_AUTH_SECRET_MAX);
	lines[CM_AUTH_SECRET_MAX + 5] = '\r';
	p = make_file(dir, "max-newlines", lines, sizeof(lines), 0600);
	expect_secret(p, 1, lines, CM_AUTH_SECRET_MAX,
				  "a secret of the largest size is read whatever number of CR and LF ends it");
	p = make_file(dir, "world", "0123456789abcdef", 16, 0644);
	expect_secret(p, 0, "group or world access (mode 0644)", 0, "a world-readable file is refused");
	p = make_file(dir, "group", "0123456789abcdef", 16, 0640);
	expect_secret(p, 0, "group or world access (mode 0640)", 0, "a group-readable file of one's own is refused");
	{
		char		missing[4096];

		snprintf(missing, sizeof(missing), "%s/missing", dir);
		expect_secret(missing, 0, "could not open secret file", 0, "a missing file is refused");
	}
	expect_secret(dir, 0, "is not a regular file", 0, "a directory is refused");
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
		return 2;
	}
	test_proofs();
	test_files(argv[1]);
	printf("# %d checks, %d failed\n", ntests, nfailed);
	return nfailed ? 1 : 0;
}
