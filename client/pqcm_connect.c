/*-------------------------------------------------------------------------
 *
 * pqcm_connect.c
 *	  Connecting synchronously (PQconnectdb, PQconnectdbParams,
 *	  PQsetdbLogin) and pinging (PQping, PQpingParams) through conmgr, and
 *	  what every connecting entry point shares: the front that reads
 *	  PGCONMGR and prepares the request, and the making of an established
 *	  connection known.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_connect.c
 *
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

/* Call the real PQconnectdbParams on an option list. */
static PGconn *
real_connect(const PqcmOptions *o)
{
	PGconn	   *conn;

	pqcm_inside++;
	conn = pqcm_real.connectdbParams((const char *const *) o->kw,
									 (const char *const *) o->val, 0);
	pqcm_inside--;
	return conn;
}

/* A connection object in CONNECTION_BAD state, made without network. */
PGconn *
pqcm_make_bad_conn(void)
{
	static const char *const kw[] = {"sslmode", NULL};
	static const char *const val[] = {"invalid", NULL};
	PGconn	   *conn;

	pqcm_inside++;
	conn = pqcm_real.connectdbParams(kw, val, 0);
	pqcm_inside--;
	return conn;
}

/*
 * Make an established connection known: keep the conmgr socket, duplicate
 * the SQL socket for the watcher, register the backend with conmgr.
 */
void
pqcm_establish(PqcmConn *c, PqcmFd cm)
{
	int			sfd;
	bool		ours;

	pthread_mutex_lock(&pqcm_lock);
	c->cm = cm;
	c->state = PQCM_ESTABLISHED;
	c->failed = false;
	c->partial_since = 0;
	sfd = pqcm_real.socket(c->conn);
	c->sql_src = sfd;
	pqcm_fd_adopt(&c->sql, sfd >= 0 ? fcntl(sfd, F_DUPFD_CLOEXEC, 0) : -1);
	ours = pqcm_cm_ours_locked(c);
	pthread_mutex_unlock(&pqcm_lock);
	pqcm_hook_notices(c);
	if (ours)
	{
		pqcm_inside++;
		(void) pqcm_send_register(cm.fd, c->conn);
		pqcm_inside--;
	}
	pqcm_watcher_start();
	pqcm_watcher_poke();
}

/* The message for a connection that failed: every entry's reason. */
static PGconn *
connect_failed(PGconn *last_bad, char *errors, PqcmRequest *r, PqcmMode mode)
{
	PqcmConn   *c;

	if (last_bad == NULL)
		last_bad = pqcm_make_bad_conn();
	c = pqcm_track_new(last_bad);
	c->state = PQCM_FAILED_CONNECT;
	c->errmsg = errors ? errors : pqcm_strdup("could not connect\n");
	c->req = *r;
	c->walk.mode = mode;
	memset(r, 0, sizeof(*r));
	return last_bad;
}

/*
 * Connect synchronously: walk the host list (pqcm_walk.c), waiting for
 * each probe, and make each attempt with PQconnectdbParams.  Takes
 * ownership of *r.
 */
static PGconn *
connect_sync(PqcmRequest *r, PqcmMode mode)
{
	PqcmWalk	w;
	PqcmWalkStep step;
	PGconn	   *last_bad = NULL;
	char	   *errors;

	pqcm_walk_init(&w, r, mode, NULL);
	while ((step = pqcm_walk_step_blocking(&w)) != PQCM_WALK_END)
	{
		PGconn	   *conn;

		if (step != PQCM_WALK_CONNECT)
			continue;
		conn = real_connect(&w.opts);
		if (pqcm_real.status(conn) == CONNECTION_OK)
		{
			PqcmFd		cm;

			pqcm_fd_adopt(&cm, pqcm_walk_take_cm_fd(&w));
			pqcm_walk_free(&w);
			if (cm.fd >= 0)
			{
				PqcmConn   *c = pqcm_track_new(conn);

				c->req = *r;
				c->walk.mode = mode;
				memset(r, 0, sizeof(*r));
				pqcm_establish(c, cm);
			}
			else
				pqcm_request_free(r);	/* a plain server: libpq's alone */
			if (last_bad)
				pqcm_real.finish(last_bad);
			return conn;
		}
		pqcm_walk_failed(&w, pqcm_real.errorMessage(conn));
		if (last_bad)
			pqcm_real.finish(last_bad);
		last_bad = conn;
	}
	errors = w.errors;
	w.errors = NULL;
	pqcm_walk_free(&w);
	return connect_failed(last_bad, errors, r, mode);
}

/*
 * Common front of every connecting entry point: reads PGCONMGR and prepares
 * the request.  Returns true when Connection Manager takes the request
 * (*mode set).  Otherwise *failed is the failed connection to return when
 * PGCONMGR is invalid, or NULL when the request is libpq's alone (the
 * caller then calls the real function).
 */
