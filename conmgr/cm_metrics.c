/*-------------------------------------------------------------------------
 *
 * cm_metrics.c
 *	  Metrics for monitoring systems: counters, and the HTTP endpoint that
 *	  serves them in the Prometheus text format (version 0.0.4).
 *
 * With metrics_port set, conmgr answers "GET /metrics" on that port, on
 * the loopback addresses only (cm_listen.c), and nothing else: another
 * method is answered 405, another path 404, a request header larger than
 * CM_METRICS_MAX_REQUEST 431, a request line that is not HTTP/1.x 400; a
 * connection that has not sent its whole request header within
 * CM_METRICS_REQUEST_TIMEOUT_MS is closed.  Every connection serves one
 * request and is closed ("Connection: close").  At most
 * CM_METRICS_MAX_CONNECTIONS are open at once; beyond, a new connection is
 * answered 503 and closed at once, so that whoever opens connections to
 * this port cannot take the descriptors that the heartbeat and application
 * connections need (cm_defaults.h).
 *
 * The server is a small state machine per connection on a bufferevent, as
 * the application connections are, rather than libevent's evhttp: the
 * evhttp of libevent 2.1 has no way to bound its number of connections
 * (evhttp_set_max_connections and evhttp_set_newreqcb came with 2.2), and
 * one GET of one path needs little of the rest.
 *
 * The output holds no secret: instance numbers, host names and ports of
 * conmgr.conf, states, counts and times.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_metrics.c
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_log.h"
#include "conmgr.h"

/* States of a metrics connection. */
typedef enum CmMetricsConnState
{
	MC_READING = 0,				/* waiting for the whole request header */
	MC_ANSWERING,				/* answer queued, being written */
	MC_DRAINING					/* answer written, sending side shut; what the
								 * client still sends is read away until it
								 * closes */
} CmMetricsConnState;

typedef struct CmMetricsConn
{
	CmMetricsConnState state;
	struct bufferevent *bev;
	struct event *timer;		/* request deadline, then linger */
	bool		peer_closed;	/* the client shut its sending side */
	CmListNode	node;			/* in conns */
} CmMetricsConn;

static CmList conns;
static CmLogLimit limit_cap;
static CmLogLimit limit_accept;

static const uint64_t rtt_bounds[CM_RTT_BUCKETS] = CM_RTT_BUCKET_BOUNDS;

/* Label values of the counters' enumerations, in their order. */
static const char *const failure_names[CM_FAIL_COUNT] = {
	"timeout", "connection_lost", "shutdown", "protocol_violation", "integrity"
};
static const char *const refusal_names[CM_REFUSE_COUNT] = {
	"max_app_connections", "max_app_connections_per_user", "open_files", "stopping"
};
static const char *const route_names[CM_ROUTE_COUNT] = {
	"routed", "no_instance", "stopping"
};
static const char *const drop_names[CM_DGRAM_DROP_COUNT] = {
	"malformed", "unknown", "tag", "replay"
};

/*
 * Reasons of the failure notices conmgr sends, with their label values:
 * every one is shown, at 0 until the first notice.  A notice with another
 * reason (none is sent today) is shown as "other".
 */
static const struct
{
	uint16_t	reason;
	const char *name;
}			notice_names[] = {
	{CM_REASON_TIMEOUT, "timeout"},
	{CM_REASON_CONN_LOST, "connection_lost"},
	{CM_REASON_SHUTDOWN, "shutdown"},
	{CM_REASON_ATTR_CHANGED, "attributes_changed"},
	{CM_REASON_CONFIG, "configuration"},
};

#define NUM_NOTICE_NAMES (sizeof(notice_names) / sizeof(notice_names[0]))

/* Instance states as cm_instance_state_name() names them. */
static const char *const state_names[] = {
	"down", "connecting", "restarting", "up", "draining"
};

/* ------------------------------------------------------------------ */
/* Counters															  */
/* ------------------------------------------------------------------ */

/*
 * An instance object was created (start, or a reload that added or changed
 * it): keep the counters of its number when its labels are the same,
 * otherwise start them again from zero for the new series.
 */
