/*-------------------------------------------------------------------------
 *
 * wd_shmem.h
 *	  Shared state of the watchdog extension: one slot per allowed conmgr
 *	  peer, the table of sessions registered for precise termination, and
 *	  the terminator's latch.
 *
 * Who writes what: watchdog/wd_slots.c is the only writer of a slot's
 * state and of the registration table, one function per transition, each
 * checking the state it starts from.
 *
 * Locking rules.  Everything below is protected by the single LWLock
 * WatchdogSharedState->lock (tranche "watchdog"):
 *
 *	- WatchdogSharedState header: watchdog_pid is written by the watchdog
 *	  worker, terminator_pid and terminator_latch by the terminator worker,
 *	  each under the exclusive lock; anyone reads under the shared lock.
 *	- A slot in state WD_SLOT_FREE is claimed (-> ACTIVE) only by the
 *	  watchdog worker.  An ACTIVE slot is updated only by the watchdog.  The
 *	  watchdog moves a slot ACTIVE -> FREE (goodbye, shutdown) or ACTIVE (or
 *	  RECONNECTING) -> LOST (peer lost: wd_slot_mark_lost, which records
 *	  when) and then sets the terminator's latch.  Only the terminator
 *	  moves a slot LOST -> TERMINATING -> TERMINATED (the last step with
 *	  wd_slot_mark_terminated); a terminator process that starts puts a
 *	  TERMINATING slot back to LOST.  A TERMINATED slot keeps what the
 *	  terminator did visible in pgx_stat_watchdog for
 *	  WD_TERMINATED_RETENTION_MS.
 *	- Reuse (wd_peer_accept): a welcomed peer claims a FREE slot if there
 *	  is one (never used, or released by a goodbye, a server shutdown or a
 *	  conmgr that came back after a watchdog restart), else the TERMINATED
 *	  slot that finished first; never a slot in another state.  A
 *	  connection that is refused or sends no hello holds no slot, and one
 *	  that leaves with a goodbye leaves a FREE slot, so neither can push
 *	  the record of a real loss out of the view while a FREE slot exists.
 *	  The generation number grows each time a slot is claimed, so that a
 *	  registration or a request never applies to a later peer that reuses
 *	  the slot.
 *	- Registrations are written by the watchdog (register, unregister,
 *	  release of a slot).  Those of a lost peer stay until its slot is
 *	  TERMINATED: the terminator copies them when it takes the slot and
 *	  wd_slot_mark_terminated drops them, so that a terminator that fails
 *	  or is restarted in between finds them again.
 *	- pgx_stat_watchdog() only reads: under the shared lock it copies the
 *	  slots and the registration table into memory allocated beforehand,
 *	  and does nothing else there (no backend lookup, no allocation, no
 *	  ereport), since any role granted the view may call it in a loop
 *	  while the watchdog needs the lock exclusively for every heartbeat.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WATCHDOG_WD_SHMEM_H
#define WATCHDOG_WD_SHMEM_H

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "cm_protocol.h"

/* State of a peer slot. */
typedef enum WatchdogSlotState
{
	WD_SLOT_FREE = 0,
	WD_SLOT_ACTIVE,				/* heartbeat connection established */
	WD_SLOT_LOST,				/* lost; waiting for the terminator */
	WD_SLOT_TERMINATING,		/* the terminator is ending its sessions */
	WD_SLOT_TERMINATED,			/* done; shown for a while, reusable */
	WD_SLOT_RECONNECTING		/* held by an earlier watchdog process: its
								 * conmgr must reconnect by reconnect_deadline */
} WatchdogSlotState;

/* How long the row of a lost conmgr stays in pgx_stat_watchdog. */
#define WD_TERMINATED_RETENTION_MS	(10 * 60 * 1000)

#define WD_NAME_LEN			64	/* conmgr's announced name, truncated */

/*
 * One conmgr peer.  168 bytes on 64-bit platforms; the watchdog reserves
 * watchdog.max_heartbeat_connections of them at server start.
 */
/* The way a heartbeat came (protocol 1.2: datagrams beside the connection) */
typedef enum WdPath
{
	WD_PATH_TCP = 0,
	WD_PATH_DATAGRAM,
	WD_NPATHS
} WdPath;

