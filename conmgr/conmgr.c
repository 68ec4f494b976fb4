/*-------------------------------------------------------------------------
 *
 * conmgr.c
 *	  Connection Manager daemon: main(), process hygiene and shutdown.
 *
 * "conmgr -D DIR" runs in the foreground (cm_ctl start puts it in the
 * background).  It refuses to run as root, works in DIR, holds an exclusive
 * lock on DIR/conmgr.pid for its whole life (a second conmgr on the same
 * directory is refused), reads DIR/conmgr.conf, then runs one libevent loop
 * with the heartbeat connections, the application listeners on the
 * loopback addresses and the control socket for cm_ctl.
 *
 * Signals, as for the postmaster: SIGHUP reloads conmgr.conf (and reopens
 * the log file); SIGTERM is a smart shutdown (route no new applications,
 * wait until the connected ones are gone, keep the port meanwhile); SIGINT is a fast shutdown (send
 * every application a failure notice, close); SIGQUIT is an immediate
 * shutdown (exit at once, without goodbye to the watchdogs).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/conmgr.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "cm_log.h"
#include "conmgr.h"

CmServer	cm_server;

static int	pid_fd = -1;
static const char *progname = "conmgr";

static void
usage(void)
{
	printf("%s is the Connection Manager daemon of a client host.\n\n", progname);
	printf("Usage:\n  %s [-D DIR]\n\n", progname);
	printf("Options:\n");
	printf("  -D, --pgdata=DIR   conmgr directory (holds conmgr.conf); default $CMDATA\n");
	printf("  -V, --version      output version information, then exit\n");
	printf("  -?, --help         show this help, then exit\n\n");
	printf("conmgr runs in the foreground; use cm_ctl to run it in the background.\n");
}

/* Remove what we created in the directory; the lock goes with the process. */
static void
remove_files(void)
{
	cm_ctl_server_stop();
	if (pid_fd >= 0)
	{
		unlink(CM_PID_FILE);
		close(pid_fd);
		pid_fd = -1;
	}
}

/*
 * Take the lock on the PID file, or fail when another conmgr holds it.
 * The lock (flock) dies with the process, so a stale file left by a crash
 * is simply reused.
 */
static bool
lock_pid_file(void)
{
	char		buf[512];
	int			n;

	pid_fd = open(CM_PID_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (pid_fd < 0)
	{
		cm_fatal("could not open PID file \"%s/%s\": %s",
				 cm_server.directory, CM_PID_FILE, strerror(errno));
		return false;
	}
	if (flock(pid_fd, LOCK_EX | LOCK_NB) < 0)
	{
		int			err = errno;

		n = (int) read(pid_fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(pid_fd);
		pid_fd = -1;
		if (err == EWOULDBLOCK)
			cm_fatal("another conmgr (PID %s) is already running in directory \"%s\"",
					 buf[0] ? buf : "unknown", cm_server.directory);
		else
			cm_fatal("could not lock PID file \"%s/%s\": %s",
					 cm_server.directory, CM_PID_FILE, strerror(err));
		return false;
	}
	n = snprintf(buf, sizeof(buf), "%d\n%s\n%ld\n%d\n", (int) getpid(),
				 cm_server.directory, (long) cm_server.started_wall,
				 cm_server.cfg.port);
	if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, buf, (size_t) n, 0) != n)
	{
		cm_fatal("could not write PID file \"%s/%s\": %s",
				 cm_server.directory, CM_PID_FILE, strerror(errno));
		close(pid_fd);
		pid_fd = -1;
		return false;
	}
	return true;
}

/*
 * The conmgr directory must belong to the user running conmgr and give
 * nothing to others, as PostgreSQL requires of its data directory: u=rwx
 * (0700) or u=rwx,g=rx (0750).  Another user who could write there could
 * replace conmgr.conf or the control socket; one who could read could
 * read the log.  Checked on the current directory (conmgr runs in it);
 * on failure msg gets the reason and a detail line.
 */
