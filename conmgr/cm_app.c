/*-------------------------------------------------------------------------
 *
 * cm_app.c
 *	  Application connections: recognition of the first packet, stage-1
 *	  route requests, registrations, and failure notices.
 *
 * conmgr listens on 127.0.0.1 and ::1 only.  A connection's first packet
 * is classified like the postmaster does (cm_proto_peek_pg_startup):
 * GSSENCRequest is how the Connection Manager client opens the dialogue;
 * SSLRequest or a StartupMessage come from a stock PostgreSQL client that
 * reached conmgr by mistake and get a readable PostgreSQL error.
 *
 * After the greeting the client sends a route request, which is answered
 * from the current knowledge of the instances (no trial connections), or
 * with "no instance" while conmgr stops, then
 * the registration of its established SQL connection.  The socket then stays
 * open for the life of that SQL connection: conmgr writes a failure notice
 * and closes it when the instance fails, when its attributes no longer match
 * the connection's target_session_attrs, or on "cm_ctl stop -m fast".
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_app.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_log.h"
#include "cm_net.h"
#include "cm_sockdiag.h"
#include "conmgr.h"

/* Rate limits of the messages an application can cause at will. */
static CmLogLimit limit_stock_client;
static CmLogLimit limit_no_instance[CM_TSA_MAX + 1];
static CmLogLimit limit_protocol;
static CmLogLimit limit_handshake;
static CmLogLimit limit_register;
static CmLogLimit limit_fds;
static CmLogLimit limit_per_user;
static CmLogLimit limit_sockdiag;
static CmLogLimit limit_register_owner;

/* Application connections per local user (few users: a short array). */
typedef struct CmUserCount
{
	uid_t		uid;
	int			count;
} CmUserCount;

/* Application connections closed, freed by cm_app_free_closed (CmApp.node). */
static CmList closed_apps;

static CmUserCount *user_counts = NULL;
static int	nuser_counts = 0;
static int	user_counts_cap = 0;

static void app_read_cb(struct bufferevent *bev, void *arg);

/* The connections of uid counted now, or NULL when it has none. */
static CmUserCount *
user_count_find(uid_t uid)
{
	int			i;

	for (i = 0; i < nuser_counts; i++)
		if (user_counts[i].uid == uid)
			return &user_counts[i];
	return NULL;
}

/* Count one more connection of uid; false when out of memory. */
static bool
user_count_add(uid_t uid)
{
	CmUserCount *u = user_count_find(uid);

	if (u == NULL)
	{
		if (nuser_counts == user_counts_cap)
		{
			int			cap = user_counts_cap ? user_counts_cap * 2 : 8;
			CmUserCount *p = realloc(user_counts, (size_t) cap * sizeof(CmUserCount));

			if (p == NULL)
				return false;
			user_counts = p;
			user_counts_cap = cap;
		}
		u = &user_counts[nuser_counts++];
		u->uid = uid;
		u->count = 0;
	}
	u->count++;
	return true;
}

static void
user_count_remove(uid_t uid)
{
	CmUserCount *u = user_count_find(uid);

	if (u && --u->count == 0)
		*u = user_counts[--nuser_counts];
}

/*
 * Another application connection routed to inst that has registered
 * backend_pid, or NULL.  The watchdog keys registrations by backend PID:
 * its unregistration ('K') removes whichever registration of that PID this
 * conmgr made.  So a connection that goes away unregisters its PID only
 * when no other connection still holds a registration of it; otherwise a
 * connection that registered someone else's PID (which the watchdog
 * refuses: the address does not match) would remove that registration by
 * closing.  A registration left behind for a session that ended is
 * harmless: the terminator matches PID and client port, and the watchdog
 * drops it when its table is full.
 */
static CmApp *
app_other_holder(CmInstance *inst, const CmApp *app, uint32_t backend_pid)
{
	CmListIter	it;

	cm_list_foreach(it, &inst->apps)
	{
		CmApp	   *a = cm_list_container(CmApp, inst_node, it.cur);

		if (a != app && a->state == CM_APP_REGISTERED &&
			a->backend_pid == backend_pid)
			return a;
	}
	return NULL;
}

/*
 * What follows from an application connection's state: it counts against
 * max_app_connections (and its user's limit) from its acceptance until it
 * starts closing; it is on its instance's list when routed or registered;
 * it holds a descriptor from its acceptance (or refusal) until it is
 * closed.
 */
static bool
app_state_counted(CmAppState s)
{
	return s >= CM_APP_STARTUP && s <= CM_APP_REGISTERED;
}

static bool
app_state_routed(CmAppState s)
{
	return s == CM_APP_ROUTED || s == CM_APP_REGISTERED;
}

static bool
app_state_holds_fd(CmAppState s)
{
	return s != CM_APP_NEW && s != CM_APP_CLOSED;
}

/*
 * Take the application off its instance's list; a registered one is
 * unregistered at the watchdog unless another connection holds the same
 * backend PID (app_other_holder).
 */
static void
app_leave_instance(CmApp *app)
{
	CmInstance *inst = app->inst;

	/*
	 * Nothing is forwarded to an instance that is not up: do not look for
	 * another holder then.  When an instance fails, every one of its
	 * connections is detached in turn, and that scan of the instance's
	 * connections would make the notification quadratic.
	 */
	if (app->state == CM_APP_REGISTERED && inst->state == CM_INST_UP &&
		app_other_holder(inst, app, app->backend_pid) == NULL)
		cm_instance_forward_session(inst, CM_MSG_UNREGISTER,
									app->backend_pid, &app->local);
	cm_list_delete(&inst->apps, &app->inst_node);
	inst->napps--;
	app->inst = NULL;
}

/* The connection no longer counts against max_app_connections. */
static void
app_uncount(CmApp *app)
{
	cm_server.napps--;
	if (app->uid_known)
		user_count_remove(app->uid);
	if (cm_server.refusing &&
		cm_server.napps < cm_server.cfg.max_app_connections)
	{
		cm_info("accepting application connections again; %llu refused while max_app_connections (%d) was reached",
				(unsigned long long) cm_server.refused_since,
				cm_server.cfg.max_app_connections);
		cm_server.refusing = false;
		cm_server.refused_since = 0;
	}
}

