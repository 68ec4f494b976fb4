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
 * the interface of ss(8)): an exact lookup of the TCP socket whose local
 * address and port are our connection's remote ones and whose remote
 * address and port are our local ones, which is the socket the listener
 * accepted for us.  Any user may make this lookup.  The kernel reports the
 * user (file-system UID) of the process that accepted the connection,
 * whoever created the listening socket (test/unit/test_peer.c checks both
 * as root); for conmgr that is the user conmgr runs as.  A connection not
 * yet accepted, or whose socket its owner has closed, belongs to no
 * process, and the kernel reports such sockets as owned by root: only a
 * socket that is established and still held (it has an inode) counts.
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
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#endif

#include "pqcm_int.h"

/* How long we wait for the kernel's answer (it is normally immediate). */
#define PQCM_PEER_WAIT_MS	2000

/* TCP_ESTABLISHED of the kernel's TCP states (include/net/tcp_states.h). */
#define PQCM_TCP_ESTABLISHED 1

/* An endpoint: IPv4 in the first 4 bytes of addr, or IPv6. */
typedef struct PeerEnd
{
	int			family;			/* AF_INET or AF_INET6 */
	uint8_t		addr[16];
	uint16_t	port;			/* network byte order */
} PeerEnd;

/*
 * Fill *e from a socket address; an IPv4-mapped IPv6 address becomes
 * IPv4, as the kernel looks such a connection up.  False for anything
 * but TCP/IP.
 */
static bool
end_from_sockaddr(PeerEnd *e, const struct sockaddr_storage *ss)
{
	memset(e, 0, sizeof(*e));
	if (ss->ss_family == AF_INET)
	{
		const struct sockaddr_in *s4 = (const struct sockaddr_in *) ss;

		e->family = AF_INET;
		memcpy(e->addr, &s4->sin_addr, 4);
		e->port = s4->sin_port;
		return true;
	}
	if (ss->ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) ss;

		e->port = s6->sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		{
			e->family = AF_INET;
			memcpy(e->addr, &s6->sin6_addr.s6_addr[12], 4);
		}
		else
		{
			e->family = AF_INET6;
			memcpy(e->addr, &s6->sin6_addr, 16);
		}
		return true;
	}
	return false;
}

/* "127.0.0.1 port 27546" */
static void
end_name(const PeerEnd *e, char *buf, size_t cap)
{
	char		a[INET6_ADDRSTRLEN];

	if (inet_ntop(e->family, e->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, cap, "%s port %u", a, (unsigned) ntohs(e->port));
}

#ifdef __linux__

/* Milliseconds since *start (CLOCK_MONOTONIC). */
static int
elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int) ((now.tv_sec - start->tv_sec) * 1000 +
				  (now.tv_nsec - start->tv_nsec) / 1000000);
}

/*
 * Same endpoint as the kernel reports it in an inet_diag_sockid (an
 * IPv6 socket serving an IPv4 connection reports mapped addresses).
 */
static bool
end_matches(const PeerEnd *e, int family, const __be32 *addr, __be16 port)
{
	const uint8_t *a = (const uint8_t *) addr;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (port != e->port)
		return false;
	if (family == AF_INET6 && e->family == AF_INET)
		return memcmp(a, mapped, 12) == 0 && memcmp(a + 12, e->addr, 4) == 0;
	if (family != e->family)
		return false;
	return memcmp(a, e->addr, e->family == AF_INET ? 4 : 16) == 0;
}

/*
 * Ask the kernel for the TCP socket whose local end is *local and whose
 * remote end is *remote.  Returns 0 with *msg filled, or an errno value:
 * ENOENT when no such socket exists (or TCP diagnostics are missing),
 * other values when the lookup could not be made (*why set).
 */
static int
diag_lookup(const PeerEnd *local, const PeerEnd *remote,
			struct inet_diag_msg *out, char *why, size_t whycap)
{
	static uint32_t seq_counter;
	struct
	{
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	}			rq;
	struct sockaddr_nl kernel;
	uint32_t	seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
	int			nl;
	int			result = ETIMEDOUT;
	struct timespec start;

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
	{
		snprintf(why, whycap, "could not open a NETLINK_SOCK_DIAG socket: %s",
				 strerror(errno));
		return errno ? errno : EIO;
	}
	/* connected to the kernel: nothing else can send to this socket */
	memset(&kernel, 0, sizeof(kernel));
	kernel.nl_family = AF_NETLINK;
	kernel.nl_pid = 0;
	if (connect(nl, (struct sockaddr *) &kernel, sizeof(kernel)) < 0)
	{
		int			err = errno;

		snprintf(why, whycap, "could not connect a NETLINK_SOCK_DIAG socket: %s",
				 strerror(err));
		close(nl);
		return err ? err : EIO;
	}

	memset(&rq, 0, sizeof(rq));
	rq.nlh.nlmsg_len = sizeof(rq);
	rq.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq.nlh.nlmsg_flags = NLM_F_REQUEST;
	rq.nlh.nlmsg_seq = seq;
	rq.req.sdiag_family = (uint8_t) local->family;
	rq.req.sdiag_protocol = IPPROTO_TCP;
	rq.req.idiag_states = ~0U;
	rq.req.id.idiag_sport = local->port;
	rq.req.id.idiag_dport = remote->port;
	memcpy(rq.req.id.idiag_src, local->addr, local->family == AF_INET ? 4 : 16);
	memcpy(rq.req.id.idiag_dst, remote->addr, remote->family == AF_INET ? 4 : 16);
	rq.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	rq.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	if (send(nl, &rq, sizeof(rq), 0) != (ssize_t) sizeof(rq))
	{
		int			err = errno;

		snprintf(why, whycap, "could not query socket diagnostics: %s", strerror(err));
		close(nl);
		return err ? err : EIO;
	}

