/*-------------------------------------------------------------------------
 *
 * cm_ctl_server.c
 *	  The control socket through which cm_ctl asks conmgr for its state,
 *	  its status report and a reload.
 *
 * A Unix-domain socket named conmgr.sock in the conmgr directory (bound by
 * a relative name, the process runs in that directory, so the length of
 * the directory path does not matter), mode 0600: only the owner of the
 * conmgr may use it.  A request is one line; the answer is text, and
 * conmgr closes the connection after it:
 *
 *	state							"pid=P instances=N up=U primary=0|1 stopping=0|1"
 *	status text|json all|instance|application
 *	reload							"ok" or "error", then one line per change
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_ctl_server.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_log.h"
#include "conmgr.h"

#define CTL_MAX_REQUEST		256
#define CTL_TIMEOUT_SEC		10

static void
fmt_wall(time_t t, char *buf, size_t cap)
{
	struct tm	tm;

	if (t == 0)
	{
		snprintf(buf, cap, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
fmt_iso(time_t t, char *buf, size_t cap)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Length of the well-formed UTF-8 sequence at s (2 to 4 bytes), or 0 when
 * the byte at s does not start one.
 */
static int
utf8_sequence(const unsigned char *s)
{
	int			len;
	int			i;
	uint32_t	cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
	{
		len = 2;
		cp = s[0] & 0x1f;
	}
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
	{
		len = 3;
		cp = s[0] & 0x0f;
	}
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
	{
		len = 4;
		cp = s[0] & 0x07;
	}
	else
		return 0;
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		(len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * A JSON string: quote, backslash and control characters escaped, DEL as
 * \u007f, and a byte that is not part of well-formed UTF-8 as U+FFFD, so
 * that the output is valid JSON whatever the text.
 */
static void
json_string(struct evbuffer *out, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	evbuffer_add(out, "\"", 1);
	while (*p)
	{
		unsigned char c = *p;
		int			len;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			evbuffer_add_printf(out, "\\u%04x", c);
		else if (c < 0x80)
			evbuffer_add(out, p, 1);
		else if ((len = utf8_sequence(p)) > 0)
		{
			evbuffer_add(out, p, (size_t) len);
			p += len;
			continue;
		}
		else
			evbuffer_add(out, "\\ufffd", 6);
		p++;
	}
	evbuffer_add(out, "\"", 1);
}

static const char *
app_state_name(const CmApp *app)
{
	switch (app->state)
	{
		case CM_APP_NEW:
		case CM_APP_STARTUP:
		case CM_APP_SSL_STARTUP:
		case CM_APP_GREETED:
			return "handshake";
		case CM_APP_ROUTED:
			return "routed";
		case CM_APP_REGISTERED:
			return "registered";
		case CM_APP_CLOSING:
			return "closing";
		case CM_APP_REFUSED:
			return "refused";
		case CM_APP_CLOSED:
			return "closed";
	}
	return "unknown";
}

static void
instance_address(const CmInstance *inst, char *buf, size_t cap)
{
	if (strchr(inst->app_host, ':'))
		snprintf(buf, cap, "[%s]:%d", inst->app_host, inst->cfg->port);
	else
		snprintf(buf, cap, "%s:%d", inst->app_host, inst->cfg->port);
}

/*
 * The human-readable status report (cm_ctl status).
 */
static void
status_text(struct evbuffer *out, bool show_inst, bool show_apps)
{
	char		ts[64];
	uint64_t	now = cm_now_us();
	int			i;
	int			shown = 0;
	CmListIter	it;

	fmt_wall(cm_server.started_wall, ts, sizeof(ts));
	evbuffer_add_printf(out, "conmgr (PID %d) is %s in directory \"%s\"\n",
						(int) getpid(),
						cm_server.shutdown == CM_SHUTDOWN_NONE ? "running" : "shutting down",
						cm_server.directory);
	evbuffer_add_printf(out, "started %s; port %d on %s; heartbeat_interval %d ms, heartbeat_timeout %d ms\n",
						ts, cm_server.cfg.port, cm_server.app_listen.desc,
						cm_server.cfg.heartbeat_interval,
						cm_server.cfg.heartbeat_timeout);
	if (cm_server.cfg.metrics_port != 0)
		evbuffer_add_printf(out, "metrics: GET /metrics on port %d on %s\n",
							cm_server.cfg.metrics_port, cm_server.metrics_listen.desc);
	evbuffer_add_printf(out, "application connections: %d of max_app_connections %d\n",
						cm_server.napps, cm_server.cfg.max_app_connections);

	if (show_inst)
	{
		evbuffer_add_printf(out, "\nInstances:\n");
		evbuffer_add_printf(out, "  %-3s %-24s %-8s %-10s %-19s %-15s %-11s %-5s %s\n",
							"N", "address", "watchdog", "state", "attribute",
							"last heartbeat", "round trip", "apps", "since / cause");
		for (i = 0; i < cm_server.ninstances; i++)
		{
			CmInstance *inst = cm_server.instances[i];
			char		addr[300];
			char		last[32] = "-";
			char		rtt[32] = "-";
			char		since[300];

			instance_address(inst, addr, sizeof(addr));
			if (inst->ever_up && inst->last_reply_us)
				snprintf(last, sizeof(last), "%.1f s ago",
						 (double) (now - inst->last_reply_us) / 1e6);
			if (inst->state == CM_INST_UP && inst->heartbeats > 0)
				snprintf(rtt, sizeof(rtt), "%.3f ms", (double) inst->rtt_us / 1000.0);
			if (inst->state == CM_INST_UP)
			{
				fmt_wall(inst->up_since_wall, ts, sizeof(ts));
				snprintf(since, sizeof(since), "up since %s%s, heartbeats %s", ts,
						 inst->authenticated ? ", authenticated" : "",
						 inst->dgram_path ? "as datagrams" : "over TCP");
			}
			else
				snprintf(since, sizeof(since), "%s", inst->last_error);
			evbuffer_add_printf(out, "  %-3d %-24s %-8d %-10s %-19s %-15s %-11s %-5d %s\n",
								inst->number, addr, inst->cfg->watchdog_port,
								cm_instance_state_name(inst),
								inst->state == CM_INST_UP ? cm_proto_attrs_name(inst->attrs) : "unknown",
								last, rtt, inst->napps, since);
		}
	}

	if (show_apps)
	{
		evbuffer_add_printf(out, "\nApplications:\n");
		evbuffer_add_printf(out, "  %-6s %-22s %-8s %-20s %-16s %-8s %-11s %-10s %s\n",
							"id", "conmgr peer", "pid", "application_name",
							"target", "instance", "backend pid", "state", "connected");
		cm_list_foreach(it, &cm_server.apps)
		{
			CmApp	   *app = cm_list_container(CmApp, node, it.cur);
			char		inst[16] = "-";
			char		bpid[16] = "-";

			if (app->state == CM_APP_CLOSING || app->state == CM_APP_REFUSED)
				continue;
			shown++;
			if (app->inst)
				snprintf(inst, sizeof(inst), "%d", app->inst->number);
			if (app->backend_pid)
				snprintf(bpid, sizeof(bpid), "%u", (unsigned) app->backend_pid);
			fmt_wall(app->connected_wall, ts, sizeof(ts));
			evbuffer_add_printf(out, "  %-6llu %-22s %-8u %-20s %-16s %-8s %-11s %-10s %s\n",
								(unsigned long long) app->id, app->peer,
								(unsigned) app->client_pid,
								app->application_name[0] ? app->application_name : "-",
								app->state >= CM_APP_ROUTED ? cm_proto_tsa_name(app->tsa) : "-",
								inst, bpid, app_state_name(app), ts);
		}
		if (shown == 0)
			evbuffer_add_printf(out, "  (none)\n");
	}
}

/*
 * The status report as one JSON object (cm_ctl status --json); fields that
 * do not apply are null.
 */
static void
status_json(struct evbuffer *out, bool show_inst, bool show_apps)
{
	char		ts[64];
	uint64_t	now = cm_now_us();
	int			i;
	CmListIter	it;
	bool		first;

	fmt_iso(cm_server.started_wall, ts, sizeof(ts));
	evbuffer_add_printf(out, "{\"pid\": %d, \"directory\": ", (int) getpid());
	json_string(out, cm_server.directory);
	evbuffer_add_printf(out, ", \"state\": \"%s\", \"started\": \"%s\", \"port\": %d, \"metrics_port\": %d, \"heartbeat_interval\": %d, \"heartbeat_timeout\": %d, \"application_connections\": %d, \"max_app_connections\": %d",
						cm_server.shutdown == CM_SHUTDOWN_NONE ? "running" : "stopping",
						ts, cm_server.cfg.port, cm_server.cfg.metrics_port,
						cm_server.cfg.heartbeat_interval,
						cm_server.cfg.heartbeat_timeout, cm_server.napps,
						cm_server.cfg.max_app_connections);
	if (show_inst)
	{
		evbuffer_add_printf(out, ", \"instances\": [");
		for (i = 0; i < cm_server.ninstances; i++)
		{
			CmInstance *inst = cm_server.instances[i];
			bool		up = inst->state == CM_INST_UP;

			evbuffer_add_printf(out, "%s{\"number\": %d, \"host\": ", i ? ", " : "", inst->number);
			json_string(out, inst->app_host);
			evbuffer_add_printf(out, ", \"port\": %d, \"watchdog_port\": %d, \"state\": \"%s\", \"alive\": %s",
								inst->cfg->port, inst->cfg->watchdog_port,
								cm_instance_state_name(inst), up ? "true" : "false");
			if (up)
				evbuffer_add_printf(out, ", \"attribute\": \"%s\", \"standby\": %s, \"read_only\": %s, \"draining\": %s",
									(inst->attrs & CM_PROTO_ATTR_STANDBY) ? "standby" : "primary",
									(inst->attrs & CM_PROTO_ATTR_STANDBY) ? "true" : "false",
									(inst->attrs & CM_PROTO_ATTR_ALL_1_0) ? "true" : "false",
									(inst->attrs & CM_PROTO_ATTR_STOPPING) ? "true" : "false");
			else
				evbuffer_add_printf(out, ", \"attribute\": null, \"standby\": null, \"read_only\": null, \"draining\": null");
			if (inst->ever_up && inst->last_reply_wall)
			{
				fmt_iso(inst->last_reply_wall, ts, sizeof(ts));
				evbuffer_add_printf(out, ", \"last_heartbeat\": \"%s\", \"last_heartbeat_age_ms\": %llu",
									ts, (unsigned long long) ((now - inst->last_reply_us) / 1000));
			}
			else
				evbuffer_add_printf(out, ", \"last_heartbeat\": null, \"last_heartbeat_age_ms\": null");
			if (up && inst->heartbeats > 0)
				evbuffer_add_printf(out, ", \"round_trip_ms\": %.3f", (double) inst->rtt_us / 1000.0);
			else
				evbuffer_add_printf(out, ", \"round_trip_ms\": null");
			if (up)
				evbuffer_add_printf(out, ", \"protocol_version\": \"%d.%d\", \"check_attr_interval_ms\": %u, \"server_timeout_ms\": %u, \"authenticated\": %s, \"heartbeat_path\": \"%s\"",
									CM_PROTO_VERSION_MAJOR(inst->version),
									CM_PROTO_VERSION_MINOR(inst->version),
									(unsigned) inst->check_attr_interval_ms,
									(unsigned) inst->server_timeout_ms,
									inst->authenticated ? "true" : "false",
									cm_dgram_path_name(inst));
			else
				evbuffer_add_printf(out, ", \"heartbeat_path\": null");
			evbuffer_add_printf(out, ", \"applications\": %d, \"error\": ", inst->napps);
			if (up)
				evbuffer_add_printf(out, "null");
			else
				json_string(out, inst->last_error);
			evbuffer_add_printf(out, "}");
		}
		evbuffer_add_printf(out, "]");
	}
	if (show_apps)
	{
		evbuffer_add_printf(out, ", \"applications\": [");
		first = true;
		cm_list_foreach(it, &cm_server.apps)
		{
			CmApp	   *app = cm_list_container(CmApp, node, it.cur);

			if (app->state == CM_APP_CLOSING || app->state == CM_APP_REFUSED)
				continue;
			fmt_iso(app->connected_wall, ts, sizeof(ts));
			evbuffer_add_printf(out, "%s{\"id\": %llu, \"peer\": ", first ? "" : ", ",
								(unsigned long long) app->id);
			json_string(out, app->peer);
			evbuffer_add_printf(out, ", \"client_pid\": %u", (unsigned) app->client_pid);
			if (app->uid_known)
				evbuffer_add_printf(out, ", \"uid\": %u", (unsigned) app->uid);
			else
				evbuffer_add_printf(out, ", \"uid\": null");
			evbuffer_add_printf(out, ", \"application_name\": ");
			json_string(out, app->application_name);
			evbuffer_add_printf(out, ", \"target_session_attrs\": ");
			if (app->state >= CM_APP_ROUTED)
				evbuffer_add_printf(out, "\"%s\"", cm_proto_tsa_name(app->tsa));
			else
				evbuffer_add_printf(out, "null");
			if (app->inst)
				evbuffer_add_printf(out, ", \"instance\": %d", app->inst->number);
			else
				evbuffer_add_printf(out, ", \"instance\": null");
			if (app->backend_pid)
				evbuffer_add_printf(out, ", \"backend_pid\": %u", (unsigned) app->backend_pid);
			else
				evbuffer_add_printf(out, ", \"backend_pid\": null");
			evbuffer_add_printf(out, ", \"state\": \"%s\", \"connected\": \"%s\"}",
								app_state_name(app), ts);
			first = false;
		}
		evbuffer_add_printf(out, "]");
	}
	evbuffer_add_printf(out, "}\n");
}

static void
ctl_write_cb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		bufferevent_free(bev);
}

/* Answer one request line and close once the answer is written. */
static void
ctl_answer(struct bufferevent *bev, char *line)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	char		verb[32] = "";
	char		format[32] = "";
	char		what[32] = "";

	sscanf(line, "%31s %31s %31s", verb, format, what);
	if (strcmp(verb, "state") == 0)
	{
		int			up = 0;
		bool		primary = false;
		int			i;

		for (i = 0; i < cm_server.ninstances; i++)
		{
			if (cm_server.instances[i]->state == CM_INST_UP)
				up++;
			if (cm_instance_is_primary(cm_server.instances[i]))
				primary = true;
		}
		evbuffer_add_printf(out, "pid=%d instances=%d up=%d primary=%d stopping=%d\n",
							(int) getpid(), cm_server.ninstances, up, primary ? 1 : 0,
							cm_server.shutdown != CM_SHUTDOWN_NONE ? 1 : 0);
	}
	else if (strcmp(verb, "status") == 0)
	{
		bool		show_inst = strcmp(what, "application") != 0;
		bool		show_apps = strcmp(what, "instance") != 0;

		if (strcmp(format, "json") == 0)
			status_json(out, show_inst, show_apps);
		else
			status_text(out, show_inst, show_apps);
	}
	else if (strcmp(verb, "reload") == 0)
	{
		char		report[8192];
		bool		ok;

		cm_reload_config(report, sizeof(report), &ok);
		evbuffer_add_printf(out, "%s\n%s", ok ? "ok" : "error", report);
	}
	else
		evbuffer_add_printf(out, "error\nunknown request \"%s\"\n", verb);

	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, ctl_write_cb, ctl_event_cb, NULL);
	bufferevent_enable(bev, EV_WRITE);
}

