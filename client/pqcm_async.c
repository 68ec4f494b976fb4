/*-------------------------------------------------------------------------
 *
 * pqcm_async.c
 *	  Asynchronous connections (PQconnectStart, PQconnectStartParams,
 *	  PQconnectPoll) and resets (PQreset, PQresetStart, PQresetPoll)
 *	  through conmgr.
 *
 * PQconnectStart() must return the PGconn the application keeps, before
 * stage 1 has named the instance.  We return a connection object made by
 * libpq itself but held before its first PQconnectPoll() (libpq calls
 * PQconnectPoll through the PLT, so the call lands in our wrapper, which
 * does nothing while pqcm_hold_poll is set).  When stage 1 is over, libpq
 * makes a second, equally fresh object with the instance's options, and
 * the contents of the two objects are exchanged: the application's
 * pointer now designates a connection to the instance, which libpq then
 * drives as usual.  Both objects are fresh (no socket, no TLS state) at
 * that moment, so nothing points into either; PQresetStart() on a tracked
 * connection first closes it the same way (libpq's PQresetStart, held).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_async.c
 *
 *-------------------------------------------------------------------------
 */
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"
#include "libpq-events.h"

#include "pqcm_int.h"

/* Make a held connection object: libpq's, before its first poll. */
static PGconn *
make_held(const PqcmOptions *o)
{
	PGconn	   *conn;

	pqcm_inside++;
	pqcm_hold_poll = true;
	conn = pqcm_real.connectStartParams((const char *const *) o->kw,
										(const char *const *) o->val, 0);
	pqcm_hold_poll = false;
	pqcm_inside--;
	return conn;
}

/*
 * Close a connection and leave it held (fresh, no socket).  A held object
 * has not chosen a host yet: libpq functions that read the current host
 * (PQhost, PQport, PQpass, ...) must not reach it, see c->husk.
 */
static void
hold_reset(PGconn *conn)
{
	pqcm_inside++;
	pqcm_hold_poll = true;
	(void) pqcm_real.resetStart(conn);
	pqcm_hold_poll = false;
	pqcm_inside--;
}

/* Exchange the contents of two libpq connection objects of one size. */
static bool
swap_conn(PGconn *a, PGconn *b)
{
	size_t		sa = malloc_usable_size(a);
	size_t		sb = malloc_usable_size(b);
	unsigned char *tmp;

	if (sa != sb || sa == 0)
		return false;
	tmp = malloc(sa);
	if (tmp == NULL)
		return false;
	memcpy(tmp, a, sa);
	memcpy(a, b, sa);
	memcpy(b, tmp, sa);
	free(tmp);
	return true;
}

/*
 * Give c->conn the options o for the next attempt, keeping the settings
 * the application made on it.  Returns false (error appended) when libpq
 * refuses the options.
 */
static bool
begin_stage2(PqcmConn *c, const PqcmOptions *o)
{
	PGconn	   *fresh = make_held(o);
	PGconn	   *conn = c->conn;
	int			nonblocking;
	PGVerbosity verbosity;
	PGContextVisibility visibility;

	if (fresh == NULL)
		return false;
	if (pqcm_real.status(fresh) == CONNECTION_BAD)
	{
		pqcm_appendf(&c->walk.errors, "%s", pqcm_real.errorMessage(fresh));
		pqcm_real.finish(fresh);
		return false;
	}
	nonblocking = PQisnonblocking(conn);
	verbosity = PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
	visibility = PQsetErrorContextVisibility(conn, PQSHOW_CONTEXT_ERRORS);
	if (!swap_conn(conn, fresh))
	{
		pqcm_appendf(&c->walk.errors, "libpqcm: cannot use this libpq's connection objects\n");
		pqcm_real.finish(fresh);
		return false;
	}
	pqcm_real.finish(fresh);	/* the old, held object */
	pthread_mutex_lock(&pqcm_lock);
	c->hooked = false;			/* a fresh object has libpq's receiver */
	pthread_mutex_unlock(&pqcm_lock);
	PQsetnonblocking(conn, nonblocking);
	PQsetErrorVerbosity(conn, verbosity);
	PQsetErrorContextVisibility(conn, visibility);
	if (c->notice_rec)
		pqcm_real.setNoticeReceiver(conn, c->notice_rec, c->notice_rec_arg);
	if (c->notice_proc)
		pqcm_real.setNoticeProcessor(conn, c->notice_proc, c->notice_proc_arg);

	/*
	 * Event procedures: the old object, now finished, told them
	 * PGEVT_CONNDESTROY (with its own address and their old instance data);
	 * registering them again gives them PGEVT_REGISTER for this one.
	 */
	{
		int			i;

		for (i = 0; i < c->nevents; i++)
			(void) pqcm_real.registerEventProc(conn, c->events[i].proc,
											   c->events[i].name, c->events[i].pass);
	}
	return true;
}

/*
 * The attempt at the current entries failed (error, if not NULL, says
 * why): drop its conmgr socket and go on with the next entries.
 */
