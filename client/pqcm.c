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
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libpq-fe.h"
#include "libpq-events.h"

#include "libpq-cm.h"
#include "pqcm_int.h"

/* States of a tracked connection. */
typedef enum PqcmState
{
	PQCM_STAGE1 = 0,			/* asynchronous: talking to conmgr */
	PQCM_STAGE2,				/* asynchronous: libpq connects */
	PQCM_ESTABLISHED,			/* connected through conmgr */
	PQCM_FAILED_CONNECT			/* connection failed; our error text */
} PqcmState;

typedef struct PqcmConn
{
	struct PqcmConn *next;
	PGconn	   *conn;
	PqcmState	state;
	int			cm_fd;			/* socket to conmgr, -1 if none */
	int			sql_fd;			/* our duplicate of PQsocket(), -1 if none */
	bool		failed;			/* conmgr reported a failure */
	bool		resetting;		/* PQresetStart() in progress */
	char		failmsg[640];
	char		server_msg[512];	/* the server's last words, see
									 * capture_notice() */
	char	   *errmsg;			/* PQerrorMessage() override */
	char	   *errcache;		/* last string returned by PQerrorMessage */
	/* for PQreset and asynchronous connections */
	PqcmRequest req;
	PqcmMode	mode;
	int			entry;			/* entry being tried */
	int			count;			/* entries handed to libpq at once */
	PqcmProbe	probe;
	struct timespec deadline;
	char	   *errors;			/* messages of the failed entries */
	char		hostaddr[64];	/* conmgr's address during stage 1 */
	int			pending_cm_fd;	/* stage 2 through conmgr: its socket */
	struct timespec partial_since;	/* part of a message waiting, or 0 */
	bool		probing;		/* probe of c->entry started */
	bool		husk;			/* conn is held before its first poll */
	void	   *odbc_dbc;		/* ODBC connection handle being connected
								 * when this connection was made, or NULL */
	/* application settings carried over when the connection is replaced */
	PQnoticeReceiver notice_rec;
	void	   *notice_rec_arg;
	PQnoticeProcessor notice_proc;
	void	   *notice_proc_arg;
	/* capture_notice() is installed; it passes every notice on to these */
	bool		hooked;
	PQnoticeReceiver chain_rec;
	void	   *chain_arg;
	int			nevents;		/* PGEventProc registrations, in order */
	struct
	{
		PGEventProc proc;
		char	   *name;
		void	   *pass;
	}		   *events;
} PqcmConn;

/* The real libpq functions. */
static struct
{
	PGconn	   *(*connectdb) (const char *);
	PGconn	   *(*connectdbParams) (const char *const *, const char *const *, int);
	PGconn	   *(*setdbLogin) (const char *, const char *, const char *,
							   const char *, const char *, const char *,
							   const char *);
	PGconn	   *(*connectStart) (const char *);
	PGconn	   *(*connectStartParams) (const char *const *, const char *const *, int);
	PostgresPollingStatusType (*connectPoll) (PGconn *);
	void		(*reset) (PGconn *);
	int			(*resetStart) (PGconn *);
	PostgresPollingStatusType (*resetPoll) (PGconn *);
	void		(*finish) (PGconn *);
	ConnStatusType (*status) (const PGconn *);
	int			(*socket) (const PGconn *);
	char	   *(*host) (const PGconn *);
	char	   *(*hostaddr) (const PGconn *);
	char	   *(*port) (const PGconn *);
	char	   *(*pass) (const PGconn *);
	char	   *(*errorMessage) (const PGconn *);
	int			(*consumeInput) (PGconn *);
	PGresult   *(*getResult) (PGconn *);
	int			(*isBusy) (PGconn *);
	PGPing		(*ping) (const char *);
	PGPing		(*pingParams) (const char *const *, const char *const *, int);
	int			(*registerEventProc) (PGconn *, PGEventProc, const char *, void *);
	PQnoticeReceiver (*setNoticeReceiver) (PGconn *, PQnoticeReceiver, void *);
	PQnoticeProcessor (*setNoticeProcessor) (PGconn *, PQnoticeProcessor, void *);
} real;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* Table of tracked connections. */
#define PQCM_BUCKETS 256
static pthread_mutex_t pqcm_lock = PTHREAD_MUTEX_INITIALIZER;
static PqcmConn *pqcm_table[PQCM_BUCKETS];
static atomic_int pqcm_ntracked;

/* Depth of calls this library makes into libpq, per thread. */
static __thread int pqcm_inside;
/* While set, PQconnectPoll() called from inside libpq does nothing. */
static __thread bool pqcm_hold_poll;

/*
 * How long part of a message may sit on a conmgr socket before it counts as
 * a protocol failure; meanwhile the watcher looks at it every
 * PQCM_PARTIAL_POLL_MS instead of spinning on a readable socket.
 */
#define PQCM_PARTIAL_TIMEOUT_S	2
#define PQCM_PARTIAL_POLL_MS	50