void
cm_metrics_instance_created(const CmInstance *inst)
{
	CmInstMetrics *m = &cm_server.metrics.inst[inst->number];

	if (m->used && m->port == inst->cfg->port &&
		strcmp(m->host, inst->app_host) == 0)
		return;
	memset(m, 0, sizeof(*m));
	m->used = true;
	snprintf(m->host, sizeof(m->host), "%s", inst->app_host);
	m->port = inst->cfg->port;
}

/* A heartbeat reply arrived after rtt_us (inst_heartbeat_reply). */
void
cm_metrics_heartbeat(const CmInstance *inst, uint64_t rtt_us)
{
	CmInstMetrics *m = &cm_server.metrics.inst[inst->number];
	int			b = 0;

	while (b < CM_RTT_BUCKETS && rtt_us > rtt_bounds[b])
		b++;
	m->rtt_bucket[b]++;
	m->rtt_count++;
	m->rtt_sum_us += rtt_us;
}

/* The instance was declared down (inst_down). */
void
cm_metrics_failure(const CmInstance *inst, CmFailure why)
{
	cm_server.metrics.inst[inst->number].failures[why]++;
}

/* A failure notice was sent to an application connection. */
void
cm_metrics_notice(uint16_t reason)
{
	if (reason <= CM_REASON_MAX)
		cm_server.metrics.notices[reason]++;
}

/* A new application connection was refused at once (app_refuse_at_once). */
void
cm_metrics_refused(CmRefusal why)
{
	cm_server.metrics.refused[why]++;
}

/* A route request was answered (app_route). */
void
cm_metrics_dgram_dropped(CmDgramDrop why)
{
	cm_server.metrics.dgram_dropped[why]++;
}

void
cm_metrics_route(CmRouteResult result)
{
	cm_server.metrics.routes[result]++;
}

/* ------------------------------------------------------------------ */
/* Exposition														  */
/* ------------------------------------------------------------------ */

/*
 * Escape a label value as the text format wants it: backslash, double
 * quote and line feed are written \\, \" and \n.
 */
static void
escape_label(const char *in, char *out, size_t cap)
{
	size_t		o = 0;

	for (; *in && o + 3 < cap; in++)
	{
		if (*in == '\\' || *in == '"')
		{
			out[o++] = '\\';
			out[o++] = *in;
		}
		else if (*in == '\n')
		{
			out[o++] = '\\';
			out[o++] = 'n';
		}
		else
			out[o++] = *in;
	}
	out[o] = '\0';
}

/* The HELP and TYPE lines of a metric family. */
static void
family(struct evbuffer *out, const char *name, const char *type,
	   const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
						name, type);
}

/*
 * A counter family of one process-wide counter per value of an
 * enumeration: name{label="names[k]"} values[k], for k below count.
 */
static void
enum_counters(struct evbuffer *out, const char *name, const char *help,
			  const char *label, const char *const *names,
			  const uint64_t *values, int count)
{
	int			k;

	family(out, name, "counter", help);
	for (k = 0; k < count; k++)
		evbuffer_add_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, names[k],
							(unsigned long long) values[k]);
}

/* cm_instance="N",host="...",port="P" of an instance. */
static void
instance_labels(const CmInstance *inst, char *buf, size_t cap)
{
	char		host[2 * 256 + 1];

	escape_label(inst->app_host, host, sizeof(host));
	snprintf(buf, cap, "cm_instance=\"%d\",host=\"%s\",port=\"%d\"",
			 inst->number, host, inst->cfg->port);
}

/* Seconds, from microseconds, as the text format writes floats. */
static double
seconds(uint64_t us)
{
	return (double) us / 1000000.0;
}

