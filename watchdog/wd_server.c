/*-------------------------------------------------------------------------
 *
 * wd_server.c
 *	  The watchdog worker: listen sockets, the single WaitEventSet loop over
 *	  the latch, the listen sockets and every peer, non-blocking per-peer
 *	  I/O, attribute checks and the shutdown notice.
 *
 * Everything runs in one process and one loop; no call blocks.  The wait
 * set is rebuilt (PostgreSQL has no way to remove an event) at most once
 * per cycle, after peers joined or left.  Timeouts use the monotonic clock.
 * A peer's bad input costs that peer its connection and nothing else; an
 * unexpected ERROR inside the loop (out of memory, say) is caught and costs
 * one cycle, not a restart that would drop every heartbeat.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_server.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/procsignal.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pidfile.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "cm_time.h"
#include "cm_version.h"
#include "watchdog.h"
#include "wd_server.h"
#include "wd_shmem.h"

#define WD_MAX_LISTEN			64	/* listen sockets */
#define WD_ACCEPT_BATCH			64	/* accepts per wake-up */
#define WD_LISTEN_RETRY_MS		5000	/* retry binding when nothing bound */
#define WD_ACCEPT_PAUSE_MS		1000	/* pause after EMFILE and the like */
#define WD_LOG_INTERVAL_MS		10000	/* rate limit of repetitive logs */
#define WD_MAX_CONSECUTIVE_ERRORS 10

/* descriptors the watchdog opens itself besides its connections, at most */
#define WD_SERVER_RESERVED_FDS	10

/*
 * Wake-ups closer together than this (us) mean heartbeats keep arriving:
 * the loop then sleeps out the rest of the interval before it waits again,
 * so that one wake-up serves every heartbeat that came meanwhile instead of
 * one wake-up (two context switches) each.  A reply waits this long at
 * most, a thousandth of the shortest heartbeat timeout worth having.
 */
#define WD_WAKE_SPACING_US		1000

dlist_head	wd_peers = DLIST_STATIC_INIT(wd_peers);

/*
 * The peer whose input is being handled.  A send to it that fails then
 * does not declare it broken at once: the rest of its input may hold its
 * goodbye (a conmgr that leaves closes its socket, and a reply to its last
 * heartbeat can meet the reset), so wd_peer_read decides once all of it is
 * handled.
 */
WdPeer	   *wd_input_peer = NULL;
int			wd_pending_count = 0;
int			wd_active_count = 0;
uint8		wd_current_attrs = 0;

/*
 * The server is shutting down (postmaster.pid says "stopping", or is gone)
 * while this process still runs: during a smart shutdown the postmaster
 * lets the sessions already there finish and refuses new ones, and stops
 * its background workers only after the last session.  Conmgr peers that
 * speak protocol 1.1 are told (CM_PROTO_ATTR_STOPPING) and route no new
 * connections here.  Once set, it stays: a shutdown is not taken back.
 */
bool		wd_server_draining = false;
bool		wd_shutting_down = false;

static pgsocket wd_listen[WD_MAX_LISTEN];
static struct sockaddr_storage wd_listen_addr[WD_MAX_LISTEN];
static int	wd_nlisten = 0;
static bool wd_listen_nothing_configured = false;
static int64 wd_listen_retry_at = 0;
static int64 wd_accept_paused_until = 0;
static bool wd_listen_in_set = false;
static char wd_listen_tag;		/* user_data marking a listen socket */
static char wd_dgram_tag;		/* user_data marking a UDP socket */

static WaitEventSet *wd_wes = NULL;
static WaitEvent *wd_events = NULL;
static int	wd_wes_cap = 0;
static bool wd_wes_dirty = true;

static MemoryContext wd_peer_cxt = NULL;
static int64 wd_next_attr_check = 0;

/*
 * No peer deadline is earlier than this (it may be earlier than the real
 * minimum: a heartbeat only moves a deadline later).  The peers are scanned
 * only when it has passed, so a wake-up costs O(1), not O(peers).
 */
static int64 wd_earliest_deadline = PG_INT64_MAX;
static int	wd_closed_count = 0;	/* peers waiting to be freed */

static CmRateWindow wd_limit_accept_error;
static CmRateWindow wd_limit_evict;

static int	wd_count_open_fds(void);
static void wd_report_start(void);
static void wd_on_exit(int code, Datum arg);
static void wd_open_listen_sockets(bool first);
static void wd_rebuild_wait_set(int64 now);
static long wd_compute_timeout(int64 now);
static void wd_accept(pgsocket lsock, int64 now);
static void wd_peer_read(WdPeer *peer);
static void wd_peer_flush(WdPeer *peer);
static void wd_peer_update_events(WdPeer *peer);
static void wd_free_closed_peers(void);
static void wd_check_attrs(int64 now);
static void wd_shutdown(void) pg_attribute_noreturn();
static int	wd_max_pending(void);
static void wd_warn_insecure(void);
static WdPeer *wd_pending_to_evict(void);

/* Monotonic clock in milliseconds: every peer timeout is measured on it. */
int64
wd_now_ms(void)
{
	return cm_mono_ms();
}

/*
 * Rate limiter: true when a line may be logged now (at most limit->burst
 * lines, or one, in each WD_LOG_INTERVAL_MS window); *suppressed is then
 * the number of lines withheld since the last one logged, for a summary.
 */
