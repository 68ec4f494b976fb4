/*-------------------------------------------------------------------------
 *
 * conmgr.h
 *	  Shared declarations of the conmgr daemon: instances (heartbeat
 *	  connections), application connections and the process-wide state.
 *
 * conmgr is one thread around one libevent event_base.  Every socket is a
 * bufferevent owned by its object; every deadline is an evtimer of that
 * object, measured on the monotonic clock.  Nothing blocks.
 *
 * Lifetimes: an application connection (CmApp) or an instance (CmInstance)
 * is never freed where it is closed or removed, which may be inside one of
 * its own callbacks.  Closing gives back its socket, timers and counts,
 * marks it (CM_APP_CLOSED, CM_INST_REMOVED) and queues it; cm_free_later()
 * frees the queues once the running callback has returned.  Code that may
 * have closed an object tests its state, never a return value.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/conmgr.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONMGR_CONMGR_H
#define CONMGR_CONMGR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_auth.h"
#include "cm_config.h"
#include "cm_defaults.h"
#include "cm_list.h"
#include "cm_protocol.h"
#include "cm_time.h"
#include "cm_version.h"

struct CmApp;

/*
 * Counters for the metrics endpoint (cm_metrics.c, docs/conmgr.md
 * "Metrics").  Each is incremented in one place, by the cm_metrics_*
 * function named next to it, and none is ever reset: a reload keeps them.
 */

/* Why an instance was declared down: conmgr_instance_failures_total. */
typedef enum CmFailure
{
	CM_FAIL_TIMEOUT = 0,		/* heartbeats unanswered for heartbeat_timeout */
	CM_FAIL_CONN_LOST,			/* the heartbeat connection broke or was closed */
	CM_FAIL_SHUTDOWN,			/* the watchdog announced the server's shutdown */
	CM_FAIL_PROTOCOL,			/* the watchdog broke the protocol */
	CM_FAIL_INTEGRITY,			/* a sealed frame failed its integrity check */
	CM_FAIL_COUNT
} CmFailure;

/* Why a new application connection was refused at once. */
typedef enum CmRefusal
{
	CM_REFUSE_MAX = 0,			/* max_app_connections reached */
	CM_REFUSE_PER_USER,			/* max_app_connections_per_user reached */
	CM_REFUSE_OPEN_FILES,		/* no descriptor to spare */
	CM_REFUSE_STOPPING,			/* conmgr is stopping */
	CM_REFUSE_COUNT
} CmRefusal;

/* Outcome of a route request: conmgr_app_routes_total. */
typedef enum CmRouteResult
{
	CM_ROUTE_ROUTED = 0,		/* answered with an instance */
	CM_ROUTE_NO_INSTANCE,		/* no live instance matched */
	CM_ROUTE_STOPPING,			/* conmgr is stopping */
	CM_ROUTE_COUNT
} CmRouteResult;

/* Why a datagram was dropped: conmgr_heartbeat_datagrams_dropped_total. */
typedef enum CmDgramDrop
{
	CM_DGRAM_DROP_MALFORMED = 0,	/* size, framing, or not a reply */
	CM_DGRAM_DROP_UNKNOWN,		/* another session's id */
	CM_DGRAM_DROP_TAG,			/* the tag does not verify */
	CM_DGRAM_DROP_REPLAY,		/* sequence number not above the last */
	CM_DGRAM_DROP_COUNT
} CmDgramDrop;

/* Upper bounds of the heartbeat round-trip histogram, in microseconds. */
#define CM_RTT_BUCKETS 10
#define CM_RTT_BUCKET_BOUNDS \
	{1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000}

/*
 * Counters of instance number N, kept across reloads.  They belong to the
 * instance's labels (host and port): a reload that changes those starts a
 * new series from zero, as Prometheus expects of new label values.
 */
typedef struct CmInstMetrics
{
	bool		used;
	char		host[256];		/* label values they belong to */
	int			port;
	uint64_t	failures[CM_FAIL_COUNT];
	uint64_t	rtt_bucket[CM_RTT_BUCKETS + 1]; /* not cumulative; last: +Inf */
	uint64_t	rtt_count;
	uint64_t	rtt_sum_us;
} CmInstMetrics;

