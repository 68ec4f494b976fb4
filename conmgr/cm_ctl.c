/*-------------------------------------------------------------------------
 *
 * cm_ctl.c
 *	  Start, stop, reload and inspect a conmgr, in the manner of pg_ctl.
 *
 *	cm_ctl start  [-D DIR] [-W] [--complete] [-t SECS] [-l LOGFILE]
 *	cm_ctl stop   [-D DIR] [-W] [-m smart|fast|immediate] [-t SECS]
 *	cm_ctl status [-D DIR] [-t SECS] [-i all|instance|application] [--json]
 *	cm_ctl reload [-D DIR]
 *
 * Whether a conmgr runs is decided by the lock on DIR/conmgr.pid, not by
 * the file's presence, so a PID file left by a crash is never mistaken for
 * a running conmgr.  State, status and reload go through the control socket
 * DIR/conmgr.sock; stop uses signals (SIGTERM, SIGINT, SIGQUIT).
 *
 * Exit codes follow pg_ctl: 0 success, 1 failure (including a wait that
 * timed out), 3 "not running" for status, 4 "directory not accessible" for
 * status.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_ctl.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cm_defaults.h"
#include "cm_time.h"
#include "cm_version.h"

/* the operation, as pg_ctl's CtlCommand: set once while parsing */
typedef enum CtlCommand
{
	NO_COMMAND = 0,
	START_COMMAND,
	STOP_COMMAND,
	STATUS_COMMAND,
	RELOAD_COMMAND
} CtlCommand;

/* the stop modes and the signal each sends to conmgr */
typedef enum ShutdownMode
{
	SMART_MODE,
	FAST_MODE,
	IMMEDIATE_MODE
} ShutdownMode;

static const char *progname = "cm_ctl";
static CtlCommand ctl_command = NO_COMMAND;
static char dir[PATH_MAX];
static bool no_wait = false;
static bool wait_complete = false;
static int	wait_seconds = CM_CTL_DEFAULT_WAIT_SECONDS;
static ShutdownMode shutdown_mode = SMART_MODE;
static const char *show_what = "all";	/* sent to conmgr as given */
static bool json = false;
static const char *log_file = NULL;

