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
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/procsignal.h"
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

/*
 * The start of both background workers: the signal handlers they share,
 * signals unblocked, and the shared state checked.
 */
void
wd_worker_begin(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGUSR1, procsignal_sigusr1_handler);
	BackgroundWorkerUnblockSignals();

	if (wd_shared == NULL)
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("watchdog must be loaded via shared_preload_libraries")));
}
