/*-------------------------------------------------------------------------
 *
 * wd_stubs.c
 *	  Stand-ins for everything watchdog/wd_peer.c and watchdog/wd_slots.c
 *	  need besides common/, so that the real files run in the watchdog_peer
 *	  fuzz target without a server.
 *
 * From PostgreSQL: elog (every message is formatted, so that the sanitizers
 * check its arguments; ERROR and above abort, since the peer code must
 * never raise one), the watchdog's LWLock (checked: never taken twice,
 * never released when not held, never held when control returns to the
 * harness), palloc, a fixed backend status array, the clocks.
 *
 * From the watchdog's other files, reproducing what they do to the state
 * the peer code sees, without sockets or a WaitEventSet: wd_server.c's
 * wd_peer_send, wd_peer_flush and wd_peer_close (the socket is a buffer
 * the harness reads as conmgr, which can stop reading or break),
 * wd_attrs_refresh, the log rate limiter (answer chosen by the input);
 * wd_auth.c's wd_auth_secrets; wd_shmem.c's shared struct, allocated once
 * with WD_FAKE_SLOTS slots and WD_FAKE_REGISTRATIONS registrations and a
 * poisoned gap after the slots, so that AddressSanitizer reports an access
 * past the last slot.
 *
 * cm_auth_random, the source of the watchdog's challenge nonce, is wrapped
 * at link time (-Wl,--wrap=cm_auth_random): deterministic, so that an input
 * replays exactly, and able to fail.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/wd_stubs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>

#include <sanitizer/asan_interface.h>

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "watchdog.h"
#include "wd_stubs.h"
#include "fuzz_common.h"

/* GUCs (watchdog.c), at their defaults unless the harness sets them */
int			wd_check_attr_interval = 1000;
int			wd_max_heartbeat_connections = WD_FAKE_SLOTS;
int			wd_timeout_margin = 1000;
int			wd_hello_timeout = 5000;
int			wd_max_heartbeat_timeout = 300000;
int			wd_max_heartbeat_connections_per_address = 16;
int			wd_termination_mode = WD_TERMINATE_ADDRESS;

/* wd_server.c */
int			wd_pending_count = 0;
int			wd_active_count = 0;
uint8		wd_current_attrs = 0;
bool		wd_shutting_down = false;
WdPeer	   *wd_input_peer = NULL;

/* wd_shmem.c */
WatchdogSharedState *wd_shared = NULL;

/* the server */
MemoryContext TopMemoryContext = NULL;

WdFake		wd_fake;

const CmAuthSecret wd_fake_secrets[2] = {
	{.len = 16, .data = "fuzz secret 0123"},
	{.len = 20, .data = "another secret 45678"},
};
const CmAuthSecret wd_fake_wrong_secret = {.len = 16, .data = "not the secret!!"};

/*
 * The backend status array: client backends from the peer's addresses
 * (127.0.0.1, ::1, an IPv4-mapped 127.0.0.1), from another host, over a
 * Unix socket, a walsender, a background worker with a client address, and
 * one that has exited since the snapshot.
 */
const WdFakeBackend wd_fake_backends[] = {
	{100, AF_INET, "127.0.0.1", 50000, B_BACKEND, true},
	{101, AF_INET, "127.0.0.1", 50001, B_WAL_SENDER, true},
	{102, AF_INET6, "::ffff:127.0.0.1", 50002, B_BACKEND, true},
	{103, AF_INET6, "::1", 50003, B_BACKEND, true},
	{104, AF_INET6, "::1", 50004, B_BACKEND, true},
	{105, AF_INET, "192.0.2.7", 50005, B_BACKEND, true},
	{106, AF_UNIX, NULL, 0, B_BACKEND, true},
	{107, AF_INET, "127.0.0.1", 50007, B_BG_WORKER, true},
	{108, AF_INET, "127.0.0.1", 50008, B_BACKEND, true},
	{109, AF_INET6, "::1", 50009, B_BACKEND, true},
	{110, AF_INET, "127.0.0.1", 50010, B_BACKEND, false},
};
const int	wd_fake_nbackends = lengthof(wd_fake_backends);

