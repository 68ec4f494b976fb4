/*-------------------------------------------------------------------------
 *
 * test_protocol.c
 *	  Unit tests of the wire protocol codec (common/cm_protocol.c).
 *
 * Three parts:
 *	- the table in protocol.cases: raw receive buffers, each with the result
 *	  the decoder must give (ok, incomplete, invalid);
 *	- round trips: every message type is encoded, decoded and compared, and
 *	  encoders refuse invalid fields and short buffers;
 *	- mutations: valid frames are truncated and bytes flipped many times;
 *	  the decoder must never read out of bounds (run under ASan/UBSan by
 *	  the test suite) and whatever it accepts must re-encode to the same
 *	  bytes.
 *
 * Prints one "ok N - description" or "not ok N - description" line per
 * check; exits 1 if any check failed.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/test_protocol.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_protocol.h"
#include "sample_msgs.h"
#include "unit_tap.h"

/* A check described by fmt with one string argument. */
static void
check(int cond, const char *fmt, const char *arg)
{
	char		desc[512];

	snprintf(desc, sizeof(desc), fmt, arg);
	unit_check(cond, desc, NULL);
}

static int
parse_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t		n = 0;
	int			half = -1;

	for (; *s; s++)
	{
		int			v;

		if (*s == ' ' || *s == '\t')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			return 0;
		if (half < 0)
			half = v;
		else
		{
			if (n >= cap)
				return 0;
			out[n++] = (uint8_t) (half * 16 + v);
			half = -1;
		}
	}
	*len = n;
	return half < 0;
}

static const char *
status_name(CmProtoStatus st)
{
	return st == CM_PROTO_OK ? "ok" : st == CM_PROTO_INCOMPLETE ? "incomplete" : "invalid";
}

/* Run one table line; returns the decoder's status. */
static CmProtoStatus
run_case(const char *dirname, const uint8_t *buf, size_t len, const char **reason)
{
	CmProtoDir	dir;
	size_t		flen = 0;
	CmProtoStatus st;
	CmProtoMsg	msg;
	uint16_t	version;
	uint32_t	code;

	*reason = "";
	if (strcmp(dirname, "greet") == 0)
		return cm_proto_parse_greeting(buf, len, &flen, &version, reason);
	if (strcmp(dirname, "pgstart") == 0)
		return cm_proto_peek_pg_startup(buf, len, &flen, &code, reason);
	if (strcmp(dirname, "wd") == 0)
		dir = CM_DIR_TO_WATCHDOG;
	else if (strcmp(dirname, "hb") == 0)
		dir = CM_DIR_TO_CONMGR_HB;
	else if (strcmp(dirname, "app") == 0)
		dir = CM_DIR_TO_CONMGR_APP;
	else
		dir = CM_DIR_TO_CLIENT;

	st = cm_proto_frame_peek(dir, buf, len, &flen, reason);
	if (st != CM_PROTO_OK)
		return st;
	st = cm_proto_decode(dir, buf, flen, &msg, reason);
	if (st == CM_PROTO_OK && flen != len)
	{
		*reason = "bytes after the frame";
		return CM_PROTO_INVALID;
	}
	return st;
}

static void
run_table(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		line[2048];
	int			lineno = 0;

	if (f == NULL)
	{
		check(0, "open case file %s", path);
		return;
	}
	while (fgets(line, sizeof(line), f))
	{
		char		dirname[16],
					expected[16],
					desc[300];
		char	   *hash,
				   *p;
		uint8_t		buf[4096];
		size_t		len;
		int			consumed;
		const char *reason;
		CmProtoStatus st;
		char		label[600];

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		hash = strchr(line, '#');
		snprintf(desc, sizeof(desc), "%s", hash ? hash + 1 : "");
		if (hash)
			*hash = '\0';
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '\0')
			continue;
		if (sscanf(p, "%15s %15s %n", dirname, expected, &consumed) != 2)
		{
			snprintf(label, sizeof(label), "%s:%d: malformed case line", path, lineno);
			check(0, "%s", label);
			continue;
		}
		if (!parse_hex(p + consumed, buf, sizeof(buf), &len))
		{
			snprintf(label, sizeof(label), "%s:%d: bad hex bytes", path, lineno);
			check(0, "%s", label);
			continue;
		}
		st = run_case(dirname, buf, len, &reason);
		snprintf(label, sizeof(label), "line %d (%s %s):%s -> %s%s%s", lineno,
				 dirname, expected, desc, status_name(st),
				 *reason ? ": " : "", reason);
		check(strcmp(status_name(st), expected) == 0, "%s", label);
	}
	fclose(f);
}

