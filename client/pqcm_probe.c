/*-------------------------------------------------------------------------
 *
 * pqcm_probe.c
 *	  Stage 1 of a connection through Connection Manager: recognise conmgr
 *	  on a host entry and ask it for an instance; then the registration of
 *	  the established connection and the reading of failure notices.
 *
 * Recognition sends PostgreSQL's GSSENCRequest.  A PostgreSQL server
 * answers one byte ('G' or 'N') and logs nothing when we close; conmgr
 * answers with its greeting (see common/cm_protocol.h).  Before the route
 * request, the user holding the socket that answered is checked
 * (pqcm_peer.c), so that no other local user can stand in for conmgr.
 * The probe is a non-blocking state machine so that PQconnectPoll() can
 * drive it; the walk over the host list (pqcm_walk.c) runs it for every
 * entry point, waiting with poll() for the synchronous ones.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_probe.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pqcm_int.h"

enum
{
	PS_START = 0,
	PS_CONNECTING,
	PS_SEND_GSS,
	PS_READ_GREETING,
	PS_SEND_ROUTE,
	PS_READ_ANSWER,
	PS_DONE
};

/*
 * Entries recently found to be plain PostgreSQL servers.  Recognising a
 * server costs it a backend start (the postmaster forks for every
 * connection, even one that only asks for GSS encryption), as much as the
 * real connection; a program that connects again and again to a server on
 * localhost therefore probes it once per PQCM_PLAIN_TTL_S seconds only.
 */
#define PQCM_PLAIN_CACHE	32
#define PQCM_PLAIN_TTL_S	60

typedef struct PlainEntry
{
	char		key[300];
	time_t		until;			/* monotonic seconds (cm_time.h) */
} PlainEntry;

static PlainEntry plain_cache[PQCM_PLAIN_CACHE];
pthread_mutex_t pqcm_plain_lock = PTHREAD_MUTEX_INITIALIZER;

static void
plain_key(const PqcmEntry *e, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s|%s|%s", e->host, e->hostaddr, e->port);
}

static time_t
mono_seconds(void)
{
	return (time_t) (cm_mono_ms() / 1000);
}

bool
pqcm_plain_cached(const PqcmEntry *e)
{
	char		key[300];
	time_t		now = mono_seconds();
	bool		found = false;
	int			i;

	plain_key(e, key, sizeof(key));
	pthread_mutex_lock(&pqcm_plain_lock);
	for (i = 0; i < PQCM_PLAIN_CACHE; i++)
		if (plain_cache[i].until > now && strcmp(plain_cache[i].key, key) == 0)
		{
			found = true;
			break;
		}
	pthread_mutex_unlock(&pqcm_plain_lock);
	return found;
}

void
pqcm_plain_remember(const PqcmEntry *e)
{
	char		key[300];
	time_t		now = mono_seconds();
	int			i,
				slot = 0;

	plain_key(e, key, sizeof(key));
	pthread_mutex_lock(&pqcm_plain_lock);
	for (i = 0; i < PQCM_PLAIN_CACHE; i++)
	{
		if (strcmp(plain_cache[i].key, key) == 0)
		{
			slot = i;
			break;
		}
		if (plain_cache[i].until < plain_cache[slot].until)
			slot = i;			/* oldest (or free) slot */
	}
	snprintf(plain_cache[slot].key, sizeof(plain_cache[slot].key), "%s", key);
	plain_cache[slot].until = now + PQCM_PLAIN_TTL_S;
	pthread_mutex_unlock(&pqcm_plain_lock);
}

int64_t
pqcm_deadline(int seconds)
{
	if (seconds <= 0)
		return 0;				/* no deadline */
	return cm_mono_ms() + (int64_t) seconds * 1000;
}

/* Milliseconds left before a deadline (-1: no deadline, 0: expired). */
int
pqcm_remaining_ms(int64_t deadline)
{
	int64_t		ms;

	if (deadline == 0)
		return -1;
	ms = deadline - cm_mono_ms();
	if (ms <= 0)
		return 0;
	return ms > 0x7fffffff ? 0x7fffffff : (int) ms;
}

/*
 * Prepare a probe of one host entry.  Name resolution happens here (it
 * may block, as it does in libpq), and so does that of the users who may
 * run conmgr (PGCONMGRUSER); with loopback_only, addresses that are
 * not loopback are dropped since conmgr listens on loopback only.
 */
