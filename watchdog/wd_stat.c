/*-------------------------------------------------------------------------
 *
 * wd_stat.c
 *	  pgx_stat_watchdog(): one row per conmgr peer known to the watchdog.
 *
 * The extension grants the view and this function to pg_monitor only
 * (version 1.1).  Addresses, ports and names of peers are shown only to roles
 * that may see the client addresses in pg_stat_activity (members of
 * pg_read_all_stats, which includes pg_monitor, and superusers); a role that
 * an administrator granted the view otherwise sees NULL there.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_stat.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inet.h"

#include "watchdog.h"
#include "wd_shmem.h"

/* columns of the view: version 1.0 and 1.1; from 1.2, heartbeat_path too */
#define PGX_STAT_WATCHDOG_COLS_1_0	15
#define PGX_STAT_WATCHDOG_COLS		16

PG_FUNCTION_INFO_V1(pgx_stat_watchdog_1_0);
PG_FUNCTION_INFO_V1(pgx_stat_watchdog_1_2);

/* Build an inet datum from an address. */
static Datum
wd_addr_to_inet(const CmProtoAddr *addr)
{
	inet	   *ip = (inet *) palloc0(sizeof(inet));

	if (addr->family == 4)
	{
		ip_family(ip) = PGSQL_AF_INET;
		ip_bits(ip) = 32;
		memcpy(ip_addr(ip), addr->addr, 4);
	}
	else
	{
		ip_family(ip) = PGSQL_AF_INET6;
		ip_bits(ip) = 128;
		memcpy(ip_addr(ip), addr->addr, 16);
	}
	SET_INET_VARSIZE(ip);
	return InetPGetDatum(ip);
}

/*
 * Count, per slot, the registered sessions whose backend is still there.
 * Works on copies taken under the lock: BackendPidGetProc() takes
 * ProcArrayLock and walks the process array, once per registration, which
 * must not happen while the watchdog waits for its own lock to answer a
 * heartbeat.
 */
static void
wd_count_live_registrations(const WatchdogRegistration *regs, int nregs,
							const WatchdogPeerSlot *slots, int nslots,
							int *registered)
{
	for (int i = 0; i < nregs; i++)
	{
		const WatchdogRegistration *reg = &regs[i];

		if (reg->pid == 0 || reg->slot < 0 || reg->slot >= nslots ||
			reg->generation != slots[reg->slot].generation)
			continue;
		if (BackendPidGetProc(reg->pid) != NULL)
			registered[reg->slot]++;
	}
}

/*
 * pgx_stat_watchdog_1_0 and _1_2: the set-returning function behind the
 * view, as the extension's versions 1.0 and 1.1, and 1.2 define it (1.2
 * adds heartbeat_path); an installation not yet updated calls the first.
 *
 * Any role granted the view can call this in a loop, and the watchdog takes
 * the same lock exclusively for every heartbeat it answers: the shared lock
 * is held only for two memcpy()s into memory allocated beforehand (the slots
 * and the registration table, both of a size fixed at server start).
 * Everything else (backend lookups, formatting, the tuplestore) happens
 * after it is released.
 */
static Datum
pgx_stat_watchdog_rows(FunctionCallInfo fcinfo, int ncols)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		show_addresses;
	WatchdogPeerSlot *copy;
	WatchdogRegistration *regs;
	int		   *registered;
	int			nslots;
	int			nregs;
	bool		draining;
	TimestampTz now = GetCurrentTimestamp();

	if (wd_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("watchdog must be loaded via shared_preload_libraries")));

	InitMaterializedSRF(fcinfo, 0);

	show_addresses = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	/* both sizes are fixed at server start */
	nslots = wd_shared->max_slots;
	nregs = wd_shared->max_registrations;
	copy = palloc(sizeof(WatchdogPeerSlot) * nslots);
	regs = palloc(sizeof(WatchdogRegistration) * nregs);
	registered = palloc0(sizeof(int) * nslots);

	LWLockAcquire(wd_shared->lock, LW_SHARED);
	memcpy(copy, wd_shared->slots, sizeof(WatchdogPeerSlot) * nslots);
	memcpy(regs, WD_REGISTRATIONS(wd_shared),
		   sizeof(WatchdogRegistration) * nregs);
	draining = wd_shared->server_draining;
	LWLockRelease(wd_shared->lock);

	wd_count_live_registrations(regs, nregs, copy, nslots, registered);
	pfree(regs);

	for (int i = 0; i < nslots; i++)
	{
		WatchdogPeerSlot *slot = &copy[i];
		Datum		values[PGX_STAT_WATCHDOG_COLS];
		bool		nulls[PGX_STAT_WATCHDOG_COLS];
		char		version[16];
		int			col = 0;

		if (slot->state == WD_SLOT_FREE)
			continue;
		/* a lost conmgr's row stays for a while, then only its slot */
		if (slot->state == WD_SLOT_TERMINATED &&
			TimestampDifferenceExceeds(slot->terminated_at, now,
									   WD_TERMINATED_RETENTION_MS))
			continue;

		memset(nulls, 0, sizeof(nulls));
		slot->name[WD_NAME_LEN - 1] = '\0';

		if (show_addresses)
		{
			values[col++] = wd_addr_to_inet(&slot->addr);
			values[col++] = Int32GetDatum((int32) slot->addr.port);
		}
		else
		{
			nulls[col++] = true;
			nulls[col++] = true;
		}
		values[col++] = Int32GetDatum((int32) Min(slot->heartbeat_interval, PG_INT32_MAX));
		values[col++] = Int32GetDatum((int32) Min(slot->heartbeat_timeout, PG_INT32_MAX));
		values[col++] = Int32GetDatum((int32) Min(slot->server_timeout, PG_INT32_MAX));
		if (show_addresses)
			values[col++] = CStringGetTextDatum(slot->name);
		else
			nulls[col++] = true;
		snprintf(version, sizeof(version), "%u.%u",
				 CM_PROTO_VERSION_MAJOR(slot->version),
				 CM_PROTO_VERSION_MINOR(slot->version));
		values[col++] = CStringGetTextDatum(version);
		values[col++] = BoolGetDatum(slot->authenticated);
		/* an active conmgr that was told the server is shutting down */
		if (draining && slot->state == WD_SLOT_ACTIVE &&
			slot->version >= CM_PROTO_VERSION_1_1)
			values[col++] = CStringGetTextDatum("draining");
		else
			values[col++] = CStringGetTextDatum(wd_slot_state_name(slot->state));
		values[col++] = TimestampTzGetDatum(slot->connected_since);
		values[col++] = TimestampTzGetDatum(slot->last_heartbeat);
		values[col++] = Int64GetDatum((int64) slot->heartbeats);
		if (slot->rtt_us > 0)
			values[col++] = Float8GetDatum(slot->rtt_us / 1000.0);
		else
			nulls[col++] = true;
		values[col++] = Int32GetDatum(registered[i]);
		values[col++] = Int64GetDatum((int64) slot->sessions_terminated);
		if (ncols > PGX_STAT_WATCHDOG_COLS_1_0)
			values[col++] = CStringGetTextDatum(slot->path == WD_PATH_DATAGRAM ?
												"datagram" : "tcp");
		Assert(col == ncols);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

Datum
pgx_stat_watchdog_1_0(PG_FUNCTION_ARGS)
{
	return pgx_stat_watchdog_rows(fcinfo, PGX_STAT_WATCHDOG_COLS_1_0);
}

Datum
pgx_stat_watchdog_1_2(PG_FUNCTION_ARGS)
{
	return pgx_stat_watchdog_rows(fcinfo, PGX_STAT_WATCHDOG_COLS);
}
