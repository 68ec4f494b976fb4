/*-------------------------------------------------------------------------
 *
 * pqcm_peer.c
 *	  Who answered on a conmgr port.  Before the library believes a conmgr
 *	  (before it sends the route request, long before the application's
 *	  password goes anywhere), it asks the kernel which OS user owns the
 *	  socket at the other end of the connection and accepts only the users
 *	  that may run conmgr: root, the application's own user and the owner
 *	  of $CMDATA, or the users listed in PGCONMGRUSER.
 *
 * The owner comes from the kernel's socket diagnostics (NETLINK_SOCK_DIAG,
 * the interface of ss(8), common/cm_sockdiag.c): an exact lookup of the TCP socket whose local
 * address and port are our connection's remote ones and whose remote
 * address and port are our local ones, which is the socket the listener
 * accepted for us.  Any user may make this lookup.  The kernel reports the
 * user (file-system UID) of the process that accepted the connection,
 * whoever created the listening socket (test/unit/test_peer.c checks both
 * as root); for conmgr that is the user conmgr runs as.  A connection not
 * yet accepted, or whose socket its owner has closed, belongs to no
 * process, and the kernel reports such sockets as owned by root: only a
 * socket still held by a process (it has an inode), connected or being
 * shut down, counts.
 *
 * Without these diagnostics (not Linux, a sandbox that forbids netlink, a
 * conmgr reached on another host) the owner cannot be verified and the
 * entry fails, unless PGCONMGR_INSECURE_UNVERIFIED_PEER=on.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/pqcm_peer.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_sockdiag.h"
#include "pqcm_int.h"

/* "127.0.0.1 port 27546" */
static void
sockaddr_name(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char		a[INET6_ADDRSTRLEN] = "?";
	unsigned	port = 0;

	if (ss->ss_family == AF_INET)
	{
		const struct sockaddr_in *s4 = (const struct sockaddr_in *) ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	}
	else if (ss->ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, cap, "%s port %u", a, port);
}

/*
 * Find the user that owns the other end of the connected TCP socket fd.
 * On PQCM_PEER_FOUND *uid is set; otherwise why says what is missing.
 */
PqcmPeerLookup
pqcm_peer_uid(int fd, uid_t *uid, char *why, size_t whycap)
{
	struct sockaddr_storage ls,
				rs;
	socklen_t	llen = sizeof(ls),
				rlen = sizeof(rs);
	struct sockaddr *local = (struct sockaddr *) &ls;
	struct sockaddr *remote = (struct sockaddr *) &rs;
	char		rname[INET6_ADDRSTRLEN + 16];
	char		self_why[200];
	uid_t		self_uid;
	int			state;
	bool		held;
	CmSockDiagStatus st;

	why[0] = '\0';
	if (getsockname(fd, local, &llen) < 0 || getpeername(fd, remote, &rlen) < 0)
	{
		snprintf(why, whycap, "could not read the addresses of the connection: %s",
				 strerror(errno));
		return PQCM_PEER_UNAVAILABLE;
	}
	if ((ls.ss_family != AF_INET && ls.ss_family != AF_INET6) ||
		ls.ss_family != rs.ss_family)
	{
		snprintf(why, whycap, "the connection is not TCP/IP");
		return PQCM_PEER_UNAVAILABLE;
	}
	sockaddr_name(&rs, rname, sizeof(rname));

	/* the socket that answered: its local end is our remote one */
	st = cm_sockdiag_peer_owner(remote, local, uid, &state, &held, why, whycap);
	if (st == CM_SOCKDIAG_FOUND)
	{
		/*
		 * Held by a process, in any connected state: a conmgr that refuses
		 * the connection has written its refusal and shut its side down
		 * already (FIN_WAIT), and still holds the socket until we read it.
		 */
		if (state < 0 || state >= 32 ||
			!(CM_SOCKDIAG_CONNECTED & CM_SOCKDIAG_STATE(state)) || !held)
		{
			snprintf(why, whycap,
					 "the socket that answered on %s is no longer held by a process "
					 "(TCP state %d)", rname, state);
			return PQCM_PEER_UNOWNED;
		}
		return PQCM_PEER_FOUND;
	}
	if (st != CM_SOCKDIAG_NOT_FOUND)
		return PQCM_PEER_UNAVAILABLE;

	/*
	 * Not found: either the other end is not a socket of this host (another
	 * network namespace), or TCP diagnostics are missing.  Our own socket
	 * tells which.
	 */
	st = cm_sockdiag_peer_owner(local, remote, &self_uid, NULL, NULL,
								self_why, sizeof(self_why));
	if (st == CM_SOCKDIAG_FOUND)
	{
		snprintf(why, whycap,
				 "no socket of this host answers on %s (a conmgr on another host "
				 "or in another network namespace)", rname);
		return PQCM_PEER_NOT_FOUND;
	}
	if (st == CM_SOCKDIAG_NOT_FOUND)
		snprintf(why, whycap,
				 "socket diagnostics do not know TCP sockets here (kernel module tcp_diag missing?)");
	else
		snprintf(why, whycap, "%s", self_why);
	return PQCM_PEER_UNAVAILABLE;
}

