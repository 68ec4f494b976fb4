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
#include <stdatomic.h>
#include <stdint.h>
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

/*
 * Exchange the contents of two libpq connection objects.  libpq makes each
 * with one malloc() of sizeof(PGconn), a size it does not export; the
 * smaller usable size of the two blocks covers it.  (The allocator may
 * give a block a few bytes more than asked for, depending on the free
 * chunk it reuses, so the two usable sizes need not be equal.)  Valid only
 * for fresh objects that nothing points into: see exchange_selftest().
 */
static bool
swap_conn(PGconn *a, PGconn *b)
{
	size_t		sa = malloc_usable_size(a);
	size_t		sb = malloc_usable_size(b);
	size_t		n = sa < sb ? sa : sb;
	unsigned char *tmp;

	if (n == 0)
		return false;
	tmp = malloc(n);
	if (tmp == NULL)
		return false;
	memcpy(tmp, a, n);
	memcpy(a, b, n);
	memcpy(b, tmp, n);
	free(tmp);
	return true;
}

/* ---------------------------------------------------------------------
 * Can this libpq's connection objects be exchanged?
 *
 * swap_conn() relies on libpq's private layout: a connection object is one
 * block of the allocator, nothing in a fresh one points into itself, and
 * what libpq reports of an object comes from that block alone.  A libpq
 * built otherwise would make asynchronous connections through conmgr
 * misbehave in ways nobody could diagnose, so the library checks once per
 * process, with two fresh held objects, before it takes its first
 * connection request, and refuses Connection Manager altogether when the
 * check fails: every call then goes to libpq untouched.
 * ---------------------------------------------------------------------
 */

pthread_mutex_t pqcm_exchange_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int exchange_state;	/* 0: not known, 1: usable, -1: refused */

/* What libpq reports of a held object. */
typedef struct HeldView
{
	char		host[64];
	char		port[16];
	char		dbname[64];
	char		user[64];
	int			nonblocking;
	PGVerbosity verbosity;
	const char *errbuf;
} HeldView;

static void
copy_value(char *dst, size_t cap, const char *v)
{
	snprintf(dst, cap, "%s", v ? v : "");
}

static bool
held_view(PGconn *conn, HeldView *v)
{
	PQconninfoOption *opts = PQconninfo(conn);
	PQconninfoOption *o;

	if (opts == NULL)
		return false;
	memset(v, 0, sizeof(*v));
	for (o = opts; o->keyword; o++)
	{
		if (strcmp(o->keyword, "host") == 0)
			copy_value(v->host, sizeof(v->host), o->val);
		else if (strcmp(o->keyword, "port") == 0)
			copy_value(v->port, sizeof(v->port), o->val);
	}
	PQconninfoFree(opts);
	copy_value(v->dbname, sizeof(v->dbname), PQdb(conn));
	copy_value(v->user, sizeof(v->user), PQuser(conn));
	v->nonblocking = PQisnonblocking(conn);
	v->verbosity = PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
	(void) PQsetErrorVerbosity(conn, v->verbosity);
	v->errbuf = pqcm_real.errorMessage(conn);
	return true;
}

static bool
same_view(const HeldView *x, const HeldView *y)
{
	return strcmp(x->host, y->host) == 0 && strcmp(x->port, y->port) == 0 &&
		strcmp(x->dbname, y->dbname) == 0 && strcmp(x->user, y->user) == 0 &&
		x->nonblocking == y->nonblocking && x->verbosity == y->verbosity &&
		x->errbuf == y->errbuf;
}

/*
 * Does a word of both objects point into its own object, at the same
 * place?  (Both: the bytes past the end of a structure, up to the usable
 * size, hold whatever the block held before.)
 */
static bool
points_into_itself(const void *a, const void *b, size_t n)
{
	uintptr_t	la = (uintptr_t) a;
	uintptr_t	lb = (uintptr_t) b;
	size_t		i;

	for (i = 0; i + sizeof(uintptr_t) <= n; i += sizeof(uintptr_t))
	{
		uintptr_t	va,
					vb;

		memcpy(&va, (const char *) a + i, sizeof(va));
		memcpy(&vb, (const char *) b + i, sizeof(vb));
		if (va >= la && va < la + n && vb >= lb && vb < lb + n &&
			va - la == vb - lb)
			return true;
	}
	return false;
}

/* A held object for the check (no network, no password file). */
static PGconn *
make_test_object(const char *host, const char *port, const char *dbname,
				 const char *user)
{
	PqcmOptions o;
	PGconn	   *conn;

	pqcm_opts_init(&o);
	pqcm_opts_set(&o, "host", host);
	pqcm_opts_set(&o, "port", port);
	pqcm_opts_set(&o, "dbname", dbname);
	pqcm_opts_set(&o, "user", user);
	pqcm_opts_set(&o, "password", "-");
	pqcm_opts_set(&o, "sslmode", "disable");
	pqcm_opts_set(&o, "gssencmode", "disable");
	conn = make_held(&o);
	pqcm_opts_free(&o);
	if (conn && pqcm_real.status(conn) == CONNECTION_BAD)
	{
		pqcm_real.finish(conn);
		conn = NULL;
	}
	return conn;
}