static bool
check_directory(const char *path, char *msg, size_t cap)
{
	struct stat st;

	if (stat(".", &st) < 0)
	{
		snprintf(msg, cap, "could not stat directory \"%s\": %s", path, strerror(errno));
		return false;
	}
	if (st.st_uid != geteuid())
	{
		snprintf(msg, cap, "directory \"%s\" has wrong ownership\n"
				 "It is owned by UID %u; conmgr must be run by the user that owns its directory (UID %u runs it now).",
				 path, (unsigned) st.st_uid, (unsigned) geteuid());
		return false;
	}
	if ((st.st_mode & (S_IWGRP | S_IRWXO)) != 0)
	{
		snprintf(msg, cap, "directory \"%s\" has invalid permissions (%04o)\n"
				 "Permissions should be u=rwx (0700) or u=rwx,g=rx (0750).",
				 path, (unsigned) (st.st_mode & 07777));
		return false;
	}
	return true;
}

/*
 * conmgr.conf must belong to the user running conmgr (or to root) and be
 * writable by its owner only: whoever can change it chooses the instances
 * that applications are sent to.  A missing file is left to the parser,
 * which reports it.  On failure msg gets the reason.
 */
static bool
check_config_file(const char *path, char *msg, size_t cap)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return true;
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		snprintf(msg, cap, "configuration file \"%s\" is owned by UID %u: it must belong to the user running conmgr (UID %u) or to root",
				 path, (unsigned) st.st_uid, (unsigned) geteuid());
		return false;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
	{
		snprintf(msg, cap, "configuration file \"%s\" has invalid permissions (%04o): it must be writable by its owner only (chmod go-w)",
				 path, (unsigned) (st.st_mode & 07777));
		return false;
	}
	return true;
}

/* libevent's own warnings and errors go to our log. */
static void
libevent_log_cb(int severity, const char *msg)
{
	switch (severity)
	{
		case EVENT_LOG_DEBUG:
			cm_debug("libevent: %s", msg);
			break;
		case EVENT_LOG_MSG:
			cm_info("libevent: %s", msg);
			break;
		case EVENT_LOG_WARN:
			cm_warning("libevent: %s", msg);
			break;
		default:
			cm_error("libevent: %s", msg);
			break;
	}
}

static void
log_config_error(void *arg, const char *message)
{
	cm_log(*(CmLogLevel *) arg, "%s", message);
}

/* Append a line to a reload report and log it. */
typedef struct ReloadReport
{
	char	   *buf;
	size_t		cap;
	size_t		len;
	CmLogLevel	level;
} ReloadReport;

static void
reload_report(void *arg, const char *message)
{
	ReloadReport *r = arg;

	cm_log(r->level, "%s", message);
	if (r->len < r->cap)
	{
		int			n = snprintf(r->buf + r->len, r->cap - r->len, "%s\n", message);

		if (n > 0)
			r->len += (size_t) n;
		if (r->len > r->cap)
			r->len = r->cap;
	}
}

/*
 * Raise the soft open-files limit to what the configuration needs
 * (CM_FIXED_FDS + CM_METRICS_FDS when metrics_port is set + instances +
 * max_app_connections), as far as the hard
 * limit allows, and record the limit in force: application connections
 * are refused before they would take the descriptors that the heartbeat
 * connections need (cm_app.c).  Called at start and after every reload,
 * since both max_app_connections and the instances may change; a limit
 * that stays too low is a warning, in the log and, for a reload, in its
 * report (r not NULL).
 */
