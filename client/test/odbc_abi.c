/*-------------------------------------------------------------------------
 *
 * odbc_abi.c
 *	  Compiled, never run: checks that the ODBC types and prototypes that
 *	  libpqcm declares for itself (pqcm_odbc.h) agree with the driver
 *	  manager's headers.  A disagreement is a compile error.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/test/odbc_abi.c
 *
 *-------------------------------------------------------------------------
 */
#include <sql.h>
#include <sqlext.h>
#include <sqlucode.h>

#include "pqcm_odbc.h"

_Static_assert(sizeof(SQLRETURN) == sizeof(PqcmSqlReturn), "SQLRETURN");
_Static_assert((SQLRETURN) -1 < 0, "SQLRETURN is signed");
_Static_assert(sizeof(SQLSMALLINT) == sizeof(PqcmSqlSmallint), "SQLSMALLINT");
_Static_assert(sizeof(SQLUSMALLINT) == sizeof(PqcmSqlUSmallint), "SQLUSMALLINT");
_Static_assert(sizeof(SQLHDBC) == sizeof(void *), "SQLHDBC");
_Static_assert(sizeof(SQLHWND) == sizeof(void *), "SQLHWND");
_Static_assert(sizeof(SQLWCHAR) == 2, "SQLWCHAR of unixODBC");
_Static_assert(SQL_SUCCESS == PQCM_SQL_SUCCESS, "SQL_SUCCESS");
_Static_assert(SQL_SUCCESS_WITH_INFO == PQCM_SQL_SUCCESS_WITH_INFO, "SQL_SUCCESS_WITH_INFO");
_Static_assert(SQL_ERROR == PQCM_SQL_ERROR, "SQL_ERROR");
_Static_assert(SQL_SERVER_NAME == PQCM_SQL_SERVER_NAME, "SQL_SERVER_NAME");

/*
 * pqcm_odbc.h declares every wrapped function again after sql.h did: the
 * compiler has compared the two declarations of each.
 */
