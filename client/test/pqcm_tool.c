/*-------------------------------------------------------------------------
 *
 * pqcm_tool.c
 *	  Test driver for libpqcm, run by the TAP tests t/3*.pl.  Each
 *	  subcommand exercises one part of the API and prints key=value lines
 *	  that the tests check.  Exit status 0 on success, 1 on failure, 2 on
 *	  a usage error.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/test/pqcm_tool.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libpq-events.h"
#include "libpq-fe.h"

#include "libpq-cm.h"

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
status_name(ConnStatusType st)
{
	if (st == CONNECTION_AWAITING_CMRESPONSE)
		return "AWAITING_CMRESPONSE";
	switch (st)
	{
		case CONNECTION_OK:
			return "OK";
		case CONNECTION_BAD:
			return "BAD";
		default:
			return "PENDING";
	}
}

/* Print the description of an established (or failed) connection. */
static void
describe(PGconn *conn)
{
	printf("status=%s\n", status_name(PQstatus(conn)));
	if (PQstatus(conn) != CONNECTION_OK)
	{
		printf("needs_password=%d\n", PQconnectionNeedsPassword(conn));
		printf("error=%s", PQerrorMessage(conn));
		return;
	}
	printf("host=%s\n", PQhost(conn));
	printf("hostaddr=%s\n", PQhostaddr(conn));
	printf("port=%s\n", PQport(conn));
	printf("cmsocket=%s\n", PQcmSocket(conn) >= 0 ? "yes" : "no");
	printf("backend_pid=%d\n", PQbackendPID(conn));
	fflush(stdout);
}

/*
 * Connect and describe the connection; NULL when it failed (the failure
 * described).
 */
static PGconn *
connect_described(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	describe(conn);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Tell the test that the program is ready for what it does next; returns the time. */
static long long
ready(void)
{
	printf("ready=1\n");
	fflush(stdout);
	return now_ms();
}

/* Close the connection, the output flushed; the command's exit status. */
static int
close_conn(PGconn *conn)
{
	fflush(stdout);
	PQfinish(conn);
	return 0;
}

/* Print the connection's final status and close it. */
static int
finish(PGconn *conn)
{
	printf("final_status=%s\n", status_name(PQstatus(conn)));
	return close_conn(conn);
}

/* Run one query and print its first value. */
static int
query(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	int			ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (ok && PQntuples(res) > 0)
		printf("value=%s\n", PQgetvalue(res, 0, 0));
	else if (!ok)
		printf("query_error=%s", PQerrorMessage(conn));
	PQclear(res);
	fflush(stdout);
	return ok;
}

static void
print_result_error(PGconn *conn, PGresult *res)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	printf("result=%s\n", PQresStatus(PQresultStatus(res)));
	printf("sqlstate=%s\n", sqlstate ? sqlstate : "none");
	printf("error=%s", PQerrorMessage(conn));
	if (PQerrorMessage(conn)[0] == '\0')
		printf("\n");
}

/* connect CONNINFO [SQL]: PQconnectdb, describe, optional query. */
static int
cmd_connect(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[0]);
	int			ok = PQstatus(conn) == CONNECTION_OK;

	int			cmfd = PQcmSocket(conn);

	describe(conn);
	if (ok && argc > 1)
		ok = query(conn, argv[1]);
	PQfinish(conn);
	if (cmfd >= 0)
		printf("cm_closed=%d\n", fcntl(cmfd, F_GETFD) == -1 && errno == EBADF);
	return ok ? 0 : 1;
}

/* ping CONNINFO: PQping; prints the answer. */
static int
cmd_ping(int argc, char **argv)
{
	static const char *const names[] = {"OK", "REJECT", "NO_RESPONSE", "NO_ATTEMPT"};
	PGPing		p = PQping(argv[0]);

	printf("ping=%s\n", (unsigned) p < 4 ? names[p] : "?");
	return p == PQPING_OK ? 0 : 1;
}

