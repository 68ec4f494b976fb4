/*-------------------------------------------------------------------------
 *
 * cm_log.h
 *	  conmgr's logger: timestamp, PID, level and message, with optional
 *	  DETAIL and HINT lines, to stderr, a file or syslog.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_log.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONMGR_CM_LOG_H
#define CONMGR_CM_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "cm_ratelimit.h"

typedef enum CmLogLevel
{
	CM_LOG_DEBUG = 0,
	CM_LOG_INFO,				/* printed as LOG, as PostgreSQL does */
	CM_LOG_WARNING,
	CM_LOG_ERROR,
	CM_LOG_FATAL
} CmLogLevel;

typedef enum CmLogDestination
{
	CM_LOGDEST_STDERR = 0,
	CM_LOGDEST_FILE,
	CM_LOGDEST_SYSLOG
} CmLogDestination;

/*
 * Switch destination and level.  path is used for CM_LOGDEST_FILE (relative
 * to the current directory, which is the conmgr directory).  Returns false
 * with the previous destination kept (and the cause logged there) when the
 * file cannot be opened.
 */
extern bool cm_log_configure(CmLogLevel level, CmLogDestination dest,
							 const char *path);

/* Reopen the log file (after rotation); no-op for other destinations. */
extern void cm_log_reopen(void);

extern bool cm_log_enabled(CmLogLevel level);

extern void cm_log(CmLogLevel level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/*
 * A message followed by a DETAIL line and a HINT line, as PostgreSQL's
 * errdetail() and errhint() add them: the message says what happened, in
 * one line that tests and operators match; detail and hint are complete
 * sentences (capital letter, final period), either may be NULL, and they
 * are plain strings, not formats (format them beforehand when needed).
 * Each line carries the message's prefix:
 *
 *	 ... [4711] WARNING:  application connection from ... refused: ...
 *	 ... [4711] HINT:  Raise "ulimit -n" (see docs/conmgr.md).
 *
 * With syslog, each line is a record of its own, at the message's priority,
 * as PostgreSQL's syslog output sends them.
 */
extern void cm_log_detail(CmLogLevel level, const char *detail,
						  const char *hint, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

/*
 * Rate limit for messages that a misbehaving or retrying client can cause
 * at will: at most one line per CM_LOG_LIMIT_SECONDS at the given level,
 * the rest at DEBUG, and the next line says how many were held back.
 */
#define CM_LOG_LIMIT_SECONDS 60

typedef CmRateWindow CmLogLimit;	/* zeroed: nothing logged yet */

extern void cm_log_limited(CmLogLimit *limit, CmLogLevel level,
						   const char *fmt,...) __attribute__((format(printf, 3, 4)));

/* cm_log_limited() with DETAIL and HINT lines, as cm_log_detail() */
extern void cm_log_limited_detail(CmLogLimit *limit, CmLogLevel level,
								  const char *detail, const char *hint,
								  const char *fmt,...)
			__attribute__((format(printf, 5, 6)));

#define cm_debug(...)	do { if (cm_log_enabled(CM_LOG_DEBUG)) cm_log(CM_LOG_DEBUG, __VA_ARGS__); } while (0)
#define cm_info(...)	cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_warning(...)	cm_log(CM_LOG_WARNING, __VA_ARGS__)
#define cm_error(...)	cm_log(CM_LOG_ERROR, __VA_ARGS__)
#define cm_fatal(...)	cm_log(CM_LOG_FATAL, __VA_ARGS__)

#endif							/* CONMGR_CM_LOG_H */
