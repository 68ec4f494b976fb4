/*-------------------------------------------------------------------------
 *
 * pqcm.c
 *	  libpqcm: Connection Manager support for every libpq program.
 *
 * The library defines libpq's connection entry points (PQconnectdb,
 * PQconnectStart, PQconnectPoll, PQreset, PQfinish, PQstatus, ...) and
 * calls the real ones through dlsym(RTLD_NEXT).  Linked ahead of libpq or
 * preloaded with LD_PRELOAD, it therefore sees every connection a program
 * makes.  A connection whose host list names no loopback TCP entry is
 * handed to libpq untouched; for the others each entry is probed in the
 * written order (stage 1, pqcm_probe.c), and when an entry is a conmgr
 * the connection goes straight to the instance it names (stage 2).
 *
 * Connections that use Connection Manager are kept in a table keyed by
 * their PGconn pointer, with the socket to conmgr.  When conmgr reports a
 * failure (or closes that socket), the SQL socket is shut down so that
 * libpq itself reports the loss on the pending or next call.  A watcher
 * thread does this for programs that never look at PQcmSocket().
 *
 * For ODBC programs, pqcm_odbc.c wraps a few driver-manager functions so
 * that SQLGetInfo(SQL_SERVER_NAME) names the instance; a tracked connection
 * remembers the ODBC handle being connected when it was made.
 *
 * libpq calls some of its own exported functions through the PLT (PQexec
 * calls PQgetResult, PQconnectdb calls PQconnectStart and PQconnectPoll),
 * so those calls land here too.  While this library itself calls into
 * libpq, a per-thread depth counter makes every wrapper a plain
 * pass-through.
 *
 * The code is split by what it does: pqcm_table.c keeps the table of
 * tracked connections, pqcm_walk.c walks a request's host list for every
 * connecting entry point, pqcm_connect.c connects synchronously (and
 * pings) and holds the front they share, pqcm_async.c makes
 * asynchronous connections and resets, pqcm_io.c wraps the calls that look
 * at an established connection and builds its error messages,
 * pqcm_watcher.c runs the watcher thread; this file finds libpq's
 * functions and handles fork().
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm.c
 *
 *-------------------------------------------------------------------------
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "libpq-fe.h"

#include "cm_version.h"
#include "libpq-cm.h"
#include "pqcm_int.h"

/* the public header names the release of common/cm_version.h */
_Static_assert(PQCM_VERSION_NUM == CM_VERSION_NUM,
			   "PQCM_VERSION_NUM in libpq-cm.h differs from CM_VERSION_NUM in cm_version.h");

PqcmReal	pqcm_real;
pthread_once_t pqcm_real_once = PTHREAD_ONCE_INIT;

__thread int pqcm_inside;
__thread bool pqcm_hold_poll;

static void
die_missing(const char *name)
{
	fprintf(stderr, "libpqcm: libpq function %s not found: %s\n", name, dlerror());
	abort();
}

#define LOAD(field, name) \
	do { \
		*(void **) (&pqcm_real.field) = dlsym(RTLD_NEXT, name); \
		if (pqcm_real.field == NULL) \
			die_missing(name); \
	} while (0)

void
pqcm_load_real(void)
{
	LOAD(connectdb, "PQconnectdb");
	LOAD(connectdbParams, "PQconnectdbParams");
	LOAD(setdbLogin, "PQsetdbLogin");
	LOAD(connectStart, "PQconnectStart");
	LOAD(connectStartParams, "PQconnectStartParams");
	LOAD(connectPoll, "PQconnectPoll");
	LOAD(reset, "PQreset");
	LOAD(resetStart, "PQresetStart");
	LOAD(resetPoll, "PQresetPoll");
	LOAD(finish, "PQfinish");
	LOAD(status, "PQstatus");
	LOAD(socket, "PQsocket");
	LOAD(host, "PQhost");
	LOAD(hostaddr, "PQhostaddr");
	LOAD(port, "PQport");
	LOAD(pass, "PQpass");
	LOAD(errorMessage, "PQerrorMessage");
	LOAD(consumeInput, "PQconsumeInput");
	LOAD(getResult, "PQgetResult");
	LOAD(isBusy, "PQisBusy");
	LOAD(ping, "PQping");
	LOAD(pingParams, "PQpingParams");
	LOAD(registerEventProc, "PQregisterEventProc");
	LOAD(setNoticeReceiver, "PQsetNoticeReceiver");
	LOAD(setNoticeProcessor, "PQsetNoticeProcessor");
}

/*
 * fork().  Every mutex of the library is taken before fork() and released
 * after it in both processes: one held by another thread at that moment
 * would otherwise stay locked forever in the child, whose first use of it
 * would hang.  No code holds two of them at once, so taking them in this
 * order cannot deadlock.  The child has no watcher (it starts its own when
 * it connects), and the connections it inherits are the parent's.
 */
static pthread_mutex_t *const fork_locks[] = {
	&pqcm_odbc_lock,			/* pqcm_odbc.c: the driver manager */
	&pqcm_plain_lock,			/* pqcm_probe.c: plain servers seen */
	&pqcm_exchange_lock,		/* pqcm_async.c: the check of libpq */
	&pqcm_lock					/* pqcm_table.c: tracked connections */
};

#define NFORK_LOCKS (sizeof(fork_locks) / sizeof(fork_locks[0]))

static void
atfork_prepare(void)
{
	size_t		i;

	for (i = 0; i < NFORK_LOCKS; i++)
		pthread_mutex_lock(fork_locks[i]);
}

static void
atfork_parent(void)
{
	size_t		i;

	for (i = NFORK_LOCKS; i > 0; i--)
		pthread_mutex_unlock(fork_locks[i - 1]);
}

static void
atfork_child(void)
{
	size_t		i;

	pqcm_watcher_atfork_child();
	pqcm_table_atfork_child();
	for (i = NFORK_LOCKS; i > 0; i--)
		pthread_mutex_unlock(fork_locks[i - 1]);
}

__attribute__((constructor))
static void
pqcm_init(void)
{
	REAL();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int
PQcmLibVersion(void)
{
	return CM_VERSION_NUM;
}