bool
wd_log_allowed(CmRateWindow *limit, int64 now, uint64 *suppressed)
{
	return cm_rate_window_allow(limit, now, WD_LOG_INTERVAL_MS, suppressed);
}

/*
 * A listening socket of the heartbeat port (TCP, or UDP for datagrams)
 * could not be set up or bound, errno says why: close it and say so at
 * elevel, with what it means and, when the port is taken, who may hold it.
 */
void
wd_bind_failed(pgsocket s, bool udp, const char *family, const char *addrbuf,
			   int elevel)
{
	int			save_errno = errno;

	closesocket(s);
	errno = save_errno;
	if (udp)
		ereport(elevel,
				(errcode_for_socket_access(),
				 errmsg("watchdog could not bind %s UDP address \"%s\", port %d: %m",
						family, addrbuf, wd_port),
				 errdetail("conmgr heartbeats to this address go over TCP only."),
				 save_errno == EADDRINUSE ?
				 errhint("Another program uses UDP port %d.", wd_port) : 0));
	else
		ereport(elevel,
				(errcode_for_socket_access(),
				 errmsg("watchdog could not bind %s address \"%s\", port %d: %m",
						family, addrbuf, wd_port),
				 save_errno == EADDRINUSE ?
				 errhint("Is another server or another watchdog using watchdog.port %d?",
						 wd_port) : 0));
}

/*
 * WatchdogMain: entry point of the watchdog background worker.
 */
void
WatchdogMain(Datum main_arg)
{
	pqsignal(SIGPIPE, SIG_IGN);
	wd_worker_begin();

	wd_peer_cxt = AllocSetContextCreate(TopMemoryContext, "watchdog peers",
										ALLOCSET_DEFAULT_SIZES);

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	wd_shared->watchdog_pid = MyProcPid;
	wd_shared->server_draining = false;
	LWLockRelease(wd_shared->lock);
	before_shmem_exit(wd_on_exit, (Datum) 0);

	/* Peers of an earlier watchdog process may come back. */
	wd_slots_adopt_previous(wd_now_ms());

	wd_current_attrs = wd_attr_current();
	wd_report_start();

	wd_open_listen_sockets(true);
	wd_server_main_loop();
}

/* Descriptors open in this process now, or -1 when they cannot be counted. */
static int
wd_count_open_fds(void)
{
	DIR		   *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int			n = 0;

	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;				/* not the directory's own */
}

/* The DETAIL of the start message: the release and the protocol spoken. */
static int
wd_errdetail_version(void)
{
	return errdetail("Connection Manager %s, heartbeat protocol up to %d.%d.",
					 CM_VERSION,
					 CM_PROTO_VERSION_MAJOR(CM_PROTO_VERSION_MAX),
					 CM_PROTO_VERSION_MINOR(CM_PROTO_VERSION_MAX));
}

/*
 * Say at start what the instance is, how many peers the settings allow, and
 * how many heartbeat connections the open-files limit leaves room for: the
 * limit less the descriptors open now and those the watchdog opens itself
 * (secret files, postmaster.pid; it opens no relation files).  Warn when
 * that is less than watchdog.max_heartbeat_connections: past it, accepting
 * fails with EMFILE.  docs/watchdog.md ("Open-files limit") recommends more,
 * room for connections waiting for their hello as well.
 */
static void
wd_report_start(void)
{
	struct rlimit rl;
	int			open_now = wd_count_open_fds();
	long		room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
		rl.rlim_cur > (rlim_t) LONG_MAX || open_now < 0)
	{
		ereport(LOG,
				(errmsg("watchdog started: instance is %s, up to %d conmgr peers",
						cm_proto_attrs_name(wd_current_attrs),
						wd_max_heartbeat_connections),
				 wd_errdetail_version()));
		return;
	}
	room = Max((long) rl.rlim_cur - open_now - WD_SERVER_RESERVED_FDS, 0);
	ereport(LOG,
			(errmsg("watchdog started: instance is %s, up to %d conmgr peers; the open-files limit of %ld leaves room for %ld heartbeat connections",
					cm_proto_attrs_name(wd_current_attrs),
					wd_max_heartbeat_connections, (long) rl.rlim_cur, room),
			 wd_errdetail_version()));
	if (room < wd_max_heartbeat_connections)
		ereport(WARNING,
				(errmsg("watchdog: the open-files limit of %ld leaves room for %ld heartbeat connections, fewer than watchdog.max_heartbeat_connections = %d",
						(long) rl.rlim_cur, room, wd_max_heartbeat_connections),
				 errdetail("Connections over the limit are refused when they are accepted."),
				 errhint("Raise the open-files limit of the server (ulimit -n, or LimitNOFILE of its service) to at least %ld, max_files_per_process + 2 * watchdog.max_heartbeat_connections, or lower watchdog.max_heartbeat_connections.",
						 (long) max_files_per_process + 2L * wd_max_heartbeat_connections)));
}

typedef enum WdServerStatus
{
	WD_SERVER_RUNNING,
	WD_SERVER_STOPPING,
	WD_SERVER_UNKNOWN			/* postmaster.pid could not be read */
} WdServerStatus;

