/*-------------------------------------------------------------------------
 *
 * fuzz_sealed.c
 *	  libFuzzer target: sealed frames of the heartbeat channel
 *	  (cm_auth_seal, cm_auth_open).
 *
 * Every byte string is offered to cm_auth_open as a received sealed frame,
 * and sealed as an outgoing frame.  Checked:
 *
 *	- opening never reads outside the input, and a frame it accepts is one
 *	  that sealing its inner frame with the same sequence number reproduces
 *	  byte for byte (so no forged tag is ever accepted unless the input is
 *	  exactly a genuine seal);
 *	- a frame sealed here opens again to the input, with its sequence
 *	  number, and fails with the other direction's key or channel.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_sealed.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_auth.h"
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t key[CM_AUTH_KEY_LEN] = {1, 2, 3};
	static uint8_t other[CM_AUTH_KEY_LEN] = {3, 2, 1};
	uint8_t    *buf;
	uint8_t    *again;
	uint64_t	seq;
	size_t		inner;
	size_t		len;

	if (size > CM_AUTH_SEALED_MAX)
		return 0;
	buf = malloc(size + CM_AUTH_SEAL_LEN + 1);
	again = malloc(size + CM_AUTH_SEAL_LEN + 1);
	if (buf == NULL || again == NULL)
		fuzz_fail("out of memory");

	/* as received */
	memcpy(buf, data, size);
	if (cm_auth_open(key, CM_AUTH_CHANNEL_STREAM, buf, size, &seq, &inner))
	{
		FUZZ_CHECK(inner + CM_AUTH_SEAL_LEN == size, "opened to %zu bytes of %zu", inner, size);
		memcpy(again, buf, inner);
		len = cm_auth_seal(key, CM_AUTH_CHANNEL_STREAM, seq, again, inner, size);
		FUZZ_CHECK(len == size && memcmp(again, data, size) == 0,
				   "an accepted frame is not the seal of its contents");
	}
	else
		FUZZ_CHECK(memcmp(buf, data, size) == 0, "a refused frame was changed");

	/* as sent */
	memcpy(buf, data, size);
	len = cm_auth_seal(key, CM_AUTH_CHANNEL_STREAM, size, buf, size, size + CM_AUTH_SEAL_LEN);
	if (size >= 5 && size + CM_AUTH_SEAL_LEN <= CM_AUTH_SEALED_MAX)
	{
		FUZZ_CHECK(len == size + CM_AUTH_SEAL_LEN, "sealing %zu bytes gave %zu", size, len);
		memcpy(again, buf, len);
		FUZZ_CHECK(!cm_auth_open(other, CM_AUTH_CHANNEL_STREAM, again, len, &seq, &inner),
				   "another key opened a sealed frame");
		FUZZ_CHECK(!cm_auth_open(key, CM_AUTH_CHANNEL_DATAGRAM, again, len, &seq, &inner),
				   "the datagram channel opened a stream frame");
		FUZZ_CHECK(cm_auth_open(key, CM_AUTH_CHANNEL_STREAM, buf, len, &seq, &inner) &&
				   seq == size && inner == size &&
				   memcmp(buf + 5, data + 5, size - 5) == 0 && buf[0] == data[0],
				   "a sealed frame does not open to what was sealed");
	}
	else
		FUZZ_CHECK(len == 0, "sealed %zu bytes that cannot be a frame", size);

	/* as a received datagram: its id is looked at without an HMAC */
	if (size <= CM_AUTH_DGRAM_MAX)
	{
		const uint8_t *id;

		memcpy(buf, data, size);
		id = cm_auth_datagram_id(buf, size);
		FUZZ_CHECK(id == NULL || id == buf, "a datagram's id is not its first bytes");
		if (cm_auth_datagram_open(key, buf, size, &seq, &inner))
		{
			uint8_t		made[CM_AUTH_DGRAM_MAX];

			FUZZ_CHECK(id != NULL, "a datagram opened whose size or framing is wrong");
			len = cm_auth_datagram_make(key, data, seq, buf + CM_AUTH_DGRAM_ID_LEN,
										inner, made, sizeof(made));
			FUZZ_CHECK(len == size && memcmp(made, data, size) == 0,
					   "an accepted datagram is not the seal of its contents");
		}
	}

	/* as a sent datagram: made, then opened, only with its key and channel */
	if (size >= CM_AUTH_DGRAM_ID_LEN + 5)
	{
		uint8_t		made[CM_AUTH_DGRAM_MAX];
		const uint8_t *frame = data + CM_AUTH_DGRAM_ID_LEN;
		size_t		flen = size - CM_AUTH_DGRAM_ID_LEN;

		len = cm_auth_datagram_make(key, data, 7, frame, flen, made, sizeof(made));
		if (CM_AUTH_DGRAM_ID_LEN + flen + CM_AUTH_SEAL_LEN <= CM_AUTH_DGRAM_MAX)
		{
			FUZZ_CHECK(len == size + CM_AUTH_SEAL_LEN, "a datagram of %zu bytes made %zu", size, len);
			FUZZ_CHECK(cm_auth_datagram_id(made, len) == made,
					   "a datagram made is not recognised as one");
			memcpy(again, made, len);
			FUZZ_CHECK(!cm_auth_datagram_open(other, again, len, &seq, &inner),
					   "another key opened a datagram");
			FUZZ_CHECK(!cm_auth_open(key, CM_AUTH_CHANNEL_STREAM, again + CM_AUTH_DGRAM_ID_LEN,
									 len - CM_AUTH_DGRAM_ID_LEN, &seq, &inner),
					   "the stream channel opened a datagram's frame");
			memcpy(again, made, len);
			FUZZ_CHECK(cm_auth_datagram_open(key, again, len, &seq, &inner) && seq == 7 &&
					   inner == flen && memcmp(again, data, CM_AUTH_DGRAM_ID_LEN) == 0 &&
					   again[CM_AUTH_DGRAM_ID_LEN] == frame[0] &&
					   memcmp(again + CM_AUTH_DGRAM_ID_LEN + 5, frame + 5, flen - 5) == 0,
					   "a datagram does not open to what was made");
		}
		else
			FUZZ_CHECK(len == 0, "made a datagram over %d bytes", CM_AUTH_DGRAM_MAX);
	}
	free(buf);
	free(again);
	return 0;
}