	clock_gettime(CLOCK_MONOTONIC, &start);

	for (;;)
	{
		union
		{
			struct nlmsghdr h;
			char		b[8192];
		}			buf;
		struct sockaddr_nl from;
		struct iovec iov = {&buf, sizeof(buf)};
		struct msghdr mh;
		struct pollfd pfd = {nl, POLLIN, 0};
		struct nlmsghdr *h;
		ssize_t		n;
		int			ms = PQCM_PEER_WAIT_MS - elapsed_ms(&start);
		int			rc;

		if (ms <= 0)
		{
			snprintf(why, whycap, "socket diagnostics did not answer within %d ms",
					 PQCM_PEER_WAIT_MS);
			break;
		}
		rc = poll(&pfd, 1, ms);
		if (rc < 0 && errno != EINTR)
		{
			result = errno;
			snprintf(why, whycap, "could not wait for socket diagnostics: %s",
					 strerror(result));
			break;
		}
		if (rc <= 0)
			continue;			/* the deadline check above ends it */

		memset(&mh, 0, sizeof(mh));
		mh.msg_name = &from;
		mh.msg_namelen = sizeof(from);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		n = recvmsg(nl, &mh, MSG_DONTWAIT);
		if (n < 0)
		{
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			result = errno ? errno : EIO;
			snprintf(why, whycap, "could not read socket diagnostics: %s",
					 strerror(result));
			break;
		}
		/* only the kernel (port 0) answers; a truncated answer is useless */
		if (mh.msg_namelen < sizeof(from) || from.nl_family != AF_NETLINK ||
			from.nl_pid != 0 || (mh.msg_flags & MSG_TRUNC))
			continue;

		for (h = &buf.h; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n))
		{
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
			{
				const struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					continue;
				if (e->error == 0)
					continue;	/* an acknowledgement */
				result = -e->error;
				snprintf(why, whycap, "socket diagnostics refused the query: %s",
						 strerror(result));
				goto done;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
				h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
			{
				const struct inet_diag_msg *m = NLMSG_DATA(h);

				if (!end_matches(local, m->idiag_family, m->id.idiag_src,
								 m->id.idiag_sport) ||
					!end_matches(remote, m->idiag_family, m->id.idiag_dst,
								 m->id.idiag_dport))
					continue;	/* not the socket we asked for */
				*out = *m;
				result = 0;
				goto done;
			}
		}
	}
done:
	close(nl);
	return result;
}
#endif							/* __linux__ */

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
	PeerEnd		local,
				remote;
	char		rname[INET6_ADDRSTRLEN + 16];

	why[0] = '\0';
	if (getsockname(fd, (struct sockaddr *) &ls, &llen) < 0 ||
		getpeername(fd, (struct sockaddr *) &rs, &rlen) < 0)
	{
		snprintf(why, whycap, "could not read the addresses of the connection: %s",
				 strerror(errno));
		return PQCM_PEER_UNAVAILABLE;
	}
	if (!end_from_sockaddr(&local, &ls) || !end_from_sockaddr(&remote, &rs) ||
		local.family != remote.family)
	{
		snprintf(why, whycap, "the connection is not TCP/IP");
		return PQCM_PEER_UNAVAILABLE;
	}
	end_name(&remote, rname, sizeof(rname));

#ifdef __linux__
	{
		struct inet_diag_msg m;
		int			err;

		/* the socket that answered: its local end is our remote one */
		err = diag_lookup(&remote, &local, &m, why, whycap);
		if (err == ENOENT)
		{
			char		self_why[200];

			/*
			 * Not found: either the other end is not a socket of this host
			 * (network namespace), or TCP diagnostics are missing.  Our own
			 * socket tells which.
			 */
			err = diag_lookup(&local, &remote, &m, self_why, sizeof(self_why));
			if (err == 0)
			{
				snprintf(why, whycap,
						 "no socket of this host answers on %s (a conmgr on another host "
						 "or in another network namespace)", rname);
				return PQCM_PEER_NOT_FOUND;
			}
			if (err == ENOENT)
				snprintf(why, whycap,
						 "socket diagnostics do not know TCP sockets here (kernel module tcp_diag missing?)");
			else
				snprintf(why, whycap, "%s", self_why);
			return PQCM_PEER_UNAVAILABLE;
		}
		if (err != 0)
			return PQCM_PEER_UNAVAILABLE;
		if (m.idiag_state != PQCM_TCP_ESTABLISHED || m.idiag_inode == 0)
		{
			snprintf(why, whycap,
					 "the socket that answered on %s is no longer held by a process "
					 "(TCP state %u)", rname, (unsigned) m.idiag_state);
			return PQCM_PEER_UNOWNED;
		}
		*uid = (uid_t) m.idiag_uid;
		return PQCM_PEER_FOUND;
	}
#else
	snprintf(why, whycap, "socket diagnostics exist on Linux only");
	return PQCM_PEER_UNAVAILABLE;
#endif
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
		PeerEnd		remote;
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
		if (getpeername(fd, (struct sockaddr *) &rs, &rlen) == 0 &&
			end_from_sockaddr(&remote, &rs))
			end_name(&remote, rname, sizeof(rname));
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
