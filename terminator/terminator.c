/*-------------------------------------------------------------------------
 *
 * terminator.c
 *	  The terminator worker: ends the SQL sessions of a lost conmgr's host.
 *
 * The watchdog marks a peer slot LOST and sets our latch; we take the slot
 * (LOST -> TERMINATING) with a copy of its registrations, match sessions,
 * terminate them, record the count and mark the slot TERMINATED, which
 * drops the registrations.  Until then they stay in shared memory: if we
 * fail or are restarted in between, the next terminator process puts the
 * slot back to LOST and finds them again.  No polling: we sleep on our
 * latch.
 *
 * Matching, watchdog.termination_mode:
 *	- address (the original's behaviour): every TCP session whose client
 *	  address is the peer's address;
 *	- precise: only the sessions the peer registered, and only while the
 *	  backend's client address and port are still the registered ones (a
 *	  PID reused by another session is left alone).
 * In both modes only sessions whose backend started at or before the moment
 * the watchdog declared the peer lost (the slot's lost_at, see
 * wd_slot_mark_lost) are ended: a connection opened after the loss, from
 * the same address, is not the lost host's and survives, however late the
 * terminator gets to the slot.
 * Unix-socket sessions are never touched.  Replication connections
 * (walsenders) are kept unless watchdog.terminate_replication is on.
 * Termination is PostgreSQL's own: SIGTERM to the backend, as
 * pg_terminate_backend() does; its transaction is rolled back and its locks
 * are released.  The sessions are chosen from a snapshot of the backend
 * status table, and each one is signalled only if, just before, its PID
 * still belongs to the backend chosen: same start time, type, client
 * address and port (term_signal_sessions explains why that holds).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  terminator/terminator.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/procsignal.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "watchdog.h"
#include "wd_shmem.h"

/* A lost peer taken from shared memory. */
typedef struct TermLostPeer
{
	int			slot;
	uint32		generation;
	uint8		reason;
	TimestampTz lost_at;		/* sessions started later are kept */
	CmProtoAddr addr;
	char		name[WD_NAME_LEN];
	int			nregs;
	WatchdogRegistration *regs;
} TermLostPeer;

/* What became of a session chosen for termination. */
typedef enum TermOutcome
{
	TERM_CHOSEN = 0,			/* not signalled (yet): ended meanwhile */
	TERM_SIGNALLED,
	TERM_FAILED					/* kill() failed: error */
} TermOutcome;

/*
 * A session chosen for termination, as the backend status table showed
 * it: what identifies that backend, whatever later holds its PID.
 */
typedef struct TermSession
{
	int			pid;
	BackendType type;
	TimestampTz started;		/* st_proc_start_timestamp */
	CmProtoAddr client;			/* client address and port */
	TermOutcome outcome;
	int			error;			/* errno, when TERM_FAILED */
} TermSession;

static void term_on_exit(int code, Datum arg);
static bool term_take_lost_peer(TermLostPeer *lost);
static bool term_delay(void);
static void term_handle_lost_peer(TermLostPeer *lost);

/*
 * TerminatorMain: entry point of the terminator background worker.
 */
void
TerminatorMain(Datum main_arg)
{
	MemoryContext cxt;

	wd_worker_begin();

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	wd_shared->terminator_pid = MyProcPid;
	wd_shared->terminator_latch = MyLatch;
	/* a slot a previous incarnation was working on: do it again */
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		if (wd_shared->slots[i].state == WD_SLOT_TERMINATING)
			wd_slot_retake(&wd_shared->slots[i]);
	}
	LWLockRelease(wd_shared->lock);
	before_shmem_exit(term_on_exit, (Datum) 0);

	cxt = AllocSetContextCreate(TopMemoryContext, "watchdog terminator",
								ALLOCSET_DEFAULT_SIZES);
	ereport(DEBUG1, (errmsg_internal("watchdog terminator started")));

	for (;;)
	{
		TermLostPeer lost;

		MemoryContextSwitchTo(cxt);
		MemoryContextReset(cxt);

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* work through every lost peer, then sleep */
		while (!ShutdownRequestPending && term_take_lost_peer(&lost))
		{
			term_handle_lost_peer(&lost);
			MemoryContextReset(cxt);
		}
		if (ShutdownRequestPending)
			break;				/* its latch may have been consumed */

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/* exit code 1: restarted unless the server is shutting down */
	proc_exit(1);
}

static void
term_on_exit(int code, Datum arg)
{
	LWLockReleaseAll();
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	wd_shared->terminator_pid = 0;
	wd_shared->terminator_latch = NULL;
	LWLockRelease(wd_shared->lock);
}

/*
 * Take one LOST slot, with a copy of its registrations, into *lost.  The
 * slot becomes TERMINATING, which keeps the watchdog from reusing it; the
 * registrations stay until the slot is TERMINATED.  Returns false when
 * there is none.
 */