/*
 * Check what swap_conn() relies on, with two fresh held objects that
 * differ in every respect looked at: both are blocks of the allocator;
 * nothing in them points into itself; after an exchange, libpq reports of
 * each what it reported of the other (options, settings, and the error
 * buffer, which lies at the end of the object); after a second exchange,
 * its own again.  Returns 1 when all holds, -1 when something does not, 0
 * when libpq would not make the objects (the environment's options are
 * invalid: the question stays open).
 */
static int
exchange_selftest(void)
{
	PGconn	   *a = make_test_object("pqcm-selftest-a.invalid", "1", "pqcm_a", "pqcm_a");
	PGconn	   *b = make_test_object("pqcm-selftest-b.invalid", "2", "pqcm_b", "pqcm_b");
	HeldView	va,
				vb,
				x,
				y;
	size_t		sa,
				sb;
	int			result = -1;

	if (a == NULL || b == NULL)
	{
		if (a)
			pqcm_real.finish(a);
		if (b)
			pqcm_real.finish(b);
		return 0;
	}
	(void) PQsetnonblocking(a, 1);
	(void) PQsetErrorVerbosity(a, PQERRORS_VERBOSE);
	sa = malloc_usable_size(a);
	sb = malloc_usable_size(b);
	if (sa == 0 || sb == 0 ||
		points_into_itself(a, b, sa < sb ? sa : sb) ||
		!held_view(a, &va) || !held_view(b, &vb) || same_view(&va, &vb))
		goto done;
	if (!swap_conn(a, b) || !held_view(a, &x) || !held_view(b, &y) ||
		!same_view(&x, &vb) || !same_view(&y, &va))
		goto done;
	if (!swap_conn(a, b) || !held_view(a, &x) || !held_view(b, &y) ||
		!same_view(&x, &va) || !same_view(&y, &vb))
		goto done;
	result = 1;
done:
	pqcm_real.finish(a);
	pqcm_real.finish(b);
	return result;
}

/*
 * May Connection Manager take connection requests in this process?  The
 * first call makes the check above; when it fails, the library says so
 * once on stderr and passes everything to libpq from then on.
 */
bool
pqcm_exchange_usable(void)
{
	int			state = atomic_load(&exchange_state);

	if (state != 0)
		return state > 0;
	pthread_mutex_lock(&pqcm_exchange_lock);
	state = atomic_load(&exchange_state);
	if (state == 0)
	{
		state = exchange_selftest();
		atomic_store(&exchange_state, state);
		if (state < 0)
			fputs("libpqcm: this libpq's connection objects cannot be exchanged: "
				  "connections go to libpq directly\n", stderr);
	}
	pthread_mutex_unlock(&pqcm_exchange_lock);
	return state > 0;
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

/*
 * A connection this library is still connecting (or failed to connect):
 * advance it, or say it failed.  False when libpq's own call applies.
 */
static bool
poll_tracked(PGconn *conn, PostgresPollingStatusType *st)
{
	PqcmConn   *c;

	pthread_mutex_lock(&pqcm_lock);
	c = pqcm_find_locked(conn);
	pthread_mutex_unlock(&pqcm_lock);
	if (c && (c->state == PQCM_STAGE1 || c->state == PQCM_STAGE2))
	{
		*st = async_advance(c);
		return true;
	}
	if (c && c->state == PQCM_FAILED_CONNECT)
	{
		*st = PGRES_POLLING_FAILED;
		return true;
	}
	return false;
}

PostgresPollingStatusType
PQconnectPoll(PGconn *conn)
{
	PostgresPollingStatusType st;

	REAL();
	if (pqcm_hold_poll)
		return PGRES_POLLING_WRITING;
	if (conn && TRACKED() && poll_tracked(conn, &st))
		return st;
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
	PostgresPollingStatusType st;

	REAL();
	if (conn && TRACKED() && poll_tracked(conn, &st))
		return st;
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
		int64_t		dl = 0;

		while (ps == PGRES_POLLING_READING || ps == PGRES_POLLING_WRITING)
		{
			struct pollfd pfd;
			int			ms;

			if (c->walk.entry != entry)
			{
				entry = c->walk.entry;
				dl = pqcm_deadline(c->req.connect_timeout);
			}
			pfd.fd = PQsocket(conn);
			pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd.revents = 0;
			ms = pqcm_remaining_ms(dl);
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