/*
 * Move an application connection to state new_state.  The only writer of
 * app->state, and of the counts that follow from it (app_state_counted and
 * the others above): its instance's list and inst->napps (entering ROUTED
 * needs app->inst set; leaving REGISTERED unregisters), cm_server.napps
 * and the per-user count (taken at acceptance, where it may fail, and
 * given back here), cm_server.nrefused and cm_server.nappobjs.
 */
static void
app_set_state(CmApp *app, CmAppState new_state)
{
	CmAppState	old = app->state;

	if (new_state == old)
		return;
	if (app_state_routed(old) && !app_state_routed(new_state))
		app_leave_instance(app);
	else if (!app_state_routed(old) && app_state_routed(new_state))
	{
		cm_list_push_head(&app->inst->apps, &app->inst_node);
		app->inst->napps++;
	}
	if (app_state_counted(old) && !app_state_counted(new_state))
		app_uncount(app);
	else if (!app_state_counted(old) && app_state_counted(new_state))
		cm_server.napps++;
	if (old == CM_APP_REFUSED)
		cm_server.nrefused--;
	if (new_state == CM_APP_REFUSED)
		cm_server.nrefused++;
	if (app_state_holds_fd(old) && !app_state_holds_fd(new_state))
		cm_server.nappobjs--;
	else if (!app_state_holds_fd(old) && app_state_holds_fd(new_state))
		cm_server.nappobjs++;
	app->state = new_state;
}

/*
 * Close an application connection: its socket, its deadline and its counts
 * go now (app_set_state), and it moves from cm_server.apps to closed_apps.
 * Its memory is freed by cm_app_free_closed() once the running callback
 * has returned (cm_free_later), so that every caller, the connection's own
 * callbacks included, can go on testing app->state (CM_APP_CLOSED).
 */
static void
app_close(CmApp *app)
{
	if (app->state == CM_APP_CLOSED)
		return;
	app_set_state(app, CM_APP_CLOSED);
	cm_list_delete(&cm_server.apps, &app->node);
	cm_list_push_head(&closed_apps, &app->node);
	if (app->bev)
	{
		bufferevent_free(app->bev);
		app->bev = NULL;
	}
	evtimer_del(app->timer);
	cm_free_later();
	cm_check_shutdown();
}

/*
 * Free the application connections closed since the last call (from
 * cm_free_later's event, and at the end of the process).
 */
void
cm_app_free_closed(void)
{
	while (!cm_list_is_empty(&closed_apps))
	{
		CmApp	   *app = cm_list_container(CmApp, node, cm_list_first(&closed_apps));

		cm_list_delete(&closed_apps, &app->node);
		event_free(app->timer);
		free(app);
	}
}

/*
 * Queue a last message (may be NULL) and close once it and whatever was
 * queued before it are written, or after CM_CLOSE_LINGER_MS if the peer
 * does not read: the connection is CM_APP_CLOSING then, or CM_APP_CLOSED
 * at once when there is nothing to send (or no memory).
 */
static void
app_send_and_close(CmApp *app, const uint8_t *buf, size_t len)
{
	struct timeval tv = {CM_CLOSE_LINGER_MS / 1000, (CM_CLOSE_LINGER_MS % 1000) * 1000};

	app_set_state(app, CM_APP_CLOSING);
	if ((buf != NULL && len > 0 && bufferevent_write(app->bev, buf, len) != 0) ||
		evbuffer_get_length(bufferevent_get_output(app->bev)) == 0)
	{
		app_close(app);
		return;
	}
	/* the write callback closes it once the output buffer is empty */
	bufferevent_enable(app->bev, EV_WRITE);
	evtimer_add(app->timer, &tv);
}

/*
 * Encode a notice ('N', 'F', 'X') to an application into buf; a failure
 * notice counts in conmgr_notices_sent_total.  Returns its length, 0 when
 * it could not be encoded.
 */
static size_t
app_encode_notice(uint8_t type, uint16_t reason, const char *message,
				  uint8_t *buf, size_t cap)
{
	size_t		n;

	n = cm_proto_encode_notice(CM_DIR_TO_CLIENT, type, reason, message,
							   buf, cap);
	if (n > 0 && type == CM_MSG_FAILURE)
		cm_metrics_notice(reason);
	return n;
}

/* Send a notice ('N', 'F', 'X') and close (app_send_and_close). */
static void
app_notice_and_close(CmApp *app, uint8_t type, uint16_t reason,
					 const char *message)
{
	uint8_t		buf[CM_PROTO_MAX_MSG];
	size_t		n;

	n = app_encode_notice(type, reason, message, buf, sizeof(buf));
	app_send_and_close(app, buf, n);
}

/* Send a PostgreSQL ErrorResponse (stock client) and close. */
static void
app_pg_error_and_close(CmApp *app, const char *sqlstate, const char *message)
{
	uint8_t		buf[CM_PROTO_MAX_MSG];
	size_t		n;

	n = cm_proto_encode_pg_error(buf, sizeof(buf), sqlstate, message);
	app_send_and_close(app, buf, n);
}

/* Answer a stock PostgreSQL client's StartupMessage. */
static void
app_refuse_stock_client(CmApp *app)
{
	char		msg[400];

	cm_log_limited(&limit_stock_client, CM_LOG_INFO, "application connection from %s refused: a PostgreSQL client without Connection Manager support sent a startup packet",
				   app->peer);
	snprintf(msg, sizeof(msg),
			 "this is Connection Manager conmgr on port %d, not a PostgreSQL server: connect through the Connection Manager client library (libpqcm), see docs/client.md",
			 cm_server.cfg.port);
	app_pg_error_and_close(app, "08P01", msg);
}

/*
 * Pick the instance for a route request: among the live instances whose
 * attributes satisfy tsa and whose server is not shutting down, the one with
 * the fewest application connections, ties broken round robin.  prefer-standby takes a standby when one is up.
 */