void
pqcm_probe_init(PqcmProbe *p, const PqcmEntry *e, bool loopback_only,
				uint8_t tsa, const char *application_name)
{
	struct addrinfo hints;
	const char *node = e->hostaddr[0] ? e->hostaddr : e->host;
	int			rc;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->tsa = tsa;
	snprintf(p->application_name, sizeof(p->application_name), "%s",
			 application_name ? application_name : "");
	snprintf(p->label, sizeof(p->label), "\"%s\", port %s",
			 e->host[0] ? e->host : e->hostaddr, e->port);
	pqcm_peer_rule_init(&p->peer_rule);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = e->hostaddr[0] ? AI_NUMERICHOST : 0;
	rc = getaddrinfo(node, e->port, &hints, &p->addrs);
	if (rc != 0)
	{
		/* libpq reports an unresolvable name itself */
		p->addrs = NULL;
		snprintf(p->message, sizeof(p->message), "%s", gai_strerror(rc));
	}
	if (loopback_only && p->addrs)
	{
		struct addrinfo **link = &p->addrs;

		while (*link)
		{
			struct addrinfo *a = *link;
			if (cm_net_is_loopback(a->ai_addr))
				link = &a->ai_next;
			else
			{
				/* unlink a; freeaddrinfo() frees a whole chain */
				*link = a->ai_next;
				a->ai_next = NULL;
				freeaddrinfo(a);
			}
		}
	}
	p->cur = p->addrs;
}

void
pqcm_probe_close(PqcmProbe *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (p->addrs)
		freeaddrinfo(p->addrs);
	p->addrs = NULL;
	p->cur = NULL;
}

/* Start a non-blocking connect to p->cur or the next address. */
static PqcmProbeResult
start_connect(PqcmProbe *p)
{
	while (p->cur)
	{
		struct addrinfo *a = p->cur;

		p->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
					   a->ai_protocol);
		if (p->fd < 0)
		{
			p->cur = a->ai_next;
			continue;
		}
		if (connect(p->fd, a->ai_addr, a->ai_addrlen) == 0)
		{
			p->state = PS_SEND_GSS;
			return PQCM_PROBE_PENDING;
		}
		if (errno == EINPROGRESS)
		{
			p->state = PS_CONNECTING;
			p->want_events = POLLOUT;
			return PQCM_PROBE_PENDING;
		}
		close(p->fd);
		p->fd = -1;
		p->cur = a->ai_next;
	}
	p->state = PS_DONE;
	return PQCM_PROBE_DOWN;
}

/* Send what is left of p->out; false on error (message set). */
static bool
flush_out(PqcmProbe *p, bool *done)
{
	*done = false;
	while (p->outpos < p->outlen)
	{
		ssize_t		n = send(p->fd, p->out + p->outpos, p->outlen - p->outpos,
							 MSG_NOSIGNAL);

		if (n < 0)
		{
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			{
				p->want_events = POLLOUT;
				return true;
			}
			snprintf(p->message, sizeof(p->message),
					 "could not send to conmgr at %s: %s", p->label, strerror(errno));
			return false;
		}
		p->outpos += (size_t) n;
	}
	*done = true;
	return true;
}

/* Read what is available into p->in; returns -1 error, 0 EOF, 1 ok. */
static int
fill_in(PqcmProbe *p)
{
	ssize_t		n;

	if (p->inlen >= sizeof(p->in))
		return 1;
	n = recv(p->fd, p->in + p->inlen, sizeof(p->in) - p->inlen, 0);
	if (n < 0)
	{
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 1;
		return -1;
	}
	if (n == 0)
		return 0;
	p->inlen += (size_t) n;
	return 1;
}

static PqcmProbeResult
probe_fail(PqcmProbe *p, PqcmProbeResult r)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->state = PS_DONE;
	return r;
}

/*
 * An instance must be one TCP host: a host name or address (no list
 * separator, no Unix-socket path, no white space) and a port.
 */
static bool
instance_valid(const CmProtoInstance *inst)
{
	const char *h = inst->host.str;
	const char *c;

	if (inst->port == 0 || h[0] == '\0' || h[0] == '/' || h[0] == '@')
		return false;
	for (c = h; *c; c++)
		if (*c == ',' || *c == '\\' || *c == '\'' || *c == '=' ||
			(unsigned char) *c <= ' ' || (unsigned char) *c == 0x7f)
			return false;
	return true;
}

/*
 * Advance the probe as far as it can go without blocking.  While the
 * result is PQCM_PROBE_PENDING, the caller waits for p->want_events on
 * p->fd and calls again.  On PQCM_PROBE_INSTANCE p->fd is the open
 * conmgr socket (the caller keeps it); on every other result it is closed.
 */
