/*-------------------------------------------------------------------------
 *
 * pqcm_int.h
 *	  Internal declarations of libpqcm, the Connection Manager companion of
 *	  libpq.  Nothing here is exported from the shared library.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLIENT_PQCM_INT_H
#define CLIENT_PQCM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "libpq-fe.h"
#include "libpq-events.h"

#include "cm_net.h"
#include "cm_protocol.h"
#include "cm_time.h"

/* Value of PGCONMGR. */
typedef enum PqcmMode
{
	PQCM_MODE_AUTO = 0,			/* probe loopback TCP entries */
	PQCM_MODE_ON,				/* probe every TCP entry */
	PQCM_MODE_OFF				/* never probe */
} PqcmMode;

/*
 * Options of one connection request, as explicit keyword/value pairs (what
 * the application gave, after expanding a dbname that is a connection
 * string).  kw[] and val[] are NULL-terminated so that they can be handed
 * to PQconnectdbParams() as they are.
 */
typedef struct PqcmOptions
{
	int			n;
	int			cap;
	char	  **kw;
	char	  **val;
} PqcmOptions;

/* One entry of a multi-host list. */
typedef struct PqcmEntry
{
	char	   *host;			/* "" when not given */
	char	   *hostaddr;		/* "" when not given */
	char	   *port;			/* never "" (default applied) */
	bool		probe;			/* may be a conmgr */
} PqcmEntry;

/* Everything the connection logic needs to know about a request. */
typedef struct PqcmRequest
{
	PqcmOptions opts;
	PqcmEntry  *entries;
	int			nentries;
	bool		any_probe;		/* at least one entry may be a conmgr */
	bool		hostaddr_used;	/* hostaddr given anywhere */
	uint8_t		tsa;			/* CmProtoTsa */
	char	   *tsa_name;
	int			connect_timeout;	/* seconds, 0 = none */
	char	   *application_name;
	char	   *error;			/* set when the request is invalid */
} PqcmRequest;

/* pqcm_options.c */
extern PqcmMode pqcm_mode(const char **bad_value);
extern bool pqcm_opts_from_conninfo(PqcmOptions *o, const char *conninfo);
extern bool pqcm_opts_from_params(PqcmOptions *o,
								  const char *const *keywords,
								  const char *const *values,
								  int expand_dbname);
extern bool pqcm_opts_from_login(PqcmOptions *o, const char *host,
								 const char *port, const char *options,
								 const char *tty, const char *dbname,
								 const char *login, const char *pwd);
extern void pqcm_opts_init(PqcmOptions *o);
extern const char *pqcm_opts_get(const PqcmOptions *o, const char *kw);
extern void pqcm_opts_set(PqcmOptions *o, const char *kw, const char *val);
extern void pqcm_opts_copy(PqcmOptions *dst, const PqcmOptions *src);
extern void pqcm_opts_free(PqcmOptions *o);
extern bool pqcm_request_init(PqcmRequest *r, PqcmMode mode);
extern void pqcm_request_free(PqcmRequest *r);
extern void pqcm_request_stage2(const PqcmRequest *r, PqcmOptions *out,
								int first, int count, const char *host,
								const char *hostaddr, const char *port,
								int timeout);
