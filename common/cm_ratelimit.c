/*-------------------------------------------------------------------------
 *
 * cm_ratelimit.c
 *	  Rate-limit decisions (see cm_ratelimit.h).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_ratelimit.c
 *
 *-------------------------------------------------------------------------
 */
#include "cm_ratelimit.h"

bool
cm_rate_window_allow(CmRateWindow *w, int64_t now, int64_t window,
					 uint64_t *suppressed)
{
	if (w->start == 0 || now - w->start >= window)
	{
		w->start = now;
		w->count = 0;
	}
	if (w->count < (w->burst > 1 ? w->burst : 1))
	{
		w->count++;
		*suppressed = w->suppressed;
		w->suppressed = 0;
		return true;
	}
	w->suppressed++;
	return false;
}

void
cm_token_bucket_init(CmTokenBucket *b, int64_t now, double burst)
{
	b->tokens = burst;
	b->last = now;
}

bool
cm_token_bucket_take(CmTokenBucket *b, int64_t now, double per,
					 int64_t period, double burst)
{
	double		tokens;

	tokens = b->tokens + (double) (now - b->last) * per /
		(double) (period > 1 ? period : 1);
	b->tokens = tokens < burst ? tokens : burst;
	b->last = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
