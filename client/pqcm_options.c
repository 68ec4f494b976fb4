/*-------------------------------------------------------------------------
 *
 * pqcm_options.c
 *	  Connection options as libpq users write them: conninfo strings and
 *	  URIs, keyword/value arrays, PQsetdbLogin() arguments, service files
 *	  and environment variables.  From them we learn the host list, the
 *	  target_session_attrs and the connect_timeout that stage 1 needs, and
 *	  we build the options of stage 2 (the same options with the host, the
 *	  hostaddr and the port replaced).
 *
 * Whenever something here is invalid, the request is handed to libpq
 * unchanged so that the application gets libpq's own error message.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_options.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

#ifndef PQCM_SYSCONFDIR
#define PQCM_SYSCONFDIR "/etc/postgresql-common"
#endif

/* Keywords that libpq knows, read once from PQconndefaults(). */
static char **pqcm_known_kw;
static pthread_once_t pqcm_known_once = PTHREAD_ONCE_INIT;

/* Duplicate a string; abort on out-of-memory like a failed libpq call. */
char *
pqcm_strdup(const char *s)
{
	char	   *r = strdup(s ? s : "");

	if (r == NULL)
	{
		fputs("libpqcm: out of memory\n", stderr);
		abort();
	}
	return r;
}

/* Append printf-style text to a malloc'd string (NULL means empty). */
void
pqcm_appendf(char **buf, const char *fmt,...)
{
	va_list		ap;
	size_t		old = *buf ? strlen(*buf) : 0;
	int			n;
	char	   *r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	r = realloc(*buf, old + (size_t) n + 1);
	if (r == NULL)
	{
		fputs("libpqcm: out of memory\n", stderr);
		abort();
	}
	va_start(ap, fmt);
	vsnprintf(r + old, (size_t) n + 1, fmt, ap);
	va_end(ap);
	*buf = r;
}

/*
 * Read PGCONMGR: auto (default), on or off.  An invalid value sets
 * *bad_value and returns auto; the caller reports it.
 */
PqcmMode
pqcm_mode(const char **bad_value)
{
	const char *v = getenv("PGCONMGR");

	*bad_value = NULL;
	if (v == NULL || v[0] == '\0' || strcasecmp(v, "auto") == 0)
		return PQCM_MODE_AUTO;
	if (strcasecmp(v, "on") == 0)
		return PQCM_MODE_ON;
	if (strcasecmp(v, "off") == 0)
		return PQCM_MODE_OFF;
	*bad_value = v;
	return PQCM_MODE_AUTO;
}

static void
load_known_keywords(void)
{
	PQconninfoOption *d = PQconndefaults();
	int			n = 0;
	int			i;

	if (d == NULL)
		return;
	while (d[n].keyword)
		n++;
	pqcm_known_kw = calloc((size_t) n + 1, sizeof(char *));
	if (pqcm_known_kw)
		for (i = 0; i < n; i++)
			pqcm_known_kw[i] = pqcm_strdup(d[i].keyword);
	PQconninfoFree(d);
}

static bool
known_keyword(const char *kw)
{
	int			i;

	pthread_once(&pqcm_known_once, load_known_keywords);
	if (pqcm_known_kw == NULL)
		return false;
	for (i = 0; pqcm_known_kw[i]; i++)
		if (strcmp(pqcm_known_kw[i], kw) == 0)
			return true;
	return false;
}

/* Start an empty option list (arrays allocated and NULL-terminated). */
void
pqcm_opts_init(PqcmOptions *o)
{
	o->n = 0;
	o->cap = 16;
	o->kw = calloc((size_t) o->cap, sizeof(char *));
	o->val = calloc((size_t) o->cap, sizeof(char *));
	if (o->kw == NULL || o->val == NULL)
		abort();
}

const char *
pqcm_opts_get(const PqcmOptions *o, const char *kw)
{
	int			i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->kw[i], kw) == 0)
			return o->val[i];
	return NULL;
}