extern char *pqcm_strdup(const char *s);
extern void pqcm_appendf(char **buf, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* pqcm_peer.c: the OS user behind a conmgr port */
typedef enum PqcmPeerLookup
{
	PQCM_PEER_FOUND = 0,		/* *uid owns the socket at the other end */
	PQCM_PEER_UNOWNED,			/* that socket is no longer held by a process */
	PQCM_PEER_NOT_FOUND,		/* the other end is not a socket of this host */
	PQCM_PEER_UNAVAILABLE		/* socket diagnostics cannot be used here */
} PqcmPeerLookup;

/* Who may own conmgr's socket (root + PGCONMGRUSER's 16 users) */
#define PQCM_PEER_MAX_USERS 17

typedef struct PqcmPeerRule
{
	int			n;
	uid_t		uid[PQCM_PEER_MAX_USERS];
	bool		from_env;		/* PGCONMGRUSER was set */
	bool		insecure;		/* PGCONMGR_INSECURE_UNVERIFIED_PEER=on */
	char		setting[200];	/* PGCONMGRUSER's value */
	char		error[400];		/* PGCONMGRUSER is invalid: why */
} PqcmPeerRule;

extern PqcmPeerLookup pqcm_peer_uid(int fd, uid_t *uid, char *why, size_t whycap);
extern void pqcm_peer_rule_init(PqcmPeerRule *rule);
extern bool pqcm_peer_trusted(int fd, const PqcmPeerRule *rule, const char *label,
							  char *msg, size_t msgcap);
extern bool pqcm_insecure_unverified_peer(void);

/* pqcm_probe.c: stage 1, a non-blocking state machine */
typedef enum PqcmProbeResult
{
	PQCM_PROBE_PENDING = 0,		/* wait for want_events on fd */
	PQCM_PROBE_INSTANCE,		/* conmgr named an instance; fd kept */
	PQCM_PROBE_NO_INSTANCE,		/* conmgr has no suitable instance */
	PQCM_PROBE_PLAIN,			/* not a conmgr: leave it to libpq */
	PQCM_PROBE_DOWN,			/* nothing listens: leave it to libpq */
	PQCM_PROBE_ERROR			/* conmgr misbehaved; message set */
} PqcmProbeResult;

typedef struct PqcmProbe
{
	int			state;
	int			fd;
	short		want_events;	/* POLLIN or POLLOUT while pending */
	struct addrinfo *addrs;
	struct addrinfo *cur;
	char		label[300];		/* "host \"localhost\" (127.0.0.1), port 1" */
	uint8_t		out[CM_PROTO_MAX_MSG];
	size_t		outlen;
	size_t		outpos;
	uint8_t		in[CM_PROTO_MAX_MSG];
	size_t		inlen;
	CmProtoInstance instance;
	char		message[600];	/* why NO_INSTANCE / ERROR / DOWN */
	PqcmPeerRule peer_rule;		/* who may own conmgr's socket */
	/* request */
	uint8_t		tsa;
	char		application_name[CM_PROTO_MAX_STRING + 1];
} PqcmProbe;

extern void pqcm_probe_init(PqcmProbe *p, const PqcmEntry *e, bool loopback_only,
							uint8_t tsa, const char *application_name);
extern PqcmProbeResult pqcm_probe_step(PqcmProbe *p);
extern void pqcm_probe_close(PqcmProbe *p);
extern pthread_mutex_t pqcm_plain_lock;
extern bool pqcm_plain_cached(const PqcmEntry *e);
extern void pqcm_plain_remember(const PqcmEntry *e);
extern bool pqcm_send_register(int cm_fd, PGconn *conn);
extern int	pqcm_check_notice(int cm_fd, char *msg, size_t msgcap);

/* pqcm_walk.c: the walk over a request's host list */
typedef enum PqcmWalkStep
{
	PQCM_WALK_WAIT = 0,			/* wait for probe.want_events on probe.fd */
	PQCM_WALK_CONNECT,			/* make a libpq attempt with opts (through
								 * conmgr when cm_fd >= 0), then either keep
								 * it or call pqcm_walk_failed() */
	PQCM_WALK_SKIPPED,			/* an entry failed in stage 1 (its line is in
								 * errors): step again */
	PQCM_WALK_END				/* no entry left */
} PqcmWalkStep;

typedef struct PqcmWalk
{
	const PqcmRequest *req;
	PqcmMode	mode;
	pthread_mutex_t *lock;		/* held while the probe changes, or NULL */
	int			entry;			/* first entry of the current step */
	int			count;			/* entries it hands to libpq at once */
	bool		probing;		/* the probe of entry has started */
	PqcmProbe	probe;
	int64_t		deadline;		/* of the entry's stage 1 (ms), 0 = none */
	char		hostaddr[64];	/* address of the conmgr being probed */
	char	   *errors;			/* one line per failed entry */
	PqcmOptions opts;			/* of the attempt (PQCM_WALK_CONNECT) */
	int			cm_fd;			/* its conmgr socket, or -1 */
} PqcmWalk;

extern void pqcm_walk_init(PqcmWalk *w, const PqcmRequest *r, PqcmMode mode,
						   pthread_mutex_t *lock);
extern PqcmWalkStep pqcm_walk_step(PqcmWalk *w);
extern PqcmWalkStep pqcm_walk_step_blocking(PqcmWalk *w);
extern void pqcm_walk_failed(PqcmWalk *w, const char *error);
extern int	pqcm_walk_take_cm_fd(PqcmWalk *w);
extern void pqcm_walk_stop(PqcmWalk *w);
extern void pqcm_walk_restart(PqcmWalk *w);
extern void pqcm_walk_free(PqcmWalk *w);

/* ---------------------------------------------------------------------
 * The wrappers of libpq: pqcm.c, pqcm_table.c, pqcm_connect.c,
 * pqcm_async.c, pqcm_io.c, pqcm_watcher.c
 * ---------------------------------------------------------------------
 */

/*
 * A descriptor the library made, with the identity (device and inode) of
 * the file it named then.  The application can close it (PQcmSocket() is
 * its to poll) and the number can then name a file of the application's;
 * every use checks the identity first (pqcm_fd_ours).
 */
typedef struct PqcmFd
{
	int			fd;				/* -1: none */
	dev_t		dev;
	ino_t		ino;
} PqcmFd;

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
	PqcmFd		cm;				/* socket to conmgr */
	PqcmFd		sql;			/* our duplicate of PQsocket() */
	int			sql_src;		/* the PQsocket() it duplicates */
	bool		failed;			/* conmgr reported a failure */
	bool		foreign;		/* inherited from the parent of fork(): its
								 * sockets are the parent's too */
	char		failmsg[640];
	char		server_msg[512];	/* the server's last words, see pqcm_io.c */
	char	   *errmsg;			/* PQerrorMessage() override */
	char	   *errcache;		/* last string returned by PQerrorMessage */
	/* for PQreset and asynchronous connections */
	PqcmRequest req;
	PqcmWalk	walk;			/* over req's entries, under pqcm_lock */
	PqcmFd		pending;		/* stage 2 through conmgr: its socket */
	int64_t		partial_since;	/* part of a message waiting since (ms),
								 * or 0 */
	bool		husk;			/* conn is held before its first poll */
	void	   *odbc_dbc;		/* ODBC connection handle being connected when
								 * this connection was made, or NULL */
	/* application settings carried over when the connection is replaced */
	PQnoticeReceiver notice_rec;
	void	   *notice_rec_arg;
	PQnoticeProcessor notice_proc;
	void	   *notice_proc_arg;
	/* our notice receiver is installed; it passes every notice on to these */
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

/* The real libpq functions, found with dlsym(RTLD_NEXT) (pqcm.c). */
typedef struct PqcmReal
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
} PqcmReal;