PqcmProbeResult
pqcm_probe_step(PqcmProbe *p)
{
	for (;;)
	{
		bool		done;
		int			rc;

		switch (p->state)
		{
			case PS_START:
				{
					PqcmProbeResult r = start_connect(p);

					if (r != PQCM_PROBE_PENDING || p->state == PS_CONNECTING)
						return r;
					break;
				}
			case PS_CONNECTING:
				{
					int			err = 0;
					socklen_t	len = sizeof(err);
					struct pollfd pfd = {p->fd, POLLOUT, 0};

					if (poll(&pfd, 1, 0) == 0)
					{
						p->want_events = POLLOUT;
						return PQCM_PROBE_PENDING;
					}
					if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
						err = errno;
					if (err != 0)
					{
						/* refused or unreachable: next address */
						close(p->fd);
						p->fd = -1;
						p->cur = p->cur->ai_next;
						p->state = PS_START;
						break;
					}
					p->state = PS_SEND_GSS;
					break;
				}
			case PS_SEND_GSS:
				if (p->outlen == 0)
				{
					p->outlen = cm_proto_encode_gss_request(p->out, sizeof(p->out));
					p->outpos = 0;
				}
				if (!flush_out(p, &done))
					return probe_fail(p, PQCM_PROBE_PLAIN);
				if (!done)
					return PQCM_PROBE_PENDING;
				p->state = PS_READ_GREETING;
				p->outlen = p->outpos = 0;
				break;
			case PS_READ_GREETING:
				{
					size_t		flen = 0;
					uint16_t	version = 0;
					const char *reason = NULL;
					CmProtoStatus st;

					rc = fill_in(p);
					if (rc <= 0)
						return probe_fail(p, PQCM_PROBE_PLAIN);
					st = cm_proto_parse_greeting(p->in, p->inlen, &flen, &version,
												 &reason);
					if (st == CM_PROTO_INCOMPLETE)
					{
						if (p->inlen >= sizeof(p->in))
							return probe_fail(p, PQCM_PROBE_PLAIN);
						p->want_events = POLLIN;
						return PQCM_PROBE_PENDING;
					}
					if (st != CM_PROTO_OK)
						return probe_fail(p, PQCM_PROBE_PLAIN);
					memmove(p->in, p->in + flen, p->inlen - flen);
					p->inlen -= flen;
					(void) version;

					/*
					 * A conmgr, by its greeting: believe it only if an
					 * expected user holds its socket.  Otherwise the entry
					 * fails (it is not tried as a server either), before
					 * anything of the application is sent.
					 */
					if (!pqcm_peer_trusted(p->fd, &p->peer_rule, p->label,
										   p->message, sizeof(p->message)))
						return probe_fail(p, PQCM_PROBE_ERROR);

					/* we speak 1.0 only, which every conmgr speaks */
					{
						CmProtoMsg	m;

						memset(&m, 0, sizeof(m));
						m.type = CM_MSG_ROUTE;
						m.u.route.version = CM_PROTO_VERSION_1_0;
						m.u.route.tsa = p->tsa;
						m.u.route.client_pid = (uint32_t) getpid();
						cm_proto_set_string(&m.u.route.application_name,
											p->application_name);
						p->outlen = cm_proto_encode(CM_DIR_TO_CONMGR_APP, &m,
													p->out, sizeof(p->out));
						p->outpos = 0;
						if (p->outlen == 0)
						{
							snprintf(p->message, sizeof(p->message),
									 "could not encode the route request for conmgr at %s",
									 p->label);
							return probe_fail(p, PQCM_PROBE_ERROR);
						}
					}
					p->state = PS_SEND_ROUTE;
					break;
				}
			case PS_SEND_ROUTE:
				if (!flush_out(p, &done))
					return probe_fail(p, PQCM_PROBE_ERROR);
				if (!done)
					return PQCM_PROBE_PENDING;
				p->state = PS_READ_ANSWER;
				break;
			case PS_READ_ANSWER:
				{
					size_t		flen = 0;
					const char *reason = NULL;
					CmProtoStatus st;
					CmProtoMsg	m;

					st = cm_proto_next(CM_DIR_TO_CLIENT, p->in, p->inlen,
									   &flen, &m, &reason);
					if (st == CM_PROTO_INCOMPLETE)
					{
						rc = fill_in(p);
						if (rc < 0)
						{
							snprintf(p->message, sizeof(p->message),
									 "could not receive from conmgr at %s: %s",
									 p->label, strerror(errno));
							return probe_fail(p, PQCM_PROBE_ERROR);
						}
						if (rc == 0)
						{
							snprintf(p->message, sizeof(p->message),
									 "conmgr at %s closed the connection before answering",
									 p->label);
							return probe_fail(p, PQCM_PROBE_ERROR);
						}
						st = cm_proto_next(CM_DIR_TO_CLIENT, p->in, p->inlen,
										   &flen, &m, &reason);
						if (st == CM_PROTO_INCOMPLETE)
						{
							p->want_events = POLLIN;
							return PQCM_PROBE_PENDING;
						}
					}
					if (st != CM_PROTO_OK)
					{
						snprintf(p->message, sizeof(p->message),
								 "invalid answer from conmgr at %s: %s",
								 p->label, reason ? reason : "malformed message");
						return probe_fail(p, PQCM_PROBE_ERROR);
					}
					memmove(p->in, p->in + flen, p->inlen - flen);
					p->inlen -= flen;
					p->state = PS_DONE;
					switch (m.type)
					{
						case CM_MSG_INSTANCE:
							p->instance = m.u.instance;
							if (!instance_valid(&p->instance))
							{
								snprintf(p->message, sizeof(p->message),
										 "conmgr at %s named an invalid instance (host \"%s\", port %u)",
										 p->label, p->instance.host.str,
										 (unsigned) p->instance.port);
								return probe_fail(p, PQCM_PROBE_ERROR);
							}
							return PQCM_PROBE_INSTANCE;
						case CM_MSG_NO_INSTANCE:
							snprintf(p->message, sizeof(p->message),
									 "conmgr at %s has no instance for target_session_attrs=%s: %s",
									 p->label, cm_proto_tsa_name(p->tsa),
									 m.u.notice.message.str);
							return probe_fail(p, PQCM_PROBE_NO_INSTANCE);
						case CM_MSG_REFUSE:
							snprintf(p->message, sizeof(p->message),
									 "conmgr at %s refused the request (%s): %s",
									 p->label, cm_proto_reason_name(m.u.notice.reason),
									 m.u.notice.message.str);
							return probe_fail(p, PQCM_PROBE_NO_INSTANCE);
						default:
							snprintf(p->message, sizeof(p->message),
									 "unexpected message \"%s\" from conmgr at %s",
									 cm_proto_type_name(CM_DIR_TO_CLIENT, m.type),
									 p->label);
							return probe_fail(p, PQCM_PROBE_ERROR);
					}
				}
			case PS_DONE:
			default:
				snprintf(p->message, sizeof(p->message), "probe already finished");
				return PQCM_PROBE_ERROR;
		}
	}
}