/* params KW=VAL ...: PQconnectdbParams with expand_dbname = 1. */
static int
cmd_params(int argc, char **argv)
{
	const char **kw = calloc((size_t) argc + 1, sizeof(char *));
	const char **val = calloc((size_t) argc + 1, sizeof(char *));
	char	  **copies = calloc((size_t) argc + 1, sizeof(char *));
	PGconn	   *conn;
	int			i,
				ok;

	for (i = 0; i < argc; i++)
	{
		char	   *eq;

		copies[i] = strdup(argv[i]);
		eq = strchr(copies[i], '=');
		if (eq == NULL)
			return 2;
		*eq = '\0';
		kw[i] = copies[i];
		val[i] = eq + 1;
	}
	conn = PQconnectdbParams(kw, val, 1);
	ok = PQstatus(conn) == CONNECTION_OK;
	describe(conn);
	PQfinish(conn);
	for (i = 0; i < argc; i++)
		free(copies[i]);
	free(copies);
	free(kw);
	free(val);
	return ok ? 0 : 1;
}

/* login HOST PORT DBNAME USER: PQsetdbLogin. */
static int
cmd_login(int argc, char **argv)
{
	PGconn	   *conn;
	int			ok;

	if (argc < 4)
		return 2;
	conn = PQsetdbLogin(argv[0], argv[1], NULL, NULL, argv[2], argv[3], NULL);
	ok = PQstatus(conn) == CONNECTION_OK;
	describe(conn);
	PQfinish(conn);
	return ok ? 0 : 1;
}

/*
 * async CONNINFO: PQconnectStart + PQconnectPoll, fetching PQsocket()
 * before every poll().  Prints every socket and status seen.
 */
static int
cmd_async(int argc, char **argv)
{
	PGconn	   *conn = PQconnectStart(argv[0]);
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	int			last_sock = -2;
	int			changes = 0;
	int			awaiting = 0;
	int			ok;

	if (conn == NULL)
		return 1;
	if (PQstatus(conn) == CONNECTION_BAD)
	{
		describe(conn);
		PQfinish(conn);
		return 1;
	}
	printf("start_host=%s\nstart_port=%s\n", PQhost(conn), PQport(conn));
	/* libpq reads the current host entry for these: must be safe now */
	printf("start_hostaddr=%s\nstart_needs_password=%d\n", PQhostaddr(conn),
		   PQconnectionNeedsPassword(conn));
	while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED)
	{
		struct pollfd pfd;
		int			sock = PQsocket(conn);

		if (PQstatus(conn) == CONNECTION_AWAITING_CMRESPONSE)
			awaiting++;
		if (sock != last_sock)
		{
			if (last_sock != -2)
				changes++;
			printf("socket=%d status=%s\n", sock, status_name(PQstatus(conn)));
			last_sock = sock;
		}
		pfd.fd = sock;
		pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, 30000) <= 0)
		{
			printf("poll_timeout=1\n");
			break;
		}
		ps = PQconnectPoll(conn);
	}
	printf("awaiting_seen=%d\nsocket_changes=%d\n", awaiting > 0, changes);
	ok = PQstatus(conn) == CONNECTION_OK;
	describe(conn);
	if (ok && argc > 1)
		ok = query(conn, argv[1]);
	PQfinish(conn);
	return ok ? 0 : 1;
}

/*
 * notice CONNINFO [SQL]: send a long query asynchronously, poll PQsocket()
 * and PQcmSocket(); when PQcmSocket() is readable, call PQconsumeInput()
 * and PQgetResult() and print what they report.
 */
static int
cmd_notice(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[0]);
	const char *sql = argc > 1 ? argv[1] : "SELECT pg_sleep(60)";
	PGresult   *res;
	long long	t0;
	int			cm_seen = 0;

	describe(conn);
	if (PQstatus(conn) != CONNECTION_OK || PQcmSocket(conn) < 0)
		return 1;
	PQsetnonblocking(conn, 1);
	if (!PQsendQuery(conn, sql))
		return 1;
	t0 = ready();
	for (;;)
	{
		struct pollfd pfd[2];

		pfd[0].fd = PQsocket(conn);
		pfd[0].events = POLLIN;
		pfd[1].fd = PQcmSocket(conn);
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, 120000) <= 0)
		{
			printf("poll_timeout=1\n");
			return 1;
		}
		if (pfd[1].revents)
			cm_seen = 1;
		PQconsumeInput(conn);
		if (!PQisBusy(conn))
			break;
		if (cm_seen)
			break;
	}
	printf("cm_readable=%d\n", cm_seen);
	res = PQgetResult(conn);
	print_result_error(conn, res);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	printf("elapsed_ms=%lld\n", now_ms() - t0);
	if (!cm_seen && PQcmSocket(conn) >= 0)
	{
		/* the server went first; conmgr's notice must follow */
		struct pollfd pfd = {PQcmSocket(conn), POLLIN, 0};

		printf("cm_readable_after=%d\n", poll(&pfd, 1, 10000) == 1);
	}
	return finish(conn);
}