/*
 * The postmaster's status as postmaster.pid tells it: the postmaster writes
 * "stopping" into its status line when a smart or fast shutdown is
 * requested, before it signals its children, and the file is removed at
 * the end; only ENOENT means that.  Any other failure to read it is
 * WD_SERVER_UNKNOWN, with errno set.
 */
static WdServerStatus
wd_server_status(void)
{
	FILE	   *f = fopen("postmaster.pid", "r");	/* in the data directory */
	char		line[128];
	WdServerStatus status = WD_SERVER_RUNNING;

	if (f == NULL)
		return errno == ENOENT ? WD_SERVER_STOPPING : WD_SERVER_UNKNOWN;
	for (int n = 1; fgets(line, sizeof(line), f) != NULL; n++)
	{
		if (n == LOCK_FILE_LINE_PM_STATUS)
		{
			if (strncmp(line, PM_STATUS_STOPPING, strlen(PM_STATUS_STOPPING)) == 0)
				status = WD_SERVER_STOPPING;
			break;
		}
	}
	fclose(f);
	return status;
}

/*
 * Whether the postmaster is shutting down, on the way out of this process.
 * Anything else (a SIGTERM sent to this process alone, an error exit)
 * leaves the server running.
 */
static bool
wd_server_stopping(void)
{
	WdServerStatus status = wd_server_status();

	if (status == WD_SERVER_UNKNOWN)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("watchdog could not read \"postmaster.pid\": %m"),
				 errdetail("The server is taken to be running: the slots of connected conmgr processes wait for them to reconnect.")));
	return status == WD_SERVER_STOPPING;
}

/*
 * On exit, clear our PID and leave the slots of our peers: during a server
 * shutdown they are freed (no session is terminated); otherwise, since the
 * postmaster starts another watchdog process, they become RECONNECTING
 * (registrations kept): each conmgr has its server timeout to come back,
 * else the next watchdog process declares it lost.
 */
static void
wd_on_exit(int code, Datum arg)
{
	bool		stopping = wd_server_stopping();
	int64		now = wd_now_ms();

	LWLockReleaseAll();
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		if (slot->state != WD_SLOT_ACTIVE)
			continue;
		if (stopping)
			wd_slot_release(i);
		else
			wd_slot_wait_reconnect(slot, now + slot->server_timeout);
	}
	wd_shared->watchdog_pid = 0;
	LWLockRelease(wd_shared->lock);
}

/*
 * Say loudly, at start and whenever a reload turns it on, that
 * unauthenticated conmgr processes are accepted: a WARNING when the
 * watchdog listens beyond loopback (any host that reaches the port can make
 * the terminator end sessions), else a LOG line (any local user can).
 */
static void
wd_warn_insecure(void)
{
	static bool warned = false;
	const CmAuthSecret *secrets;
	const char *problem;
	bool		insecure;
	bool		remote = false;

	insecure = wd_auth_secrets(&secrets, &problem) == 0 && problem == NULL;
	if (!insecure || warned)
	{
		warned = insecure;
		return;
	}
	warned = true;
	for (int i = 0; i < wd_nlisten; i++)
		if (!cm_net_is_loopback((struct sockaddr *) &wd_listen_addr[i]))
			remote = true;
	ereport(remote ? WARNING : LOG,
			(errmsg("watchdog.insecure_no_authentication is on: heartbeat connections are not authenticated"),
			 errdetail(remote ?
					   "Any host that reaches watchdog.port (%d) on a non-loopback address can make the terminator end the sessions of any client address." :
					   "Any local user can make the terminator end the sessions of any client address through watchdog.port (%d).",
					   wd_port),
			 errhint("Set watchdog.secret_file, give every conmgr the same secret, and turn watchdog.insecure_no_authentication off.")));
}

/* The effective list of addresses to listen on. */
static const char *
wd_effective_listen_addresses(void)
{
	if (wd_listen_addresses != NULL && wd_listen_addresses[0] != '\0')
		return wd_listen_addresses;
	return GetConfigOption("listen_addresses", true, false);
}

/*
 * Open the listen sockets, following the postmaster's discipline: every
 * address is tried, a failure is logged with the address and the next one
 * is tried; only when nothing could be bound do we retry later.  The first
 * attempt logs at LOG, retries at DEBUG1, so a port in use does not flood
 * the log.
 */
