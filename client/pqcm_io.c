/*-------------------------------------------------------------------------
 *
 * pqcm_io.c
 *	  The calls that look at a connection made through Connection Manager:
 *	  PQstatus, PQsocket, PQhost, ..., PQconsumeInput, PQgetResult,
 *	  PQfinish; failure notices from conmgr, the server's last words and
 *	  the error messages built from them; the application's notice
 *	  receivers and event procedures, recorded to be carried over.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_io.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdatomic.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "libpq-fe.h"
#include "libpq-events.h"

#include "libpq-cm.h"
#include "pqcm_int.h"

/*
 * Record a failure notice: remember why and shut the SQL socket down so
 * that libpq's pending or next read sees end-of-file; our duplicate of it
 * has then done its job.  Caller holds the lock.
 */
void
pqcm_fail_locked(PqcmConn *c, const char *msg)
{
	if (c->failed)
		return;
	c->failed = true;
	snprintf(c->failmsg, sizeof(c->failmsg), "%s", msg);
	/* the parent's socket, in the child of fork(), is never shut down */
	if (!c->foreign && pqcm_fd_ours(&c->sql))
		shutdown(c->sql.fd, SHUT_RDWR);
	pqcm_fd_close(&c->sql);
}

/*
 * The duplicate of the SQL socket exists only to shut that socket down.
 * Once libpq has let go of the connection (CONNECTION_BAD: its socket
 * closed, or replaced), the duplicate would be all that keeps the session
 * open until PQfinish(): the server would see no end of it, and a backend
 * that libpq gave up on (a lost synchronisation, no memory for a row)
 * would keep its transaction and its locks.  Close it then.  This reads
 * the connection object, so it runs in the application's calls; caller
 * holds the lock.
 */
static void
release_locked(PqcmConn *c)
{
	if (c->state == PQCM_ESTABLISHED && c->sql.fd >= 0 &&
		(pqcm_real.status(c->conn) == CONNECTION_BAD ||
		 pqcm_real.socket(c->conn) != c->sql_src))
	{
		pqcm_fd_close(&c->sql);
		/* a poll() of the watcher would hold the socket open: end it */
		pqcm_watcher_poke();
	}
}

/* The same after a libpq call, with the lock only when libpq let go. */
static void
release_if_bad(const PGconn *conn)
{
	PqcmConn   *c;

	if (pqcm_real.status(conn) != CONNECTION_BAD && pqcm_real.socket(conn) >= 0)
		return;
	pthread_mutex_lock(&pqcm_lock);
	c = pqcm_find_locked(conn);
	if (c)
		release_locked(c);
	pthread_mutex_unlock(&pqcm_lock);
}

/*
 * For the watcher, which must not read the connection object: when the
 * server has ended the session (the duplicate reports the other end shut
 * down), the duplicate is no longer needed either.  Caller holds the lock.
 */
void
pqcm_sql_check_locked(PqcmConn *c)
{
	struct pollfd pfd;

	if (!pqcm_fd_ours(&c->sql))
		return;
	pfd.fd = c->sql.fd;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) > 0)
		pqcm_fd_close(&c->sql);
}

/*
 * Is the conmgr socket of an established connection still the library's?
 * When the application has closed it, nothing can tell the connection of
 * a failure any more: the connection fails, naming the cause.  Caller
 * holds the lock.
 */
bool
pqcm_cm_ours_locked(PqcmConn *c)
{
	if (pqcm_fd_ours(&c->cm))
		return true;
	pqcm_fail_locked(c, "the conmgr socket was closed by the application");
	return false;
}

/* Look for a notice on an established connection; caller holds lock. */
void
pqcm_check_locked(PqcmConn *c)
{
	char		msg[600];

	int			rc;

	if (c->state != PQCM_ESTABLISHED || c->failed || c->foreign ||
		!pqcm_cm_ours_locked(c))
		return;
	rc = pqcm_check_notice(c->cm.fd, msg, sizeof(msg));
	if (rc == 1)
		pqcm_fail_locked(c, msg);
	else if (rc == 2)
	{
		/* conmgr writes a notice in one piece: a lasting fragment is wrong */
		if (c->partial_since == 0)
			c->partial_since = cm_mono_ms();
		else if (pqcm_remaining_ms(c->partial_since +
									PQCM_PARTIAL_TIMEOUT_S * 1000) == 0)
			pqcm_fail_locked(c, "incomplete message from conmgr");
	}
	else
		c->partial_since = 0;
}

