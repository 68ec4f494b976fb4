/*-------------------------------------------------------------------------
 *
 * cm_time.h
 *	  The monotonic clock every timeout and rate of Connection Manager is
 *	  measured on.
 *
 * Plain C99 (POSIX clock_gettime), no PostgreSQL headers, no state: the
 * watchdog, conmgr and the client library read the same clock.
 * CLOCK_MONOTONIC never jumps with the wall clock; it starts at an
 * unspecified point, so only differences mean anything.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_time.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_TIME_H
#define CM_TIME_H

#include <stdint.h>

/* Nanoseconds on the monotonic clock. */
extern int64_t cm_mono_ns(void);

/* The same clock in microseconds and in milliseconds (rounded down). */
static inline int64_t
cm_mono_us(void)
{
	return cm_mono_ns() / 1000;
}

static inline int64_t
cm_mono_ms(void)
{
	return cm_mono_ns() / 1000000;
}

#endif							/* CM_TIME_H */
