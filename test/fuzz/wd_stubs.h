/*-------------------------------------------------------------------------
 *
 * wd_stubs.h
 *	  The world around watchdog/wd_peer.c and watchdog/wd_slots.c for the
 *	  watchdog_peer fuzz target: what wd_stubs.c puts in place of the
 *	  server (elog, LWLocks, memory contexts, the backend status array, the
 *	  clocks) and of the watchdog's other files (wd_server.c's socket
 *	  layer, wd_auth.c's secrets, wd_attr.c's attributes, wd_shmem.c's
 *	  shared memory), and the knobs the harness turns for each input.
 *
 * Include after postgres.h.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/wd_stubs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_WD_STUBS_H
#define FUZZ_WD_STUBS_H

#include "miscadmin.h"

#include "cm_auth.h"
#include "wd_server.h"
#include "wd_shmem.h"

/*
 * The harness and the stubs print and format with the C library, not with
 * PostgreSQL's replacements that port.h substitutes (the product's own
 * calls still go to pg_snprintf, which wd_stubs.c supplies).
 */
#undef snprintf
#undef vsnprintf
#undef fprintf
#undef vfprintf
#undef printf
#undef qsort

/* Size of the fake shared memory: slots and registrations. */
#define WD_FAKE_SLOTS			4
#define WD_FAKE_REGISTRATIONS	8

/* What the server's secret configuration is (wd_auth_secrets). */
typedef enum WdFakeAuth
{
	WD_FAKE_AUTH_OFF = 0,		/* no secret_file, insecure_no_authentication */
	WD_FAKE_AUTH_ONE,			/* one secret: wd_fake_secrets[0] */
	WD_FAKE_AUTH_TWO,			/* two: wd_fake_secrets[1], then [0] */
	WD_FAKE_AUTH_UNREADABLE,	/* secret_file set, nothing could be read */
	WD_FAKE_AUTH_REFUSE_ALL,	/* no secret_file, and not insecure */
	WD_FAKE_AUTH_COUNT
} WdFakeAuth;

/* What wd_log_allowed answers. */
typedef enum WdFakeLog
{
	WD_FAKE_LOG_ALLOW = 0,
	WD_FAKE_LOG_ALLOW_SUPPRESSED,	/* allowed, some lines were withheld */
	WD_FAKE_LOG_REFUSE,
	WD_FAKE_LOG_ALTERNATE		/* refuse, allow, refuse ... */
} WdFakeLog;

/* A backend in the fake backend status array. */
typedef struct WdFakeBackend
{
	int			pid;
	int			family;			/* AF_INET, AF_INET6 or AF_UNIX */
	const char *host;			/* for AF_INET and AF_INET6 */
	uint16		port;
	BackendType type;
	bool		alive;			/* BackendPidGetProc finds it */
} WdFakeBackend;

extern const WdFakeBackend wd_fake_backends[];
extern const int wd_fake_nbackends;

/* The secrets of the server (wd_auth_secrets) and a wrong one. */
extern const CmAuthSecret wd_fake_secrets[2];
extern const CmAuthSecret wd_fake_wrong_secret;

/* The state of the fake world, reset for each input by wd_fake_reset. */
typedef struct WdFake
{
	int64		now_ms;			/* wd_now_ms(); GetCurrentTimestamp follows */
	WdFakeAuth	auth;
	WdFakeLog	log;
	int			log_calls;
	bool		random_fails;	/* cm_auth_random fails */
	uint8		random_counter; /* makes successive nonces differ */
	uint8		attrs;			/* what wd_attr_current() would say */
	WdPeer	   *peer;			/* the one peer (wd_server.c's wd_peers) */
	bool		conmgr_reads;	/* the socket takes what is sent */
	int			break_at_send;	/* the socket breaks at this send, 0 never */
	int			sends;
	int			terminator_wakes;
	int			lock_mode;		/* 0, or LW_SHARED + 1 / LW_EXCLUSIVE + 1 */
	bool		verbose;		/* print the log (env FUZZ_VERBOSE) */
	/* what conmgr received, in order (drained from the peer's outbuf) */
	uint8		received[256 * 1024];
	size_t		received_len;
	bool		received_overflow;
} WdFake;

extern WdFake wd_fake;

extern void wd_fake_reset(void);

/* wd_server.c's wd_peer_flush: drain the peer's outbuf into received. */
extern void wd_fake_flush(WdPeer *peer);

/* Print how many runs reached each ereport of the code under test. */
extern void wd_fake_print_log_sites(void);

#endif							/* FUZZ_WD_STUBS_H */