static bool
term_take_lost_peer(TermLostPeer *lost)
{
	bool		found = false;
	WatchdogRegistration *copy;

	memset(lost, 0, sizeof(*lost));
	/* room for every registration, allocated before the lock is taken */
	copy = palloc(sizeof(WatchdogRegistration) * Max(1, wd_shared->max_registrations));
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];
		WatchdogRegistration *regs;

		if (slot->state != WD_SLOT_LOST)
			continue;

		wd_slot_take(slot);
		lost->slot = i;
		lost->generation = slot->generation;
		lost->reason = slot->lost_reason;
		/* marked LOST without its moment: take this one, once for all */
		if (slot->lost_at == 0)
			slot->lost_at = GetCurrentTimestamp();
		lost->lost_at = slot->lost_at;
		lost->addr = slot->addr;
		memcpy(lost->name, slot->name, sizeof(lost->name));
		lost->name[WD_NAME_LEN - 1] = '\0';

		regs = WD_REGISTRATIONS(wd_shared);
		lost->regs = copy;
		for (int r = 0; r < wd_shared->max_registrations; r++)
		{
			if (regs[r].pid != 0 && regs[r].slot == i &&
				regs[r].generation == slot->generation)
				lost->regs[lost->nregs++] = regs[r];
		}
		found = true;
		break;
	}
	LWLockRelease(wd_shared->lock);
	if (!found)
		pfree(copy);
	return found;
}

/*
 * Wait watchdog.terminator_delay ms (a developer option, 0 by default)
 * between taking a lost peer and ending its sessions, so that a test can
 * act in between: open a session, restart the terminator.  A reload that
 * shortens the delay takes effect at once.  Returns false when a shutdown
 * is requested meanwhile: the slot then stays TERMINATING, and the next
 * terminator process puts it back to LOST and handles it.
 */
static bool
term_delay(void)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		long		elapsed;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			return false;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		elapsed = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (elapsed >= wd_terminator_delay)
			return true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wd_terminator_delay - elapsed, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Choose the sessions of a lost peer from the backend status table: TCP
 * client sessions (and walsenders, unless kept) from the peer's address,
 * in precise mode only its registered ones, and only those whose backend
 * started by the moment of the loss.  Returns how many, in a palloc'd
 * array in *chosen; counts what was kept on purpose.
 */
static int
term_choose_sessions(TermLostPeer *lost, bool precise, TermSession **chosen,
					 int *nkept_repl, int *nkept_later)
{
	int			nbackends;
	int			n = 0;

	pgstat_clear_backend_activity_snapshot();
	nbackends = pgstat_fetch_stat_numbackends();
	*chosen = palloc0(sizeof(TermSession) * Max(1, nbackends));
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;
		CmProtoAddr addr;
		bool		registered = false;
		TermSession *s;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid <= 0 || be->st_procpid == MyProcPid)
			continue;
		/* only client sessions; never Unix-socket ones */
		if (be->st_backendType != B_BACKEND &&
			be->st_backendType != B_WAL_SENDER)
			continue;
		if (!cm_net_addr_from_sockaddr((struct sockaddr *) &be->st_clientaddr.addr,
										&addr))
			continue;
		if (!cm_proto_addr_equal(&addr, &lost->addr))
			continue;

		if (precise)
		{
			for (int r = 0; r < lost->nregs; r++)
			{
				if (lost->regs[r].pid == be->st_procpid &&
					lost->regs[r].port == addr.port)
				{
					registered = true;
					break;
				}
			}
			if (!registered)
				continue;
		}

		/* opened after the loss: not the lost host's session */
		if (be->st_proc_start_timestamp > lost->lost_at)
		{
			(*nkept_later)++;
			continue;
		}

		if (be->st_backendType == B_WAL_SENDER && !wd_terminate_replication)
		{
			(*nkept_repl)++;
			continue;
		}

		s = &(*chosen)[n++];
		s->pid = be->st_procpid;
		s->type = be->st_backendType;
		s->started = be->st_proc_start_timestamp;
		s->client = addr;
	}
	pgstat_clear_backend_activity_snapshot();
	return n;
}

static int
term_session_cmp(const void *a, const void *b)
{
	int			pa = ((const TermSession *) a)->pid;
	int			pb = ((const TermSession *) b)->pid;

	return (pa > pb) - (pa < pb);
}

/*
 * Send SIGTERM, the way pg_terminate_backend() does, to each chosen session
 * that is still the backend we chose.  Sets each one's outcome; sorts
 * the array by PID.
 *
 * Between term_choose_sessions() and the signal, a chosen backend may
 * exit and the kernel may give its PID to a new process, even to a new
 * session from the same host, which must survive.  So we read the status
 * table again and send the signals while holding ProcArrayLock in shared
 * mode.  An exiting backend clears its status entry (pgstat_beshutdown_hook)
 * before it leaves the proc array (RemoveProcFromArray, which needs
 * ProcArrayLock exclusively), and its PID can only be reused after it has
 * left the proc array and exited.  Hence, while we hold the lock, a PID
 * that BackendPidGetProcWithLock() finds stays with that live backend, and
 * a status entry with that PID read after we took the lock is that
 * backend's own.  A chosen session is signalled only when that entry still
 * shows the same start time, backend type, client address and client
 * port: otherwise the backend we chose has ended, and whatever now holds
 * its PID is left alone.  (A backend that crashes leaves its entry and its
 * PGPROC behind, but then the postmaster starts no new backend and stops
 * every process, this one included; pg_terminate_backend() shares that
 * short window.)
 *
 * Reading the status table takes SInvalWriteLock in shared mode
 * (BackendIdGetTransactionIds); no PostgreSQL 15 code takes ProcArrayLock
 * while holding SInvalWriteLock, so this order cannot deadlock.  The lock
 * is held for one copy of the status table and a kill() per session.
 */
