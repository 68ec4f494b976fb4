/*-------------------------------------------------------------------------
 *
 * cm_config.c
 *	  Parser of conmgr.conf.
 *
 * Syntax (docs/conmgr.md, "conmgr.conf"): "name = value", one per line;
 * "#" starts a comment; integers are decimal; a value may be single-quoted
 * to contain spaces or "#" (a quote inside is written '' or \'); enumerations
 * take fixed words, case-insensitively.  Parameters are described by one
 * table giving type, range, default and whether a reload may change them.
 * Instance parameters carry the instance number N as a decimal suffix
 * (backend_host0).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_config.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_config.h"
#include "cm_log.h"
#include "cm_protocol.h"

static const char *const level_words[] = {"debug", "info", "warning", "error", NULL};
static const char *const dest_words[] = {"stderr", "file", "syslog", NULL};
static const char *const onoff_words[] = {"off", "on", NULL};

#define lengthof(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(CM_LOG_DEBUG == 0 && CM_LOG_ERROR == lengthof(level_words) - 2,
			   "level_words follows CmLogLevel");
_Static_assert(CM_LOGDEST_STDERR == 0 && CM_LOGDEST_SYSLOG == lengthof(dest_words) - 2,
			   "dest_words follows CmLogDestination");

/*
 * Heartbeat interval and timeout, in ms.  An instance that stops answering
 * is declared down heartbeat_timeout after the oldest unanswered heartbeat
 * was sent: 3 s by default, with 2 more heartbeats sent meanwhile, so one
 * lost or late packet does not cause a false failure while a dead host or
 * a cut network is noticed in a few seconds, not in the 15 minutes of TCP
 * retransmission or the 2 hours of TCP keepalive.  The timeout is at most
 * the protocol's limit (one day) and above the interval.
 */
#define MIN_HEARTBEAT_INTERVAL	10