/* The watcher thread (read without the lock by the per-call checks). */
static atomic_bool watcher_running;
static int	watcher_wake[2] = {-1, -1};

static void watcher_start(void);
static void watcher_poke(void);

static void
die_missing(const char *name)
{
	fprintf(stderr, "libpqcm: libpq function %s not found: %s\n", name, dlerror());
	abort();
}

#define LOAD(field, name) \
	do { \
		*(void **) (&real.field) = dlsym(RTLD_NEXT, name); \
		if (real.field == NULL) \
			die_missing(name); \
	} while (0)

static void
load_real(void)
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

#define REAL() pthread_once(&real_once, load_real)

/* ---------------------------------------------------------------------
 * The table
 * ---------------------------------------------------------------------
 */
static unsigned
bucket_of(const PGconn *conn)
{
	uintptr_t	p = (uintptr_t) conn;

	return (unsigned) ((p >> 4) ^ (p >> 12)) % PQCM_BUCKETS;
}

/* Find a tracked connection; caller holds pqcm_lock. */
static PqcmConn *
find_locked(const PGconn *conn)
{
	PqcmConn   *c;

	for (c = pqcm_table[bucket_of(conn)]; c; c = c->next)
		if (c->conn == conn)
			return c;
	return NULL;
}

static PqcmConn *
track_new(PGconn *conn)
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
	c->probe.fd = -1;
	c->pending_cm_fd = -1;
	c->odbc_dbc = pqcm_odbc_connecting();
	pthread_mutex_lock(&pqcm_lock);
	c->next = pqcm_table[b];
	pqcm_table[b] = c;
	atomic_fetch_add(&pqcm_ntracked, 1);
	pthread_mutex_unlock(&pqcm_lock);
	return c;
}

/* Remove from the table (does not free); caller holds pqcm_lock. */
static void
untrack_locked(PqcmConn *c)
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
			host = real.host(c->conn);
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
static void
close_sockets(PqcmConn *c)
{
	if (c->cm_fd >= 0)
		close(c->cm_fd);
	if (c->sql_fd >= 0)
		close(c->sql_fd);
	if (c->pending_cm_fd >= 0)
		close(c->pending_cm_fd);
	c->cm_fd = c->sql_fd = c->pending_cm_fd = -1;
	pqcm_probe_close(&c->probe);
	c->probing = false;
}

static void
free_conn(PqcmConn *c)
{
	int			i;

	for (i = 0; i < c->nevents; i++)
		free(c->events[i].name);
	free(c->events);
	close_sockets(c);
	pqcm_request_free(&c->req);
	free(c->errmsg);
	free(c->errcache);
	free(c->errors);
	free(c);
}

/* Look up a connection the fast way: nothing tracked, nothing to do. */
#define TRACKED() (atomic_load_explicit(&pqcm_ntracked, memory_order_relaxed) > 0 && pqcm_inside == 0)

/*
 * The watcher thread runs: it acts on every notice within milliseconds by
 * shutting the SQL socket down, so PQgetResult() and PQisBusy() need not
 * look at the conmgr socket themselves (a syscall per call).
 * PQconsumeInput() still does: an application that saw PQcmSocket()
 * readable calls it next and must get the failure at once.
 */
#define WATCHED() atomic_load_explicit(&watcher_running, memory_order_relaxed)

/*
 * Record a failure notice: remember why and shut the SQL socket down so
 * that libpq's pending or next read sees end-of-file.  Caller holds the
 * lock.
 */
static void
fail_locked(PqcmConn *c, const char *msg)
{
	if (c->failed)
		return;
	c->failed = true;
	snprintf(c->failmsg, sizeof(c->failmsg), "%s", msg);
	if (c->sql_fd >= 0)
		shutdown(c->sql_fd, SHUT_RDWR);
}

/* Look for a notice on an established connection; caller holds lock. */
static void
check_locked(PqcmConn *c)
{
	char		msg[600];

	int			rc;

	if (c->state != PQCM_ESTABLISHED || c->failed || c->cm_fd < 0)
		return;
	rc = pqcm_check_notice(c->cm_fd, msg, sizeof(msg));
	if (rc == 1)
		fail_locked(c, msg);
	else if (rc == 2)
	{
		/* conmgr writes a notice in one piece: a lasting fragment is wrong */
		if (c->partial_since.tv_sec == 0)
			clock_gettime(CLOCK_MONOTONIC, &c->partial_since);
		else
		{
			struct timespec dl = c->partial_since;

			dl.tv_sec += PQCM_PARTIAL_TIMEOUT_S;
			if (pqcm_remaining_ms(&dl) == 0)
				fail_locked(c, "incomplete message from conmgr");
		}
	}
	else
		c->partial_since.tv_sec = 0;
}

