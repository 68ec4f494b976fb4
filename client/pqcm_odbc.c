/*-------------------------------------------------------------------------
 *
 * pqcm_odbc.c
 *	  SQLGetInfo(SQL_SERVER_NAME) for ODBC programs that reach an instance
 *	  through Connection Manager.
 *
 * An ODBC driver built on libpq (psqlODBC) answers SQL_SERVER_NAME from
 * its own copy of the data source's Server setting, which names conmgr's
 * host; the specification wants the chosen instance once the connection
 * is established.  The driver's answer cannot be changed from inside
 * libpq, so this file wraps the driver manager's entry points that the
 * program itself calls:
 *
 *	- SQLConnect, SQLDriverConnect and SQLBrowseConnect (and their A and W
 *	  forms) note, for the calling thread, which connection handle is being
 *	  connected; a connection that pqcm.c makes meanwhile remembers it;
 *	- SQLGetInfo (and its A and W forms) asks the driver manager as usual
 *	  and, for SQL_SERVER_NAME on a handle connected through Connection
 *	  Manager, answers with the instance's host instead, following the
 *	  rules of SQLGetInfo for character data (lengths in bytes, truncation
 *	  reported with SQL_SUCCESS_WITH_INFO).
 *
 * Every other call, and every connection that does not use Connection
 * Manager, goes to the driver manager unchanged.  The driver manager is
 * found by a function only it defines (SQLDrivers), first in the global
 * scope and then among the known driver managers already loaded, so that
 * a program that loads it privately (dlopen with RTLD_LOCAL, as Python
 * extension modules are) is served too.  Nothing here links the driver
 * manager; the ODBC types below are the ABI of sqltypes.h on Linux
 * (client/test/odbc_abi.c checks them against unixODBC's headers).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_odbc.c
 *
 *-------------------------------------------------------------------------
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "pqcm_int.h"
#include "pqcm_odbc.h"

/* The connection handle being connected by this thread, or NULL. */
static __thread void *odbc_connecting;

void *
pqcm_odbc_connecting(void)
{
	return odbc_connecting;
}

/* ---------------------------------------------------------------------
 * The driver manager
 * ---------------------------------------------------------------------
 */
static const char *const known_managers[] = {
	"libodbc.so.2", "libodbc.so.1", "libodbc.so", "libiodbc.so.2", "libiodbc.so"
};

pthread_mutex_t pqcm_odbc_lock = PTHREAD_MUTEX_INITIALIZER;
static void *dm_handle;
static int	dm_wchar_size = 2;	/* bytes per SQLWCHAR */

/* Find the driver manager; caller holds pqcm_odbc_lock. */
static bool
find_manager(void)
{
	void	   *sym = dlsym(RTLD_NEXT, "SQLDrivers");
	Dl_info		info;
	size_t		i;

	for (i = 0; sym == NULL && i < sizeof(known_managers) / sizeof(known_managers[0]); i++)
	{
		void	   *h = dlopen(known_managers[i], RTLD_LAZY | RTLD_NOLOAD);

		if (h)
		{
			sym = dlsym(h, "SQLDrivers");
			dlclose(h);
		}
	}
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return false;
	dm_handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	if (dm_handle == NULL)
		return false;
	/* iODBC's SQLWCHAR is wchar_t; unixODBC's is UTF-16 */
	if (strstr(info.dli_fname, "libiodbc") != NULL)
		dm_wchar_size = (int) sizeof(wchar_t);
	return true;
}

/*
 * The driver manager's function of that name, cached in *slot; NULL (with
 * a message, once) when no driver manager is loaded, which only a program
 * calling ODBC without linking it can cause.
 */
static void *
dm_function(const char *name, _Atomic(void *) *slot)
{
	void	   *fn = atomic_load(slot);
	static bool complained;

	if (fn)
		return fn;
	pthread_mutex_lock(&pqcm_odbc_lock);
	if (dm_handle != NULL || find_manager())
		fn = dlsym(dm_handle, name);
	if (fn == NULL && !complained)
	{
		fprintf(stderr, "libpqcm: %s: no ODBC driver manager defining it is loaded\n", name);
		complained = true;
	}
	pthread_mutex_unlock(&pqcm_odbc_lock);
	if (fn)
		atomic_store(slot, fn);
	return fn;
}

static int
wchar_size(void)
{
	int			n;

	pthread_mutex_lock(&pqcm_odbc_lock);
	n = dm_wchar_size;
	pthread_mutex_unlock(&pqcm_odbc_lock);
	return n;
}