static CmInstance *
app_choose_instance(uint8_t tsa)
{
	int			n = cm_server.ninstances;
	int			start;
	int			pass;

	if (n == 0)
		return NULL;
	start = (int) (cm_server.rr_counter++ % (unsigned) n);
	for (pass = (tsa == CM_TSA_PREFER_STANDBY ? 0 : 1); pass < 2; pass++)
	{
		CmInstance *best = NULL;
		int			k;

		for (k = 0; k < n; k++)
		{
			CmInstance *inst = cm_server.instances[(start + k) % n];

			if (inst->state != CM_INST_UP)
				continue;
			/* draining: its server takes no new sessions */
			if (inst->attrs & CM_PROTO_ATTR_STOPPING)
				continue;
			if (!cm_proto_tsa_matches(tsa, inst->attrs))
				continue;
			if (pass == 0 && !(inst->attrs & CM_PROTO_ATTR_STANDBY))
				continue;
			if (best == NULL || inst->napps < best->napps)
				best = inst;
		}
		if (best)
			return best;
	}
	return NULL;
}

/*
 * Answer a route request: with an instance (CM_APP_ROUTED), or with "no
 * instance" and close.
 */
static void
app_route(CmApp *app, const CmProtoRoute *r)
{
	CmInstance *inst;
	CmProtoMsg	msg;
	uint8_t		buf[CM_PROTO_MAX_MSG];
	size_t		n;
	struct timeval tv;

	app->tsa = r->tsa;
	app->client_pid = r->client_pid;
	/* shown in the log and by cm_ctl status: never raw */
	cm_proto_escape(r->application_name.str, app->application_name,
					sizeof(app->application_name));

	if (cm_server.shutdown != CM_SHUTDOWN_NONE)
	{
		cm_metrics_route(CM_ROUTE_STOPPING);
		app_notice_and_close(app, CM_MSG_NO_INSTANCE, CM_REASON_SHUTDOWN,
							 CM_STOPPING_MESSAGE);
		return;
	}

	inst = app_choose_instance(r->tsa);
	if (inst == NULL)
	{
		char		text[CM_PROTO_MAX_STRING + 1];
		size_t		len;
		int			i;

		len = (size_t) snprintf(text, sizeof(text),
								"conmgr on port %d knows no live instance matching target_session_attrs=%s:",
								cm_server.cfg.port, cm_proto_tsa_name(r->tsa));
		for (i = 0; i < cm_server.ninstances && len < sizeof(text); i++)
		{
			CmInstance *c = cm_server.instances[i];

			if (c->state == CM_INST_UP && (c->attrs & CM_PROTO_ATTR_STOPPING))
				len += (size_t) snprintf(text + len, sizeof(text) - len, "%s instance %d is stopping",
										 i > 0 ? ";" : "", c->number);
			else
				len += (size_t) snprintf(text + len, sizeof(text) - len, "%s instance %d %s",
										 i > 0 ? ";" : "", c->number,
										 c->state == CM_INST_UP ? cm_proto_attrs_name(c->attrs) :
										 cm_instance_state_name(c));
		}
		cm_log_limited(&limit_no_instance[r->tsa], CM_LOG_INFO,
					   "application connection from %s (pid %u, application \"%s\"): no live instance matches target_session_attrs=%s",
					   app->peer, (unsigned) r->client_pid, app->application_name,
					   cm_proto_tsa_name(r->tsa));
		cm_metrics_route(CM_ROUTE_NO_INSTANCE);
		app_notice_and_close(app, CM_MSG_NO_INSTANCE, CM_REASON_NO_INSTANCE, text);
		return;
	}

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_INSTANCE;
	msg.u.instance.instance = (uint16_t) inst->number;
	/* what an application may be told: standby and read-only */
	msg.u.instance.attrs = inst->attrs & CM_PROTO_ATTR_ALL_1_0;
	msg.u.instance.port = (uint16_t) inst->cfg->port;
	cm_proto_set_string(&msg.u.instance.host, inst->app_host);
	n = cm_proto_encode(CM_DIR_TO_CLIENT, &msg, buf, sizeof(buf));
	if (n == 0 || bufferevent_write(app->bev, buf, n) != 0)
	{
		cm_error("application connection from %s: could not send the instance", app->peer);
		app_close(app);
		return;
	}

	/* the SQL connection must now be registered within app_register_timeout */
	evtimer_del(app->timer);
	tv.tv_sec = cm_server.cfg.app_register_timeout / 1000;
	tv.tv_usec = (cm_server.cfg.app_register_timeout % 1000) * 1000;
	evtimer_add(app->timer, &tv);
	app->inst = inst;
	app_set_state(app, CM_APP_ROUTED);
	cm_metrics_route(CM_ROUTE_ROUTED);
	cm_debug("application connection %llu from %s (pid %u, application \"%s\", target_session_attrs=%s) routed to %s",
			 (unsigned long long) app->id, app->peer, (unsigned) r->client_pid,
			 app->application_name, cm_proto_tsa_name(r->tsa), inst->label);
}

/*
 * Fast path of app_registration_owned: the SQL connection looked up by its
 * two ends, the registered address and the instance's address (the one the
 * heartbeat connection reached) with its SQL port: one lookup in the
 * kernel's connection table, whatever the number of sockets.  True when
 * that is a connection of the application's user; false when not found
 * that way (the application reached the instance by another of its
 * addresses) or anything else, for the full check to decide.
 */
static bool
app_registration_owned_exact(CmApp *app, const struct sockaddr *local)
{
	struct sockaddr_storage inst_addr;
	socklen_t	len = sizeof(inst_addr);
	evutil_socket_t fd;
	uid_t		uid;
	int			state;
	bool		held;
	char		err[256];

	if (app->inst == NULL || app->inst->bev == NULL ||
		(fd = bufferevent_getfd(app->inst->bev)) < 0 ||
		getpeername(fd, (struct sockaddr *) &inst_addr, &len) < 0)
		return false;
	if (inst_addr.ss_family == AF_INET)
		((struct sockaddr_in *) &inst_addr)->sin_port = htons(app->inst->cfg->port);
	else if (inst_addr.ss_family == AF_INET6)
		((struct sockaddr_in6 *) &inst_addr)->sin6_port = htons(app->inst->cfg->port);
	else
		return false;
	if (cm_sockdiag_peer_owner(local, (struct sockaddr *) &inst_addr, &uid, &state,
							   &held, err, sizeof(err)) != CM_SOCKDIAG_FOUND)
		return false;
	return held && uid == app->uid && state >= 0 && state < 32 &&
		(CM_SOCKDIAG_CONNECTED & CM_SOCKDIAG_STATE(state)) != 0;
}

