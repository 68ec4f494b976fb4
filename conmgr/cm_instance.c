/*-------------------------------------------------------------------------
 *
 * cm_instance.c
 *	  The heartbeat connection of conmgr to the watchdog of each instance.
 *
 * Each instance is a small state machine:
 *
 *	WAITING --retry timer--> CONNECTING --TCP up--> HELLO --welcome--> UP
 *	   ^                          |                   |                 |
 *	   +---- failure (backoff) ---+-------------------+-- instance down +
 *
 * In UP a heartbeat is sent every heartbeat_interval; the instance is
 * declared down when no reply came for heartbeat_timeout (monotonic clock,
 * see inst_arm_timeout), when the connection breaks, or at
 * once when the watchdog announces a shutdown.  Declaring it down notifies
 * every application connection routed to it.  Attribute changes (pushed by
 * the watchdog, or carried by heartbeat replies) update the routing at once
 * and notify the connections whose target_session_attrs no longer hold.
 *
 * Each change of state is logged once; repeated identical connection
 * failures are logged at DEBUG level only.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_instance.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/dns.h>
#include <event2/util.h>

#include "cm_log.h"
#include "cm_sealed.h"
#include "conmgr.h"

static void inst_connect(CmInstance *inst);
static void inst_connect_next(CmInstance *inst, const char *previous_error);
static void inst_free_addresses(CmInstance *inst);
static void inst_read_cb(struct bufferevent *bev, void *arg);
static void inst_event_cb(struct bufferevent *bev, short what, void *arg);
static void inst_restart_timeout_cb(evutil_socket_t fd, short what, void *arg);

/* Instances removed by a reload, freed by cm_instance_free_removed(). */
static CmList removed_instances;

static void
set_timer_ms(struct event *ev, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t) (ms / 1000);
	tv.tv_usec = (suseconds_t) ((ms % 1000) * 1000);
	evtimer_add(ev, &tv);
}

static void
set_timer_us(struct event *ev, uint64_t us)
{
	struct timeval tv;

	tv.tv_sec = (time_t) (us / 1000000);
	tv.tv_usec = (suseconds_t) (us % 1000000);
	evtimer_add(ev, &tv);
}

const char *
cm_instance_state_name(const CmInstance *inst)
{
	switch (inst->state)
	{
		case CM_INST_WAITING:
			return inst->restarting ? "restarting" : "down";
		case CM_INST_CONNECTING:
		case CM_INST_HELLO:
			return inst->restarting ? "restarting" : "connecting";
		case CM_INST_UP:
			return (inst->attrs & CM_PROTO_ATTR_STOPPING) ? "draining" : "up";
		case CM_INST_REMOVED:
			return "removed";
	}
	return "unknown";
}

/*
 * Write a bufferevent's pending output now, as far as the socket takes it.
 * Used on the way out (goodbye, fast shutdown), when the event loop will
 * not run again.  A socket bufferevent keeps its output buffer frozen
 * between its own writes, hence the unfreeze.
 */
void
cm_flush_now(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);

	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0)
	{
		if (evbuffer_write(out, fd) <= 0)
			break;
	}
	evbuffer_freeze(out, 1);
}

bool
cm_instance_is_primary(const CmInstance *inst)
{
	return inst->state == CM_INST_UP &&
		(inst->attrs & CM_PROTO_ATTR_STANDBY) == 0;
}

/* Encode and queue one message on the heartbeat connection. */
static bool
inst_send(CmInstance *inst, const CmProtoMsg *msg)
{
	uint8_t		buf[CM_PROTO_MAX_MSG + CM_AUTH_SEAL_LEN];
	size_t		n;

	if (inst->bev == NULL)
		return false;
	n = cm_proto_encode(CM_DIR_TO_WATCHDOG, msg, buf, CM_PROTO_MAX_MSG);
	if (n > 0 && inst->sealed)
		n = cm_auth_seal(inst->keys.to_watchdog, CM_AUTH_CHANNEL_STREAM,
						 ++inst->seq_out, buf, n, sizeof(buf));
	else if (n > 0 && inst->auth && !cm_auth_transcript_add(&inst->transcript, buf, n))
		n = 0;
	if (n == 0)
	{
		cm_error("%s: could not encode a %s message", inst->label,
				 cm_proto_type_name(CM_DIR_TO_WATCHDOG, msg->type));
		return false;
	}
	if (bufferevent_write(inst->bev, buf, n) != 0)
	{
		cm_error("%s: could not queue a %s message", inst->label,
				 cm_proto_type_name(CM_DIR_TO_WATCHDOG, msg->type));
		return false;
	}
	return true;
}

/* Close the heartbeat connection and stop its timers. */
static void
inst_teardown(CmInstance *inst)
{
	if (inst->bev)
	{
		bufferevent_free(inst->bev);
		inst->bev = NULL;
	}
	cm_dgram_stop(inst);
	inst_free_addresses(inst);
	inst->resolving = false;
	inst->sealed = false;
	explicit_bzero(&inst->keys, sizeof(inst->keys));
	evtimer_del(inst->state_timer);
	evtimer_del(inst->hb_timer);
	evtimer_del(inst->timeout_timer);
	inst->state = CM_INST_WAITING;
}

/* Schedule the next connection attempt after the current backoff. */
static void
inst_schedule_retry(CmInstance *inst, int delay_ms)
{
	if (cm_server.shutdown != CM_SHUTDOWN_NONE)
		return;
	inst->state = CM_INST_WAITING;
	set_timer_ms(inst->state_timer, (uint64_t) delay_ms);
}

