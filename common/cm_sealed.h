/*-------------------------------------------------------------------------
 *
 * cm_sealed.h
 *	  Frame intake of a sealed stream: cm_proto_next() for the heartbeat
 *	  channel after the welcome, where every frame carries a sequence
 *	  number and an authentication tag (cm_auth.h).
 *
 * Plain C99, no PostgreSQL headers, no allocation, no logging.  Kept apart
 * from cm_protocol.c (which the client library links without OpenSSL) and
 * from cm_auth.c (which links without the codec), for the watchdog and
 * conmgr, which have both.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_sealed.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_SEALED_H
#define CM_SEALED_H

#include <stddef.h>
#include <stdint.h>

#include "cm_protocol.h"

typedef enum CmSealedStatus
{
	CM_SEALED_OK = 0,
	CM_SEALED_INCOMPLETE,		/* need more bytes; nothing consumed */
	CM_SEALED_INVALID,			/* malformed frame or message: *reason */
	CM_SEALED_BAD_TAG,			/* the frame does not open with the key */
	CM_SEALED_BAD_SEQUENCE		/* it opens, but *seq is not seq_due */
} CmSealedStatus;

/*
 * cm_sealed_next: take the next message from the start of a receive buffer
 * of a sealed stream: peek the frame, open it in place with key (its tag,
 * then its sequence number, which must be seq_due), decode what it
 * carries.  The checks come in that order; the first that fails is
 * returned.  On CM_SEALED_OK and CM_SEALED_BAD_SEQUENCE *seq is the
 * frame's sequence number; on CM_SEALED_OK *frame_len is the bytes to
 * consume (the sealed frame) and *msg the message.  The opened frame, its
 * length field restored, starts the buffer then.
 *
 * With key NULL the stream is not sealed (yet, before the welcome): the
 * frame is taken as it is (cm_proto_next()) and *seq is left alone, so
 * that a reader has one intake for both phases of its stream.
 */
extern CmSealedStatus cm_sealed_next(CmProtoDir dir, const uint8_t *key,
									 uint64_t seq_due, uint8_t *buf,
									 size_t len, size_t *frame_len,
									 uint64_t *seq, CmProtoMsg *msg,
									 const char **reason);

#endif							/* CM_SEALED_H */