static void
wd_open_listen_sockets(bool first)
{
	const char *config = wd_effective_listen_addresses();
	int			elevel = first ? LOG : DEBUG1;
	char	   *raw;
	List	   *elems;
	ListCell   *lc;
	char		portstr[16];

	if (config == NULL || config[0] == '\0')
	{
		if (first)
			ereport(WARNING,
					(errmsg("watchdog is not listening on any address"),
					 errdetail("Both watchdog.listen_addresses and listen_addresses are empty."),
					 errhint("Set watchdog.listen_addresses and restart the server.")));
		wd_listen_nothing_configured = true;
		return;
	}

	raw = pstrdup(config);
	if (!SplitGUCList(raw, ',', &elems))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"%s\"",
						wd_listen_addresses[0] ? "watchdog.listen_addresses" : "listen_addresses")));
		wd_listen_nothing_configured = true;
		return;
	}

	snprintf(portstr, sizeof(portstr), "%d", wd_port);
	foreach(lc, elems)
	{
		char	   *host = (char *) lfirst(lc);
		struct addrinfo hints;
		struct addrinfo *res = NULL;
		int			rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr,
						 &hints, &res);
		if (rc != 0 || res == NULL)
		{
			ereport(elevel,
					(errmsg("watchdog could not translate host name \"%s\", service \"%s\" to address: %s",
							host, portstr, gai_strerror(rc))));
			continue;
		}

		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		{
			char		addrbuf[INET6_ADDRSTRLEN] = "?";
			const char *family;
			pgsocket	s;
			int			one = 1;

			if (ai->ai_family == AF_INET)
			{
				family = "IPv4";
				inet_ntop(AF_INET, &((struct sockaddr_in *) ai->ai_addr)->sin_addr,
						  addrbuf, sizeof(addrbuf));
			}
			else if (ai->ai_family == AF_INET6)
			{
				family = "IPv6";
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr,
						  addrbuf, sizeof(addrbuf));
			}
			else
				continue;

			/* the same address listed twice ("localhost, 127.0.0.1") */
			{
				bool		duplicate = false;

				for (int i = 0; i < wd_nlisten; i++)
				{
					if (ai->ai_addrlen <= sizeof(struct sockaddr_storage) &&
						memcmp(&wd_listen_addr[i], ai->ai_addr, ai->ai_addrlen) == 0)
						duplicate = true;
				}
				if (duplicate)
					continue;
			}

			if (wd_nlisten >= WD_MAX_LISTEN)
			{
				ereport(elevel,
						(errmsg("watchdog: could not bind to %s address \"%s\": too many listen sockets (at most %d)",
								family, addrbuf, WD_MAX_LISTEN)));
				break;
			}

			s = socket(ai->ai_family, SOCK_STREAM, 0);
			if (s == PGINVALID_SOCKET)
			{
				ereport(elevel,
						(errcode_for_socket_access(),
						 errmsg("watchdog could not create %s socket for address \"%s\": %m",
								family, addrbuf)));
				continue;
			}
			if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
			{
				ereport(elevel,
						(errcode_for_socket_access(),
						 errmsg("watchdog: setsockopt(SO_REUSEADDR) failed for %s address \"%s\": %m",
								family, addrbuf)));
				closesocket(s);
				continue;
			}
			if (ai->ai_family == AF_INET6 &&
				setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			{
				ereport(elevel,
						(errcode_for_socket_access(),
						 errmsg("watchdog: setsockopt(IPV6_V6ONLY) failed for %s address \"%s\": %m",
								family, addrbuf)));
				closesocket(s);
				continue;
			}
			if (bind(s, ai->ai_addr, ai->ai_addrlen) < 0)
			{
				wd_bind_failed(s, false, family, addrbuf, elevel);
				continue;
			}
			if (listen(s, Min(wd_max_heartbeat_connections + 16, SOMAXCONN)) < 0 ||
				!pg_set_noblock(s))
			{
				ereport(elevel,
						(errcode_for_socket_access(),
						 errmsg("watchdog could not listen on %s address \"%s\", port %d: %m",
								family, addrbuf, wd_port)));
				closesocket(s);
				continue;
			}
			(void) fcntl(s, F_SETFD, FD_CLOEXEC);
			memset(&wd_listen_addr[wd_nlisten], 0, sizeof(struct sockaddr_storage));
			memcpy(&wd_listen_addr[wd_nlisten], ai->ai_addr,
				   Min(ai->ai_addrlen, sizeof(struct sockaddr_storage)));
			wd_listen[wd_nlisten++] = s;
			ereport(LOG,
					(errmsg("watchdog listening on %s address \"%s\", port %d",
							family, addrbuf, wd_port)));
			/* datagram heartbeats (protocol 1.2) on the same address and port */
			wd_dgram_open(ai, family, addrbuf, elevel);
		}
		freeaddrinfo(res);
	}
	list_free(elems);
	pfree(raw);

	if (wd_nlisten == 0)
	{
		if (first)
			ereport(WARNING,
					(errmsg("watchdog could not listen on any address of \"%s\", port %d",
							config, wd_port),
					 errhint("The watchdog retries every %d seconds.",
							 WD_LISTEN_RETRY_MS / 1000)));
		wd_listen_retry_at = wd_now_ms() + WD_LISTEN_RETRY_MS;
	}
	else
	{
		if (!first)
			ereport(LOG,
					(errmsg("watchdog now listening on port %d", wd_port)));
		wd_wes_dirty = true;
	}
}

/*
 * The pending connection to close when too many wait: the oldest of the
 * address with the most pending connections (ties: the address seen
 * first).  O(pending^2) in the worst case, only on this rare path, with at
 * most wd_max_pending() connections.
 */