typedef struct WatchdogPeerSlot
{
	uint8		state;			/* WatchdogSlotState */
	uint8		lost_reason;	/* CmProtoReason, when LOST/TERMINATING */
	uint16		version;		/* protocol version spoken */
	uint32		generation;		/* bumped at every claim */
	CmProtoAddr addr;			/* peer address, IPv4-mapped shown as IPv4 */
	uint32		heartbeat_interval; /* ms, announced by conmgr */
	uint32		heartbeat_timeout;	/* ms, announced by conmgr */
	uint32		server_timeout; /* ms, announced by us in the welcome */
	uint32		rtt_us;			/* kernel's smoothed TCP round trip, us */
	bool		authenticated;	/* proved it holds the shared secret */
	uint8		path;			/* WdPath of the last heartbeat */
	uint64		heartbeats;		/* heartbeats answered */
	uint64		sessions_terminated;	/* by the terminator for this peer */
	TimestampTz connected_since;
	TimestampTz last_heartbeat;
	TimestampTz lost_at;		/* when the watchdog declared the peer lost
								 * (LOST and later): only sessions whose
								 * backend started by then are ended */
	TimestampTz terminated_at;	/* when the terminator finished (TERMINATED) */
	int64		reconnect_deadline; /* monotonic ms (RECONNECTING) */
	uint64		incarnation;	/* conmgr's random process id, 0 = none */
	char		name[WD_NAME_LEN];	/* NUL-terminated */
} WatchdogPeerSlot;

/*
 * A session registered by a conmgr for precise termination.  Free when
 * pid == 0.  One entry per backend at most (MaxBackends entries).
 */
typedef struct WatchdogRegistration
{
	int32		pid;			/* backend PID, 0 = free */
	int32		slot;			/* index of the peer slot */
	uint32		generation;		/* generation of that slot */
	uint16		port;			/* the session's client port */
} WatchdogRegistration;

typedef struct WatchdogSharedState
{
	LWLock	   *lock;
	int			max_slots;		/* watchdog.max_heartbeat_connections */
	int			max_registrations;	/* MaxBackends */
	pid_t		watchdog_pid;	/* 0 when not running */
	pid_t		terminator_pid; /* 0 when not running */
	Latch	   *terminator_latch;	/* NULL when not running */
	bool		server_draining;	/* the server is shutting down, the
									 * watchdog still runs (wd_server.c) */
	Size		registrations_offset;	/* from the start of this struct */
	WatchdogPeerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} WatchdogSharedState;

extern WatchdogSharedState *wd_shared;

#define WD_REGISTRATIONS(s) \
	((WatchdogRegistration *) ((char *) (s) + (s)->registrations_offset))

extern void wd_shmem_install_hooks(void);
extern void wd_worker_begin(void);
extern const char *wd_slot_state_name(uint8 state);

/* Called with the lock held exclusively. */
/* wd_slots.c: the only writer of slot states and registrations */
extern uint32 wd_slot_claim(WatchdogPeerSlot *slot);
extern void wd_slot_release(int slotno);
extern void wd_slot_wait_reconnect(WatchdogPeerSlot *slot, int64 deadline);
extern void wd_slot_take(WatchdogPeerSlot *slot);
extern void wd_slot_retake(WatchdogPeerSlot *slot);
typedef enum WdRegistrationResult
{
	WD_REGISTRATION_ADDED,
	WD_REGISTRATION_FULL,		/* no free entry, none stale */
	WD_REGISTRATION_TAKEN		/* registered by another conmgr */
} WdRegistrationResult;

extern WdRegistrationResult wd_registration_add(int pid, int slotno,
												uint32 generation, uint16 port);
extern bool wd_registration_remove(int pid, uint16 port, int slotno, uint32 generation);
extern int	wd_registrations_drop_slot(int slot, uint32 generation);
extern void wd_slot_mark_lost(WatchdogPeerSlot *slot, uint8 reason);
extern bool wd_slot_mark_terminated(int slot, uint32 generation,
									uint64 sessions_terminated);

/* Wake the terminator, if running; call without holding the lock. */
extern void wd_wake_terminator(void);

#endif							/* WATCHDOG_WD_SHMEM_H */