#define INT_PARAM(key, field, lo, hi, unit, reload, def) \
	[key] = {#field, CM_PARAM_INT, offsetof(CmConfig, field), lo, hi, NULL, unit, reload, def, NULL}
#define ENUM_PARAM(key, field, words, reload, def) \
	[key] = {#field, CM_PARAM_ENUM, offsetof(CmConfig, field), 0, lengthof(words) - 2, words, "", reload, def, NULL}
#define STRING_PARAM(key, field, lo, hi, reload, def) \
	[key] = {#field, CM_PARAM_STRING, offsetof(CmConfig, field), lo, hi, NULL, "", reload, 0, def}

/*
 * The global parameters: name (that of the CmConfig field), bounds, unit,
 * whether a reload may change it, and the default.  docs/conmgr.md
 * describes each in its table "Parameters"; test_config checks that the
 * two agree.
 */
const CmConfigParam cm_config_params[CM_NUM_KEYS] = {
	/* TCP port on which applications reach conmgr */
	INT_PARAM(CM_KEY_PORT, port, 1, 65535, "", false, CM_DEFAULT_PORT),
	INT_PARAM(CM_KEY_HEARTBEAT_INTERVAL, heartbeat_interval,
			  MIN_HEARTBEAT_INTERVAL, 3600000, " ms", false, 1000),
	INT_PARAM(CM_KEY_HEARTBEAT_TIMEOUT, heartbeat_timeout,
			  MIN_HEARTBEAT_INTERVAL + 1, CM_PROTO_MAX_HEARTBEAT_TIMEOUT_MS, " ms", false, 3000),

	/*
	 * Bound on establishing a heartbeat connection (TCP connect plus hello
	 * and welcome).  An unreachable host (packets dropped, not refused) is
	 * given up after this time instead of the kernel's ~2 minutes of SYN
	 * retries; then the reconnection backoff applies.
	 */
	INT_PARAM(CM_KEY_CONNECT_TIMEOUT, connect_timeout, 10, 3600000, " ms", true, 3000),

	/* Most application connections (see CM_FIXED_FDS in cm_defaults.h). */
	INT_PARAM(CM_KEY_MAX_APP_CONNECTIONS, max_app_connections, 1, 1000000, "", true, 1000),

	/*
	 * Most application connections of one local user, as the kernel reports
	 * the owner of the application's socket.  0 stands for half of
	 * max_app_connections (rounded up): one user, or one program gone
	 * astray, can take half of the slots, and the others are left to
	 * everybody else.
	 */
	INT_PARAM(CM_KEY_MAX_APP_CONNECTIONS_PER_USER, max_app_connections_per_user,
			  0, 1000000, "", true, 0),

	/*
	 * Time an application has, from connecting to conmgr, to send its route
	 * request.  Bounds what a client that connects and says nothing can
	 * hold.
	 */
	INT_PARAM(CM_KEY_APP_HANDSHAKE_TIMEOUT, app_handshake_timeout,
			  10, 3600000, " ms", true, 10000),

	/*
	 * Time a routed application connection has, from the instance answer,
	 * to register its SQL connection.  In between, the client connects to
	 * the instance and authenticates: PostgreSQL gives authentication up to
	 * authentication_timeout (1 min by default), and the connection and TLS
	 * handshake come on top, so 90 s lets every client that the server
	 * would let in register, while a connection that routes and never
	 * registers holds its slot 90 s at most.  Registered connections live
	 * as long as the application's SQL connection and have no timeout.
	 */
	INT_PARAM(CM_KEY_APP_REGISTER_TIMEOUT, app_register_timeout,
			  10, 3600000, " ms", true, 90000),

	ENUM_PARAM(CM_KEY_LOG_LEVEL, log_level, level_words, true, CM_LOG_INFO),
	ENUM_PARAM(CM_KEY_LOG_DESTINATION, log_destination, dest_words, true, CM_LOGDEST_STDERR),
	STRING_PARAM(CM_KEY_LOG_FILE, log_file, 1, 1024, true, CM_DEFAULT_LOG_FILE),
	/* "": heartbeats not authenticated, refused unless the next is on */
	STRING_PARAM(CM_KEY_SECRET_FILE, secret_file, 0, 1024, true, ""),
	ENUM_PARAM(CM_KEY_INSECURE_NO_AUTHENTICATION, insecure_no_authentication,
			   onoff_words, true, 0),
	/* 0: no metrics endpoint (docs/conmgr.md, "Metrics") */
	INT_PARAM(CM_KEY_METRICS_PORT, metrics_port, 0, 65535, "", false, 0),
	ENUM_PARAM(CM_KEY_HEARTBEAT_DATAGRAMS, heartbeat_datagrams, onoff_words, true, 1),
};

#define INST_PARAM(key, name, type, field, lo, hi) \
	[key] = {name, type, offsetof(CmInstanceConfig, field), lo, hi, NULL, "", true, 0, NULL}

/*
 * The instance parameters (all reloadable: a reload adds, removes or
 * replaces whole instances).  A host name is at most 255 bytes, as DNS
 * allows; an address is checked by inet_pton.
 */
const CmConfigParam cm_config_instance_params[CM_NUM_IKEYS] = {
	INST_PARAM(CM_IKEY_HOST, "backend_host", CM_PARAM_STRING, host, 0, 255),
	INST_PARAM(CM_IKEY_HOSTADDR, "backend_hostaddr", CM_PARAM_STRING, hostaddr, 0, 0),
	INST_PARAM(CM_IKEY_PORT, "backend_port", CM_PARAM_INT, port, 1, 65535),
	INST_PARAM(CM_IKEY_WATCHDOG_PORT, "watchdog_port", CM_PARAM_INT, watchdog_port, 1, 65535),
};

/* Parser state. */
typedef struct CmParse
{
	const char *path;
	int			line;
	int			nerrors;
	CmConfigReportFn report;
	void	   *arg;
} CmParse;

static void parse_error(CmParse *ps, int line, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* Report one error, prefixed with file and line (line 0: file only). */
static void
parse_error(CmParse *ps, int line, const char *fmt,...)
{
	char		msg[1024];
	char		full[1400];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(full, sizeof(full), "%s:%d: %s", ps->path, line, msg);
	else
		snprintf(full, sizeof(full), "%s: %s", ps->path, msg);
	ps->nerrors++;
	if (ps->report)
		ps->report(ps->arg, full);
}

/* The field of a global parameter in cfg, to set it. */
static int *
param_int(CmConfig *cfg, const CmConfigParam *par)
{
	return (int *) ((char *) cfg + par->offset);
}

static char **
param_string(CmConfig *cfg, const CmConfigParam *par)
{
	return (char **) ((char *) cfg + par->offset);
}

int
cm_config_line(const CmConfig *cfg, const char *name)
{
	int			k;

	for (k = 0; k < CM_NUM_KEYS; k++)
		if (strcmp(cm_config_params[k].name, name) == 0)
			return cfg->lines[k];
	return 0;
}

int
cm_config_per_user_limit(const CmConfig *cfg)
{
	if (cfg->max_app_connections_per_user > 0)
		return cfg->max_app_connections_per_user;
	return (cfg->max_app_connections + 1) / 2;
}

const char *
cm_config_level_name(int level)
{
	if (level < 0 || level > cm_config_params[CM_KEY_LOG_LEVEL].max)
		return "unknown";
	return level_words[level];
}

const char *
cm_config_destination_name(int dest)
{
	if (dest < 0 || dest > cm_config_params[CM_KEY_LOG_DESTINATION].max)
		return "unknown";
	return dest_words[dest];
}

void
cm_config_init(CmConfig *cfg)
{
	int			k;

	memset(cfg, 0, sizeof(*cfg));
	for (k = 0; k < CM_NUM_KEYS; k++)
	{
		const CmConfigParam *par = &cm_config_params[k];

		if (par->type == CM_PARAM_STRING)
			*param_string(cfg, par) = strdup(par->default_string);
		else
			*param_int(cfg, par) = par->default_int;
	}
}

void
cm_config_free(CmConfig *cfg)
{
	int			k;
	int			i;

	free(cfg->path);
	for (k = 0; k < CM_NUM_KEYS; k++)
		if (cm_config_params[k].type == CM_PARAM_STRING)
			free(*param_string(cfg, &cm_config_params[k]));
	for (i = 0; i < CM_MAX_INSTANCES; i++)
	{
		free(cfg->inst[i].host);
		free(cfg->inst[i].hostaddr);
	}
	memset(cfg, 0, sizeof(*cfg));
}

/*
 * Parse a decimal integer that must fill the whole string.  Returns false
 * when it is not an integer or is out of [min, max].
 */
static bool
parse_int(const char *s, int min, int max, int *out)
{
	char	   *end;
	long		v;

	if (*s == '\0')
		return false;
	if (!isdigit((unsigned char) *s) && !((*s == '-' || *s == '+') && isdigit((unsigned char) s[1])))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = (int) v;
	return true;
}

/*
 * Parse the value of integer parameter par, written as name; report it
 * when it is not an integer within the parameter's bounds.
 */
static bool
parse_int_param(CmParse *ps, const CmConfigParam *par, const char *name,
				const char *value, int *out)
{
	if (parse_int(value, par->min, par->max, out))
		return true;
	parse_error(ps, ps->line,
				"invalid value for parameter \"%s\": \"%s\" (an integer from %d to %d%s is expected)",
				name, value, par->min, par->max, par->unit);
	return false;
}

/*
 * Split a parameter name into an instance parameter and its number.
 * Returns the instance key or -1 when name is not one; *number is -1 when
 * the suffix is missing or not a plain decimal number.
 */
static int
split_instance_key(const char *name, long *number)
{
	size_t		len = strlen(name);
	size_t		base = len;
	int			i;

	while (base > 0 && isdigit((unsigned char) name[base - 1]))
		base--;
	for (i = 0; i < CM_NUM_IKEYS; i++)
	{
		const char *iname = cm_config_instance_params[i].name;

		if (strlen(iname) == base && strncmp(name, iname, base) == 0)
		{
			if (base == len || len - base > 6 ||
				(name[base] == '0' && len - base > 1))
				*number = -1;
			else
				*number = strtol(name + base, NULL, 10);
			return i;
		}
	}
	return -1;
}

/* Set one instance parameter. */
static void
set_instance_key(CmParse *ps, CmConfig *cfg, const char *name,
				 CmInstanceKey key, long number, const char *value)
{
	const CmConfigParam *par = &cm_config_instance_params[key];
	CmInstanceConfig *ic;

	if (number < 0)
	{
		parse_error(ps, ps->line,
					"parameter \"%s\" needs a decimal instance number without leading zeros, as in \"%s0\"",
					name, par->name);
		return;
	}
	if (number >= CM_MAX_INSTANCES)
	{
		parse_error(ps, ps->line,
					"instance number %ld of parameter \"%s\" is out of range (0 to %d)",
					number, name, CM_MAX_INSTANCES - 1);
		return;
	}
	ic = &cfg->inst[number];
	if (ic->lines[key] != 0)
	{
		parse_error(ps, ps->line,
					"parameter \"%s\" is already set on line %d",
					name, ic->lines[key]);
		return;
	}

	/*
	 * The parameter counts as given even when its value is bad, so that the
	 * one error is not followed by "instance N has no ...".
	 */
	ic->lines[key] = ps->line;
	if (!ic->defined)
	{
		ic->defined = true;
		ic->first_line = ps->line;
	}
	if (number + 1 > cfg->ninstances)
		cfg->ninstances = (int) number + 1;

	switch (key)
	{
		case CM_IKEY_HOST:
			if (strlen(value) > (size_t) par->max)
			{
				parse_error(ps, ps->line,
							"invalid value for parameter \"%s\": host name longer than %d bytes",
							name, par->max);
				return;
			}
			ic->host = strdup(value);
			break;
		case CM_IKEY_HOSTADDR:
			{
				unsigned char buf[16];

				if (inet_pton(AF_INET, value, buf) != 1 &&
					inet_pton(AF_INET6, value, buf) != 1)
				{
					parse_error(ps, ps->line,
								"invalid value for parameter \"%s\": \"%s\" is not a numeric IPv4 or IPv6 address",
								name, value);
					return;
				}
				ic->hostaddr = strdup(value);
				break;
			}
		case CM_IKEY_PORT:
		case CM_IKEY_WATCHDOG_PORT:
			parse_int_param(ps, par, name, value,
							(int *) ((char *) ic + par->offset));
			break;
		case CM_NUM_IKEYS:
			break;
	}
}

/* Set one global parameter. */
static void
set_global_key(CmParse *ps, CmConfig *cfg, CmConfigKey k, const char *value)
{
	const CmConfigParam *par = &cm_config_params[k];

	if (cfg->lines[k] != 0)
	{
		parse_error(ps, ps->line, "parameter \"%s\" is already set on line %d",
					par->name, cfg->lines[k]);
		return;
	}

	switch (par->type)
	{
		case CM_PARAM_INT:
			if (!parse_int_param(ps, par, par->name, value, param_int(cfg, par)))
				return;
			break;
		case CM_PARAM_STRING:
			{
				char	  **p = param_string(cfg, par);

				if ((int) strlen(value) < par->min || (int) strlen(value) > par->max)
				{
					parse_error(ps, ps->line,
								"invalid value for parameter \"%s\": must be %d to %d bytes long",
								par->name, par->min, par->max);
					return;
				}
				free(*p);
				*p = strdup(value);
				break;
			}
		case CM_PARAM_ENUM:
			{
				int			i;
				char		list[256] = "";

				for (i = 0; par->words[i]; i++)
				{
					if (strcasecmp(value, par->words[i]) == 0)
					{
						*param_int(cfg, par) = i;
						break;
					}
					snprintf(list + strlen(list), sizeof(list) - strlen(list),
							 "%s\"%s\"", i > 0 ? ", " : "", par->words[i]);
				}
				if (par->words[i] == NULL)
				{
					parse_error(ps, ps->line,
								"invalid value for parameter \"%s\": \"%s\" (one of %s is expected)",
								par->name, value, list);
					return;
				}
				break;
			}
	}
	cfg->lines[k] = ps->line;
}

/*
 * Parse one line.  Comments and blank lines are skipped; anything else must
 * be name = value.
 */
static void
parse_line(CmParse *ps, CmConfig *cfg, char *line)
{
	char	   *p = line;
	char	   *name;
	char	   *value;
	char	   *q;
	int			k;
	long		number;
	int			ikey;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0' || *p == '#')
		return;

	if (!isalpha((unsigned char) *p) && *p != '_')
	{
		parse_error(ps, ps->line, "syntax error: a parameter name was expected, found \"%.20s\"", p);
		return;
	}
	name = p;
	while (isalnum((unsigned char) *p) || *p == '_')
		p++;
	q = p;
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '=')
	{
		*q = '\0';
		parse_error(ps, ps->line, "syntax error: \"=\" expected after parameter name \"%s\"", name);
		return;
	}
	*q = '\0';
	p++;
	while (isspace((unsigned char) *p))
		p++;

	if (*p == '\'')
	{
		/* Quoted: '' and \' stand for a quote, \\ for a backslash. */
		char	   *w;

		p++;
		value = w = p;
		for (;;)
		{
			if (*p == '\0')
			{
				parse_error(ps, ps->line, "unterminated quoted string in the value of parameter \"%s\"", name);
				return;
			}
			if (*p == '\'' && p[1] == '\'')
			{
				*w++ = '\'';
				p += 2;
			}
			else if (*p == '\\' && (p[1] == '\'' || p[1] == '\\'))
			{
				*w++ = p[1];
				p += 2;
			}
			else if (*p == '\'')
			{
				p++;
				break;
			}
			else
				*w++ = *p++;
		}
		*w = '\0';
	}
	else
	{
		value = p;
		while (*p && !isspace((unsigned char) *p) && *p != '#')
			p++;
		if (p == value)
		{
			parse_error(ps, ps->line, "missing value for parameter \"%s\"", name);
			return;
		}
		/* a "#" right after the value starts a comment */
		if (*p == '#')
			*p = '\0';
		else if (*p)
			*p++ = '\0';
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0' && *p != '#')
	{
		parse_error(ps, ps->line,
					"syntax error: unexpected text \"%.20s\" after the value of parameter \"%s\" (one parameter per line; quote values that contain spaces)",
					p, name);
		return;
	}

	for (k = 0; k < CM_NUM_KEYS; k++)
	{
		if (strcmp(name, cm_config_params[k].name) == 0)
		{
			set_global_key(ps, cfg, (CmConfigKey) k, value);
			return;
		}
	}
	ikey = split_instance_key(name, &number);
	if (ikey >= 0)
	{
		set_instance_key(ps, cfg, name, (CmInstanceKey) ikey, number, value);
		return;
	}
	parse_error(ps, ps->line, "unrecognized configuration parameter \"%s\"", name);
}

/* Checks that need the whole file. */
static void
validate(CmParse *ps, CmConfig *cfg)
{
	int			i;
	int			n = 0;

	if (cfg->heartbeat_timeout <= cfg->heartbeat_interval)
	{
		int			line = cfg->lines[CM_KEY_HEARTBEAT_TIMEOUT] ?
			cfg->lines[CM_KEY_HEARTBEAT_TIMEOUT] :
			cfg->lines[CM_KEY_HEARTBEAT_INTERVAL];

		parse_error(ps, line,
					"heartbeat_timeout (%d ms) must be greater than heartbeat_interval (%d ms)",
					cfg->heartbeat_timeout, cfg->heartbeat_interval);
	}

	if (cfg->metrics_port != 0 && cfg->metrics_port == cfg->port)
		parse_error(ps, cfg->lines[CM_KEY_METRICS_PORT],
					"metrics_port (%d) must differ from port, on which applications connect",
					cfg->metrics_port);

	for (i = 0; i < cfg->ninstances; i++)
	{
		CmInstanceConfig *ic = &cfg->inst[i];

		if (!ic->defined)
			continue;
		n++;
		if (ic->lines[CM_IKEY_HOST] == 0 && ic->lines[CM_IKEY_HOSTADDR] == 0)
			parse_error(ps, ic->first_line,
						"instance %d has neither backend_host%d nor backend_hostaddr%d",
						i, i, i);
		if (ic->lines[CM_IKEY_PORT] == 0)
			parse_error(ps, ic->first_line,
						"instance %d has no backend_port%d (the PostgreSQL port applications connect to)",
						i, i);
		if (ic->lines[CM_IKEY_WATCHDOG_PORT] == 0)
			parse_error(ps, ic->first_line,
						"instance %d has no watchdog_port%d (the instance's watchdog.port)",
						i, i);
	}
	if (n == 0 && ps->nerrors == 0)
		parse_error(ps, 0, "no instance is defined (set backend_host0, backend_port0 and watchdog_port0)");
	if (cfg->secret_file[0] == '\0' && !cfg->insecure_no_authentication)
		parse_error(ps, 0, "secret_file is not set: every watchdog must prove it holds the shared secret "
					"(set secret_file to a file holding the secret of the servers' watchdog.secret_file; "
					"insecure_no_authentication = on believes any watchdog, for a lab only)");
}

bool
cm_config_load(const char *path, CmConfig *cfg, CmConfigReportFn report,
			   void *arg)
{
	CmParse		ps;
	FILE	   *f;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;

	cm_config_init(cfg);
	cfg->path = strdup(path);
	ps.path = path;
	ps.line = 0;
	ps.nerrors = 0;
	ps.report = report;
	ps.arg = arg;

	f = fopen(path, "r");
	if (f == NULL)
	{
		parse_error(&ps, 0, "could not open configuration file: %s", strerror(errno));
		return false;
	}
	while ((len = getline(&line, &cap, f)) >= 0)
	{
		ps.line++;
		if (memchr(line, '\0', (size_t) len) != NULL)
		{
			parse_error(&ps, ps.line, "line contains a NUL byte");
			continue;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		parse_line(&ps, cfg, line);
	}
	if (ferror(f))
		parse_error(&ps, 0, "could not read configuration file: %s", strerror(errno));
	free(line);
	fclose(f);

	validate(&ps, cfg);
	return ps.nerrors == 0;
}

/* Text of a global parameter's value, for reload messages. */
static void
format_value(const CmConfig *cfg, const CmConfigParam *par, char *buf, size_t cap)
{
	switch (par->type)
	{
		case CM_PARAM_INT:
			snprintf(buf, cap, "%d", cm_config_int(cfg, par));
			break;
		case CM_PARAM_STRING:
			snprintf(buf, cap, "%s", cm_config_string(cfg, par));
			break;
		case CM_PARAM_ENUM:
			snprintf(buf, cap, "%s", par->words[cm_config_int(cfg, par)]);
			break;
	}
}

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Does global parameter par have the same value in both configurations? */
static bool
value_equal(const CmConfig *a, const CmConfig *b, const CmConfigParam *par)
{
	if (par->type == CM_PARAM_STRING)
		return str_equal(cm_config_string(a, par), cm_config_string(b, par));
	return cm_config_int(a, par) == cm_config_int(b, par);
}

/* "host:port" of an instance definition, for reload messages. */
static void
format_instance(const CmInstanceConfig *ic, char *buf, size_t cap)
{
	const char *h = ic->hostaddr ? ic->hostaddr : ic->host;

	snprintf(buf, cap, "%s%s%s, port %d, watchdog port %d",
			 ic->hostaddr && ic->host ? ic->host : "",
			 ic->hostaddr && ic->host ? " = " : "",
			 h ? h : "?", ic->port, ic->watchdog_port);
}

void
cm_config_set_instance(CmConfig *cur, const CmConfig *newcfg, int n)
{
	CmInstanceConfig *a = &cur->inst[n];
	const CmInstanceConfig *b = &newcfg->inst[n];
	int			i;

	free(a->host);
	free(a->hostaddr);
	*a = *b;
	a->host = b->host ? strdup(b->host) : NULL;
	a->hostaddr = b->hostaddr ? strdup(b->hostaddr) : NULL;

	cur->ninstances = 0;
	for (i = 0; i < CM_MAX_INSTANCES; i++)
		if (cur->inst[i].defined)
			cur->ninstances = i + 1;
}

int
cm_config_reload(CmConfig *cur, const CmConfig *newcfg,
				 CmConfigReportFn report, void *arg, bool *inst_changed)
{
	int			ignored = 0;
	int			k;
	int			i;
	char		msg[1600];

	for (k = 0; k < CM_NUM_KEYS; k++)
	{
		char		oldv[512];
		char		newv[512];
		const CmConfigParam *par = &cm_config_params[k];

		if (value_equal(cur, newcfg, par))
			continue;
		format_value(cur, par, oldv, sizeof(oldv));
		format_value(newcfg, par, newv, sizeof(newv));
		if (par->reloadable)
		{
			if (par->type == CM_PARAM_STRING)
			{
				char	  **p = param_string(cur, par);

				free(*p);
				*p = strdup(cm_config_string(newcfg, par));
			}
			else
				*param_int(cur, par) = cm_config_int(newcfg, par);
			snprintf(msg, sizeof(msg), "parameter \"%s\" changed from \"%s\" to \"%s\"",
					 par->name, oldv, newv);
		}
		else
		{
			snprintf(msg, sizeof(msg),
					 "parameter \"%s\" cannot be changed without restarting conmgr; the new value \"%s\" was ignored (\"%s\" stays in effect)",
					 par->name, newv, oldv);
			ignored++;
		}
		if (report)
			report(arg, msg);
	}

	for (i = 0; i < CM_MAX_INSTANCES; i++)
	{
		const CmInstanceConfig *a = &cur->inst[i];
		const CmInstanceConfig *b = &newcfg->inst[i];
		char		olddef[600];
		char		newdef[600];

		if (a->defined == b->defined &&
			str_equal(a->host, b->host) && str_equal(a->hostaddr, b->hostaddr) &&
			a->port == b->port && a->watchdog_port == b->watchdog_port)
			continue;
		format_instance(a, olddef, sizeof(olddef));
		format_instance(b, newdef, sizeof(newdef));
		if (!a->defined)
			snprintf(msg, sizeof(msg), "instance %d added (%s)", i, newdef);
		else if (!b->defined)
			snprintf(msg, sizeof(msg), "instance %d (%s) removed", i, olddef);
		else
			snprintf(msg, sizeof(msg), "instance %d changed from (%s) to (%s)",
					 i, olddef, newdef);
		if (inst_changed)
			inst_changed[i] = true;
		if (report)
			report(arg, msg);
	}
	return ignored;
}
