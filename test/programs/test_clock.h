/*-------------------------------------------------------------------------
 *
 * test_clock.h
 *	  Clocks of the test programs (test/programs/cm_app.c and
 *	  test/lab/lab_app.c), whose output the TAP tests compare with their
 *	  own clock.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/programs/test_clock.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEST_CLOCK_H
#define TEST_CLOCK_H

#include <time.h>

/* Milliseconds on clock clk (CLOCK_MONOTONIC for durations). */
static inline long long
now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wall-clock time in milliseconds with microseconds after the point, so that
 * a test comparing it with its own clock is not misled by truncation.
 */
static inline double
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) (ts.tv_nsec / 1000) / 1000.0;
}

#endif							/* TEST_CLOCK_H */
