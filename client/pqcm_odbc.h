/*-------------------------------------------------------------------------
 *
 * pqcm_odbc.h
 *	  The ODBC driver-manager entry points that libpqcm wraps (pqcm_odbc.c),
 *	  with the few ODBC types and constants they need.
 *
 * The types are those of unixODBC's and iODBC's sqltypes.h on Linux
 * (SQLRETURN and SQLSMALLINT are short, SQLUSMALLINT unsigned short,
 * handles and strings pointers); client/test/odbc_abi.c checks them
 * against the installed headers.  Not installed: programs use sql.h.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_odbc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLIENT_PQCM_ODBC_H
#define CLIENT_PQCM_ODBC_H

#include "cm_protocol.h"

typedef short PqcmSqlReturn;
typedef short PqcmSqlSmallint;
typedef unsigned short PqcmSqlUSmallint;
typedef unsigned char PqcmSqlChar;
typedef unsigned short PqcmSqlWChar;	/* unixODBC's; only passed through */

#define PQCM_SQL_SUCCESS			0
#define PQCM_SQL_SUCCESS_WITH_INFO	1
#define PQCM_SQL_ERROR				(-1)
#define PQCM_SQL_SERVER_NAME		13

/* The longest instance host answered (conmgr sends at most this much). */
#define PQCM_ODBC_MAX_NAME			(CM_PROTO_MAX_STRING + 1)

/* Declarations, also used to define the wrappers in pqcm_odbc.c */
#define PQCM_ODBC_GETINFO(fname) \
	PqcmSqlReturn fname(void *dbc, PqcmSqlUSmallint type, void *value, \
						PqcmSqlSmallint buflen, PqcmSqlSmallint *len)
#define PQCM_ODBC_CONNECT(fname, ch) \
	PqcmSqlReturn fname(void *dbc, ch *dsn, PqcmSqlSmallint dsnlen, \
						ch *uid, PqcmSqlSmallint uidlen, ch *auth, \
						PqcmSqlSmallint authlen)
#define PQCM_ODBC_DRIVER_CONNECT(fname, ch) \
	PqcmSqlReturn fname(void *dbc, void *hwnd, ch *in, \
						PqcmSqlSmallint inlen, ch *out, \
						PqcmSqlSmallint outmax, PqcmSqlSmallint *outlen, \
						PqcmSqlUSmallint completion)
#define PQCM_ODBC_BROWSE_CONNECT(fname, ch) \
	PqcmSqlReturn fname(void *dbc, ch *in, PqcmSqlSmallint inlen, \
						ch *out, PqcmSqlSmallint outmax, \
						PqcmSqlSmallint *outlen)

extern PQCM_ODBC_GETINFO(SQLGetInfo);
extern PQCM_ODBC_GETINFO(SQLGetInfoA);
extern PQCM_ODBC_GETINFO(SQLGetInfoW);
extern PQCM_ODBC_CONNECT(SQLConnect, PqcmSqlChar);
extern PQCM_ODBC_CONNECT(SQLConnectA, PqcmSqlChar);
extern PQCM_ODBC_CONNECT(SQLConnectW, PqcmSqlWChar);
extern PQCM_ODBC_DRIVER_CONNECT(SQLDriverConnect, PqcmSqlChar);
extern PQCM_ODBC_DRIVER_CONNECT(SQLDriverConnectA, PqcmSqlChar);
extern PQCM_ODBC_DRIVER_CONNECT(SQLDriverConnectW, PqcmSqlWChar);
extern PQCM_ODBC_BROWSE_CONNECT(SQLBrowseConnect, PqcmSqlChar);
extern PQCM_ODBC_BROWSE_CONNECT(SQLBrowseConnectA, PqcmSqlChar);
extern PQCM_ODBC_BROWSE_CONNECT(SQLBrowseConnectW, PqcmSqlWChar);

#endif							/* CLIENT_PQCM_ODBC_H */
