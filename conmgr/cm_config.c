/*-------------------------------------------------------------------------
 *
 * cm_config.c
 *	  Parser of conmgr.conf.
 *
 * Syntax (spec 4.1): "name = value", one per line; "#" starts a comment;
 * integers are decimal; a value may be single-quoted to contain spaces or
 * "#" (a quote inside is written '' or \'); enumerations take fixed words,
 * case-insensitively.  Parameters are described by one table giving type,
 * range and whether a reload may change them.  Instance parameters carry
 * the instance number N as a decimal suffix (backend_host0).
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

typedef enum CmKeyType
{
	CM_KEY_INT,
	CM_KEY_STRING,
	CM_KEY_ENUM
} CmKeyType;

/* A global parameter. */
typedef struct CmConfigKey
{
	const char *name;
	CmKeyType	type;
	size_t		offset;			/* in CmConfig */
	int			min;
	int			max;
	bool		reloadable;
	const char *const *words;	/* CM_KEY_ENUM: NULL-terminated */
	const char *unit;			/* for messages */
} CmConfigKey;

static const char *const level_words[] = {"debug", "info", "warning", "error", NULL};
static const char *const dest_words[] = {"stderr", "file", "syslog", NULL};
static const char *const onoff_words[] = {"off", "on", NULL};

static const CmConfigKey config_keys[] = {
	{"port", CM_KEY_INT, offsetof(CmConfig, port), 1, 65535, false, NULL, ""},
	{"heartbeat_interval", CM_KEY_INT, offsetof(CmConfig, heartbeat_interval),
	CM_MIN_HEARTBEAT_INTERVAL, CM_MAX_HEARTBEAT_INTERVAL, false, NULL, " ms"},
	{"heartbeat_timeout", CM_KEY_INT, offsetof(CmConfig, heartbeat_timeout),
	CM_MIN_HEARTBEAT_INTERVAL + 1, CM_MAX_HEARTBEAT_TIMEOUT, false, NULL, " ms"},
	{"connect_timeout", CM_KEY_INT, offsetof(CmConfig, connect_timeout),
	10, 3600000, true, NULL, " ms"},
	{"max_app_connections", CM_KEY_INT, offsetof(CmConfig, max_app_connections),
	1, 1000000, true, NULL, ""},
	{"max_app_connections_per_user", CM_KEY_INT, offsetof(CmConfig, max_app_connections_per_user),
	0, 1000000, true, NULL, ""},
	{"app_handshake_timeout", CM_KEY_INT, offsetof(CmConfig, app_handshake_timeout),
	10, 3600000, true, NULL, " ms"},
	{"app_register_timeout", CM_KEY_INT, offsetof(CmConfig, app_register_timeout),
	10, 3600000, true, NULL, " ms"},
	{"log_level", CM_KEY_ENUM, offsetof(CmConfig, log_level), 0, 0, true, level_words, ""},
	{"log_destination", CM_KEY_ENUM, offsetof(CmConfig, log_destination), 0, 0, true, dest_words, ""},
	{"log_file", CM_KEY_STRING, offsetof(CmConfig, log_file), 1, 1024, true, NULL, ""},
	{"secret_file", CM_KEY_STRING, offsetof(CmConfig, secret_file), 0, 1024, true, NULL, ""},
	{"insecure_no_authentication", CM_KEY_ENUM, offsetof(CmConfig, insecure_no_authentication), 0, 0, true, onoff_words, ""},
	{"metrics_port", CM_KEY_INT, offsetof(CmConfig, metrics_port), 0, 65535, false, NULL, ""},
	{"heartbeat_datagrams", CM_KEY_ENUM, offsetof(CmConfig, heartbeat_datagrams), 0, 0, true, onoff_words, ""},
};

#define NUM_CONFIG_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

_Static_assert(NUM_CONFIG_KEYS <= sizeof(((CmConfig *) NULL)->lines) / sizeof(int),
			   "CmConfig.lines has a line for every global parameter");

