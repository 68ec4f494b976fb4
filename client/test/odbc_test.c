/*-------------------------------------------------------------------------
 *
 * odbc_test.c
 *	  An ordinary ODBC program (unixODBC + psqlODBC), built without
 *	  libpqcm; the TAP test runs it with LD_PRELOAD=libpqcm.so.1.
 *
 *	odbc_test CONNECTION-STRING          (SQLDriverConnect)
 *	odbc_test --dsn DSN USER             (SQLConnect)
 *
 * Prints what SQLGetInfo(SQL_SERVER_NAME) answers, in its ANSI and wide
 * forms, with a buffer, without one (length only) and with a buffer too
 * small, then the port of the server that runs its session:
 *
 *	server_name=NAME rc=N len=BYTES
 *	server_name_w=NAME rc=N len=BYTES
 *	server_name_len rc=N len=BYTES
 *	server_name_short=NAME rc=N len=BYTES        (5-byte buffer)
 *	server_name_w_short=NAME rc=N len=BYTES      (5-character buffer)
 *	port=PORT
 *
 * Built with -DODBC_TEST_PLUGIN it is a shared object whose
 * odbc_test_main() does the same, for odbc_dlopen.c, which loads it the
 * way Python loads an extension module (RTLD_LOCAL).
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

#ifdef ODBC_TEST_PLUGIN
#define main odbc_test_main
extern int	odbc_test_main(int argc, char **argv);
#endif

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

/* Print a wide answer of len bytes (ASCII expected; others as \uXXXX). */
static void
print_wide(const char *label, const SQLWCHAR *w, SQLRETURN rc, SQLSMALLINT len)
{
	int			i;

	printf("%s=", label);
	for (i = 0; w[i]; i++)
		if (w[i] < 0x80)
			putchar((int) w[i]);
		else
			printf("\\u%04X", (unsigned) w[i]);
	printf(" rc=%d len=%d\n", (int) rc, (int) len);
}

static void
server_name(SQLHDBC dbc)
{
	char		name[256];
	SQLWCHAR	wname[256];
	SQLSMALLINT len;
	SQLRETURN	rc;

	len = -1;
	memset(name, 0, sizeof(name));
	rc = SQLGetInfo(dbc, SQL_SERVER_NAME, name, sizeof(name), &len);
	printf("server_name=%s rc=%d len=%d\n", name, (int) rc, (int) len);

	len = -1;
	memset(wname, 0, sizeof(wname));
	rc = SQLGetInfoW(dbc, SQL_SERVER_NAME, wname, sizeof(wname), &len);
	print_wide("server_name_w", wname, rc, len);

	len = -1;
	rc = SQLGetInfo(dbc, SQL_SERVER_NAME, NULL, 0, &len);
	printf("server_name_len rc=%d len=%d\n", (int) rc, (int) len);

	len = -1;
	memset(name, 'x', sizeof(name));
	rc = SQLGetInfo(dbc, SQL_SERVER_NAME, name, 5, &len);
	name[sizeof(name) - 1] = '\0';
	printf("server_name_short=%.5s rc=%d len=%d\n", name, (int) rc, (int) len);

	len = -1;
	memset(wname, 0, sizeof(wname));
	rc = SQLGetInfoW(dbc, SQL_SERVER_NAME, wname, 5 * sizeof(SQLWCHAR), &len);
	print_wide("server_name_w_short", wname, rc, len);
}

int
main(int argc, char **argv)
{
	SQLHENV		env;
	SQLHDBC		dbc;
	SQLHSTMT	stmt;
	SQLCHAR		out[1024];
	SQLSMALLINT outlen;
	SQLINTEGER	port = 0;
	SQLLEN		ind;
	SQLRETURN	rc;

	if (argc < 2 || (strcmp(argv[1], "--dsn") == 0 && argc < 4))
	{
		fprintf(stderr, "usage: %s CONNECTION-STRING | --dsn DSN USER\n", argv[0]);
		return 2;
	}
	SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env);
	SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
	SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc);
	if (strcmp(argv[1], "--dsn") == 0)
		rc = SQLConnect(dbc, (SQLCHAR *) argv[2], SQL_NTS, (SQLCHAR *) argv[3], SQL_NTS,
						(SQLCHAR *) "", SQL_NTS);
	else
		rc = SQLDriverConnect(dbc, NULL, (SQLCHAR *) argv[1], SQL_NTS,
							  out, sizeof(out), &outlen, SQL_DRIVER_NOPROMPT);
	if (!SQL_SUCCEEDED(rc))
	{
		print_diag(SQL_HANDLE_DBC, dbc);
		return 1;
	}
	server_name(dbc);
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
	fflush(stdout);
	return 0;
}
