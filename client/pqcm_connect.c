/*-------------------------------------------------------------------------
 *
 * pqcm_connect.c
 *	  Connecting synchronously (PQconnectdb, PQconnectdbParams,
 *	  PQsetdbLogin) and pinging (PQping, PQpingParams) through conmgr, and
 *	  what every connecting entry point shares: the front that reads
 *	  PGCONMGR and prepares the request, and the making of an established
 *	  connection known.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_connect.c
 *
 *-------------------------------------------------------------------------
 */
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

/* Seconds left until a deadline, rounded up; 0 = no deadline. */
int
pqcm_seconds_left(const struct timespec *d, bool *expired)
{
	int			ms = pqcm_remaining_ms(d);

	*expired = ms == 0;
	if (ms < 0)
		return 0;
	return ms / 1000 + 1 < 2 ? 2 : ms / 1000 + 1;
}

/* Numeric address for hostaddr when the request used hostaddr. */
void
pqcm_instance_hostaddr(const PqcmRequest *r, const char *host, char *buf,
					   size_t cap)
{
	struct addrinfo hints;
	struct addrinfo *res = NULL;

	buf[0] = '\0';
	if (!r->hostaddr_used)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res)
	{
		if (getnameinfo(res->ai_addr, res->ai_addrlen, buf, (socklen_t) cap,
						NULL, 0, NI_NUMERICHOST) != 0)
			buf[0] = '\0';
		freeaddrinfo(res);
	}
}

/* Call the real PQconnectdbParams on an option list. */
static PGconn *
real_connect(const PqcmOptions *o)
{
	PGconn	   *conn;

	pqcm_inside++;
	conn = pqcm_real.connectdbParams((const char *const *) o->kw,
									 (const char *const *) o->val, 0);
	pqcm_inside--;
	return conn;
}

/* A connection object in CONNECTION_BAD state, made without network. */
PGconn *
pqcm_make_bad_conn(void)
{
	static const char *const kw[] = {"sslmode", NULL};
	static const char *const val[] = {"invalid", NULL};
	PGconn	   *conn;

	pqcm_inside++;
	conn = pqcm_real.connectdbParams(kw, val, 0);
	pqcm_inside--;
	return conn;
}

/*
 * Make an established connection known: keep the conmgr socket, duplicate
 * the SQL socket for the watcher, register the backend with conmgr.
 */
void
pqcm_establish(PqcmConn *c, int cm_fd)
{
	int			sfd;

	pthread_mutex_lock(&pqcm_lock);
	c->cm_fd = cm_fd;
	c->state = PQCM_ESTABLISHED;
	c->failed = false;
	c->partial_since.tv_sec = 0;
	sfd = pqcm_real.socket(c->conn);
	c->sql_fd = sfd >= 0 ? fcntl(sfd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&pqcm_lock);
	pqcm_hook_notices(c);
	pqcm_inside++;
	(void) pqcm_send_register(cm_fd, c->conn);
	pqcm_inside--;
	pqcm_watcher_start();
	pqcm_watcher_poke();
}

/* The message for a connection that failed: every entry's reason. */
static PGconn *
connect_failed(PGconn *last_bad, char *errors, PqcmRequest *r, PqcmMode mode)
{
	PqcmConn   *c;

	if (last_bad == NULL)
		last_bad = pqcm_make_bad_conn();
	c = pqcm_track_new(last_bad);
	c->state = PQCM_FAILED_CONNECT;
	c->errmsg = errors ? errors : pqcm_strdup("could not connect\n");
	c->req = *r;
	c->mode = mode;
	memset(r, 0, sizeof(*r));
	return last_bad;
}

/*
 * Connect synchronously: walk the host list in written order.  Entries
 * that may be a conmgr are probed; a conmgr's instance is connected with
 * the remaining connect_timeout; every other run of entries is handed to
 * libpq as a shorter host list.  Takes ownership of *r.
 */
