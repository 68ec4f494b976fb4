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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "libpq-fe.h"

#include "cm_protocol.h"

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
extern PqcmProbeResult pqcm_probe_run(PqcmProbe *p, const struct timespec *deadline);
extern void pqcm_probe_close(PqcmProbe *p);
extern bool pqcm_plain_cached(const PqcmEntry *e);
extern void pqcm_plain_remember(const PqcmEntry *e);
extern bool pqcm_send_register(int cm_fd, PGconn *conn);
extern int	pqcm_check_notice(int cm_fd, char *msg, size_t msgcap);

/* pqcm.c and pqcm_odbc.c: ODBC connection handles and their instances */
extern void *pqcm_odbc_connecting(void);
extern bool pqcm_dbc_instance_host(const void *dbc, char *buf, size_t cap);

/* time helpers */
extern void pqcm_deadline(struct timespec *d, int seconds);
extern int	pqcm_remaining_ms(const struct timespec *d);

#endif							/* CLIENT_PQCM_INT_H */
