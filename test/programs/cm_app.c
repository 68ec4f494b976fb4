/*-------------------------------------------------------------------------
 *
 * cm_app.c
 *	  A small libpq application that connects through Connection Manager,
 *	  reports where it landed, and waits for a failure notice.
 *
 * Used by the demo (scripts/demo.sh) and by the TAP tests.
 *
 *	cm_app CONNINFO [--wait-notice SECONDS]
 *
 * Prints, one per line:
 *	connected host=H port=P in_recovery=t|f backend_pid=N cm_socket=FD
 *	notice at=EPOCH_MS.USEC waited_ms=N   (the conmgr socket became readable)
 *	after-notice status=ok|bad query=RESULT error=MESSAGE
 *	no-notice waited_ms=N                 (nothing within SECONDS)
 * Exit status: 0 when connected (and, with --wait-notice, notified),
 * 1 when the connection failed, 2 on usage errors, 3 when no notice came.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/programs/cm_app.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"
#include "libpq-cm.h"
#include "test_clock.h"

static void
one_line(char *s)
{
	char	   *p;

	for (p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	int			wait_s = -1;
	long long	start;
	char		errbuf[1024];

	if (argc == 4 && strcmp(argv[2], "--wait-notice") == 0)
	{
		char	   *end;

		errno = 0;
		wait_s = (int) strtol(argv[3], &end, 10);
		if (errno || *end || wait_s < 0)
		{
			fprintf(stderr, "cm_app: invalid number of seconds: \"%s\"\n", argv[3]);
			return 2;
		}
	}
	else if (argc != 2)
	{
		fprintf(stderr, "usage: cm_app CONNINFO [--wait-notice SECONDS]\n");
		return 2;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		snprintf(errbuf, sizeof(errbuf), "%s", PQerrorMessage(conn));
		one_line(errbuf);
		printf("connect-failed error=%s\n", errbuf);
		PQfinish(conn);
		return 1;
	}
	res = PQexec(conn, "SELECT pg_is_in_recovery()");
	printf("connected host=%s port=%s in_recovery=%s backend_pid=%d cm_socket=%d\n",
		   PQhost(conn), PQport(conn),
		   PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : "?",
		   PQbackendPID(conn), PQcmSocket(conn));
	PQclear(res);

	if (wait_s < 0)
	{
		PQfinish(conn);
		return 0;
	}

	start = now_ms(CLOCK_MONOTONIC);
	for (;;)
	{
		struct pollfd pfd;
		long long	left = (long long) wait_s * 1000 - (now_ms(CLOCK_MONOTONIC) - start);
		int			rc;

		if (left <= 0 || PQcmSocket(conn) < 0)
		{
			printf("no-notice waited_ms=%lld\n", now_ms(CLOCK_MONOTONIC) - start);
			PQfinish(conn);
			return 3;
		}
		pfd.fd = PQcmSocket(conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int) left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc > 0)
			break;
	}
	printf("notice at=%.3f waited_ms=%lld\n", wall_ms(),
		   now_ms(CLOCK_MONOTONIC) - start);

	/* Do not read the notice socket: let libpq report the loss
	 * (docs/client.md, "Failure notices and errors"). */
	PQconsumeInput(conn);
	res = PQexec(conn, "SELECT 1");
	snprintf(errbuf, sizeof(errbuf), "%s", PQerrorMessage(conn));
	one_line(errbuf);
	printf("after-notice status=%s query=%s error=%s\n",
		   PQstatus(conn) == CONNECTION_OK ? "ok" : "bad",
		   PQresStatus(PQresultStatus(res)), errbuf);
	PQclear(res);
	PQfinish(conn);
	return 0;
}
