/*-------------------------------------------------------------------------
 *
 * fanout.c
 *	  Benchmark: how fast conmgr tells M registered applications that their
 *	  instance failed.
 *
 * Each of the M application connections does what the client library does
 * on the application channel (docs/protocol.md): GSSENCRequest, conmgr's
 * greeting, route request, instance answer, then the registration of an
 * established TCP connection.  conmgr checks that the registered address is
 * a connected TCP socket of the application's user; the watchdog looks at
 * registrations only in precise termination mode.  So that M can reach
 * thousands without M server backends (the postmaster would fork one per
 * TCP connection and refuse those over max_connections), the "SQL
 * connection" of each application is a TCP connection to a listening socket
 * of this program: a connected socket of the same user, as conmgr requires.
 * With --sql-port, they go to the port that conmgr.conf gives as the
 * instance's backend_port, as real SQL connections do to the instance:
 * conmgr then checks each registration with one exact lookup (otherwise
 * with a walk of the host's TCP sockets, see docs/performance.md).
 * A child process (the holder) makes and keeps them, and closes the
 * accepted ends at once (a connection the other side closed is still
 * connected), so that each process holds one descriptor per application
 * and M can reach the open-files limit itself.  The registered backend PID
 * is a stand-in (1, 2, ...).
 *
 * When all are registered (and conmgr shows them registered: the route
 * loop retries "no instance" answers until the instance is up), the
 * program runs the event command (e.g. "pg_ctl stop -m immediate", or
 * "kill -STOP <watchdog pid>") in a child without waiting for it, and
 * takes the wall-clock time of every failure notice ('F') or end of file
 * as it arrives.  It then reads conmgr's log for the time conmgr declared
 * the instance down, and reports the first and last notice after the event
 * and after that declaration, and how long the M applications took to
 * connect, route and register, from the first instance answer on (reg_s;
 * conmgr checks each connection's
 * owner and each registered address with the kernel's socket diagnostics).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  bench/fanout.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cm_protocol.h"
#include "cm_time.h"
#include "bench_util.h"

#define RBUF_CAP	(2 * CM_PROTO_MAX_MSG)

typedef enum AppState
{
	A_IDLE = 0,
	A_CONNECTING,
	A_GREETING,					/* GSSENCRequest sent */
	A_ROUTE,					/* route request sent */
	A_REGISTERED,				/* registration sent */
	A_WAIT_RETRY,				/* "no instance": try again later */
	A_NOTIFIED,					/* failure notice or end of file received */
	A_FAILED
} AppState;

typedef struct App
{
	int			fd;				/* conmgr connection */
	AppState	state;
	uint64_t	retry_ns;
	uint64_t	notice_wall_ns;
	uint16_t	reason;			/* of the notice, 0 for end of file */
	size_t		rlen;
	uint8_t		rbuf[RBUF_CAP];
} App;

static int	opt_port = 0;
static int	opt_apps = 100;
static const char *opt_event = NULL;
static const char *opt_label = "event";
static const char *opt_log = NULL;
static double opt_timeout = 60;
static int	opt_ramp = 64;
static const char *opt_csv = NULL;
static bool opt_header = false;
static int	opt_sql_port = 0;		/* where the stand-ins connect; 0: any */

static App *apps;
static int	epfd;
static int	holder_fd = -1;		/* to the process holding the SQL stand-ins */
static pid_t holder_pid = -1;
static int	in_flight;
static int	n_registered,
			n_notified,
			n_failed,
			n_notices,
			n_eof;
static char first_failure[300];
static uint64_t first_routed_mono;	/* the first instance answer */