/*
 * Tell conmgr which backend serves this connection and from which local
 * address and port, so that the server can terminate exactly these
 * sessions.  Best effort: a failure here only loses the precise mode.
 */
bool
pqcm_send_register(int cm_fd, PGconn *conn)
{
	struct sockaddr_storage ss;
	socklen_t	len = sizeof(ss);
	CmProtoMsg	m;
	uint8_t		buf[64];
	size_t		n;

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_APP_REGISTER;
	m.u.app_register.backend_pid = (uint32_t) PQbackendPID(conn);
	if (getsockname(PQsocket(conn), (struct sockaddr *) &ss, &len) != 0 ||
		!cm_net_addr_from_sockaddr((struct sockaddr *) &ss,
								   &m.u.app_register.local))
		return false;
	n = cm_proto_encode(CM_DIR_TO_CONMGR_APP, &m, buf, sizeof(buf));
	if (n == 0)
		return false;
	return send(cm_fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t) n;
}

/*
 * Look at the conmgr socket without consuming anything (so that it stays
 * readable for the application).  Returns 0 when nothing is there yet,
 * 2 when part of a message is there, 1 with msg set when conmgr reported
 * a failure or closed the socket.
 */
int
pqcm_check_notice(int cm_fd, char *msg, size_t msgcap)
{
	uint8_t		buf[CM_PROTO_MAX_MSG];
	ssize_t		n;
	size_t		flen = 0;
	const char *reason = NULL;
	CmProtoStatus st;
	CmProtoMsg	m;

	n = recv(cm_fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
	{
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		snprintf(msg, msgcap, "connection to conmgr lost: %s", strerror(errno));
		return 1;
	}
	if (n == 0)
	{
		snprintf(msg, msgcap, "conmgr closed its connection (conmgr stopped or failed)");
		return 1;
	}
	st = cm_proto_next(CM_DIR_TO_CLIENT, buf, (size_t) n, &flen, &m, &reason);
	if (st == CM_PROTO_INCOMPLETE)
		return 2;
	if (st != CM_PROTO_OK)
	{
		snprintf(msg, msgcap, "invalid message from conmgr: %s",
				 reason ? reason : "malformed");
		return 1;
	}
	if (m.type == CM_MSG_FAILURE)
		snprintf(msg, msgcap, "conmgr reported a failure of the instance (%s): %s",
				 cm_proto_reason_name(m.u.notice.reason), m.u.notice.message.str);
	else
		snprintf(msg, msgcap, "unexpected message \"%s\" from conmgr",
				 cm_proto_type_name(CM_DIR_TO_CLIENT, m.type));
	return 1;
}