/*
 * A connection attempt failed (before the instance was up).  Logged when
 * the cause differs from the previous attempt's, so that an instance that
 * stays unreachable costs one log line, not one per retry.
 */
static void inst_connect_failed(CmInstance *inst, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
inst_connect_failed(CmInstance *inst, const char *fmt,...)
{
	char		msg[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	inst_teardown(inst);
	if (strcmp(msg, inst->last_error) != 0)
	{
		cm_info("%s: could not establish the heartbeat connection: %s; retrying every %d ms at most",
				inst->label, msg, CM_BACKOFF_MAX_MS);
		snprintf(inst->last_error, sizeof(inst->last_error), "%s", msg);
	}
	else
		cm_debug("%s: could not establish the heartbeat connection: %s",
				 inst->label, msg);
	/* a restarting watchdog is retried often: it has heartbeat_timeout */
	inst_schedule_retry(inst, inst->restarting && inst->backoff_ms > CM_RESTART_RETRY_MS ?
						CM_RESTART_RETRY_MS : inst->backoff_ms);
	inst->backoff_ms *= 2;
	if (inst->backoff_ms > CM_BACKOFF_MAX_MS)
		inst->backoff_ms = CM_BACKOFF_MAX_MS;
}

/*
 * Declare an UP instance down: close the heartbeat connection, notify every
 * application connection routed to it, and reconnect.
 */
static void inst_down(CmInstance *inst, uint16_t reason, CmFailure why, const char *fmt,...) __attribute__((format(printf, 4, 5)));

static void
inst_down(CmInstance *inst, uint16_t reason, CmFailure why, const char *fmt,...)
{
	char		cause[256];
	char		notice[400];
	va_list		ap;
	int			napps = inst->napps;

	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);

	inst_teardown(inst);
	inst->restarting = false;
	evtimer_del(inst->restart_timer);
	inst->down_since_wall = time(NULL);
	snprintf(inst->last_error, sizeof(inst->last_error), "%s", cause);
	cm_metrics_failure(inst, why);
	cm_info("%s: instance is down: %s; notifying %d application connection%s",
			inst->label, cause, napps, napps == 1 ? "" : "s");

	snprintf(notice, sizeof(notice), "%s (port %d) failed: %s",
			 inst->label, inst->cfg->port, cause);
	cm_app_notify_instance_down(inst, reason, notice);

	inst->backoff_ms = CM_BACKOFF_MIN_MS;
	inst_schedule_retry(inst, 0);
	cm_check_shutdown();
}

/* The watchdog's attributes of the instance changed. */
static void
inst_set_attrs(CmInstance *inst, uint8_t attrs)
{
	uint8_t		old = inst->attrs;

	if (attrs == old)
		return;
	inst->attrs = attrs;
	if ((attrs ^ old) & CM_PROTO_ATTR_STOPPING)
	{
		if (attrs & CM_PROTO_ATTR_STOPPING)
			cm_info("%s: the server is shutting down: no new application connections are routed to it; the %d it has keep their sessions until it ends them",
					inst->label, inst->napps);
		else
			cm_info("%s: the server is no longer shutting down: new application connections are routed to it again",
					inst->label);
	}
	if ((attrs ^ old) & CM_PROTO_ATTR_ALL_1_0)
	{
		cm_info("%s: attributes changed from %s to %s",
				inst->label, cm_proto_attrs_name(old), cm_proto_attrs_name(attrs));
		cm_app_notify_attrs_changed(inst);
	}
}

/*
 * (Re)arm the heartbeat timeout.  The instance is declared down
 * heartbeat_timeout after the earlier of the last reply and the oldest
 * unanswered heartbeat.  Counting from the last reply bounds the time from
 * a failure to the notice by heartbeat_timeout itself (the reply before the
 * failure arrived at most then); counting from the oldest unanswered
 * heartbeat covers round trips longer than the interval.
 */
static uint64_t
inst_timeout_deadline(const CmInstance *inst)
{
	uint64_t	base = inst->last_reply_us;

	if (inst->answered_seq != inst->next_seq)
	{
		uint64_t	oldest = inst->sent_us[inst->answered_seq % CM_HEARTBEAT_RING];

		if (oldest < base)
			base = oldest;
	}
	return base + (uint64_t) cm_server.cfg.heartbeat_timeout * 1000;
}

static void
inst_arm_timeout(CmInstance *inst, uint64_t now)
{
	uint64_t	deadline = inst_timeout_deadline(inst);

	set_timer_us(inst->timeout_timer, deadline > now ? deadline - now : 0);
}

/*
 * Send one heartbeat: on the heartbeat_interval timer (fd -1 and what 0
 * also once when the instance is up), or, with what CM_HEARTBEAT_EXTRA,
 * an extra one that cm_dgram.c sends as a datagram only while a reply is
 * overdue.
 */
void
cm_instance_heartbeat(CmInstance *inst, bool extra)
{
	CmProtoMsg	msg;
	uint64_t	now = cm_now_us();

	if (inst->state != CM_INST_UP)
		return;
	if (inst->next_seq - inst->answered_seq >= CM_HEARTBEAT_RING)
	{
		cm_debug("%s: %u heartbeats unanswered; not sending more until a reply arrives",
				 inst->label, (unsigned) (inst->next_seq - inst->answered_seq));
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_HEARTBEAT;
	msg.u.heartbeat.seq = inst->next_seq;
	msg.u.heartbeat.echo = now;
	inst->sent_us[inst->next_seq % CM_HEARTBEAT_RING] = now;
	inst->next_seq++;
	if (inst->dgram_fd >= 0)
	{
		uint8_t		frame[64];
		size_t		n = cm_proto_encode(CM_DIR_TO_WATCHDOG, &msg, frame, sizeof(frame));

		/* as a datagram, over TCP, or both: the path decides (cm_dgram.c) */
		if (n > 0 && !cm_dgram_heartbeat(inst, frame, n, now, extra))
			return;
	}
	inst_send(inst, &msg);
}

static void
inst_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	cm_instance_heartbeat((CmInstance *) arg, false);
}

static void
inst_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	CmInstance *inst = arg;

	if (inst->state != CM_INST_UP)
		return;
	inst_down(inst, CM_REASON_TIMEOUT, CM_FAIL_TIMEOUT, "heartbeat not answered within %d ms",
			  cm_server.cfg.heartbeat_timeout);
}