typedef struct CmMetrics
{
	CmInstMetrics inst[CM_MAX_INSTANCES];
	uint64_t	notices[CM_REASON_MAX + 1]; /* failure notices, by reason */
	uint64_t	refused[CM_REFUSE_COUNT];
	uint64_t	routes[CM_ROUTE_COUNT];
	uint64_t	scrapes_refused;	/* metrics connections over the cap */
	uint64_t	dgram_dropped[CM_DGRAM_DROP_COUNT];
} CmMetrics;

/*
 * The listeners of one TCP port of conmgr, on the loopback addresses
 * (cm_listen.c).  The arguments of cm_listen_loopback() fill in the first
 * fields; the callbacks are called with the set as their argument.
 */
typedef struct CmListenSet
{
	int			port;
	int			backlog;
	const char *purpose;		/* "" or "for metrics ", for the log */
	const char *clients;		/* "applications", for error messages */
	evconnlistener_cb accept_cb;
	evconnlistener_errorcb error_cb;

	struct evconnlistener *listeners[2];
	int			nlisteners;
	int			family;			/* of the first one bound */
	char		desc[32];		/* "127.0.0.1 and ::1", for status */
	struct event *resume_timer; /* ends a cm_listen_pause() */
} CmListenSet;

/* States of a heartbeat connection. */
typedef enum CmInstState
{
	CM_INST_WAITING = 0,		/* not connected; a retry is scheduled */
	CM_INST_CONNECTING,			/* name resolution or TCP connect in progress */
	CM_INST_HELLO,				/* hello sent, waiting for welcome */
	CM_INST_UP,					/* heartbeats flowing */
	CM_INST_REMOVED				/* removed by a reload: stopped, out of
								 * cm_server.instances, freed soon
								 * (cm_free_later) */
} CmInstState;

/* One instance of the set and its heartbeat connection. */
typedef struct CmInstance
{
	int			number;			/* N of backend_hostN */
	const CmInstanceConfig *cfg;
	char		label[320];		/* "instance N (host:wdport)" for logs */
	const char *app_host;		/* what applications are told */

	CmInstState state;
	struct evutil_addrinfo *ai_list;	/* addresses of this attempt */
	struct evutil_addrinfo *ai_next;	/* next one to try */
	struct evdns_getaddrinfo_request *dns_req;	/* resolution in progress */
	bool		resolving;
	struct bufferevent *bev;
	struct event *state_timer;	/* connect/hello deadline, retry backoff */
	struct event *hb_timer;		/* periodic heartbeat */
	struct event *timeout_timer;	/* oldest unanswered heartbeat */
	int			backoff_ms;
	uint64_t	up_since_us;	/* monotonic, when it became UP */
	time_t		up_since_wall;
	time_t		down_since_wall;
	bool		ever_up;
	char		last_error[256];	/* why it is not up, for status and logs */

	bool		restarting;		/* the watchdog said it restarts: reconnecting,
								 * applications kept until restart_timer */
	struct event *restart_timer;	/* heartbeat_timeout after the last reply */
	bool		auth;			/* this connection asked for authentication */
	bool		challenged;		/* the watchdog's challenge was answered */
	bool		authenticated;	/* both sides proved they hold the secret */
	uint8_t		nonce_c[CM_AUTH_NONCE_LEN];	/* ours, in the hello */
	uint8_t		nonce_s[CM_AUTH_NONCE_LEN];	/* the watchdog's challenge */
	CmAuthTranscript transcript;	/* every handshake frame so far */
	bool		sealed;			/* after the welcome: frames carry tags */
	CmAuthKeys	keys;			/* session keys, when sealed */
	uint64_t	seq_in;			/* last sequence number received */
	uint64_t	seq_out;		/* last sequence number sent */
	const uint8_t *frame;		/* the frame being handled, as received */
	size_t		frame_len;

	uint16_t	version;
	uint32_t	check_attr_interval_ms;
	uint32_t	server_timeout_ms;
	uint8_t		attrs;

	uint32_t	next_seq;		/* next heartbeat sequence number */
	uint32_t	answered_seq;	/* all seq < this are answered */
	uint64_t	sent_us[CM_HEARTBEAT_RING]; /* send time of seq % ring */
	uint64_t	last_reply_us;	/* monotonic */
	time_t		last_reply_wall;
	uint64_t	rtt_us;			/* last round trip */
	uint64_t	heartbeats;		/* replies received since connect */

	int			napps;			/* routed application connections */
	CmList		apps;			/* list of them (CmApp.inst_node) */
	CmListNode	removed_node;	/* when REMOVED: in the list to free */

	/* heartbeats as datagrams (protocol 1.2): cm_dgram.c */
	evutil_socket_t dgram_fd;	/* connected UDP socket, or -1 */
	struct event *dgram_ev;
	bool		dgram_path;		/* heartbeats go as datagrams (else TCP) */
	bool		dgram_probing;	/* both ways until a datagram reply */
	uint64_t	dgram_probe_end_us; /* the probe gives up then */
	uint64_t	dgram_next_probe_us;	/* on TCP: one heartbeat both ways */
	uint64_t	dgram_next_tcp_us;	/* on datagrams: one over TCP too */
	struct event *dgram_extra_timer;	/* extra datagrams while a reply is
										 * overdue */
	int			dgram_extra_sent;	/* ... since the last reply */
	uint64_t	dgram_last_reply_us;	/* monotonic */
	uint64_t	dgram_seq_in;	/* highest datagram sequence accepted */
	uint64_t	dgram_seq_out;	/* last datagram sequence sent */
	int			dgram_tcp_only; /* answers by TCP alone, in a row */
} CmInstance;