static void
check_fd_limit(ReloadReport *r)
{
	struct rlimit rl;
	rlim_t		need;
	char		msg[600];

	need = (rlim_t) CM_FIXED_FDS + (rlim_t) cm_metrics_fds() +
		(rlim_t) CM_FDS_PER_INSTANCE * cm_server.ninstances +
		(rlim_t) cm_server.cfg.max_app_connections;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
	{
		cm_server.fd_limit = INT_MAX;
		return;
	}
	if (rl.rlim_cur < need)
	{
		struct rlimit want = rl;

		want.rlim_cur = (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		{
			cm_debug("open-files limit raised from %llu to %llu",
					 (unsigned long long) rl.rlim_cur, (unsigned long long) want.rlim_cur);
			rl = want;
		}
	}
	cm_server.fd_limit = (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX) ?
		INT_MAX : (int) rl.rlim_cur;
	if (rl.rlim_cur >= need)
		return;
	snprintf(msg, sizeof(msg),
			 "the open-files limit (%llu) is below the %llu descriptors that max_app_connections = %d and %d instances need (%d + 2 per instance + max_app_connections); at most %d application connections will be accepted; raise \"ulimit -n\" or lower max_app_connections",
			 (unsigned long long) rl.rlim_cur, (unsigned long long) need,
			 cm_server.cfg.max_app_connections, cm_server.ninstances,
			 CM_FIXED_FDS + cm_metrics_fds(),
			 cm_server.fd_limit > CM_FIXED_FDS + cm_metrics_fds() + CM_FDS_PER_INSTANCE * cm_server.ninstances ?
			 cm_server.fd_limit - CM_FIXED_FDS - cm_metrics_fds() - CM_FDS_PER_INSTANCE * cm_server.ninstances : 0);
	if (r)
	{
		CmLogLevel	level = r->level;

		r->level = CM_LOG_WARNING;
		reload_report(r, msg);
		r->level = level;
	}
	else
		cm_warning("%s", msg);
}

/*
 * Read the secret named by secret_file of cfg into *secret (*on false when
 * secret_file is empty).  On failure, msg gets "FILE:LINE: ..." and false
 * is returned.
 */
static bool
load_secret(const CmConfig *cfg, CmAuthSecret *secret, bool *on, char *msg, size_t cap)
{
	char		err[600];

	*on = cfg->secret_file[0] != '\0';
	if (!*on)
		return true;
	if (cm_auth_read_secret(cfg->secret_file, secret, err, sizeof(err)))
		return true;
	snprintf(msg, cap, "%s:%d: secret_file: %s", cfg->path,
			 cm_config_line(cfg, "secret_file"), err);
	return false;
}

/* Put a secret read by load_secret() in force; say so when that changes. */
static void
apply_secret(const CmAuthSecret *secret, bool on, const char *path)
{
	bool		changed = on != cm_server.auth ||
		(on && (secret->len != cm_server.secret.len ||
				memcmp(secret->data, cm_server.secret.data, secret->len) != 0));

	static bool warned = false;

	if (changed && on)
		cm_log_detail(CM_LOG_INFO,
					  "It applies to heartbeat connections made from now on.", NULL,
					  "heartbeat authentication is on, with the secret of \"%s\"",
					  path);
	if (!on && !warned)
		cm_log_detail(CM_LOG_WARNING,
					  "Whatever answers on a watchdog port is believed (its attributes, its shutdown notices).",
					  "Set secret_file for anything but a lab.",
					  "insecure_no_authentication is on: heartbeats are not authenticated");
	warned = !on;
	cm_server.auth = on;
	if (on)
		cm_server.secret = *secret;
	else
		memset(&cm_server.secret, 0, sizeof(cm_server.secret));
}

/*
 * Re-read conmgr.conf.  A file with errors changes nothing; otherwise the
 * reloadable parameters take effect and every other change is reported as
 * ignored.  The report (one line per message) goes to the log and to *report.
 */
void
cm_reload_config(char *report, size_t cap, bool *ok)
{
	CmConfig	newcfg;
	ReloadReport r = {report, cap, 0, CM_LOG_ERROR};
	int			old_level = cm_server.cfg.log_level;
	int			old_dest = cm_server.cfg.log_destination;
	bool		changed[CM_MAX_INSTANCES];
	int			i;
	char	   *old_file = strdup(cm_server.cfg.log_file);
	CmAuthSecret secret;
	bool		secret_on;
	char		msg[800];

	report[0] = '\0';
	/* after a log rotation, this reload's own messages go to the new file */
	cm_log_reopen();
	cm_info("reloading configuration file \"%s\"", cm_server.cfg.path);
	if (!check_config_file(cm_server.cfg.path, msg, sizeof(msg)))
	{
		reload_report(&r, msg);
		reload_report(&r, "configuration file not read; no change was applied");
		free(old_file);
		*ok = false;
		return;
	}
	if (!cm_config_load(cm_server.cfg.path, &newcfg, reload_report, &r))
	{
		reload_report(&r, "configuration file contains errors; no change was applied");
		cm_config_free(&newcfg);
		free(old_file);
		*ok = false;
		return;
	}
	if (!load_secret(&newcfg, &secret, &secret_on, msg, sizeof(msg)))
	{
		reload_report(&r, msg);
		reload_report(&r, "configuration file contains errors; no change was applied");
		cm_config_free(&newcfg);
		free(old_file);
		*ok = false;
		return;
	}
	r.level = CM_LOG_INFO;
	memset(changed, 0, sizeof(changed));
	cm_config_reload(&cm_server.cfg, &newcfg, reload_report, &r, changed);

	/*
	 * Instances added, removed or changed: the old one goes first (its
	 * applications are notified), then the definition is replaced, then the
	 * new one connects.
	 */
	for (i = 0; i < CM_MAX_INSTANCES; i++)
		if (changed[i])
			cm_instance_remove(i);
	for (i = 0; i < CM_MAX_INSTANCES; i++)
		if (changed[i])
			cm_config_set_instance(&cm_server.cfg, &newcfg, i);
	for (i = 0; i < CM_MAX_INSTANCES; i++)
		if (changed[i] && cm_server.cfg.inst[i].defined)
			cm_instance_add(i);
	cm_config_free(&newcfg);
	apply_secret(&secret, secret_on, cm_server.cfg.secret_file);
	memset(&secret, 0, sizeof(secret));
	if (r.len == 0)
		reload_report(&r, "no parameter changed");
	check_fd_limit(&r);

	if (old_level != cm_server.cfg.log_level || old_dest != cm_server.cfg.log_destination ||
		strcmp(old_file, cm_server.cfg.log_file) != 0)
	{
		if (!cm_log_configure((CmLogLevel) cm_server.cfg.log_level,
							  (CmLogDestination) cm_server.cfg.log_destination,
							  cm_server.cfg.log_file))
			reload_report(&r, "the new log destination could not be opened; logging continues where it was");
	}
	free(old_file);
	*ok = true;
}

/* The event that frees closed objects (cm_free_later). */
static struct event *free_later_event = NULL;

static void
free_later_cb(evutil_socket_t fd, short what, void *arg)
{
	cm_app_free_closed();
	cm_instance_free_removed();
}

/*
 * Have the objects closed meanwhile freed once the running callback has
 * returned, in the same turn of the event loop.  Closing an object never
 * frees it, so no caller (not even the object's own callback, which may
 * have closed it) is left holding freed memory: callers test the object's
 * state instead.  One event for the process, made active with no timeout;
 * the watchdog frees its closed peers at the end of a loop cycle the same
 * way.
 */
void
cm_free_later(void)
{
	if (free_later_event)
		event_active(free_later_event, EV_TIMEOUT, 0);
}

/*
 * Leave the event loop once a shutdown has nothing left to wait for.  A
 * smart shutdown waits for the application connections, not for the
 * connections refused meanwhile (they only linger until their client
 * reads the refusal).
 */
void
cm_check_shutdown(void)
{
	CmListIter	it;

	if (cm_server.shutdown == CM_SHUTDOWN_NONE)
		return;
	if (cm_server.shutdown == CM_SHUTDOWN_SMART)
	{
		cm_list_foreach(it, &cm_server.apps)
		{
			CmApp	   *app = cm_list_container(CmApp, node, it.cur);

			if (app->state != CM_APP_REFUSED)
				return;
		}
	}
	event_base_loopexit(cm_server.base, NULL);
}

/*
 * Signals, delivered in the event loop (libevent evsignal): reload, and the
 * three shutdown modes.
 */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig)
	{
		case SIGHUP:
			{
				char		report[8192];
				bool		ok;

				cm_info("received SIGHUP");
				cm_reload_config(report, sizeof(report), &ok);
				break;
			}
		case SIGTERM:
			if (cm_server.shutdown != CM_SHUTDOWN_NONE)
				break;
			cm_info("received smart shutdown request: new application connections are told that conmgr is stopping; waiting for the %d connected ones to close",
					cm_server.napps);
			cm_server.shutdown = CM_SHUTDOWN_SMART;
			cm_check_shutdown();
			break;
		case SIGINT:
			if (cm_server.shutdown == CM_SHUTDOWN_FAST)
				break;
			cm_info("received fast shutdown request: notifying %d application connections",
					cm_server.napps);
			cm_server.shutdown = CM_SHUTDOWN_FAST;
			cm_app_close_all(CM_REASON_SHUTDOWN, "conmgr is shutting down (fast shutdown)");
			cm_check_shutdown();
			break;
		case SIGQUIT:
			cm_info("received immediate shutdown request: exiting at once");
			remove_files();
			_exit(0);
	}
}