bool
pqcm_request_front(PqcmRequest *r, PqcmMode *mode, PGconn **failed)
{
	const char *bad;

	*failed = NULL;
	*mode = pqcm_mode(&bad);
	if (bad)
	{
		char	   *msg = NULL;

		pqcm_opts_free(&r->opts);
		pqcm_appendf(&msg, "invalid value \"%s\" for environment variable PGCONMGR: "
					 "expected \"auto\", \"on\" or \"off\"\n", bad);
		*failed = connect_failed(NULL, msg, r, PQCM_MODE_OFF);
		return false;
	}
	if (*mode == PQCM_MODE_OFF || !pqcm_request_init(r, *mode) ||
		!pqcm_exchange_usable())
	{
		pqcm_request_free(r);
		return false;
	}
	return true;
}

/*
 * Front of the synchronous entry points.  Returns NULL when the request is
 * libpq's alone.
 */
static PGconn *
connect_front(PqcmRequest *r)
{
	PqcmMode	mode;
	PGconn	   *failed;

	if (!pqcm_request_front(r, &mode, &failed))
		return failed;
	return connect_sync(r, mode);
}

PGconn *
PQconnectdbParams(const char *const *keywords, const char *const *values,
				  int expand_dbname)
{
	PqcmRequest r;
	PGconn	   *conn;

	REAL();
	if (pqcm_inside)
		return pqcm_real.connectdbParams(keywords, values, expand_dbname);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.connectdbParams(keywords, values, expand_dbname);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = pqcm_real.connectdbParams(keywords, values, expand_dbname);
		pqcm_inside--;
	}
	return conn;
}

PGconn *
PQconnectdb(const char *conninfo)
{
	PqcmRequest r;
	PGconn	   *conn;

	REAL();
	if (pqcm_inside)
		return pqcm_real.connectdb(conninfo);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_conninfo(&r.opts, conninfo))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.connectdb(conninfo);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = pqcm_real.connectdb(conninfo);
		pqcm_inside--;
	}
	return conn;
}

PGconn *
PQsetdbLogin(const char *pghost, const char *pgport, const char *pgoptions,
			 const char *pgtty, const char *dbName, const char *login,
			 const char *pwd)
{
	PqcmRequest r;
	PGconn	   *conn;

	REAL();
	if (pqcm_inside)
		return pqcm_real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_login(&r.opts, pghost, pgport, pgoptions, pgtty,
							  dbName, login, pwd))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = pqcm_real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
		pqcm_inside--;
	}
	return conn;
}

/*
 * PQping/PQpingParams: an entry that is a conmgr is answered by pinging the
 * instance it names (PQPING_NO_RESPONSE when it names none); other entries
 * are pinged by libpq, in written order, until one answers PQPING_OK.
 */
static PGPing
ping_sync(PqcmRequest *r, PqcmMode mode)
{
	PGPing		result = PQPING_NO_RESPONSE;
	PqcmWalk	w;
	PqcmWalkStep step;

	pqcm_walk_init(&w, r, mode, NULL);
	while ((step = pqcm_walk_step_blocking(&w)) != PQCM_WALK_END)
	{
		int			cm_fd;

		if (step != PQCM_WALK_CONNECT)
		{
			result = PQPING_NO_RESPONSE;	/* a conmgr without instance */
			continue;
		}
		cm_fd = pqcm_walk_take_cm_fd(&w);
		if (cm_fd >= 0)
			close(cm_fd);		/* nothing to register */
		pqcm_inside++;
		result = pqcm_real.pingParams((const char *const *) w.opts.kw,
									  (const char *const *) w.opts.val, 0);
		pqcm_inside--;
		if (result == PQPING_OK)
			break;
		pqcm_walk_failed(&w, NULL);
	}
	pqcm_walk_free(&w);
	pqcm_request_free(r);
	return result;
}

/* Common front of the ping functions; false: libpq's business alone. */
static bool
ping_front(PqcmRequest *r, PGPing *result)
{
	const char *bad;
	PqcmMode	mode = pqcm_mode(&bad);

	if (bad)
	{
		pqcm_request_free(r);
		*result = PQPING_NO_ATTEMPT;
		return true;
	}
	if (mode == PQCM_MODE_OFF || !pqcm_request_init(r, mode) ||
		!pqcm_exchange_usable())
	{
		pqcm_request_free(r);
		return false;
	}
	*result = ping_sync(r, mode);
	return true;
}

PGPing
PQpingParams(const char *const *keywords, const char *const *values,
			 int expand_dbname)
{
	PqcmRequest r;
	PGPing		result;

	REAL();
	memset(&r, 0, sizeof(r));
	if (pqcm_inside == 0 &&
		pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname) &&
		ping_front(&r, &result))
		return result;
	pqcm_request_free(&r);
	pqcm_inside++;
	result = pqcm_real.pingParams(keywords, values, expand_dbname);
	pqcm_inside--;
	return result;
}

PGPing
PQping(const char *conninfo)
{
	PqcmRequest r;
	PGPing		result;

	REAL();
	memset(&r, 0, sizeof(r));
	if (pqcm_inside == 0 && pqcm_opts_from_conninfo(&r.opts, conninfo) &&
		ping_front(&r, &result))
		return result;
	pqcm_request_free(&r);
	pqcm_inside++;
	result = pqcm_real.ping(conninfo);
	pqcm_inside--;
	return result;
}