static void
attempt_failed(PqcmConn *c, const char *error)
{
	pthread_mutex_lock(&pqcm_lock);
	pqcm_fd_close(&c->pending);
	c->state = PQCM_STAGE1;
	pthread_mutex_unlock(&pqcm_lock);
	pqcm_walk_failed(&c->walk, error);
}

/*
 * No entry left: the connection failed, with every entry's reason.  A
 * connection that failed before libpq tried any host is left as an
 * ordinary failed connection object.
 */
static PostgresPollingStatusType
async_failed(PqcmConn *c)
{
	if (c->husk)
	{
		PGconn	   *bad = pqcm_make_bad_conn();

		if (bad && swap_conn(c->conn, bad))
			c->husk = false;
		if (bad)
			pqcm_real.finish(bad);
	}
	pthread_mutex_lock(&pqcm_lock);
	c->state = PQCM_FAILED_CONNECT;
	free(c->errmsg);
	c->errmsg = c->walk.errors ? c->walk.errors : pqcm_strdup("could not connect\n");
	c->walk.errors = NULL;
	pthread_mutex_unlock(&pqcm_lock);
	return PGRES_POLLING_FAILED;
}

/*
 * Drive an asynchronous connection (or reset) as far as it can go without
 * blocking: one walk step after another in stage 1 (pqcm_walk.c), then
 * libpq's PQconnectPoll on the object that now has the attempt's options.
 * Returns what PQconnectPoll() returns.
 */
static PostgresPollingStatusType
async_advance(PqcmConn *c)
{
	PqcmWalk   *w = &c->walk;

	if (c->foreign)
	{
		/*
		 * In the child of fork(): the probe and the attempt use the parent's
		 * sockets, which the child must not touch.  Give up on it, closing
		 * only the child's copies of our descriptors.
		 */
		pthread_mutex_lock(&pqcm_lock);
		pqcm_close_sockets(c);
		w->entry = c->req.nentries;
		pqcm_appendf(&w->errors, "the connection was being made by the parent process\n");
		pthread_mutex_unlock(&pqcm_lock);
		return async_failed(c);
	}
	for (;;)
	{
		PostgresPollingStatusType ps;
		int			cm_fd;

		if (c->state == PQCM_STAGE1)
		{
			switch (pqcm_walk_step(w))
			{
				case PQCM_WALK_WAIT:
					return w->probe.want_events == POLLIN ?
						PGRES_POLLING_READING : PGRES_POLLING_WRITING;
				case PQCM_WALK_SKIPPED:
					continue;
				case PQCM_WALK_END:
					return async_failed(c);
				case PQCM_WALK_CONNECT:
					break;
			}
			cm_fd = pqcm_walk_take_cm_fd(w);
			pthread_mutex_lock(&pqcm_lock);
			pqcm_fd_adopt(&c->pending, cm_fd);
			pthread_mutex_unlock(&pqcm_lock);
			if (!begin_stage2(c, &w->opts))
			{
				attempt_failed(c, NULL);
				continue;
			}
			pthread_mutex_lock(&pqcm_lock);
			c->state = PQCM_STAGE2;
			pthread_mutex_unlock(&pqcm_lock);
		}

		/* stage 2: libpq connects */
		pqcm_inside++;
		ps = pqcm_real.connectPoll(c->conn);
		pqcm_inside--;
		c->husk = false;
		if (ps == PGRES_POLLING_OK)
		{
			if (c->pending.fd >= 0)
			{
				PqcmFd		cm = c->pending;

				pthread_mutex_lock(&pqcm_lock);
				c->pending.fd = -1;
				pthread_mutex_unlock(&pqcm_lock);
				free(w->errors);
				w->errors = NULL;
				pqcm_establish(c, cm);
			}
			else
			{
				/* a plain server: nothing of ours remains */
				pthread_mutex_lock(&pqcm_lock);
				pqcm_untrack_locked(c);
				pthread_mutex_unlock(&pqcm_lock);
				pqcm_free_conn(c);
			}
			return PGRES_POLLING_OK;
		}
		if (ps != PGRES_POLLING_FAILED)
			return ps;
		attempt_failed(c, pqcm_real.errorMessage(c->conn));
		/* the last failure stays as libpq left it (PQconnectionNeedsPassword) */
		if (w->entry < c->req.nentries)
		{
			hold_reset(c->conn);
			c->husk = true;
		}
	}
}

/* Common front of PQconnectStart/PQconnectStartParams. */
static PGconn *
start_async(PqcmRequest *r, PqcmMode mode)
{
	PqcmOptions o;
	PGconn	   *conn;
	PqcmConn   *c;

	/* the object the application keeps; its options are replaced later */
	pqcm_request_stage2(r, &o, 0, 1, NULL, NULL, NULL, 0);
	conn = make_held(&o);
	pqcm_opts_free(&o);
	if (conn == NULL || pqcm_real.status(conn) == CONNECTION_BAD)
	{
		pqcm_request_free(r);
		return conn;			/* libpq's own error */
	}
	c = pqcm_track_new(conn);
	pthread_mutex_lock(&pqcm_lock);
	c->req = *r;
	c->walk.mode = mode;
	c->state = PQCM_STAGE1;
	c->husk = true;
	pthread_mutex_unlock(&pqcm_lock);
	memset(r, 0, sizeof(*r));
	(void) async_advance(c);
	return conn;
}