static WdPeer *
wd_pending_to_evict(void)
{
	dlist_iter	iter;
	WdPeer	   *best = NULL;
	int			best_count = 0;

	dlist_foreach(iter, &wd_peers)
	{
		WdPeer	   *p = dlist_container(WdPeer, node, iter.cur);
		dlist_iter	inner;
		int			count = 0;
		bool		earlier = false;

		if (p->state != WD_PEER_PENDING)
			continue;
		dlist_foreach(inner, &wd_peers)
		{
			WdPeer	   *q = dlist_container(WdPeer, node, inner.cur);

			if (q->state != WD_PEER_PENDING || q->addr.family != p->addr.family ||
				memcmp(q->addr.addr, p->addr.addr, p->addr.family == 4 ? 4 : 16) != 0)
				continue;
			if (q == p)
				break;
			earlier = true;		/* p is not the oldest of its address */
			break;
		}
		if (earlier)
			continue;
		dlist_foreach(inner, &wd_peers)
		{
			WdPeer	   *q = dlist_container(WdPeer, node, inner.cur);

			if (q->state == WD_PEER_PENDING && q->addr.family == p->addr.family &&
				memcmp(q->addr.addr, p->addr.addr, p->addr.family == 4 ? 4 : 16) == 0)
				count++;
		}
		if (count > best_count)
		{
			best = p;
			best_count = count;
		}
	}
	return best;
}

/* Most connections allowed to wait for their hello at once. */
static int
wd_max_pending(void)
{
	return Max(64, Min(wd_max_heartbeat_connections, 512));
}

/*
 * Rebuild the wait set: latch, postmaster death, listen sockets (unless
 * accepting is paused) and every open peer.
 */
static void
wd_rebuild_wait_set(int64 now)
{
	dlist_iter	iter;
	int			npeers = 0;

	if (wd_wes != NULL)
		FreeWaitEventSet(wd_wes);
	wd_wes = NULL;

	dlist_foreach(iter, &wd_peers)
	{
		WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

		peer->wait_pos = -1;
		if (peer->state != WD_PEER_CLOSED)
			npeers++;
	}

	wd_wes_cap = 2 + wd_nlisten + wd_dgram_count() + npeers;
	wd_wes = CreateWaitEventSet(TopMemoryContext, wd_wes_cap);
	if (wd_events != NULL)
		pfree(wd_events);
	wd_events = MemoryContextAlloc(TopMemoryContext,
								   sizeof(WaitEvent) * wd_wes_cap);

	AddWaitEventToSet(wd_wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wd_wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL,
					  NULL);

	for (int i = 0; i < wd_dgram_count(); i++)
		AddWaitEventToSet(wd_wes, WL_SOCKET_READABLE, wd_dgram_socket(i), NULL,
						  &wd_dgram_tag);

	wd_listen_in_set = (now >= wd_accept_paused_until);
	if (wd_listen_in_set)
	{
		for (int i = 0; i < wd_nlisten; i++)
			AddWaitEventToSet(wd_wes, WL_SOCKET_READABLE, wd_listen[i], NULL,
							  &wd_listen_tag);
	}

	dlist_foreach(iter, &wd_peers)
	{
		WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

		if (peer->state == WD_PEER_CLOSED)
			continue;
		peer->wait_events = WL_SOCKET_READABLE;
		if (peer->outlen > 0)
			peer->wait_events |= WL_SOCKET_WRITEABLE;
		peer->wait_pos = AddWaitEventToSet(wd_wes, peer->wait_events,
										   peer->sock, NULL, peer);
	}
	wd_wes_dirty = false;
}

/* Set a peer's deadline (monotonic ms), keeping the earliest one known. */
void
wd_peer_set_deadline(WdPeer *peer, int64 deadline)
{
	peer->deadline = deadline;
	if (deadline < wd_earliest_deadline)
		wd_earliest_deadline = deadline;
}

/*
 * Check every peer's deadline and recompute the earliest one.  Called when
 * the earliest known deadline has passed.
 */
static void
wd_check_deadlines(int64 now)
{
	dlist_iter	iter;
	int64		earliest = PG_INT64_MAX;

	wd_earliest_deadline = PG_INT64_MAX;
	dlist_foreach(iter, &wd_peers)
	{
		WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

		if (peer->state != WD_PEER_CLOSED)
			wd_peer_check_deadline(peer, now);
		if (peer->state != WD_PEER_CLOSED && peer->deadline < earliest)
			earliest = peer->deadline;
	}
	if (earliest < wd_earliest_deadline)
		wd_earliest_deadline = earliest;
}

/* Milliseconds until the earliest deadline: attribute check or a peer. */
static long
wd_compute_timeout(int64 now)
{
	int64		next = wd_next_attr_check;

	if (wd_earliest_deadline < next)
		next = wd_earliest_deadline;
	if (wd_slots_reconnect_next() < next)
		next = wd_slots_reconnect_next();
	if (wd_nlisten == 0 && !wd_listen_nothing_configured &&
		wd_listen_retry_at < next)
		next = wd_listen_retry_at;
	if (!wd_listen_in_set && wd_accept_paused_until < next)
		next = wd_accept_paused_until;

	if (next <= now)
		return 0;
	return (long) Min(next - now, (int64) INT_MAX);
}

/*
 * The event loop.  Never returns: exits through wd_shutdown() or on
 * postmaster death (WL_EXIT_ON_PM_DEATH).
 */