/* Set (or replace) an option; val NULL removes it. */
void
pqcm_opts_set(PqcmOptions *o, const char *kw, const char *val)
{
	int			i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->kw[i], kw) == 0)
			break;
	if (i < o->n)
	{
		free(o->val[i]);
		if (val)
		{
			o->val[i] = pqcm_strdup(val);
			return;
		}
		free(o->kw[i]);
		memmove(&o->kw[i], &o->kw[i + 1], sizeof(char *) * (size_t) (o->n - i));
		memmove(&o->val[i], &o->val[i + 1], sizeof(char *) * (size_t) (o->n - i));
		o->n--;
		return;
	}
	if (val == NULL)
		return;
	if (o->n + 2 > o->cap)
	{
		int			cap = o->cap ? o->cap * 2 : 16;
		char	  **k = realloc(o->kw, sizeof(char *) * (size_t) cap);
		char	  **v;

		if (k == NULL)
			abort();
		o->kw = k;
		v = realloc(o->val, sizeof(char *) * (size_t) cap);
		if (v == NULL)
			abort();
		o->val = v;
		o->cap = cap;
	}
	o->kw[o->n] = pqcm_strdup(kw);
	o->val[o->n] = pqcm_strdup(val);
	o->n++;
	o->kw[o->n] = NULL;
	o->val[o->n] = NULL;
}

void
pqcm_opts_copy(PqcmOptions *dst, const PqcmOptions *src)
{
	int			i;

	pqcm_opts_init(dst);
	for (i = 0; i < src->n; i++)
		pqcm_opts_set(dst, src->kw[i], src->val[i]);
}

void
pqcm_opts_free(PqcmOptions *o)
{
	int			i;

	for (i = 0; i < o->n; i++)
	{
		free(o->kw[i]);
		free(o->val[i]);
	}
	free(o->kw);
	free(o->val);
	memset(o, 0, sizeof(*o));
}

/* Same test as libpq: a URI prefix or an '=' makes a connection string. */
static bool
is_connection_string(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 ||
		strncmp(s, "postgres://", 11) == 0 ||
		strchr(s, '=') != NULL;
}

/* Merge every explicit option of a conninfo string or URI. */
static bool
merge_conninfo(PqcmOptions *o, const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *p;
	char	   *err = NULL;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		return false;
	}
	for (p = opts; p->keyword; p++)
		if (p->val != NULL && p->val[0] != '\0')
			pqcm_opts_set(o, p->keyword, p->val);
	PQconninfoFree(opts);
	return true;
}

/*
 * Collect the explicit options of a conninfo string.  Returns false when
 * libpq would refuse the string (it then reports the error itself).
 */
bool
pqcm_opts_from_conninfo(PqcmOptions *o, const char *conninfo)
{
	pqcm_opts_init(o);
	if (conninfo == NULL)
		return true;
	return merge_conninfo(o, conninfo);
}

/*
 * Collect the explicit options of keyword/value arrays, as
 * PQconnectdbParams() reads them: NULL or empty values are ignored, a
 * later keyword wins, and with expand_dbname the first dbname that looks
 * like a connection string is expanded in its place.
 */
bool
pqcm_opts_from_params(PqcmOptions *o, const char *const *keywords,
					  const char *const *values, int expand_dbname)
{
	int			i;
	bool		expanded = false;

	pqcm_opts_init(o);
	if (keywords == NULL)
		return true;
	for (i = 0; keywords[i]; i++)
	{
		const char *v = values ? values[i] : NULL;

		if (!known_keyword(keywords[i]))
			return false;
		if (v == NULL || v[0] == '\0')
			continue;
		if (expand_dbname && !expanded && strcmp(keywords[i], "dbname") == 0 &&
			is_connection_string(v))
		{
			expanded = true;
			pqcm_opts_set(o, "dbname", NULL);
			if (!merge_conninfo(o, v))
				return false;
			continue;
		}
		pqcm_opts_set(o, keywords[i], v);
	}
	return true;
}