extern PqcmReal pqcm_real;
extern pthread_once_t pqcm_real_once;
extern void pqcm_load_real(void);

#define REAL() pthread_once(&pqcm_real_once, pqcm_load_real)

/* Depth of calls this library makes into libpq, per thread. */
extern __thread int pqcm_inside;

/* While set, PQconnectPoll() called from inside libpq does nothing. */
extern __thread bool pqcm_hold_poll;

/* pqcm_table.c: the table of tracked connections, under pqcm_lock */
#define PQCM_BUCKETS 256
extern pthread_mutex_t pqcm_lock;
extern PqcmConn *pqcm_table[PQCM_BUCKETS];
extern atomic_int pqcm_ntracked;

extern PqcmConn *pqcm_find_locked(const PGconn *conn);
extern PqcmConn *pqcm_track_new(PGconn *conn);
extern void pqcm_untrack_locked(PqcmConn *c);
extern void pqcm_close_sockets(PqcmConn *c);
extern void pqcm_free_conn(PqcmConn *c);
extern void pqcm_fd_adopt(PqcmFd *f, int fd);
extern bool pqcm_fd_ours(PqcmFd *f);
extern void pqcm_fd_close(PqcmFd *f);
extern void pqcm_table_atfork_child(void);

/* Look up a connection the fast way: nothing tracked, nothing to do. */
#define TRACKED() (atomic_load_explicit(&pqcm_ntracked, memory_order_relaxed) > 0 && pqcm_inside == 0)

/* pqcm_connect.c: connecting */
extern bool pqcm_request_front(PqcmRequest *r, PqcmMode *mode, PGconn **failed);
extern PGconn *pqcm_make_bad_conn(void);
extern void pqcm_establish(PqcmConn *c, PqcmFd cm);

/* pqcm_async.c: the exchange of connection objects */
extern pthread_mutex_t pqcm_exchange_lock;
extern bool pqcm_exchange_usable(void);

/* pqcm_io.c: notices, the server's last words */
extern void pqcm_check_locked(PqcmConn *c);
extern void pqcm_fail_locked(PqcmConn *c, const char *msg);
extern bool pqcm_cm_ours_locked(PqcmConn *c);
extern void pqcm_sql_check_locked(PqcmConn *c);
extern void pqcm_hook_notices(PqcmConn *c);
extern void pqcm_unhook_notices(PqcmConn *c);

/*
 * How long part of a message may sit on a conmgr socket before it counts as
 * a protocol failure; meanwhile the watcher looks at it every
 * PQCM_PARTIAL_POLL_MS instead of spinning on a readable socket.
 */
#define PQCM_PARTIAL_TIMEOUT_S	2
#define PQCM_PARTIAL_POLL_MS	50

/* pqcm_watcher.c: the watcher thread */
extern atomic_bool pqcm_watcher_running;
extern void pqcm_watcher_start(void);
extern void pqcm_watcher_poke(void);
extern void pqcm_watcher_atfork_child(void);

/*
 * The watcher thread runs: it acts on every notice within milliseconds by
 * shutting the SQL socket down, so PQgetResult() and PQisBusy() need not
 * look at the conmgr socket themselves (a syscall per call).
 * PQconsumeInput() still does: an application that saw PQcmSocket()
 * readable calls it next and must get the failure at once.
 */
#define WATCHED() atomic_load_explicit(&pqcm_watcher_running, memory_order_relaxed)

/* pqcm_table.c and pqcm_odbc.c: ODBC connection handles and their instances */
extern pthread_mutex_t pqcm_odbc_lock;
extern void *pqcm_odbc_connecting(void);
extern bool pqcm_dbc_instance_host(const void *dbc, char *buf, size_t cap);

/* time helpers: deadlines in ms on cm_mono_ms()'s clock, 0 = none */
extern int64_t pqcm_deadline(int seconds);
extern int	pqcm_remaining_ms(int64_t deadline);

#endif							/* CLIENT_PQCM_INT_H */
