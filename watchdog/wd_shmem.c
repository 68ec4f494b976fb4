/*-------------------------------------------------------------------------
 *
 * wd_shmem.c
 *	  Shared memory of the watchdog extension: sizing, initialisation and
 *	  the small helpers that operate on it.  See wd_shmem.h for the locking
 *	  rules.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "watchdog.h"
#include "wd_shmem.h"

WatchdogSharedState *wd_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
wd_registrations_offset(void)
{
	return MAXALIGN(add_size(offsetof(WatchdogSharedState, slots),
							 mul_size(wd_max_heartbeat_connections,
									  sizeof(WatchdogPeerSlot))));
}

static Size
wd_shmem_size(void)
{
	return add_size(wd_registrations_offset(),
					mul_size(MaxBackends, sizeof(WatchdogRegistration)));
}

static void
wd_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(wd_shmem_size());
	RequestNamedLWLockTranche("watchdog", 1);
}

static void
wd_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wd_shared = ShmemInitStruct("watchdog", wd_shmem_size(), &found);
	if (!found)
	{
		memset(wd_shared, 0, wd_shmem_size());
		wd_shared->lock = &(GetNamedLWLockTranche("watchdog"))->lock;
		wd_shared->max_slots = wd_max_heartbeat_connections;
		wd_shared->max_registrations = MaxBackends;
		wd_shared->registrations_offset = wd_registrations_offset();
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Chain our hooks; called from _PG_init. */
void
wd_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wd_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wd_shmem_startup;
}

const char *
wd_slot_state_name(uint8 state)
{
	switch ((WatchdogSlotState) state)
	{
		case WD_SLOT_FREE:
			return "free";
		case WD_SLOT_ACTIVE:
			return "active";
		case WD_SLOT_LOST:
			return "lost";
		case WD_SLOT_TERMINATING:
			return "terminating";
		case WD_SLOT_TERMINATED:
			return "terminated";
		case WD_SLOT_RECONNECTING:
			return "reconnecting";
	}
	return "unknown";
}

/*
 * Forget every registration of (slot, generation).  Caller holds the lock
 * exclusively.  Returns how many were dropped.
 */
int
wd_registrations_drop_slot(int slot, uint32 generation)
{
	WatchdogRegistration *regs = WD_REGISTRATIONS(wd_shared);
	int			n = 0;

	for (int i = 0; i < wd_shared->max_registrations; i++)
	{
		if (regs[i].pid != 0 && regs[i].slot == slot &&
			regs[i].generation == generation)
		{
			memset(&regs[i], 0, sizeof(regs[i]));
			n++;
		}
	}
	return n;
}

/*
 * Declare a peer lost: its slot (ACTIVE, or RECONNECTING after a watchdog
 * restart) becomes LOST, with the reason and the moment of the loss.  Caller
 * holds the lock exclusively, and wakes the terminator after releasing it.
 *
 * lost_at separates the lost host's sessions from later ones: the
 * terminator ends only sessions whose backend started at or before it.  It
 * is the moment the loss is declared, not the last heartbeat: a host may
 * open sessions between its last heartbeat and its disappearance, and those
 * hold its locks as much as older ones do.  A session that starts after the
 * declaration cannot be one that the lost conmgr's host left behind; it is
 * a new connection (an application that was told and reconnected, the host
 * back after a network blip) and must survive.  Both this time and the
 * backend start time (PgBackendStatus.st_proc_start_timestamp, set when the
 * postmaster's child starts, just after accepting the connection) come
 * from GetCurrentTimestamp(), the same clock.
 */
void
wd_slot_mark_lost(WatchdogPeerSlot *slot, uint8 reason)
{
	Assert(slot->state == WD_SLOT_ACTIVE ||
		   slot->state == WD_SLOT_RECONNECTING);
	slot->state = WD_SLOT_LOST;
	slot->lost_reason = reason;
	slot->lost_at = GetCurrentTimestamp();
}

/*
 * The terminator is done with a lost peer: its slot, if it is still
 * TERMINATING in that generation, becomes TERMINATED with the count of
 * sessions ended, and only now are the peer's registrations dropped (see
 * wd_shmem.h).  Caller holds the lock exclusively.  Returns false when the
 * slot was not in that state.
 */
bool
wd_slot_mark_terminated(int slot, uint32 generation, uint64 sessions_terminated)
{
	WatchdogPeerSlot *s = &wd_shared->slots[slot];

	if (s->generation != generation || s->state != WD_SLOT_TERMINATING)
		return false;
	s->sessions_terminated += sessions_terminated;
	s->terminated_at = GetCurrentTimestamp();
	s->state = WD_SLOT_TERMINATED;
	wd_registrations_drop_slot(slot, generation);
	return true;
}

/*
 * Set the terminator's latch.  The latch pointer is read under the lock;
 * SetLatch is safe on a latch whose owner has just gone (it is a PGPROC
 * latch, which stays valid shared memory).
 */
void
wd_wake_terminator(void)
{
	Latch	   *latch;

	LWLockAcquire(wd_shared->lock, LW_SHARED);
	latch = wd_shared->terminator_latch;
	LWLockRelease(wd_shared->lock);

	if (latch != NULL)
		SetLatch(latch);
}