/* Connection/hello deadline, or retry timer. */
static void
inst_state_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	CmInstance *inst = arg;

	switch (inst->state)
	{
		case CM_INST_WAITING:
			inst_connect(inst);
			break;
		case CM_INST_CONNECTING:
			inst_connect_failed(inst, "%s not established within connect_timeout (%d ms)",
								inst->resolving ? "name resolution" : "connection",
								cm_server.cfg.connect_timeout);
			break;
		case CM_INST_HELLO:
			inst_connect_failed(inst, "no welcome from the watchdog within connect_timeout (%d ms)",
								cm_server.cfg.connect_timeout);
			break;
		case CM_INST_UP:
		case CM_INST_REMOVED:
			break;
	}
}

/* The watchdog welcomed us: the instance is up. */
static void
inst_become_up(CmInstance *inst, const CmProtoWelcome *w)
{
	uint64_t	now = cm_now_us();
	bool		was_restarting = inst->restarting;

	evtimer_del(inst->state_timer);
	evtimer_del(inst->restart_timer);
	inst->restarting = false;
	inst->state = CM_INST_UP;
	inst->version = w->version;
	inst->check_attr_interval_ms = w->check_attr_interval_ms;
	inst->server_timeout_ms = w->server_timeout_ms;
	if (!was_restarting)
		inst->attrs = w->attrs; /* else inst_set_attrs() below, once up */
	inst->next_seq = 1;
	inst->answered_seq = 1;
	inst->last_reply_us = now;
	inst->last_reply_wall = time(NULL);
	inst->rtt_us = 0;
	inst->heartbeats = 0;
	inst->up_since_us = now;
	inst->up_since_wall = time(NULL);
	inst->ever_up = true;
	inst->backoff_ms = CM_BACKOFF_MIN_MS;
	inst->last_error[0] = '\0';

	cm_info("%s: instance is up: %s%s (protocol %d.%d, check_attr_interval %u ms%s)",
			inst->label, cm_proto_attrs_name(w->attrs),
			(w->attrs & CM_PROTO_ATTR_STOPPING) ?
			", but its server is shutting down: no application connections are routed to it" : "",
			CM_PROTO_VERSION_MAJOR(w->version), CM_PROTO_VERSION_MINOR(w->version),
			(unsigned) w->check_attr_interval_ms,
			inst->authenticated ? ", authenticated" : "");
	if (w->server_timeout_ms != 0 &&
		w->server_timeout_ms <= (uint32_t) cm_server.cfg.heartbeat_timeout)
		cm_log_detail(CM_LOG_WARNING,
					  "Sessions may be terminated before applications are notified.", NULL,
					  "%s: the watchdog declares this conmgr lost after %u ms, not later than heartbeat_timeout (%d ms)",
					  inst->label, (unsigned) w->server_timeout_ms,
					  cm_server.cfg.heartbeat_timeout);

	{
		struct timeval tv;

		tv.tv_sec = cm_server.cfg.heartbeat_interval / 1000;
		tv.tv_usec = (cm_server.cfg.heartbeat_interval % 1000) * 1000;
		event_add(inst->hb_timer, &tv);
	}
	inst_arm_timeout(inst, now);
	cm_dgram_start(inst);
	inst_heartbeat_cb(-1, 0, inst);
	if (was_restarting)
	{
		CmListIter	it;
		int			n = 0;

		/* the new watchdog process knows none of our sessions */
		cm_list_foreach(it, &inst->apps)
		{
			CmApp	   *app = cm_list_container(CmApp, inst_node, it.cur);

			if (app->state == CM_APP_REGISTERED)
			{
				cm_instance_forward_session(inst, CM_MSG_REGISTER, app->backend_pid,
											&app->local);
				n++;
			}
		}
		cm_info("%s: the watchdog is back after its restart; %d application connection%s kept, %d session%s registered again",
				inst->label, inst->napps, inst->napps == 1 ? "" : "s", n, n == 1 ? "" : "s");
		/* an attribute that changed meanwhile is routed and notified as usual */
		inst_set_attrs(inst, w->attrs);
	}
	cm_check_shutdown();
}

/*
 * The watchdog process restarts while its server keeps running (a goodbye
 * with reason "watchdog restarting"): reconnect at once, and keep the
 * application connections.  They are notified only if the watchdog is not
 * back by the time the heartbeat timeout would have expired, so the bound
 * on noticing a real failure meanwhile is unchanged.
 */
