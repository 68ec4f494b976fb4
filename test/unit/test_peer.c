/*-------------------------------------------------------------------------
 *
 * test_peer.c
 *	  Unit tests of client/pqcm_peer.c: the owner of the socket at the
 *	  other end of a loopback TCP connection, found with the kernel's
 *	  socket diagnostics (IPv4, IPv6, IPv4 through a dual-stack listener),
 *	  the sockets that must not count (not yet accepted, already closed),
 *	  and the rule of PGCONMGRUSER and PGCONMGR_INSECURE_UNVERIFIED_PEER.
 *	  Run as root, it also checks that the reported user is the listener's
 *	  (a child process that listens as "nobody").
 *
 * Prints one "ok N - ..." / "not ok N - ..." line per check (t/001_unit.pl).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/test_peer.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pqcm_int.h"
#include "unit_tap.h"

/* A listening socket on the loopback address of family (port chosen). */
static int
listen_on(int family, bool v6only, struct sockaddr_storage *addr, socklen_t *len)
{
	int			fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int			one = 1;

	if (fd < 0)
		return -1;
	memset(addr, 0, sizeof(*addr));
	if (family == AF_INET)
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *) addr;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*s4);
	}
	else
	{
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) addr;
		int			only = v6only ? 1 : 0;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = v6only ? in6addr_loopback : in6addr_any;
		*len = sizeof(*s6);
		(void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
	}
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *) addr, *len) < 0 || listen(fd, 8) < 0 ||
		getsockname(fd, (struct sockaddr *) addr, len) < 0)
	{
		close(fd);
		return -1;
	}
	return fd;
}

/* A connection from a socket of family to addr (which may be rewritten). */
static int
connect_to(int family, const struct sockaddr *addr, socklen_t len)
{
	int			fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, addr, len) < 0)
	{
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *) ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
}

/* Connection to our own listener: the owner is us, in both directions. */
static void
check_family(const char *name, int lfamily, bool v6only, int cfamily,
			 const char *caddr)
{
	struct sockaddr_storage la;
	socklen_t	llen;
	int			l = listen_on(lfamily, v6only, &la, &llen);
	int			c = -1,
				a = -1;
	uid_t		uid = (uid_t) -1;
	char		why[300] = "";
	char		what[200];
	PqcmPeerLookup r;

	if (l < 0)
	{
		printf("# %s: no listener (%s); skipped\n", name, strerror(errno));
		return;
	}
	if (cfamily == AF_INET)
	{
		struct sockaddr_in s4;

		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_port = htons(port_of(&la));
		inet_pton(AF_INET, caddr, &s4.sin_addr);
		c = connect_to(AF_INET, (struct sockaddr *) &s4, sizeof(s4));
	}
	else
	{
		struct sockaddr_in6 s6;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons(port_of(&la));
		inet_pton(AF_INET6, caddr, &s6.sin6_addr);
		c = connect_to(AF_INET6, (struct sockaddr *) &s6, sizeof(s6));
	}
	snprintf(what, sizeof(what), "%s: connected", name);
	unit_check(c >= 0, what, strerror(errno));
	if (c < 0)
	{
		close(l);
		return;
	}

	/* queued but not accepted: no process holds that socket yet */
	r = pqcm_peer_uid(c, &uid, why, sizeof(why));
	snprintf(what, sizeof(what), "%s: a connection not yet accepted has no owner", name);
	unit_check(r == PQCM_PEER_UNOWNED, what, why);

	a = accept(l, NULL, NULL);
	r = pqcm_peer_uid(c, &uid, why, sizeof(why));
	snprintf(what, sizeof(what), "%s: the accepted socket is found", name);
	unit_check(r == PQCM_PEER_FOUND, what, why);
	snprintf(what, sizeof(what), "%s: its owner is this process's user", name);
	unit_check(r == PQCM_PEER_FOUND && uid == geteuid(), what, why);

	r = pqcm_peer_uid(a, &uid, why, sizeof(why));
	snprintf(what, sizeof(what), "%s: the other direction is found too", name);
	unit_check(r == PQCM_PEER_FOUND && uid == geteuid(), what, why);

	/* the accepting side shuts its side down but holds the socket */
	shutdown(a, SHUT_WR);
	r = pqcm_peer_uid(c, &uid, why, sizeof(why));
	snprintf(what, sizeof(what), "%s: a socket shut down but still held is found", name);
	unit_check(r == PQCM_PEER_FOUND && uid == geteuid(), what, why);

	/* the accepting side closes: its socket lingers without an owner */
	close(a);
	r = pqcm_peer_uid(c, &uid, why, sizeof(why));
	snprintf(what, sizeof(what), "%s: a socket closed by its owner does not count", name);
	unit_check(r == PQCM_PEER_UNOWNED, what, why);
	snprintf(what, sizeof(what), "%s: the reason names the address", name);
	unit_check(strstr(why, "no longer held by a process") != NULL, what, why);

	close(c);
	close(l);
}

