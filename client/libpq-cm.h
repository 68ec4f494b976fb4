/*-------------------------------------------------------------------------
 *
 * libpq-cm.h
 *	  Public interface of libpqcm, the Connection Manager companion of
 *	  libpq.
 *
 * A program that includes this header and links with -lpqcm ahead of -lpq
 * (or any libpq program run with libpqcm preloaded) connects through the
 * local conmgr when its connection string names one.  See docs/client.md.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/libpq-cm.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIBPQ_CM_H
#define LIBPQ_CM_H

#include "libpq-fe.h"

#ifdef __cplusplus
extern "C"
{
#endif

/*
 * PQstatus() returns this value while the client waits for conmgr's answer
 * (stage 1 of an asynchronous connection).  It lies far outside the range
 * of libpq's own ConnStatusType values ("CM" in the high bytes), so no
 * future libpq value can take it.
 */
#define CONNECTION_AWAITING_CMRESPONSE	((ConnStatusType) 0x434d0001)

/* Version of this library: major * 10000 + minor. */
#define PQCM_VERSION_NUM	10000

/*
 * Descriptor of the socket connected to conmgr, or -1 when the connection
 * does not use Connection Manager.  When it becomes readable, do not read
 * it: call PQconsumeInput() / PQgetResult(), which report the failure.
 */
extern int	PQcmSocket(const PGconn *conn);

/* Version of the library actually loaded (PQCM_VERSION_NUM of its build). */
extern int	PQcmLibVersion(void);

#ifdef __cplusplus
}
#endif

#endif							/* LIBPQ_CM_H */
