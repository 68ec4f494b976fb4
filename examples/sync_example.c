/*-------------------------------------------------------------------------
 *
 * sync_example.c
 *	  A synchronous libpq program using Connection Manager.  Nothing in it
 *	  is specific to Connection Manager except the optional PQcmSocket()
 *	  report: a failure notice makes the pending or next call fail, and the
 *	  program reconnects with PQreset(), which asks conmgr again.
 *
 *	  build:	make -C examples
 *	  run:		./sync_example "host=localhost port=27546 dbname=postgres
 *						target_session_attrs=read-write" [queries]
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  examples/sync_example.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "libpq-cm.h"

int
main(int argc, char **argv)
{
	const char *conninfo = argc > 1 ? argv[1] :
		"host=localhost port=27546 dbname=postgres target_session_attrs=read-write";
	int			queries = argc > 2 ? atoi(argv[2]) : 10;
	PGconn	   *conn = PQconnectdb(conninfo);
	int			i;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	printf("connected to %s:%s (%s Connection Manager)\n", PQhost(conn), PQport(conn),
		   PQcmSocket(conn) >= 0 ? "through" : "without");

	for (i = 0; i < queries; i++)
	{
		PGresult   *res = PQexec(conn, "SELECT now(), pg_sleep(1)");

		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			printf("%s\n", PQgetvalue(res, 0, 0));
		else
			fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
		PQclear(res);

		if (PQstatus(conn) == CONNECTION_BAD)
		{
			/* the instance failed: conmgr names another one, if any */
			PQreset(conn);
			if (PQstatus(conn) != CONNECTION_OK)
			{
				fprintf(stderr, "reconnect failed: %s", PQerrorMessage(conn));
				break;
			}
			printf("reconnected to %s:%s\n", PQhost(conn), PQport(conn));
		}
	}
	PQfinish(conn);
	return 0;
}