static void
inst_restarting(CmInstance *inst, const char *message)
{
	uint64_t	now = cm_now_us();
	uint64_t	deadline = inst_timeout_deadline(inst);

	inst_teardown(inst);
	inst->restarting = true;
	inst->down_since_wall = time(NULL);
	snprintf(inst->last_error, sizeof(inst->last_error), "the watchdog is restarting: %s", message);
	cm_info("%s: the watchdog is restarting (%s); reconnecting, keeping %d application connection%s unless it is not back within %llu ms",
			inst->label, message, inst->napps, inst->napps == 1 ? "" : "s",
			(unsigned long long) (deadline > now ? (deadline - now) / 1000 : 0));
	set_timer_us(inst->restart_timer, deadline > now ? deadline - now : 0);
	inst->backoff_ms = CM_BACKOFF_MIN_MS;
	inst_schedule_retry(inst, 0);
}

static void
inst_restart_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	CmInstance *inst = arg;

	if (!inst->restarting || inst->state == CM_INST_UP)
		return;
	inst_down(inst, CM_REASON_TIMEOUT, CM_FAIL_TIMEOUT,
			  "the watchdog did not come back within heartbeat_timeout (%d ms) after it restarted",
			  cm_server.cfg.heartbeat_timeout);
}

/*
 * A heartbeat reply arrived, by the connection or as a datagram.  A reply
 * that no heartbeat awaits is a protocol violation and declares the
 * instance down (the caller tests its state); one to a heartbeat that a
 * reply by the other path answered already is ignored.
 */
void
cm_instance_heartbeat_reply(CmInstance *inst, const CmProtoHeartbeat *hb,
							bool datagram)
{
	uint64_t	now = cm_now_us();
	uint32_t	seq = hb->seq;

	if ((uint32_t) (seq - inst->answered_seq) >=
		(uint32_t) (inst->next_seq - inst->answered_seq))
	{
		if ((uint32_t) (inst->answered_seq - 1 - seq) < CM_HEARTBEAT_RING &&
			inst->answered_seq > 1)
			return;				/* answered already */
		if (datagram)
		{
			/* sealed by the watchdog, but not ours to take: ignored */
			cm_metrics_dgram_dropped(CM_DGRAM_DROP_MALFORMED);
			return;
		}
		inst_down(inst, CM_REASON_CONN_LOST, CM_FAIL_PROTOCOL,
				  "protocol violation: reply to heartbeat %u, which is not outstanding",
				  (unsigned) seq);
		return;
	}
	if (!datagram)
		cm_dgram_tcp_answer(inst, now);
	inst->rtt_us = now - inst->sent_us[seq % CM_HEARTBEAT_RING];
	cm_metrics_heartbeat(inst, inst->rtt_us);
	inst->answered_seq = seq + 1;
	inst->last_reply_us = now;
	inst->last_reply_wall = time(NULL);
	inst->heartbeats++;
	inst_arm_timeout(inst, now);
	inst_set_attrs(inst, hb->attrs);
}

/*
 * Say goodbye to the watchdog of an UP instance and write it out now, so
 * that closing the connection next is not taken for a lost client host.
 */
static void
inst_goodbye(CmInstance *inst, uint16_t reason, const char *message)
{
	CmProtoMsg	msg;

	if (inst->bev == NULL)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_GOODBYE;
	msg.u.notice.reason = reason;
	cm_proto_set_string(&msg.u.notice.message, message);
	if (inst_send(inst, &msg))
		cm_flush_now(inst->bev);
}

/*
 * The watchdog's challenge: answer with our proof, or fail the connection
 * attempt.
 */
static void
inst_challenge(CmInstance *inst, const CmProtoNonce *challenge)
{
	CmProtoMsg	msg;

	if (!inst->auth)
	{
		inst_connect_failed(inst, "the watchdog requires authentication: set secret_file in conmgr.conf to a file holding the watchdog's secret (watchdog.secret_file)");
		return;
	}
	if (inst->challenged)
	{
		inst_connect_failed(inst, "protocol violation: a second authentication challenge");
		return;
	}
	if (challenge->len != CM_AUTH_NONCE_LEN)
	{
		inst_connect_failed(inst, "protocol violation: the watchdog's challenge is %u bytes long, not %d",
							(unsigned) challenge->len, CM_AUTH_NONCE_LEN);
		return;
	}
	memcpy(inst->nonce_s, challenge->data, CM_AUTH_NONCE_LEN);
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_PROOF;
	msg.u.nonce.len = CM_AUTH_PROOF_LEN;
	/* the proof covers our hello and this challenge, byte for byte */
	if (!cm_auth_transcript_add(&inst->transcript, inst->frame, inst->frame_len) ||
		!cm_auth_conmgr_proof(&cm_server.secret, &inst->transcript,
							  msg.u.nonce.data))
	{
		inst_connect_failed(inst, "could not compute the authentication proof");
		return;
	}
	inst->challenged = true;
	if (!inst_send(inst, &msg))
	{
		inst_connect_failed(inst, "could not send the authentication proof");
		return;
	}
	cm_debug("%s: authentication challenge answered", inst->label);
}

/*
 * The welcome.  When we asked for authentication, the watchdog must have
 * challenged us and must prove it holds the secret too; otherwise it could
 * be anything that speaks the protocol, and its attributes are not to be
 * trusted: the connection attempt fails then.
 */