static uint64 wd_fake_run;
static LocalPgBackendStatus wd_fake_status[lengthof(wd_fake_backends)];
static LWLock wd_fake_lock;
static PGPROC wd_fake_proc;
static Size wd_fake_slots_end;	/* the end of the last slot */

/* ----------------------------------------------------------------
 * Set-up
 * ----------------------------------------------------------------
 */

static void
wd_fake_init_status(void)
{
	for (int i = 0; i < wd_fake_nbackends; i++)
	{
		const WdFakeBackend *b = &wd_fake_backends[i];
		PgBackendStatus *be = &wd_fake_status[i].backendStatus;
		SockAddr   *sa = &be->st_clientaddr;

		memset(&wd_fake_status[i], 0, sizeof(wd_fake_status[i]));
		be->st_procpid = b->pid;
		be->st_backendType = b->type;
		if (b->family == AF_INET)
		{
			struct sockaddr_in *sin = (struct sockaddr_in *) &sa->addr;

			sin->sin_family = AF_INET;
			sin->sin_port = htons(b->port);
			if (inet_pton(AF_INET, b->host, &sin->sin_addr) != 1)
				fuzz_fail("bad fake backend address %s", b->host);
			sa->salen = sizeof(*sin);
		}
		else if (b->family == AF_INET6)
		{
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &sa->addr;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(b->port);
			if (inet_pton(AF_INET6, b->host, &sin6->sin6_addr) != 1)
				fuzz_fail("bad fake backend address %s", b->host);
			sa->salen = sizeof(*sin6);
		}
		else
		{
			struct sockaddr_un *sun = (struct sockaddr_un *) &sa->addr;

			sun->sun_family = AF_UNIX;
			snprintf(sun->sun_path, sizeof(sun->sun_path), "/var/run/postgresql/.s.PGSQL.5432");
			sa->salen = sizeof(*sun);
		}
	}
}

/*
 * Reset the fake world for a new input: empty shared memory (allocated on
 * first use), counters, clock, settings at their defaults.
 */
void
wd_fake_reset(void)
{
	Size		regs_offset;
	Size		regs_size = sizeof(WatchdogRegistration) * WD_FAKE_REGISTRATIONS;

	wd_fake_slots_end = offsetof(WatchdogSharedState, slots) +
		sizeof(WatchdogPeerSlot) * WD_FAKE_SLOTS;
	/* as wd_shmem.c lays it out, plus a poisoned gap of one slot */
	regs_offset = MAXALIGN(wd_fake_slots_end + sizeof(WatchdogPeerSlot));
	if (wd_shared == NULL)
	{
		wd_shared = malloc(regs_offset + regs_size);
		if (wd_shared == NULL)
			fuzz_fail("out of memory");
		ASAN_POISON_MEMORY_REGION((char *) wd_shared + wd_fake_slots_end,
								  regs_offset - wd_fake_slots_end);
		wd_fake_init_status();
	}
	memset(wd_shared, 0, wd_fake_slots_end);
	memset((char *) wd_shared + regs_offset, 0, regs_size);
	wd_shared->lock = &wd_fake_lock;
	wd_shared->max_slots = WD_FAKE_SLOTS;
	wd_shared->max_registrations = WD_FAKE_REGISTRATIONS;
	wd_shared->registrations_offset = regs_offset;

	wd_fake_run++;
	memset(&wd_fake, 0, offsetof(WdFake, received));
	wd_fake.received_len = 0;
	wd_fake.received_overflow = false;
	wd_fake.now_ms = 1000000;
	wd_fake.conmgr_reads = true;
	wd_fake.verbose = getenv("FUZZ_VERBOSE") != NULL;

	wd_max_heartbeat_connections = WD_FAKE_SLOTS;
	wd_max_heartbeat_connections_per_address = 16;
	wd_timeout_margin = 1000;
	wd_termination_mode = WD_TERMINATE_ADDRESS;
	wd_pending_count = 0;
	wd_active_count = 0;
	wd_current_attrs = 0;
	wd_shutting_down = false;
}