static void
check_conn(const PGconn *conn)
{
	PqcmConn   *c;

	pthread_mutex_lock(&pqcm_lock);
	c = find_locked(conn);
	if (c)
		check_locked(c);
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
	c = find_locked(conn);
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
static void
hook_notices(PqcmConn *c)
{
	PQnoticeReceiver prev;

	if (c->hooked)
		return;
	prev = real.setNoticeReceiver(c->conn, capture_notice, c->conn);
	pthread_mutex_lock(&pqcm_lock);
	c->chain_rec = prev;
	/* libpq does not return the argument: only ours can differ from NULL */
	c->chain_arg = (prev == c->notice_rec) ? c->notice_rec_arg : NULL;
	c->server_msg[0] = '\0';
	c->hooked = true;
	pthread_mutex_unlock(&pqcm_lock);
}

/* Give the connection its own notice receiver back (before a reset). */
static void
unhook_notices(PqcmConn *c)
{
	if (!c->hooked)
		return;
	pthread_mutex_lock(&pqcm_lock);
	c->hooked = false;
	pthread_mutex_unlock(&pqcm_lock);
	(void) real.setNoticeReceiver(c->conn, c->chain_rec, c->chain_arg);
}

/* ---------------------------------------------------------------------
 * Connecting
 * ---------------------------------------------------------------------
 */

/* Seconds left until a deadline, rounded up; 0 = no deadline. */
static int
seconds_left(const struct timespec *d, bool *expired)
{
	int			ms = pqcm_remaining_ms(d);

	*expired = ms == 0;
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

/* Call the real PQconnectdbParams on an option list. */
static PGconn *
real_connect(const PqcmOptions *o)
{
	PGconn	   *conn;

	pqcm_inside++;
	conn = real.connectdbParams((const char *const *) o->kw,
								(const char *const *) o->val, 0);
	pqcm_inside--;
	return conn;
}

/* A connection object in CONNECTION_BAD state, made without network. */
static PGconn *
make_bad_conn(void)
{
	static const char *const kw[] = {"sslmode", NULL};
	static const char *const val[] = {"invalid", NULL};
	PGconn	   *conn;

	pqcm_inside++;
	conn = real.connectdbParams(kw, val, 0);
	pqcm_inside--;
	return conn;
}

/*
 * Make an established connection known: keep the conmgr socket, duplicate
 * the SQL socket for the watcher, register the backend with conmgr.
 */
static void
establish(PqcmConn *c, int cm_fd)
{
	int			sfd;

	pthread_mutex_lock(&pqcm_lock);
	c->cm_fd = cm_fd;
	c->state = PQCM_ESTABLISHED;
	c->failed = false;
	c->partial_since.tv_sec = 0;
	sfd = real.socket(c->conn);
	c->sql_fd = sfd >= 0 ? fcntl(sfd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&pqcm_lock);
	hook_notices(c);
	pqcm_inside++;
	(void) pqcm_send_register(cm_fd, c->conn);
	pqcm_inside--;
	watcher_start();
	watcher_poke();
}

/* The message for a connection that failed: every entry's reason. */
static PGconn *
connect_failed(PGconn *last_bad, char *errors, PqcmRequest *r, PqcmMode mode)
{
	PqcmConn   *c;

	if (last_bad == NULL)
		last_bad = make_bad_conn();
	c = track_new(last_bad);
	c->state = PQCM_FAILED_CONNECT;
	c->errmsg = errors ? errors : pqcm_strdup("could not connect\n");
	c->req = *r;
	c->mode = mode;
	memset(r, 0, sizeof(*r));
	return last_bad;
}

/*
 * Connect synchronously: walk the host list in written order.  Entries
 * that may be a conmgr are probed; a conmgr's instance is connected with
 * the remaining connect_timeout; every other run of entries is handed to
 * libpq as a shorter host list.  Takes ownership of *r.
 */
static PGconn *
connect_sync(PqcmRequest *r, PqcmMode mode)
{
	PGconn	   *last_bad = NULL;
	char	   *errors = NULL;
	int			i = 0;

	while (i < r->nentries)
	{
		PqcmEntry  *e = &r->entries[i];
		PqcmOptions o;
		PGconn	   *conn;
		int			count = 1;

		if (e->probe && !pqcm_plain_cached(e))
		{
			PqcmProbe	p;
			struct timespec dl;
			PqcmProbeResult res;

			pqcm_deadline(&dl, r->connect_timeout);
			pqcm_probe_init(&p, e, mode != PQCM_MODE_ON, r->tsa, r->application_name);
			res = p.addrs ? pqcm_probe_run(&p, &dl) : PQCM_PROBE_PLAIN;
			if (res == PQCM_PROBE_PLAIN && p.addrs)
				pqcm_plain_remember(e);
			if (res == PQCM_PROBE_INSTANCE)
			{
				char		addr[64];
				char		port[16];
				bool		expired;
				int			left = seconds_left(&dl, &expired);
				int			cm_fd = p.fd;

				p.fd = -1;
				pqcm_probe_close(&p);
				instance_hostaddr(r, p.instance.host.str, addr, sizeof(addr));
				snprintf(port, sizeof(port), "%u", (unsigned) p.instance.port);
				pqcm_request_stage2(r, &o, 0, 0, p.instance.host.str, addr, port, left);
				conn = real_connect(&o);
				pqcm_opts_free(&o);
				if (real.status(conn) == CONNECTION_OK)
				{
					PqcmConn   *c = track_new(conn);

					c->req = *r;
					c->mode = mode;
					memset(r, 0, sizeof(*r));
					establish(c, cm_fd);
					free(errors);
					if (last_bad)
						real.finish(last_bad);
					return conn;
				}
				close(cm_fd);
				pqcm_appendf(&errors, "%s", real.errorMessage(conn));
				if (last_bad)
					real.finish(last_bad);
				last_bad = conn;
				i++;
				continue;
			}
			if (res == PQCM_PROBE_NO_INSTANCE || res == PQCM_PROBE_ERROR)
			{
				pqcm_appendf(&errors, "%s\n", p.message);
				pqcm_probe_close(&p);
				i++;
				continue;
			}
			/* a plain server, or nothing listening: libpq's business */
			pqcm_probe_close(&p);
		}
		else if (!e->probe)
		{
			while (i + count < r->nentries && !r->entries[i + count].probe)
				count++;
		}
		pqcm_request_stage2(r, &o, i, count, NULL, NULL, NULL, 0);
		conn = real_connect(&o);
		pqcm_opts_free(&o);
		if (real.status(conn) == CONNECTION_OK)
		{
			free(errors);
			if (last_bad)
				real.finish(last_bad);
			pqcm_request_free(r);
			return conn;
		}
		pqcm_appendf(&errors, "%s", real.errorMessage(conn));
		if (last_bad)
			real.finish(last_bad);
		last_bad = conn;
		i += count;
	}
	return connect_failed(last_bad, errors, r, mode);
}

/*
 * Common front of every connecting entry point: reads PGCONMGR and prepares
 * the request.  Returns true when Connection Manager takes the request
 * (*mode set).  Otherwise *failed is the failed connection to return when
 * PGCONMGR is invalid, or NULL when the request is libpq's alone (the
 * caller then calls the real function).
 */
static bool
request_front(PqcmRequest *r, PqcmMode *mode, PGconn **failed)
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
	if (*mode == PQCM_MODE_OFF || !pqcm_request_init(r, *mode))
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

	if (!request_front(r, &mode, &failed))
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
		return real.connectdbParams(keywords, values, expand_dbname);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname))
	{
		pqcm_opts_free(&r.opts);
		return real.connectdbParams(keywords, values, expand_dbname);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = real.connectdbParams(keywords, values, expand_dbname);
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
		return real.connectdb(conninfo);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_conninfo(&r.opts, conninfo))
	{
		pqcm_opts_free(&r.opts);
		return real.connectdb(conninfo);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = real.connectdb(conninfo);
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
		return real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_login(&r.opts, pghost, pgport, pgoptions, pgtty,
							  dbName, login, pwd))
	{
		pqcm_opts_free(&r.opts);
		return real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
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
	int			i = 0;

	while (i < r->nentries)
	{
		PqcmEntry  *e = &r->entries[i];
		PqcmOptions o;
		int			count = 1;
		bool		have_opts = false;

		if (e->probe && !pqcm_plain_cached(e))
		{
			PqcmProbe	p;
			struct timespec dl;
			PqcmProbeResult res;

			pqcm_deadline(&dl, r->connect_timeout);
			pqcm_probe_init(&p, e, mode != PQCM_MODE_ON, r->tsa, r->application_name);
			res = p.addrs ? pqcm_probe_run(&p, &dl) : PQCM_PROBE_PLAIN;
			if (res == PQCM_PROBE_PLAIN && p.addrs)
				pqcm_plain_remember(e);
			if (res == PQCM_PROBE_INSTANCE)
			{
				char		addr[64];
				char		port[16];
				bool		expired;

				instance_hostaddr(r, p.instance.host.str, addr, sizeof(addr));
				snprintf(port, sizeof(port), "%u", (unsigned) p.instance.port);
				pqcm_request_stage2(r, &o, 0, 0, p.instance.host.str, addr, port,
									seconds_left(&dl, &expired));
				have_opts = true;
			}
			else if (res == PQCM_PROBE_NO_INSTANCE || res == PQCM_PROBE_ERROR)
				result = PQPING_NO_RESPONSE;
			else
			{
				pqcm_request_stage2(r, &o, i, 1, NULL, NULL, NULL, 0);
				have_opts = true;
			}
			pqcm_probe_close(&p);
		}
		else
		{
			while (!e->probe && i + count < r->nentries && !r->entries[i + count].probe)
				count++;
			pqcm_request_stage2(r, &o, i, count, NULL, NULL, NULL, 0);
			have_opts = true;
		}
		if (have_opts)
		{
			pqcm_inside++;
			result = real.pingParams((const char *const *) o.kw,
									 (const char *const *) o.val, 0);
			pqcm_inside--;
			pqcm_opts_free(&o);
			if (result == PQPING_OK)
				break;
		}
		i += count;
	}
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
	if (mode == PQCM_MODE_OFF || !pqcm_request_init(r, mode))
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
	result = real.pingParams(keywords, values, expand_dbname);
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
	result = real.ping(conninfo);
	pqcm_inside--;
	return result;
}