/*
 * Is the registered address (the client end of the application's SQL
 * connection) a connected TCP socket of the application's own user?  The
 * application's user is the owner of its conmgr socket (app->uid); the
 * kernel tells the owners of the sockets bound to that address and port
 * (first by an exact lookup of the connection to the instance, else by a
 * filtered walk of the host's TCP sockets).
 * Refused: no connected socket there, or none of that user's (a port that
 * nobody uses, a listening socket, another user's connection).  Returns
 * true when the registration may go on, including when it cannot be
 * checked (the kernel does not tell: logged once at start, or this query
 * failed: logged at most once a minute).
 */
static bool
app_registration_owned(CmApp *app, const CmProtoAddr *local, const char *addrtext,
					   char *why, size_t whycap)
{
	struct sockaddr_storage ss;
	char		err[256];
	int			owned = 0;
	int			others = 0;
	CmSockDiagStatus st;

	if (!app->uid_known || cm_server.sockdiag_off)
		return true;
	cm_net_sockaddr_from_addr(local, &ss);
	if (app_registration_owned_exact(app, (struct sockaddr *) &ss))
		return true;
	st = cm_sockdiag_count_local((struct sockaddr *) &ss, CM_SOCKDIAG_CONNECTED,
								 app->uid, &owned, &others, err, sizeof(err));
	if (st != CM_SOCKDIAG_FOUND)
	{
		cm_log_limited_detail(&limit_sockdiag, CM_LOG_WARNING,
							  "The registration is accepted unchecked.", NULL,
							  "could not check the registration of application connection from %s: %s",
							  app->peer, err);
		return true;
	}
	if (owned > 0)
		return true;
	snprintf(why, whycap,
			 "the registered address %s is not a connected TCP socket of the application's user (%u)%s",
			 addrtext, (unsigned) app->uid,
			 others > 0 ? ": it belongs to another user" : "");
	return false;
}

/*
 * Record the registration of an established SQL connection and forward it
 * to the instance's watchdog (CM_APP_REGISTERED).  An address that is not
 * one of the application user's connected sockets is refused ('X',
 * protocol violation) and the connection closed.
 */