/* ----------------------------------------------------------------
 * wd_server.c
 * ----------------------------------------------------------------
 */

int64
wd_now_ms(void)
{
	return wd_fake.now_ms;
}

/* The rate limiter: the input decides; no state kept across inputs. */
bool
wd_log_allowed(CmRateWindow *limit, int64 now, uint64 *suppressed)
{
	*suppressed = 0;
	wd_fake.log_calls++;
	switch (wd_fake.log)
	{
		case WD_FAKE_LOG_ALLOW:
			return true;
		case WD_FAKE_LOG_ALLOW_SUPPRESSED:
			*suppressed = 3;
			return true;
		case WD_FAKE_LOG_REFUSE:
			return false;
		case WD_FAKE_LOG_ALTERNATE:
			return wd_fake.log_calls % 2 == 0;
	}
	return true;
}

void
wd_peer_set_deadline(WdPeer *peer, int64 deadline)
{
	peer->deadline = deadline;
}

/* As wd_server.c: queue (sealed once the session is), then flush. */
bool
wd_peer_send(WdPeer *peer, const uint8 *buf, size_t len)
{
	FUZZ_CHECK(peer == wd_fake.peer, "wd_peer_send for an unknown peer");
	if (peer->state == WD_PEER_CLOSED)
		return false;
	if (!wd_peer_queue(peer, buf, len))
		return false;
	wd_fake.sends++;
	wd_fake_flush(peer);
	return peer->state != WD_PEER_CLOSED;
}

/*
 * wd_peer_flush: the socket takes everything while conmgr reads, nothing
 * when it does not, and fails from the send the input chose on.
 */
void
wd_fake_flush(WdPeer *peer)
{
	if (peer->outlen == 0 || peer->state == WD_PEER_CLOSED)
		return;
	if (wd_fake.break_at_send > 0 && wd_fake.sends >= wd_fake.break_at_send)
	{
		/* the connection is broken */
		if (peer->state == WD_PEER_ACTIVE)
			wd_peer_lost(peer, CM_REASON_CONN_LOST,
						 "could not send data: Connection reset by peer");
		else
			wd_peer_close(peer);
		return;
	}
	if (!wd_fake.conmgr_reads)
		return;
	if (wd_fake.received_len + peer->outlen > sizeof(wd_fake.received))
		wd_fake.received_overflow = true;
	else
	{
		memcpy(wd_fake.received + wd_fake.received_len, peer->outbuf, peer->outlen);
		wd_fake.received_len += peer->outlen;
	}
	peer->outlen = 0;
}

/* As wd_server.c, without the socket and the wait set. */
void
wd_peer_close(WdPeer *peer)
{
	FUZZ_CHECK(peer == wd_fake.peer, "wd_peer_close for an unknown peer");
	if (peer->state == WD_PEER_CLOSED)
		return;
	wd_peer_detach(peer);
	peer->sock = PGINVALID_SOCKET;
	peer->wait_pos = -1;
}

/*
 * As wd_dgram.c, without the table (datagrams are not fuzzed here: their
 * parsing and sealing are, by fuzz_sealed): only a sealed 1.2 session may
 * register, and once.
 */
void
wd_dgram_register(WdPeer *peer)
{
	FUZZ_CHECK(peer->sealed && peer->version >= CM_PROTO_VERSION_1_2 &&
			   !peer->dgram_registered,
			   "datagrams registered for a session that may not use them");
	peer->dgram_registered = true;
}

void
wd_dgram_unregister(WdPeer *peer)
{
	peer->dgram_registered = false;
}

/* As wd_server.c, with wd_attr_current() the input's value. */
void
wd_attrs_refresh(void)
{
	uint8		attrs = wd_fake.attrs;

	if (attrs == wd_current_attrs)
		return;
	ereport(LOG,
			(errmsg("watchdog: instance attributes changed from %u to %u; notifying %d conmgr peers",
					wd_current_attrs, attrs, wd_active_count)));
	wd_current_attrs = attrs;
	if (wd_fake.peer != NULL && wd_fake.peer->state == WD_PEER_ACTIVE)
		wd_peer_push_attrs(wd_fake.peer, attrs);
}

