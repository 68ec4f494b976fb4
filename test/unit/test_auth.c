/*-------------------------------------------------------------------------
 *
 * test_auth.c
 *	  Unit tests of common/cm_auth.c: the transcript, proofs, session keys
 *	  and sealed frames against vectors computed independently from the
 *	  definition in docs/protocol.md (Python's hashlib and hmac modules),
 *	  their sensitivity to every input, and the rules for secret files.
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
#include "unit_tap.h"

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

/* The transcript of two frames: 0..20 and 100..140. */
static CmAuthTranscript
sample_transcript(const CmAuthSecret *sec, int flip)
{
	CmAuthTranscript t;
	uint8_t		f1[21];
	uint8_t		f2[41];
	int			i;

	(void) sec;
	for (i = 0; i < (int) sizeof(f1); i++)
		f1[i] = (uint8_t) i;
	for (i = 0; i < (int) sizeof(f2); i++)
		f2[i] = (uint8_t) (100 + i);
	if (flip >= 0)
		f2[flip % sizeof(f2)] ^= 1;
	cm_auth_transcript_init(&t);
	cm_auth_transcript_add(&t, f1, sizeof(f1));
	cm_auth_transcript_add(&t, f2, sizeof(f2));
	return t;
}

static void
test_proofs(void)
{
	CmAuthSecret sec = secret_of("correct horse battery staple");
	CmAuthSecret other = secret_of("correct horse battery stapleX");
	CmAuthTranscript t = sample_transcript(&sec, -1);
	CmAuthTranscript t2;
	CmAuthKeys	keys;
	CmAuthKeys	keys2;
	uint8_t		nc[CM_AUTH_NONCE_LEN];
	uint8_t		ns[CM_AUTH_NONCE_LEN];
	uint8_t		p[CM_AUTH_PROOF_LEN];
	uint8_t		q[CM_AUTH_PROOF_LEN];
	char		h[2 * 64 + 1];
	uint8_t		frame[64];
	uint8_t		copy[64];
	size_t		len;
	size_t		inner;
	uint64_t	seq;
	int			undetected;
	static const uint8_t hb[] = {'B', 0, 0, 0, 16, 0, 0, 0, 5,
	0, 0, 0, 0, 0x07, 0x5b, 0xcd, 0x15};

	hex(t.hash, sizeof(t.hash), h);
	unit_check(strcmp(h, "9f58ba3e196d70b8b52af71f32dbbb80dd55cc151142c1ff651eff0da499aa3c") == 0,
		  "the transcript matches the independent vector", h);
	unit_check(cm_auth_conmgr_proof(&sec, &t, p), "conmgr proof computed", NULL);
	hex(p, sizeof(p), h);
	unit_check(strcmp(h, "cf5834a850f53c6915931de8c21902643745ad2a3efba4fd2b4a189893ded9b6") == 0,
		  "conmgr proof matches the independent vector", h);
	unit_check(cm_auth_watchdog_proof(&sec, &t, q), "watchdog proof computed", NULL);
	hex(q, sizeof(q), h);
	unit_check(strcmp(h, "8c31df43bcb29b1df20c14c2d6471e1f1380af969bf5cb182fa341a9c3a67e06") == 0,
		  "watchdog proof matches the independent vector", h);
	unit_check(cm_auth_session_keys(&sec, &t, &keys), "session keys derived", NULL);
	hex(keys.to_watchdog, sizeof(keys.to_watchdog), h);
	unit_check(strcmp(h, "d57b3aa5f6be13d5e683c1043849fc6247c198c4a11d9ed081e264c99ad90289") == 0,
		  "the key towards the watchdog matches the independent vector", h);
	hex(keys.to_conmgr, sizeof(keys.to_conmgr), h);
	unit_check(strcmp(h, "da6520a07946b8ea85f43aee229d0dca7dee2143ce90aec165494abf488576e7") == 0,
		  "the key towards conmgr matches the independent vector", h);

	/* every input changes the proof */
	cm_auth_conmgr_proof(&other, &t, q);
	unit_check(!cm_auth_proof_equal(q, sizeof(q), p), "another secret gives another proof", NULL);
	for (int bit = 0; bit < 41; bit += 13)
	{
		t2 = sample_transcript(&sec, bit);
		cm_auth_conmgr_proof(&sec, &t2, q);
		unit_check(!cm_auth_proof_equal(q, sizeof(q), p), "one bit of a handshake frame changes the proof", NULL);
	}
	/* the two roles never answer for each other (no reflection) */
	cm_auth_watchdog_proof(&sec, &t, q);
	unit_check(!cm_auth_proof_equal(q, sizeof(q), p), "a watchdog proof is never a conmgr proof", NULL);
	cm_auth_session_keys(&other, &t, &keys2);
	unit_check(memcmp(keys.to_watchdog, keys2.to_watchdog, CM_AUTH_KEY_LEN) != 0,
		  "another secret gives other session keys", NULL);
	unit_check(memcmp(keys.to_watchdog, keys.to_conmgr, CM_AUTH_KEY_LEN) != 0,
		  "each direction has its own key", NULL);

	/* comparison */
	cm_auth_conmgr_proof(&sec, &t, q);
	unit_check(cm_auth_proof_equal(q, sizeof(q), p), "the same inputs give the same proof", NULL);
	unit_check(!cm_auth_proof_equal(q, sizeof(q) - 1, p), "a short proof is never equal", NULL);
	unit_check(!cm_auth_proof_equal(q, 0, p), "an empty proof is never equal", NULL);

	/* sealed frames */
	memcpy(frame, hb, sizeof(hb));
	len = cm_auth_seal(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, 7, frame, sizeof(hb), sizeof(frame));
	unit_check(len == sizeof(hb) + CM_AUTH_SEAL_LEN, "a sealed frame is 24 bytes longer", NULL);
	hex(frame, len, h);
	unit_check(strcmp(h, "42000000280000000500000000075bcd150000000000000007b84cb09930ee4542f9ca4a51e6075c6b") == 0,
		  "the sealed frame matches the independent vector", h);
	/* the tag context is shared by all keys: switching keys leaves no trace */
	memcpy(copy, hb, sizeof(hb));
	unit_check(cm_auth_seal(keys.to_conmgr, CM_AUTH_CHANNEL_STREAM, 7, copy, sizeof(hb), sizeof(copy)) == len &&
		  memcmp(copy, frame, len) != 0,
		  "the other direction's key gives another tag", NULL);
	memcpy(copy, hb, sizeof(hb));
	unit_check(cm_auth_seal(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, 7, copy, sizeof(hb), sizeof(copy)) == len &&
		  memcmp(copy, frame, len) == 0,
		  "sealing again after another key gives the independent vector again", NULL);
	memcpy(copy, frame, len);
	unit_check(cm_auth_open(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, copy, len, &seq, &inner) &&
		  seq == 7 && inner == sizeof(hb) && memcmp(copy, hb, sizeof(hb)) == 0,
		  "a sealed frame opens to the original, with its sequence number", NULL);
	memcpy(copy, frame, len);
	unit_check(!cm_auth_open(keys.to_conmgr, CM_AUTH_CHANNEL_STREAM, copy, len, &seq, &inner),
		  "the other direction's key does not open it (no reflection)", NULL);
	memcpy(copy, frame, len);
	unit_check(!cm_auth_open(keys.to_watchdog, CM_AUTH_CHANNEL_DATAGRAM, copy, len, &seq, &inner),
		  "the datagram channel does not open a stream frame", NULL);
	undetected = 0;
	for (size_t i = 0; i < len; i++)
	{
		memcpy(copy, frame, len);
		copy[i] ^= 0x10;
		if (cm_auth_open(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, copy, len, &seq, &inner))
			undetected++;
	}
	unit_check(undetected == 0, "a change to any byte of a sealed frame is detected", NULL);
	unit_check(!cm_auth_open(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, frame, CM_AUTH_SEAL_LEN + 4, &seq, &inner),
		  "a frame too short for a trailer is refused", NULL);
	unit_check(cm_auth_seal(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, 1, frame, sizeof(hb), sizeof(hb) + 10) == 0,
		  "sealing into a buffer too small fails", NULL);

	/* datagrams (protocol 1.2): the session's id, and a heartbeat made and opened */
	hex(keys.datagram_id, sizeof(keys.datagram_id), h);
	unit_check(strcmp(h, "4346ee49d3ee691f") == 0,
		  "the datagram id matches the independent vector", h);
	unit_check(memcmp(keys.datagram_id, keys2.datagram_id, CM_AUTH_DGRAM_ID_LEN) != 0,
		  "another secret gives another datagram id", NULL);
	{
		uint8_t		dg[CM_AUTH_DGRAM_MAX];
		uint8_t		dg2[CM_AUTH_DGRAM_MAX];
		size_t		dlen;

		dlen = cm_auth_datagram_make(keys.to_watchdog, keys.datagram_id, 3,
									 hb, sizeof(hb), dg, sizeof(dg));
		unit_check(dlen == CM_AUTH_DGRAM_ID_LEN + sizeof(hb) + CM_AUTH_SEAL_LEN,
			  "a datagram is the id and the sealed frame", NULL);
		hex(dg, dlen, h);
		unit_check(strcmp(h, "4346ee49d3ee691f42000000280000000500000000075bcd150000000000000003a7e6124758cea862cb687eb10cf71256") == 0,
			  "the datagram matches the independent vector", h);
		unit_check(cm_auth_datagram_id(dg, dlen) == dg, "its id is found without a key", NULL);
		unit_check(cm_auth_datagram_id(dg, dlen - 1) == NULL &&
			  cm_auth_datagram_id(dg, CM_AUTH_DGRAM_ID_LEN + 5) == NULL,
			  "a datagram whose size does not match its frame has no id", NULL);
		memcpy(dg2, dg, dlen);
		unit_check(cm_auth_datagram_open(keys.to_watchdog, dg2, dlen, &seq, &inner) &&
			  seq == 3 && inner == sizeof(hb) &&
			  memcmp(dg2 + CM_AUTH_DGRAM_ID_LEN, hb, sizeof(hb)) == 0,
			  "a datagram opens to its heartbeat, with its sequence number", NULL);
		memcpy(dg2, dg, dlen);
		unit_check(!cm_auth_datagram_open(keys.to_conmgr, dg2, dlen, &seq, &inner),
			  "the other direction's key does not open a datagram", NULL);
		memcpy(dg2, dg, dlen);
		unit_check(!cm_auth_open(keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, dg2 + CM_AUTH_DGRAM_ID_LEN,
							dlen - CM_AUTH_DGRAM_ID_LEN, &seq, &inner),
			  "a datagram's frame does not open as a stream frame", NULL);
		unit_check(cm_auth_datagram_make(keys.to_watchdog, keys.datagram_id, 3, hb, sizeof(hb),
									dg, dlen - 1) == 0,
			  "a datagram that does not fit is not made", NULL);
	}

	/* random nonces */
	unit_check(cm_auth_random(nc, sizeof(nc)) && cm_auth_random(ns, sizeof(ns)),
		  "random nonces generated", NULL);
	unit_check(memcmp(nc, ns, sizeof(nc)) != 0, "two random nonces differ", NULL);
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
		unit_check(got && sec.len == want_len && memcmp(sec.data, want, want_len) == 0, what, detail);
	else
		unit_check(!got && strstr(err, want) != NULL && strstr(err, path) != NULL, what, detail);
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
	printf("# %d checks, %d failed\n", unit_ntests, unit_nfailed);
	return unit_status();
}