static void app_fail(App *a, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
app_close(App *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

static void
app_fail(App *a, const char *fmt,...)
{
	va_list		ap;

	if (a->state >= A_CONNECTING && a->state <= A_ROUTE)
		in_flight--;
	if (a->state == A_REGISTERED)
		n_registered--;
	if (first_failure[0] == '\0')
	{
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	app_close(a);
	a->state = A_FAILED;
	n_failed++;
}

static bool
app_write(App *a, const uint8_t *buf, size_t n)
{
	ssize_t		w = send(a->fd, buf, n, MSG_NOSIGNAL);

	if (w != (ssize_t) n)
	{
		app_fail(a, "send: %s", w < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

static void
app_start(int idx)
{
	App		   *a = &apps[idx];
	char		err[200];

	a->rlen = 0;
	a->state = A_CONNECTING;
	in_flight++;
	a->fd = bench_connect_start(epfd, (uint32_t) idx, "127.0.0.1", opt_port,
								err, sizeof(err));
	if (a->fd < 0)
		app_fail(a, "%s", err);
}

/*
 * The holder: for each byte received on fd, one stand-in SQL connection to
 * its listening socket, made and kept; the accepted end is closed at once.
 * Answers with the connection's local port (0 when it failed).  Exits when
 * the main process closes fd (its stand-ins close with it).
 */
static void
holder_main(int fd)
{
	struct sockaddr_in sink;
	socklen_t	sl = sizeof(sink);
	int			lsock = socket(AF_INET, SOCK_STREAM, 0);
	int			one = 1;
	bool		bound = false;
	char		c;

	memset(&sink, 0, sizeof(sink));
	sink.sin_family = AF_INET;
	sink.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sink.sin_port = htons((uint16_t) opt_sql_port);
	if (lsock >= 0)
		(void) setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* the port may still be held for a moment by the last run's holder */
	for (int i = 0; lsock >= 0 && !bound && i < 50; i++)
	{
		bound = bind(lsock, (struct sockaddr *) &sink, sizeof(sink)) == 0;
		if (!bound)
			usleep(100000);
	}
	if (!bound ||
		listen(lsock, 128) != 0 ||
		getsockname(lsock, (struct sockaddr *) &sink, &sl) != 0)
		_exit(1);
	while (read(fd, &c, 1) == 1)
	{
		struct sockaddr_in local;
		uint16_t	port = 0;
		int			s = socket(AF_INET, SOCK_STREAM, 0);
		int			k;

		sl = sizeof(local);
		if (s >= 0 && connect(s, (struct sockaddr *) &sink, sizeof(sink)) == 0 &&
			(k = accept(lsock, NULL, NULL)) >= 0)
		{
			close(k);
			if (getsockname(s, (struct sockaddr *) &local, &sl) == 0)
				port = local.sin_port;	/* network order */
		}
		else if (s >= 0)
			close(s);
		if (write(fd, &port, sizeof(port)) != (ssize_t) sizeof(port))
			break;
	}
	_exit(0);
}

/* Start the holder process: the descriptor to ask it for stand-ins. */
static int
holder_start(void)
{
	int			sv[2];
	pid_t		pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		bench_fatal("fanout: socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_fatal("fanout: fork: %s", strerror(errno));
	if (pid == 0)
	{
		close(sv[0]);
		holder_main(sv[1]);
	}
	close(sv[1]);
	holder_pid = pid;
	return sv[0];
}

/* The stand-in SQL connection, and the registration of its local address. */
static void
app_register(int idx, App *a)
{
	CmProtoMsg	msg;
	uint8_t		buf[CM_PROTO_MAX_MSG];
	size_t		n;
	uint16_t	port = 0;
	char		c = 'c';

	if (first_routed_mono == 0)
		first_routed_mono = cm_mono_ns();
	if (write(holder_fd, &c, 1) != 1 ||
		read(holder_fd, &port, sizeof(port)) != (ssize_t) sizeof(port) || port == 0)
	{
		app_fail(a, "stand-in SQL connection: the holder process made none");
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_APP_REGISTER;
	msg.u.app_register.backend_pid = (uint32_t) idx + 1;
	msg.u.app_register.local.family = 4;
	msg.u.app_register.local.addr[0] = 127;
	msg.u.app_register.local.addr[3] = 1;
	msg.u.app_register.local.port = ntohs(port);
	n = cm_proto_encode(CM_DIR_TO_CONMGR_APP, &msg, buf, sizeof(buf));
	if (n == 0)
	{
		app_fail(a, "could not encode the registration");
		return;
	}
	if (!app_write(a, buf, n))
		return;
	a->state = A_REGISTERED;
	in_flight--;
	n_registered++;
}

/* A notice or the end of the conmgr connection after registration. */
static void
app_notified(App *a, uint16_t reason)
{
	a->notice_wall_ns = bench_wall_ns();
	a->reason = reason;
	if (reason)
		n_notices++;
	else
		n_eof++;
	n_registered--;
	n_notified++;
	a->state = A_NOTIFIED;
	app_close(a);
}

static void
app_read(int idx)
{
	App		   *a = &apps[idx];
	ssize_t		r;

	r = recv(a->fd, a->rbuf + a->rlen, RBUF_CAP - a->rlen, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
	{
		if (a->state == A_REGISTERED)
			app_notified(a, 0);
		else
			app_fail(a, "conmgr closed the connection (%s)",
					 r < 0 ? strerror(errno) : "end of file");
		return;
	}
	a->rlen += (size_t) r;
	while (a->rlen > 0 && a->fd >= 0)
	{
		size_t		flen = 0;
		uint16_t	version = 0;
		const char *reason = "";
		CmProtoMsg	msg;
		CmProtoStatus st;

		if (a->state == A_GREETING)
		{
			uint8_t		buf[CM_PROTO_MAX_MSG];
			size_t		n;

			st = cm_proto_parse_greeting(a->rbuf, a->rlen, &flen, &version, &reason);
			if (st == CM_PROTO_INCOMPLETE)
				return;
			if (st != CM_PROTO_OK)
			{
				app_fail(a, "not conmgr's greeting: %s", reason);
				return;
			}
			memset(&msg, 0, sizeof(msg));
			msg.type = CM_MSG_ROUTE;
			msg.u.route.version = version < CM_PROTO_VERSION_MAX ? version : CM_PROTO_VERSION_MAX;
			msg.u.route.tsa = CM_TSA_ANY;
			msg.u.route.client_pid = (uint32_t) getpid();
			cm_proto_set_string(&msg.u.route.application_name, "fanout");
			n = cm_proto_encode(CM_DIR_TO_CONMGR_APP, &msg, buf, sizeof(buf));
			if (n == 0 || !app_write(a, buf, n))
			{
				if (a->fd >= 0)
					app_fail(a, "could not send the route request");
				return;
			}
			a->state = A_ROUTE;
		}
		else
		{
			st = cm_proto_next(CM_DIR_TO_CLIENT, a->rbuf, a->rlen, &flen, &msg, &reason);
			if (st == CM_PROTO_INCOMPLETE)
				return;
			if (st != CM_PROTO_OK)
			{
				app_fail(a, "invalid message from conmgr: %s", reason);
				return;
			}
			if (a->state == A_ROUTE && msg.type == CM_MSG_INSTANCE)
				app_register(idx, a);
			else if (a->state == A_ROUTE && msg.type == CM_MSG_NO_INSTANCE)
			{
				/* the instance is not up (yet): try again in 100 ms */
				app_close(a);
				in_flight--;
				a->state = A_WAIT_RETRY;
				a->retry_ns = cm_mono_ns() + 100000000ULL;
				return;
			}
			else if (a->state == A_REGISTERED &&
					 (msg.type == CM_MSG_FAILURE || msg.type == CM_MSG_REFUSE))
			{
				if (msg.type == CM_MSG_REFUSE && first_failure[0] == '\0')
					snprintf(first_failure, sizeof(first_failure),
							 "refused after registering: %s", msg.u.notice.message.str);
				app_notified(a, msg.u.notice.reason);
				return;
			}
			else
			{
				app_fail(a, "unexpected '%c' from conmgr%s%s", msg.type,
						 msg.type == CM_MSG_REFUSE ? ": " : "",
						 msg.type == CM_MSG_REFUSE ? msg.u.notice.message.str : "");
				return;
			}
		}
		memmove(a->rbuf, a->rbuf + flen, a->rlen - flen);
		a->rlen -= flen;
	}
}

/*
 * The wall-clock time (ns) of the last line of conmgr's log saying that the
 * instance is down, written at or after not_before_ns (its timestamps have
 * millisecond resolution and are UTC); 0 if there is none.
 */
static uint64_t
declared_down_ns(const char *path, uint64_t not_before_ns, double *written_ms)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	uint64_t	found = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
	{
		struct tm	tm;
		int			ms = 0;
		char	   *rest;
		uint64_t	t;

		const char *w = strstr(line, " failure notices written in ");

		/* after the declaration, conmgr says how long writing them took */
		if (w != NULL && found != 0)
			(void) sscanf(w, " failure notices written in %lf ms", written_ms);
		if (strstr(line, "instance is down") == NULL)
			continue;
		memset(&tm, 0, sizeof(tm));
		rest = strptime(line, "%Y-%m-%d %H:%M:%S", &tm);
		if (rest == NULL || sscanf(rest, ".%3d", &ms) != 1)
			continue;
		t = (uint64_t) timegm(&tm) * 1000000000ULL + (uint64_t) ms * 1000000ULL;
		/* the log keeps milliseconds: allow for the truncation */
		if (t + 1000000ULL >= not_before_ns)
		{
			found = t;
			*written_ms = -1;
		}
	}
	fclose(f);
	return found;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: fanout --port CONMGR_PORT --event COMMAND --log CONMGR_LOG [options]\n"
			"  --apps M          application connections (100)\n"
			"  --label NAME      name of the event in the output (event)\n"
			"  --timeout S       give up waiting for notices after S seconds (60)\n"
			"  --ramp K          application handshakes in flight at once (64)\n"
			"  --csv FILE        append the result row to FILE\n"
			"  --header          print the table header first\n"
			"  --sql-port P      the stand-in SQL connections go to 127.0.0.1:P, the\n"
			"                    instance's backend_port in conmgr.conf (any port: 0)\n");
	exit(2);
}

#define CSV_HEADER "event,apps,register_s,registered,notified,notices,eof,missing,failed,declared_after_event_ms,first_after_event_ms,last_after_event_ms,first_after_declared_ms,last_after_declared_ms,written_ms"

int
main(int argc, char **argv)
{
	static const BenchOpt opts[] = {
		{"port", BENCH_OPT_INT, &opt_port},
		{"apps", BENCH_OPT_INT, &opt_apps},
		{"event", BENCH_OPT_STRING, &opt_event},
		{"label", BENCH_OPT_STRING, &opt_label},
		{"log", BENCH_OPT_STRING, &opt_log},
		{"timeout", BENCH_OPT_DOUBLE, &opt_timeout},
		{"ramp", BENCH_OPT_INT, &opt_ramp},
		{"csv", BENCH_OPT_STRING, &opt_csv},
		{"header", BENCH_OPT_FLAG, &opt_header},
		{"sql-port", BENCH_OPT_INT, &opt_sql_port},
		{NULL}
	};
	struct epoll_event *events;
	int			next_to_start = 0;
	uint64_t	t0,
				registered_mono = 0,
				event_wall = 0,
				event_mono = 0,
				deadline;
	pid_t		child = -1;
	int			child_status = 0;
	long		nofile;

	bench_getopt(argc, argv, opts, usage);
	if (opt_port <= 0 || opt_apps <= 0 || opt_event == NULL || opt_log == NULL ||
		opt_timeout <= 0 || opt_ramp <= 0)
		usage();
	nofile = bench_raise_nofile(opt_apps + 64);
	if (nofile < opt_apps + 16)
		bench_fatal("fanout: the open-files limit (%ld) is too low for %d applications",
					nofile, opt_apps);
	signal(SIGPIPE, SIG_IGN);

	apps = calloc((size_t) opt_apps, sizeof(App));
	events = calloc(1024, sizeof(struct epoll_event));
	if (apps == NULL || events == NULL)
		bench_fatal("out of memory");
	for (int i = 0; i < opt_apps; i++)
		apps[i].fd = -1;
	holder_fd = holder_start();
	epfd = epoll_create1(0);

	t0 = cm_mono_ns();
	deadline = t0 + (uint64_t) (opt_timeout * 1e9);
	for (;;)
	{
		uint64_t	now = cm_mono_ns();
		int			n;

		if (now > deadline)
			break;
		if (event_mono == 0)
		{
			while (next_to_start < opt_apps && in_flight < opt_ramp)
				app_start(next_to_start++);
			for (int i = 0; i < next_to_start && in_flight < opt_ramp; i++)
				if (apps[i].state == A_WAIT_RETRY && apps[i].retry_ns <= now)
					app_start(i);
			if (next_to_start == opt_apps && in_flight == 0)
			{
				bool		waiting = false;

				for (int i = 0; i < opt_apps && !waiting; i++)
					waiting = apps[i].state == A_WAIT_RETRY;
				if (!waiting)
				{
					registered_mono = cm_mono_ns();

					/*
					 * Everything is registered (or failed).  conmgr reads a
					 * registration some time after we wrote it: give it a
					 * moment per thousand, then cause the failure.
					 */
					usleep(200000 + 200 * (useconds_t) opt_apps);
					event_wall = bench_wall_ns();
					event_mono = cm_mono_ns();
					child = fork();
					if (child == 0)
					{
						execl("/bin/sh", "sh", "-c", opt_event, (char *) NULL);
						_exit(127);
					}
					deadline = event_mono + (uint64_t) (opt_timeout * 1e9);
				}
			}
		}
		else if (n_registered == 0)
			break;
		if (child > 0 && waitpid(child, &child_status, WNOHANG) == child)
			child = -1;

		n = epoll_wait(epfd, events, 1024, 20);
		for (int i = 0; i < n; i++)
		{
			int			idx = (int) events[i].data.u32;
			App		   *a = &apps[idx];

			if (a->fd < 0)
				continue;
			if (a->state == A_CONNECTING)
			{
				int			soerr = 0;
				socklen_t	l = sizeof(soerr);
				struct epoll_event ev;
				uint8_t		buf[16];
				size_t		len;

				getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
				if (soerr != 0)
				{
					app_fail(a, "connect to conmgr: %s", strerror(soerr));
					continue;
				}
				ev.events = EPOLLIN;
				ev.data.u32 = (uint32_t) idx;
				epoll_ctl(epfd, EPOLL_CTL_MOD, a->fd, &ev);
				len = cm_proto_encode_gss_request(buf, sizeof(buf));
				if (app_write(a, buf, len))
					a->state = A_GREETING;
				continue;
			}
			app_read(idx);
		}
	}
	if (child > 0)
		waitpid(child, &child_status, 0);
	/* the holder closes its stand-ins and exits: its port is free again */
	close(holder_fd);
	waitpid(holder_pid, NULL, 0);

	{
		double		written_ms = -1;
		uint64_t	declared = opt_log && event_wall ?
		declared_down_ns(opt_log, event_wall, &written_ms) : 0;
		uint64_t	first = 0,
					last = 0;
		int			missing = n_registered;
		char		decl_s[32],
					wr_s[32],
					fd_s[32],
					ld_s[32];
		double		ev_ms,
					fe_ms,
					le_ms;
		double		reg_s = registered_mono && first_routed_mono ?
		(double) (registered_mono - first_routed_mono) / 1e9 : -1;

		for (int i = 0; i < opt_apps; i++)
		{
			uint64_t	t = apps[i].notice_wall_ns;

			if (apps[i].state != A_NOTIFIED)
				continue;
			if (first == 0 || t < first)
				first = t;
			if (t > last)
				last = t;
		}
		ev_ms = declared ? ((double) declared - (double) event_wall) / 1e6 : -1;
		fe_ms = first ? ((double) first - (double) event_wall) / 1e6 : -1;
		le_ms = last ? ((double) last - (double) event_wall) / 1e6 : -1;
		snprintf(decl_s, sizeof(decl_s), declared ? "%.0f" : "-", ev_ms);
		snprintf(wr_s, sizeof(wr_s), written_ms >= 0 ? "%.1f" : "-", written_ms);
		snprintf(fd_s, sizeof(fd_s), declared && first ? "%.1f" : "-",
				 ((double) first - (double) declared) / 1e6);
		snprintf(ld_s, sizeof(ld_s), declared && last ? "%.1f" : "-",
				 ((double) last - (double) declared) / 1e6);

		if (opt_header)
			printf("%-8s %6s %8s %8s %8s %7s %6s %8s %8s %9s %9s %9s %9s\n",
				   "event", "apps", "reg_s", "notified", "missing", "failed",
				   "eof", "declared", "written", "first", "last", "first-d", "last-d");
		printf("%-8s %6d %8.3f %8d %8d %7d %6d %8s %8s %9.1f %9.1f %9s %9s\n",
			   opt_label, opt_apps, reg_s, n_notified, missing, n_failed, n_eof,
			   decl_s, wr_s, fe_ms, le_ms, fd_s, ld_s);
		if (first_failure[0])
			printf("         first failure: %s\n", first_failure);
		if (event_wall == 0)
			printf("         the event never ran: not every application could register within %.0f s\n",
				   opt_timeout);
		if (opt_csv)
		{
			FILE	   *f = bench_csv_open(opt_csv, CSV_HEADER);

			if (f == NULL)
				return 1;
			fprintf(f, "%s,%d,%.3f,%d,%d,%d,%d,%d,%d,%.0f,%.1f,%.1f,%s,%s,%s\n",
					opt_label, opt_apps, reg_s, n_notified + missing, n_notified,
					n_notices, n_eof, missing, n_failed, ev_ms, fe_ms, le_ms,
					fd_s, ld_s, wr_s);
			fclose(f);
		}
		return event_wall != 0 && n_notified > 0 && missing == 0 ? 0 : 1;
	}
}