static void
app_register(CmApp *app, const CmProtoAppRegister *reg)
{
	char		addr[80];
	char		why[300];

	cm_proto_addr_format(&reg->local, addr, sizeof(addr));
	if (!app_registration_owned(app, &reg->local, addr, why, sizeof(why)))
	{
		char		c;

		/*
		 * An application that connects, registers and disconnects at once
		 * may have closed its SQL connection before conmgr reads the
		 * registration: nothing to register, and nothing to report, when
		 * it has closed its conmgr connection too.
		 */
		if (recv(bufferevent_getfd(app->bev), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		{
			cm_debug("application connection from %s closed right after registering backend PID %u: %s",
					 app->peer, (unsigned) reg->backend_pid, why);
			app_close(app);
			return;
		}
		cm_log_limited(&limit_register_owner, CM_LOG_WARNING,
					   "application connection from %s (pid %u, application \"%s\"): registration of backend PID %u refused: %s",
					   app->peer, (unsigned) app->client_pid, app->application_name,
					   (unsigned) reg->backend_pid, why);
		app_notice_and_close(app, CM_MSG_REFUSE, CM_REASON_PROTOCOL, why);
		return;
	}
	evtimer_del(app->timer);
	app->backend_pid = reg->backend_pid;
	app->local = reg->local;
	app_set_state(app, CM_APP_REGISTERED);
	cm_instance_forward_session(app->inst, CM_MSG_REGISTER, reg->backend_pid,
								&reg->local);
	cm_debug("application connection %llu registered: backend PID %u on %s, client address %s",
			 (unsigned long long) app->id, (unsigned) reg->backend_pid,
			 app->inst->label, addr);
}

/* A client broke the protocol: say why, log it, close. */
static void
app_protocol_error(CmApp *app, const char *reason)
{
	cm_log_limited(&limit_protocol, CM_LOG_INFO,
				   "application connection from %s: protocol violation: %s; closing",
				   app->peer, reason);
	app_notice_and_close(app, CM_MSG_REFUSE, CM_REASON_PROTOCOL, reason);
}

/*
 * Handle the first packet (or, after 'N' to an SSLRequest, the
 * StartupMessage), which may close the connection.  Returns false when the
 * packet is not whole yet: nothing was taken from the input.
 */
static bool
app_startup_packet(CmApp *app, struct evbuffer *in)
{
	size_t		len = evbuffer_get_length(in);
	size_t		want = len < CM_PROTO_PG_MAX_STARTUP ? len : CM_PROTO_PG_MAX_STARTUP;
	uint8_t    *p = evbuffer_pullup(in, (ev_ssize_t) want);
	size_t		plen = 0;
	uint32_t	code = 0;
	const char *reason = "";
	CmProtoStatus st;

	st = cm_proto_peek_pg_startup(p, want, &plen, &code, &reason);
	if (st == CM_PROTO_INCOMPLETE)
		return false;			/* wait for more; nothing closed */
	if (st != CM_PROTO_OK)
	{
		cm_debug("application connection from %s: %s; closing", app->peer, reason);
		app_close(app);
		return true;
	}
	evbuffer_drain(in, plen);

	if (code == CM_PROTO_PG_CANCEL_CODE)
	{
		cm_debug("application connection from %s: cancel request ignored", app->peer);
		app_close(app);
		return true;
	}
	if (code == CM_PROTO_PG_GSS_CODE && app->state == CM_APP_STARTUP)
	{
		uint8_t		buf[CM_PROTO_MAX_MSG];
		char		text[128];
		size_t		n;

		snprintf(text, sizeof(text), "Connection Manager conmgr on port %d", cm_server.cfg.port);
		n = cm_proto_encode_greeting(buf, sizeof(buf), text);
		if (n == 0 || bufferevent_write(app->bev, buf, n) != 0)
		{
			app_close(app);
			return true;
		}
		app_set_state(app, CM_APP_GREETED);
		return true;
	}
	if (code == CM_PROTO_PG_SSL_CODE && app->state == CM_APP_STARTUP)
	{
		if (bufferevent_write(app->bev, "N", 1) != 0)
		{
			app_close(app);
			return true;
		}
		app_set_state(app, CM_APP_SSL_STARTUP);
		return true;
	}
	if ((code >> 16) >= 2 && (code >> 16) <= 3)
	{
		/* a StartupMessage: protocol 2.0 or 3.x */
		app_refuse_stock_client(app);
		return true;
	}
	cm_debug("application connection from %s: unexpected request code %u; closing",
			 app->peer, (unsigned) code);
	app_close(app);
	return true;
}

/*
 * Read callback of an application connection: handle every whole packet
 * or frame in the input, according to the connection's state.  Stops as
 * soon as the connection is closed; the input of a closing one is read
 * away.
 */
static void
app_read_cb(struct bufferevent *bev, void *arg)
{
	CmApp	   *app = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t		len;

	while (app->state != CM_APP_CLOSED && (len = evbuffer_get_length(in)) > 0)
	{
		size_t		want;
		uint8_t    *p;
		size_t		flen = 0;
		const char *reason = "";
		CmProtoMsg	msg;
		CmProtoStatus st;

		if (app->state == CM_APP_CLOSING || app->state == CM_APP_REFUSED)
		{
			evbuffer_drain(in, len);
			return;
		}
		if (app->state == CM_APP_STARTUP || app->state == CM_APP_SSL_STARTUP)
		{
			if (!app_startup_packet(app, in))
				return;
			continue;
		}

		want = len < CM_PROTO_MAX_MSG ? len : CM_PROTO_MAX_MSG;
		p = evbuffer_pullup(in, (ev_ssize_t) want);
		st = cm_proto_next(CM_DIR_TO_CONMGR_APP, p, want, &flen, &msg, &reason);
		if (st == CM_PROTO_INCOMPLETE)
			return;
		if (st != CM_PROTO_OK)
		{
			app_protocol_error(app, reason);
			return;
		}
		evbuffer_drain(in, flen);

		if (app->state == CM_APP_GREETED && msg.type == CM_MSG_ROUTE)
			app_route(app, &msg.u.route);
		else if (app->state == CM_APP_ROUTED && msg.type == CM_MSG_APP_REGISTER)
			app_register(app, &msg.u.app_register);
		else
		{
			char		r[128];

			snprintf(r, sizeof(r), "unexpected %s message in state %s",
					 cm_proto_type_name(CM_DIR_TO_CONMGR_APP, msg.type),
					 app->state == CM_APP_GREETED ? "awaiting route request" :
					 app->state == CM_APP_ROUTED ? "awaiting registration" :
					 "registered");
			app_protocol_error(app, r);
			return;
		}
	}
}

/*
 * Write callback: a closing connection is freed once its last message is
 * out; a refused one then has its sending side shut, and stays until the
 * client closes (app_event_cb) or its linger time ends (app_timer_cb).
 */
static void
app_write_cb(struct bufferevent *bev, void *arg)
{
	CmApp	   *app = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (app->state == CM_APP_CLOSING)
		app_close(app);
	else if (app->state == CM_APP_REFUSED && !app->write_shut)
	{
		app->write_shut = true;
		shutdown(bufferevent_getfd(bev), SHUT_WR);
	}
}

/*
 * The application closed its conmgr socket (or it failed): unregister the
 * session at its watchdog and free the connection.
 */
static void
app_event_cb(struct bufferevent *bev, short what, void *arg)
{
	CmApp	   *app = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
	{
		if (app->state == CM_APP_REGISTERED || app->state == CM_APP_ROUTED)
			cm_debug("application connection %llu from %s closed (backend PID %u)",
					 (unsigned long long) app->id, app->peer,
					 (unsigned) app->backend_pid);
		app_close(app);
	}
}

/*
 * Deadline of the connection's state: handshake (no route request within
 * app_handshake_timeout: closed), registration (routed, but no
 * registration within app_register_timeout: told so, and closed), or the
 * linger of a closing or refused connection.
 */
static void
app_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	CmApp	   *app = arg;

	if (app->state == CM_APP_ROUTED)
	{
		char		msg[200];

		cm_log_limited(&limit_register, CM_LOG_INFO,
					   "application connection from %s (pid %u, application \"%s\"): no registration within app_register_timeout (%d ms); closing",
					   app->peer, (unsigned) app->client_pid, app->application_name,
					   cm_server.cfg.app_register_timeout);
		snprintf(msg, sizeof(msg),
				 "no registration within app_register_timeout (%d ms) of the instance answer",
				 cm_server.cfg.app_register_timeout);
		app_notice_and_close(app, CM_MSG_REFUSE, CM_REASON_PROTOCOL, msg);
		return;
	}
	if (app->state != CM_APP_CLOSING && app->state != CM_APP_REFUSED)
		cm_log_limited(&limit_handshake, CM_LOG_INFO,
					   "application connection from %s: no route request within app_handshake_timeout (%d ms); closing",
					   app->peer, cm_server.cfg.app_handshake_timeout);
	app_close(app);
}

/*
 * Descriptors that application connections may still take: the open-files
 * limit less CM_FIXED_FDS (log, control socket, listeners, event loop, name
 * resolution, ...), the metrics endpoint's share (cm_metrics_fds) and those
 * of the instances (CM_FDS_PER_INSTANCE each), so that a heartbeat connection can always be made again,
 * less those application connections hold.
 */
static int
app_fds_left(void)
{
	return cm_server.fd_limit - CM_FIXED_FDS - cm_metrics_fds() -
		CM_FDS_PER_INSTANCE * cm_server.ninstances - cm_server.nappobjs;
}

/*
 * Refuse a new connection at once: write the greeting, which carries the
 * cause for a stock PostgreSQL client (sqlstate, message), then the
 * refusal (type 'X' or 'N', reason, message), without waiting for the
 * client's first packet.  The connection never counts as an application
 * connection; it lingers half-closed, its input read away, until the
 * client closes or CM_REFUSED_LINGER_MS pass, so that the client reads the
 * refusal instead of a reset (cm_defaults.h).  Beyond
 * CM_REFUSED_LINGER_MAX lingering refusals, or without memory, the
 * refusal is written straight to the new socket (its send buffer is empty)
 * and the socket closed.
 */
static void
app_refuse_at_once(evutil_socket_t fd, const char *peer, CmRefusal why,
				   const char *sqlstate, uint8_t type, uint16_t reason,
				   const char *message)
{
	uint8_t		buf[2 * CM_PROTO_MAX_MSG];
	size_t		n;
	size_t		m = 0;
	CmApp	   *app = NULL;
	struct timeval tv = {CM_REFUSED_LINGER_MS / 1000, (CM_REFUSED_LINGER_MS % 1000) * 1000};

	cm_metrics_refused(why);
	n = cm_proto_encode_refusal_greeting(buf, sizeof(buf), sqlstate, message);
	if (n > 0)
		m = cm_proto_encode_notice(CM_DIR_TO_CLIENT, type, reason, message,
								   buf + n, sizeof(buf) - n);
	if (m == 0)
	{
		close(fd);
		return;
	}
	if (cm_server.nrefused < CM_REFUSED_LINGER_MAX && app_fds_left() > 0)
		app = calloc(1, sizeof(CmApp));
	if (app)
	{
		app->bev = bufferevent_socket_new(cm_server.base, fd, BEV_OPT_CLOSE_ON_FREE);
		app->timer = evtimer_new(cm_server.base, app_timer_cb, app);
	}
	if (app == NULL || app->bev == NULL || app->timer == NULL ||
		bufferevent_write(app->bev, buf, n + m) != 0)
	{
		if (app)
		{
			bool		closed = app->bev != NULL;

			if (app->bev)
				bufferevent_free(app->bev); /* closes fd */
			if (app->timer)
				event_free(app->timer);
			free(app);
			if (closed)
				return;
		}
		if (send(fd, buf, n + m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			cm_debug("could not send a refusal to %s: %s", peer, strerror(errno));
		close(fd);
		return;
	}
	snprintf(app->peer, sizeof(app->peer), "%s", peer);
	app->id = ++cm_server.next_app_id;
	app->connected_wall = time(NULL);
	app_set_state(app, CM_APP_REFUSED);
	cm_list_push_head(&cm_server.apps, &app->node);
	bufferevent_setcb(app->bev, app_read_cb, app_write_cb, app_event_cb, app);
	bufferevent_enable(app->bev, EV_READ | EV_WRITE);
	evtimer_add(app->timer, &tv);
}

/*
 * The local user that owns the application's end of an accepted
 * connection (peer: its address; fd: our end).  Returns false when it
 * cannot be known: the kernel does not tell (logged once at start, see
 * app_check_sockdiag), or this query failed (logged at most once a
 * minute).  The per-user limit is then not applied to this connection:
 * it fails open, while max_app_connections still holds.
 */
static bool
app_peer_uid(evutil_socket_t fd, const struct sockaddr *peer, const char *peertext,
			 uid_t *uid)
{
	struct sockaddr_storage self;
	socklen_t	selflen = sizeof(self);
	char		err[256];
	CmSockDiagStatus st;

	if (cm_server.sockdiag_off)
		return false;
	if (getsockname(fd, (struct sockaddr *) &self, &selflen) < 0)
	{
		snprintf(err, sizeof(err), "getsockname failed: %s", strerror(errno));
		st = CM_SOCKDIAG_ERROR;
	}
	else
		st = cm_sockdiag_peer_owner(peer, (struct sockaddr *) &self, uid, NULL, NULL,
									err, sizeof(err));
	if (st == CM_SOCKDIAG_FOUND)
		return true;
	if (st == CM_SOCKDIAG_NOT_FOUND)
		snprintf(err, sizeof(err), "the kernel knows no such socket (closed already?)");
	cm_log_limited_detail(&limit_sockdiag, CM_LOG_WARNING,
						  "max_app_connections_per_user is not applied to it.", NULL,
						  "could not find the user of application connection from %s: %s",
						  peertext, err);
	return false;
}

/*
 * A new application connection: refused at once when conmgr cannot take
 * it (stopping, no descriptor to spare, over max_app_connections, its user
 * over max_app_connections_per_user), otherwise set up with its handshake
 * deadline.  A refused connection never counts as an application
 * connection; it only lingers until its client has read the refusal
 * (app_refuse_at_once).
 */
static void
app_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
			  struct sockaddr *sa, int salen, void *arg)
{
	CmApp	   *app;
	char		peer[CM_NET_ADDR_TEXT_MAX];
	struct timeval tv;
	bool		uid_known;
	uid_t		uid = 0;

	cm_net_sockaddr_format(sa, peer, sizeof(peer));

	if (cm_server.shutdown != CM_SHUTDOWN_NONE)
	{
		/* the port stays ours until conmgr exits; nobody else answers */
		cm_debug("application connection from %s refused: conmgr is stopping", peer);
		app_refuse_at_once(fd, peer, CM_REFUSE_STOPPING, "57P03", CM_MSG_NO_INSTANCE, CM_REASON_SHUTDOWN,
						   CM_STOPPING_MESSAGE);
		return;
	}
	if (app_fds_left() <= 0)
	{
		char		msg[300];

		cm_log_limited_detail(&limit_fds, CM_LOG_WARNING, NULL,
							  "Raise \"ulimit -n\" (see docs/conmgr.md).",
							  "application connection from %s refused: the open-files limit (%d) leaves no descriptor for it beyond those of the heartbeat connections",
							  peer, cm_server.fd_limit);
		snprintf(msg, sizeof(msg),
				 "too many application connections to conmgr on port %d: its open-files limit is reached",
				 cm_server.cfg.port);
		app_refuse_at_once(fd, peer, CM_REFUSE_OPEN_FILES, "53300", CM_MSG_REFUSE, CM_REASON_TOO_MANY, msg);
		return;
	}
	if (cm_server.napps >= cm_server.cfg.max_app_connections)
	{
		char		msg[200];

		if (!cm_server.refusing)
		{
			cm_log_detail(CM_LOG_WARNING,
						  "Further refusals are not logged until connections are accepted again.", NULL,
						  "application connection from %s refused: max_app_connections (%d) reached",
						  peer, cm_server.cfg.max_app_connections);
			cm_server.refusing = true;
		}
		cm_server.refused_since++;
		snprintf(msg, sizeof(msg),
				 "too many application connections to conmgr on port %d (max_app_connections = %d)",
				 cm_server.cfg.port, cm_server.cfg.max_app_connections);
		app_refuse_at_once(fd, peer, CM_REFUSE_MAX, "53300", CM_MSG_REFUSE, CM_REASON_TOO_MANY, msg);
		return;
	}

	uid_known = app_peer_uid(fd, sa, peer, &uid);
	if (uid_known)
	{
		CmUserCount *u = user_count_find(uid);
		int			limit = cm_config_per_user_limit(&cm_server.cfg);

		if (u && u->count >= limit)
		{
			char		msg[300];

			cm_log_limited(&limit_per_user, CM_LOG_WARNING,
						   "application connection from %s refused: user %u has %d application connections, max_app_connections_per_user (%d) reached",
						   peer, (unsigned) uid, u->count, limit);
			snprintf(msg, sizeof(msg),
					 "too many application connections to conmgr on port %d from user %u (max_app_connections_per_user = %d)",
					 cm_server.cfg.port, (unsigned) uid, limit);
			app_refuse_at_once(fd, peer, CM_REFUSE_PER_USER, "53300", CM_MSG_REFUSE, CM_REASON_TOO_MANY, msg);
			return;
		}
	}

	app = calloc(1, sizeof(CmApp));
	if (app == NULL || (uid_known && !user_count_add(uid)))
	{
		cm_error("out of memory accepting an application connection");
		free(app);
		close(fd);
		return;
	}
	app->uid_known = uid_known;
	app->uid = uid;
	snprintf(app->peer, sizeof(app->peer), "%s", peer);
	app->id = ++cm_server.next_app_id;
	app->connected_wall = time(NULL);
	app->bev = bufferevent_socket_new(cm_server.base, fd, BEV_OPT_CLOSE_ON_FREE);
	app->timer = evtimer_new(cm_server.base, app_timer_cb, app);
	if (app->bev == NULL || app->timer == NULL)
	{
		cm_error("out of memory accepting an application connection");
		if (uid_known)
			user_count_remove(uid);
		if (app->bev)
			bufferevent_free(app->bev);
		else
			close(fd);
		if (app->timer)
			event_free(app->timer);
		free(app);
		return;
	}
	cm_list_push_head(&cm_server.apps, &app->node);
	app_set_state(app, CM_APP_STARTUP);

	bufferevent_setcb(app->bev, app_read_cb, app_write_cb, app_event_cb, app);
	bufferevent_setwatermark(app->bev, EV_READ, 0, CM_PROTO_PG_MAX_STARTUP + CM_PROTO_MAX_MSG);
	bufferevent_enable(app->bev, EV_READ);
	tv.tv_sec = cm_server.cfg.app_handshake_timeout / 1000;
	tv.tv_usec = (cm_server.cfg.app_handshake_timeout % 1000) * 1000;
	evtimer_add(app->timer, &tv);
}

/*
 * accept() failed, typically EMFILE.  Pause the listeners for a second
 * instead of spinning on a socket that stays readable.
 */
static void
app_accept_error_cb(struct evconnlistener *lis, void *arg)
{
	int			err = EVUTIL_SOCKET_ERROR();

	cm_log_detail(CM_LOG_ERROR, NULL,
				  err == EMFILE || err == ENFILE ? "Raise the open-files limit (see docs/conmgr.md)." : NULL,
				  "could not accept an application connection: %s",
				  evutil_socket_error_to_string(err));
	cm_listen_pause(&cm_server.app_listen);
}

/*
 * Can the kernel tell conmgr who owns a socket?  Ask it about conmgr's own
 * listener, just bound.  When it cannot (not Linux, no inet_diag module,
 * a sandbox forbidding NETLINK_SOCK_DIAG), say so once and never ask
 * again: max_app_connections_per_user and the ownership check of
 * registered addresses are then not applied.
 */
static void
app_check_sockdiag(int family)
{
	struct sockaddr_storage ss;
	char		err[256];
	int			owned = 0;
	int			others = 0;
	CmSockDiagStatus st;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t) cm_server.cfg.port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t) cm_server.cfg.port);
		sin6->sin6_addr = in6addr_loopback;
	}
	st = cm_sockdiag_count_local((struct sockaddr *) &ss,
								 CM_SOCKDIAG_STATE(CM_SOCKDIAG_LISTEN), geteuid(),
								 &owned, &others, err, sizeof(err));
	if (st == CM_SOCKDIAG_FOUND && owned == 1)
		return;
	if (st == CM_SOCKDIAG_FOUND)
		snprintf(err, sizeof(err), "the kernel did not report conmgr's own listener");
	cm_log_detail(CM_LOG_WARNING,
				  "max_app_connections_per_user is not applied, and registered addresses are not checked.", NULL,
				  "the kernel does not tell conmgr which user owns an application's socket (%s)",
				  err);
	cm_server.sockdiag_off = true;
}