/* ---------------------------------------------------------------------
 * Connection state and I/O
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
	c = find_locked(conn);
	if (c && c->state == PQCM_ESTABLISHED)
		fd = c->cm_fd;
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
		c = find_locked(conn);
		if (c)
		{
			check_locked(c);
			if (c->state == PQCM_STAGE1)
				st = CONNECTION_AWAITING_CMRESPONSE;
			else if (c->failed || c->state == PQCM_FAILED_CONNECT)
				st = CONNECTION_BAD;
		}
		pthread_mutex_unlock(&pqcm_lock);
		if (st != (ConnStatusType) -1)
			return st;
	}
	return real.status(conn);
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
		c = find_locked(conn);
		if (c && c->state == PQCM_STAGE1)
			fd = c->probe.fd;
		pthread_mutex_unlock(&pqcm_lock);
		if (fd != -2)
			return fd;
	}
	return real.socket(conn);
}

/* During stage 1, PQhost/PQhostaddr/PQport describe the conmgr. */
static PqcmConn *
stage1_conn(const PGconn *conn)
{
	PqcmConn   *c = NULL;

	if (conn && TRACKED())
	{
		pthread_mutex_lock(&pqcm_lock);
		c = find_locked(conn);
		if (c && c->state != PQCM_STAGE1 && !c->husk &&
			!(c->state == PQCM_STAGE2 && c->pending_cm_fd >= 0))
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
		PqcmEntry  *e = &c->req.entries[c->entry < c->req.nentries ?
										c->entry : c->req.nentries - 1];

		return e->host[0] ? e->host : e->hostaddr;
	}
	return real.host(conn);
}