static void
check_conn(const PGconn *conn)
{
	PqcmConn   *c;

	pthread_mutex_lock(&pqcm_lock);
	c = pqcm_find_locked(conn);
	if (c)
		pqcm_check_locked(c);
	pthread_mutex_unlock(&pqcm_lock);
}

/*
 * The server's last words.  A backend ended by a shutdown, by
 * pg_terminate_backend() or by a crash of another process says why before
 * it closes its socket (FATAL "terminating connection due to administrator
 * command", or a WARNING with SQLSTATE 57P01/57P02 for -m immediate).  When
 * the connection is idle, libpq hands that message to the notice receiver
 * only, and the application's next call reports a bare "server closed the
 * connection unexpectedly".  capture_notice() sits in front of the
 * application's receiver on every connection made through conmgr and keeps
 * such a message, so that PQerrorMessage() can name the cause.
 */
static bool
is_last_words(const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		return true;
	/* class 57: operator intervention (57P01 admin_shutdown, 57P02 ...) */
	return code && strncmp(code, "57P", 3) == 0;
}

static void
capture_notice(void *arg, const PGresult *res)
{
	const PGconn *conn = arg;
	PqcmConn   *c;
	PQnoticeReceiver next = NULL;
	void	   *next_arg = NULL;
	bool		found = false;

	pthread_mutex_lock(&pqcm_lock);
	c = pqcm_find_locked(conn);
	if (c && c->hooked)
	{
		found = true;
		next = c->chain_rec;
		next_arg = c->chain_arg;
		if (c->server_msg[0] == '\0' && is_last_words(res))
		{
			const char *m = PQresultErrorMessage(res);
			size_t		len;

			snprintf(c->server_msg, sizeof(c->server_msg), "%s", m ? m : "");
			len = strlen(c->server_msg);
			while (len > 0 && c->server_msg[len - 1] == '\n')
				c->server_msg[--len] = '\0';
		}
	}
	pthread_mutex_unlock(&pqcm_lock);
	if (next)
		next(next_arg, res);
	else if (!found)
	{
		/* not ours any more: do what libpq's default receiver does */
		const char *m = PQresultErrorMessage(res);

		if (m)
			fputs(m, stderr);
	}
}

/* Put capture_notice() in front of the connection's notice receiver. */
void
pqcm_hook_notices(PqcmConn *c)
{
	PQnoticeReceiver prev;

	if (c->hooked)
		return;
	prev = pqcm_real.setNoticeReceiver(c->conn, capture_notice, c->conn);
	pthread_mutex_lock(&pqcm_lock);
	c->chain_rec = prev;
	/* libpq does not return the argument: only ours can differ from NULL */
	c->chain_arg = (prev == c->notice_rec) ? c->notice_rec_arg : NULL;
	c->server_msg[0] = '\0';
	c->hooked = true;
	pthread_mutex_unlock(&pqcm_lock);
}

/* Give the connection its own notice receiver back (before a reset). */
void
pqcm_unhook_notices(PqcmConn *c)
{
	if (!c->hooked)
		return;
	pthread_mutex_lock(&pqcm_lock);
	c->hooked = false;
	pthread_mutex_unlock(&pqcm_lock);
	(void) pqcm_real.setNoticeReceiver(c->conn, c->chain_rec, c->chain_arg);
}

/* ---------------------------------------------------------------------
 * The wrapped calls
 * ---------------------------------------------------------------------
 */