/*
 * Listen for applications on port, on every loopback address of the host
 * (cm_listen_loopback).
 */
bool
cm_app_listen(void)
{
	CmListenSet *set = &cm_server.app_listen;

	if (!cm_listen_loopback(set, cm_server.cfg.port, 1024, "", "applications",
							app_accept_cb, app_accept_error_cb))
		return false;
	app_check_sockdiag(set->family);
	return true;
}

/*
 * Close the application listeners, at the very end of the process: until
 * then the port is conmgr's, even during a smart shutdown, so that no
 * other program can take it while applications are still connected.
 */
void
cm_app_stop_listening(void)
{
	cm_listen_close(&cm_server.app_listen);
}

/*
 * Sending the same notice to many connections: each send is a system call
 * that, on a local connection, also does the receiving side's work, some
 * microseconds.  Past CM_FANOUT_PARALLEL connections a second thread sends
 * half of them meanwhile (it makes no other call, and signals stay with the
 * main thread).
 */
#define CM_FANOUT_PARALLEL	512

typedef struct FanoutPart
{
	const int  *fds;
	ssize_t    *sent;			/* bytes each send took, or -1 */
	size_t		n;
	const uint8_t *buf;
	size_t		len;
} FanoutPart;

static void *
fanout_send_part(void *arg)
{
	FanoutPart *part = arg;

	for (size_t i = 0; i < part->n; i++)
		part->sent[i] = send(part->fds[i], part->buf, part->len,
							 MSG_NOSIGNAL | MSG_DONTWAIT);
	return NULL;
}

