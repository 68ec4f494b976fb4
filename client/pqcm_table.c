/*-------------------------------------------------------------------------
 *
 * pqcm_table.c
 *	  The table of connections that use Connection Manager, keyed by their
 *	  PGconn pointer, and what belongs to each: its sockets, its request,
 *	  the settings the application made on it.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_table.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

pthread_mutex_t pqcm_lock = PTHREAD_MUTEX_INITIALIZER;
PqcmConn   *pqcm_table[PQCM_BUCKETS];
atomic_int	pqcm_ntracked;

static unsigned
bucket_of(const PGconn *conn)
{
	uintptr_t	p = (uintptr_t) conn;

	return (unsigned) ((p >> 4) ^ (p >> 12)) % PQCM_BUCKETS;
}

/* Find a tracked connection; caller holds pqcm_lock. */
PqcmConn *
pqcm_find_locked(const PGconn *conn)
{
	PqcmConn   *c;

	for (c = pqcm_table[bucket_of(conn)]; c; c = c->next)
		if (c->conn == conn)
			return c;
	return NULL;
}

PqcmConn *
pqcm_track_new(PGconn *conn)
{
	PqcmConn   *c = calloc(1, sizeof(PqcmConn));
	unsigned	b = bucket_of(conn);

	if (c == NULL)
	{
		fputs("libpqcm: out of memory\n", stderr);
		abort();
	}
	c->conn = conn;
	c->cm_fd = -1;
	c->sql_fd = -1;
	c->pending_cm_fd = -1;
	pqcm_walk_init(&c->walk, &c->req, PQCM_MODE_AUTO, &pqcm_lock);
	c->odbc_dbc = pqcm_odbc_connecting();
	pthread_mutex_lock(&pqcm_lock);
	c->next = pqcm_table[b];
	pqcm_table[b] = c;
	atomic_fetch_add(&pqcm_ntracked, 1);
	pthread_mutex_unlock(&pqcm_lock);
	return c;
}

/* Remove from the table (does not free); caller holds pqcm_lock. */
void
pqcm_untrack_locked(PqcmConn *c)
{
	PqcmConn  **link = &pqcm_table[bucket_of(c->conn)];

	while (*link && *link != c)
		link = &(*link)->next;
	if (*link)
	{
		*link = c->next;
		atomic_fetch_sub(&pqcm_ntracked, 1);
	}
}

/*
 * The host of the instance that an ODBC connection handle reached through
 * Connection Manager, copied into buf; false when that handle has no such
 * established connection (see pqcm_odbc.c).
 */
bool
pqcm_dbc_instance_host(const void *dbc, char *buf, size_t cap)
{
	bool		found = false;
	int			b;

	if (dbc == NULL || atomic_load(&pqcm_ntracked) == 0)
		return false;
	REAL();
	pthread_mutex_lock(&pqcm_lock);
	for (b = 0; b < PQCM_BUCKETS && !found; b++)
	{
		PqcmConn   *c;

		for (c = pqcm_table[b]; c; c = c->next)
		{
			const char *host;

			if (c->odbc_dbc != dbc || c->state != PQCM_ESTABLISHED)
				continue;
			host = pqcm_real.host(c->conn);
			if (host && host[0] && strlen(host) < cap)
			{
				strcpy(buf, host);
				found = true;
			}
			break;
		}
	}
	pthread_mutex_unlock(&pqcm_lock);
	return found;
}

/* Close our sockets of a connection. */
void
pqcm_close_sockets(PqcmConn *c)
{
	if (c->cm_fd >= 0)
		close(c->cm_fd);
	if (c->sql_fd >= 0)
		close(c->sql_fd);
	if (c->pending_cm_fd >= 0)
		close(c->pending_cm_fd);
	c->cm_fd = c->sql_fd = c->pending_cm_fd = -1;
	pqcm_walk_stop(&c->walk);
}

void
pqcm_free_conn(PqcmConn *c)
{
	int			i;

	for (i = 0; i < c->nevents; i++)
		free(c->events[i].name);
	free(c->events);
	pqcm_close_sockets(c);
	pqcm_walk_free(&c->walk);
	pqcm_request_free(&c->req);
	free(c->errmsg);
	free(c->errcache);
	free(c);
}