static void msg_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void msg_detail(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void msg_hint(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void vmsg(const char *kind, const char *fmt, va_list ap)
			__attribute__((format(printf, 2, 0)));

static void
vmsg(const char *kind, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s: ", progname, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
msg_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vmsg("error", fmt, ap);
	va_end(ap);
}

static void
msg_detail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vmsg("detail", fmt, ap);
	va_end(ap);
}

static void
msg_hint(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vmsg("hint", fmt, ap);
	va_end(ap);
}

/*
 * The line that follows every command-line error, as pg_ctl prints it.
 */
static void
do_advice(void)
{
	fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
}

static void
usage(void)
{
	printf("%s starts, stops, reloads and reports on a Connection Manager (conmgr).\n\n", progname);
	printf("Usage:\n");
	printf("  %s start   [-D DIR] [-W] [--complete] [-t SECS] [-l FILENAME]\n", progname);
	printf("  %s stop    [-D DIR] [-W] [-m SHUTDOWN-MODE] [-t SECS]\n", progname);
	printf("  %s status  [-D DIR] [-t SECS] [-i all|instance|application] [--json]\n", progname);
	printf("  %s reload  [-D DIR]\n\n", progname);
	printf("Common options:\n");
	printf("  -D, --pgdata=DIR       conmgr directory (default: $CMDATA)\n");
	printf("  -t, --timeout=SECS     seconds to wait (default: %d)\n", CM_CTL_DEFAULT_WAIT_SECONDS);
	printf("  -W, --no-wait          do not wait until the operation completes\n");
	printf("  -V, --version          output version information, then exit\n");
	printf("  -?, --help             show this help, then exit\n\n");
	printf("Options for start:\n");
	printf("      --complete         wait until every instance is connected, not only the primary\n");
	printf("  -l, --log=FILENAME     write conmgr's output to FILENAME (default: DIR/%s)\n\n", CM_DEFAULT_LOG_FILE);
	printf("Options for stop:\n");
	printf("  -m, --mode=MODE        smart (wait for applications), fast (notify them) or immediate\n\n");
	printf("Options for status:\n");
	printf("  -i, --info=WHAT        all, instance or application (default: all)\n");
	printf("      --json             machine-readable output\n\n");
	printf("Exit status: 0 success; 1 failure or time-out; 3 not running (status);\n");
	printf("4 directory not accessible (status).\n");
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Is a conmgr running in dir?  Returns its PID, 0 when none runs (no PID
 * file, or a file nobody holds the lock on).
 */
static pid_t
running_pid(void)
{
	int			fd;
	char		buf[64];
	ssize_t		n;
	pid_t		pid;

	fd = open(CM_PID_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
	{
		/* nobody holds it: stale file */
		close(fd);
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	pid = (pid_t) strtol(buf, NULL, 10);
	return pid > 0 ? pid : -1;	/* -1: running, PID not yet written */
}

/*
 * Send one request line on the control socket and read the whole answer
 * into a malloc'd string.  Returns NULL (with errno-style message in err)
 * on failure.
 */
static char *
ctl_request(const char *request, int timeout_sec, char *err, size_t errcap)
{
	struct sockaddr_un sun;
	struct timeval tv = {timeout_sec > 0 ? timeout_sec : 1, 0};
	int			fd;
	size_t		cap = 4096;
	size_t		len = 0;
	char	   *out;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", CM_CONTROL_SOCKET);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		snprintf(err, errcap, "could not create socket: %s", strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0)
	{
		snprintf(err, errcap, "could not connect to control socket \"%s/%s\": %s",
				 dir, CM_CONTROL_SOCKET, strerror(errno));
		close(fd);
		return NULL;
	}
	if (write(fd, request, strlen(request)) != (ssize_t) strlen(request) ||
		write(fd, "\n", 1) != 1)
	{
		snprintf(err, errcap, "could not send request: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	out = malloc(cap);
	if (out == NULL)
	{
		snprintf(err, errcap, "out of memory");
		close(fd);
		return NULL;
	}
	for (;;)
	{
		ssize_t		n;

		if (cap - len < 1024)
		{
			char	   *p = realloc(out, cap * 2);

			if (p == NULL)
			{
				free(out);
				close(fd);
				snprintf(err, errcap, "out of memory");
				return NULL;
			}
			out = p;
			cap *= 2;
		}
		n = read(fd, out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			snprintf(err, errcap, "could not read the answer: %s",
					 errno == EAGAIN ? "timed out" : strerror(errno));
			free(out);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t) n;
	}
	out[len] = '\0';
	close(fd);
	if (len == 0)
	{
		snprintf(err, errcap, "conmgr closed the control connection without an answer");
		free(out);
		return NULL;
	}
	return out;
}

static int
state_field(const char *state, const char *name)
{
	char		key[32];
	const char *p;

	snprintf(key, sizeof(key), "%s=", name);
	p = strstr(state, key);
	return p ? atoi(p + strlen(key)) : -1;
}

/* Print what conmgr logged since offset (its reason for failing). */
static void
print_log_since(const char *path, off_t offset)
{
	FILE	   *f = fopen(path, "r");
	char		line[2048];

	if (f == NULL)
		return;
	if (fseeko(f, offset, SEEK_SET) == 0)
	{
		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
	}
	fclose(f);
}

/* Locate the conmgr program: next to cm_ctl, else on PATH. */
static void
find_conmgr(char *path, size_t cap)
{
	char		self[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0)
	{
		self[n] = '\0';
		snprintf(path, cap, "%s/conmgr", dirname(self));
		if (access(path, X_OK) == 0)
			return;
	}
	snprintf(path, cap, "conmgr");
}

/*
 * cm_ctl start: run conmgr in the background (new session, output appended
 * to the log file) and, unless -W, wait until the primary (or with
 * --complete every instance) is connected, at most -t seconds.  When
 * conmgr exits during the wait, print what it logged.
 */
static int
do_start(void)
{
	pid_t		pid = running_pid();
	char		logpath[PATH_MAX + 64];
	char		conmgr[PATH_MAX + 16];
	struct stat st;
	off_t		log_offset = 0;
	int64_t		deadline;
	int			polls = 0;

	if (pid != 0)
	{
		msg_error("another conmgr (PID %d) is already running in directory \"%s\"", (int) pid, dir);
		return CM_EXIT_FAILURE;
	}
	if (log_file)
		snprintf(logpath, sizeof(logpath), "%s", log_file);
	else
		snprintf(logpath, sizeof(logpath), "%s/%s", dir, CM_DEFAULT_LOG_FILE);
	if (stat(logpath, &st) == 0)
		log_offset = st.st_size;
	find_conmgr(conmgr, sizeof(conmgr));

	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		msg_error("could not start conmgr: fork failed: %s", strerror(errno));
		return CM_EXIT_FAILURE;
	}
	if (pid == 0)
	{
		int			fd;
		int			i;

		setsid();
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
		{
			dup2(fd, 0);
			if (fd > 2)
				close(fd);
		}
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd < 0)
		{
			fprintf(stderr, "%s: error: could not open log file \"%s\": %s\n",
					progname, logpath, strerror(errno));
			_exit(126);
		}
		dup2(fd, 1);
		dup2(fd, 2);
		/* conmgr inherits nothing else (glibc 2.34 has close_range) */
		if (close_range(3, ~0U, 0) < 0)
		{
			for (i = 3; i < 1024; i++)
				close(i);
		}
		execl(conmgr, "conmgr", "-D", dir, (char *) NULL);
		if (errno == ENOENT && strchr(conmgr, '/') == NULL)
			execlp("conmgr", "conmgr", "-D", dir, (char *) NULL);
		fprintf(stderr, "%s: error: could not execute \"%s\": %s\n",
				progname, conmgr, strerror(errno));
		_exit(127);
	}

	if (no_wait)
	{
		printf("conmgr starting\n");
		return CM_EXIT_OK;
	}

	printf("waiting for conmgr to start...");
	fflush(stdout);
	deadline = cm_mono_ms() + (int64_t) wait_seconds * 1000;
	for (;;)
	{
		int			status;
		pid_t		r = waitpid(pid, &status, WNOHANG);
		char		err[512];
		char	   *state;

		if (r == pid)
		{
			printf(" stopped waiting\n");
			msg_error("could not start conmgr: it exited with status %d",
					  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
			msg_detail("conmgr's output (log file \"%s\"):", logpath);
			print_log_since(logpath, log_offset);
			return CM_EXIT_FAILURE;
		}
		state = running_pid() == pid ? ctl_request("state", 2, err, sizeof(err)) : NULL;
		if (state)
		{
			int			up = state_field(state, "up");
			int			n = state_field(state, "instances");
			int			primary = state_field(state, "primary");

			free(state);
			if ((wait_complete && up == n) || (!wait_complete && primary == 1))
			{
				printf(" done\nconmgr started\n");
				return CM_EXIT_OK;
			}
		}
		if (cm_mono_ms() >= deadline)
			break;
		sleep_ms(CM_CTL_POLL_MS);
		if (++polls % (1000 / CM_CTL_POLL_MS) == 0)
		{
			printf(".");
			fflush(stdout);
		}
	}
	printf(" stopped waiting\n");
	if (wait_complete)
		msg_error("conmgr did not connect to every instance within %d seconds", wait_seconds);
	else
		msg_error("conmgr did not connect to a primary within %d seconds", wait_seconds);
	msg_hint("conmgr (PID %d) keeps running and retrying; see \"%s status -D %s\" and the log file \"%s\"",
			 (int) pid, progname, dir, logpath);
	return CM_EXIT_FAILURE;
}

/*
 * cm_ctl stop: signal conmgr (SIGTERM smart, SIGINT fast, SIGQUIT
 * immediate) and, unless -W, wait until the PID-file lock is released.
 */
static int
do_stop(void)
{
	pid_t		pid = running_pid();
	int			sig;
	int64_t		deadline;

	switch (shutdown_mode)
	{
		case SMART_MODE:
			sig = SIGTERM;
			break;
		case FAST_MODE:
			sig = SIGINT;
			break;
		default:
			sig = SIGQUIT;
			break;
	}
	if (pid == 0)
	{
		msg_error("no conmgr is running in directory \"%s\" (PID file \"%s\" absent or not locked)",
				  dir, CM_PID_FILE);
		msg_hint("Is conmgr running?");
		return CM_EXIT_FAILURE;
	}
	if (pid < 0)
	{
		msg_error("conmgr in directory \"%s\" is still starting; its PID is not known yet", dir);
		return CM_EXIT_FAILURE;
	}
	if (kill(pid, sig) < 0)
	{
		msg_error("could not send stop signal (PID: %d): %s", (int) pid, strerror(errno));
		return CM_EXIT_FAILURE;
	}
	if (no_wait)
	{
		printf("conmgr shutting down\n");
		return CM_EXIT_OK;
	}
	printf("waiting for conmgr to shut down...");
	fflush(stdout);
	deadline = cm_mono_ms() + (int64_t) wait_seconds * 1000;
	while (running_pid() != 0)
	{
		if (cm_mono_ms() >= deadline)
		{
			printf(" failed\n");
			msg_error("conmgr (PID %d) did not shut down within %d seconds", (int) pid, wait_seconds);
			if (sig == SIGTERM)
				msg_hint("A smart shutdown waits until every application connection is closed; use \"-m fast\" to notify and close them.");
			return CM_EXIT_FAILURE;
		}
		sleep_ms(CM_CTL_POLL_MS);
	}
	printf(" done\nconmgr stopped\n");
	return CM_EXIT_OK;
}

/*
 * cm_ctl status: print conmgr's report; exit 3 when none runs.
 */
static int
do_status(void)
{
	pid_t		pid = running_pid();
	char		req[64];
	char		err[512];
	char	   *out;

	if (pid == 0)
	{
		printf("%s: no conmgr running\n", progname);
		return CM_EXIT_NOT_RUNNING;
	}
	snprintf(req, sizeof(req), "status %s %s", json ? "json" : "text", show_what);
	out = ctl_request(req, wait_seconds, err, sizeof(err));
	if (out == NULL)
	{
		msg_error("conmgr (PID %d) is running but did not answer: %s", (int) pid, err);
		return CM_EXIT_FAILURE;
	}
	fputs(out, stdout);
	free(out);
	return CM_EXIT_OK;
}

/*
 * cm_ctl reload: ask conmgr to reload through the control socket and print
 * its report; exit 1 when the file has errors (nothing was applied).
 */
static int
do_reload(void)
{
	pid_t		pid = running_pid();
	char		err[512];
	char	   *out;
	char	   *body;

	if (pid == 0)
	{
		msg_error("no conmgr is running in directory \"%s\"", dir);
		msg_hint("Is conmgr running?");
		return CM_EXIT_FAILURE;
	}
	out = ctl_request("reload", wait_seconds, err, sizeof(err));
	if (out == NULL)
	{
		msg_error("could not reload conmgr (PID %d): %s", (int) pid, err);
		return CM_EXIT_FAILURE;
	}
	body = strchr(out, '\n');
	body = body ? body + 1 : out + strlen(out);
	if (strncmp(out, "ok\n", 3) == 0)
	{
		fputs(body, stdout);
		printf("conmgr reloaded its configuration\n");
		free(out);
		return CM_EXIT_OK;
	}
	msg_error("conmgr did not reload its configuration; it keeps the current one");
	fputs(body, stderr);
	free(out);
	return CM_EXIT_FAILURE;
}

/*
 * -m: the shutdown mode, checked while the options are parsed (pg_ctl's
 * set_mode).  Exits on an unknown mode.
 */
static void
set_mode(const char *modeopt)
{
	if (strcmp(modeopt, "smart") == 0 || strcmp(modeopt, "s") == 0)
		shutdown_mode = SMART_MODE;
	else if (strcmp(modeopt, "fast") == 0 || strcmp(modeopt, "f") == 0)
		shutdown_mode = FAST_MODE;
	else if (strcmp(modeopt, "immediate") == 0 || strcmp(modeopt, "i") == 0)
		shutdown_mode = IMMEDIATE_MODE;
	else
	{
		msg_error("unrecognized shutdown mode \"%s\"", modeopt);
		msg_hint("Valid modes are \"smart\", \"fast\" and \"immediate\".");
		exit(CM_EXIT_FAILURE);
	}
}

/*
 * -i: what status reports, checked while the options are parsed.  Exits on
 * an unknown value.
 */
static void
set_info(const char *infoopt)
{
	if (strcmp(infoopt, "all") != 0 && strcmp(infoopt, "instance") != 0 &&
		strcmp(infoopt, "application") != 0)
	{
		msg_error("unrecognized value \"%s\" for -i", infoopt);
		msg_hint("Valid values are \"all\", \"instance\" and \"application\".");
		exit(CM_EXIT_FAILURE);
	}
	show_what = infoopt;
}

/*
 * -t: seconds to wait.  Exits on a value that is not a number of seconds.
 */
static void
set_timeout(const char *timeoutopt)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(timeoutopt, &end, 10);
	if (errno != 0 || *end != '\0' || end == timeoutopt ||
		v < 0 || v > INT_MAX / 1000)
	{
		msg_error("invalid value \"%s\" for option -t: a number of seconds from 0 to %d is expected",
				  timeoutopt, INT_MAX / 1000);
		exit(CM_EXIT_FAILURE);
	}
	wait_seconds = (int) v;
}

/*
 * The operation named on the command line (there is one).  Exits when it
 * is the second one, or unknown.
 */
static void
set_command(const char *arg)
{
	if (ctl_command != NO_COMMAND)
	{
		msg_error("too many command-line arguments (first is \"%s\")", arg);
		do_advice();
		exit(CM_EXIT_FAILURE);
	}
	if (strcmp(arg, "start") == 0)
		ctl_command = START_COMMAND;
	else if (strcmp(arg, "stop") == 0)
		ctl_command = STOP_COMMAND;
	else if (strcmp(arg, "status") == 0)
		ctl_command = STATUS_COMMAND;
	else if (strcmp(arg, "reload") == 0)
		ctl_command = RELOAD_COMMAND;
	else
	{
		msg_error("unrecognized operation mode \"%s\"", arg);
		do_advice();
		exit(CM_EXIT_FAILURE);
	}
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"timeout", required_argument, NULL, 't'},
		{"no-wait", no_argument, NULL, 'W'},
		{"wait", no_argument, NULL, 'w'},
		{"mode", required_argument, NULL, 'm'},
		{"info", required_argument, NULL, 'i'},
		{"log", required_argument, NULL, 'l'},
		{"complete", no_argument, NULL, 1},
		{"json", no_argument, NULL, 2},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	const char *dirarg = getenv("CMDATA");
	int			c;
	struct stat st;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage();
		return CM_EXIT_OK;
	}
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0))
	{
		printf("cm_ctl (Connection Manager for PostgreSQL) %s\n", CM_VERSION);
		return CM_EXIT_OK;
	}

	/* options and the operation, in any order (pg_ctl's loop) */
	while (optind < argc)
	{
		while ((c = getopt_long(argc, argv, "D:t:Wwm:i:l:V", long_options, NULL)) != -1)
		{
			switch (c)
			{
				case 'D':
					dirarg = optarg;
					break;
				case 't':
					set_timeout(optarg);
					break;
				case 'W':
					no_wait = true;
					break;
				case 'w':
					no_wait = false;
					break;
				case 'm':
					set_mode(optarg);
					break;
				case 'i':
					set_info(optarg);
					break;
				case 'l':
					log_file = optarg;
					break;
				case 1:
					wait_complete = true;
					break;
				case 2:
					json = true;
					break;
				default:
					do_advice();
					return CM_EXIT_FAILURE;
			}
		}
		if (optind < argc)
			set_command(argv[optind++]);
	}

	if (ctl_command == NO_COMMAND)
	{
		msg_error("no operation specified");
		do_advice();
		return CM_EXIT_FAILURE;
	}
	if (geteuid() == 0)
	{
		msg_error("cannot be run as root");
		msg_hint("Please log in (using, e.g., \"su\") as the (unprivileged) user that will own the conmgr process.");
		return CM_EXIT_FAILURE;
	}
	if (dirarg == NULL || dirarg[0] == '\0')
	{
		msg_error("no conmgr directory specified");
		msg_hint("Use option -D or set the environment variable CMDATA.");
		return CM_EXIT_FAILURE;
	}
	if (realpath(dirarg, dir) == NULL || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
		chdir(dir) < 0)
	{
		msg_error("directory \"%s\" is not accessible: %s", dirarg,
				  errno ? strerror(errno) : "not a directory");
		return ctl_command == STATUS_COMMAND ? CM_EXIT_NO_DIRECTORY : CM_EXIT_FAILURE;
	}
	if (log_file && log_file[0] != '/')
	{
		msg_error("the log file given with -l must be an absolute path");
		return CM_EXIT_FAILURE;
	}

	switch (ctl_command)
	{
		case START_COMMAND:
			return do_start();
		case STOP_COMMAND:
			return do_stop();
		case STATUS_COMMAND:
			return do_status();
		case RELOAD_COMMAND:
			return do_reload();
		case NO_COMMAND:
			break;
	}
	return CM_EXIT_FAILURE;
}