char *
PQhostaddr(const PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = stage1_conn(conn);
	if (c)
		return c->hostaddr;
	return real.hostaddr(conn);
}

char *
PQport(const PGconn *conn)
{
	PqcmConn   *c;

	REAL();
	c = stage1_conn(conn);
	if (c && c->req.nentries > 0)
		return c->req.entries[c->entry < c->req.nentries ?
							  c->entry : c->req.nentries - 1].port;
	return real.port(conn);
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
	return real.pass(conn);
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

	if (!c->failed && real.status(c->conn) == CONNECTION_BAD)
		check_locked(c);		/* a notice that has arrived by now counts */
	libpq = real.errorMessage(c->conn);
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
		c = find_locked(conn);
		if (c && c->state == PQCM_FAILED_CONNECT && c->errmsg)
			r = c->errmsg;
		else if (c && c->state == PQCM_ESTABLISHED)
			r = failure_message_locked(c);
		pthread_mutex_unlock(&pqcm_lock);
		if (r)
			return r;
	}
	return real.errorMessage(conn);
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
		return real.consumeInput(conn);
	check_conn(conn);
	ok = real.consumeInput(conn);
	if (ok)
		(void) real.isBusy(conn);
	return ok;
}

PGresult *
PQgetResult(PGconn *conn)
{
	REAL();
	if (conn && TRACKED() && !WATCHED())
		check_conn(conn);
	return real.getResult(conn);
}

int
PQisBusy(PGconn *conn)
{
	REAL();
	if (conn && TRACKED() && !WATCHED())
		check_conn(conn);
	return real.isBusy(conn);
}

void
PQfinish(PGconn *conn)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = find_locked(conn);
		if (c)
			untrack_locked(c);
		pthread_mutex_unlock(&pqcm_lock);
		if (c)
		{
			free_conn(c);
			watcher_poke();
		}
	}
	real.finish(conn);
}

/* ---------------------------------------------------------------------
 * Asynchronous connections and resets
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
 * ---------------------------------------------------------------------
 */

