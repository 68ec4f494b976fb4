/*-------------------------------------------------------------------------
 *
 * unit_tap.h
 *	  The TAP output of the C unit tests in test/unit/: one line per check,
 *	  "ok N - what" or "not ok N - what", followed when it failed by a
 *	  "# detail" line; t/001_unit.pl reads them.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/unit_tap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEST_UNIT_TAP_H
#define TEST_UNIT_TAP_H

#include <stdio.h>

static int	unit_ntests = 0;
static int	unit_nfailed = 0;

/* One check; detail (NULL or "" for none) is printed only when it failed. */
static inline void
unit_check(int cond, const char *what, const char *detail)
{
	unit_ntests++;
	if (!cond)
		unit_nfailed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", unit_ntests, what);
	if (!cond && detail != NULL && detail[0] != '\0')
		printf("# %s\n", detail);
}

/* The exit status of a test program: 1 when any check failed. */
static inline int
unit_status(void)
{
	return unit_nfailed ? 1 : 0;
}

#endif							/* TEST_UNIT_TAP_H */