/*
 * sync CONNINFO [SQL]: a synchronous PQexec that never looks at
 * PQcmSocket(); prints how it ended and how long it took.
 */
static int
cmd_sync(int argc, char **argv)
{
	PGconn	   *conn;
	const char *sql = argc > 1 ? argv[1] : "SELECT pg_sleep(60)";
	PGresult   *res;
	long long	t0;

	conn = connect_described(argv[0]);
	if (conn == NULL)
		return 1;
	t0 = ready();
	res = PQexec(conn, sql);
	printf("elapsed_ms=%lld\n", now_ms() - t0);
	print_result_error(conn, res);
	PQclear(res);
	printf("final_status=%s\n", status_name(PQstatus(conn)));
	/* a request after the failure */
	res = PQexec(conn, "SELECT 1");
	printf("after_result=%s\n", PQresStatus(PQresultStatus(res)));
	PQclear(res);
	printf("after_status=%s\n", status_name(PQstatus(conn)));
	if (argc > 2 && strcmp(argv[2], "reset") == 0)
	{
		/* what an application does next: reconnect through conmgr */
		PQreset(conn);
		printf("reset_status=%s\n", status_name(PQstatus(conn)));
		printf("reset_cmsocket=%s\n", PQcmSocket(conn) >= 0 ? "yes" : "no");
		printf("reset_backend_pid=%d\n", PQbackendPID(conn));
		query(conn, "SELECT 42");
	}
	return close_conn(conn);
}

/*
 * copy CONNINFO: a COPY TO STDOUT whose rows come late; the program
 * blocks in PQgetCopyData() and never looks at PQcmSocket().
 */
static int
cmd_copy(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	char	   *buf = NULL;
	long long	t0;
	int			rc;
	int			rows = 0;

	conn = connect_described(argv[0]);
	if (conn == NULL)
		return 1;
	/* the first row fills the server's send buffer, the second is late */
	res = PQexec(conn, "COPY (SELECT repeat('x', 100000) "
				 "UNION ALL SELECT pg_sleep(60)::text) TO STDOUT");
	printf("copy_start=%s\n", PQresStatus(PQresultStatus(res)));
	PQclear(res);
	t0 = ready();
	while ((rc = PQgetCopyData(conn, &buf, 0)) > 0)
	{
		rows++;
		PQfreemem(buf);
		buf = NULL;
	}
	printf("elapsed_ms=%lld\n", now_ms() - t0);
	printf("copy_rows=%d\ncopy_data=%d\n", rows, rc);
	res = PQgetResult(conn);
	print_result_error(conn, res);
	PQclear(res);
	return finish(conn);
}

/* An event procedure that keeps instance data, as libpqtypes does. */
static int	ev_register,
			ev_destroy,
			ev_reset;

static int
event_proc(PGEventId id, void *info, void *pass)
{
	(void) pass;
	if (id == PGEVT_REGISTER)
	{
		PGEventRegister *r = info;

		ev_register++;
		return PQsetInstanceData(r->conn, event_proc, malloc(64));
	}
	if (id == PGEVT_CONNDESTROY)
	{
		PGEventConnDestroy *d = info;

		ev_destroy++;
		free(PQinstanceData(d->conn, event_proc));
	}
	if (id == PGEVT_CONNRESET)
		ev_reset++;
	return 1;
}

/* reset CONNINFO [async]: connect, then PQreset (or PQresetStart/Poll). */
static int
cmd_reset(int argc, char **argv)
{
	PGconn	   *conn;
	int			ok;

	conn = connect_described(argv[0]);
	if (conn == NULL)
		return 1;
	printf("before_cmsocket=%d\n", PQcmSocket(conn) >= 0);
	if (!PQregisterEventProc(conn, event_proc, "pqcm_tool", NULL))
		return 1;
	if (argc > 1 && strcmp(argv[1], "async") == 0)
	{
		PostgresPollingStatusType ps = PGRES_POLLING_WRITING;

		if (!PQresetStart(conn))
		{
			describe(conn);
			return 1;
		}
		while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED)
		{
			struct pollfd pfd;

			pfd.fd = PQsocket(conn);
			pfd.events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, 30000) <= 0)
				break;
			ps = PQresetPoll(conn);
		}
	}
	else
		PQreset(conn);
	printf("after_reset=1\n");
	describe(conn);
	printf("event_instance=%s\n", PQinstanceData(conn, event_proc) ? "yes" : "no");
	ok = PQstatus(conn) == CONNECTION_OK && query(conn, "SELECT 1");
	PQfinish(conn);
	printf("events_balanced=%d\n", ev_register == ev_destroy);
	return ok ? 0 : 1;
}

