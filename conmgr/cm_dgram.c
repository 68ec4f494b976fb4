/*-------------------------------------------------------------------------
 *
 * cm_dgram.c
 *	  Heartbeats as UDP datagrams beside the heartbeat connection
 *	  (protocol 1.2, docs/protocol.md "Datagram heartbeats").
 *
 * A heartbeat sent over TCP during a short network outage arrives only at
 * the next retransmission, and the retransmission timeout starts at about
 * 200 ms and doubles; a datagram is delivered at once or lost.  So once a
 * watchdog welcomes this conmgr with protocol 1.2 on a sealed connection,
 * each instance gets a UDP socket connected to the address its heartbeat
 * connection reached (same port number), and the path of its heartbeats
 * follows these rules:
 *
 *	probe		every heartbeat goes both ways until the first datagram reply
 *				(path: datagram), or for CM_DGRAM_PROBE_MS or 5 intervals,
 *				whichever is longer (path: tcp);
 *	datagram	heartbeats go as datagrams only; when no datagram reply has
 *				come for heartbeat_timeout - 2 * heartbeat_interval (one
 *				interval at least), each also goes over TCP, and
 *				CM_DGRAM_TCP_ONLY_REPLIES answers by TCP alone mean the
 *				datagrams stopped getting through (path: tcp);
 *				while a heartbeat is unanswered (after interval /
 *				CM_DGRAM_EXTRA_DIVISOR, or twice the last round trip if
 *				longer), an extra datagram heartbeat goes every interval /
 *				CM_DGRAM_EXTRA_DIVISOR, so that the first after an outage
 *				leaves at most that long after it ended, not up to a whole
 *				interval;
 *	tcp			heartbeats go over TCP; every CM_DGRAM_REPROBE_INTERVALS
 *				intervals one goes both ways, and a datagram reply brings the
 *				path back to datagram.
 *
 * A TCP copy sent during an outage waits in TCP's retransmission queue
 * until after it: harmless, since its reply is then a duplicate, as long as
 * the connection survives.  So the connection's TCP_USER_TIMEOUT
 * (heartbeat_timeout on TCP) grows by CM_DGRAM_TCP_SLACK_MS on the
 * datagram path: a TCP copy, a registration or an attribute push in flight
 * during a short outage must not break it.  And
 * one heartbeat every CM_DGRAM_TCP_KEEPALIVE_MS also goes over TCP, so
 * that a firewall or NAT that forgets idle TCP connections (some after 350
 * s) does not forget this one; its reply, usually a duplicate, is ignored.
 *
 * A reply answers its heartbeat whichever way each came
 * (cm_instance_heartbeat_reply); failure detection does not change.
 * Datagrams that are not a valid reply of this session (wrong size or id,
 * bad tag, an old sequence number) are dropped and counted
 * (conmgr_heartbeat_datagrams_dropped_total), never logged one by one.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_dgram.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "cm_log.h"
#include "conmgr.h"

#define CM_DGRAM_PROBE_MS			3000	/* a probe lasts this long at least */
#define CM_DGRAM_PROBE_INTERVALS	5	/* ... and this many intervals */
#define CM_DGRAM_REPROBE_INTERVALS	20	/* on TCP: a probe this often */
#define CM_DGRAM_TCP_ONLY_REPLIES	5	/* answers by TCP alone: blocked */
#define CM_DGRAM_BATCH				16	/* datagrams read per wake-up */
#define CM_DGRAM_TCP_SLACK_MS		60000	/* TCP_USER_TIMEOUT on datagrams: + this */
#define CM_DGRAM_TCP_KEEPALIVE_MS	30000	/* a heartbeat over TCP this often */
#define CM_DGRAM_EXTRA_DIVISOR		8	/* extra datagrams: interval / this */
#define CM_DGRAM_EXTRA_MAX			64	/* ... at most this many per outage */

static void dgram_read_cb(evutil_socket_t fd, short what, void *arg);
static void dgram_extra_cb(evutil_socket_t fd, short what, void *arg);

static uint64_t
interval_us(int intervals)
{
	return (uint64_t) intervals * (uint64_t) cm_server.cfg.heartbeat_interval * 1000;
}