void
wd_server_main_loop(void)
{
	MemoryContext loopcxt;
	sigjmp_buf	local_sigjmp_buf;
	volatile int consecutive_errors = 0;
	volatile int64 woke_us = 0;	/* when the last wait returned events */
	bool		busy = false;	/* ... less than WD_WAKE_SPACING_US after the one before */

	loopcxt = AllocSetContextCreate(TopMemoryContext, "watchdog loop",
									ALLOCSET_DEFAULT_SIZES);
	wd_auth_load(false);
	wd_warn_insecure();

	/*
	 * An ERROR raised inside the loop (not expected; out of memory, say)
	 * comes back here: report it, clean up and carry on, so that one failure
	 * does not drop every heartbeat connection.  Repeated failures mean
	 * something is really wrong: exit and let the postmaster restart us.
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		EmitErrorReport();
		LWLockReleaseAll();
		MemoryContextSwitchTo(loopcxt);
		FlushErrorState();
		MemoryContextReset(loopcxt);
		RESUME_INTERRUPTS();
		wd_wes_dirty = true;
		if (++consecutive_errors > WD_MAX_CONSECUTIVE_ERRORS)
		{
			ereport(LOG,
					(errmsg("watchdog exiting after %d consecutive errors",
							consecutive_errors)));
			proc_exit(1);
		}
	}
	PG_exception_stack = &local_sigjmp_buf;

	if (wd_next_attr_check == 0)
		wd_next_attr_check = wd_now_ms() + wd_check_attr_interval;

	for (;;)
	{
		int64		now;
		long		timeout;
		int			nevents;

		MemoryContextSwitchTo(loopcxt);
		MemoryContextReset(loopcxt);

		now = wd_now_ms();
		if (wd_nlisten == 0 && !wd_listen_nothing_configured &&
			now >= wd_listen_retry_at)
			wd_open_listen_sockets(false);
		if (wd_wes_dirty || wd_listen_in_set != (now >= wd_accept_paused_until))
			wd_rebuild_wait_set(now);

		timeout = wd_compute_timeout(now);
		nevents = WaitEventSetWait(wd_wes, timeout, wd_events, wd_wes_cap,
								   PG_WAIT_EXTENSION);
		now = wd_now_ms();		/* deadlines of new peers start now */
		busy = false;
		if (nevents > 0)
		{
			int64		now_us = cm_mono_us();

			busy = now_us - woke_us < WD_WAKE_SPACING_US;
			woke_us = now_us;
		}

		for (int i = 0; i < nevents; i++)
		{
			WaitEvent  *ev = &wd_events[i];

			if (ev->events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				continue;
			}
			if (ev->user_data == &wd_listen_tag)
			{
				wd_accept(ev->fd, now);
				continue;
			}
			if (ev->user_data == &wd_dgram_tag)
			{
				wd_dgram_read(ev->fd);
				continue;
			}
			if (ev->user_data != NULL)
			{
				WdPeer	   *peer = (WdPeer *) ev->user_data;

				if (peer->state != WD_PEER_CLOSED &&
					(ev->events & WL_SOCKET_WRITEABLE))
					wd_peer_flush(peer);
				if (peer->state != WD_PEER_CLOSED &&
					(ev->events & WL_SOCKET_READABLE))
					wd_peer_read(peer);
			}
		}

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			wd_shutdown();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			wd_auth_load(true);
			wd_warn_insecure();
			/* default_transaction_read_only may have changed */
			wd_next_attr_check = 0;
		}

		now = wd_now_ms();
		if (now >= wd_next_attr_check)
			wd_check_attrs(now);

		if (now >= wd_earliest_deadline)
			wd_check_deadlines(now);
		wd_dgram_log_summary(now);
		wd_slots_check_reconnect(now);

		if (wd_closed_count > 0)
			wd_free_closed_peers();
		consecutive_errors = 0;

		/* busy: let heartbeats gather before the next wait */
		if (busy)
		{
			int64		left = woke_us + WD_WAKE_SPACING_US - cm_mono_us();

			if (left > 0)
				pg_usleep(left);
		}
	}
}

/*
 * Recompute the attributes; on a change, log it once and push it to every
 * peer at once.  Called on the check_attr_interval timer, after a reload,
 * and before a welcome or a heartbeat reply so that these never carry a
 * stale value.
 */
void
wd_attrs_refresh(void)
{
	uint8		attrs = wd_attr_current() |
		(wd_server_draining ? CM_PROTO_ATTR_STOPPING : 0);
	uint8		changed = attrs ^ wd_current_attrs;
	dlist_iter	iter;

	if (changed == 0)
		return;

	if (changed & ~CM_PROTO_ATTR_STOPPING)
		ereport(LOG,
				(errmsg("watchdog: instance attributes changed from \"%s\" to \"%s\"; notifying %d conmgr peers",
						cm_proto_attrs_name(wd_current_attrs),
						cm_proto_attrs_name(attrs), wd_active_count)));
	if (changed & CM_PROTO_ATTR_STOPPING)
	{
		int			told = 0;

		dlist_foreach(iter, &wd_peers)
		{
			WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

			if (peer->state == WD_PEER_ACTIVE &&
				peer->version >= CM_PROTO_VERSION_1_1)
				told++;
		}
		ereport(LOG,
				(errmsg("watchdog: the server is shutting down; telling %d conmgr peers to route no new connections to this instance",
						told),
				 errdetail("Sessions already here are kept until the server ends them%s.",
						   told < wd_active_count ?
						   "; peers that speak protocol 1.0 are not told and keep routing here" : "")));
	}
	wd_current_attrs = attrs;

	dlist_foreach(iter, &wd_peers)
	{
		WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

		if (peer->state == WD_PEER_ACTIVE)
			wd_peer_push_attrs(peer, attrs);
	}
}