/*
 * Send buf to every descriptor of fds[0..n), sent[i] the result of each:
 * in two threads when there are many, else here.
 */
static void
fanout_send(const int *fds, ssize_t *sent, size_t n, const uint8_t *buf, size_t len)
{
	FanoutPart	mine = {fds, sent, n, buf, len};
	FanoutPart	other;
	pthread_t	thread;
	sigset_t	all,
				old;
	bool		started = false;

	if (n >= CM_FANOUT_PARALLEL)
	{
		other = mine;
		other.n = n / 2;
		mine.fds += other.n;
		mine.sent += other.n;
		mine.n -= other.n;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		started = pthread_create(&thread, NULL, fanout_send_part, &other) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!started)
		{
			mine.fds = fds;
			mine.sent = sent;
			mine.n = n;
		}
	}
	fanout_send_part(&mine);
	if (started)
		pthread_join(thread, NULL);
}

/*
 * Send a failure notice to every connection routed to inst, and close them.
 * The notices go first, straight to the kernel where its buffer takes them
 * (it does unless an application stopped reading): the last application
 * learns of the failure as soon as the first, not after the others' closing.
 * Then every connection is closed; one whose notice could not go whole is
 * queued and closed once it is written, or after the linger.
 */
void
cm_app_notify_instance_down(CmInstance *inst, uint16_t reason,
							const char *message)
{
	uint8_t		buf[CM_PROTO_MAX_MSG];
	size_t		n;
	CmListIter	it;
	int			napps = inst->napps;
	uint64_t	t0 = cm_now_us();
	uint64_t	t_written;

	n = cm_proto_encode_notice(CM_DIR_TO_CLIENT, CM_MSG_FAILURE, reason,
							   message, buf, sizeof(buf));
	/* straight to the kernel: connections with nothing queued before it */
	if (n > 0 && napps > 0)
	{
		int		   *fds = malloc(sizeof(int) * (size_t) napps);
		ssize_t    *sent = malloc(sizeof(ssize_t) * (size_t) napps);
		size_t		k = 0;

		if (fds && sent)
		{
			cm_list_foreach(it, &inst->apps)
			{
				CmApp	   *app = cm_list_container(CmApp, inst_node, it.cur);

				if (k < (size_t) napps &&
					evbuffer_get_length(bufferevent_get_output(app->bev)) == 0)
					fds[k++] = bufferevent_getfd(app->bev);
			}
			fanout_send(fds, sent, k, buf, n);
		}
		k = 0;
		cm_list_foreach(it, &inst->apps)
		{
			CmApp	   *app = cm_list_container(CmApp, inst_node, it.cur);
			ssize_t		w = -1;

			if (fds && sent && k < (size_t) napps &&
				evbuffer_get_length(bufferevent_get_output(app->bev)) == 0)
				w = sent[k++];
			app->notice_out = w == (ssize_t) n;
			/* what did not go (all of it, or the rest) is queued */
			if (!app->notice_out &&
				bufferevent_write(app->bev, buf + (w > 0 ? w : 0),
								  n - (size_t) (w > 0 ? w : 0)) != 0)
				app->notice_out = true; /* no memory: the stream ends here */
		}
		free(fds);
		free(sent);
	}
	t_written = cm_now_us();
	cm_list_foreach(it, &inst->apps)
	{
		CmApp	   *app = cm_list_container(CmApp, inst_node, it.cur);

		if (n > 0)
			cm_metrics_notice(reason);
		if (app->notice_out)
			app_close(app);
		else
			app_send_and_close(app, NULL, 0);	/* once the queue is written */
	}
	if (napps > 0)
		cm_info("%s: %d failure notice%s written in %.1f ms (the connections closed in %.1f ms more)",
				inst->label, napps, napps == 1 ? "" : "s",
				(double) (t_written - t0) / 1000.0,
				(double) (cm_now_us() - t_written) / 1000.0);
}

