/*-------------------------------------------------------------------------
 *
 * wd_slots.c
 *	  The one writer of a peer slot's state and of the registration table.
 *
 * Every change of a slot's state is one function here, which checks the
 * state it starts from (an assertion, and the state machine of
 * wd_shmem.h):
 *
 *	FREE or TERMINATED -> ACTIVE	wd_slot_claim (a welcomed conmgr)
 *	ACTIVE -> FREE				wd_slot_release (goodbye, shutdown, gave up)
 *	RECONNECTING -> FREE		wd_slot_release (its conmgr came back)
 *	ACTIVE -> RECONNECTING		wd_slot_wait_reconnect (watchdog restart,
 *								failed integrity check)
 *	ACTIVE or RECONNECTING -> LOST	wd_slot_mark_lost
 *	LOST -> TERMINATING			wd_slot_take (by the terminator)
 *	TERMINATING -> LOST			wd_slot_retake (a new terminator process)
 *	TERMINATING -> TERMINATED	wd_slot_mark_terminated
 *
 * Registrations (precise mode) are added and removed here too.  Callers
 * hold the watchdog's lock exclusively, as wd_shmem.h says.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_slots.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "watchdog.h"
#include "wd_shmem.h"

/*
 * Claim a FREE slot, or a TERMINATED one kept only for the view, for a
 * welcomed conmgr: cleared, a new generation, ACTIVE.  The caller fills in
 * the peer's details.  Returns the new generation.
 */
uint32
wd_slot_claim(WatchdogPeerSlot *slot)
{
	uint32		generation = slot->generation + 1;

	Assert(slot->state == WD_SLOT_FREE || slot->state == WD_SLOT_TERMINATED);
	memset(slot, 0, sizeof(*slot));
	slot->generation = generation;
	slot->state = WD_SLOT_ACTIVE;
	return generation;
}

/*
 * Free a slot and forget its registrations, without terminating anything:
 * an ACTIVE slot whose conmgr left cleanly, or a RECONNECTING one whose
 * conmgr came back.
 */
void
wd_slot_release(int slotno)
{
	WatchdogPeerSlot *slot = &wd_shared->slots[slotno];

	Assert(slot->state == WD_SLOT_ACTIVE || slot->state == WD_SLOT_RECONNECTING);
	wd_registrations_drop_slot(slotno, slot->generation);
	slot->state = WD_SLOT_FREE;
}

/*
 * An ACTIVE slot waits for its conmgr to reconnect until the deadline
 * (monotonic ms), registrations kept: the watchdog process is restarting,
 * or the connection failed its integrity check.
 */
void
wd_slot_wait_reconnect(WatchdogPeerSlot *slot, int64 deadline)
{
	Assert(slot->state == WD_SLOT_ACTIVE);
	slot->state = WD_SLOT_RECONNECTING;
	slot->reconnect_deadline = deadline;
}

/* The terminator takes a LOST slot: TERMINATING keeps it from reuse. */
void
wd_slot_take(WatchdogPeerSlot *slot)
{
	Assert(slot->state == WD_SLOT_LOST);
	slot->state = WD_SLOT_TERMINATING;
}

/* A terminator process that starts takes up its predecessor's work again. */
void
wd_slot_retake(WatchdogPeerSlot *slot)
{
	Assert(slot->state == WD_SLOT_TERMINATING);
	slot->state = WD_SLOT_LOST;
}

/*
 * Register a session of (slotno, generation) for precise termination:
 * the entry of that PID if there is one, else a free one; when the table
 * is full, entries of sessions that have ended are dropped first.  Looking
 * a PID up takes ProcArrayLock and walks the process array, so that is
 * done for a copy of the PIDs with the watchdog's lock released for a
 * moment.
 *
 * The entry of that PID already belongs to another conmgr whose slot still
 * stands (not yet terminated) when its port is the same: the same session,
 * which another conmgr of the same address cannot take over (it would take
 * the session out of the first conmgr's termination).  A different port
 * means the PID was reused by a new session, and the old entry is stale.
 */
WdRegistrationResult
wd_registration_add(int pid, int slotno, uint32 generation, uint16 port)
{
	WatchdogRegistration *regs = WD_REGISTRATIONS(wd_shared);
	int			n = wd_shared->max_registrations;
	int			entry = -1;

	for (int i = 0; i < n; i++)
	{
		if (regs[i].pid == pid)
		{
			WatchdogPeerSlot *owner = &wd_shared->slots[regs[i].slot];

			if (regs[i].port == port &&
				(regs[i].slot != slotno || regs[i].generation != generation) &&
				owner->generation == regs[i].generation &&
				owner->state != WD_SLOT_FREE && owner->state != WD_SLOT_TERMINATED)
				return WD_REGISTRATION_TAKEN;
			entry = i;
			break;
		}
		if (regs[i].pid == 0 && entry < 0)
			entry = i;
	}
	if (entry < 0)
	{
		static int32 *pids = NULL;

		if (pids == NULL)
		{
			LWLockRelease(wd_shared->lock);
			pids = MemoryContextAlloc(TopMemoryContext, sizeof(int32) * n);
			LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		}
		for (int i = 0; i < n; i++)
			pids[i] = regs[i].pid;
		LWLockRelease(wd_shared->lock);
		for (int i = 0; i < n; i++)
			if (pids[i] != 0 && BackendPidGetProc(pids[i]) != NULL)
				pids[i] = 0;	/* alive: keep */
		LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < n && entry < 0; i++)
		{
			if (regs[i].pid == pid || regs[i].pid == 0)
				entry = i;
			else if (pids[i] != 0 && regs[i].pid == pids[i])
			{
				memset(&regs[i], 0, sizeof(regs[i]));
				entry = i;
			}
		}
	}
	if (entry < 0)
		return WD_REGISTRATION_FULL;
	regs[entry].pid = pid;
	regs[entry].slot = slotno;
	regs[entry].generation = generation;
	regs[entry].port = port;
	return WD_REGISTRATION_ADDED;
}

/*
 * Forget the registration of a session: PID, client port and peer must all
 * match (the address is the peer's, checked at registration).  Returns
 * whether there was one.
 */
bool
wd_registration_remove(int pid, uint16 port, int slotno, uint32 generation)
{
	WatchdogRegistration *regs = WD_REGISTRATIONS(wd_shared);

	for (int i = 0; i < wd_shared->max_registrations; i++)
	{
		if (regs[i].pid != 0 && regs[i].pid == pid && regs[i].port == port &&
			regs[i].slot == slotno && regs[i].generation == generation)
		{
			memset(&regs[i], 0, sizeof(regs[i]));
			return true;
		}
	}
	return false;
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