static PGconn *
start_front(PqcmRequest *r, bool *handled)
{
	PqcmMode	mode;
	PGconn	   *failed;

	if (!pqcm_request_front(r, &mode, &failed))
	{
		*handled = (failed != NULL);
		return failed;
	}
	*handled = true;
	return start_async(r, mode);
}

PGconn *
PQconnectStartParams(const char *const *keywords, const char *const *values,
					 int expand_dbname)
{
	PqcmRequest r;
	PGconn	   *conn;
	bool		handled;

	REAL();
	if (pqcm_inside)
		return pqcm_real.connectStartParams(keywords, values, expand_dbname);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.connectStartParams(keywords, values, expand_dbname);
	}
	conn = start_front(&r, &handled);
	return handled ? conn : pqcm_real.connectStartParams(keywords, values, expand_dbname);
}

PGconn *
PQconnectStart(const char *conninfo)
{
	PqcmRequest r;
	PGconn	   *conn;
	bool		handled;

	REAL();
	if (pqcm_inside)
		return pqcm_real.connectStart(conninfo);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_conninfo(&r.opts, conninfo))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.connectStart(conninfo);
	}
	conn = start_front(&r, &handled);
	return handled ? conn : pqcm_real.connectStart(conninfo);
}

PostgresPollingStatusType
PQconnectPoll(PGconn *conn)
{
	REAL();
	if (pqcm_hold_poll)
		return PGRES_POLLING_WRITING;
	if (conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		pthread_mutex_unlock(&pqcm_lock);
		if (c && (c->state == PQCM_STAGE1 || c->state == PQCM_STAGE2))
			return async_advance(c);
		if (c && c->state == PQCM_FAILED_CONNECT)
			return PGRES_POLLING_FAILED;
	}
	return pqcm_real.connectPoll(conn);
}

/*
 * Start a reset of a tracked connection: close it, forget its conmgr
 * socket and go through stage 1 again from the first entry.
 */
static bool
reset_begin(PqcmConn *c)
{
	if (c->req.nentries == 0)
		return false;
	pqcm_unhook_notices(c);
	pthread_mutex_lock(&pqcm_lock);
	pqcm_close_sockets(c);
	pqcm_walk_restart(&c->walk);
	c->state = PQCM_STAGE1;
	c->failed = false;
	c->foreign = false;			/* after fork(), the child's own from now on */
	free(c->errmsg);
	c->errmsg = NULL;
	pthread_mutex_unlock(&pqcm_lock);
	pqcm_watcher_poke();
	hold_reset(c->conn);
	c->husk = true;
	return true;
}

static PqcmConn *
find_resettable(PGconn *conn)
{
	PqcmConn   *c = NULL;

	if (conn && TRACKED())
	{
		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		pthread_mutex_unlock(&pqcm_lock);
		if (c && c->req.nentries == 0)
			c = NULL;
	}
	return c;
}

int
PQresetStart(PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = find_resettable(conn);
	if (c && reset_begin(c))
	{
		(void) async_advance(c);
		return c->state == PQCM_FAILED_CONNECT ? 0 : 1;
	}
	return pqcm_real.resetStart(conn);
}

PostgresPollingStatusType
PQresetPoll(PGconn *conn)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		pthread_mutex_unlock(&pqcm_lock);
		if (c && (c->state == PQCM_STAGE1 || c->state == PQCM_STAGE2))
			return async_advance(c);
		if (c && c->state == PQCM_FAILED_CONNECT)
			return PGRES_POLLING_FAILED;
	}
	return pqcm_real.resetPoll(conn);
}

/*
 * PQreset of a tracked connection: a reset goes through conmgr again,
 * synchronously, each entry bounded by connect_timeout.
 */
void
PQreset(PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = find_resettable(conn);
	if (c && reset_begin(c))
	{
		PostgresPollingStatusType ps = async_advance(c);
		int			entry = -1;
		struct timespec dl = {0, 0};

		while (ps == PGRES_POLLING_READING || ps == PGRES_POLLING_WRITING)
		{
			struct pollfd pfd;
			int			ms;

			if (c->walk.entry != entry)
			{
				entry = c->walk.entry;
				pqcm_deadline(&dl, c->req.connect_timeout);
			}
			pfd.fd = PQsocket(conn);
			pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd.revents = 0;
			ms = pqcm_remaining_ms(&dl);
			if (ms == 0 || poll(&pfd, 1, ms) == 0)
			{
				attempt_failed(c, "timeout expired\n");
				if (c->walk.entry < c->req.nentries)
				{
					hold_reset(conn);
					c->husk = true;
				}
			}
			ps = async_advance(c);
		}
		return;
	}
	pqcm_real.reset(conn);
}
