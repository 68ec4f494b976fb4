/*-------------------------------------------------------------------------
 *
 * fuzz_greeting.c
 *	  libFuzzer target: the client library's parser of the answer to its
 *	  GSSENCRequest (cm_proto_parse_greeting).
 *
 * The input is what the client has received so far (pqcm_probe.c keeps at
 * most CM_PROTO_MAX_MSG bytes).  Checked:
 *
 *	- the parser reads nothing outside the bytes it is given (an exact-size
 *	  copy) and a refusal comes with a reason;
 *	- it never stays incomplete once CM_PROTO_MAX_MSG bytes are present;
 *	- an accepted greeting is an 'E' message within the input, speaks a
 *	  version within this side's range, every shorter prefix of it is
 *	  incomplete, and the bytes after it do not change the answer;
 *	- with the input's first bytes as the message text, conmgr's own
 *	  greeting (cm_proto_encode_greeting) is recognised, as the highest
 *	  common version, and an ordinary PostgreSQL ErrorResponse with the
 *	  same text (cm_proto_encode_pg_error) is not.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_greeting.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_protocol.h"
#include "fuzz_common.h"

/* Parse the input as a whole and check what the parser promises. */
static void
check_parse(const uint8_t *data, size_t size)
{
	uint8_t    *copy = fuzz_exact_copy(data, size);
	size_t		flen = 0;
	uint16_t	version = 0;
	const char *reason = NULL;
	CmProtoStatus st;

	st = cm_proto_parse_greeting(copy, size, &flen, &version, &reason);
	if (st == CM_PROTO_INCOMPLETE)
	{
		FUZZ_CHECK(size < CM_PROTO_MAX_MSG,
				   "greeting still incomplete after %zu bytes", size);
		free(copy);
		return;
	}
	if (st != CM_PROTO_OK)
	{
		fuzz_check_refusal(st, reason, "parse_greeting", "a greeting");
		free(copy);
		return;
	}

	FUZZ_CHECK(copy[0] == 'E', "accepted a greeting of type %u", copy[0]);
	FUZZ_CHECK(flen > CM_PROTO_HEADER_LEN && flen <= size &&
			   flen <= CM_PROTO_MAX_MSG,
			   "greeting of %zu bytes in an input of %zu", flen, size);
	FUZZ_CHECK(version >= CM_PROTO_VERSION_MIN && version <= CM_PROTO_VERSION_MAX,
			   "greeting gave version 0x%04x, outside this side's range",
			   (unsigned) version);
	fuzz_check_prefixes(FUZZ_PARSE_GREETING, 0, copy, flen, "a greeting");
	free(copy);

	/* the same greeting alone */
	{
		uint8_t    *alone = fuzz_exact_copy(data, flen);
		size_t		fl = 0;
		uint16_t	v = 0;
		const char *r = NULL;

		st = cm_proto_parse_greeting(alone, flen, &fl, &v, &r);
		FUZZ_CHECK(st == CM_PROTO_OK && fl == flen && v == version,
				   "the greeting without the bytes after it gave %d", st);
		free(alone);
	}
}

/* conmgr's greeting with this text is recognised; a plain error is not. */
static void
check_encoders(const uint8_t *data, size_t size)
{
	char		text[1024];
	size_t		tlen = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	uint8_t    *buf = fuzz_malloc(CM_PROTO_MAX_MSG);
	uint8_t    *frame;
	size_t		n;
	size_t		flen = 0;
	uint16_t	version = 0;
	const char *reason = NULL;
	CmProtoStatus st;

	memcpy(text, data, tlen);
	text[tlen] = '\0';			/* the text ends at the first NUL, if any */

	n = cm_proto_encode_greeting(buf, CM_PROTO_MAX_MSG, text);
	FUZZ_CHECK(n > 0, "could not encode a greeting of %zu bytes of text",
			   strlen(text));
	frame = fuzz_exact_copy(buf, n);
	st = cm_proto_parse_greeting(frame, n, &flen, &version, &reason);
	FUZZ_CHECK(st == CM_PROTO_OK && flen == n && version == CM_PROTO_VERSION_MAX,
			   "conmgr's own greeting was not recognised: %d, %s", st,
			   st == CM_PROTO_OK ? "" : reason);
	free(frame);

	n = cm_proto_encode_pg_error(buf, CM_PROTO_MAX_MSG, "08P01", text);
	FUZZ_CHECK(n > 0, "could not encode an error of %zu bytes of text",
			   strlen(text));
	frame = fuzz_exact_copy(buf, n);
	reason = NULL;
	st = cm_proto_parse_greeting(frame, n, &flen, &version, &reason);
	FUZZ_CHECK(st == CM_PROTO_INVALID && reason != NULL,
			   "a plain ErrorResponse was taken for conmgr's greeting: %d", st);
	free(frame);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size < CM_PROTO_MAX_MSG ? size : CM_PROTO_MAX_MSG);
	check_encoders(data, size);
	return 0;
}