/*
 * After an attribute change of inst: notify and close the connections whose
 * target_session_attrs the instance no longer satisfies.
 */
void
cm_app_notify_attrs_changed(CmInstance *inst)
{
	CmListIter	it;
	int			n = 0;

	cm_list_foreach(it, &inst->apps)
	{
		CmApp	   *app = cm_list_container(CmApp, inst_node, it.cur);

		if (!cm_proto_tsa_matches(app->tsa, inst->attrs))
		{
			char		msg[CM_PROTO_MAX_STRING + 1];

			snprintf(msg, sizeof(msg),
					 "%s is now %s, which does not satisfy target_session_attrs=%s",
					 inst->label, cm_proto_attrs_name(inst->attrs), cm_proto_tsa_name(app->tsa));
			app_notice_and_close(app, CM_MSG_FAILURE, CM_REASON_ATTR_CHANGED, msg);
			n++;
		}
	}
	if (n > 0)
		cm_info("%s: notified %d application connection%s whose target_session_attrs no longer match",
				inst->label, n, n == 1 ? "" : "s");
}

/*
 * Fast shutdown: tell every routed application connection, write the
 * notices out now, and close everything.
 */
void
cm_app_close_all(uint16_t reason, const char *message)
{
	while (!cm_list_is_empty(&cm_server.apps))
	{
		CmApp	   *app = cm_list_container(CmApp, node, cm_list_first(&cm_server.apps));

		if (app->state == CM_APP_ROUTED || app->state == CM_APP_REGISTERED)
		{
			uint8_t		buf[CM_PROTO_MAX_MSG];
			size_t		n;

			n = app_encode_notice(CM_MSG_FAILURE, reason, message, buf, sizeof(buf));
			if (n > 0 && bufferevent_write(app->bev, buf, n) == 0)
				cm_flush_now(app->bev);
		}
		else if (app->state == CM_APP_CLOSING || app->state == CM_APP_REFUSED)
			cm_flush_now(app->bev);
		app_close(app);
	}
}

/*
 * Free every application connection (end of the process).
 */
void
cm_app_free_all(void)
{
	while (!cm_list_is_empty(&cm_server.apps))
		app_close(cm_list_container(CmApp, node, cm_list_first(&cm_server.apps)));
	cm_app_free_closed();
}