/* Encode, decode and compare one message; returns the frame length. */
static size_t
round_trip(CmProtoDir dir, const CmProtoMsg *in, const char *what,
		   uint8_t *frame, size_t cap)
{
	size_t		len = cm_proto_encode(dir, in, frame, cap);
	CmProtoMsg	out;
	const char *reason = "";
	uint8_t		again[CM_PROTO_MAX_MSG];
	size_t		len2;
	int			ok;

	if (len == 0)
	{
		check(0, "encode %s", what);
		return 0;
	}
	ok = cm_proto_decode(dir, frame, len, &out, &reason) == CM_PROTO_OK;
	len2 = ok ? cm_proto_encode(dir, &out, again, sizeof(again)) : 0;
	check(ok && len2 == len && memcmp(frame, again, len) == 0 &&
		  out.type == in->type, "round trip of %s", what);
	return len;
}

/* Deterministic generator for the mutation tests. */
static uint32_t rng_state = 12345;

static uint32_t
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

/*
 * Mutate a valid frame many times.  Nothing may crash; an accepted frame
 * must re-encode to exactly the bytes decoded.
 */
static void
mutate(CmProtoDir dir, const uint8_t *frame, size_t len, const char *what)
{
	int			i,
				bad = 0;

	for (i = 0; i < 20000; i++)
	{
		uint8_t		buf[CM_PROTO_MAX_MSG + 16];
		size_t		n = len;
		size_t		flen = 0;
		CmProtoMsg	msg;
		const char *reason;
		int			flips = 1 + (int) (rng() % 3),
					k;

		memcpy(buf, frame, len);
		if (rng() % 4 == 0)
			n = rng() % (len + 1);	/* truncate */
		for (k = 0; k < flips && n > 0; k++)
			buf[rng() % n] ^= (uint8_t) (1u << (rng() % 8));
		if (cm_proto_frame_peek(dir, buf, n, &flen, &reason) != CM_PROTO_OK)
			continue;
		if (cm_proto_decode(dir, buf, flen, &msg, &reason) == CM_PROTO_OK)
		{
			uint8_t		again[CM_PROTO_MAX_MSG];
			size_t		len2 = cm_proto_encode(dir, &msg, again, sizeof(again));

			if (len2 != flen || memcmp(again, buf, flen) != 0)
				bad++;
		}
	}
	check(bad == 0, "20000 mutations of %s: accepted frames are canonical", what);
}

/*
 * Round trip of one message, then mutations of its frame, left in frame
 * (CM_PROTO_MAX_MSG bytes); returns the frame length.
 */
static size_t
round_trip_mutate(CmProtoDir dir, const CmProtoMsg *m, const char *what, uint8_t *frame)
{
	size_t		len = round_trip(dir, m, what, frame, CM_PROTO_MAX_MSG);

	mutate(dir, frame, len, what);
	return len;
}

