/*-------------------------------------------------------------------------
 *
 * pqcm_watcher.c
 *	  The watcher thread: one per process, started with the first connection
 *	  made through conmgr, polls every conmgr socket and shuts down the SQL
 *	  socket of a connection as soon as its failure notice arrives, so that
 *	  a call blocked inside libpq returns at once.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_watcher.c
 *
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

/* The watcher thread (read without the lock by the per-call checks). */
atomic_bool pqcm_watcher_running;
static int	watcher_wake[2] = {-1, -1};

/*
 * The watcher's poll set.  Kept here rather than in the thread, so that a
 * child of fork(), which has no watcher thread, still reaches it.
 */
static struct pollfd *watcher_pfds;
static int	watcher_cap;

/* Is the watcher wanted?  PGCONMGR_WATCHER=off switches it off. */
static bool
watcher_wanted(void)
{
	const char *v = getenv("PGCONMGR_WATCHER");

	return !(v && (strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0));
}

void
pqcm_watcher_poke(void)
{
	int			fd = watcher_wake[1];

	if (fd >= 0)
	{
		char		b = 0;

		if (write(fd, &b, 1) < 0)
			return;				/* full pipe: the watcher wakes anyway */
	}
}

/*
 * The watcher: one thread per process polls every conmgr socket of an
 * established connection and, when conmgr reports a failure or goes
 * away, shuts down that connection's SQL socket.  A call blocked inside
 * libpq (PQexec, PQgetResult, a COPY) then returns with an error at once.
 * It also polls our duplicate of each SQL socket for the other end's
 * shutdown: when the server has ended the session, the duplicate must not
 * keep it open after libpq closes its own socket.
 */
static void *
watcher_main(void *arg)
{
	struct pollfd *pfds = watcher_pfds;
	int			cap = watcher_cap;

	(void) arg;
	for (;;)
	{
		int			n = 1;
		int			i;
		int			rc;
		bool		partial = false;

		pthread_mutex_lock(&pqcm_lock);
		for (i = 0; i < PQCM_BUCKETS; i++)
		{
			PqcmConn   *c;

			for (c = pqcm_table[i]; c; c = c->next)
			{
				/*
				 * A socket the application closed is never polled, nor are
				 * the parent's in the child of fork().
				 */
				if (c->state != PQCM_ESTABLISHED || c->failed || c->foreign ||
					!pqcm_cm_ours_locked(c))
					continue;
				if (n + 2 > cap)
				{
					int			ncap = cap ? cap * 2 : 64;
					struct pollfd *np = realloc(pfds, sizeof(struct pollfd) * (size_t) ncap);

					if (np == NULL)
						break;
					watcher_pfds = pfds = np;
					watcher_cap = cap = ncap;
				}
				if (c->partial_since != 0)
					partial = true; /* looked at on a timer, see below */
				else
				{
					pfds[n].fd = c->cm.fd;
					pfds[n].events = POLLIN;
					pfds[n].revents = 0;
					n++;
				}
				/* the server ending the session frees the duplicate */
				if (pqcm_fd_ours(&c->sql))
				{
					pfds[n].fd = c->sql.fd;
					pfds[n].events = POLLRDHUP;
					pfds[n].revents = 0;
					n++;
				}
			}
		}
		if (cap == 0)
		{
			pfds = malloc(sizeof(struct pollfd) * 64);
			if (pfds == NULL)
			{
				pthread_mutex_unlock(&pqcm_lock);
				return NULL;
			}
			watcher_pfds = pfds;
			watcher_cap = cap = 64;
		}
		pfds[0].fd = watcher_wake[0];
		pfds[0].events = POLLIN;
		pfds[0].revents = 0;
		pthread_mutex_unlock(&pqcm_lock);

		rc = poll(pfds, (nfds_t) n, partial ? PQCM_PARTIAL_POLL_MS : -1);
		if (rc < 0)
			continue;
		if (pfds[0].revents)
		{
			char		buf[64];

			while (read(watcher_wake[0], buf, sizeof(buf)) > 0)
				;
		}
		pthread_mutex_lock(&pqcm_lock);
		if (partial)
		{
			int			b;
			PqcmConn   *c;

			for (b = 0; b < PQCM_BUCKETS; b++)
				for (c = pqcm_table[b]; c; c = c->next)
					if (c->partial_since != 0)
						pqcm_check_locked(c);
		}
		for (i = 1; i < n; i++)
		{
			int			b;
			PqcmConn   *c;

			if (pfds[i].revents == 0)
				continue;

			/*
			 * The socket may have been closed meanwhile, and its number
			 * reused: look it up again; both checks look at the socket that
			 * has the number now.
			 */
			for (b = 0; b < PQCM_BUCKETS; b++)
				for (c = pqcm_table[b]; c; c = c->next)
				{
					if (c->foreign)
						continue;
					if (pfds[i].events == POLLIN && c->cm.fd == pfds[i].fd)
						pqcm_check_locked(c);
					if (pfds[i].events == POLLRDHUP && c->sql.fd == pfds[i].fd)
						pqcm_sql_check_locked(c);
				}
		}
		pthread_mutex_unlock(&pqcm_lock);
	}
	return NULL;
}

void
pqcm_watcher_start(void)
{
	pthread_t	tid;
	pthread_attr_t attr;
	sigset_t	all,
				old;

	pthread_mutex_lock(&pqcm_lock);
	if (pqcm_watcher_running || !watcher_wanted())
	{
		pthread_mutex_unlock(&pqcm_lock);
		return;
	}
	if (watcher_wake[0] < 0 && pipe2(watcher_wake, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		watcher_wake[0] = watcher_wake[1] = -1;
		pthread_mutex_unlock(&pqcm_lock);
		return;
	}
	/* signals stay with the application's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	if (pthread_create(&tid, &attr, watcher_main, NULL) == 0)
		pqcm_watcher_running = true;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&pqcm_lock);
}

/*
 * In the child of fork(), holding pqcm_lock: the watcher thread was not
 * copied; forget it and its wake-up pipe, so that the child starts its own
 * when it needs one.
 */
void
pqcm_watcher_atfork_child(void)
{
	pqcm_watcher_running = false;
	if (watcher_wake[0] >= 0)
		close(watcher_wake[0]);
	if (watcher_wake[1] >= 0)
		close(watcher_wake[1]);
	watcher_wake[0] = watcher_wake[1] = -1;
}
