/*-------------------------------------------------------------------------
 *
 * lab_app.c
 *	  A libpq application for the failure-scenario lab: it connects, puts
 *	  itself in one situation (idle, waiting on a query, sending COPY data,
 *	  holding a lock) and reports with wall-clock times when and how its
 *	  connection failed.
 *
 * Built twice from this file: lab_app links plain libpq only (the
 * baselines), lab_app_cm links the Connection Manager client library
 * ahead of libpq and also watches PQcmSocket() where the mode says so.
 *
 *	lab_app CONNINFO MODE [SECONDS]
 *
 * Modes (SECONDS bounds the wait, default 600):
 *	connect	connect, report where, disconnect
 *	idle	wait with poll() on PQsocket() (and PQcmSocket() in lab_app_cm)
 *			until one is readable or fails, then run SELECT 1
 *	idle-sql  the same, watching PQsocket() only
 *	idle-cm	the same, watching PQcmSocket() only (lab_app_cm only)
 *	sleep	run SELECT pg_sleep(SECONDS) and report when the call returns
 *	copy	COPY lab_copy FROM STDIN, sending a 1 kB row every 10 ms until
 *			a call fails or SECONDS pass
 *	lock	BEGIN; LOCK TABLE lab_lock; report when granted; then wait
 *			as in idle (a transaction left open)
 *
 * Output, one event per line, times in ms since the epoch with microseconds
 * after the point (CLOCK_REALTIME, shared by every network namespace of the
 * lab):
 *	ready at=MS pid=BACKEND_PID cm_socket=FD host=H port=P in_recovery=t|f
 *	locked at=MS
 *	notified at=MS                       (the conmgr socket became readable)
 *	failed at=MS call=NAME status=ok|bad result=PGRES_...|- sqlstate=CODE|-
 *		   error=MESSAGE
 *	ok at=MS call=NAME                   (the call completed normally)
 *	timeout at=MS
 *	connect-failed at=MS error=MESSAGE
 * Exit status: 0 after failed/ok/timeout, 1 when the connection could not
 * be made, 2 on usage errors.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/lab/lab_app.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"
#ifdef WITH_CM
#include "libpq-cm.h"
#define lab_cm_socket(conn)		PQcmSocket(conn)
#else
#define lab_cm_socket(conn)		(-1)
#endif

#include "test_clock.h"

#define LAB_DEFAULT_SECONDS		600
#define LAB_COPY_ROW_BYTES		1024
#define LAB_COPY_PERIOD_MS		10

/*
 * Print a failed call: its name, the connection status, the SQLSTATE of
 * res ("-" without a result or without a code) and libpq's error message
 * on one line.
 */