/* The options of PQsetdbLogin(), which libpq builds the same way. */
bool
pqcm_opts_from_login(PqcmOptions *o, const char *host, const char *port,
					 const char *options, const char *tty,
					 const char *dbname, const char *login, const char *pwd)
{
	pqcm_opts_init(o);
	(void) tty;
	if (dbname && is_connection_string(dbname))
	{
		if (!merge_conninfo(o, dbname))
			return false;
	}
	else if (dbname && dbname[0])
		pqcm_opts_set(o, "dbname", dbname);
	if (host && host[0])
		pqcm_opts_set(o, "host", host);
	if (port && port[0])
		pqcm_opts_set(o, "port", port);
	if (options && options[0])
		pqcm_opts_set(o, "options", options);
	if (login && login[0])
		pqcm_opts_set(o, "user", login);
	if (pwd && pwd[0])
		pqcm_opts_set(o, "password", pwd);
	return true;
}

/* Strip leading and trailing white space in place. */
static char *
trim(char *s)
{
	char	   *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Look for service "name" in one service file.  Returns 1 when the group
 * was found (its options merged into svc), 0 when not, -1 when the file
 * cannot be used (libpq then reports the problem itself).
 */
static int
read_service_file(const char *path, const char *name, PqcmOptions *svc)
{
	FILE	   *f = fopen(path, "r");
	char		line[1024];
	bool		in_group = false;
	bool		found = false;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f))
	{
		char	   *l = trim(line);
		char	   *eq;

		if (l[0] == '\0' || l[0] == '#')
			continue;
		if (l[0] == '[')
		{
			char	   *end = strchr(l, ']');

			if (found)
				break;
			if (end)
				*end = '\0';
			in_group = strcmp(l + 1, name) == 0;
			found = in_group;
			continue;
		}
		if (!in_group)
			continue;
		eq = strchr(l, '=');
		if (eq == NULL)
		{
			fclose(f);
			return -1;
		}
		*eq = '\0';
		if (pqcm_opts_get(svc, l) == NULL)
			pqcm_opts_set(svc, l, eq + 1);
	}
	fclose(f);
	return found ? 1 : 0;
}

/*
 * Options of the service the request names (service keyword or
 * PGSERVICE), searched where libpq searches: PGSERVICEFILE or
 * ~/.pg_service.conf, then PGSYSCONFDIR/pg_service.conf.  Returns false
 * when the service is named but cannot be read.
 */
static bool
load_service(const PqcmOptions *o, PqcmOptions *svc)
{
	const char *name = pqcm_opts_get(o, "service");
	const char *env;
	char		path[PATH_MAX];
	int			rc = 0;

	pqcm_opts_init(svc);
	if (name == NULL)
		name = getenv("PGSERVICE");
	if (name == NULL || name[0] == '\0')
		return true;

	env = getenv("PGSERVICEFILE");
	if (env && env[0])
		rc = read_service_file(env, name, svc);
	else
	{
		const char *home = getenv("HOME");

		struct passwd pwbuf;
		struct passwd *pw = NULL;
		char		pwtext[1024];

		if (home == NULL || home[0] == '\0')
		{
			if (getpwuid_r(geteuid(), &pwbuf, pwtext, sizeof(pwtext), &pw) != 0)
				pw = NULL;
			home = pw ? pw->pw_dir : NULL;
		}
		if (home)
		{
			snprintf(path, sizeof(path), "%s/.pg_service.conf", home);
			rc = read_service_file(path, name, svc);
		}
	}
	if (rc == 0)
	{
		env = getenv("PGSYSCONFDIR");
		snprintf(path, sizeof(path), "%s/pg_service.conf",
				 env && env[0] ? env : PQCM_SYSCONFDIR);
		rc = read_service_file(path, name, svc);
	}
	return rc == 1;
}

