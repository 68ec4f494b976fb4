/*-------------------------------------------------------------------------
 *
 * fuzz_frames.c
 *	  libFuzzer target: frames of one direction of the wire protocol
 *	  (cm_proto_frame_peek, cm_proto_decode, cm_proto_encode).
 *
 * Built once per direction with -DFUZZ_DIR=CM_DIR_...: the input is a
 * receive buffer as a reader of that direction sees it (the watchdog's
 * wd_peer.c, conmgr's cm_instance.c and cm_app.c, the client library's
 * pqcm_probe.c), and is consumed frame by frame the way they do it, over a
 * window of at most CM_PROTO_MAX_MSG bytes.  Checked for each frame:
 *
 *	- the window never stays incomplete once it holds CM_PROTO_MAX_MSG
 *	  bytes (a reader would otherwise wait forever);
 *	- a frame found by frame_peek lies within the window and within the
 *	  protocol's bounds, and every shorter prefix of it is incomplete;
 *	- decode reads nothing outside the frame (it gets an exact-size copy)
 *	  and refuses the frame cut by one byte or extended by one;
 *	- a refused frame comes with a reason;
 *	- an accepted frame re-encodes to exactly the same bytes (the codec's
 *	  promise that a valid frame has one encoding), and encoding into any
 *	  shorter buffer fails without writing past it.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_frames.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_protocol.h"
#include "fuzz_common.h"

#ifndef FUZZ_DIR
#error "define FUZZ_DIR as one of the CmProtoDir values"
#endif

/* Check one whole frame of flen bytes at frame. */
static void
check_frame(CmProtoDir dir, const uint8_t *frame, size_t flen)
{
	uint8_t    *copy = fuzz_exact_copy(frame, flen);
	uint8_t    *longer;
	uint8_t    *out;
	size_t		olen;
	size_t		cap;
	CmProtoMsg	msg;
	const char *reason = NULL;
	CmProtoStatus st;

	/* every prefix of a frame is incomplete */
	fuzz_check_prefixes(FUZZ_FRAME_PEEK, dir, copy, flen, "a frame");

	/* the frame cut by one byte, or with one byte more, is refused */
	reason = NULL;
	st = cm_proto_decode(dir, copy, flen - 1, &msg, &reason);
	FUZZ_CHECK(st == CM_PROTO_INVALID && reason != NULL && reason[0] != '\0',
			   "decode of a frame cut by one byte gave %d", st);
	longer = fuzz_malloc(flen + 1);
	memcpy(longer, copy, flen);
	longer[flen] = 0;
	reason = NULL;
	st = cm_proto_decode(dir, longer, flen + 1, &msg, &reason);
	FUZZ_CHECK(st == CM_PROTO_INVALID && reason != NULL && reason[0] != '\0',
			   "decode of a frame with a trailing byte gave %d", st);
	free(longer);

	reason = NULL;
	st = cm_proto_decode(dir, copy, flen, &msg, &reason);
	if (st != CM_PROTO_OK)
	{
		fuzz_check_refusal(st, reason, "decode", "a frame");
		free(copy);
		return;
	}
	FUZZ_CHECK(msg.type == copy[0], "decoded type %u from a frame of type %u",
			   msg.type, copy[0]);
	FUZZ_CHECK(strcmp(cm_proto_type_name(dir, msg.type), "unknown") != 0,
			   "accepted message type %u has no name", msg.type);

	/* an accepted frame has one encoding: the bytes it was decoded from */
	out = fuzz_malloc(CM_PROTO_MAX_MSG);
	olen = cm_proto_encode(dir, &msg, out, CM_PROTO_MAX_MSG);
	FUZZ_CHECK(olen == flen, "re-encoding gave %zu bytes instead of %zu", olen, flen);
	FUZZ_CHECK(memcmp(out, copy, flen) == 0,
			   "re-encoding differs from the decoded frame (type %c)", copy[0]);
	free(out);

	/* encoding into a buffer too short fails without writing past it */
	cap = flen - 1 - (size_t) copy[flen - 1] % flen;
	out = fuzz_malloc(cap);
	FUZZ_CHECK(cm_proto_encode(dir, &msg, out, cap) == 0,
			   "encoding %zu bytes into a buffer of %zu succeeded", flen, cap);
	free(out);
	out = fuzz_malloc(flen - 1);
	FUZZ_CHECK(cm_proto_encode(dir, &msg, out, flen - 1) == 0,
			   "encoding %zu bytes into a buffer one byte short succeeded", flen);
	free(out);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const CmProtoDir dir = FUZZ_DIR;
	size_t		pos = 0;

	while (pos < size)
	{
		size_t		left = size - pos;
		size_t		want = left < CM_PROTO_MAX_MSG ? left : CM_PROTO_MAX_MSG;
		size_t		flen = 0;
		const char *reason = NULL;
		CmProtoStatus st;

		st = cm_proto_frame_peek(dir, data + pos, want, &flen, &reason);
		if (st == CM_PROTO_INCOMPLETE)
		{
			FUZZ_CHECK(want < CM_PROTO_MAX_MSG,
					   "frame_peek wants more than CM_PROTO_MAX_MSG bytes");
			break;
		}
		if (st != CM_PROTO_OK)
		{
			fuzz_check_refusal(st, reason, "frame_peek", "a header");
			break;
		}
		FUZZ_CHECK(flen >= CM_PROTO_HEADER_LEN && flen <= want &&
				   flen <= CM_PROTO_MAX_MSG,
				   "frame_peek gave a frame of %zu bytes in a window of %zu",
				   flen, want);
		check_frame(dir, data + pos, flen);
		pos += flen;
	}
	return 0;
}