/* Instance parameters, in the order of CmInstanceConfig.lines[]. */
enum
{
	IKEY_HOST = 0,
	IKEY_HOSTADDR,
	IKEY_PORT,
	IKEY_WATCHDOG_PORT
};
static const char *const instance_keys[] = {
	"backend_host", "backend_hostaddr", "backend_port", "watchdog_port"
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

int
cm_config_line(const CmConfig *cfg, const char *name)
{
	size_t		k;

	for (k = 0; k < NUM_CONFIG_KEYS; k++)
		if (strcmp(config_keys[k].name, name) == 0)
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
	if (level < 0 || level > 3)
		return "unknown";
	return level_words[level];
}

const char *
cm_config_destination_name(int dest)
{
	if (dest < 0 || dest > 2)
		return "unknown";
	return dest_words[dest];
}

void
cm_config_init(CmConfig *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = CM_DEFAULT_PORT;
	cfg->metrics_port = CM_DEFAULT_METRICS_PORT;
	cfg->heartbeat_interval = CM_DEFAULT_HEARTBEAT_INTERVAL;
	cfg->heartbeat_timeout = CM_DEFAULT_HEARTBEAT_TIMEOUT;
	cfg->connect_timeout = CM_DEFAULT_CONNECT_TIMEOUT;
	cfg->max_app_connections = CM_DEFAULT_MAX_APP_CONNECTIONS;
	cfg->max_app_connections_per_user = CM_DEFAULT_MAX_APP_CONNECTIONS_PER_USER;
	cfg->app_handshake_timeout = CM_DEFAULT_APP_HANDSHAKE_TIMEOUT;
	cfg->app_register_timeout = CM_DEFAULT_APP_REGISTER_TIMEOUT;
	cfg->log_level = CM_LOG_INFO;
	cfg->log_destination = CM_LOGDEST_STDERR;
	cfg->log_file = strdup(CM_DEFAULT_LOG_FILE);
	cfg->secret_file = strdup("");
	cfg->heartbeat_datagrams = 1;
}

void
cm_config_free(CmConfig *cfg)
{
	int			i;

	free(cfg->path);
	free(cfg->log_file);
	free(cfg->secret_file);
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
 * Split a parameter name into an instance parameter and its number.
 * Returns the index in instance_keys or -1 when name is not one; *number
 * is -1 when the suffix is missing or not a plain decimal number.
 */
static int
split_instance_key(const char *name, long *number)
{
	size_t		len = strlen(name);
	size_t		base = len;
	int			i;

	while (base > 0 && isdigit((unsigned char) name[base - 1]))
		base--;
	for (i = 0; i < 4; i++)
	{
		if (strlen(instance_keys[i]) == base &&
			strncmp(name, instance_keys[i], base) == 0)
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
set_instance_key(CmParse *ps, CmConfig *cfg, const char *name, int key,
				 long number, const char *value)
{
	CmInstanceConfig *ic;
	int			port;

	if (number < 0)
	{
		parse_error(ps, ps->line,
					"parameter \"%s\" needs a decimal instance number without leading zeros, as in \"%s0\"",
					name, instance_keys[key]);
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
		case IKEY_HOST:
			if (strlen(value) > 255)
			{
				parse_error(ps, ps->line,
							"invalid value for parameter \"%s\": host name longer than 255 bytes",
							name);
				return;
			}
			ic->host = strdup(value);
			break;
		case IKEY_HOSTADDR:
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
		case IKEY_PORT:
		case IKEY_WATCHDOG_PORT:
			if (!parse_int(value, 1, 65535, &port))
			{
				parse_error(ps, ps->line,
							"invalid value for parameter \"%s\": \"%s\" (an integer from 1 to 65535 is expected)",
							name, value);
				return;
			}
			if (key == IKEY_PORT)
				ic->port = port;
			else
				ic->watchdog_port = port;
			break;
	}
}

/* Set one global parameter. */
static void
set_global_key(CmParse *ps, CmConfig *cfg, int k, const char *value)
{
	const CmConfigKey *key = &config_keys[k];
	char	   *base = (char *) cfg;

	if (cfg->lines[k] != 0)
	{
		parse_error(ps, ps->line, "parameter \"%s\" is already set on line %d",
					key->name, cfg->lines[k]);
		return;
	}

	switch (key->type)
	{
		case CM_KEY_INT:
			{
				int			v;

				if (!parse_int(value, key->min, key->max, &v))
				{
					parse_error(ps, ps->line,
								"invalid value for parameter \"%s\": \"%s\" (an integer from %d to %d%s is expected)",
								key->name, value, key->min, key->max, key->unit);
					return;
				}
				*(int *) (base + key->offset) = v;
				break;
			}
		case CM_KEY_STRING:
			{
				char	  **p = (char **) (base + key->offset);

				if ((int) strlen(value) < key->min || (int) strlen(value) > key->max)
				{
					parse_error(ps, ps->line,
								"invalid value for parameter \"%s\": must be %d to %d bytes long",
								key->name, key->min, key->max);
					return;
				}
				free(*p);
				*p = strdup(value);
				break;
			}
		case CM_KEY_ENUM:
			{
				int			i;
				char		list[256] = "";

				for (i = 0; key->words[i]; i++)
				{
					if (strcasecmp(value, key->words[i]) == 0)
					{
						*(int *) (base + key->offset) = i;
						break;
					}
					snprintf(list + strlen(list), sizeof(list) - strlen(list),
							 "%s\"%s\"", i > 0 ? ", " : "", key->words[i]);
				}
				if (key->words[i] == NULL)
				{
					parse_error(ps, ps->line,
								"invalid value for parameter \"%s\": \"%s\" (one of %s is expected)",
								key->name, value, list);
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
	size_t		k;
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

	for (k = 0; k < NUM_CONFIG_KEYS; k++)
	{
		if (strcmp(name, config_keys[k].name) == 0)
		{
			set_global_key(ps, cfg, (int) k, value);
			return;
		}
	}
	ikey = split_instance_key(name, &number);
	if (ikey >= 0)
	{
		set_instance_key(ps, cfg, name, ikey, number, value);
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
		int			line = cfg->lines[2] ? cfg->lines[2] : cfg->lines[1];

		parse_error(ps, line,
					"heartbeat_timeout (%d ms) must be greater than heartbeat_interval (%d ms)",
					cfg->heartbeat_timeout, cfg->heartbeat_interval);
	}

	if (cfg->metrics_port != 0 && cfg->metrics_port == cfg->port)
		parse_error(ps, cm_config_line(cfg, "metrics_port"),
					"metrics_port (%d) must differ from port, on which applications connect",
					cfg->metrics_port);

	for (i = 0; i < cfg->ninstances; i++)
	{
		CmInstanceConfig *ic = &cfg->inst[i];

		if (!ic->defined)
			continue;
		n++;
		if (ic->lines[IKEY_HOST] == 0 && ic->lines[IKEY_HOSTADDR] == 0)
			parse_error(ps, ic->first_line,
						"instance %d has neither backend_host%d nor backend_hostaddr%d",
						i, i, i);
		if (ic->lines[IKEY_PORT] == 0)
			parse_error(ps, ic->first_line,
						"instance %d has no backend_port%d (the PostgreSQL port applications connect to)",
						i, i);
		if (ic->lines[IKEY_WATCHDOG_PORT] == 0)
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
format_value(const CmConfig *cfg, int k, char *buf, size_t cap)
{
	const CmConfigKey *key = &config_keys[k];
	const char *base = (const char *) cfg;

	switch (key->type)
	{
		case CM_KEY_INT:
			snprintf(buf, cap, "%d", *(const int *) (base + key->offset));
			break;
		case CM_KEY_STRING:
			snprintf(buf, cap, "%s", *(char *const *) (base + key->offset));
			break;
		case CM_KEY_ENUM:
			snprintf(buf, cap, "%s", key->words[*(const int *) (base + key->offset)]);
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

/* Does global parameter k have the same value in both configurations? */
static bool
value_equal(const CmConfig *a, const CmConfig *b, int k)
{
	const CmConfigKey *key = &config_keys[k];
	const char *abase = (const char *) a;
	const char *bbase = (const char *) b;

	if (key->type == CM_KEY_STRING)
		return str_equal(*(char *const *) (abase + key->offset),
						 *(char *const *) (bbase + key->offset));
	return *(const int *) (abase + key->offset) ==
		*(const int *) (bbase + key->offset);
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
	size_t		k;
	int			i;
	char		msg[1600];

	for (k = 0; k < NUM_CONFIG_KEYS; k++)
	{
		char		oldv[512];
		char		newv[512];
		const CmConfigKey *key = &config_keys[k];

		if (value_equal(cur, newcfg, (int) k))
			continue;
		format_value(cur, (int) k, oldv, sizeof(oldv));
		format_value(newcfg, (int) k, newv, sizeof(newv));
		if (key->reloadable)
		{
			char	   *cbase = (char *) cur;
			const char *nbase = (const char *) newcfg;

			if (key->type == CM_KEY_STRING)
			{
				char	  **p = (char **) (cbase + key->offset);

				free(*p);
				*p = strdup(*(char *const *) (nbase + key->offset));
			}
			else
				*(int *) (cbase + key->offset) = *(const int *) (nbase + key->offset);
			snprintf(msg, sizeof(msg), "parameter \"%s\" changed from \"%s\" to \"%s\"",
					 key->name, oldv, newv);
		}
		else
		{
			snprintf(msg, sizeof(msg),
					 "parameter \"%s\" cannot be changed without restarting conmgr; the new value \"%s\" was ignored (\"%s\" stays in effect)",
					 key->name, newv, oldv);
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