/*
 * Read one request line; a line longer than CTL_MAX_REQUEST closes the
 * connection.
 */
static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char	   *line;

	line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF);
	if (line == NULL)
	{
		if (evbuffer_get_length(in) > CTL_MAX_REQUEST)
			bufferevent_free(bev);
		return;
	}
	ctl_answer(bev, line);
	free(line);
}

static void
ctl_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
			  struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev;
	struct timeval tv = {CTL_TIMEOUT_SEC, 0};

	bev = bufferevent_socket_new(cm_server.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
	{
		close(fd);
		return;
	}
	bufferevent_setcb(bev, ctl_read_cb, NULL, ctl_event_cb, NULL);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

/*
 * Bind conmgr.sock in the current directory (the conmgr directory), mode
 * 0600.  A leftover socket is removed first: the caller holds the PID-file
 * lock, so no other conmgr uses it.
 */
bool
cm_ctl_server_start(void)
{
	struct sockaddr_un sun;
	int			fd;
	mode_t		old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", CM_CONTROL_SOCKET);

	/* we hold the lock on the PID file: a socket left here is stale */
	unlink(CM_CONTROL_SOCKET);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		cm_fatal("could not create the control socket: %s", strerror(errno));
		return false;
	}
	old = umask(077);
	if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0)
	{
		cm_fatal("could not bind the control socket \"%s/%s\": %s",
				 cm_server.directory, CM_CONTROL_SOCKET, strerror(errno));
		umask(old);
		close(fd);
		return false;
	}
	umask(old);
	cm_server.ctl_listener = evconnlistener_new(cm_server.base, ctl_accept_cb, NULL,
												LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
												16, fd);
	if (cm_server.ctl_listener == NULL)
	{
		cm_fatal("could not listen on the control socket: %s", strerror(errno));
		close(fd);
		return false;
	}
	return true;
}

void
cm_ctl_server_stop(void)
{
	if (cm_server.ctl_listener)
	{
		evconnlistener_free(cm_server.ctl_listener);
		cm_server.ctl_listener = NULL;
		unlink(CM_CONTROL_SOCKET);
	}
}