/* Make a held connection object: libpq's, before its first poll. */
static PGconn *
make_held(const PqcmOptions *o)
{
	PGconn	   *conn;

	pqcm_inside++;
	pqcm_hold_poll = true;
	conn = real.connectStartParams((const char *const *) o->kw,
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
	(void) real.resetStart(conn);
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
	if (real.status(fresh) == CONNECTION_BAD)
	{
		pqcm_appendf(&c->errors, "%s", real.errorMessage(fresh));
		real.finish(fresh);
		return false;
	}
	nonblocking = PQisnonblocking(conn);
	verbosity = PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
	visibility = PQsetErrorContextVisibility(conn, PQSHOW_CONTEXT_ERRORS);
	if (!swap_conn(conn, fresh))
	{
		pqcm_appendf(&c->errors, "libpqcm: cannot use this libpq's connection objects\n");
		real.finish(fresh);
		return false;
	}
	real.finish(fresh);			/* the old, held object */
	pthread_mutex_lock(&pqcm_lock);
	c->hooked = false;			/* a fresh object has libpq's receiver */
	pthread_mutex_unlock(&pqcm_lock);
	PQsetnonblocking(conn, nonblocking);
	PQsetErrorVerbosity(conn, verbosity);
	PQsetErrorContextVisibility(conn, visibility);
	if (c->notice_rec)
		real.setNoticeReceiver(conn, c->notice_rec, c->notice_rec_arg);
	if (c->notice_proc)
		real.setNoticeProcessor(conn, c->notice_proc, c->notice_proc_arg);

	/*
	 * Event procedures: the old object, now finished, told them
	 * PGEVT_CONNDESTROY (with its own address and their old instance data);
	 * registering them again gives them PGEVT_REGISTER for this one.
	 */
	{
		int			i;

		for (i = 0; i < c->nevents; i++)
			(void) real.registerEventProc(conn, c->events[i].proc,
										  c->events[i].name, c->events[i].pass);
	}
	return true;
}

/* Move on to the entry after the current one (or run out of them). */
static void
next_entry(PqcmConn *c)
{
	c->entry += c->count;
	c->count = 1;
	c->probing = false;
	pqcm_probe_close(&c->probe);
	if (c->pending_cm_fd >= 0)
		close(c->pending_cm_fd);
	c->pending_cm_fd = -1;
}

/*
 * Drive an asynchronous connection (or reset) as far as it can go without
 * blocking.  Returns what PQconnectPoll() returns.
 */
static PostgresPollingStatusType
async_advance(PqcmConn *c)
{
	for (;;)
	{
		PqcmRequest *r = &c->req;

		if (c->entry >= r->nentries)
		{
			if (c->husk)
			{
				/* leave the application an ordinary failed connection */
				PGconn	   *bad = make_bad_conn();

				if (bad && swap_conn(c->conn, bad))
					c->husk = false;
				if (bad)
					real.finish(bad);
			}
			pthread_mutex_lock(&pqcm_lock);
			c->state = PQCM_FAILED_CONNECT;
			free(c->errmsg);
			c->errmsg = c->errors ? c->errors : pqcm_strdup("could not connect\n");
			c->errors = NULL;
			pthread_mutex_unlock(&pqcm_lock);
			return PGRES_POLLING_FAILED;
		}

		if (c->state == PQCM_STAGE1)
		{
			PqcmEntry  *e = &r->entries[c->entry];
			PqcmProbeResult res;
			PqcmOptions o;

			if (!e->probe)
			{
				/* a run of entries for libpq alone */
				c->count = 1;
				while (c->entry + c->count < r->nentries &&
					   !r->entries[c->entry + c->count].probe)
					c->count++;
				pqcm_request_stage2(r, &o, c->entry, c->count, NULL, NULL, NULL, 0);
				goto stage2;
			}
			if (!c->probing && pqcm_plain_cached(e))
			{
				c->count = 1;
				pqcm_request_stage2(r, &o, c->entry, 1, NULL, NULL, NULL, 0);
				goto stage2;
			}
			if (!c->probing)
			{
				PqcmProbe	fresh;

				/* name resolution may block: not under the lock */
				pqcm_probe_init(&fresh, e, c->mode != PQCM_MODE_ON, r->tsa,
								r->application_name);
				pthread_mutex_lock(&pqcm_lock);
				c->probe = fresh;
				c->probing = true;
				pthread_mutex_unlock(&pqcm_lock);
				pqcm_deadline(&c->deadline, r->connect_timeout);
				c->hostaddr[0] = '\0';
				if (c->probe.addrs == NULL)
				{
					/* unresolvable: libpq reports it */
					pqcm_request_stage2(r, &o, c->entry, 1, NULL, NULL, NULL, 0);
					goto stage2;
				}
			}
			pthread_mutex_lock(&pqcm_lock);
			res = pqcm_probe_step(&c->probe);
			if (res == PQCM_PROBE_PENDING && c->probe.cur)
			{
				if (getnameinfo(c->probe.cur->ai_addr, c->probe.cur->ai_addrlen,
								c->hostaddr, sizeof(c->hostaddr), NULL, 0,
								NI_NUMERICHOST) != 0)
					c->hostaddr[0] = '\0';
			}
			pthread_mutex_unlock(&pqcm_lock);
			switch (res)
			{
				case PQCM_PROBE_PENDING:
					if (pqcm_remaining_ms(&c->deadline) == 0)
					{
						pqcm_appendf(&c->errors, "timeout expired while waiting for conmgr at %s\n",
									 c->probe.label);
						pthread_mutex_lock(&pqcm_lock);
						next_entry(c);
						pthread_mutex_unlock(&pqcm_lock);
						continue;
					}
					return c->probe.want_events == POLLIN ?
						PGRES_POLLING_READING : PGRES_POLLING_WRITING;
				case PQCM_PROBE_INSTANCE:
					{
						char		addr[64];
						char		port[16];
						bool		expired;
						int			left = seconds_left(&c->deadline, &expired);

						pthread_mutex_lock(&pqcm_lock);
						c->pending_cm_fd = c->probe.fd;
						c->probe.fd = -1;
						pthread_mutex_unlock(&pqcm_lock);
						instance_hostaddr(r, c->probe.instance.host.str, addr, sizeof(addr));
						snprintf(port, sizeof(port), "%u", (unsigned) c->probe.instance.port);
						pqcm_request_stage2(r, &o, 0, 0, c->probe.instance.host.str,
											addr, port, left);
						goto stage2;
					}
				case PQCM_PROBE_NO_INSTANCE:
				case PQCM_PROBE_ERROR:
					pqcm_appendf(&c->errors, "%s\n", c->probe.message);
					pthread_mutex_lock(&pqcm_lock);
					next_entry(c);
					pthread_mutex_unlock(&pqcm_lock);
					continue;
				case PQCM_PROBE_PLAIN:
					pqcm_plain_remember(e);
					/* FALLTHROUGH */
				case PQCM_PROBE_DOWN:
					pqcm_request_stage2(r, &o, c->entry, 1, NULL, NULL, NULL, 0);
					goto stage2;
			}
			continue;

	stage2:
			{
				bool		ok = begin_stage2(c, &o);

				pqcm_opts_free(&o);
				pthread_mutex_lock(&pqcm_lock);
				pqcm_probe_close(&c->probe);
				c->probing = false;
				if (ok)
					c->state = PQCM_STAGE2;
				else
					next_entry(c);
				pthread_mutex_unlock(&pqcm_lock);
				if (!ok)
					continue;
			}
		}

		/* stage 2: libpq connects */
		{
			PostgresPollingStatusType ps;

			pqcm_inside++;
			ps = real.connectPoll(c->conn);
			pqcm_inside--;
			c->husk = false;
			if (ps == PGRES_POLLING_OK)
			{
				int			cm_fd = c->pending_cm_fd;

				if (cm_fd >= 0)
				{
					c->pending_cm_fd = -1;
					free(c->errors);
					c->errors = NULL;
					establish(c, cm_fd);
				}
				else
				{
					/* a plain server: nothing of ours remains */
					pthread_mutex_lock(&pqcm_lock);
					untrack_locked(c);
					pthread_mutex_unlock(&pqcm_lock);
					free_conn(c);
				}
				return PGRES_POLLING_OK;
			}
			if (ps != PGRES_POLLING_FAILED)
				return ps;
			pqcm_appendf(&c->errors, "%s", real.errorMessage(c->conn));
			pthread_mutex_lock(&pqcm_lock);
			next_entry(c);
			c->state = PQCM_STAGE1;
			pthread_mutex_unlock(&pqcm_lock);
			/* the last failure stays as libpq left it (PQconnectionNeedsPassword) */
			if (c->entry < r->nentries)
			{
				hold_reset(c->conn);
				c->husk = true;
			}
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
	if (conn == NULL || real.status(conn) == CONNECTION_BAD)
	{
		pqcm_request_free(r);
		return conn;			/* libpq's own error */
	}
	c = track_new(conn);
	pthread_mutex_lock(&pqcm_lock);
	c->req = *r;
	c->mode = mode;
	c->state = PQCM_STAGE1;
	c->entry = 0;
	c->count = 1;
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

	if (!request_front(r, &mode, &failed))
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
		return real.connectStartParams(keywords, values, expand_dbname);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname))
	{
		pqcm_opts_free(&r.opts);
		return real.connectStartParams(keywords, values, expand_dbname);
	}
	conn = start_front(&r, &handled);
	return handled ? conn : real.connectStartParams(keywords, values, expand_dbname);
}

PGconn *
PQconnectStart(const char *conninfo)
{
	PqcmRequest r;
	PGconn	   *conn;
	bool		handled;

	REAL();
	if (pqcm_inside)
		return real.connectStart(conninfo);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_conninfo(&r.opts, conninfo))
	{
		pqcm_opts_free(&r.opts);
		return real.connectStart(conninfo);
	}
	conn = start_front(&r, &handled);
	return handled ? conn : real.connectStart(conninfo);
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
		c = find_locked(conn);
		pthread_mutex_unlock(&pqcm_lock);
		if (c && (c->state == PQCM_STAGE1 || c->state == PQCM_STAGE2))
			return async_advance(c);
		if (c && c->state == PQCM_FAILED_CONNECT)
			return PGRES_POLLING_FAILED;
	}
	return real.connectPoll(conn);
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
	unhook_notices(c);
	pthread_mutex_lock(&pqcm_lock);
	close_sockets(c);
	c->state = PQCM_STAGE1;
	c->failed = false;
	c->entry = 0;
	c->count = 1;
	free(c->errors);
	c->errors = NULL;
	free(c->errmsg);
	c->errmsg = NULL;
	pthread_mutex_unlock(&pqcm_lock);
	watcher_poke();
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
		c = find_locked(conn);
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
	return real.resetStart(conn);
}