/* Write every metric into out. */
static void
metrics_render(struct evbuffer *out)
{
	const CmMetrics *m = &cm_server.metrics;
	char		labels[CM_MAX_INSTANCES][700];
	uint64_t	now = cm_now_us();
	int			n = cm_server.ninstances;
	int			i;
	int			k;
	size_t		r;

	for (i = 0; i < n; i++)
		instance_labels(cm_server.instances[i], labels[i], sizeof(labels[i]));

	family(out, "conmgr_build_info", "gauge",
		   "Version of conmgr, as a label; the value is always 1.");
	evbuffer_add_printf(out, "conmgr_build_info{version=\"%s\"} 1\n", CM_VERSION);

	family(out, "conmgr_start_time_seconds", "gauge",
		   "Time conmgr started, in seconds since the Unix epoch.");
	evbuffer_add_printf(out, "conmgr_start_time_seconds %lld\n",
						(long long) cm_server.started_wall);

	family(out, "conmgr_instance_up", "gauge",
		   "1 when the heartbeat connection to the instance's watchdog is established and answered within heartbeat_timeout, else 0.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "conmgr_instance_up{%s} %d\n", labels[i],
							cm_server.instances[i]->state == CM_INST_UP ? 1 : 0);

	family(out, "conmgr_instance_state", "gauge",
		   "State of the heartbeat connection: 1 for the current state, 0 for the others.");
	for (i = 0; i < n; i++)
	{
		const char *cur = cm_instance_state_name(cm_server.instances[i]);

		for (k = 0; k < (int) (sizeof(state_names) / sizeof(state_names[0])); k++)
			evbuffer_add_printf(out, "conmgr_instance_state{%s,state=\"%s\"} %d\n",
								labels[i], state_names[k],
								strcmp(cur, state_names[k]) == 0 ? 1 : 0);
	}

	family(out, "conmgr_instance_standby", "gauge",
		   "1 when the instance is a standby (in recovery), as its watchdog last reported.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "conmgr_instance_standby{%s} %d\n", labels[i],
							(cm_server.instances[i]->attrs & CM_PROTO_ATTR_STANDBY) ? 1 : 0);

	family(out, "conmgr_instance_read_only", "gauge",
		   "1 when the instance is read-only (default_transaction_read_only), as its watchdog last reported.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "conmgr_instance_read_only{%s} %d\n", labels[i],
							(cm_server.instances[i]->attrs & CM_PROTO_ATTR_READ_ONLY) ? 1 : 0);

	family(out, "conmgr_instance_last_heartbeat_age_seconds", "gauge",
		   "Seconds since the last heartbeat reply (or welcome) from the instance's watchdog; absent until the first.");
	for (i = 0; i < n; i++)
	{
		const CmInstance *inst = cm_server.instances[i];

		if (!inst->ever_up)
			continue;
		evbuffer_add_printf(out, "conmgr_instance_last_heartbeat_age_seconds{%s} %.3f\n",
							labels[i],
							seconds(now > inst->last_reply_us ? now - inst->last_reply_us : 0));
	}

	family(out, "conmgr_instance_heartbeat_rtt_seconds", "histogram",
		   "Round-trip time of heartbeats: from sending to the watchdog's reply.");
	for (i = 0; i < n; i++)
	{
		const CmInstMetrics *im = &m->inst[cm_server.instances[i]->number];
		uint64_t	cum = 0;

		for (k = 0; k < CM_RTT_BUCKETS; k++)
		{
			cum += im->rtt_bucket[k];
			evbuffer_add_printf(out, "conmgr_instance_heartbeat_rtt_seconds_bucket{%s,le=\"%g\"} %llu\n",
								labels[i], seconds(rtt_bounds[k]),
								(unsigned long long) cum);
		}
		cum += im->rtt_bucket[CM_RTT_BUCKETS];
		evbuffer_add_printf(out, "conmgr_instance_heartbeat_rtt_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
							labels[i], (unsigned long long) cum);
		evbuffer_add_printf(out, "conmgr_instance_heartbeat_rtt_seconds_sum{%s} %.6f\n",
							labels[i], seconds(im->rtt_sum_us));
		evbuffer_add_printf(out, "conmgr_instance_heartbeat_rtt_seconds_count{%s} %llu\n",
							labels[i], (unsigned long long) im->rtt_count);
	}

	family(out, "conmgr_instance_failures_total", "counter",
		   "Times the instance was declared down, by cause; its application connections were notified each time.");
	for (i = 0; i < n; i++)
	{
		const CmInstMetrics *im = &m->inst[cm_server.instances[i]->number];

		for (k = 0; k < CM_FAIL_COUNT; k++)
			evbuffer_add_printf(out, "conmgr_instance_failures_total{%s,reason=\"%s\"} %llu\n",
								labels[i], failure_names[k],
								(unsigned long long) im->failures[k]);
	}

	family(out, "conmgr_instance_heartbeat_path", "gauge",
		   "Path of the heartbeats of an up instance: 1 for the one in use (datagram: as UDP datagrams, protocol 1.2; tcp: over the heartbeat connection), 0 for the other.");
	for (i = 0; i < n; i++)
	{
		const CmInstance *inst = cm_server.instances[i];
		bool		dgram;

		if (inst->state != CM_INST_UP)
			continue;
		dgram = strcmp(cm_dgram_path_name(inst), "datagram") == 0;
		evbuffer_add_printf(out, "conmgr_instance_heartbeat_path{%s,path=\"datagram\"} %d\n",
							labels[i], dgram ? 1 : 0);
		evbuffer_add_printf(out, "conmgr_instance_heartbeat_path{%s,path=\"tcp\"} %d\n",
							labels[i], dgram ? 0 : 1);
	}

	enum_counters(out, "conmgr_heartbeat_datagrams_dropped_total",
				  "Datagrams received on the heartbeat datagram sockets and dropped, by cause: malformed (size, framing, not a reply), unknown (another session), tag (authentication failed), replay (an old sequence number: replayed or reordered).",
				  "reason", drop_names, m->dgram_dropped, CM_DGRAM_DROP_COUNT);

	family(out, "conmgr_instance_app_connections", "gauge",
		   "Application connections routed to the instance now.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "conmgr_instance_app_connections{%s} %d\n", labels[i],
							cm_server.instances[i]->napps);

	family(out, "conmgr_notices_sent_total", "counter",
		   "Failure notices sent to application connections, by reason.");
	{
		uint64_t	other = 0;

		for (k = 0; k <= CM_REASON_MAX; k++)
		{
			bool		named = false;

			for (r = 0; r < NUM_NOTICE_NAMES; r++)
				if (notice_names[r].reason == k)
					named = true;
			if (!named)
				other += m->notices[k];
		}
		for (r = 0; r < NUM_NOTICE_NAMES; r++)
			evbuffer_add_printf(out, "conmgr_notices_sent_total{reason=\"%s\"} %llu\n",
								notice_names[r].name,
								(unsigned long long) m->notices[notice_names[r].reason]);
		evbuffer_add_printf(out, "conmgr_notices_sent_total{reason=\"other\"} %llu\n",
							(unsigned long long) other);
	}

	family(out, "conmgr_app_connections", "gauge",
		   "Application connections now (counted against max_app_connections).");
	evbuffer_add_printf(out, "conmgr_app_connections %d\n", cm_server.napps);

	enum_counters(out, "conmgr_app_connections_refused_total",
				  "New application connections refused at once, by cause.",
				  "reason", refusal_names, m->refused, CM_REFUSE_COUNT);

	enum_counters(out, "conmgr_app_routes_total",
				  "Route requests answered, by result.",
				  "result", route_names, m->routes, CM_ROUTE_COUNT);

	family(out, "conmgr_metrics_connections_refused_total", "counter",
		   "Connections to metrics_port refused because CM_METRICS_MAX_CONNECTIONS were open.");
	evbuffer_add_printf(out, "conmgr_metrics_connections_refused_total %llu\n",
						(unsigned long long) m->scrapes_refused);
}

