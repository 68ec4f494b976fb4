/*-------------------------------------------------------------------------
 *
 * cm_time.c
 *	  The monotonic clock (see cm_time.h).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_time.c
 *
 *-------------------------------------------------------------------------
 */
#include <time.h>

#include "cm_time.h"

int64_t
cm_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}
