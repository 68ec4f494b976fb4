/*-------------------------------------------------------------------------
 *
 * cm_log.c
 *	  conmgr's logger.
 *
 * A line is "2026-01-31 12:00:00.123 UTC [pid] LEVEL:  message", the
 * format of PostgreSQL's default log_line_prefix, so that the logs of both
 * sides read alike.  A message may be followed by a DETAIL and a HINT
 * line with the same prefix, as PostgreSQL writes errdetail() and
 * errhint() (cm_log_detail).  Writes are single write() calls of a whole
 * message, so a log file shared with cm_ctl's redirection is never
 * interleaved mid-line.  With syslog each line is a record of its own.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_log.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cm_log.h"
#include "cm_time.h"

static CmLogLevel log_min_level = CM_LOG_INFO;
static CmLogDestination log_dest = CM_LOGDEST_STDERR;
static int	log_fd = -1;		/* file destination */
static char *log_path = NULL;
static bool syslog_open = false;

static const char *const level_names[] = {
	"DEBUG", "LOG", "WARNING", "ERROR", "FATAL"
};

static const int syslog_levels[] = {
	LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT
};

bool
cm_log_enabled(CmLogLevel level)
{
	return level >= log_min_level;
}

/* Open path for appending; returns the descriptor or -1 with errno set. */
static int
open_log_file(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

bool
cm_log_configure(CmLogLevel level, CmLogDestination dest, const char *path)
{
	if (dest == CM_LOGDEST_FILE)
	{
		int			fd = open_log_file(path);

		if (fd < 0)
		{
			cm_log(CM_LOG_ERROR, "could not open log file \"%s\": %s",
				   path, strerror(errno));
			return false;
		}
		if (log_fd >= 0)
			close(log_fd);
		log_fd = fd;
		free(log_path);
		log_path = strdup(path);
	}
	else if (log_fd >= 0)
	{
		close(log_fd);
		log_fd = -1;
		free(log_path);
		log_path = NULL;
	}

	if (dest == CM_LOGDEST_SYSLOG && !syslog_open)
	{
		openlog("conmgr", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		syslog_open = true;
	}
	else if (dest != CM_LOGDEST_SYSLOG && syslog_open)
	{
		closelog();
		syslog_open = false;
	}

	log_dest = dest;
	log_min_level = level;
	return true;
}

void
cm_log_reopen(void)
{
	int			fd;

	if (log_dest != CM_LOGDEST_FILE || log_path == NULL)
		return;
	fd = open_log_file(log_path);
	if (fd < 0)
	{
		cm_log(CM_LOG_ERROR, "could not reopen log file \"%s\": %s",
			   log_path, strerror(errno));
		return;
	}
	close(log_fd);
	log_fd = fd;
}

/*
 * Replace every control character of msg (below 0x20, and 0x7f) by \xNN in
 * place, cutting the end if it no longer fits: one message is one line,
 * whatever text it quotes.  Peer-provided strings are escaped further where
 * they are received (cm_proto_escape); this is the last safeguard.
 */
static void
escape_controls(char *msg, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	char		out[2048];
	size_t		n = 0;
	const char *p;

	for (p = msg; *p; p++)
		if ((unsigned char) *p < 0x20 || (unsigned char) *p == 0x7f)
			break;
	if (*p == '\0')
		return;
	for (p = msg; *p && n + 5 < sizeof(out); p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20 || c == 0x7f)
		{
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0x0f];
		}
		else
			out[n++] = (char) c;
	}
	out[n] = '\0';
	snprintf(msg, cap, "%s", out);
}

/*
 * Write msg, and detail and hint when not NULL, at level: one line each,
 * every line with the same prefix and its label (the level's name,
 * DETAIL, HINT), in one write() call, or one syslog record per line.
 * msg is escaped in place; never changes errno.
 */