static void
inst_welcome(CmInstance *inst, const CmProtoWelcome *w)
{
	const char *problem = NULL;

	if (inst->auth)
	{
		uint8_t		expected[CM_AUTH_PROOF_LEN];
		CmAuthTranscript t = inst->transcript;

		/*
		 * The watchdog's proof covers the handshake and every field of the
		 * welcome before it (the proof is the last field); the session keys
		 * come from the whole handshake.
		 */
		if (!inst->challenged)
			problem = "the watchdog welcomed this conmgr without authenticating it (is watchdog.secret_file set on the server?)";
		else if (w->proof_len != CM_AUTH_PROOF_LEN ||
				 !cm_auth_transcript_add(&t, inst->frame,
										 inst->frame_len - (1 + CM_AUTH_PROOF_LEN)) ||
				 !cm_auth_watchdog_proof(&cm_server.secret, &t, expected) ||
				 !cm_auth_proof_equal(w->proof, w->proof_len, expected))
			problem = "the watchdog did not prove it holds the secret of secret_file (do the two secret files differ?)";
		if (inst->challenged &&
			cm_auth_transcript_add(&inst->transcript, inst->frame, inst->frame_len) &&
			cm_auth_session_keys(&cm_server.secret, &inst->transcript, &inst->keys))
		{
			inst->sealed = true;
			inst->seq_in = inst->seq_out = 0;
		}
		else if (problem == NULL)
			problem = "could not derive the session keys";
	}
	if (problem)
	{
		/*
		 * The watchdog has given us a slot: leave cleanly, not as a lost
		 * host (sealed with our keys, which a watchdog with our secret
		 * shares).
		 */
		inst_goodbye(inst, CM_REASON_AUTH, problem);
		inst_connect_failed(inst, "%s", problem);
		return;
	}
	inst->authenticated = inst->auth;
	inst_become_up(inst, w);
}

/*
 * Act on one message from the watchdog.  It may close the heartbeat
 * connection (inst->bev is then no longer the one the message came by).
 */
static void
inst_handle(CmInstance *inst, const CmProtoMsg *msg)
{
	const char *tname = cm_proto_type_name(CM_DIR_TO_CONMGR_HB, msg->type);
	char		text[CM_PROTO_ESCAPED_MAX];

	/* the watchdog's text goes into logs, status and notices: escaped */
	text[0] = '\0';
	if (msg->type == CM_MSG_REFUSE || msg->type == CM_MSG_SHUTDOWN ||
		msg->type == CM_MSG_GOODBYE)
		cm_proto_escape(msg->u.notice.message.str, text, sizeof(text));

	if (inst->state == CM_INST_HELLO)
	{
		switch (msg->type)
		{
			case CM_MSG_WELCOME:
				inst_welcome(inst, &msg->u.welcome);
				return;
			case CM_MSG_REFUSE:
				inst_connect_failed(inst, "the watchdog refused the connection (%s): %s",
									cm_proto_reason_name(msg->u.notice.reason),
									text);
				return;
			case CM_MSG_CHALLENGE:
				inst_challenge(inst, &msg->u.nonce);
				return;
			case CM_MSG_SHUTDOWN:
			case CM_MSG_GOODBYE:
				inst_connect_failed(inst, "the watchdog is shutting down: %s",
									text);
				return;
			default:
				inst_connect_failed(inst, "protocol violation: unexpected %s message before the welcome",
									tname);
				return;
		}
	}

	switch (msg->type)
	{
		case CM_MSG_HEARTBEAT_REPLY:
			cm_instance_heartbeat_reply(inst, &msg->u.heartbeat, false);
			return;
		case CM_MSG_ATTRIBUTES:
			inst_set_attrs(inst, msg->u.attributes.attrs);
			return;
		case CM_MSG_SHUTDOWN:
			inst_down(inst, CM_REASON_SHUTDOWN, CM_FAIL_SHUTDOWN,
					  "the instance is shutting down: %s",
					  text);
			return;
		case CM_MSG_GOODBYE:
			if (msg->u.notice.reason == CM_REASON_RESTART)
			{
				inst_restarting(inst, text);
				return;
			}
			/* FALLTHROUGH */
		case CM_MSG_REFUSE:
			inst_down(inst, msg->u.notice.reason == CM_REASON_SHUTDOWN ?
					  CM_REASON_SHUTDOWN : CM_REASON_CONN_LOST,
					  msg->u.notice.reason == CM_REASON_SHUTDOWN ?
					  CM_FAIL_SHUTDOWN : CM_FAIL_CONN_LOST,
					  "the watchdog closed the heartbeat connection (%s): %s",
					  cm_proto_reason_name(msg->u.notice.reason),
					  text);
			return;
		default:
			inst_down(inst, CM_REASON_CONN_LOST, CM_FAIL_PROTOCOL,
					  "protocol violation: unexpected %s message from the watchdog", tname);
			return;
	}
}

/*
 * A sealed frame from the watchdog that does not verify: something on the
 * path injected, altered, replayed, dropped or reordered frames.  Nothing
 * it says is believed; the connection is dropped (the instance's
 * applications are told the connection was lost) and made again.
 */
static void
inst_integrity_failure(CmInstance *inst, const char *what)
{
	if (inst->state == CM_INST_UP)
		inst_down(inst, CM_REASON_CONN_LOST, CM_FAIL_INTEGRITY,
				  "heartbeat connection failed its integrity check: %s", what);
	else
		inst_connect_failed(inst, "heartbeat connection failed its integrity check: %s", what);
}