/* ------------------------------------------------------------------ */
/* HTTP																  */
/* ------------------------------------------------------------------ */

/* Descriptors the metrics endpoint may hold (0 when it is off). */
int
cm_metrics_fds(void)
{
	return cm_server.cfg.metrics_port != 0 ? CM_METRICS_FDS : 0;
}

static void
conn_free(CmMetricsConn *c)
{
	cm_list_delete(&conns, &c->node);
	cm_server.nmetrics_conns--;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/*
 * Queue the answer (status line, headers, body) and go to MC_ANSWERING:
 * the write callback shuts the sending side once it is out.
 */
static void
conn_answer(CmMetricsConn *c, int status, const char *reason,
			const char *content_type, const char *extra_headers,
			struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timeval tv = {CM_METRICS_LINGER_MS / 1000, (CM_METRICS_LINGER_MS % 1000) * 1000};

	evbuffer_add_printf(out,
						"HTTP/1.1 %d %s\r\n"
						"Content-Type: %s\r\n"
						"Content-Length: %zu\r\n"
						"Cache-Control: no-store\r\n"
						"Connection: close\r\n"
						"%s"
						"\r\n",
						status, reason, content_type,
						evbuffer_get_length(body), extra_headers);
	evbuffer_add_buffer(out, body);
	/* the rest of the request is not needed */
	evbuffer_drain(bufferevent_get_input(c->bev),
				   evbuffer_get_length(bufferevent_get_input(c->bev)));
	c->state = MC_ANSWERING;
	evtimer_del(c->timer);
	evtimer_add(c->timer, &tv);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* An error answer with a one-line text body. */
static void
conn_error(CmMetricsConn *c, int status, const char *reason,
		   const char *extra_headers, const char *text)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL)
	{
		conn_free(c);
		return;
	}
	evbuffer_add_printf(body, "%s\n", text);
	conn_answer(c, status, reason, "text/plain; charset=utf-8", extra_headers, body);
	evbuffer_free(body);
}