/* States of an application connection. */
typedef enum CmAppState
{
	CM_APP_NEW = 0,				/* being set up: nothing counted yet */
	CM_APP_STARTUP,				/* waiting for the first packet */
	CM_APP_SSL_STARTUP,			/* stock client: 'N' sent, waiting for startup */
	CM_APP_GREETED,				/* greeting sent, waiting for 'R' */
	CM_APP_ROUTED,				/* 'I' sent, waiting for 'J' */
	CM_APP_REGISTERED,			/* 'J' received: established */
	CM_APP_CLOSING,				/* last message queued, closing when sent */
	CM_APP_REFUSED,				/* refused at once: refusal queued, then the
								 * sending side shut; what the client sends
								 * is read away until it closes */
	CM_APP_CLOSED				/* closed: its socket and counts are given
								 * back, its memory is freed soon
								 * (cm_free_later) */
} CmAppState;

typedef struct CmApp
{
	uint64_t	id;
	CmAppState	state;			/* written by app_set_state() only */
	struct bufferevent *bev;
	struct event *timer;		/* handshake or linger deadline */
	char		peer[64];		/* client's address:port on the conmgr socket */
	bool		uid_known;		/* the kernel told the owner of the peer */
	uid_t		uid;			/* then: the application's user */
	bool		write_shut;		/* REFUSED: shutdown(SHUT_WR) done */
	bool		notice_out;		/* nothing more to write: free at once */

	uint8_t		tsa;
	uint32_t	client_pid;
	char		application_name[CM_PROTO_ESCAPED_MAX];	/* escaped */
	uint32_t	backend_pid;
	CmProtoAddr local;			/* client's address of its SQL socket */
	time_t		connected_wall;

	CmInstance *inst;			/* when ROUTED or REGISTERED */
	CmListNode	inst_node;		/* in inst->apps */
	CmListNode	node;			/* in cm_server.apps */
} CmApp;

typedef enum CmShutdownMode
{
	CM_SHUTDOWN_NONE = 0,
	CM_SHUTDOWN_SMART,
	CM_SHUTDOWN_FAST,
	CM_SHUTDOWN_IMMEDIATE
} CmShutdownMode;