/*
 * Read callback of a heartbeat connection: decode every whole frame and act
 * on it, as long as bev is the instance's connection (acting on a frame
 * may close it).  A malformed frame drops the connection (the instance is
 * declared down if it was up).
 */
static void
inst_read_cb(struct bufferevent *bev, void *arg)
{
	CmInstance *inst = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t		len;

	while (inst->bev == bev && (len = evbuffer_get_length(in)) > 0)
	{
		size_t		want = len < CM_PROTO_MAX_MSG ? len : CM_PROTO_MAX_MSG;
		uint8_t    *p = evbuffer_pullup(in, (ev_ssize_t) want);
		size_t		flen = 0;
		size_t		inner;
		uint64_t	seq = 0;
		const char *reason = "";
		CmProtoMsg	msg;
		CmSealedStatus st;
		uint8_t		frame[CM_PROTO_MAX_MSG];

		st = cm_sealed_next(CM_DIR_TO_CONMGR_HB,
							inst->sealed ? inst->keys.to_conmgr : NULL,
							inst->seq_in + 1, p, want, &flen, &seq, &msg,
							&reason);
		if (st == CM_SEALED_BAD_TAG)
		{
			inst_integrity_failure(inst, "a frame whose authentication tag is wrong");
			return;
		}
		if (st == CM_SEALED_BAD_SEQUENCE)
		{
			inst_integrity_failure(inst, "a frame out of sequence (replayed, dropped or reordered)");
			return;
		}
		if (st == CM_SEALED_INCOMPLETE)
			break;
		if (st != CM_SEALED_OK)
		{
			if (inst->state == CM_INST_UP)
				inst_down(inst, CM_REASON_CONN_LOST, CM_FAIL_PROTOCOL,
						  "invalid message from the watchdog: %s", reason);
			else
				inst_connect_failed(inst, "invalid message from the watchdog (is watchdog_port%d right?): %s",
									inst->number, reason);
			return;
		}
		inner = flen;
		if (inst->sealed)
		{
			inst->seq_in = seq;
			/* the opened frame has its own length field restored */
			inner = 1 + (size_t) cm_get_u32(p + 1);
		}
		/* the handshake hashes its frames as received */
		memcpy(frame, p, inner);
		inst->frame = frame;
		inst->frame_len = inner;
		evbuffer_drain(in, flen);
		inst_handle(inst, &msg);
	}
}

/*
 * Connection established (send the hello), or connection failed or closed:
 * try the next address, or declare the attempt failed, or the instance down.
 */
static void
inst_event_cb(struct bufferevent *bev, short what, void *arg)
{
	CmInstance *inst = arg;
	int			err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED)
	{
		CmProtoMsg	msg;

		cm_proto_hello_init(&msg, (uint32_t) cm_server.cfg.heartbeat_interval,
							(uint32_t) cm_server.cfg.heartbeat_timeout,
							CM_PROTO_AUTH_NONE, cm_server.hostname);
		inst->auth = cm_server.auth;
		inst->challenged = false;
		inst->authenticated = false;
		inst->sealed = false;
		inst->seq_in = inst->seq_out = 0;
		cm_auth_transcript_init(&inst->transcript);
		if (inst->auth)
		{
			if (!cm_auth_random(inst->nonce_c, sizeof(inst->nonce_c)))
			{
				inst_connect_failed(inst, "could not generate a random nonce for authentication");
				return;
			}
			msg.u.hello.auth_method = CM_PROTO_AUTH_HMAC_SHA256;
			msg.u.hello.nonce_len = CM_AUTH_NONCE_LEN;
			memcpy(msg.u.hello.nonce, inst->nonce_c, CM_AUTH_NONCE_LEN);
		}
		msg.u.hello.incarnation = cm_server.incarnation;
		inst->state = CM_INST_HELLO;
		cm_debug("%s: TCP connection established, hello sent", inst->label);
		inst_send(inst, &msg);
		return;
	}

	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
	{
		char		cause[200];

		if (inst->state == CM_INST_HELLO && ((what & BEV_EVENT_EOF) || err == 0))
			snprintf(cause, sizeof(cause),
					 "the peer closed the connection without answering the hello (is watchdog_port%d the port of the instance's watchdog?)",
					 inst->number);
		else if ((what & BEV_EVENT_EOF) || err == 0)
			snprintf(cause, sizeof(cause), "the watchdog closed the connection");
		else
			snprintf(cause, sizeof(cause), "%s", evutil_socket_error_to_string(err));

		if (inst->state == CM_INST_UP)
			inst_down(inst, CM_REASON_CONN_LOST, CM_FAIL_CONN_LOST,
					  "heartbeat connection lost: %s", cause);
		else if (inst->state == CM_INST_CONNECTING && inst->ai_next != NULL)
			inst_connect_next(inst, cause);
		else
			inst_connect_failed(inst, "%s", cause);
	}
}