/* "UID 1001 (cmtest)" or "UID 1001" */
static void
uid_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd pw;
	struct passwd *res = NULL;
	char		pwbuf[4096];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res != NULL)
		snprintf(buf, cap, "UID %u (%s)", (unsigned) uid, res->pw_name);
	else
		snprintf(buf, cap, "UID %u", (unsigned) uid);
}

/* Add uid to the rule (once). */
static void
add_user(PqcmPeerRule *rule, uid_t uid)
{
	int			i;

	for (i = 0; i < rule->n; i++)
		if (rule->uid[i] == uid)
			return;
	if (rule->n < PQCM_PEER_MAX_USERS)
		rule->uid[rule->n++] = uid;
}

/*
 * Read the users that may own conmgr's socket: root always (it can read
 * the application's memory anyway); then either the users of PGCONMGRUSER
 * (a comma-separated list of user names and numeric UIDs), or, without
 * it, the application's effective user and the owner of the directory
 * $CMDATA names.  An invalid PGCONMGRUSER sets rule->error; it is
 * reported when a conmgr answers.  User names are resolved here, when the
 * probe starts, not under the library's lock.
 */
void
pqcm_peer_rule_init(PqcmPeerRule *rule)
{
	const char *v = getenv("PGCONMGRUSER");
	const char *p;

	memset(rule, 0, sizeof(*rule));
	rule->insecure = pqcm_insecure_unverified_peer();
	add_user(rule, 0);
	if (v == NULL || v[0] == '\0')
	{
		const char *dir = getenv("CMDATA");
		struct stat st;

		add_user(rule, geteuid());
		if (dir && dir[0] && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			add_user(rule, st.st_uid);
		return;
	}

	rule->from_env = true;
	snprintf(rule->setting, sizeof(rule->setting), "%s", v);
	p = v;
	while (*p)
	{
		char		item[256];
		size_t		len;
		const char *end = strchr(p, ',');

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && isspace((unsigned char) *p))
			p++;
		len = (size_t) (end - p);
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len >= sizeof(item))
		{
			snprintf(rule->error, sizeof(rule->error),
					 "invalid value for environment variable PGCONMGRUSER: a user name is too long");
			return;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		p = *end ? end + 1 : end;
		if (len == 0)
			continue;
		if (rule->n >= PQCM_PEER_MAX_USERS)
		{
			snprintf(rule->error, sizeof(rule->error),
					 "invalid value for environment variable PGCONMGRUSER: more than %d users",
					 PQCM_PEER_MAX_USERS - 1);
			return;
		}
		if (strspn(item, "0123456789") == len)
		{
			unsigned long uid;
			char	   *e;

			errno = 0;
			uid = strtoul(item, &e, 10);
			if (errno != 0 || *e != '\0' || uid >= (unsigned long) (uid_t) -1)
			{
				snprintf(rule->error, sizeof(rule->error),
						 "invalid value \"%s\" for environment variable PGCONMGRUSER: UID %s is out of range",
						 v, item);
				return;
			}
			add_user(rule, (uid_t) uid);
		}
		else
		{
			struct passwd pw;
			struct passwd *res = NULL;
			char		pwbuf[4096];

			if (getpwnam_r(item, &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL)
			{
				snprintf(rule->error, sizeof(rule->error),
						 "invalid value \"%s\" for environment variable PGCONMGRUSER: no user named \"%s\"%s",
						 v, item,
						 strchr(item, '*') ? " (wildcards are not supported)" : "");
				return;
			}
			add_user(rule, res->pw_uid);
		}
	}
}

/*
 * Decide whether the conmgr that answered on fd may be believed, by
 * rule.  label names the entry ("\"localhost\", port 27546").  Returns
 * true when its socket belongs to an expected user (or when that cannot
 * be verified and PGCONMGR_INSECURE_UNVERIFIED_PEER=on); false with msg
 * set otherwise.
 */
bool
pqcm_peer_trusted(int fd, const PqcmPeerRule *rule, const char *label,
				  char *msg, size_t msgcap)
{
	char		why[300];
	uid_t		uid = 0;
	PqcmPeerLookup r;
	int			i;

	if (rule->error[0])
	{
		snprintf(msg, msgcap, "conmgr at %s is not trusted: %s", label, rule->error);
		return false;
	}

	r = pqcm_peer_uid(fd, &uid, why, sizeof(why));
	if (r == PQCM_PEER_FOUND)
	{
		char		found[300];
		char		allowed[400] = "";
		struct sockaddr_storage rs;
		socklen_t	rlen = sizeof(rs);
		char		rname[INET6_ADDRSTRLEN + 16] = "?";

		for (i = 0; i < rule->n; i++)
			if (rule->uid[i] == uid)
				return true;

		/* names are looked up on this error path only */
		uid_name(uid, found, sizeof(found));
		for (i = 0; i < rule->n; i++)
		{
			char		one[300];
			size_t		used = strlen(allowed);

			uid_name(rule->uid[i], one, sizeof(one));
			snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
					 i == 0 ? "" : ", ", one);
		}
		if (getpeername(fd, (struct sockaddr *) &rs, &rlen) == 0)
			sockaddr_name(&rs, rname, sizeof(rname));
		if (rule->from_env)
			snprintf(msg, msgcap,
					 "conmgr at %s is not trusted: the socket that answered on %s belongs to %s, "
					 "and PGCONMGRUSER=\"%s\" allows only %s",
					 label, rname, found, rule->setting, allowed);
		else
			snprintf(msg, msgcap,
					 "conmgr at %s is not trusted: the socket that answered on %s belongs to %s, "
					 "and without PGCONMGRUSER only %s may run conmgr "
					 "(set PGCONMGRUSER to the user conmgr runs as)",
					 label, rname, found, allowed);
		return false;
	}
	if (r == PQCM_PEER_UNOWNED)
	{
		snprintf(msg, msgcap, "conmgr at %s is not trusted: %s", label, why);
		return false;
	}
	if (rule->insecure)
		return true;
	snprintf(msg, msgcap,
			 "conmgr at %s is not trusted: the user it runs as cannot be verified: %s "
			 "(PGCONMGR_INSECURE_UNVERIFIED_PEER is not set)",
			 label, why);
	return false;
}

/* PGCONMGR_INSECURE_UNVERIFIED_PEER=on (only "on", in any case). */
bool
pqcm_insecure_unverified_peer(void)
{
	const char *v = getenv("PGCONMGR_INSECURE_UNVERIFIED_PEER");

	return v != NULL && strcasecmp(v, "on") == 0;
}
