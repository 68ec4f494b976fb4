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
#include <sys/stat.h>
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
	c->cm.fd = -1;
	c->sql.fd = -1;
	c->pending.fd = -1;
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

/*
 * Adopt descriptor fd (or -1) as the library's own, remembering which
 * file it names.
 */
void
pqcm_fd_adopt(PqcmFd *f, int fd)
{
	struct stat st;

	f->fd = -1;
	if (fd >= 0 && fstat(fd, &st) == 0)
	{
		f->fd = fd;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
	}
}

/*
 * Does f still name the file the library made?  When the application has
 * closed it, the number is free or names a file of the application's:
 * forget it, without closing or reading it, and return false.  (Another
 * thread of the application could still close and reuse the number
 * between this check and the use that follows; nothing in the library can
 * prevent that, as nothing in libpq prevents it for PQsocket().)
 */
bool
pqcm_fd_ours(PqcmFd *f)
{
	struct stat st;

	if (f->fd < 0)
		return false;
	if (fstat(f->fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino)
		return true;
	f->fd = -1;
	return false;
}

/* Close f if it is still the library's; forget it either way. */
void
pqcm_fd_close(PqcmFd *f)
{
	if (pqcm_fd_ours(f))
		close(f->fd);
	f->fd = -1;
}

/*
 * In the child of fork(), holding pqcm_lock: every connection in the table
 * is the parent's.  The child's copies of its descriptors name the very
 * sockets the parent uses, so the child must neither read them nor shut
 * them down: mark them foreign (pqcm_io.c, pqcm_watcher.c, pqcm_async.c
 * leave such connections alone; closing the child's copies stays safe).
 */
void
pqcm_table_atfork_child(void)
{
	int			b;
	PqcmConn   *c;

	for (b = 0; b < PQCM_BUCKETS; b++)
		for (c = pqcm_table[b]; c; c = c->next)
			c->foreign = true;
}

/* Close our sockets of a connection. */
void
pqcm_close_sockets(PqcmConn *c)
{
	pqcm_fd_close(&c->cm);
	pqcm_fd_close(&c->sql);
	pqcm_fd_close(&c->pending);
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