PostgresPollingStatusType
PQresetPoll(PGconn *conn)
{
	REAL();
	if (conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = find_locked(conn);
		pthread_mutex_unlock(&pqcm_lock);
		if (c && (c->state == PQCM_STAGE1 || c->state == PQCM_STAGE2))
			return async_advance(c);
		if (c && c->state == PQCM_FAILED_CONNECT)
			return PGRES_POLLING_FAILED;
	}
	return real.resetPoll(conn);
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

			if (c->entry != entry)
			{
				entry = c->entry;
				pqcm_deadline(&dl, c->req.connect_timeout);
			}
			pfd.fd = PQsocket(conn);
			pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd.revents = 0;
			ms = pqcm_remaining_ms(&dl);
			if (ms == 0 || poll(&pfd, 1, ms) == 0)
			{
				pqcm_appendf(&c->errors, "timeout expired\n");
				pthread_mutex_lock(&pqcm_lock);
				next_entry(c);
				c->state = PQCM_STAGE1;
				pthread_mutex_unlock(&pqcm_lock);
				if (c->entry < c->req.nentries)
				{
					hold_reset(conn);
					c->husk = true;
				}
			}
			ps = async_advance(c);
		}
		return;
	}
	real.reset(conn);
}

int
PQregisterEventProc(PGconn *conn, PGEventProc proc, const char *name,
					void *passThrough)
{
	int			ok;

	REAL();
	ok = real.registerEventProc(conn, proc, name, passThrough);
	if (ok && conn && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = find_locked(conn);
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
		c = find_locked(conn);
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
	return real.setNoticeReceiver(conn, proc, arg);
}

PQnoticeProcessor
PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc, void *arg)
{
	REAL();
	if (conn && proc && TRACKED())
	{
		PqcmConn   *c;

		pthread_mutex_lock(&pqcm_lock);
		c = find_locked(conn);
		if (c)
		{
			c->notice_proc = proc;
			c->notice_proc_arg = arg;
		}
		pthread_mutex_unlock(&pqcm_lock);
	}
	return real.setNoticeProcessor(conn, proc, arg);
}