/* pqcm_peer_trusted() with the rule the environment gives now. */
static bool
peer_trusted(int fd, char *msg, size_t cap)
{
	PqcmPeerRule rule;

	pqcm_peer_rule_init(&rule);
	return pqcm_peer_trusted(fd, &rule, "\"localhost\", port 1", msg, cap);
}

/* pqcm_peer_trusted() on a fresh connection to our own listener. */
static bool
trusted_with(const char *users, const char *insecure, char *msg, size_t cap)
{
	struct sockaddr_storage la;
	socklen_t	llen;
	int			l = listen_on(AF_INET, false, &la, &llen);
	int			c,
				a;
	bool		ok;

	if (users)
		setenv("PGCONMGRUSER", users, 1);
	else
		unsetenv("PGCONMGRUSER");
	if (insecure)
		setenv("PGCONMGR_INSECURE_UNVERIFIED_PEER", insecure, 1);
	else
		unsetenv("PGCONMGR_INSECURE_UNVERIFIED_PEER");
	c = connect_to(AF_INET, (struct sockaddr *) &la, llen);
	a = accept(l, NULL, NULL);
	msg[0] = '\0';
	ok = peer_trusted(c, msg, cap);
	close(a);
	close(c);
	close(l);
	return ok;
}

static void
check_rules(void)
{
	char		msg[600];
	char		me[64];
	char		list[200];
	struct passwd *pw = getpwuid(geteuid());
	bool		ok;
	int			sp[2];

	snprintf(me, sizeof(me), "%u", (unsigned) geteuid());

	ok = trusted_with(NULL, NULL, msg, sizeof(msg));
	unit_check(ok, "PGCONMGRUSER unset: a listener of our own user is trusted", msg);
	ok = trusted_with("", NULL, msg, sizeof(msg));
	unit_check(ok, "PGCONMGRUSER empty: same as unset", msg);
	ok = trusted_with(me, NULL, msg, sizeof(msg));
	unit_check(ok, "PGCONMGRUSER=<our UID>: trusted", msg);
	if (pw)
	{
		snprintf(list, sizeof(list), " nobody ,  %s,", pw->pw_name);
		ok = trusted_with(list, NULL, msg, sizeof(msg));
		unit_check(ok, "PGCONMGRUSER=\" nobody ,  <our name>,\": trusted", msg);
	}
	ok = trusted_with("nosuchuser_pqcm", NULL, msg, sizeof(msg));
	unit_check(!ok && strstr(msg, "no user named \"nosuchuser_pqcm\"") != NULL,
		  "PGCONMGRUSER naming no user: refused, and the error says so", msg);
	ok = trusted_with("*", NULL, msg, sizeof(msg));
	unit_check(!ok && strstr(msg, "wildcards are not supported") != NULL,
		  "PGCONMGRUSER=*: refused, no wildcard", msg);
	ok = trusted_with("99999999999", NULL, msg, sizeof(msg));
	unit_check(!ok && strstr(msg, "out of range") != NULL,
		  "PGCONMGRUSER with a UID out of range: refused", msg);

	if (geteuid() != 0)
	{
		char		expect[100];

		ok = trusted_with("root", NULL, msg, sizeof(msg));
		unit_check(!ok, "PGCONMGRUSER=root: a listener of our own user is refused", msg);
		snprintf(expect, sizeof(expect), "belongs to UID %u", (unsigned) geteuid());
		unit_check(strstr(msg, expect) != NULL, "the error names the UID found", msg);
		unit_check(strstr(msg, "127.0.0.1 port ") != NULL, "the error names the address and port", msg);
		unit_check(strstr(msg, "PGCONMGRUSER=\"root\" allows only UID 0 (root)") != NULL,
			  "the error names the setting and what it allows", msg);
		ok = trusted_with("root", "on", msg, sizeof(msg));
		unit_check(!ok, "PGCONMGR_INSECURE_UNVERIFIED_PEER=on does not accept a verified wrong user", msg);
	}

	/* a socket the diagnostics cannot look up: not TCP */
	unsetenv("PGCONMGRUSER");
	unsetenv("PGCONMGR_INSECURE_UNVERIFIED_PEER");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0)
	{
		ok = peer_trusted(sp[0], msg, sizeof(msg));
		unit_check(!ok && strstr(msg, "cannot be verified") != NULL &&
			  strstr(msg, "PGCONMGR_INSECURE_UNVERIFIED_PEER is not set") != NULL,
			  "unverifiable: refused, naming the reason and the opt-in", msg);
		setenv("PGCONMGR_INSECURE_UNVERIFIED_PEER", "ON", 1);
		ok = peer_trusted(sp[0], msg, sizeof(msg));
		unit_check(ok, "unverifiable with PGCONMGR_INSECURE_UNVERIFIED_PEER=on: accepted", msg);
		setenv("PGCONMGR_INSECURE_UNVERIFIED_PEER", "yes", 1);
		ok = peer_trusted(sp[0], msg, sizeof(msg));
		unit_check(!ok, "PGCONMGR_INSECURE_UNVERIFIED_PEER=yes is not \"on\"", msg);
		unsetenv("PGCONMGR_INSECURE_UNVERIFIED_PEER");
		close(sp[0]);
		close(sp[1]);
	}
}

