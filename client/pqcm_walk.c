/*-------------------------------------------------------------------------
 *
 * pqcm_walk.c
 *	  The walk over a request's host list, written once for every entry
 *	  point: PQconnectdb and PQping drive it with blocking waits,
 *	  PQconnectPoll and PQresetPoll one non-blocking step at a time.
 *
 * Entries are taken in the written order.  A run of consecutive entries
 * that cannot be a conmgr is handed to libpq as one shorter host list; an
 * entry that may be a conmgr is probed (stage 1, pqcm_probe.c) unless it
 * is known to be a plain server.  A conmgr's instance becomes the options
 * of the next libpq attempt (stage 2), with what is left of
 * connect_timeout; a plain server, or nothing listening, is libpq's
 * business; a conmgr without an instance, or one that fails, adds a line
 * to the errors and the walk moves on.  Each step says what the caller
 * does next: wait for the probe's socket, make a libpq attempt with the
 * options the walk prepared, or step again.  After an attempt, the caller
 * either keeps the result (taking the conmgr socket) or reports the
 * failure, and the walk moves on to the entries after the ones tried.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_walk.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

static void
walk_lock(PqcmWalk *w)
{
	if (w->lock)
		pthread_mutex_lock(w->lock);
}

static void
walk_unlock(PqcmWalk *w)
{
	if (w->lock)
		pthread_mutex_unlock(w->lock);
}

/*
 * Start a walk over r's entries.  lock, when given, is held while the
 * probe changes: an asynchronous walk lives in a tracked connection whose
 * probe socket PQsocket() reads under that lock.
 */
void
pqcm_walk_init(PqcmWalk *w, const PqcmRequest *r, PqcmMode mode,
			   pthread_mutex_t *lock)
{
	memset(w, 0, sizeof(*w));
	w->req = r;
	w->mode = mode;
	w->lock = lock;
	w->count = 1;
	w->probe.fd = -1;
	w->cm_fd = -1;
}

/*
 * Close the probe and a conmgr socket nobody took.  The caller holds
 * w->lock, if the walk has one.
 */
void
pqcm_walk_stop(PqcmWalk *w)
{
	pqcm_probe_close(&w->probe);
	w->probing = false;
	if (w->cm_fd >= 0)
		close(w->cm_fd);
	w->cm_fd = -1;
}

/* Back to the first entry, forgetting the errors (a reset); as above. */
void
pqcm_walk_restart(PqcmWalk *w)
{
	pqcm_walk_stop(w);
	w->entry = 0;
	w->count = 1;
	free(w->errors);
	w->errors = NULL;
}

/* Release everything the walk holds. */
void
pqcm_walk_free(PqcmWalk *w)
{
	pqcm_walk_stop(w);
	free(w->errors);
	w->errors = NULL;
	pqcm_opts_free(&w->opts);
}

/* On to the entries after the ones of the current step. */
static void
walk_next(PqcmWalk *w)
{
	walk_lock(w);
	pqcm_walk_stop(w);
	w->entry += w->count;
	w->count = 1;
	walk_unlock(w);
}

/*
 * The libpq attempt with w->opts failed (error, if not NULL, says why):
 * on to the next entries.  A conmgr socket not taken is closed.
 */
void
pqcm_walk_failed(PqcmWalk *w, const char *error)
{
	if (error)
		pqcm_appendf(&w->errors, "%s", error);
	walk_next(w);
}

/* The conmgr socket of a successful attempt: the caller keeps it. */
int
pqcm_walk_take_cm_fd(PqcmWalk *w)
{
	int			fd;

	walk_lock(w);
	fd = w->cm_fd;
	w->cm_fd = -1;
	walk_unlock(w);
	return fd;
}

/* Seconds left until a deadline, rounded up (at least 2); 0 = no deadline. */
static int
seconds_left(int64_t deadline)
{
	int			ms = pqcm_remaining_ms(deadline);

	if (ms < 0)
		return 0;
	return ms / 1000 + 1 < 2 ? 2 : ms / 1000 + 1;
}

/* Numeric address for hostaddr when the request used hostaddr. */
static void
instance_hostaddr(const PqcmRequest *r, const char *host, char *buf, size_t cap)
{
	struct addrinfo hints;
	struct addrinfo *res = NULL;

	buf[0] = '\0';
	if (!r->hostaddr_used)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res)
	{
		if (getnameinfo(res->ai_addr, res->ai_addrlen, buf, (socklen_t) cap,
						NULL, 0, NI_NUMERICHOST) != 0)
			buf[0] = '\0';
		freeaddrinfo(res);
	}
}

/* Close the probe, whose outcome is known; the attempt follows. */
static void
walk_probe_done(PqcmWalk *w)
{
	walk_lock(w);
	pqcm_probe_close(&w->probe);
	w->probing = false;
	walk_unlock(w);
}

