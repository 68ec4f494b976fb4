/*-------------------------------------------------------------------------
 *
 * odbc_test.c
 *	  An ordinary ODBC program (unixODBC + psqlODBC), built without
 *	  libpqcm; the TAP test runs it with LD_PRELOAD=libpqcm.so.1.  Connects
 *	  with SQLDriverConnect, prints SQLGetInfo(SQL_SERVER_NAME) and the
 *	  port of the server that runs its session.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/test/odbc_test.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include <sql.h>
#include <sqlext.h>

static void
print_diag(SQLSMALLINT type, SQLHANDLE h)
{
	SQLCHAR		state[6];
	SQLCHAR		msg[1024];
	SQLINTEGER	native;
	SQLSMALLINT len;

	if (SQLGetDiagRec(type, h, 1, state, &native, msg, sizeof(msg), &len) == SQL_SUCCESS)
		fprintf(stderr, "error: %s: %s\n", state, msg);
}

int
main(int argc, char **argv)
{
	SQLHENV		env;
	SQLHDBC		dbc;
	SQLHSTMT	stmt;
	SQLCHAR		out[1024];
	SQLSMALLINT outlen;
	char		name[256];
	SQLSMALLINT namelen;
	SQLINTEGER	port = 0;
	SQLLEN		ind;

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s CONNECTION-STRING\n", argv[0]);
		return 2;
	}
	SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env);
	SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
	SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc);
	if (!SQL_SUCCEEDED(SQLDriverConnect(dbc, NULL, (SQLCHAR *) argv[1], SQL_NTS,
										out, sizeof(out), &outlen,
										SQL_DRIVER_NOPROMPT)))
	{
		print_diag(SQL_HANDLE_DBC, dbc);
		return 1;
	}
	if (SQL_SUCCEEDED(SQLGetInfo(dbc, SQL_SERVER_NAME, name, sizeof(name), &namelen)))
		printf("server_name=%s\n", name);
	SQLAllocHandle(SQL_HANDLE_STMT, dbc, &stmt);
	if (!SQL_SUCCEEDED(SQLExecDirect(stmt, (SQLCHAR *) "SELECT inet_server_port()", SQL_NTS)) ||
		!SQL_SUCCEEDED(SQLFetch(stmt)) ||
		!SQL_SUCCEEDED(SQLGetData(stmt, 1, SQL_C_SLONG, &port, 0, &ind)))
	{
		print_diag(SQL_HANDLE_STMT, stmt);
		return 1;
	}
	printf("port=%d\n", (int) port);
	SQLFreeHandle(SQL_HANDLE_STMT, stmt);
	SQLDisconnect(dbc);
	SQLFreeHandle(SQL_HANDLE_DBC, dbc);
	SQLFreeHandle(SQL_HANDLE_ENV, env);
	return 0;
}