/* ----------------------------------------------------------------
 * wd_auth.c, wd_shmem.c, common/cm_auth.c
 * ----------------------------------------------------------------
 */

/* The same answers as wd_auth.c for each configuration. */
int
wd_auth_secrets(const CmAuthSecret **secrets, const char **problem)
{
	*problem = NULL;
	switch (wd_fake.auth)
	{
		case WD_FAKE_AUTH_ONE:
			*secrets = &wd_fake_secrets[0];
			return 1;
		case WD_FAKE_AUTH_TWO:
			*secrets = wd_fake_secrets;
			return 2;
		case WD_FAKE_AUTH_UNREADABLE:
			*secrets = wd_fake_secrets;
			*problem = "the watchdog requires authentication but could not read its secret file";
			return 0;
		case WD_FAKE_AUTH_REFUSE_ALL:
			*secrets = wd_fake_secrets;
			*problem = "this server requires authentication: set watchdog.secret_file on the server and the same secret in conmgr.conf's secret_file";
			return 0;
		case WD_FAKE_AUTH_OFF:
		case WD_FAKE_AUTH_COUNT:
			break;
	}
	*secrets = wd_fake_secrets;
	return 0;
}

/* The terminator is woken only for a slot that was declared lost. */
void
wd_wake_terminator(void)
{
	bool		lost = false;

	FUZZ_CHECK(wd_fake.lock_mode == 0, "terminator woken with the lock held");
	for (int i = 0; i < wd_shared->max_slots; i++)
		if (wd_shared->slots[i].state == WD_SLOT_LOST)
			lost = true;
	FUZZ_CHECK(lost, "terminator woken but no slot is lost");
	wd_fake.terminator_wakes++;
}

extern bool __wrap_cm_auth_random(uint8_t *buf, size_t len);

/* Deterministic "random" bytes, different at each call; may fail. */
bool
__wrap_cm_auth_random(uint8_t *buf, size_t len)
{
	if (wd_fake.random_fails)
		return false;
	wd_fake.random_counter++;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t) (wd_fake.random_counter * 131 + i * 7);
	return true;
}

/* ----------------------------------------------------------------
 * The server
 * ----------------------------------------------------------------
 */

TimestampTz
GetCurrentTimestamp(void)
{
	/* a fixed moment plus the monotonic clock's progress */
	return (TimestampTz) 820454400 * USECS_PER_SEC + wd_fake.now_ms * 1000;
}

bool
LWLockAcquire(LWLock *lock, LWLockMode mode)
{
	FUZZ_CHECK(lock == &wd_fake_lock, "LWLockAcquire of another lock");
	FUZZ_CHECK(wd_fake.lock_mode == 0,
			   "the watchdog's lock is taken while this process holds it");
	wd_fake.lock_mode = (int) mode + 1;
	return true;
}

void
LWLockRelease(LWLock *lock)
{
	FUZZ_CHECK(lock == &wd_fake_lock, "LWLockRelease of another lock");
	FUZZ_CHECK(wd_fake.lock_mode != 0, "the watchdog's lock is released but not held");
	wd_fake.lock_mode = 0;
}

PGPROC *
BackendPidGetProc(int pid)
{
	FUZZ_CHECK(wd_fake.lock_mode == 0,
			   "ProcArrayLock taken with the watchdog's lock held");
	for (int i = 0; i < wd_fake_nbackends; i++)
		if (wd_fake_backends[i].pid == pid && wd_fake_backends[i].alive)
			return &wd_fake_proc;
	return NULL;
}

void
pgstat_clear_backend_activity_snapshot(void)
{
}

int
pgstat_fetch_stat_numbackends(void)
{
	return wd_fake_nbackends;
}

LocalPgBackendStatus *
pgstat_fetch_stat_local_beentry(int beid)
{
	if (beid < 1 || beid > wd_fake_nbackends)
		return NULL;
	return &wd_fake_status[beid - 1];
}