/*
 * As root: a child listens and accepts as "nobody" (a listener made by
 * another user), or listens as root and accepts as nobody.  Reports the
 * user the kernel gives for the accepted socket.
 */
static void
check_other_user(bool listen_as_root)
{
	struct passwd *pw = getpwnam("nobody");
	int			pipefd[2];
	pid_t		child;
	uint16_t	port = 0;
	uid_t		uid = (uid_t) -1;
	char		why[300] = "";
	char		what[200];
	PqcmPeerLookup r;

	if (pw == NULL || pipe(pipefd) < 0)
	{
		printf("# no user nobody; cross-user check skipped\n");
		return;
	}
	child = fork();
	if (child == 0)
	{
		struct sockaddr_storage la;
		socklen_t	llen;
		int			l = -1,
					a;
		char		b;

		close(pipefd[0]);
		if (listen_as_root)
			l = listen_on(AF_INET, false, &la, &llen);
		if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(3);
		if (!listen_as_root)
			l = listen_on(AF_INET, false, &la, &llen);
		if (l < 0)
			_exit(4);
		port = port_of(&la);
		if (write(pipefd[1], &port, sizeof(port)) != sizeof(port))
			_exit(5);
		a = accept(l, NULL, NULL);
		if (a < 0)
			_exit(6);
		/* hold it until the parent closes its end */
		while (read(a, &b, 1) > 0)
			;
		_exit(0);
	}
	close(pipefd[1]);
	if (child > 0 && read(pipefd[0], &port, sizeof(port)) == sizeof(port))
	{
		struct sockaddr_in s4;
		int			c;
		int			tries;

		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_port = htons(port);
		s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		c = connect_to(AF_INET, (struct sockaddr *) &s4, sizeof(s4));
		/* until the child has accepted */
		r = PQCM_PEER_UNOWNED;
		for (tries = 0; c >= 0 && tries < 500 && r == PQCM_PEER_UNOWNED; tries++)
		{
			r = pqcm_peer_uid(c, &uid, why, sizeof(why));
			if (r == PQCM_PEER_UNOWNED)
				usleep(10000);
		}
		if (listen_as_root)
		{
			snprintf(what, sizeof(what),
					 "listener made by root, accepted by nobody: found, owned by root or nobody");
			unit_check(r == PQCM_PEER_FOUND && (uid == 0 || uid == pw->pw_uid), what, why);
			printf("# this kernel reports UID %u for that socket (%s)\n", (unsigned) uid,
				   uid == 0 ? "the listener's creator" : "the accepting process");
		}
		else
		{
			snprintf(what, sizeof(what), "listener of nobody: the accepted socket is owned by nobody");
			unit_check(r == PQCM_PEER_FOUND && uid == pw->pw_uid, what, why);
			setenv("PGCONMGRUSER", "", 1);
			unsetenv("CMDATA");
			{
				char		msg[600];
				bool		ok = peer_trusted(c, msg, sizeof(msg));

				unit_check(!ok && strstr(msg, "(nobody)") != NULL,
					  "root's default refuses a listener of nobody, naming the user", msg);
				setenv("PGCONMGRUSER", "nobody", 1);
				ok = peer_trusted(c, msg, sizeof(msg));
				unit_check(ok, "PGCONMGRUSER=nobody accepts it", msg);
				unsetenv("PGCONMGRUSER");

				/* the owner of $CMDATA is expected too */
				{
					char		dir[] = "/tmp/test_peer_XXXXXX";

					if (mkdtemp(dir) != NULL && chown(dir, pw->pw_uid, pw->pw_gid) == 0)
					{
						setenv("CMDATA", dir, 1);
						ok = peer_trusted(c, msg, sizeof(msg));
						unit_check(ok, "CMDATA naming a directory of nobody: accepted", msg);
						setenv("PGCONMGRUSER", "root", 1);
						ok = peer_trusted(c, msg, sizeof(msg));
						unit_check(!ok, "... but not when PGCONMGRUSER names other users", msg);
						unsetenv("PGCONMGRUSER");
						unsetenv("CMDATA");
					}
					else
						unit_check(0, "temporary directory for CMDATA", strerror(errno));
					rmdir(dir);
				}
			}
		}
		if (c >= 0)
			close(c);
	}
	else
		unit_check(0, "child listener started", strerror(errno));
	close(pipefd[0]);
	if (child > 0)
		waitpid(child, NULL, 0);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("CMDATA");

	check_family("IPv4", AF_INET, false, AF_INET, "127.0.0.1");
	check_family("IPv6", AF_INET6, true, AF_INET6, "::1");
	check_family("IPv4 to a dual-stack listener", AF_INET6, false, AF_INET, "127.0.0.1");
	check_family("IPv4-mapped IPv6 to a dual-stack listener", AF_INET6, false, AF_INET6,
				 "::ffff:127.0.0.1");
	check_rules();
	if (geteuid() == 0)
	{
		check_other_user(false);
		check_other_user(true);
	}
	else
		printf("# not root: the cross-user checks are skipped\n");

	printf("# %d checks, %d failed\n", unit_ntests, unit_nfailed);
	return unit_status();
}