static void
report_failed(PGconn *conn, const char *call, const PGresult *res)
{
	char		buf[1024];
	char	   *p;
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	snprintf(buf, sizeof(buf), "%s", PQerrorMessage(conn));
	for (p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	printf("failed at=%.3f call=%s status=%s result=%s sqlstate=%s error=%s\n",
		   wall_ms(), call,
		   PQstatus(conn) == CONNECTION_OK ? "ok" : "bad",
		   res ? PQresStatus(PQresultStatus(res)) : "-",
		   sqlstate ? sqlstate : "-", buf);
}

/*
 * Run one command; on success print nothing and return true, else report
 * the failure under the name call.
 */
static bool
run_command(PGconn *conn, const char *sql, const char *call)
{
	PGresult   *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
	{
		PQclear(res);
		return true;
	}
	report_failed(conn, call, res);
	PQclear(res);
	return false;
}

/*
 * Wait, as an idle application does, until the server's socket or the
 * conmgr socket needs attention or seconds pass; then find out with libpq
 * whether the connection still works.
 */
static void
wait_idle(PGconn *conn, int seconds, bool watch_sql, bool watch_cm)
{
	long long	start = now_ms(CLOCK_MONOTONIC);

	for (;;)
	{
		struct pollfd pfd[2];
		int			n = 0;
		long long	left = (long long) seconds * 1000 -
			(now_ms(CLOCK_MONOTONIC) - start);
		int			rc;

		if (left <= 0)
		{
			printf("timeout at=%.3f\n", wall_ms());
			return;
		}
		if (watch_sql)
		{
			pfd[n].fd = PQsocket(conn);
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			n++;
		}
		if (watch_cm && lab_cm_socket(conn) >= 0)
		{
			pfd[n].fd = lab_cm_socket(conn);
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			n++;
		}
		rc = poll(pfd, n, (int) left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
		{
			printf("failed at=%.3f call=poll status=? error=%s\n",
				   wall_ms(), strerror(errno));
			return;
		}
		if (rc == 0)
			continue;
		if (watch_cm && pfd[n - 1].fd == lab_cm_socket(conn) && pfd[n - 1].revents)
			printf("notified at=%.3f\n", wall_ms());
		/* As the client documentation says: let libpq find out. */
		if (!PQconsumeInput(conn))
		{
			report_failed(conn, "PQconsumeInput", NULL);
			return;
		}
		if (!run_command(conn, "SELECT 1", "PQexec"))
			return;
		/* a spurious wake-up (e.g. a NOTICE): keep waiting */
	}
}

/* Send COPY rows until a call fails or seconds pass. */
static void
send_copy(PGconn *conn, int seconds)
{
	char		row[LAB_COPY_ROW_BYTES];
	long long	start = now_ms(CLOCK_MONOTONIC);
	PGresult   *res;

	memset(row, 'x', sizeof(row) - 1);
	row[sizeof(row) - 1] = '\n';

	res = PQexec(conn, "COPY lab_copy FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN)
	{
		report_failed(conn, "COPY", res);
		PQclear(res);
		return;
	}
	PQclear(res);
	for (;;)
	{
		struct timespec ts = {0, LAB_COPY_PERIOD_MS * 1000000L};

		if (PQputCopyData(conn, row, sizeof(row)) != 1)
		{
			report_failed(conn, "PQputCopyData", NULL);
			return;
		}
		if (PQflush(conn) < 0)
		{
			report_failed(conn, "PQflush", NULL);
			return;
		}
		if (now_ms(CLOCK_MONOTONIC) - start >= (long long) seconds * 1000)
			break;
		nanosleep(&ts, NULL);
	}
	printf("timeout at=%.3f\n", wall_ms());
	return;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	const char *mode;
	int			seconds = LAB_DEFAULT_SECONDS;
	char		sql[64];

	if (argc != 3 && argc != 4)
	{
		fprintf(stderr, "usage: lab_app CONNINFO connect|idle|idle-sql|idle-cm|sleep|copy|lock [SECONDS]\n");
		return 2;
	}
	mode = argv[2];
	if (strcmp(mode, "connect") != 0 &&
		strcmp(mode, "idle") != 0 && strcmp(mode, "idle-sql") != 0 &&
		strcmp(mode, "idle-cm") != 0 && strcmp(mode, "sleep") != 0 &&
		strcmp(mode, "copy") != 0 && strcmp(mode, "lock") != 0)
	{
		fprintf(stderr, "lab_app: unknown mode \"%s\"\n", mode);
		return 2;
	}
	if (argc == 4)
	{
		char	   *end;
		long		v;

		errno = 0;
		v = strtol(argv[3], &end, 10);
		if (errno || *end || end == argv[3] || v < 1 || v > 86400)
		{
			fprintf(stderr, "lab_app: invalid number of seconds: \"%s\"\n", argv[3]);
			return 2;
		}
		seconds = (int) v;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char		buf[1024];
		char	   *p;

		snprintf(buf, sizeof(buf), "%s", PQerrorMessage(conn));
		for (p = buf; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		printf("connect-failed at=%.3f error=%s\n", wall_ms(), buf);
		PQfinish(conn);
		return 1;
	}
	res = PQexec(conn, "SELECT pg_is_in_recovery()");
	printf("ready at=%.3f pid=%d cm_socket=%d host=%s port=%s in_recovery=%s\n",
		   wall_ms(), PQbackendPID(conn), lab_cm_socket(conn),
		   PQhost(conn), PQport(conn),
		   PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : "?");
	PQclear(res);

	if (strcmp(mode, "connect") == 0)
	{
		/* the ready line says it all */
	}
	else if (strcmp(mode, "idle") == 0)
		wait_idle(conn, seconds, true, true);
	else if (strcmp(mode, "idle-sql") == 0)
		wait_idle(conn, seconds, true, false);
	else if (strcmp(mode, "idle-cm") == 0)
	{
		if (lab_cm_socket(conn) < 0)
		{
			printf("failed at=%.3f call=PQcmSocket status=ok result=- sqlstate=- error=no conmgr socket\n",
				   wall_ms());
			PQfinish(conn);
			return 0;
		}
		wait_idle(conn, seconds, false, true);
	}
	else if (strcmp(mode, "sleep") == 0)
	{
		snprintf(sql, sizeof(sql), "SELECT pg_sleep(%d)", seconds);
		if (run_command(conn, sql, "PQexec"))
			printf("ok at=%.3f call=PQexec\n", wall_ms());
	}
	else if (strcmp(mode, "copy") == 0)
		send_copy(conn, seconds);
	else
	{
		if (run_command(conn, "BEGIN", "BEGIN") &&
			run_command(conn, "LOCK TABLE lab_lock IN ACCESS EXCLUSIVE MODE",
						"LOCK"))
		{
			printf("locked at=%.3f\n", wall_ms());
			wait_idle(conn, seconds, true, true);
		}
	}
	PQfinish(conn);
	return 0;
}