static PGconn *
connect_sync(PqcmRequest *r, PqcmMode mode)
{
	PGconn	   *last_bad = NULL;
	char	   *errors = NULL;
	int			i = 0;

	while (i < r->nentries)
	{
		PqcmEntry  *e = &r->entries[i];
		PqcmOptions o;
		PGconn	   *conn;
		int			count = 1;

		if (e->probe && !pqcm_plain_cached(e))
		{
			PqcmProbe	p;
			struct timespec dl;
			PqcmProbeResult res;

			pqcm_deadline(&dl, r->connect_timeout);
			pqcm_probe_init(&p, e, mode != PQCM_MODE_ON, r->tsa, r->application_name);
			res = p.addrs ? pqcm_probe_run(&p, &dl) : PQCM_PROBE_PLAIN;
			if (res == PQCM_PROBE_PLAIN && p.addrs)
				pqcm_plain_remember(e);
			if (res == PQCM_PROBE_INSTANCE)
			{
				char		addr[64];
				char		port[16];
				bool		expired;
				int			left = pqcm_seconds_left(&dl, &expired);
				int			cm_fd = p.fd;

				p.fd = -1;
				pqcm_probe_close(&p);
				pqcm_instance_hostaddr(r, p.instance.host.str, addr, sizeof(addr));
				snprintf(port, sizeof(port), "%u", (unsigned) p.instance.port);
				pqcm_request_stage2(r, &o, 0, 0, p.instance.host.str, addr, port, left);
				conn = real_connect(&o);
				pqcm_opts_free(&o);
				if (pqcm_real.status(conn) == CONNECTION_OK)
				{
					PqcmConn   *c = pqcm_track_new(conn);

					c->req = *r;
					c->mode = mode;
					memset(r, 0, sizeof(*r));
					pqcm_establish(c, cm_fd);
					free(errors);
					if (last_bad)
						pqcm_real.finish(last_bad);
					return conn;
				}
				close(cm_fd);
				pqcm_appendf(&errors, "%s", pqcm_real.errorMessage(conn));
				if (last_bad)
					pqcm_real.finish(last_bad);
				last_bad = conn;
				i++;
				continue;
			}
			if (res == PQCM_PROBE_NO_INSTANCE || res == PQCM_PROBE_ERROR)
			{
				pqcm_appendf(&errors, "%s\n", p.message);
				pqcm_probe_close(&p);
				i++;
				continue;
			}
			/* a plain server, or nothing listening: libpq's business */
			pqcm_probe_close(&p);
		}
		else if (!e->probe)
		{
			while (i + count < r->nentries && !r->entries[i + count].probe)
				count++;
		}
		pqcm_request_stage2(r, &o, i, count, NULL, NULL, NULL, 0);
		conn = real_connect(&o);
		pqcm_opts_free(&o);
		if (pqcm_real.status(conn) == CONNECTION_OK)
		{
			free(errors);
			if (last_bad)
				pqcm_real.finish(last_bad);
			pqcm_request_free(r);
			return conn;
		}
		pqcm_appendf(&errors, "%s", pqcm_real.errorMessage(conn));
		if (last_bad)
			pqcm_real.finish(last_bad);
		last_bad = conn;
		i += count;
	}
	return connect_failed(last_bad, errors, r, mode);
}

/*
 * Common front of every connecting entry point: reads PGCONMGR and prepares
 * the request.  Returns true when Connection Manager takes the request
 * (*mode set).  Otherwise *failed is the failed connection to return when
 * PGCONMGR is invalid, or NULL when the request is libpq's alone (the
 * caller then calls the real function).
 */
bool
pqcm_request_front(PqcmRequest *r, PqcmMode *mode, PGconn **failed)
{
	const char *bad;

	*failed = NULL;
	*mode = pqcm_mode(&bad);
	if (bad)
	{
		char	   *msg = NULL;

		pqcm_opts_free(&r->opts);
		pqcm_appendf(&msg, "invalid value \"%s\" for environment variable PGCONMGR: "
					 "expected \"auto\", \"on\" or \"off\"\n", bad);
		*failed = connect_failed(NULL, msg, r, PQCM_MODE_OFF);
		return false;
	}
	if (*mode == PQCM_MODE_OFF || !pqcm_request_init(r, *mode))
	{
		pqcm_request_free(r);
		return false;
	}
	return true;
}

/*
 * Front of the synchronous entry points.  Returns NULL when the request is
 * libpq's alone.
 */
static PGconn *
connect_front(PqcmRequest *r)
{
	PqcmMode	mode;
	PGconn	   *failed;

	if (!pqcm_request_front(r, &mode, &failed))
		return failed;
	return connect_sync(r, mode);
}

PGconn *
PQconnectdbParams(const char *const *keywords, const char *const *values,
				  int expand_dbname)
{
	PqcmRequest r;
	PGconn	   *conn;

	REAL();
	if (pqcm_inside)
		return pqcm_real.connectdbParams(keywords, values, expand_dbname);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.connectdbParams(keywords, values, expand_dbname);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = pqcm_real.connectdbParams(keywords, values, expand_dbname);
		pqcm_inside--;
	}
	return conn;
}

PGconn *
PQconnectdb(const char *conninfo)
{
	PqcmRequest r;
	PGconn	   *conn;

	REAL();
	if (pqcm_inside)
		return pqcm_real.connectdb(conninfo);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_conninfo(&r.opts, conninfo))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.connectdb(conninfo);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = pqcm_real.connectdb(conninfo);
		pqcm_inside--;
	}
	return conn;
}

