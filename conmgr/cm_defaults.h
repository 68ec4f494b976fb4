/*-------------------------------------------------------------------------
 *
 * cm_defaults.h
 *	  Default values, limits and exit codes of conmgr and cm_ctl.
 *
 * Every constant is here with the bound it buys.  The parameters of
 * conmgr.conf have their defaults and ranges in the rows of their table
 * (cm_config_params in cm_config.c), which a unit test compares with
 * docs/conmgr.md; only the defaults that cm_ctl or the clients share are
 * here, and the table names them.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_defaults.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONMGR_CM_DEFAULTS_H
#define CONMGR_CM_DEFAULTS_H

/* Files inside the conmgr directory. */
#define CM_CONFIG_FILE			"conmgr.conf"
#define CM_PID_FILE				"conmgr.pid"
#define CM_CONTROL_SOCKET		"conmgr.sock"	/* cm_ctl talks to conmgr here */
#define CM_DEFAULT_LOG_FILE		"conmgr.log"

/*
 * TCP port on which applications reach conmgr: the default of port in
 * conmgr.conf, and the one the JDBC driver assumes (ConmgrDriver).
 */
#define CM_DEFAULT_PORT			27546

/*
 * Metrics (docs/conmgr.md, "Metrics").  metrics_port 0, the default, serves
 * none.  A scrape is one short HTTP/1.x request on the loopback: its header
 * must fit in CM_METRICS_MAX_REQUEST bytes and arrive within
 * CM_METRICS_REQUEST_TIMEOUT_MS of the connection, or the connection is
 * answered with an error and closed.  At most CM_METRICS_MAX_CONNECTIONS
 * metrics connections are open at once (one scraper needs one; a few more
 * allow for a curl by hand); beyond, a connection is answered 503 and
 * closed at once.  Their descriptors, the metrics listeners' and one for
 * such a refusal come out of the open-files limit before application
 * connections do (CM_METRICS_FDS), so that a local user opening metrics
 * connections cannot take the heartbeat connections' descriptors.  After
 * its answer, a connection is kept half-closed at most
 * CM_METRICS_LINGER_MS, so that the client reads the answer rather than a
 * reset.
 */
#define CM_METRICS_MAX_REQUEST			8192
#define CM_METRICS_REQUEST_TIMEOUT_MS	5000
#define CM_METRICS_MAX_CONNECTIONS		8
#define CM_METRICS_LINGER_MS			2000
#define CM_METRICS_FDS					(2 + CM_METRICS_MAX_CONNECTIONS + 1)

/*
 * Reconnection backoff for heartbeat connections: the first retry after
 * CM_BACKOFF_MIN_MS, doubling up to CM_BACKOFF_MAX_MS.  An instance that
 * comes back is therefore seen within about 5 s, while a host that is down
 * costs one connection attempt every 5 s.
 */
#define CM_BACKOFF_MIN_MS				100
#define CM_BACKOFF_MAX_MS				5000

/*
 * While a watchdog restarts (the postmaster starts it again after one
 * second), connection attempts are at most this far apart, so that it is
 * found back well within heartbeat_timeout.
 */
#define CM_RESTART_RETRY_MS				200

/*
 * Most heartbeats outstanding at once.  With heartbeat_timeout /
 * heartbeat_interval above this, conmgr stops sending until replies come:
 * the timeout is still measured from the oldest unanswered heartbeat.
 */
#define CM_HEARTBEAT_RING				256

/*
 * Application connections (max_app_connections in conmgr.conf, 1000 by
 * default).  Each uses one descriptor in conmgr, so
 * the open-files limit must be at least
 *		CM_FIXED_FDS + 2 * number of instances + max_app_connections
 * (an instance: its heartbeat connection and its datagram socket).
 * CM_FIXED_FDS covers the log, the PID file, the control socket and its
 * clients, the listeners, the event loop, name resolution and refusals
 * being written, with room to spare.  Whatever the limit, application
 * connections never take the descriptors of that reserve nor those of
 * the instances: a heartbeat connection can always be made again.
 */
#define CM_FIXED_FDS					32
#define CM_FDS_PER_INSTANCE				2

/*
 * Answer to new application connections and route requests while conmgr
 * stops (reason shutdown), after which the client library asks the next
 * conmgr of its host list.
 */
#define CM_STOPPING_MESSAGE	"conmgr is stopping; it routes no new application connections"

/* Time given to a refused or notified peer to read its last message. */
#define CM_CLOSE_LINGER_MS				5000

/*
 * A connection refused at once (over max_app_connections, or while
 * conmgr stops) gets its refusal before it has said anything; conmgr then
 * keeps it half-closed, reading away what the client sends, until the
 * client closes or CM_REFUSED_LINGER_MS pass: closed at once, the socket
 * would answer the client's next packet with a reset, and the client
 * would fail with "broken pipe" instead of reading the refusal.  At most
 * CM_REFUSED_LINGER_MAX such connections are kept; beyond, a refused
 * connection is closed right after its refusal is written.
 */
#define CM_REFUSED_LINGER_MS			2000
#define CM_REFUSED_LINGER_MAX			64

/* Most instances in one conmgr.conf (backend_host0 .. backend_host127). */
#define CM_MAX_INSTANCES				128

/* cm_ctl */
#define CM_CTL_DEFAULT_WAIT_SECONDS		60
#define CM_CTL_POLL_MS					100

/* cm_ctl exit codes, as pg_ctl documents them. */
#define CM_EXIT_OK						0
#define CM_EXIT_FAILURE					1	/* also: wait timed out */
#define CM_EXIT_NOT_RUNNING				3	/* status: no conmgr running */
#define CM_EXIT_NO_DIRECTORY			4	/* status: unusable directory */

#endif							/* CONMGR_CM_DEFAULTS_H */
