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
#include <stddef.h>

#include "cm_defaults.h"

/*
 * The global parameters of conmgr.conf: each names its row of
 * cm_config_params[] and its line in CmConfig.lines[].
 */
typedef enum CmConfigKey
{
	CM_KEY_PORT = 0,
	CM_KEY_HEARTBEAT_INTERVAL,
	CM_KEY_HEARTBEAT_TIMEOUT,
	CM_KEY_CONNECT_TIMEOUT,
	CM_KEY_MAX_APP_CONNECTIONS,
	CM_KEY_MAX_APP_CONNECTIONS_PER_USER,
	CM_KEY_APP_HANDSHAKE_TIMEOUT,
	CM_KEY_APP_REGISTER_TIMEOUT,
	CM_KEY_LOG_LEVEL,
	CM_KEY_LOG_DESTINATION,
	CM_KEY_LOG_FILE,
	CM_KEY_SECRET_FILE,
	CM_KEY_INSECURE_NO_AUTHENTICATION,
	CM_KEY_METRICS_PORT,
	CM_KEY_HEARTBEAT_DATAGRAMS,
	CM_NUM_KEYS
} CmConfigKey;

/*
 * The instance parameters: each is written with the instance number N as
 * a suffix (backend_host0) and names its row of cm_config_instance_params[]
 * and its line in CmInstanceConfig.lines[].
 */
typedef enum CmInstanceKey
{
	CM_IKEY_HOST = 0,
	CM_IKEY_HOSTADDR,
	CM_IKEY_PORT,
	CM_IKEY_WATCHDOG_PORT,
	CM_NUM_IKEYS
} CmInstanceKey;

typedef enum CmParamType
{
	CM_PARAM_INT,				/* int; value within min..max */
	CM_PARAM_STRING,			/* char *; length within min..max bytes */
	CM_PARAM_ENUM				/* int; index in words */
} CmParamType;

/*
 * A row of the parameter tables: the one description of a parameter, from
 * which the parser, the defaults, the reload and the unit test comparing
 * the code with docs/conmgr.md all work.
 */
typedef struct CmConfigParam
{
	const char *name;			/* instance parameters: without N */
	CmParamType type;
	size_t		offset;			/* in CmConfig or CmInstanceConfig */
	int			min;			/* bounds of the value or of its length */
	int			max;
	const char *const *words;	/* CM_PARAM_ENUM: NULL-terminated */
	const char *unit;			/* "" or " ms", for messages */
	bool		reloadable;		/* a reload may change it */
	int			default_int;	/* CM_PARAM_INT, CM_PARAM_ENUM: default */
	const char *default_string; /* CM_PARAM_STRING: default */
} CmConfigParam;

extern const CmConfigParam cm_config_params[CM_NUM_KEYS];
extern const CmConfigParam cm_config_instance_params[CM_NUM_IKEYS];

/* One instance: all parameters with the same N (backend_hostN, ...). */
typedef struct CmInstanceConfig
{
	bool		defined;		/* some parameter with this N is present */
	int			first_line;		/* where it is first mentioned */
	char	   *host;			/* backend_hostN, or NULL */
	char	   *hostaddr;		/* backend_hostaddrN, or NULL */
	int			port;			/* backend_portN, 0 if missing */
	int			watchdog_port;	/* watchdog_portN, 0 if missing */
	int			lines[CM_NUM_IKEYS];	/* line of each, 0 if unset */
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
	int			lines[CM_NUM_KEYS];	/* where each global parameter is set,
										 * 0: it has its default */
} CmConfig;

/* The value of global parameter par in cfg: an integer or enumeration... */
static inline int
cm_config_int(const CmConfig *cfg, const CmConfigParam *par)
{
	return *(const int *) ((const char *) cfg + par->offset);
}

/* ... or a string. */
static inline const char *
cm_config_string(const CmConfig *cfg, const CmConfigParam *par)
{
	return *(char *const *) ((const char *) cfg + par->offset);
}

typedef void (*CmConfigReportFn) (void *arg, const char *message);

/* Fill *cfg with the defaults of cm_config_params (no instance). */
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