/*
 * On the datagram path, heartbeats go over TCP as well once no datagram
 * reply has come for this long: heartbeat_timeout - 2 * heartbeat_interval,
 * one interval at least.
 */
static uint64_t
dgram_tcp_after_us(void)
{
	int64_t		ms = (int64_t) cm_server.cfg.heartbeat_timeout -
		2 * (int64_t) cm_server.cfg.heartbeat_interval;

	if (ms < cm_server.cfg.heartbeat_interval)
		ms = cm_server.cfg.heartbeat_interval;
	return (uint64_t) ms * 1000;
}

/* How long a probe waits for the first datagram reply. */
static uint64_t
probe_window_us(void)
{
	uint64_t	w = interval_us(CM_DGRAM_PROBE_INTERVALS);

	return w > CM_DGRAM_PROBE_MS * 1000ULL ? w : CM_DGRAM_PROBE_MS * 1000ULL;
}

/* TCP_USER_TIMEOUT of the heartbeat connection, in ms. */
static void
dgram_set_user_timeout(CmInstance *inst, unsigned int ms)
{
	if (inst->bev != NULL &&
		setsockopt(bufferevent_getfd(inst->bev), IPPROTO_TCP, TCP_USER_TIMEOUT,
				   &ms, sizeof(ms)) < 0)
		cm_warning("%s: setsockopt(TCP_USER_TIMEOUT) failed: %s", inst->label,
				   strerror(errno));
}

/* Back to TCP, saying why; probed again later. */
static void
dgram_use_tcp(CmInstance *inst, uint64_t now, const char *why)
{
	if (inst->dgram_path)
		dgram_set_user_timeout(inst, (unsigned int) cm_server.cfg.heartbeat_timeout);
	inst->dgram_path = false;
	inst->dgram_probing = false;
	inst->dgram_next_probe_us = now + interval_us(CM_DGRAM_REPROBE_INTERVALS);
	cm_info("%s: heartbeats go over TCP: %s; trying datagrams again every %d heartbeat intervals",
			inst->label, why, CM_DGRAM_REPROBE_INTERVALS);
}

/*
 * The instance is up: open its datagram socket when the watchdog speaks
 * 1.2 on a sealed connection and heartbeat_datagrams is on, and start the
 * probe.  Otherwise heartbeats go over TCP only, as with older watchdogs.
 */