/* ---------------------------------------------------------------------
 * Answers in the program's buffer
 * ---------------------------------------------------------------------
 */

/* Decode UTF-8 into code points; -1 when the text is not valid UTF-8. */
static int
utf8_decode(const char *s, uint32_t *out, int cap)
{
	const unsigned char *p = (const unsigned char *) s;
	int			n = 0;

	while (*p)
	{
		uint32_t	cp;
		int			more;

		if (*p < 0x80)
			cp = *p, more = 0;
		else if ((*p & 0xE0) == 0xC0)
			cp = *p & 0x1F, more = 1;
		else if ((*p & 0xF0) == 0xE0)
			cp = *p & 0x0F, more = 2;
		else if ((*p & 0xF8) == 0xF0)
			cp = *p & 0x07, more = 3;
		else
			return -1;
		p++;
		while (more-- > 0)
		{
			if ((*p & 0xC0) != 0x80)
				return -1;
			cp = (cp << 6) | (*p++ & 0x3F);
		}
		if (cp > 0x10FFFF || n >= cap)
			return -1;
		out[n++] = cp;
	}
	return n;
}

/* Store one code unit of size bytes at dst. */
static void
put_unit(unsigned char *dst, uint32_t unit, int size)
{
	if (size == 1)
		dst[0] = (unsigned char) unit;
	else if (size == 2)
	{
		uint16_t	u = (uint16_t) unit;

		memcpy(dst, &u, 2);
	}
	else
		memcpy(dst, &unit, 4);
}

/*
 * Encode text as units of size bytes (1: the bytes as they are; 2: UTF-16;
 * 4: UTF-32) into units[]; returns how many, with boundary[] telling
 * whether a unit starts a character, or -1 when it cannot be encoded.
 */
static int
encode_units(const char *text, int size, uint32_t *units, bool *boundary, int cap)
{
	uint32_t	cps[PQCM_ODBC_MAX_NAME];
	int			ncp;
	int			n = 0;
	int			i;

	if (size == 1)
	{
		for (i = 0; i < cap && text[i]; i++)
		{
			units[i] = (unsigned char) text[i];
			/* a UTF-8 continuation byte does not start a character */
			boundary[i] = ((unsigned char) text[i] & 0xC0) != 0x80;
		}
		return text[i] ? -1 : i;
	}
	ncp = utf8_decode(text, cps, PQCM_ODBC_MAX_NAME);
	if (ncp < 0)
		return -1;
	for (i = 0; i < ncp; i++)
	{
		if (size == 2 && cps[i] >= 0x10000)
		{
			if (n + 2 > cap)
				return -1;
			units[n] = 0xD800 | ((cps[i] - 0x10000) >> 10);
			boundary[n++] = true;
			units[n] = 0xDC00 | ((cps[i] - 0x10000) & 0x3FF);
			boundary[n++] = false;
		}
		else
		{
			if (n + 1 > cap)
				return -1;
			units[n] = cps[i];
			boundary[n++] = true;
		}
	}
	return n;
}

/*
 * Answer a character-valued SQLGetInfo with text, in units of size bytes:
 * *len gets the whole length in bytes; the buffer gets as many whole
 * characters as fit with a terminator.  Returns the SQLRETURN, or
 * keep_rc when the text cannot be encoded (the driver's answer stays).
 */
static PqcmSqlReturn
answer_text(const char *text, int size, void *value, PqcmSqlSmallint buflen,
			PqcmSqlSmallint *len, PqcmSqlReturn keep_rc)
{
	uint32_t	units[2 * PQCM_ODBC_MAX_NAME];
	bool		boundary[2 * PQCM_ODBC_MAX_NAME];
	int			n = encode_units(text, size, units, boundary, 2 * PQCM_ODBC_MAX_NAME);
	int			fit;
	int			i;

	if (n < 0)
		return keep_rc;
	if (len)
		*len = (PqcmSqlSmallint) (n * size);
	if (value == NULL || buflen <= 0)
		return PQCM_SQL_SUCCESS;
	fit = buflen / size - 1;	/* room for the terminator */
	if (fit < 0)
		return PQCM_SQL_SUCCESS_WITH_INFO;
	if (fit > n)
		fit = n;
	while (fit < n && fit > 0 && !boundary[fit])
		fit--;					/* never split a character */
	for (i = 0; i < fit; i++)
		put_unit((unsigned char *) value + i * size, units[i], size);
	put_unit((unsigned char *) value + fit * size, 0, size);
	return fit < n ? PQCM_SQL_SUCCESS_WITH_INFO : PQCM_SQL_SUCCESS;
}