/* Forget the addresses and any name resolution in progress. */
static void
inst_free_addresses(CmInstance *inst)
{
	if (inst->dns_req)
	{
		struct evdns_getaddrinfo_request *req = inst->dns_req;

		/* the callback then runs with EVUTIL_EAI_CANCEL and ignores it */
		inst->dns_req = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (inst->ai_list)
		evutil_freeaddrinfo(inst->ai_list);
	inst->ai_list = NULL;
	inst->ai_next = NULL;
}

/*
 * Connect to the next address of the instance.  Each address is tried in
 * turn within the same connect_timeout; the attempt fails when none is
 * left.
 */
static void
inst_connect_next(CmInstance *inst, const char *previous_error)
{
	struct evutil_addrinfo *ai = inst->ai_next;
	int			fd;
	int			on = 1;
	unsigned int user_timeout = (unsigned int) cm_server.cfg.heartbeat_timeout;

	if (inst->bev)
	{
		bufferevent_free(inst->bev);
		inst->bev = NULL;
	}
	if (ai == NULL)
	{
		inst_connect_failed(inst, "%s", previous_error ? previous_error : "no address to connect to");
		return;
	}
	inst->ai_next = ai->ai_next;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		char		err[200];

		snprintf(err, sizeof(err), "could not create socket: %s", strerror(errno));
		inst_connect_next(inst, err);
		return;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0)
		cm_warning("%s: setsockopt(TCP_NODELAY) failed: %s", inst->label, strerror(errno));
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout)) < 0)
		cm_warning("%s: setsockopt(TCP_USER_TIMEOUT) failed: %s", inst->label, strerror(errno));

	inst->bev = bufferevent_socket_new(cm_server.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (inst->bev == NULL)
	{
		close(fd);
		inst_connect_failed(inst, "out of memory");
		return;
	}
	bufferevent_setcb(inst->bev, inst_read_cb, NULL, inst_event_cb, inst);
	bufferevent_setwatermark(inst->bev, EV_READ, 0, 4 * CM_PROTO_MAX_MSG);
	inst->state = CM_INST_CONNECTING;
	if (bufferevent_socket_connect(inst->bev, ai->ai_addr, (int) ai->ai_addrlen) < 0)
	{
		char		err[200];

		snprintf(err, sizeof(err), "%s", strerror(errno));
		inst_connect_next(inst, err);
		return;
	}
	bufferevent_enable(inst->bev, EV_READ | EV_WRITE);
	cm_debug("%s: connecting", inst->label);
}

/* Name resolution finished (evdns callback). */
static void
inst_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	CmInstance *inst = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;					/* the attempt was abandoned */
	inst->dns_req = NULL;
	inst->resolving = false;
	if (result != 0 || res == NULL)
	{
		if (res)
			evutil_freeaddrinfo(res);
		inst_connect_failed(inst, "could not resolve host name \"%s\": %s",
							inst->cfg->host, evutil_gai_strerror(result));
		return;
	}
	inst->ai_list = res;
	inst->ai_next = res;
	inst_connect_next(inst, NULL);
}

/*
 * Start a connection attempt to the instance's watchdog.  A numeric
 * address (backend_hostaddrN, or a backend_hostN that is one) is used as
 * it is; a host name is resolved without blocking the event loop (evdns,
 * which reads /etc/resolv.conf and /etc/hosts).  connect_timeout bounds
 * resolution, connection and welcome together.
 */
