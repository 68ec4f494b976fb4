/*-------------------------------------------------------------------------
 *
 * watchdog.h
 *	  Declarations shared by the watchdog worker, the terminator worker and
 *	  the SQL functions of the watchdog extension.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/watchdog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WATCHDOG_WATCHDOG_H
#define WATCHDOG_WATCHDOG_H

#include <sys/socket.h>

#include "utils/guc.h"

#include "cm_net.h"
#include "cm_protocol.h"

/* watchdog.termination_mode */
typedef enum WdTerminationMode
{
	WD_TERMINATE_ADDRESS = 0,	/* every TCP session from the peer's address */
	WD_TERMINATE_PRECISE		/* only the sessions the peer registered */
} WdTerminationMode;

/* GUC variables (watchdog.c) */
extern int	wd_port;
extern int	wd_check_attr_interval;
extern int	wd_max_heartbeat_connections;
extern char *wd_listen_addresses;
extern int	wd_timeout_margin;
extern int	wd_hello_timeout;
extern int	wd_max_heartbeat_timeout;
extern int	wd_max_heartbeat_connections_per_address;
extern int	wd_termination_mode;
extern bool wd_terminate_replication;
extern int	wd_terminator_delay;
extern char *wd_secret_file;
extern bool wd_insecure_no_authentication;

/* watchdog.secret_file: at most this many files (wd_auth.c) */
#define WD_MAX_SECRET_FILES 4
extern bool wd_check_secret_file(char **newval, void **extra, GucSource source);

/* Worker entry points */
extern PGDLLEXPORT void WatchdogMain(Datum main_arg) pg_attribute_noreturn();
extern PGDLLEXPORT void TerminatorMain(Datum main_arg) pg_attribute_noreturn();

/* wd_attr.c */
extern uint8 wd_attr_current(void);

extern void wd_addr_host_string(const CmProtoAddr *addr, char *buf,
								size_t cap);

/* wd_server.c */
extern void wd_server_main_loop(void) pg_attribute_noreturn();

#endif							/* WATCHDOG_WATCHDOG_H */