/*
 * The whole request header is in: act on its request line
 * ("METHOD TARGET HTTP/1.x"); the header fields are not needed.
 */
static void
conn_request(CmMetricsConn *c, char *line)
{
	char	   *method = line;
	char	   *target;
	char	   *version;
	char	   *q;

	target = strchr(method, ' ');
	if (target == NULL)
	{
		conn_error(c, 400, "Bad Request", "", "malformed request line");
		return;
	}
	*target++ = '\0';
	version = strchr(target, ' ');
	if (version == NULL)
	{
		conn_error(c, 400, "Bad Request", "", "malformed request line");
		return;
	}
	*version++ = '\0';
	if (strcmp(version, "HTTP/1.0") != 0 && strcmp(version, "HTTP/1.1") != 0)
	{
		conn_error(c, 400, "Bad Request", "", "only HTTP/1.0 and HTTP/1.1 are served");
		return;
	}
	if (strcmp(method, "GET") != 0)
	{
		conn_error(c, 405, "Method Not Allowed", "Allow: GET\r\n",
				   "only GET is served here");
		return;
	}
	q = strchr(target, '?');
	if (q)
		*q = '\0';
	if (strcmp(target, "/metrics") != 0)
	{
		conn_error(c, 404, "Not Found", "", "conmgr serves /metrics only");
		return;
	}

	{
		struct evbuffer *body = evbuffer_new();

		if (body == NULL)
		{
			conn_free(c);
			return;
		}
		metrics_render(body);
		conn_answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", body);
		evbuffer_free(body);
	}
}

/*
 * Read callback: wait for the end of the request header (an empty line),
 * within CM_METRICS_MAX_REQUEST bytes; once answered, read away what the
 * client still sends.
 */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	CmMetricsConn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char	   *line;
	size_t		n;

	if (c->state != MC_READING)
	{
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos < 0)
	{
		if (evbuffer_get_length(in) >= CM_METRICS_MAX_REQUEST)
			conn_error(c, 431, "Request Header Fields Too Large", "",
					   "the request header is too large");
		return;
	}
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	if (line == NULL)
	{
		conn_free(c);
		return;
	}
	conn_request(c, line);
	free(line);
}