PGconn *
PQsetdbLogin(const char *pghost, const char *pgport, const char *pgoptions,
			 const char *pgtty, const char *dbName, const char *login,
			 const char *pwd)
{
	PqcmRequest r;
	PGconn	   *conn;

	REAL();
	if (pqcm_inside)
		return pqcm_real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
	memset(&r, 0, sizeof(r));
	if (!pqcm_opts_from_login(&r.opts, pghost, pgport, pgoptions, pgtty,
							  dbName, login, pwd))
	{
		pqcm_opts_free(&r.opts);
		return pqcm_real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
	}
	conn = connect_front(&r);
	if (conn == NULL)
	{
		pqcm_inside++;
		conn = pqcm_real.setdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
		pqcm_inside--;
	}
	return conn;
}

/*
 * PQping/PQpingParams: an entry that is a conmgr is answered by pinging the
 * instance it names (PQPING_NO_RESPONSE when it names none); other entries
 * are pinged by libpq, in written order, until one answers PQPING_OK.
 */
static PGPing
ping_sync(PqcmRequest *r, PqcmMode mode)
{
	PGPing		result = PQPING_NO_RESPONSE;
	int			i = 0;

	while (i < r->nentries)
	{
		PqcmEntry  *e = &r->entries[i];
		PqcmOptions o;
		int			count = 1;
		bool		have_opts = false;

		if (e->probe && !pqcm_plain_cached(e))
		{
			PqcmProbe	p;
			struct timespec dl;
			PqcmProbeResult res;

			pqcm_deadline(&dl, r->connect_timeout);
			pqcm_probe_init(&p, e, mode != PQCM_MODE_ON, r->tsa, r->application_name);
			res = p.addrs ? pqcm_probe_run(&p, &dl) : PQCM_PROBE_PLAIN;
			if (res == PQCM_PROBE_PLAIN && p.addrs)
				pqcm_plain_remember(e);
			if (res == PQCM_PROBE_INSTANCE)
			{
				char		addr[64];
				char		port[16];
				bool		expired;

				pqcm_instance_hostaddr(r, p.instance.host.str, addr, sizeof(addr));
				snprintf(port, sizeof(port), "%u", (unsigned) p.instance.port);
				pqcm_request_stage2(r, &o, 0, 0, p.instance.host.str, addr, port,
									pqcm_seconds_left(&dl, &expired));
				have_opts = true;
			}
			else if (res == PQCM_PROBE_NO_INSTANCE || res == PQCM_PROBE_ERROR)
				result = PQPING_NO_RESPONSE;
			else
			{
				pqcm_request_stage2(r, &o, i, 1, NULL, NULL, NULL, 0);
				have_opts = true;
			}
			pqcm_probe_close(&p);
		}
		else
		{
			while (!e->probe && i + count < r->nentries && !r->entries[i + count].probe)
				count++;
			pqcm_request_stage2(r, &o, i, count, NULL, NULL, NULL, 0);
			have_opts = true;
		}
		if (have_opts)
		{
			pqcm_inside++;
			result = pqcm_real.pingParams((const char *const *) o.kw,
										  (const char *const *) o.val, 0);
			pqcm_inside--;
			pqcm_opts_free(&o);
			if (result == PQPING_OK)
				break;
		}
		i += count;
	}
	pqcm_request_free(r);
	return result;
}

/* Common front of the ping functions; false: libpq's business alone. */
static bool
ping_front(PqcmRequest *r, PGPing *result)
{
	const char *bad;
	PqcmMode	mode = pqcm_mode(&bad);

	if (bad)
	{
		pqcm_request_free(r);
		*result = PQPING_NO_ATTEMPT;
		return true;
	}
	if (mode == PQCM_MODE_OFF || !pqcm_request_init(r, mode))
	{
		pqcm_request_free(r);
		return false;
	}
	*result = ping_sync(r, mode);
	return true;
}

PGPing
PQpingParams(const char *const *keywords, const char *const *values,
			 int expand_dbname)
{
	PqcmRequest r;
	PGPing		result;

	REAL();
	memset(&r, 0, sizeof(r));
	if (pqcm_inside == 0 &&
		pqcm_opts_from_params(&r.opts, keywords, values, expand_dbname) &&
		ping_front(&r, &result))
		return result;
	pqcm_request_free(&r);
	pqcm_inside++;
	result = pqcm_real.pingParams(keywords, values, expand_dbname);
	pqcm_inside--;
	return result;
}

PGPing
PQping(const char *conninfo)
{
	PqcmRequest r;
	PGPing		result;

	REAL();
	memset(&r, 0, sizeof(r));
	if (pqcm_inside == 0 && pqcm_opts_from_conninfo(&r.opts, conninfo) &&
		ping_front(&r, &result))
		return result;
	pqcm_request_free(&r);
	pqcm_inside++;
	result = pqcm_real.ping(conninfo);
	pqcm_inside--;
	return result;
}
