/*-------------------------------------------------------------------------
 *
 * fuzz_pg_startup.c
 *	  libFuzzer target: conmgr's classification of the first packets an
 *	  application sends (cm_proto_peek_pg_startup).
 *
 * conmgr's app_startup_packet() (conmgr/cm_app.c) hands this parser a
 * window of at most CM_PROTO_PG_MAX_STARTUP bytes of its input; the rest of
 * that function only acts on the request code (greeting, 'N' to an
 * SSLRequest, a PostgreSQL error, closing) through libevent.  The input is
 * consumed the same way: a first packet and, after an SSLRequest, a
 * second one.  Checked for each packet:
 *
 *	- the parser reads nothing outside the window (an exact-size copy) and
 *	  a refusal comes with a reason;
 *	- it never stays incomplete once the window holds
 *	  CM_PROTO_PG_MAX_STARTUP bytes;
 *	- an accepted packet has the length and request code written in its
 *	  first 8 bytes, lies within the window and the postmaster's bounds,
 *	  is exactly 8 bytes when it is an SSLRequest or a GSSENCRequest, and
 *	  every shorter prefix of it is incomplete;
 *	- a refusal does not depend on how much of the input is present.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_pg_startup.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_protocol.h"
#include "fuzz_common.h"

static uint32_t
be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/*
 * Check one packet at the start of buf (left bytes remain in the input).
 * Returns the packet's length and code when it is whole, 0 otherwise.
 */
static size_t
check_packet(const uint8_t *buf, size_t left, uint32_t *code)
{
	size_t		want = left < CM_PROTO_PG_MAX_STARTUP ? left : CM_PROTO_PG_MAX_STARTUP;
	uint8_t    *win = fuzz_exact_copy(buf, want);
	size_t		plen = 0;
	const char *reason = NULL;
	CmProtoStatus st;

	st = cm_proto_peek_pg_startup(win, want, &plen, code, &reason);
	if (st == CM_PROTO_INCOMPLETE)
	{
		FUZZ_CHECK(want < CM_PROTO_PG_MAX_STARTUP,
				   "startup packet still incomplete after %zu bytes", want);
		free(win);
		return 0;
	}
	if (st != CM_PROTO_OK)
	{
		uint8_t    *all = fuzz_exact_copy(buf, left);

		fuzz_check_refusal(st, reason, "peek_pg_startup", "a startup packet");
		st = fuzz_peek(FUZZ_PEEK_PG_STARTUP, 0, all, left);
		FUZZ_CHECK(st == CM_PROTO_INVALID,
				   "a packet refused in a window of %zu bytes gave %d with %zu",
				   want, st, left);
		free(all);
		free(win);
		return 0;
	}

	FUZZ_CHECK(plen >= 8 && plen <= want && plen <= CM_PROTO_PG_MAX_STARTUP,
			   "startup packet of %zu bytes in a window of %zu", plen, want);
	FUZZ_CHECK(plen == be32(win), "packet length %zu, but %u is written",
			   plen, (unsigned) be32(win));
	FUZZ_CHECK(*code == be32(win + 4), "request code %u, but %u is written",
			   (unsigned) *code, (unsigned) be32(win + 4));
	FUZZ_CHECK(plen == 8 || (*code != CM_PROTO_PG_SSL_CODE &&
							 *code != CM_PROTO_PG_GSS_CODE),
			   "encryption request of %zu bytes accepted", plen);
	fuzz_check_prefixes(FUZZ_PEEK_PG_STARTUP, 0, win, plen, "a packet");
	free(win);
	return plen;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t	code = 0;
	size_t		plen;

	plen = check_packet(data, size, &code);

	/* conmgr answers 'N' to an SSLRequest and reads the next packet */
	if (plen > 0 && code == CM_PROTO_PG_SSL_CODE)
		(void) check_packet(data + plen, size - plen, &code);
	return 0;
}