typedef PqcmSqlReturn (*GetInfoFn) (void *, PqcmSqlUSmallint, void *,
									PqcmSqlSmallint, PqcmSqlSmallint *);

static PqcmSqlReturn
get_info(const char *name, _Atomic(void *) *slot, int size, void *dbc,
		 PqcmSqlUSmallint type, void *value, PqcmSqlSmallint buflen,
		 PqcmSqlSmallint *len)
{
	GetInfoFn	fn = (GetInfoFn) dm_function(name, slot);
	PqcmSqlReturn rc;
	char		host[PQCM_ODBC_MAX_NAME];

	if (fn == NULL)
		return PQCM_SQL_ERROR;
	rc = fn(dbc, type, value, buflen, len);
	if (type != PQCM_SQL_SERVER_NAME ||
		(rc != PQCM_SQL_SUCCESS && rc != PQCM_SQL_SUCCESS_WITH_INFO) ||
		!pqcm_dbc_instance_host(dbc, host, sizeof(host)))
		return rc;
	return answer_text(host, size, value, buflen, len, rc);
}

/* ---------------------------------------------------------------------
 * The wrapped entry points
 * ---------------------------------------------------------------------
 */
#define GETINFO(fname, size) \
PQCM_ODBC_GETINFO(fname) \
{ \
	static _Atomic(void *) slot; \
	return get_info(#fname, &slot, (size), dbc, type, value, buflen, len); \
}

GETINFO(SQLGetInfo, 1)
GETINFO(SQLGetInfoA, 1)
GETINFO(SQLGetInfoW, wchar_size())

typedef PqcmSqlReturn (*ConnectFn) (void *, void *, PqcmSqlSmallint, void *,
									PqcmSqlSmallint, void *, PqcmSqlSmallint);
typedef PqcmSqlReturn (*DriverConnectFn) (void *, void *, void *, PqcmSqlSmallint,
										  void *, PqcmSqlSmallint,
										  PqcmSqlSmallint *, PqcmSqlUSmallint);
typedef PqcmSqlReturn (*BrowseConnectFn) (void *, void *, PqcmSqlSmallint, void *,
										  PqcmSqlSmallint, PqcmSqlSmallint *);

/*
 * Call the driver manager's connecting function with this thread's
 * connecting handle set to dbc (nested calls, such as SQLConnectA calling
 * SQLConnect, see the same handle).
 */
#define CONNECTING(ftype, fname, dbc, ...) \
	do { \
		static _Atomic(void *) slot; \
		ftype		fn = (ftype) dm_function(#fname, &slot); \
		void	   *saved = odbc_connecting; \
		PqcmSqlReturn rc; \
		if (fn == NULL) \
			return PQCM_SQL_ERROR; \
		odbc_connecting = (dbc); \
		rc = fn((dbc), __VA_ARGS__); \
		odbc_connecting = saved; \
		return rc; \
	} while (0)

#define CONNECT(fname, ch) \
PQCM_ODBC_CONNECT(fname, ch) \
{ \
	CONNECTING(ConnectFn, fname, dbc, dsn, dsnlen, uid, uidlen, auth, authlen); \
}

#define DRIVER_CONNECT(fname, ch) \
PQCM_ODBC_DRIVER_CONNECT(fname, ch) \
{ \
	CONNECTING(DriverConnectFn, fname, dbc, hwnd, in, inlen, out, outmax, outlen, \
			   completion); \
}

#define BROWSE_CONNECT(fname, ch) \
PQCM_ODBC_BROWSE_CONNECT(fname, ch) \
{ \
	CONNECTING(BrowseConnectFn, fname, dbc, in, inlen, out, outmax, outlen); \
}

CONNECT(SQLConnect, PqcmSqlChar)
CONNECT(SQLConnectA, PqcmSqlChar)
CONNECT(SQLConnectW, PqcmSqlWChar)
DRIVER_CONNECT(SQLDriverConnect, PqcmSqlChar)
DRIVER_CONNECT(SQLDriverConnectA, PqcmSqlChar)
DRIVER_CONNECT(SQLDriverConnectW, PqcmSqlWChar)
BROWSE_CONNECT(SQLBrowseConnect, PqcmSqlChar)
BROWSE_CONNECT(SQLBrowseConnectA, PqcmSqlChar)
BROWSE_CONNECT(SQLBrowseConnectW, PqcmSqlWChar)