/* Hand the entries of the current step to libpq as they are. */
static PqcmWalkStep
walk_libpq(PqcmWalk *w)
{
	walk_probe_done(w);
	pqcm_request_stage2(w->req, &w->opts, w->entry, w->count, NULL, NULL, NULL, 0);
	return PQCM_WALK_CONNECT;
}

/*
 * The probe's conmgr named an instance: keep its socket and connect to the
 * instance with the application's options, host and port replaced, and
 * what is left of connect_timeout.
 */
static PqcmWalkStep
walk_instance(PqcmWalk *w)
{
	const CmProtoInstance *inst = &w->probe.instance;
	char		addr[64];
	char		port[16];

	walk_lock(w);
	w->cm_fd = w->probe.fd;
	w->probe.fd = -1;
	walk_unlock(w);
	/* name resolution may block: not under the lock */
	instance_hostaddr(w->req, inst->host.str, addr, sizeof(addr));
	snprintf(port, sizeof(port), "%u", (unsigned) inst->port);
	pqcm_request_stage2(w->req, &w->opts, 0, 0, inst->host.str, addr, port,
						seconds_left(w->deadline));
	walk_probe_done(w);
	return PQCM_WALK_CONNECT;
}

/*
 * Take the walk one step further without blocking (name resolution
 * aside, as in libpq).  See PqcmWalkStep for what the caller does next.
 */
PqcmWalkStep
pqcm_walk_step(PqcmWalk *w)
{
	const PqcmRequest *r = w->req;
	const PqcmEntry *e;
	PqcmProbeResult res;

	pqcm_opts_free(&w->opts);
	if (w->entry >= r->nentries)
		return PQCM_WALK_END;
	e = &r->entries[w->entry];
	if (!e->probe)
	{
		/* a run of entries for libpq alone */
		w->count = 1;
		while (w->entry + w->count < r->nentries &&
			   !r->entries[w->entry + w->count].probe)
			w->count++;
		return walk_libpq(w);
	}
	if (!w->probing)
	{
		PqcmProbe	fresh;

		w->count = 1;
		if (pqcm_plain_cached(e))
			return walk_libpq(w);
		w->deadline = pqcm_deadline(r->connect_timeout);
		/* name resolution may block: not under the lock */
		pqcm_probe_init(&fresh, e, w->mode != PQCM_MODE_ON, r->tsa,
						r->application_name);
		walk_lock(w);
		w->probe = fresh;
		w->probing = true;
		w->hostaddr[0] = '\0';
		walk_unlock(w);
		if (w->probe.addrs == NULL)
			return walk_libpq(w);	/* unresolvable: libpq reports it */
	}

	walk_lock(w);
	res = pqcm_probe_step(&w->probe);
	if (res == PQCM_PROBE_PENDING && w->probe.cur &&
		getnameinfo(w->probe.cur->ai_addr, w->probe.cur->ai_addrlen,
					w->hostaddr, sizeof(w->hostaddr), NULL, 0,
					NI_NUMERICHOST) != 0)
		w->hostaddr[0] = '\0';
	walk_unlock(w);

	switch (res)
	{
		case PQCM_PROBE_PENDING:
			if (pqcm_remaining_ms(w->deadline) != 0)
				return PQCM_WALK_WAIT;
			pqcm_appendf(&w->errors, "timeout expired while waiting for conmgr at %s\n",
						 w->probe.label);
			walk_next(w);
			return PQCM_WALK_SKIPPED;
		case PQCM_PROBE_INSTANCE:
			return walk_instance(w);
		case PQCM_PROBE_NO_INSTANCE:
		case PQCM_PROBE_ERROR:
			pqcm_appendf(&w->errors, "%s\n", w->probe.message);
			walk_next(w);
			return PQCM_WALK_SKIPPED;
		case PQCM_PROBE_PLAIN:
			pqcm_plain_remember(e);
			/* FALLTHROUGH */
		case PQCM_PROBE_DOWN:
			break;
	}
	/* a plain server, or nothing listening: libpq's business */
	return walk_libpq(w);
}

/*
 * A step for the blocking entry points: waits for the probe's socket, up
 * to the entry's deadline, instead of returning PQCM_WALK_WAIT.
 */
PqcmWalkStep
pqcm_walk_step_blocking(PqcmWalk *w)
{
	for (;;)
	{
		PqcmWalkStep step = pqcm_walk_step(w);
		struct pollfd pfd;

		if (step != PQCM_WALK_WAIT)
			return step;
		pfd.fd = w->probe.fd;
		pfd.events = w->probe.want_events;
		pfd.revents = 0;
		if (poll(&pfd, 1, pqcm_remaining_ms(w->deadline)) < 0 && errno != EINTR)
		{
			pqcm_appendf(&w->errors, "could not wait for conmgr at %s: %s\n",
						 w->probe.label, strerror(errno));
			walk_next(w);
			return PQCM_WALK_SKIPPED;
		}
	}
}