static void
wd_check_attrs(int64 now)
{
	wd_next_attr_check = now + wd_check_attr_interval;
	if (!wd_server_draining && wd_server_status() == WD_SERVER_STOPPING)
	{
		wd_server_draining = true;
		LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		wd_shared->server_draining = true;
		LWLockRelease(wd_shared->lock);
	}
	wd_attrs_refresh();
}

/*
 * Accept new connections on a listen socket, up to a batch.  Running out of
 * descriptors pauses accepting for a moment instead of spinning on a socket
 * that stays readable.
 */
static void
wd_accept(pgsocket lsock, int64 now)
{
	for (int n = 0; n < WD_ACCEPT_BATCH; n++)
	{
		struct sockaddr_storage ss;
		socklen_t	sslen = sizeof(ss);
		pgsocket	s;
		CmProtoAddr addr;
		WdPeer	   *peer;
		int			one = 1;
		uint64		suppressed;

		s = accept(lsock, (struct sockaddr *) &ss, &sslen);
		if (s == PGINVALID_SOCKET)
		{
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (wd_log_allowed(&wd_limit_accept_error, now, &suppressed))
			{
				int			save_errno = errno;
				bool		out_of_fds = (save_errno == EMFILE ||
										  save_errno == ENFILE);

				errno = save_errno;
				ereport(LOG,
						(errcode_for_socket_access(),
						 errmsg("watchdog could not accept new heartbeat connection: %m"),
						 suppressed > 0 ?
						 errdetail("%llu similar failures were not logged.",
								   (unsigned long long) suppressed) : 0,
						 out_of_fds ?
						 errhint("Raise the open-files limit (ulimit -n) of the server; see the watchdog documentation.") : 0));
			}
			wd_accept_paused_until = now + WD_ACCEPT_PAUSE_MS;
			return;
		}

		if (!pg_set_noblock(s) ||
			!cm_net_addr_from_sockaddr((struct sockaddr *) &ss, &addr))
		{
			closesocket(s);
			continue;
		}
		(void) fcntl(s, F_SETFD, FD_CLOEXEC);
		(void) setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		(void) setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));

		/*
		 * Too many connections without a (complete) handshake: drop the
		 * oldest of the address that holds the most of them, so that one
		 * address flooding the port evicts its own connections first.
		 */
		if (wd_pending_count >= wd_max_pending())
		{
			WdPeer	   *old = wd_pending_to_evict();

			if (old)
			{
				if (wd_log_allowed(&wd_limit_evict, now, &suppressed))
					ereport(LOG,
							(errmsg("watchdog: too many heartbeat connections waiting for their handshake (%d); closing the oldest of the address with the most, %s",
									wd_pending_count, old->desc),
							 suppressed > 0 ?
							 errdetail("%llu similar closures were not logged.",
									   (unsigned long long) suppressed) : 0));
				wd_peer_close(old);
			}
		}

		peer = MemoryContextAllocZero(wd_peer_cxt, sizeof(WdPeer));
		peer->sock = s;
		peer->state = WD_PEER_PENDING;
		peer->addr = addr;
		peer->slot = -1;
		peer->wait_pos = -1;
		wd_peer_set_deadline(peer, now + wd_hello_timeout);
		cm_proto_addr_format(&addr, peer->desc, sizeof(peer->desc));
		dlist_push_tail(&wd_peers, &peer->node);
		wd_pending_count++;
		wd_wes_dirty = true;

		ereport(DEBUG1,
				(errmsg_internal("watchdog: heartbeat connection from %s",
								 peer->desc)));
	}
}

/*
 * Read what a peer sent and process every whole frame.  One recv() per
 * wake-up keeps peers fair; the level-triggered wait set reports the rest.
 */
static void
wd_peer_read(WdPeer *peer)
{
	ssize_t		n;
	size_t		space = sizeof(peer->inbuf) - peer->inlen;

	if (space == 0)
	{
		/* cannot happen: a whole frame always fits the buffer */
		wd_peer_lost(peer, CM_REASON_PROTOCOL, "input buffer full");
		return;
	}

	for (;;)
	{
		n = recv(peer->sock, peer->inbuf + peer->inlen, space, 0);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}

	if (n > 0)
	{
		peer->inlen += n;
		peer->bytes_in += n;
		wd_peer_process_input(peer);

		/*
		 * A send failed while the input was handled: read and handle what
		 * the connection still holds, which may be a goodbye; only then is
		 * a peer that did not leave cleanly broken.
		 */
		for (int i = 0; i < 8 && peer->send_failed &&
			 peer->state == WD_PEER_ACTIVE; i++)
		{
			n = recv(peer->sock, peer->inbuf + peer->inlen,
					 sizeof(peer->inbuf) - peer->inlen, MSG_DONTWAIT);
			if (n <= 0)
				break;
			peer->inlen += n;
			peer->bytes_in += n;
			wd_peer_process_input(peer);
		}
		if (peer->send_failed && peer->state == WD_PEER_ACTIVE)
			wd_peer_broken(peer, peer->send_error);
		else if (peer->send_failed && peer->state != WD_PEER_CLOSED)
			wd_peer_close(peer);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;

	/* end of file or error */
	if (peer->state == WD_PEER_ACTIVE)
	{
		char		detail[256];

		if (n == 0)
			snprintf(detail, sizeof(detail),
					 "connection closed without a goodbye");
		else
			snprintf(detail, sizeof(detail),
					 "could not receive data: %s", strerror(errno));
		wd_peer_broken(peer, detail);
	}
	else
	{
		if (peer->inlen > 0)
			ereport(LOG,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("incomplete heartbeat hello from %s", peer->desc)));
		else
			ereport(DEBUG1,
					(errmsg_internal("watchdog: %s closed before its hello",
									 peer->desc)));
		wd_peer_close(peer);
	}
}

