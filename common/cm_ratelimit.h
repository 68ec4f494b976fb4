/*-------------------------------------------------------------------------
 *
 * cm_ratelimit.h
 *	  Rate-limit decisions: a window limiter for repetitive log lines and a
 *	  token bucket for messages a peer may send.
 *
 * Both are pure functions of a small state struct and a time the caller
 * passes in (any monotonic unit, the same for every call on one state):
 * no clock, no allocation, no logging, so that the watchdog, conmgr and the
 * tests share them and a test can drive time by hand.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_ratelimit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_RATELIMIT_H
#define CM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * At most burst events (0 means 1) in each window of a given length; the
 * window starts at the first event after the previous one ended.  A state
 * of zeroes (with burst set) is a limiter that has allowed nothing yet.
 */
typedef struct CmRateWindow
{
	int			burst;			/* events per window (0 means 1) */
	int64_t		start;			/* start of the current window, 0 = none */
	int			count;			/* events allowed in it */
	uint64_t	suppressed;		/* events refused since the last allowed */
} CmRateWindow;

/*
 * May an event happen at now?  When it may, *suppressed is the number of
 * events refused since the last one allowed (for a summary) and is reset.
 */
extern bool cm_rate_window_allow(CmRateWindow *w, int64_t now,
								 int64_t window, uint64_t *suppressed);

/* A token bucket: tokens refill continuously, up to a burst. */
typedef struct CmTokenBucket
{
	double		tokens;			/* events allowed now */
	int64_t		last;			/* time of the last refill */
} CmTokenBucket;

/* A full bucket at now. */
extern void cm_token_bucket_init(CmTokenBucket *b, int64_t now, double burst);

/*
 * Refill the bucket by per tokens every period (up to burst), then take a
 * token if there is one.  Returns whether one was taken.
 */
extern bool cm_token_bucket_take(CmTokenBucket *b, int64_t now, double per,
								 int64_t period, double burst);

#endif							/* CM_RATELIMIT_H */