static void
run_round_trips(void)
{
	CmProtoMsg	m;
	uint8_t		frame[CM_PROTO_MAX_MSG];
	uint8_t		small[8];
	size_t		len;
	char		big[400];
	const char *reason;
	uint16_t	version = 0;
	size_t		flen = 0;

	sample_hello(&m, CM_PROTO_AUTH_HMAC_SHA256, 32, 0xab, "client-host.example");
	len = round_trip_mutate(CM_DIR_TO_WATCHDOG, &m, "hello", frame);
	check(cm_proto_encode(CM_DIR_TO_CONMGR_HB, &m, frame, sizeof(frame)) == 0,
		  "%s", "hello cannot be encoded in the watchdog's direction");
	check(cm_proto_encode(CM_DIR_TO_WATCHDOG, &m, small, sizeof(small)) == 0,
		  "%s", "encoding into a too small buffer fails");

	sample_welcome(&m, 1000, 4000, CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY);
	round_trip_mutate(CM_DIR_TO_CONMGR_HB, &m, "welcome", frame);

	sample_heartbeat(&m, CM_MSG_HEARTBEAT_REPLY, 0xfffffffe, 0x8000000000000001ULL,
					 CM_PROTO_ATTR_STANDBY);
	round_trip_mutate(CM_DIR_TO_CONMGR_HB, &m, "heartbeat reply", frame);

	sample_session(&m, CM_MSG_REGISTER, 31337, "2000::1", 40000);
	round_trip_mutate(CM_DIR_TO_WATCHDOG, &m, "register", frame);
	m.u.session.client.family = 5;
	check(cm_proto_encode(CM_DIR_TO_WATCHDOG, &m, frame, sizeof(frame)) == 0,
		  "%s", "an address of family 5 is not encoded");

	len = cm_proto_encode_notice(CM_DIR_TO_CONMGR_HB, CM_MSG_SHUTDOWN,
								 CM_REASON_SHUTDOWN, "server shutting down",
								 frame, sizeof(frame));
	check(len > 0, "%s", "encode shutdown notice");
	mutate(CM_DIR_TO_CONMGR_HB, frame, len, "shutdown");

	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	sample_route(&m, CM_TSA_PREFER_STANDBY, 4242, big);
	check(m.u.route.application_name.len == CM_PROTO_MAX_STRING,
		  "%s", "a long string is cut to the protocol maximum");
	round_trip_mutate(CM_DIR_TO_CONMGR_APP, &m, "route", frame);

	sample_instance(&m, 2, CM_PROTO_ATTR_STANDBY, "2001:db8::10", 54321);
	round_trip_mutate(CM_DIR_TO_CLIENT, &m, "instance", frame);

	sample_app_register(&m, 777, "127.0.0.1", 50000);
	round_trip_mutate(CM_DIR_TO_CONMGR_APP, &m, "application register", frame);

	len = cm_proto_encode_notice(CM_DIR_TO_CLIENT, CM_MSG_FAILURE,
								 CM_REASON_TIMEOUT, "instance 0 lost",
								 frame, sizeof(frame));
	check(len > 0, "%s", "encode failure notice");
	mutate(CM_DIR_TO_CLIENT, frame, len, "failure");

	/* greeting */
	len = cm_proto_encode_greeting(frame, sizeof(frame), "this is conmgr");
	check(len > 0 && cm_proto_parse_greeting(frame, len, &flen, &version, &reason) == CM_PROTO_OK &&
		  flen == len && version == CM_PROTO_VERSION_MAX,
		  "%s", "greeting encodes and parses");
	{
		int			i,
					accepted_bad = 0;

		/* mutated greetings: no crash, and only well-formed tags accepted */
		for (i = 0; i < 20000; i++)
		{
			uint8_t		buf[CM_PROTO_MAX_MSG];
			size_t		n = rng() % (len + 1);

			memcpy(buf, frame, len);
			if (n > 0)
				buf[rng() % n] ^= (uint8_t) (1u << (rng() % 8));
			if (cm_proto_parse_greeting(buf, n, &flen, &version, &reason) == CM_PROTO_OK &&
				(flen > n || version < CM_PROTO_VERSION_MIN || version > CM_PROTO_VERSION_MAX))
				accepted_bad++;
		}
		check(accepted_bad == 0, "%s", "20000 mutations of the greeting");
	}
	len = cm_proto_encode_pg_error(frame, sizeof(frame), "08P01", "not a server");
	check(len > 0 && cm_proto_parse_greeting(frame, len, &flen, &version, &reason) == CM_PROTO_INVALID,
		  "%s", "a plain error response is not a greeting");
	len = cm_proto_encode_gss_request(frame, sizeof(frame));
	{
		uint32_t	code = 0;

		check(len == 8 && cm_proto_peek_pg_startup(frame, len, &flen, &code, &reason) == CM_PROTO_OK &&
			  code == CM_PROTO_PG_GSS_CODE, "%s", "GSSENCRequest round trip");
	}
}

