/*-------------------------------------------------------------------------
 *
 * async_example.c
 *	  An asynchronous libpq program using Connection Manager:
 *
 *	  - it connects with PQconnectStart()/PQconnectPoll(), fetching
 *		PQsocket() again before every poll() because the socket changes
 *		(conmgr's first, then the instance's); PQstatus() says
 *		CONNECTION_AWAITING_CMRESPONSE while conmgr has not answered;
 *	  - it runs a query with PQsendQuery() and polls both PQsocket() and
 *		PQcmSocket(); when PQcmSocket() is readable it does not read it but
 *		calls PQconsumeInput()/PQgetResult(), which report the failure.
 *
 *	  build:	make -C examples
 *	  run:		./async_example "host=localhost port=27546 dbname=postgres"
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  examples/async_example.c
 *
 *-------------------------------------------------------------------------
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "libpq-fe.h"

#include "libpq-cm.h"

/* Connect without blocking; returns an established connection or NULL. */
static PGconn *
connect_async(const char *conninfo)
{
	PGconn	   *conn = PQconnectStart(conninfo);
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		goto fail;
	while (ps != PGRES_POLLING_OK)
	{
		struct pollfd pfd;

		if (ps == PGRES_POLLING_FAILED)
			goto fail;
		if (PQstatus(conn) == CONNECTION_AWAITING_CMRESPONSE)
			printf("waiting for conmgr at %s:%s\n", PQhost(conn), PQport(conn));
		pfd.fd = PQsocket(conn);	/* may change: fetch it every time */
		pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, 10000) <= 0)
		{
			fprintf(stderr, "connection timed out\n");
			PQfinish(conn);
			return NULL;
		}
		ps = PQconnectPoll(conn);
	}
	printf("connected to %s:%s\n", PQhost(conn), PQport(conn));
	return conn;

fail:
	fprintf(stderr, "connection failed: %s", conn ? PQerrorMessage(conn) : "out of memory\n");
	PQfinish(conn);
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *conninfo = argc > 1 ? argv[1] :
		"host=localhost port=27546 dbname=postgres target_session_attrs=read-write";
	PGconn	   *conn;
	PGresult   *res;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* progress lines appear at once */
	conn = connect_async(conninfo);
	if (conn == NULL)
		return 1;
	PQsetnonblocking(conn, 1);
	if (!PQsendQuery(conn, "SELECT pg_sleep(30), 'done'"))
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	for (;;)
	{
		struct pollfd pfd[2];
		int			n = 1;

		pfd[0].fd = PQsocket(conn);
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		if (PQcmSocket(conn) >= 0)
		{
			pfd[1].fd = PQcmSocket(conn);
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			n = 2;
		}
		if (poll(pfd, n, -1) < 0)
			break;
		if (n == 2 && pfd[1].revents)
			printf("conmgr reports a failure\n");
		if (!PQconsumeInput(conn) || !PQisBusy(conn) || (n == 2 && pfd[1].revents))
			break;
	}
	while ((res = PQgetResult(conn)) != NULL)
	{
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			printf("result: %s\n", PQgetvalue(res, 0, 1));
		else
			fprintf(stderr, "query failed: %s", PQresultErrorMessage(res));
		PQclear(res);
	}
	if (PQstatus(conn) == CONNECTION_BAD)
		fprintf(stderr, "connection lost: %s", PQerrorMessage(conn));
	PQfinish(conn);
	return 0;
}
