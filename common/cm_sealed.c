/*-------------------------------------------------------------------------
 *
 * cm_sealed.c
 *	  Frame intake of a sealed stream (see cm_sealed.h).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_sealed.c
 *
 *-------------------------------------------------------------------------
 */
#include "cm_auth.h"
#include "cm_sealed.h"

CmSealedStatus
cm_sealed_next(CmProtoDir dir, const uint8_t *key, uint64_t seq_due,
			   uint8_t *buf, size_t len, size_t *frame_len, uint64_t *seq,
			   CmProtoMsg *msg, const char **reason)
{
	size_t		inner_len;
	size_t		inner_frame_len;

	if (key == NULL)
	{
		/* not sealed (yet): the frame as it is */
		switch (cm_proto_next(dir, buf, len, frame_len, msg, reason))
		{
			case CM_PROTO_OK:
				return CM_SEALED_OK;
			case CM_PROTO_INCOMPLETE:
				return CM_SEALED_INCOMPLETE;
			case CM_PROTO_INVALID:
				break;
		}
		return CM_SEALED_INVALID;
	}
	switch (cm_proto_frame_peek(dir, buf, len, frame_len, reason))
	{
		case CM_PROTO_OK:
			break;
		case CM_PROTO_INCOMPLETE:
			return CM_SEALED_INCOMPLETE;
		case CM_PROTO_INVALID:
			return CM_SEALED_INVALID;
	}
	if (!cm_auth_open(key, CM_AUTH_CHANNEL_STREAM, buf, *frame_len, seq,
					  &inner_len))
		return CM_SEALED_BAD_TAG;
	if (*seq != seq_due)
		return CM_SEALED_BAD_SEQUENCE;
	/* the opened frame, its length field restored, is a whole frame */
	switch (cm_proto_next(dir, buf, inner_len, &inner_frame_len, msg, reason))
	{
		case CM_PROTO_OK:
			return CM_SEALED_OK;
		case CM_PROTO_INCOMPLETE:
			*reason = "message truncated";
			return CM_SEALED_INVALID;
		case CM_PROTO_INVALID:
			break;
	}
	return CM_SEALED_INVALID;
}