/* Effective value: explicit, else service, else environment, else dflt. */
static const char *
effective(const PqcmOptions *o, const PqcmOptions *svc, const char *kw,
		  const char *envname, const char *dflt)
{
	const char *v = pqcm_opts_get(o, kw);

	if (v && v[0])
		return v;
	v = pqcm_opts_get(svc, kw);
	if (v && v[0])
		return v;
	v = envname ? getenv(envname) : NULL;
	if (v && v[0])
		return v;
	return dflt;
}

/* Split a comma-separated list into a malloc'd array of strings. */
static char **
split_list(const char *s, int *n)
{
	char	  **r;
	int			count = 1;
	const char *p;
	int			i = 0;

	for (p = s; *p; p++)
		if (*p == ',')
			count++;
	r = calloc((size_t) count, sizeof(char *));
	if (r == NULL)
		abort();
	p = s;
	for (;;)
	{
		const char *e = strchr(p, ',');
		size_t		len = e ? (size_t) (e - p) : strlen(p);

		r[i] = malloc(len + 1);
		if (r[i] == NULL)
			abort();
		memcpy(r[i], p, len);
		r[i][len] = '\0';
		i++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*n = count;
	return r;
}

static void
free_list(char **l, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

/* Is this numeric address a loopback address? */
static bool
numeric_loopback(const char *s, bool *numeric)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};

	*numeric = false;
	if (inet_pton(AF_INET, s, &s4.sin_addr) == 1)
	{
		*numeric = true;
		return cm_net_is_loopback((struct sockaddr *) &s4);
	}
	if (inet_pton(AF_INET6, s, &s6.sin6_addr) == 1)
	{
		*numeric = true;
		return cm_net_is_loopback((struct sockaddr *) &s6);
	}
	return false;
}

/* Decide whether an entry may be a conmgr (see docs/client.md). */
static bool
entry_may_be_conmgr(const PqcmEntry *e, PqcmMode mode)
{
	bool		numeric;

	if (mode == PQCM_MODE_OFF)
		return false;
	if (e->hostaddr[0] == '\0' &&
		(e->host[0] == '\0' || e->host[0] == '/' || e->host[0] == '@'))
		return false;			/* Unix-domain socket */
	if (mode == PQCM_MODE_ON)
		return true;
	if (e->hostaddr[0])
		return numeric_loopback(e->hostaddr, &numeric);
	if (numeric_loopback(e->host, &numeric))
		return true;
	if (numeric)
		return false;
	return strcasecmp(e->host, "localhost") == 0;
}

/*
 * Work out the host list and the stage-1 parameters of a request whose
 * explicit options are in r->opts.  Returns false when the request is one
 * libpq must handle alone (invalid, or no entry can be a conmgr).
 */
