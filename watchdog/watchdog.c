/*-------------------------------------------------------------------------
 *
 * watchdog.c
 *	  Module initialisation of the watchdog extension: GUCs, shared memory
 *	  hooks and the registration of the watchdog and terminator workers.
 *
 * The library does its work only when it is listed in
 * shared_preload_libraries.  Loaded any other way (CREATE EXTENSION loads
 * it to validate the C functions) it defines nothing and stays quiet; the
 * SQL functions then refuse with a clear error.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/watchdog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"

#include "watchdog.h"
#include "wd_shmem.h"

PG_MODULE_MAGIC;

/* GUC variables */
int			wd_port = 27545;
int			wd_check_attr_interval = 1000;
int			wd_max_heartbeat_connections = 100;
char	   *wd_listen_addresses = NULL;
int			wd_timeout_margin = 1000;
int			wd_hello_timeout = 5000;
int			wd_max_heartbeat_timeout = 300000;
int			wd_max_heartbeat_connections_per_address = 16;
int			wd_termination_mode = WD_TERMINATE_ADDRESS;
bool		wd_terminate_replication = false;
int			wd_terminator_delay = 0;
char	   *wd_secret_file = NULL;
bool		wd_insecure_no_authentication = false;

static const struct config_enum_entry wd_termination_mode_options[] = {
	{"address", WD_TERMINATE_ADDRESS, false},
	{"precise", WD_TERMINATE_PRECISE, false},
	{NULL, 0, false}
};

void		_PG_init(void);

static void wd_define_gucs(void);
static void wd_register_worker(const char *name, const char *type,
							   const char *function);

/*
 * _PG_init: define the GUCs, install the shared memory hooks and register
 * both workers, when loaded through shared_preload_libraries.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	wd_define_gucs();
	wd_shmem_install_hooks();

	wd_register_worker("watchdog", "watchdog", "WatchdogMain");
	wd_register_worker("watchdog terminator", "watchdog terminator",
					   "TerminatorMain");
}

static void
wd_define_gucs(void)
{
	DefineCustomIntVariable("watchdog.port",
							"TCP port on which the watchdog accepts heartbeat connections from conmgr.",
							NULL,
							&wd_port,
							27545, 1, 65535,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("watchdog.listen_addresses",
							   "Addresses on which the watchdog listens; empty means the same as listen_addresses.",
							   "A comma-separated list of host names or numeric IP addresses; \"*\" means all.",
							   &wd_listen_addresses,
							   "",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("watchdog.check_attr_interval",
							"Interval between checks of the instance's attributes (standby, read-only).",
							"A change is pushed to every conmgr at once.",
							&wd_check_attr_interval,
							1000, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * The default follows max_connections, which the postmaster has already
	 * read when it loads shared_preload_libraries.
	 */
	DefineCustomIntVariable("watchdog.max_heartbeat_connections",
							"Maximum number of conmgr processes holding a heartbeat connection.",
							"Defaults to max_connections; shared memory for this many peers is reserved at server start.",
							&wd_max_heartbeat_connections,
							MaxConnections, 1, INT_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("watchdog.timeout_margin",
							"Time added to a conmgr's heartbeat interval and timeout before the watchdog declares it lost.",
							"A conmgr is lost after heartbeat_interval + heartbeat_timeout + this margin without a heartbeat; applies to conmgr processes that connect after a change.",
							&wd_timeout_margin,
							1000, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("watchdog.hello_timeout",
							"Time a new heartbeat connection has to send its hello.",
							NULL,
							&wd_hello_timeout,
							5000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("watchdog.max_heartbeat_connections_per_address",
							"Most conmgr connections from one address.",
							"A client host runs one conmgr per replication cluster; raise it for many client hosts behind one NAT address.",
							&wd_max_heartbeat_connections_per_address,
							16, 1, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("watchdog.max_heartbeat_timeout",
							"Longest heartbeat timeout a conmgr may announce.",
							"A conmgr announcing a longer one (or an interval not below it) is refused: it would hold a slot, and keep its host's sessions from being ended, for that long after it vanished.",
							&wd_max_heartbeat_timeout,
							300000, 11, CM_PROTO_MAX_HEARTBEAT_TIMEOUT_MS,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("watchdog.termination_mode",
							 "Which sessions the terminator ends when a conmgr is lost.",
							 "\"address\": every TCP session from the conmgr's address; \"precise\": only the sessions registered through that conmgr.",
							 &wd_termination_mode,
							 WD_TERMINATE_ADDRESS,
							 wd_termination_mode_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("watchdog.terminate_replication",
							 "Whether the terminator also ends replication (walsender) connections from a lost conmgr's address.",
							 NULL,
							 &wd_terminate_replication,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("watchdog.terminator_delay",
							"Waits this long after the terminator takes a lost conmgr, before it ends the sessions.",
							"A developer option, for tests that need the moment between a loss and its termination; 0 (the default) in production.",
							&wd_terminator_delay,
							0, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("watchdog.secret_file",
							   "Files holding the secrets every conmgr must prove it knows one of.",
							   "A comma-separated list of at most 4 files (two while a secret is replaced); a relative path is relative to the data directory.  Empty: every conmgr is refused, unless watchdog.insecure_no_authentication is on.",
							   &wd_secret_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   wd_check_secret_file, NULL, NULL);

	DefineCustomBoolVariable("watchdog.insecure_no_authentication",
							 "Accepts conmgr processes that prove no secret: anything that reaches watchdog.port can then make the terminator end sessions.",
							 "For a lab only.  Without it, a server with no watchdog.secret_file refuses every conmgr.",
							 &wd_insecure_no_authentication,
							 false,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("watchdog");
}

/*
 * Register one of our workers.  Both start with the postmaster, so that the
 * watchdog also serves during crash recovery and on a standby (hot or not),
 * and both need shared memory but no database connection.
 */
static void
wd_register_worker(const char *name, const char *type, const char *function)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_PostmasterStart;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "watchdog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", type);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}