/*
 * fork CONNINFO: connect, fork; the child runs its own connection and
 * exits without touching the parent's; the parent's connection must still
 * work and still be registered with conmgr.
 */
static int
cmd_fork(int argc, char **argv)
{
	PGconn	   *conn;
	pid_t		pid;
	int			status = 0;
	int			ok;

	conn = connect_described(argv[0]);
	if (conn == NULL)
		return 1;
	pid = fork();
	if (pid == 0)
	{
		PGconn	   *c2 = PQconnectdb(argv[0]);
		int			cok = PQstatus(c2) == CONNECTION_OK && PQcmSocket(c2) >= 0;

		PQfinish(c2);
		_exit(cok ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	printf("child_ok=%d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ok = query(conn, "SELECT 1");
	printf("parent_cmsocket=%d\n", PQcmSocket(conn) >= 0);
	PQfinish(conn);
	return ok ? 0 : 1;
}

/* threads N CONNINFO: N threads each connect, query and finish 5 times. */
typedef struct
{
	const char *conninfo;
	int			ok;
	int			via_cm;
} ThreadArg;

static void *
thread_main(void *p)
{
	ThreadArg  *a = p;
	int			i;

	for (i = 0; i < 5; i++)
	{
		PGconn	   *conn = (i % 2) ? PQconnectdb(a->conninfo) : PQconnectStart(a->conninfo);
		PGresult   *res;

		if (i % 2 == 0 && conn)
		{
			PostgresPollingStatusType ps = PGRES_POLLING_WRITING;

			while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED)
			{
				struct pollfd pfd = {PQsocket(conn),
				ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};

				if (poll(&pfd, 1, 30000) <= 0)
					break;
				ps = PQconnectPoll(conn);
			}
		}
		if (PQstatus(conn) == CONNECTION_OK)
		{
			res = PQexec(conn, "SELECT 1");
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
				a->ok++;
			PQclear(res);
			if (PQcmSocket(conn) >= 0)
				a->via_cm++;
		}
		PQfinish(conn);
	}
	return NULL;
}

static int
cmd_threads(int argc, char **argv)
{
	int			n = atoi(argv[0]);
	pthread_t  *tids;
	ThreadArg  *args;
	int			i,
				ok = 0,
				via_cm = 0;

	if (argc < 2 || n <= 0 || n > 64)
		return 2;
	tids = calloc((size_t) n, sizeof(pthread_t));
	args = calloc((size_t) n, sizeof(ThreadArg));
	for (i = 0; i < n; i++)
	{
		args[i].conninfo = argv[1];
		pthread_create(&tids[i], NULL, thread_main, &args[i]);
	}
	for (i = 0; i < n; i++)
	{
		pthread_join(tids[i], NULL);
		ok += args[i].ok;
		via_cm += args[i].via_cm;
	}
	printf("connections_ok=%d\nvia_conmgr=%d\n", ok, via_cm);
	free(tids);
	free(args);
	return ok == n * 5 ? 0 : 1;
}

/*
 * idle CONNINFO pqsocket|cmsocket|both|exec [GOFILE]: an idle application.
 * After connecting it waits until GOFILE exists (when given), so that the
 * test can line up the server's and conmgr's messages first, then waits
 * as idle programs do: poll() on PQsocket(), on PQcmSocket() or on both,
 * then PQconsumeInput() (or, with "exec", runs a query without polling).
 * Prints the error the application reads.
 */
static int
cmd_idle(int argc, char **argv)
{
	PGconn	   *conn;
	const char *how = argc > 1 ? argv[1] : "pqsocket";
	const char *gofile = argc > 2 ? argv[2] : NULL;
	long long	t0;

	conn = connect_described(argv[0]);
	if (conn == NULL)
		return 1;
	t0 = ready();
	while (gofile && access(gofile, F_OK) != 0)
	{
		if (now_ms() - t0 > 120000)
		{
			printf("go_timeout=1\n");
			return 1;
		}
		usleep(10000);
	}
	if (strcmp(how, "exec") == 0)
	{
		PGresult   *res = PQexec(conn, "SELECT 1");

		print_result_error(conn, res);
		PQclear(res);
	}
	else
	{
		for (;;)
		{
			struct pollfd pfd[2];
			int			n = 0;

			if (strcmp(how, "cmsocket") != 0)
			{
				pfd[n].fd = PQsocket(conn);
				pfd[n].events = POLLIN;
				pfd[n++].revents = 0;
			}
			if (strcmp(how, "pqsocket") != 0 && PQcmSocket(conn) >= 0)
			{
				pfd[n].fd = PQcmSocket(conn);
				pfd[n].events = POLLIN;
				pfd[n++].revents = 0;
			}
			if (n == 0 || poll(pfd, n, 120000) <= 0)
			{
				printf("poll_timeout=1\n");
				return 1;
			}
			if (!PQconsumeInput(conn) || PQstatus(conn) == CONNECTION_BAD)
				break;
		}
		printf("consume_failed=1\n");
		printf("error=%s", PQerrorMessage(conn));
	}
	return finish(conn);
}

/* ---------------------------------------------------------------------
 * Robustness (t/307_client_robustness.pl)
 * ---------------------------------------------------------------------
 */

/*
 * A failure notice as conmgr writes it ('F', length, reason, message),
 * here forged by the application: a library that reads a descriptor it no
 * longer owns would report this reason.
 */
static size_t
forged_notice(unsigned char *buf, size_t cap)
{
	static const char msg[] = "forged by the application";
	size_t		mlen = sizeof(msg) - 1;
	size_t		plen = 2 + 2 + mlen;
	uint32_t	len = htonl((uint32_t) (4 + plen));
	uint16_t	v;

	if (1 + 4 + plen > cap)
		return 0;
	buf[0] = 'F';
	memcpy(buf + 1, &len, 4);
	v = htons(6);				/* heartbeat timeout */
	memcpy(buf + 5, &v, 2);
	v = htons((uint16_t) mlen);
	memcpy(buf + 7, &v, 2);
	memcpy(buf + 9, msg, mlen);
	return 1 + 4 + plen;
}

/*
 * Put one end of a fresh socket pair at descriptor number fd (closed by
 * the caller); returns the other end, or -1.
 */
static int
reuse_number(int fd)
{
	int			sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	if (sv[1] == fd)
	{
		sv[1] = sv[0];
		sv[0] = fd;
	}
	if (sv[0] != fd)
	{
		if (dup2(sv[0], fd) != fd)
			return -1;
		close(sv[0]);
	}
	return sv[1];
}

/* Is fd a socket connected to the given address? */
static bool
same_peer(int fd, const struct sockaddr_storage *peer, socklen_t plen)
{
	struct sockaddr_storage ss;
	socklen_t	len = sizeof(ss);
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (getpeername(fd, (struct sockaddr *) &ss, &len) != 0)
		return false;
	return len == plen && memcmp(&ss, peer, len) == 0;
}

/*
 * How many descriptors of this process, other than "except", are sockets
 * connected to the given address; the first of them in *first.
 */
static int
peer_sockets(const struct sockaddr_storage *peer, socklen_t plen, int except, int *first)
{
	DIR		   *d = opendir("/proc/self/fd");
	struct dirent *de;
	int			n = 0;

	if (first)
		*first = -1;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
	{
		int			fd = atoi(de->d_name);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d) || fd == except)
			continue;
		if (same_peer(fd, peer, plen))
		{
			if (first && *first < 0)
				*first = fd;
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Print the first line of the connection's error under a key. */
static void
print_error_line(const char *key, PGconn *conn)
{
	const char *e = PQerrorMessage(conn);
	const char *nl = strchr(e, '\n');

	printf("%s=%.*s\n", key, nl ? (int) (nl - e) : (int) strlen(e), e);
}

/*
 * cmclose CONNINFO [watcher]: the application closes PQcmSocket() and the
 * number is reused at once by a socket with a valid-looking notice waiting
 * on it.  The library must neither read that socket nor close it, and the
 * connection must fail naming the cause.  With "watcher", a second
 * connection first makes the watcher thread look at every socket again.
 */
static int
cmd_cmclose(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[0]);
	PGconn	   *other = NULL;
	unsigned char frame[128];
	unsigned char back[128];
	size_t		flen;
	ssize_t		n;
	int			fd;
	int			peer;
	PGresult   *res;

	describe(conn);
	fd = PQcmSocket(conn);
	if (PQstatus(conn) != CONNECTION_OK || fd < 0)
		return 1;
	close(fd);
	peer = reuse_number(fd);
	flen = forged_notice(frame, sizeof(frame));
	if (peer < 0 || flen == 0 || write(peer, frame, flen) != (ssize_t) flen)
		return 1;
	printf("reused=1\n");
	if (argc > 1 && strcmp(argv[1], "watcher") == 0)
	{
		other = PQconnectdb(argv[0]);
		printf("other_status=%s\n", status_name(PQstatus(other)));
		usleep(300000);
	}
	printf("status_after=%s\n", status_name(PQstatus(conn)));
	res = PQexec(conn, "SELECT 1");
	printf("query=%s\n", PQresStatus(PQresultStatus(res)));
	PQclear(res);
	print_error_line("error", conn);
	printf("cmsocket_after=%d\n", PQcmSocket(conn));
	PQfinish(conn);
	if (other)
		PQfinish(other);
	printf("foreign_open=%d\n", fcntl(fd, F_GETFD) != -1);
	n = recv(fd, back, sizeof(back), MSG_DONTWAIT);
	printf("foreign_intact=%d\n", n == (ssize_t) flen && memcmp(back, frame, flen) == 0);
	close(fd);
	close(peer);
	return 0;
}

/*
 * sqlclose CONNINFO: the application closes the library's duplicate of the
 * SQL socket (found as the other descriptor connected to the server) and
 * the number is reused by a socket of its own.  When conmgr's notice
 * arrives (the test sends it), the library must neither shut that socket
 * down nor close it.
 */
static int
cmd_sqlclose(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[0]);
	struct sockaddr_storage srv;
	socklen_t	slen = sizeof(srv);
	long long	t0;
	int			dupfd;
	int			peer;
	char		c;
	bool		works;

	describe(conn);
	if (PQstatus(conn) != CONNECTION_OK ||
		getpeername(PQsocket(conn), (struct sockaddr *) &srv, &slen) != 0)
		return 1;
	(void) peer_sockets(&srv, slen, PQsocket(conn), &dupfd);
	printf("dup_found=%d\n", dupfd >= 0);
	if (dupfd < 0)
		return 1;
	close(dupfd);
	peer = reuse_number(dupfd);
	if (peer < 0)
		return 1;
	t0 = ready();
	while (PQstatus(conn) != CONNECTION_BAD && now_ms() - t0 < 120000)
		usleep(20000);
	printf("final_status=%s\n", status_name(PQstatus(conn)));
	print_error_line("error", conn);
	PQfinish(conn);
	printf("foreign_open=%d\n", fcntl(dupfd, F_GETFD) != -1);
	works = send(peer, "x", 1, MSG_NOSIGNAL) == 1 &&
		recv(dupfd, &c, 1, MSG_DONTWAIT) == 1 &&
		send(dupfd, "y", 1, MSG_NOSIGNAL) == 1 &&
		recv(peer, &c, 1, MSG_DONTWAIT) == 1;
	printf("foreign_works=%d\n", works);
	close(dupfd);
	close(peer);
	return 0;
}

/* The size of the process's address space, in kB (VmSize). */
static long
vm_size_kb(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	long		kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Wait until a file exists (at most two minutes). */
static bool
wait_file(const char *path)
{
	long long	t0 = now_ms();

	while (access(path, F_OK) != 0)
	{
		if (now_ms() - t0 > 120000)
			return false;
		usleep(10000);
	}
	return true;
}

/*
 * release CONNINFO terminate|oom TABLE GOFILE: a session that holds a lock
 * on TABLE ends while libpq still holds the connection object: the server
 * terminates it (the test calls pg_terminate_backend while the program
 * waits on PQsocket()), or libpq gives up on it ("oom": a row larger than
 * libpq can find memory for, under a lowered RLIMIT_AS, makes it report a
 * loss of synchronisation and close its socket while the backend, still
 * sending that row, lives on).  Once libpq has reported the error, prints
 * how many descriptors of the process are still connected to the server,
 * then waits for GOFILE before PQfinish(), so that the test can look at
 * the server meanwhile.
 */
static int
cmd_release(int argc, char **argv)
{
	PGconn	   *conn;
	struct sockaddr_storage srv;
	socklen_t	slen = sizeof(srv);
	char		sql[256];
	PGresult   *res;

	if (argc < 4)
		return 2;
	conn = PQconnectdb(argv[0]);
	describe(conn);
	if (PQstatus(conn) != CONNECTION_OK ||
		getpeername(PQsocket(conn), (struct sockaddr *) &srv, &slen) != 0)
		return 1;
	res = PQexec(conn, "BEGIN");
	PQclear(res);
	snprintf(sql, sizeof(sql), "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", argv[2]);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return 1;
	PQclear(res);
	printf("locked=1\n");
	fflush(stdout);
	if (strcmp(argv[1], "oom") == 0)
	{
		struct rlimit saved;
		struct rlimit rl;

		/* room for 16 MB more than the process has mapped, not 64 */
		if (getrlimit(RLIMIT_AS, &saved) != 0)
			return 1;
		rl = saved;
		rl.rlim_cur = (rlim_t) (vm_size_kb() + 16 * 1024) * 1024;
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			return 1;
		res = PQexec(conn, "SELECT repeat('x', 64 * 1024 * 1024)");
		(void) setrlimit(RLIMIT_AS, &saved);
		printf("result=%s\n", PQresStatus(PQresultStatus(res)));
		PQclear(res);
	}
	else
	{
		for (;;)
		{
			struct pollfd pfd = {PQsocket(conn), POLLIN, 0};

			if (pfd.fd < 0 || poll(&pfd, 1, 120000) <= 0)
				break;
			if (!PQconsumeInput(conn) || PQstatus(conn) == CONNECTION_BAD)
				break;
		}
	}
	printf("reported_status=%s\n", status_name(PQstatus(conn)));
	print_error_line("error", conn);
	printf("server_sockets=%d\n", peer_sockets(&srv, slen, -1, NULL));
	printf("reported=1\n");
	fflush(stdout);
	if (!wait_file(argv[3]))
		return 1;
	PQfinish(conn);
	printf("finished=1\n");
	return 0;
}

/*
 * forkwatch CONNINFO: a connection through conmgr with the watcher
 * running, then fork().  The child looks at the inherited connection
 * (PQcmSocket), makes its own connection through conmgr and runs a long
 * query on it; the parent keeps using its connection and runs a long
 * query too.  The test then sends every registered connection a notice:
 * each process must get its own, and the child must have left the
 * inherited connection alone (PQstatus afterwards).
 */
static int
cmd_forkwatch(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[0]);
	PGresult   *res;
	pid_t		pid;
	int			status = 0;

	describe(conn);
	if (PQstatus(conn) != CONNECTION_OK || PQcmSocket(conn) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
	{
		PGconn	   *own;

		printf("child_inherited_cmsocket=%d\n", PQcmSocket(conn));
		own = PQconnectdb(argv[0]);
		printf("child_own_status=%s\n", status_name(PQstatus(own)));
		printf("child_own_cmsocket=%s\n", PQcmSocket(own) >= 0 ? "yes" : "no");
		printf("child_backend_pid=%d\n", PQbackendPID(own));
		printf("child_ready=1\n");
		res = PQexec(own, "SELECT pg_sleep(60)");
		printf("child_result=%s\n", PQresStatus(PQresultStatus(res)));
		PQclear(res);
		print_error_line("child_error", own);
		printf("child_inherited_status=%s\n", status_name(PQstatus(conn)));
		PQfinish(own);
		fflush(stdout);
		_exit(0);
	}
	res = PQexec(conn, "SELECT 1");
	printf("parent_works=%d\n", PQresultStatus(res) == PGRES_TUPLES_OK);
	PQclear(res);
	printf("parent_ready=1\n");
	res = PQexec(conn, "SELECT pg_sleep(60)");
	printf("parent_result=%s\n", PQresStatus(PQresultStatus(res)));
	PQclear(res);
	print_error_line("parent_error", conn);
	waitpid(pid, &status, 0);
	printf("child_exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
	PQfinish(conn);
	return 0;
}

/* The driver manager's SQLGetInfo, as libpqcm defines it. */
extern short SQLGetInfo(void *dbc, unsigned short type, void *value,
						short buflen, short *len);

static volatile int getinfo_started;
static volatile int drain_stop;

static void *
getinfo_main(void *arg)
{
	char		buf[64];
	short		len;

	(void) arg;
	getinfo_started = 1;
	/* no driver manager: the library says so on stderr, under its lock */
	(void) SQLGetInfo(NULL, 13, buf, sizeof(buf), &len);
	return NULL;
}

static void *
drain_main(void *arg)
{
	int			fd = *(int *) arg;
	char		buf[4096];

	usleep(500000);
	while (!drain_stop)
	{
		struct pollfd pfd = {fd, POLLIN, 0};

		if (poll(&pfd, 1, 50) > 0 && read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	return NULL;
}

/*
 * forklock: fork() while another thread holds one of the library's locks
 * (the ODBC wrappers' lock, held while the library writes a message to a
 * stderr that is a full pipe, drained half a second later).  The child
 * then needs that lock: with every lock covered by the fork handlers,
 * fork() waits until it is free and the child goes on; otherwise the
 * child deadlocks (killed by an alarm after 10 s).
 */
static int
cmd_forklock(int argc, char **argv)
{
	char		fill[4096];
	int			p[2];
	int			saved;
	pthread_t	getinfo,
				drain;
	pid_t		pid;
	int			status = 0;
	long long	t0;

	memset(fill, 'x', sizeof(fill));
	if (pipe(p) != 0 || fcntl(p[1], F_SETFL, O_NONBLOCK) != 0)
		return 1;
	while (write(p[1], fill, sizeof(fill)) > 0)
		;
	if (fcntl(p[1], F_SETFL, 0) != 0 || (saved = dup(2)) < 0 || dup2(p[1], 2) != 2)
		return 1;
	pthread_create(&getinfo, NULL, getinfo_main, NULL);
	while (!getinfo_started)
		usleep(1000);
	usleep(200000);				/* now blocked writing, holding the lock */
	pthread_create(&drain, NULL, drain_main, &p[0]);
	t0 = now_ms();
	pid = fork();
	if (pid == 0)
	{
		char		buf[64];
		short		len;

		alarm(10);
		(void) SQLGetInfo(NULL, 13, buf, sizeof(buf), &len);
		_exit(0);
	}
	printf("fork_ms=%lld\n", now_ms() - t0);
	waitpid(pid, &status, 0);
	pthread_join(getinfo, NULL);
	drain_stop = 1;
	pthread_join(drain, NULL);
	dup2(saved, 2);
	close(saved);
	printf("child_exited=%d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("child_signal=%d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc < 3 && !(argc == 2 && strcmp(argv[1], "forklock") == 0))
	{
		fprintf(stderr, "usage: %s connect|ping|params|login|async|notice|sync|copy|reset|fork|threads|idle|"
				"cmclose|sqlclose|release|forkwatch|forklock ARGS ...\n",
				argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "connect") == 0)
		return cmd_connect(argc - 2, argv + 2);
	if (strcmp(argv[1], "ping") == 0)
		return cmd_ping(argc - 2, argv + 2);
	if (strcmp(argv[1], "params") == 0)
		return cmd_params(argc - 2, argv + 2);
	if (strcmp(argv[1], "login") == 0)
		return cmd_login(argc - 2, argv + 2);
	if (strcmp(argv[1], "async") == 0)
		return cmd_async(argc - 2, argv + 2);
	if (strcmp(argv[1], "notice") == 0)
		return cmd_notice(argc - 2, argv + 2);
	if (strcmp(argv[1], "sync") == 0)
		return cmd_sync(argc - 2, argv + 2);
	if (strcmp(argv[1], "reset") == 0)
		return cmd_reset(argc - 2, argv + 2);
	if (strcmp(argv[1], "fork") == 0)
		return cmd_fork(argc - 2, argv + 2);
	if (strcmp(argv[1], "copy") == 0)
		return cmd_copy(argc - 2, argv + 2);
	if (strcmp(argv[1], "threads") == 0)
		return cmd_threads(argc - 2, argv + 2);
	if (strcmp(argv[1], "idle") == 0)
		return cmd_idle(argc - 2, argv + 2);
	if (strcmp(argv[1], "cmclose") == 0)
		return cmd_cmclose(argc - 2, argv + 2);
	if (strcmp(argv[1], "sqlclose") == 0)
		return cmd_sqlclose(argc - 2, argv + 2);
	if (strcmp(argv[1], "release") == 0)
		return cmd_release(argc - 2, argv + 2);
	if (strcmp(argv[1], "forkwatch") == 0)
		return cmd_forkwatch(argc - 2, argv + 2);
	if (strcmp(argv[1], "forklock") == 0)
		return cmd_forklock(argc - 2, argv + 2);
	fprintf(stderr, "%s: unknown subcommand \"%s\"\n", argv[0], argv[1]);
	return 2;
}