/*
 * Write callback: once the answer is out, shut the sending side and wait
 * (at most the linger time) for the client to close, so that it reads the
 * answer rather than a reset caused by unread input; or close at once if
 * the client has already shut its side.
 */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	CmMetricsConn *c = arg;

	if (c->state != MC_ANSWERING ||
		evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->peer_closed)
	{
		conn_free(c);
		return;
	}
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	c->state = MC_DRAINING;
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	CmMetricsConn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
		c->state == MC_ANSWERING)
	{
		/* the client shut its side after its request: still write */
		c->peer_closed = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(c);
}

/* Request deadline, or end of the linger time. */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	CmMetricsConn *c = arg;

	if (c->state == MC_READING)
		cm_debug("metrics connection closed: no whole request within %d ms",
				 CM_METRICS_REQUEST_TIMEOUT_MS);
	conn_free(c);
}

/*
 * A new metrics connection: answered 503 and closed at once beyond
 * CM_METRICS_MAX_CONNECTIONS, otherwise given its request deadline.
 */
static void
metrics_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
				  struct sockaddr *sa, int salen, void *arg)
{
	static const char busy[] =
		"HTTP/1.1 503 Service Unavailable\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Length: 37\r\n"
		"Connection: close\r\n"
		"\r\n"
		"too many metrics connections at once\n";
	struct timeval tv = {CM_METRICS_REQUEST_TIMEOUT_MS / 1000,
	(CM_METRICS_REQUEST_TIMEOUT_MS % 1000) * 1000};
	CmMetricsConn *c;

	if (cm_server.nmetrics_conns >= CM_METRICS_MAX_CONNECTIONS)
	{
		cm_server.metrics.scrapes_refused++;
		cm_log_limited(&limit_cap, CM_LOG_WARNING,
					   "metrics connection refused: %d metrics connections are open already",
					   cm_server.nmetrics_conns);
		/* a new socket's send buffer is empty: this does not block */
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			cm_debug("could not answer a metrics connection: %s", strerror(errno));
		close(fd);
		return;
	}
	c = calloc(1, sizeof(CmMetricsConn));
	if (c)
	{
		c->bev = bufferevent_socket_new(cm_server.base, fd, BEV_OPT_CLOSE_ON_FREE);
		c->timer = evtimer_new(cm_server.base, conn_timer_cb, c);
	}
	if (c == NULL || c->bev == NULL || c->timer == NULL)
	{
		cm_error("out of memory accepting a metrics connection");
		if (c && c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c && c->timer)
			event_free(c->timer);
		free(c);
		return;
	}
	c->state = MC_READING;
	cm_list_push_head(&conns, &c->node);
	cm_server.nmetrics_conns++;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CM_METRICS_MAX_REQUEST);
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->timer, &tv);
}

/* accept() failed (EMFILE...): pause the metrics listeners for a second. */
static void
metrics_accept_error_cb(struct evconnlistener *lis, void *arg)
{
	int			err = EVUTIL_SOCKET_ERROR();

	cm_log_limited(&limit_accept, CM_LOG_ERROR,
				   "could not accept a metrics connection: %s",
				   evutil_socket_error_to_string(err));
	cm_listen_pause(&cm_server.metrics_listen);
}

/*
 * Listen on metrics_port, on every loopback address of the host, as on the
 * application port.  Nothing to do when metrics_port is 0.  False (logged)
 * when a loopback address cannot be bound: conmgr does not start.
 */
bool
cm_metrics_listen(void)
{
	CmListenSet *set = &cm_server.metrics_listen;

	if (cm_server.cfg.metrics_port == 0)
		return true;
	return cm_listen_loopback(set, cm_server.cfg.metrics_port, 16, "for metrics ",
							  "metrics scrapes", metrics_accept_cb,
							  metrics_accept_error_cb);
}

/* Close the metrics listeners and connections (end of the process). */
void
cm_metrics_stop(void)
{
	while (!cm_list_is_empty(&conns))
		conn_free(cm_list_container(CmMetricsConn, node, cm_list_first(&conns)));
	cm_listen_close(&cm_server.metrics_listen);
}