void *
palloc(Size size)
{
	void	   *p = malloc(size > 0 ? size : 1);

	if (p == NULL)
		fuzz_fail("out of memory");
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return palloc(size);
}

int
pg_snprintf(char *str, size_t count, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(str, count, fmt, ap);
	va_end(ap);
	return n;
}

void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fuzz_fail("%s(\"%s\") at %s:%d", errorType, conditionName, fileName, lineNumber);
}

/*
 * elog.  errstart says yes to every level, so that the arguments of every
 * message are evaluated and formatted; the message is printed only with
 * FUZZ_VERBOSE set.  ERROR and above abort in errfinish.
 */
static int	wd_fake_elevel;
static char wd_fake_msg[1024];
static char wd_fake_detail[1024];

/* every ereport site reached, with the number of runs that reached it */
typedef struct WdFakeLogSite
{
	const char *file;
	int			line;
	const char *func;
	uint64		runs;
	uint64		last_run;
} WdFakeLogSite;

static WdFakeLogSite wd_fake_sites[256];
static int	wd_fake_nsites = 0;

static void
wd_fake_count_site(const char *file, int line, const char *func)
{
	WdFakeLogSite *site = NULL;

	for (int i = 0; i < wd_fake_nsites && site == NULL; i++)
		if (wd_fake_sites[i].line == line && strcmp(wd_fake_sites[i].file, file) == 0)
			site = &wd_fake_sites[i];
	if (site == NULL)
	{
		if (wd_fake_nsites == lengthof(wd_fake_sites))
			return;
		site = &wd_fake_sites[wd_fake_nsites++];
		site->file = file;
		site->line = line;
		site->func = func;
	}
	if (site->last_run != wd_fake_run)
	{
		site->last_run = wd_fake_run;
		site->runs++;
	}
}

static int
wd_fake_site_cmp(const void *a, const void *b)
{
	const WdFakeLogSite *x = a;
	const WdFakeLogSite *y = b;
	int			c = strcmp(x->file, y->file);

	return c != 0 ? c : x->line - y->line;
}

void
wd_fake_print_log_sites(void)
{
	qsort(wd_fake_sites, wd_fake_nsites, sizeof(WdFakeLogSite), wd_fake_site_cmp);
	fprintf(stderr, "ereport sites reached (runs, site):\n");
	for (int i = 0; i < wd_fake_nsites; i++)
		fprintf(stderr, "  %8llu %s:%d %s\n",
				(unsigned long long) wd_fake_sites[i].runs,
				wd_fake_sites[i].file, wd_fake_sites[i].line, wd_fake_sites[i].func);
}

bool
errstart(int elevel, const char *domain)
{
	wd_fake_elevel = elevel;
	wd_fake_msg[0] = '\0';
	wd_fake_detail[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	wd_fake_count_site(filename, lineno, funcname);
	if (wd_fake_elevel >= ERROR)
		fuzz_fail("ereport(%d) at %s:%d (%s): %s", wd_fake_elevel,
				  filename, lineno, funcname, wd_fake_msg);
	if (wd_fake.verbose)
		fprintf(stderr, "%s: %s%s%s\n",
				wd_fake_elevel == LOG ? "LOG" : "DEBUG", wd_fake_msg,
				wd_fake_detail[0] ? "\n    DETAIL: " : "", wd_fake_detail);
}

int
errcode(int sqlerrcode)
{
	return 0;
}

#define WD_FAKE_FORMAT(buf, fmt) \
	do { \
		va_list		ap; \
		va_start(ap, fmt); \
		vsnprintf(buf, sizeof(buf), fmt, ap); \
		va_end(ap); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	WD_FAKE_FORMAT(wd_fake_msg, fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	WD_FAKE_FORMAT(wd_fake_msg, fmt);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	WD_FAKE_FORMAT(wd_fake_detail, fmt);
	return 0;
}

int
errdetail_log(const char *fmt,...)
{
	WD_FAKE_FORMAT(wd_fake_detail, fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	char		hint[1024];

	WD_FAKE_FORMAT(hint, fmt);
	return 0;
}