/* ---------------------------------------------------------------------
 * The watcher thread
 * ---------------------------------------------------------------------
 */

/* Is the watcher wanted?  PGCONMGR_WATCHER=off switches it off. */
static bool
watcher_wanted(void)
{
	const char *v = getenv("PGCONMGR_WATCHER");

	return !(v && (strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0));
}

static void
watcher_poke(void)
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
 */
static void *
watcher_main(void *arg)
{
	struct pollfd *pfds = NULL;
	int			cap = 0;

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
				if (c->state != PQCM_ESTABLISHED || c->failed || c->cm_fd < 0)
					continue;
				if (c->partial_since.tv_sec != 0)
				{
					/* looked at on a timer, see below */
					partial = true;
					continue;
				}
				if (n >= cap)
				{
					int			ncap = cap ? cap * 2 : 64;
					struct pollfd *np = realloc(pfds, sizeof(struct pollfd) * (size_t) ncap);

					if (np == NULL)
						break;
					pfds = np;
					cap = ncap;
				}
				pfds[n].fd = c->cm_fd;
				pfds[n].events = POLLIN;
				pfds[n].revents = 0;
				n++;
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
			cap = 64;
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
					if (c->partial_since.tv_sec != 0)
						check_locked(c);
		}
		for (i = 1; i < n; i++)
		{
			int			b;
			PqcmConn   *c;

			if (pfds[i].revents == 0)
				continue;
			/* the socket may have been closed meanwhile: look it up again */
			for (b = 0; b < PQCM_BUCKETS; b++)
				for (c = pqcm_table[b]; c; c = c->next)
					if (c->cm_fd == pfds[i].fd)
						check_locked(c);
		}
		pthread_mutex_unlock(&pqcm_lock);
	}
	return NULL;
}

static void
watcher_start(void)
{
	pthread_t	tid;
	pthread_attr_t attr;
	sigset_t	all,
				old;

	pthread_mutex_lock(&pqcm_lock);
	if (watcher_running || !watcher_wanted())
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
		watcher_running = true;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&pqcm_lock);
}

/* fork(): the child has no watcher; it starts its own when needed. */
static void
atfork_prepare(void)
{
	pthread_mutex_lock(&pqcm_lock);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&pqcm_lock);
}

static void
atfork_child(void)
{
	watcher_running = false;
	if (watcher_wake[0] >= 0)
		close(watcher_wake[0]);
	if (watcher_wake[1] >= 0)
		close(watcher_wake[1]);
	watcher_wake[0] = watcher_wake[1] = -1;
	pthread_mutex_unlock(&pqcm_lock);
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
	return PQCM_VERSION_NUM;
}