bool
pqcm_request_init(PqcmRequest *r, PqcmMode mode)
{
	PqcmOptions svc;
	const char *host;
	const char *hostaddr;
	const char *port;
	const char *v;
	char	  **hosts = NULL;
	char	  **addrs = NULL;
	char	  **ports = NULL;
	int			nh = 0,
				na = 0,
				np = 0,
				n,
				i;
	bool		ok = false;

	if (!load_service(&r->opts, &svc))
		goto done;

	host = effective(&r->opts, &svc, "host", "PGHOST", "");
	hostaddr = effective(&r->opts, &svc, "hostaddr", "PGHOSTADDR", "");
	port = effective(&r->opts, &svc, "port", "PGPORT", "5432");

	hosts = split_list(host, &nh);
	addrs = split_list(hostaddr, &na);
	ports = split_list(port, &np);
	r->hostaddr_used = hostaddr[0] != '\0';
	n = nh;
	if (r->hostaddr_used)
	{
		if (host[0] != '\0' && nh != na)
			goto done;			/* libpq: "could not match ..." */
		n = na;
	}
	if (np != 1 && np != n)
		goto done;

	r->entries = calloc((size_t) n, sizeof(PqcmEntry));
	if (r->entries == NULL)
		abort();
	r->nentries = n;
	for (i = 0; i < n; i++)
	{
		PqcmEntry  *e = &r->entries[i];

		e->host = pqcm_strdup(host[0] ? hosts[i] : "");
		e->hostaddr = pqcm_strdup(r->hostaddr_used ? addrs[i] : "");
		e->port = pqcm_strdup(ports[np == 1 ? 0 : i][0] ? ports[np == 1 ? 0 : i] : "5432");
		e->probe = entry_may_be_conmgr(e, mode);
		if (e->probe)
			r->any_probe = true;
	}

	v = effective(&r->opts, &svc, "target_session_attrs",
				  "PGTARGETSESSIONATTRS", "any");
	if (!cm_proto_tsa_parse(v, &r->tsa))
		goto done;
	r->tsa_name = pqcm_strdup(v);

	v = effective(&r->opts, &svc, "connect_timeout", "PGCONNECT_TIMEOUT", "0");
	{
		char	   *end;
		long		t;

		errno = 0;
		t = strtol(v, &end, 10);
		while (isspace((unsigned char) *end))
			end++;
		if (errno != 0 || end == v || *end != '\0' || t > INT_MAX)
			goto done;
		r->connect_timeout = t <= 0 ? 0 : (t == 1 ? 2 : (int) t);
	}

	v = effective(&r->opts, &svc, "application_name", "PGAPPNAME", NULL);
	if (v == NULL)
		v = pqcm_opts_get(&r->opts, "fallback_application_name");
	r->application_name = pqcm_strdup(v ? v : "");
	ok = r->any_probe;

done:
	if (hosts)
		free_list(hosts, nh);
	if (addrs)
		free_list(addrs, na);
	if (ports)
		free_list(ports, np);
	pqcm_opts_free(&svc);
	return ok;
}

void
pqcm_request_free(PqcmRequest *r)
{
	int			i;

	for (i = 0; i < r->nentries; i++)
	{
		free(r->entries[i].host);
		free(r->entries[i].hostaddr);
		free(r->entries[i].port);
	}
	free(r->entries);
	free(r->tsa_name);
	free(r->application_name);
	free(r->error);
	pqcm_opts_free(&r->opts);
	memset(r, 0, sizeof(*r));
}

/*
 * Build the options of one libpq attempt: either the instance conmgr named
 * (host != NULL), or entries [first, first + count) of the list.  timeout
 * > 0 replaces connect_timeout (what is left of it after stage 1).
 */
void
pqcm_request_stage2(const PqcmRequest *r, PqcmOptions *out, int first,
					int count, const char *host, const char *hostaddr,
					const char *port, int timeout)
{
	char		buf[32];

	pqcm_opts_copy(out, &r->opts);
	if (host != NULL)
	{
		pqcm_opts_set(out, "host", host);
		pqcm_opts_set(out, "port", port);
		pqcm_opts_set(out, "hostaddr", hostaddr && hostaddr[0] ? hostaddr : NULL);
	}
	else
	{
		char	   *h = NULL;
		char	   *a = NULL;
		char	   *p = NULL;
		bool		anyhost = false;
		int			i;

		for (i = first; i < first + count; i++)
		{
			const PqcmEntry *e = &r->entries[i];

			pqcm_appendf(&h, "%s%s", i > first ? "," : "", e->host);
			pqcm_appendf(&a, "%s%s", i > first ? "," : "", e->hostaddr);
			pqcm_appendf(&p, "%s%s", i > first ? "," : "", e->port);
			if (e->host[0])
				anyhost = true;
		}
		pqcm_opts_set(out, "host", anyhost ? h : NULL);
		pqcm_opts_set(out, "hostaddr", r->hostaddr_used ? a : NULL);
		pqcm_opts_set(out, "port", p);
		free(h);
		free(a);
		free(p);
	}
	if (timeout > 0)
	{
		snprintf(buf, sizeof(buf), "%d", timeout);
		pqcm_opts_set(out, "connect_timeout", buf);
	}
}