int
PQcmSocket(const PGconn *conn)
{
	PqcmConn   *c;
	int			fd = -1;

	if (conn == NULL || atomic_load(&pqcm_ntracked) == 0)
		return -1;
	pthread_mutex_lock(&pqcm_lock);
	c = pqcm_find_locked(conn);
	if (c && c->state == PQCM_ESTABLISHED && !c->foreign &&
		pqcm_cm_ours_locked(c))
		fd = c->cm.fd;
	pthread_mutex_unlock(&pqcm_lock);
	return fd;
}

ConnStatusType
PQstatus(const PGconn *conn)
{
	PqcmConn   *c;
	ConnStatusType st = (ConnStatusType) -1;

	REAL();
	if (conn && TRACKED())
	{
		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c)
		{
			pqcm_check_locked(c);
			release_locked(c);
			if (c->state == PQCM_STAGE1)
				st = CONNECTION_AWAITING_CMRESPONSE;
			else if (c->failed || c->state == PQCM_FAILED_CONNECT)
				st = CONNECTION_BAD;
		}
		pthread_mutex_unlock(&pqcm_lock);
		if (st != (ConnStatusType) -1)
			return st;
	}
	return pqcm_real.status(conn);
}

int
PQsocket(const PGconn *conn)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;
		int			fd = -2;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c && c->state == PQCM_STAGE1)
			fd = c->walk.probe.fd;
		pthread_mutex_unlock(&pqcm_lock);
		if (fd != -2)
			return fd;
	}
	return pqcm_real.socket(conn);
}

/* During stage 1, PQhost/PQhostaddr/PQport describe the conmgr. */
static PqcmConn *
stage1_conn(const PGconn *conn)
{
	PqcmConn   *c = NULL;

	if (conn && TRACKED())
	{
		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c && c->state != PQCM_STAGE1 && !c->husk &&
			!(c->state == PQCM_STAGE2 && c->pending.fd >= 0))
			c = NULL;
		pthread_mutex_unlock(&pqcm_lock);
	}
	return c;
}

char *
PQhost(const PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = stage1_conn(conn);
	if (c && c->req.nentries > 0)
	{
		int			i = c->walk.entry;
		PqcmEntry  *e;

		if (i >= c->req.nentries)
			i = c->req.nentries - 1;
		e = &c->req.entries[i];

		return e->host[0] ? e->host : e->hostaddr;
	}
	return pqcm_real.host(conn);
}

char *
PQhostaddr(const PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = stage1_conn(conn);
	if (c)
		return c->walk.hostaddr;
	return pqcm_real.hostaddr(conn);
}

char *
PQport(const PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = stage1_conn(conn);
	if (c && c->req.nentries > 0)
		return c->req.entries[c->walk.entry < c->req.nentries ?
							  c->walk.entry : c->req.nentries - 1].port;
	return pqcm_real.port(conn);
}

/* A held object has no current host: answer from the options. */
char *
PQpass(const PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = stage1_conn(conn);
	if (c && c->husk)
	{
		const char *p = pqcm_opts_get(&c->req.opts, "password");

		return (char *) (p ? p : "");
	}
	return pqcm_real.pass(conn);
}

/*
 * The error of a broken connection made through conmgr, naming the cause:
 * conmgr's reason when its notice arrived, then the server's last words
 * when libpq read them while the connection was idle, then libpq's own
 * message.  NULL when libpq's message is enough.  Caller holds the lock.
 */
static char *
failure_message_locked(PqcmConn *c)
{
	char	   *m = NULL;
	const char *libpq;
	bool		server;

	if (!c->failed && pqcm_real.status(c->conn) == CONNECTION_BAD)
		pqcm_check_locked(c);	/* a notice that has arrived by now counts */
	libpq = pqcm_real.errorMessage(c->conn);
	if (libpq == NULL)
		libpq = "";
	/* last words end the session, whether or not libpq has seen the end */
	server = c->server_msg[0] != '\0' && strstr(libpq, c->server_msg) == NULL;
	if (!c->failed && !server)
		return NULL;
	if (c->failed)
		pqcm_appendf(&m, "%s\n", c->failmsg);
	if (server)
		pqcm_appendf(&m, "%s\n", c->server_msg);
	pqcm_appendf(&m, "%s", libpq);
	free(c->errcache);
	c->errcache = m;
	return m;
}