/* Process-wide state. */
typedef struct CmServer
{
	struct event_base *base;
	struct evdns_base *dns;		/* created when a host name needs it */
	CmConfig	cfg;
	char	   *directory;		/* absolute path of the conmgr directory */
	char		hostname[256];
	uint64_t	incarnation;	/* random, announced in every hello */
	time_t		started_wall;

	int			ninstances;		/* entries in instances[] */
	CmInstance *instances[CM_MAX_INSTANCES];	/* only defined ones */
	unsigned	rr_counter;		/* round robin among equals */

	CmListenSet app_listen;		/* the application port */
	int			napps;			/* counted application connections */
	uint64_t	next_app_id;
	CmList		apps;			/* every CmApp (CmApp.node) */
	int			nrefused;		/* connections in state CM_APP_REFUSED */
	int			nappobjs;		/* CmApp objects: descriptors they hold */
	bool		sockdiag_off;	/* the kernel tells no socket owners */
	int			fd_limit;		/* open-files limit in force */
	bool		refusing;		/* over max_app_connections right now */
	uint64_t	refused_since;	/* refusals since refusing began */

	struct evconnlistener *ctl_listener;

	CmMetrics	metrics;
	CmListenSet metrics_listen; /* when metrics_port is set */
	int			nmetrics_conns; /* open metrics connections */

	CmShutdownMode shutdown;

	bool		auth;			/* secret_file set: heartbeats authenticated */
	CmAuthSecret secret;		/* read from secret_file */
} CmServer;

extern CmServer cm_server;

/* Microseconds on the monotonic clock (cm_time.h), as conmgr counts time. */
static inline uint64_t
cm_now_us(void)
{
	return (uint64_t) cm_mono_us();
}

/* cm_instance.c */
extern void cm_instance_create_all(void);
extern void cm_instance_start(CmInstance *inst);
extern void cm_instance_add(int n);
extern void cm_instance_remove(int n);
extern void cm_instance_goodbye_all(void);
extern void cm_instance_free_all(void);
extern void cm_instance_free_removed(void);
extern void cm_instance_forward_session(CmInstance *inst, uint8_t type,
										uint32_t backend_pid,
										const CmProtoAddr *addr);
extern const char *cm_instance_state_name(const CmInstance *inst);
extern bool cm_instance_is_primary(const CmInstance *inst);
extern void cm_instance_heartbeat(CmInstance *inst, bool extra);
extern void cm_instance_heartbeat_reply(CmInstance *inst,
										const CmProtoHeartbeat *hb,
										bool datagram);

/* cm_dgram.c */
extern void cm_dgram_start(CmInstance *inst);
extern void cm_dgram_stop(CmInstance *inst);
extern bool cm_dgram_heartbeat(CmInstance *inst, const uint8_t *frame,
							   size_t len, uint64_t now, bool extra);
extern void cm_dgram_tcp_answer(CmInstance *inst, uint64_t now);
extern const char *cm_dgram_path_name(const CmInstance *inst);
extern void cm_flush_now(struct bufferevent *bev);

/* cm_app.c */
extern bool cm_app_listen(void);
extern void cm_app_stop_listening(void);
extern void cm_app_notify_instance_down(CmInstance *inst, uint16_t reason,
										const char *message);
extern void cm_app_notify_attrs_changed(CmInstance *inst);
extern void cm_app_close_all(uint16_t reason, const char *message);
extern void cm_app_free_all(void);
extern void cm_app_free_closed(void);

/* cm_listen.c */
extern bool cm_listen_loopback(CmListenSet *set, int port, int backlog,
							   const char *purpose, const char *clients,
							   evconnlistener_cb accept_cb,
							   evconnlistener_errorcb error_cb);
extern void cm_listen_pause(CmListenSet *set);
extern void cm_listen_close(CmListenSet *set);

/* cm_metrics.c */
extern bool cm_metrics_listen(void);
extern void cm_metrics_stop(void);
extern int	cm_metrics_fds(void);
extern void cm_metrics_instance_created(const CmInstance *inst);
extern void cm_metrics_heartbeat(const CmInstance *inst, uint64_t rtt_us);
extern void cm_metrics_failure(const CmInstance *inst, CmFailure why);
extern void cm_metrics_notice(uint16_t reason);
extern void cm_metrics_refused(CmRefusal why);
extern void cm_metrics_route(CmRouteResult result);
extern void cm_metrics_dgram_dropped(CmDgramDrop why);

/* cm_ctl_server.c */
extern bool cm_ctl_server_start(void);
extern void cm_ctl_server_stop(void);

/* conmgr.c */
extern void cm_free_later(void);
extern void cm_check_shutdown(void);
extern void cm_reload_config(char *report, size_t cap, bool *ok);

#endif							/* CONMGR_CONMGR_H */