static void
run_tsa(void)
{
	uint8_t		tsa = 0;
	const uint8_t primary = 0,
				standby = CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY,
				ro_primary = CM_PROTO_ATTR_READ_ONLY;

	check(cm_proto_tsa_parse("prefer-standby", &tsa) && tsa == CM_TSA_PREFER_STANDBY,
		  "%s", "parse prefer-standby");
	check(!cm_proto_tsa_parse("preferPrimary", &tsa), "%s", "unknown tsa refused");
	check(cm_proto_tsa_matches(CM_TSA_READ_WRITE, primary) &&
		  !cm_proto_tsa_matches(CM_TSA_READ_WRITE, standby) &&
		  !cm_proto_tsa_matches(CM_TSA_READ_WRITE, ro_primary),
		  "%s", "read-write matches only a writable primary");
	check(cm_proto_tsa_matches(CM_TSA_READ_ONLY, standby) &&
		  cm_proto_tsa_matches(CM_TSA_READ_ONLY, ro_primary) &&
		  !cm_proto_tsa_matches(CM_TSA_READ_ONLY, primary),
		  "%s", "read-only matches standbys and read-only primaries");
	check(cm_proto_tsa_matches(CM_TSA_PRIMARY, ro_primary) &&
		  !cm_proto_tsa_matches(CM_TSA_PRIMARY, standby),
		  "%s", "primary matches any instance not in recovery");
	check(cm_proto_tsa_matches(CM_TSA_STANDBY, standby) &&
		  !cm_proto_tsa_matches(CM_TSA_STANDBY, primary),
		  "%s", "standby matches only instances in recovery");
}

/* cm_proto_escape: what may reach a log line or a terminal. */
static void
run_escape(void)
{
	char		buf[CM_PROTO_ESCAPED_MAX];
	char		small[8];
	char		longest[CM_PROTO_MAX_STRING + 1];

	check(strcmp(cm_proto_escape("billing app-1", buf, sizeof(buf)), "billing app-1") == 0,
		  "%s", "escape: printable ASCII unchanged");
	check(strcmp(cm_proto_escape("a\n2026 ERROR: x", buf, sizeof(buf)), "a\\x0a2026 ERROR: x") == 0,
		  "%s", "escape: a newline cannot start a log line");
	check(strcmp(cm_proto_escape("\x1b[31m\x7f\xc3\xa9", buf, sizeof(buf)), "\\x1b[31m\\x7f\\xc3\\xa9") == 0,
		  "%s", "escape: ESC, DEL and non-ASCII bytes as \\xNN");
	check(strcmp(cm_proto_escape("C:\\x41", buf, sizeof(buf)), "C:\\\\x41") == 0,
		  "%s", "escape: a backslash is doubled, so escapes are unambiguous");
	check(strcmp(cm_proto_escape("ab\ncd", small, sizeof(small)), "ab\\x0ac") == 0,
		  "%s", "escape: cut at a whole escape when the buffer is short");
	check(strcmp(cm_proto_escape("abc\n", small, 6), "abc") == 0,
		  "%s", "escape: an escape that does not fit is left out whole");
	memset(longest, 0x01, CM_PROTO_MAX_STRING);
	longest[CM_PROTO_MAX_STRING] = '\0';
	check(strlen(cm_proto_escape(longest, buf, sizeof(buf))) == 4 * CM_PROTO_MAX_STRING,
		  "%s", "escape: CM_PROTO_ESCAPED_MAX holds the longest string escaped");
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: %s CASEFILE\n", argv[0]);
		return 2;
	}
	run_table(argv[1]);
	run_round_trips();
	run_tsa();
	run_escape();
	printf("1..%d\n", unit_ntests);
	return unit_status();
}