/*
 * conmgr -D DIR: checks (not root, directory), configuration, PID-file lock,
 * log destination, event loop; on a smart or fast stop, goodbye to every
 * watchdog and clean exit.
 */
int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	const char *dir = getenv("CMDATA");
	char		resolved[PATH_MAX];
	char		confpath[PATH_MAX + 32];
	CmLogLevel	errlevel = CM_LOG_FATAL;
	struct event *sigs[4];
	static const int signums[4] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT};
	int			c;
	int			i;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage();
		return 0;
	}
	while ((c = getopt_long(argc, argv, "D:V", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'D':
				dir = optarg;
				break;
			case 'V':
				printf("conmgr (Connection Manager for PostgreSQL) %s\n", CM_VERSION);
				return 0;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
				return 1;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "%s: too many command-line arguments (first is \"%s\")\n",
				progname, argv[optind]);
		fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
		return 1;
	}

	if (geteuid() == 0)
	{
		fprintf(stderr, "%s: cannot be run as root\n"
				"Please log in (using, e.g., \"su\") as the (unprivileged) user that will own the conmgr process.\n",
				progname);
		return 1;
	}
	if (dir == NULL || dir[0] == '\0')
	{
		fprintf(stderr, "%s: no conmgr directory specified\n"
				"Specify the directory with -D or set the environment variable CMDATA.\n",
				progname);
		return 1;
	}
	if (realpath(dir, resolved) == NULL)
	{
		fprintf(stderr, "%s: could not access directory \"%s\": %s\n",
				progname, dir, strerror(errno));
		return 1;
	}
	if (chdir(resolved) < 0 || access(".", R_OK | W_OK | X_OK) < 0)
	{
		fprintf(stderr, "%s: directory \"%s\" is not accessible: %s\n"
				"The user running conmgr needs read, write and execute permission on it.\n",
				progname, resolved, strerror(errno));
		return 1;
	}

	{
		char		msg[PATH_MAX + 300];

		snprintf(confpath, sizeof(confpath), "%s/%s", resolved, CM_CONFIG_FILE);
		if (!check_directory(resolved, msg, sizeof(msg)) ||
			!check_config_file(confpath, msg, sizeof(msg)))
		{
			fprintf(stderr, "%s: %s\n", progname, msg);
			return 1;
		}
	}

	memset(&cm_server, 0, sizeof(cm_server));
	cm_server.directory = strdup(resolved);
	cm_server.started_wall = time(NULL);
	if (gethostname(cm_server.hostname, sizeof(cm_server.hostname) - 1) < 0)
		snprintf(cm_server.hostname, sizeof(cm_server.hostname), "unknown");
	/* who this process is, for a watchdog that waits for it to reconnect */
	while (cm_server.incarnation == 0)
	{
		if (!cm_auth_random((uint8_t *) &cm_server.incarnation,
							sizeof(cm_server.incarnation)))
		{
			fprintf(stderr, "conmgr: could not generate a random number\n");
			return 1;
		}
	}
	umask(077);
	signal(SIGPIPE, SIG_IGN);

	/* configuration: every error is logged with file and line */
	snprintf(confpath, sizeof(confpath), "%s/%s", resolved, CM_CONFIG_FILE);
	if (!cm_config_load(confpath, &cm_server.cfg, log_config_error, &errlevel))
	{
		cm_fatal("could not load configuration file \"%s\"; conmgr not started", confpath);
		return 1;
	}
	{
		CmAuthSecret secret;
		bool		on;
		char		msg[800];

		if (!load_secret(&cm_server.cfg, &secret, &on, msg, sizeof(msg)))
		{
			cm_fatal("%s", msg);
			cm_fatal("could not load configuration file \"%s\"; conmgr not started", confpath);
			return 1;
		}
		apply_secret(&secret, on, cm_server.cfg.secret_file);
		memset(&secret, 0, sizeof(secret));
	}

	if (!lock_pid_file())
		return 1;

	if (cm_server.cfg.log_destination != CM_LOGDEST_STDERR || cm_server.cfg.log_level != CM_LOG_INFO)
	{
		if (!cm_log_configure((CmLogLevel) cm_server.cfg.log_level,
							  (CmLogDestination) cm_server.cfg.log_destination,
							  cm_server.cfg.log_file))
		{
			remove_files();
			return 1;
		}
	}

	event_set_log_callback(libevent_log_cb);
	cm_server.base = event_base_new();
	if (cm_server.base != NULL)
		free_later_event = event_new(cm_server.base, -1, 0, free_later_cb, NULL);
	if (cm_server.base == NULL || free_later_event == NULL)
	{
		cm_fatal("could not initialize the event loop");
		remove_files();
		return 1;
	}
	cm_instance_create_all();
	check_fd_limit(NULL);

	for (i = 0; i < 4; i++)
	{
		sigs[i] = evsignal_new(cm_server.base, signums[i], signal_cb, NULL);
		evsignal_add(sigs[i], NULL);
	}

	if (!cm_ctl_server_start() || !cm_app_listen() || !cm_metrics_listen())
	{
		remove_files();
		return 1;
	}

	cm_info("conmgr %s starting in directory \"%s\" (PID %d): %d instance%s, port %d, heartbeat_interval %d ms, heartbeat_timeout %d ms",
			CM_VERSION, cm_server.directory, (int) getpid(), cm_server.ninstances,
			cm_server.ninstances == 1 ? "" : "s", cm_server.cfg.port,
			cm_server.cfg.heartbeat_interval, cm_server.cfg.heartbeat_timeout);
	for (i = 0; i < cm_server.ninstances; i++)
		cm_instance_start(cm_server.instances[i]);

	event_base_dispatch(cm_server.base);

	/* clean stop (smart or fast) */
	cm_app_free_all();
	cm_instance_goodbye_all();
	cm_instance_free_all();
	if (cm_server.dns)
		evdns_base_free(cm_server.dns, 1);
	cm_metrics_stop();
	cm_app_stop_listening();
	remove_files();
	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	event_free(free_later_event);
	free_later_event = NULL;
	event_base_free(cm_server.base);
	cm_info("conmgr stopped");
	cm_config_free(&cm_server.cfg);
	free(cm_server.directory);
	return 0;
}