char *
PQerrorMessage(const PGconn *conn)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;
		char	   *r = NULL;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c && c->state == PQCM_FAILED_CONNECT && c->errmsg)
			r = c->errmsg;
		else if (c && c->state == PQCM_ESTABLISHED)
			r = failure_message_locked(c);
		pthread_mutex_unlock(&pqcm_lock);
		if (r)
			return r;
	}
	return pqcm_real.errorMessage(conn);
}

/*
 * PQconsumeInput() only reads; libpq parses later (PQisBusy, PQgetResult,
 * PQnotifies).  A backend's last words read here would be dropped unparsed
 * if the next read finds end-of-file, so on a connection made through
 * conmgr they are parsed at once: PQisBusy() parses what was read and
 * passes notices to the receiver, which is what the application's next
 * libpq call would do anyway.
 */
int
PQconsumeInput(PGconn *conn)
{
	int			ok;

	REAL();
	if (!(conn && TRACKED()))
		return pqcm_real.consumeInput(conn);
	check_conn(conn);
	ok = pqcm_real.consumeInput(conn);
	if (ok)
		(void) pqcm_real.isBusy(conn);
	release_if_bad(conn);
	return ok;
}

PGresult *
PQgetResult(PGconn *conn)
{
	PGresult   *res;
	bool		tracked;

	REAL();
	tracked = conn && TRACKED();
	if (tracked && !WATCHED())
		check_conn(conn);
	res = pqcm_real.getResult(conn);
	if (tracked)
		release_if_bad(conn);
	return res;
}

int
PQisBusy(PGconn *conn)
{
	int			busy;
	bool		tracked;

	REAL();
	tracked = conn && TRACKED();
	if (tracked && !WATCHED())
		check_conn(conn);
	busy = pqcm_real.isBusy(conn);
	if (tracked)
		release_if_bad(conn);
	return busy;
}

void
PQfinish(PGconn *conn)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c)
			pqcm_untrack_locked(c);
		pthread_mutex_unlock(&pqcm_lock);
		if (c)
		{
			pqcm_free_conn(c);
			pqcm_watcher_poke();
		}
	}
	pqcm_real.finish(conn);
}

int
PQregisterEventProc(PGconn *conn, PGEventProc proc, const char *name,
					void *passThrough)
{
	int			ok;

	REAL();
	ok = pqcm_real.registerEventProc(conn, proc, name, passThrough);
	if (ok && conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c)
		{
			void	   *n = realloc(c->events, sizeof(*c->events) * (size_t) (c->nevents + 1));

			if (n)
			{
				c->events = n;
				c->events[c->nevents].proc = proc;
				c->events[c->nevents].name = pqcm_strdup(name);
				c->events[c->nevents].pass = passThrough;
				c->nevents++;
			}
		}
		pthread_mutex_unlock(&pqcm_lock);
	}
	return ok;
}

PQnoticeReceiver
PQsetNoticeReceiver(PGconn *conn, PQnoticeReceiver proc, void *arg)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;
		bool		hooked = false;
		PQnoticeReceiver prev = NULL;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c && c->hooked)
		{
			/* capture_notice() stays in front; it passes notices to proc */
			hooked = true;
			prev = c->chain_rec;
			if (proc)
			{
				c->chain_rec = proc;
				c->chain_arg = arg;
			}
		}
		if (c && proc)
		{
			c->notice_rec = proc;
			c->notice_rec_arg = arg;
		}
		pthread_mutex_unlock(&pqcm_lock);
		if (hooked)
			return prev;
	}
	return pqcm_real.setNoticeReceiver(conn, proc, arg);
}

PQnoticeProcessor
PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc, void *arg)
{
	REAL();
	if (conn && proc && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = pqcm_find_locked(conn);
		if (c)
		{
			c->notice_proc = proc;
			c->notice_proc_arg = arg;
		}
		pthread_mutex_unlock(&pqcm_lock);
	}
	return pqcm_real.setNoticeProcessor(conn, proc, arg);
}