static void
inst_connect(CmInstance *inst)
{
	const CmInstanceConfig *ic = inst->cfg;
	const char *host = ic->hostaddr ? ic->hostaddr : ic->host;
	struct evutil_addrinfo hints;
	char		portstr[16];
	unsigned char buf[16];
	bool		numeric;
	int			rc;

	inst_free_addresses(inst);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", ic->watchdog_port);
	numeric = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;

	inst->state = CM_INST_CONNECTING;
	set_timer_ms(inst->state_timer, (uint64_t) cm_server.cfg.connect_timeout);

	if (numeric)
	{
		hints.ai_flags |= EVUTIL_AI_NUMERICHOST;
		rc = evutil_getaddrinfo(host, portstr, &hints, &inst->ai_list);
		if (rc != 0)
		{
			inst->ai_list = NULL;
			inst_connect_failed(inst, "invalid address \"%s\": %s", host,
								evutil_gai_strerror(rc));
			return;
		}
		inst->ai_next = inst->ai_list;
		inst_connect_next(inst, NULL);
		return;
	}

	if (cm_server.dns == NULL)
	{
		cm_server.dns = evdns_base_new(cm_server.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if (cm_server.dns == NULL)
		{
			inst_connect_failed(inst, "could not initialize name resolution (see /etc/resolv.conf), use backend_hostaddr%d",
								inst->number);
			return;
		}
	}
	inst->resolving = true;
	{
		struct evdns_getaddrinfo_request *req;

		req = evdns_getaddrinfo(cm_server.dns, host, portstr, &hints,
								inst_resolved_cb, inst);
		/* the callback may already have run (e.g. /etc/hosts) */
		if (inst->resolving)
			inst->dns_req = req;
	}
}

/*
 * First connection attempt to an instance.
 */
void
cm_instance_start(CmInstance *inst)
{
	inst->backoff_ms = CM_BACKOFF_MIN_MS;
	inst_connect(inst);
}

/*
 * Create the instance object for definition n of the configuration and
 * insert it into cm_server.instances[], which stays ordered by number.
 */
static CmInstance *
inst_create(int n)
{
	const CmInstanceConfig *ic = &cm_server.cfg.inst[n];
	CmInstance *inst;
	const char *h;
	int			pos;

	inst = calloc(1, sizeof(CmInstance));
	if (inst == NULL)
	{
		cm_fatal("out of memory");
		exit(1);
	}
	inst->number = n;
	inst->cfg = ic;
	h = ic->hostaddr ? ic->hostaddr : ic->host;
	inst->app_host = h;
	if (strchr(h, ':'))
		snprintf(inst->label, sizeof(inst->label), "instance %d ([%s]:%d)",
				 n, h, ic->watchdog_port);
	else
		snprintf(inst->label, sizeof(inst->label), "instance %d (%s:%d)",
				 n, h, ic->watchdog_port);
	inst->state = CM_INST_WAITING;
	inst->state_timer = evtimer_new(cm_server.base, inst_state_timer_cb, inst);
	inst->hb_timer = event_new(cm_server.base, -1, EV_PERSIST, inst_heartbeat_cb, inst);
	inst->timeout_timer = evtimer_new(cm_server.base, inst_timeout_cb, inst);
	inst->restart_timer = evtimer_new(cm_server.base, inst_restart_timeout_cb, inst);
	inst->dgram_fd = -1;
	snprintf(inst->last_error, sizeof(inst->last_error), "not connected yet");
	cm_metrics_instance_created(inst);

	pos = cm_server.ninstances;
	while (pos > 0 && cm_server.instances[pos - 1]->number > n)
	{
		cm_server.instances[pos] = cm_server.instances[pos - 1];
		pos--;
	}
	cm_server.instances[pos] = inst;
	cm_server.ninstances++;
	return inst;
}

/* Free an instance that no callback can reach any more. */
static void
inst_free(CmInstance *inst)
{
	inst_teardown(inst);
	event_free(inst->state_timer);
	event_free(inst->hb_timer);
	event_free(inst->timeout_timer);
	event_free(inst->restart_timer);
	free(inst);
}

void
cm_instance_create_all(void)
{
	int			i;

	cm_server.ninstances = 0;
	for (i = 0; i < cm_server.cfg.ninstances; i++)
	{
		if (cm_server.cfg.inst[i].defined)
			inst_create(i);
	}
}

/* A reload added instance n (or changed it): connect to it. */
void
cm_instance_add(int n)
{
	CmInstance *inst = inst_create(n);

	cm_info("%s: added by a configuration reload", inst->label);
	cm_instance_start(inst);
}

/*
 * A reload removed or changed instance n: say goodbye to its watchdog,
 * notify the application connections routed to it, and forget it.  Must
 * run before its definition in cm_server.cfg is replaced.
 */
void
cm_instance_remove(int n)
{
	CmInstance *inst = NULL;
	char		notice[400];
	int			i;

	for (i = 0; i < cm_server.ninstances; i++)
	{
		if (cm_server.instances[i]->number == n)
		{
			inst = cm_server.instances[i];
			break;
		}
	}
	if (inst == NULL)
		return;
	for (; i < cm_server.ninstances - 1; i++)
		cm_server.instances[i] = cm_server.instances[i + 1];
	cm_server.ninstances--;

	if (inst->state == CM_INST_UP)
		inst_goodbye(inst, CM_REASON_CONFIG, "instance removed from the conmgr configuration");
	cm_info("%s: removed by a configuration reload; notifying %d application connection%s",
			inst->label, inst->napps, inst->napps == 1 ? "" : "s");
	snprintf(notice, sizeof(notice), "%s was removed from the configuration of conmgr",
			 inst->label);
	inst_teardown(inst);
	cm_app_notify_instance_down(inst, CM_REASON_CONFIG, notice);

	/* stopped: freed once the running callback has returned */
	evtimer_del(inst->restart_timer);
	inst->restarting = false;
	inst->state = CM_INST_REMOVED;
	cm_list_push_head(&removed_instances, &inst->removed_node);
	cm_free_later();
	cm_check_shutdown();
}

/*
 * Free the instances removed since the last call (from cm_free_later's
 * event, and at the end of the process).
 */
void
cm_instance_free_removed(void)
{
	while (!cm_list_is_empty(&removed_instances))
	{
		CmInstance *inst = cm_list_container(CmInstance, removed_node,
											 cm_list_first(&removed_instances));

		cm_list_delete(&removed_instances, &inst->removed_node);
		inst_free(inst);
	}
}

/*
 * Forward the registration ('J') or unregistration ('K') of an application
 * session to the instance's watchdog; nothing when it is not up.
 */
void
cm_instance_forward_session(CmInstance *inst, uint8_t type,
							uint32_t backend_pid, const CmProtoAddr *addr)
{
	CmProtoMsg	msg;

	if (inst->state != CM_INST_UP)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.u.session.backend_pid = backend_pid;
	msg.u.session.client = *addr;
	inst_send(inst, &msg);
}

/*
 * Say goodbye to every watchdog (clean stop: the watchdog then does not
 * treat our disappearance as a lost client host) and write it out now.
 */
void
cm_instance_goodbye_all(void)
{
	int			i;

	for (i = 0; i < cm_server.ninstances; i++)
	{
		CmInstance *inst = cm_server.instances[i];

		if (inst->state != CM_INST_UP)
			continue;
		inst_goodbye(inst, CM_REASON_SHUTDOWN, "conmgr is shutting down");
		cm_info("%s: goodbye sent", inst->label);
	}
}

void
cm_instance_free_all(void)
{
	int			i;

	for (i = 0; i < cm_server.ninstances; i++)
		inst_free(cm_server.instances[i]);
	cm_server.ninstances = 0;
	cm_instance_free_removed();
}