static void
term_signal_sessions(TermSession *chosen, int nchosen)
{
	int			nbackends;

	if (nchosen == 0)
		return;
	qsort(chosen, nchosen, sizeof(TermSession), term_session_cmp);

	LWLockAcquire(ProcArrayLock, LW_SHARED);
	pgstat_clear_backend_activity_snapshot();
	nbackends = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;
		TermSession key;
		TermSession *s;
		CmProtoAddr client;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		key.pid = be->st_procpid;
		s = bsearch(&key, chosen, nchosen, sizeof(TermSession),
					term_session_cmp);
		if (s == NULL || s->outcome != TERM_CHOSEN)
			continue;

		/* the backend we chose, or a later one with its PID? */
		if (be->st_proc_start_timestamp != s->started ||
			be->st_backendType != s->type ||
			!cm_net_addr_from_sockaddr((struct sockaddr *) &be->st_clientaddr.addr,
									   &client) ||
			!cm_proto_addr_equal(&client, &s->client) ||
			client.port != s->client.port)
			continue;
		if (BackendPidGetProcWithLock(s->pid) == NULL)
			continue;			/* leaving */

#ifdef HAVE_SETSID
		if (kill(-s->pid, SIGTERM) == 0)
		{
			s->outcome = TERM_SIGNALLED;
			continue;
		}
#endif
		if (kill(s->pid, SIGTERM) == 0)
			s->outcome = TERM_SIGNALLED;
		else
		{
			s->outcome = TERM_FAILED;
			s->error = errno;
		}
	}
	LWLockRelease(ProcArrayLock);
	pgstat_clear_backend_activity_snapshot();
}

/*
 * Terminate the sessions of one lost peer, log the result, record the
 * count and mark the slot TERMINATED.  A shutdown requested during
 * watchdog.terminator_delay leaves the slot TERMINATING (see term_delay).
 */
static void
term_handle_lost_peer(TermLostPeer *lost)
{
	StringInfoData pids;
	StringInfoData kept;
	char		host[INET6_ADDRSTRLEN];
	TermSession *chosen;
	int			nchosen;
	int			nterminated = 0;
	int			ngone = 0;
	int			nkept_repl = 0;
	int			nkept_later = 0;
	bool		precise;

	if (!term_delay())
		return;
	precise = (wd_termination_mode == WD_TERMINATE_PRECISE);
	wd_addr_host_string(&lost->addr, host, sizeof(host));

	nchosen = term_choose_sessions(lost, precise, &chosen,
								   &nkept_repl, &nkept_later);
	term_signal_sessions(chosen, nchosen);

	initStringInfo(&pids);
	for (int i = 0; i < nchosen; i++)
	{
		switch (chosen[i].outcome)
		{
			case TERM_SIGNALLED:
				appendStringInfo(&pids, "%s%d", nterminated > 0 ? ", " : "",
								 chosen[i].pid);
				nterminated++;
				break;
			case TERM_FAILED:
				errno = chosen[i].error;
				ereport(WARNING,
						(errmsg("watchdog terminator could not send signal to process %d: %m",
								chosen[i].pid)));
				break;
			case TERM_CHOSEN:
				ngone++;		/* ended before the signal */
				break;
		}
	}

	/* what was left alone, for the detail line */
	initStringInfo(&kept);
	if (nkept_repl > 0)
		appendStringInfoString(&kept, ", replication connections kept");
	if (nkept_later > 0)
		appendStringInfo(&kept, ", %d session(s) opened after the loss kept",
						 nkept_later);
	if (ngone > 0)
		appendStringInfo(&kept, ", %d session(s) ended before the signal",
						 ngone);

	if (nterminated > 0)
		ereport(LOG,
				(errmsg("watchdog terminated %d session(s) from %s: conmgr \"%s\" was lost (%s)",
						nterminated, host, lost->name,
						cm_proto_reason_name(lost->reason)),
				 errdetail("Terminated backend PIDs: %s; mode %s%s.",
						   pids.data, precise ? "precise" : "address",
						   kept.data)));
	else
		ereport(LOG,
				(errmsg("watchdog found no session to terminate from %s after conmgr \"%s\" was lost (%s)",
						host, lost->name, cm_proto_reason_name(lost->reason)),
				 errdetail("Mode %s%s.", precise ? "precise" : "address",
						   kept.data)));

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	(void) wd_slot_mark_terminated(lost->slot, lost->generation, nterminated);
	LWLockRelease(wd_shared->lock);
}
