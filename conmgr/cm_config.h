/*-------------------------------------------------------------------------
 *
 * cm_config.h
 *	  conmgr.conf: parameters, parser and reload rules.
 *
 * The parser fills a fresh CmConfig and reports every problem of the file
 * (not only the first) through a callback, each as "file:line: message".
 * The caller swaps configurations only when the whole file is valid.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_config.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONMGR_CM_CONFIG_H
#define CONMGR_CM_CONFIG_H

#include <stdbool.h>

#include "cm_defaults.h"

/* One instance: all parameters with the same N (backend_hostN, ...). */
typedef struct CmInstanceConfig
{
	bool		defined;		/* some parameter with this N is present */
	int			first_line;		/* where it is first mentioned */
	char	   *host;			/* backend_hostN, or NULL */
	char	   *hostaddr;		/* backend_hostaddrN, or NULL */
	int			port;			/* backend_portN, 0 if missing */
	int			watchdog_port;	/* watchdog_portN, 0 if missing */
	int			lines[4];		/* line of each of the four, 0 if unset */
} CmInstanceConfig;

typedef struct CmConfig
{
	char	   *path;			/* as shown in messages */
	int			port;
	int			metrics_port;	/* 0: no metrics endpoint */
	int			heartbeat_interval;
	int			heartbeat_timeout;
	int			connect_timeout;
	int			max_app_connections;
	int			max_app_connections_per_user;	/* 0: half of the above */
	int			app_handshake_timeout;
	int			app_register_timeout;
	int			log_level;		/* CmLogLevel */
	int			log_destination;	/* CmLogDestination */
	char	   *log_file;
	char	   *secret_file;	/* "" = heartbeats not authenticated */
	int			insecure_no_authentication; /* 1: "" allowed (a lab only) */
	int			heartbeat_datagrams;	/* 1: heartbeats as datagrams when
										 * the watchdog speaks 1.2 */
	int			ninstances;		/* 1 + highest N defined */
	CmInstanceConfig inst[CM_MAX_INSTANCES];
	int			lines[16];		/* line of each global parameter, 0 = default */
} CmConfig;

typedef void (*CmConfigReportFn) (void *arg, const char *message);

/* Fill *cfg with the defaults (no instance). */
extern void cm_config_init(CmConfig *cfg);

/*
 * Parse path into *cfg (initialised here).  Every error is passed to
 * report as "path:line: message" (or "path: message" for whole-file
 * problems).  Returns true when the file is valid; on false, *cfg must
 * still be freed with cm_config_free.
 */
extern bool cm_config_load(const char *path, CmConfig *cfg,
						   CmConfigReportFn report, void *arg);

extern void cm_config_free(CmConfig *cfg);

/*
 * Apply a newly loaded, valid configuration to the running one: copy the
 * parameters that can change without a restart, and report each change
 * (applied or ignored) through report.  Instances that were added, removed
 * or changed are reported and flagged in inst_changed[] (may be NULL) but
 * not copied: the caller disconnects the old instance, then copies the new
 * definition with cm_config_set_instance.  Returns the number of ignored
 * changes.
 */
extern int	cm_config_reload(CmConfig *cur, const CmConfig *newcfg,
							 CmConfigReportFn report, void *arg,
							 bool *inst_changed);

/* Replace instance n of cur by that of newcfg (possibly undefined). */
extern void cm_config_set_instance(CmConfig *cur, const CmConfig *newcfg,
								   int n);

/* Line where global parameter name was set, 0 when it has its default. */
extern int	cm_config_line(const CmConfig *cfg, const char *name);

/* max_app_connections_per_user in force: 0 means half of the maximum. */
extern int	cm_config_per_user_limit(const CmConfig *cfg);

extern const char *cm_config_level_name(int level);
extern const char *cm_config_destination_name(int dest);

#endif							/* CONMGR_CM_CONFIG_H */