static void
log_write(CmLogLevel level, char *msg, size_t msgcap,
		  const char *detail, const char *hint)
{
	char		extra[2][2048];
	const char *texts[3];
	const char *labels[3];
	int			nlines = 0;
	char		out[3 * 2300];
	size_t		len = 0;
	char		prefix[128];
	char		ts[64];
	struct timeval tv;
	struct tm	tm;
	int			save_errno = errno;
	int			fd;
	int			i;

	escape_controls(msg, msgcap);
	texts[nlines] = msg;
	labels[nlines++] = level_names[level];
	if (detail != NULL)
	{
		snprintf(extra[0], sizeof(extra[0]), "%s", detail);
		escape_controls(extra[0], sizeof(extra[0]));
		texts[nlines] = extra[0];
		labels[nlines++] = "DETAIL";
	}
	if (hint != NULL)
	{
		snprintf(extra[1], sizeof(extra[1]), "%s", hint);
		escape_controls(extra[1], sizeof(extra[1]));
		texts[nlines] = extra[1];
		labels[nlines++] = "HINT";
	}

	if (log_dest == CM_LOGDEST_SYSLOG)
	{
		for (i = 0; i < nlines; i++)
			syslog(syslog_levels[level], "%s:  %s", labels[i], texts[i]);
		errno = save_errno;
		return;
	}

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(prefix, sizeof(prefix), "%s.%03d UTC [%d]",
			 ts, (int) (tv.tv_usec / 1000), (int) getpid());
	for (i = 0; i < nlines; i++)
	{
		/* each line at most 2300 bytes, cut short with its newline kept */
		size_t		cap = sizeof(out) - len < 2300 ? sizeof(out) - len : 2300;
		int			n = snprintf(out + len, cap, "%s %s:  %s\n",
								 prefix, labels[i], texts[i]);

		if (n < 0)
			break;
		if ((size_t) n >= cap)
		{
			n = (int) cap - 1;
			out[len + n - 1] = '\n';
		}
		len += (size_t) n;
	}
	fd = (log_dest == CM_LOGDEST_FILE && log_fd >= 0) ? log_fd : STDERR_FILENO;
	if (len > 0 && write(fd, out, len) < 0)
	{
		/* nowhere left to complain */
	}
	errno = save_errno;
}

/*
 * Format and write a message with its DETAIL and HINT lines (either may be
 * NULL) at level, if enabled.  Never changes errno.
 */
static void log_v(CmLogLevel level, const char *detail, const char *hint,
				  const char *fmt, va_list ap)
			__attribute__((format(printf, 4, 0)));

static void
log_v(CmLogLevel level, const char *detail, const char *hint,
	  const char *fmt, va_list ap)
{
	char		msg[2048];
	int			save_errno = errno;

	if (level < log_min_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	errno = save_errno;
	log_write(level, msg, sizeof(msg), detail, hint);
}

/* Write one log line at level, if enabled.  Never changes errno. */
void
cm_log(CmLogLevel level, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_v(level, NULL, NULL, fmt, ap);
	va_end(ap);
}

/* The same, followed by its DETAIL and HINT lines. */
void
cm_log_detail(CmLogLevel level, const char *detail, const char *hint,
			  const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_v(level, detail, hint, fmt, ap);
	va_end(ap);
}

/*
 * The rate limit of cm_log_limited() and cm_log_limited_detail(): the
 * message at level at most once per CM_LOG_LIMIT_SECONDS, else at DEBUG.
 */
static void log_limited(CmLogLimit *limit, CmLogLevel level,
						const char *detail, const char *hint,
						const char *fmt, va_list ap)
			__attribute__((format(printf, 5, 0)));

static void
log_limited(CmLogLimit *limit, CmLogLevel level, const char *detail,
			const char *hint, const char *fmt, va_list ap)
{
	char		msg[2048];
	char		line[2048];
	uint64_t	suppressed;
	int			save_errno = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);

	if (!cm_rate_window_allow(limit, cm_mono_us(),
							  (int64_t) CM_LOG_LIMIT_SECONDS * 1000000,
							  &suppressed))
	{
		errno = save_errno;
		if (cm_log_enabled(CM_LOG_DEBUG))
			log_write(CM_LOG_DEBUG, msg, sizeof(msg), detail, hint);
		return;
	}
	errno = save_errno;
	if (suppressed > 0)
		snprintf(line, sizeof(line), "%s (%llu similar messages in the previous %d s were logged at DEBUG level only)",
				 msg, (unsigned long long) suppressed, CM_LOG_LIMIT_SECONDS);
	else
		snprintf(line, sizeof(line), "%s", msg);
	if (cm_log_enabled(level))
		log_write(level, line, sizeof(line), detail, hint);
}

void
cm_log_limited(CmLogLimit *limit, CmLogLevel level, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_limited(limit, level, NULL, NULL, fmt, ap);
	va_end(ap);
}

void
cm_log_limited_detail(CmLogLimit *limit, CmLogLevel level, const char *detail,
					  const char *hint, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_limited(limit, level, detail, hint, fmt, ap);
	va_end(ap);
}