void
cm_dgram_start(CmInstance *inst)
{
	struct sockaddr_storage ss;
	socklen_t	sslen = sizeof(ss);
	evutil_socket_t fd;

	cm_dgram_stop(inst);
	if (!inst->sealed || inst->version < CM_PROTO_VERSION_1_2 ||
		!cm_server.cfg.heartbeat_datagrams || inst->bev == NULL)
		return;
	/* the address and port the heartbeat connection reached */
	if (getpeername(bufferevent_getfd(inst->bev), (struct sockaddr *) &ss, &sslen) != 0 ||
		(ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *) &ss, sslen) != 0)
	{
		cm_warning("%s: could not open a datagram socket to the watchdog: %s; heartbeats go over TCP",
				   inst->label, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	inst->dgram_ev = event_new(cm_server.base, fd, EV_READ | EV_PERSIST,
							   dgram_read_cb, inst);
	if (inst->dgram_ev == NULL || event_add(inst->dgram_ev, NULL) != 0)
	{
		cm_warning("%s: could not watch the datagram socket; heartbeats go over TCP",
				   inst->label);
		if (inst->dgram_ev)
			event_free(inst->dgram_ev);
		inst->dgram_ev = NULL;
		close(fd);
		return;
	}
	inst->dgram_extra_timer = event_new(cm_server.base, -1, EV_PERSIST,
										dgram_extra_cb, inst);
	inst->dgram_fd = fd;
	inst->dgram_path = false;
	inst->dgram_probing = true;
	inst->dgram_probe_end_us = cm_now_us() + probe_window_us();
	inst->dgram_seq_in = inst->dgram_seq_out = 0;
	inst->dgram_tcp_only = 0;
	inst->dgram_last_reply_us = 0;
}

/* The heartbeat connection is closed: so is the datagram socket. */
void
cm_dgram_stop(CmInstance *inst)
{
	if (inst->dgram_ev)
		event_free(inst->dgram_ev);
	inst->dgram_ev = NULL;
	if (inst->dgram_extra_timer)
		event_free(inst->dgram_extra_timer);
	inst->dgram_extra_timer = NULL;
	if (inst->dgram_fd >= 0)
		close(inst->dgram_fd);
	inst->dgram_fd = -1;
	inst->dgram_path = false;
	inst->dgram_probing = false;
}

/* Send the heartbeat frame[0..len) (not sealed) as a datagram. */
static void
dgram_send(CmInstance *inst, const uint8_t *frame, size_t len)
{
	uint8_t		out[CM_AUTH_DGRAM_MAX];
	size_t		n;

	n = cm_auth_datagram_make(inst->keys.to_watchdog, inst->keys.datagram_id,
							  ++inst->dgram_seq_out, frame, len, out, sizeof(out));
	/* lost like any datagram when it cannot go: the TCP path takes over */
	if (n > 0)
		(void) send(inst->dgram_fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * A heartbeat is due (frame: it encoded, not sealed): send it as a
 * datagram when its path says so, and return whether it goes over TCP too.
 */
/*
 * While a reply is overdue on the datagram path: an extra heartbeat, as a
 * datagram only, every interval / CM_DGRAM_EXTRA_DIVISOR, at most
 * CM_DGRAM_EXTRA_MAX of them (the watchdog answers twice the interval's
 * rate and drops the others unanswered).
 */
static void
dgram_extra_arm(CmInstance *inst, uint64_t us)
{
	struct timeval tv;

	tv.tv_sec = (time_t) (us / 1000000);
	tv.tv_usec = (suseconds_t) (us % 1000000);
	evtimer_add(inst->dgram_extra_timer, &tv);
}

static void
dgram_extra_cb(evutil_socket_t fd, short what, void *arg)
{
	CmInstance *inst = arg;

	if (!inst->dgram_path || inst->state != CM_INST_UP ||
		inst->dgram_extra_sent >= CM_DGRAM_EXTRA_MAX)
		return;
	inst->dgram_extra_sent++;
	cm_instance_heartbeat(inst, true);
	if (inst->dgram_extra_timer != NULL)
		dgram_extra_arm(inst, interval_us(1) / CM_DGRAM_EXTRA_DIVISOR);
}

/* A heartbeat went as a datagram: extra ones follow unless it is answered. */
static void
dgram_watch_reply(CmInstance *inst)
{
	uint64_t	us = interval_us(1) / CM_DGRAM_EXTRA_DIVISOR;

	if (inst->dgram_extra_timer == NULL ||
		evtimer_pending(inst->dgram_extra_timer, NULL) ||
		inst->dgram_extra_sent >= CM_DGRAM_EXTRA_MAX)
		return;
	if (us < 2 * inst->rtt_us)
		us = 2 * inst->rtt_us;
	dgram_extra_arm(inst, us);
}

bool
cm_dgram_heartbeat(CmInstance *inst, const uint8_t *frame, size_t len,
				   uint64_t now, bool extra)
{
	if (inst->dgram_fd < 0)
		return !extra;
	if (extra)
	{
		dgram_send(inst, frame, len);
		return false;
	}
	if (inst->dgram_path)
	{
		dgram_send(inst, frame, len);
		dgram_watch_reply(inst);
		/* now and then: keeps the idle connection known to firewalls */
		if (now >= inst->dgram_next_tcp_us)
		{
			inst->dgram_next_tcp_us = now + CM_DGRAM_TCP_KEEPALIVE_MS * 1000ULL;
			return true;
		}
		/*
		 * Late: the datagrams may have stopped getting through.  A reply
		 * by TCP then still comes a whole interval before the timeout.
		 */
		return inst->dgram_last_reply_us + dgram_tcp_after_us() <= now;
	}
	if (inst->dgram_probing && now >= inst->dgram_probe_end_us)
	{
		char		why[128];

		snprintf(why, sizeof(why), "no datagram reply within %llu ms",
				 (unsigned long long) (probe_window_us() / 1000));
		dgram_use_tcp(inst, now, why);
	}
	else if (inst->dgram_probing || now >= inst->dgram_next_probe_us)
	{
		if (!inst->dgram_probing)
			inst->dgram_next_probe_us = now + interval_us(CM_DGRAM_REPROBE_INTERVALS);
		dgram_send(inst, frame, len);
	}
	return true;
}

/*
 * A reply by TCP answered a heartbeat no datagram reply had answered: on
 * the datagram path, enough of them in a row mean that the datagrams no
 * longer get through while the connection does.
 */
void
cm_dgram_tcp_answer(CmInstance *inst, uint64_t now)
{
	if (inst->dgram_fd < 0 || !inst->dgram_path)
		return;
	if (++inst->dgram_tcp_only >= CM_DGRAM_TCP_ONLY_REPLIES)
		dgram_use_tcp(inst, now, "datagrams stopped getting through while the TCP connection answers");
}

/*
 * One datagram received: a reply of this session, or a drop counted.  A
 * reply may tear the instance's heartbeat connection down, and its
 * datagram socket with it (the caller tests inst->dgram_fd).
 */
static void
dgram_handle(CmInstance *inst, uint8_t *buf, size_t len)
{
	const uint8_t *id = cm_auth_datagram_id(buf, len);
	uint64_t	seq;
	size_t		inner;
	CmProtoMsg	msg;
	const char *reason = NULL;
	uint64_t	now;

	if (id == NULL)
	{
		cm_metrics_dgram_dropped(CM_DGRAM_DROP_MALFORMED);
		return;
	}
	if (memcmp(id, inst->keys.datagram_id, CM_AUTH_DGRAM_ID_LEN) != 0)
	{
		cm_metrics_dgram_dropped(CM_DGRAM_DROP_UNKNOWN);
		return;
	}
	if (!cm_auth_datagram_open(inst->keys.to_conmgr, buf, len, &seq, &inner))
	{
		cm_metrics_dgram_dropped(CM_DGRAM_DROP_TAG);
		return;
	}
	if (seq <= inst->dgram_seq_in)
	{
		cm_metrics_dgram_dropped(CM_DGRAM_DROP_REPLAY);
		return;
	}
	if (cm_proto_decode(CM_DIR_TO_CONMGR_HB, buf + CM_AUTH_DGRAM_ID_LEN, inner,
						&msg, &reason) != CM_PROTO_OK ||
		msg.type != CM_MSG_HEARTBEAT_REPLY)
	{
		cm_metrics_dgram_dropped(CM_DGRAM_DROP_MALFORMED);
		return;
	}
	inst->dgram_seq_in = seq;
	now = cm_now_us();
	inst->dgram_last_reply_us = now;
	inst->dgram_tcp_only = 0;
	/* answered: no more extra datagrams */
	inst->dgram_extra_sent = 0;
	if (inst->dgram_extra_timer)
		evtimer_del(inst->dgram_extra_timer);
	if (!inst->dgram_path)
	{
		inst->dgram_path = true;
		inst->dgram_probing = false;
		inst->dgram_next_tcp_us = now + CM_DGRAM_TCP_KEEPALIVE_MS * 1000ULL;
		dgram_set_user_timeout(inst, (unsigned int) cm_server.cfg.heartbeat_timeout +
							   CM_DGRAM_TCP_SLACK_MS);
		cm_info("%s: heartbeats go as datagrams", inst->label);
	}
	cm_instance_heartbeat_reply(inst, &msg.u.heartbeat, true);
}

static void
dgram_read_cb(evutil_socket_t fd, short what, void *arg)
{
	CmInstance *inst = arg;

	for (int i = 0; i < CM_DGRAM_BATCH && inst->dgram_fd == fd; i++)
	{
		uint8_t		buf[CM_AUTH_DGRAM_MAX + 1];
		ssize_t		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (r < 0)
		{
			/* ECONNREFUSED: nothing listens there; the probe finds out */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		if ((size_t) r > CM_AUTH_DGRAM_MAX)
		{
			cm_metrics_dgram_dropped(CM_DGRAM_DROP_MALFORMED);
			continue;
		}
		/* the instance may be torn down: the loop ends when its socket is */
		dgram_handle(inst, buf, (size_t) r);
	}
}

/* The path of an up instance's heartbeats, for status and metrics. */
const char *
cm_dgram_path_name(const CmInstance *inst)
{
	return inst->dgram_path ? "datagram" : "tcp";
}