/*
 * Queue bytes for a peer and try to send them now.  Returns false when the
 * output buffer is full (the peer does not read) or the peer was closed by
 * a send error; the caller decides what that means.
 */
bool
wd_peer_send(WdPeer *peer, const uint8 *buf, size_t len)
{
	if (peer->state == WD_PEER_CLOSED || peer->send_failed)
		return false;
	if (!wd_peer_queue(peer, buf, len))
		return false;
	wd_peer_flush(peer);
	return peer->state != WD_PEER_CLOSED;
}

/* Send as much queued output as the socket takes, without blocking. */
static void
wd_peer_flush(WdPeer *peer)
{
	while (peer->outlen > 0)
	{
		ssize_t		n = send(peer->sock, peer->outbuf, peer->outlen,
							 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
		{
			memmove(peer->outbuf, peer->outbuf + n, peer->outlen - n);
			peer->outlen -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;

		/* the connection is broken */
		if (peer == wd_input_peer)
		{
			if (!peer->send_failed)
				snprintf(peer->send_error, sizeof(peer->send_error),
						 "could not send data: %s", strerror(errno));
			peer->send_failed = true;
			peer->outlen = 0;
			return;
		}
		{
			char		detail[256];

			snprintf(detail, sizeof(detail), "could not send data: %s",
					 strerror(errno));
			wd_peer_broken(peer, detail);
		}
		return;
	}
	wd_peer_update_events(peer);
}

/* Ask for WL_SOCKET_WRITEABLE exactly while output is queued. */
static void
wd_peer_update_events(WdPeer *peer)
{
	uint32		want = WL_SOCKET_READABLE;

	if (peer->outlen > 0)
		want |= WL_SOCKET_WRITEABLE;
	if (peer->wait_pos < 0 || wd_wes == NULL || wd_wes_dirty)
		return;					/* the next rebuild takes care of it */
	if (want != peer->wait_events)
	{
		ModifyWaitEvent(wd_wes, peer->wait_pos, want, NULL);
		peer->wait_events = want;
	}
}

/*
 * Close a peer's socket.  The caller has already released or handed over
 * its shared slot.  The memory is freed at the end of the loop cycle, as
 * the current batch of events may still point to it.
 */
void
wd_peer_close(WdPeer *peer)
{
	if (peer->state == WD_PEER_CLOSED)
		return;
	wd_peer_detach(peer);
	closesocket(peer->sock);
	peer->sock = PGINVALID_SOCKET;
	peer->wait_pos = -1;
	wd_wes_dirty = true;
	wd_closed_count++;
}

static void
wd_free_closed_peers(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &wd_peers)
	{
		WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

		if (peer->state == WD_PEER_CLOSED)
		{
			dlist_delete(iter.cur);
			pfree(peer);
		}
	}
	wd_closed_count = 0;
}

/*
 * SIGTERM.  During a server shutdown: send every conmgr the shutdown
 * notice, close everything and exit; sessions are not terminated, the
 * server itself is ending them.  Sent to this process alone (the server
 * keeps running): tell every conmgr that the watchdog restarts, so that it
 * reconnects without telling its applications anything, as long as it is
 * back within its heartbeat timeout.
 */
static void
wd_shutdown(void)
{
	dlist_iter	iter;
	int			notified = 0;
	bool		stopping = wd_server_stopping();

	wd_shutting_down = true;
	dlist_foreach(iter, &wd_peers)
	{
		WdPeer	   *peer = dlist_container(WdPeer, node, iter.cur);

		if (peer->state == WD_PEER_ACTIVE)
		{
			if (stopping)
				wd_peer_shutdown_notice(peer);
			else
				wd_peer_restart_notice(peer);
			notified++;
		}
		else if (peer->state == WD_PEER_PENDING)
			wd_peer_close(peer);
	}
	for (int i = 0; i < wd_nlisten; i++)
		closesocket(wd_listen[i]);
	wd_nlisten = 0;
	wd_dgram_close_all();

	if (stopping)
		ereport(LOG,
				(errmsg("watchdog shutting down: sent a shutdown notice to %d conmgr peers",
						notified)));
	else
		ereport(LOG,
				(errmsg("watchdog process stopping while the server keeps running: told %d conmgr peers to reconnect",
						notified),
				 errdetail("The postmaster starts a new watchdog process; the applications of these conmgr peers are not notified if it is back within their heartbeat timeout.")));

	/*
	 * Exit code 1, not 0: when the server is shutting down the postmaster
	 * starts no worker anyway, but when someone sent SIGTERM to this process
	 * alone, the postmaster restarts it (exit code 0 would unregister the
	 * worker until the next server start).
	 */
	proc_exit(1);
}
