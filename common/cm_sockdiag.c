/*-------------------------------------------------------------------------
 *
 * cm_sockdiag.c
 *	  Owner of a local TCP socket through the Linux sock_diag netlink
 *	  interface (the interface "ss" uses).
 *
 * Two queries of the inet_diag module: an exact lookup of one connection
 * by its two ends (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP), and a dump of
 * the TCP sockets with a given own address and port, filtered by the
 * kernel with a one-instruction inet_diag bytecode program (S_COND: source
 * address prefix of full length and source port).  Each answer carries
 * the socket's state and the UID of the user that created it.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_sockdiag.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <netinet/in.h>

#ifdef __linux__
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#endif

#include "cm_net.h"
#include "cm_sockdiag.h"

#ifdef __linux__

/*
 * Request: netlink header and inet_diag request, then for a dump the
 * bytecode attribute (an operation, a host condition, the address).  The
 * host condition ends in a flexible array, so the attribute is written
 * into the bytes that follow rather than declared as members.
 */
typedef struct SockDiagRequest
{
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
	uint32_t	bytecode[16];
} SockDiagRequest;

/* An answer we read; an aligned buffer of whole netlink messages. */
typedef union SockDiagBuffer
{
	struct nlmsghdr align;
	char		bytes[16384];
} SockDiagBuffer;

/*
 * Is errno (from socket(), sendto() or a netlink error) a sign that the
 * kernel cannot answer sock_diag queries at all?
 */
static bool
unavailable_errno(int e)
{
	return e == EAFNOSUPPORT || e == EPROTONOSUPPORT || e == EACCES ||
		e == EPERM || e == ENOSYS || e == EOPNOTSUPP;
}

/*
 * One end of a connection as the kernel looks it up: an IPv4-mapped IPv6
 * address becomes IPv4 (the kernel finds a dual-stack socket serving an
 * IPv4 connection by its IPv4 addresses).  False for anything but TCP/IP.
 */
typedef struct SockEnd
{
	int			family;			/* AF_INET or AF_INET6 */
	uint8_t		addr[16];		/* IPv4 in the first 4 bytes */
	__be16		port;			/* network byte order */
} SockEnd;

static bool
end_from_sockaddr(SockEnd *e, const struct sockaddr *sa)
{
	CmProtoAddr a;

	memset(e, 0, sizeof(*e));
	if (!cm_net_addr_from_sockaddr(sa, &a))
		return false;
	e->family = a.family == 4 ? AF_INET : AF_INET6;
	memcpy(e->addr, a.addr, sizeof(e->addr));
	e->port = htons(a.port);
	return true;
}

/*
 * Is the end the kernel reports (family, address, port of an
 * inet_diag_sockid) the end *e?  An IPv6 socket serving an IPv4
 * connection reports IPv4-mapped addresses.
 */
static bool
end_matches(const SockEnd *e, int family, const __be32 *addr, __be16 port)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *a = (const uint8_t *) addr;

	if (port != e->port)
		return false;
	if (family == AF_INET6 && e->family == AF_INET)
		return memcmp(a, mapped, 12) == 0 && memcmp(a + 12, e->addr, 4) == 0;
	if (family != e->family)
		return false;
	return memcmp(a, e->addr, e->family == AF_INET ? 4 : 16) == 0;
}

/*
 * Send one request and pass every inet_diag_msg of the answer to fn.
 * Returns CM_SOCKDIAG_FOUND when the exchange completed (fn may have been
 * called any number of times), CM_SOCKDIAG_NOT_FOUND when the kernel
 * answered ENOENT to an exact lookup, or a failure.
 */
static CmSockDiagStatus
exchange(SockDiagRequest *rq, size_t len, bool dump,
		 void (*fn) (void *arg, const struct inet_diag_msg *m), void *arg,
		 char *err, size_t errcap)
{
	struct sockaddr_nl kernel;
	struct timeval tv = {1, 0};
	SockDiagBuffer buf;
	const uint32_t seq = 1;		/* a new socket for every query */
	int			fd;
	bool		done = false;
	CmSockDiagStatus st = CM_SOCKDIAG_FOUND;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
	{
		int			e = errno;

		snprintf(err, errcap, "could not create a NETLINK_SOCK_DIAG socket: %s",
				 strerror(e));
		return unavailable_errno(e) ? CM_SOCKDIAG_UNAVAILABLE : CM_SOCKDIAG_ERROR;
	}
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	/* connected to the kernel (port 0) */
	memset(&kernel, 0, sizeof(kernel));
	kernel.nl_family = AF_NETLINK;
	rq->nlh.nlmsg_len = (uint32_t) len;
	rq->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq->nlh.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
	rq->nlh.nlmsg_seq = seq;
	if (connect(fd, (struct sockaddr *) &kernel, sizeof(kernel)) < 0 ||
		send(fd, rq, len, 0) < 0)
	{
		int			e = errno;

		snprintf(err, errcap, "could not send a sock_diag query: %s", strerror(e));
		close(fd);
		return unavailable_errno(e) ? CM_SOCKDIAG_UNAVAILABLE : CM_SOCKDIAG_ERROR;
	}

	while (!done)
	{
		struct sockaddr_nl from;
		struct iovec iov = {buf.bytes, sizeof(buf.bytes)};
		struct msghdr mh;
		ssize_t		n;
		struct nlmsghdr *h;

		memset(&mh, 0, sizeof(mh));
		mh.msg_name = &from;
		mh.msg_namelen = sizeof(from);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		n = recvmsg(fd, &mh, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			snprintf(err, errcap, "could not read the answer to a sock_diag query: %s",
					 n == 0 ? "end of file" :
					 (errno == EAGAIN || errno == EWOULDBLOCK) ? "no answer within 1 s" :
					 strerror(errno));
			st = CM_SOCKDIAG_ERROR;
			break;
		}
		/* only the kernel answers; a truncated answer is useless */
		if (mh.msg_namelen < sizeof(from) || from.nl_family != AF_NETLINK ||
			from.nl_pid != 0)
			continue;
		if (mh.msg_flags & MSG_TRUNC)
		{
			snprintf(err, errcap, "the answer to a sock_diag query was truncated");
			st = CM_SOCKDIAG_ERROR;
			break;
		}
		for (h = &buf.align; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n))
		{
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
			{
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR)
			{
				const struct nlmsgerr *e = NLMSG_DATA(h);
				int			code = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? -e->error : EINVAL;

				done = true;
				if (code == 0)
					break;		/* an acknowledgement */
				if (code == ENOENT && !dump)
					st = CM_SOCKDIAG_NOT_FOUND;
				else
				{
					snprintf(err, errcap, "the kernel refused a sock_diag query: %s",
							 strerror(code));
					/* ENOENT to a dump: no TCP handler (tcp_diag not loaded) */
					st = unavailable_errno(code) || code == ENOENT ?
						CM_SOCKDIAG_UNAVAILABLE : CM_SOCKDIAG_ERROR;
				}
				break;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
				h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				fn(arg, NLMSG_DATA(h));
			if (!dump)
				done = true;	/* an exact lookup has one answer */
		}
	}
	close(fd);
	return st;
}

typedef struct OwnerResult
{
	const SockEnd *local;
	const SockEnd *remote;
	bool		found;
	uid_t		uid;
	int			state;
	bool		held;
} OwnerResult;

static void
owner_cb(void *arg, const struct inet_diag_msg *m)
{
	OwnerResult *r = arg;

	/* an exact lookup may fall back on a listener: only the connection */
	if (!end_matches(r->local, m->idiag_family, m->id.idiag_src, m->id.idiag_sport) ||
		!end_matches(r->remote, m->idiag_family, m->id.idiag_dst, m->id.idiag_dport))
		return;
	r->found = true;
	r->uid = (uid_t) m->idiag_uid;
	r->state = m->idiag_state;
	r->held = m->idiag_inode != 0;
}

CmSockDiagStatus
cm_sockdiag_peer_owner(const struct sockaddr *local,
					   const struct sockaddr *remote,
					   uid_t *uid, int *state, bool *held,
					   char *err, size_t errcap)
{
	SockDiagRequest rq;
	OwnerResult r;
	SockEnd		l,
				rm;
	CmSockDiagStatus st;

	if (!end_from_sockaddr(&l, local) || !end_from_sockaddr(&rm, remote) ||
		l.family != rm.family)
	{
		snprintf(err, errcap, "both ends must be IPv4 or both IPv6 addresses");
		return CM_SOCKDIAG_ERROR;
	}
	memset(&rq, 0, sizeof(rq));
	memset(&r, 0, sizeof(r));
	r.local = &l;
	r.remote = &rm;
	rq.req.sdiag_family = (uint8_t) l.family;
	rq.req.sdiag_protocol = IPPROTO_TCP;
	rq.req.idiag_states = ~0U;
	rq.req.id.idiag_sport = l.port;
	rq.req.id.idiag_dport = rm.port;
	memcpy(rq.req.id.idiag_src, l.addr, l.family == AF_INET ? 4 : 16);
	memcpy(rq.req.id.idiag_dst, rm.addr, rm.family == AF_INET ? 4 : 16);
	rq.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	rq.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	st = exchange(&rq, NLMSG_LENGTH(sizeof(rq.req)), false, owner_cb, &r,
				  err, errcap);
	if (st != CM_SOCKDIAG_FOUND)
		return st;
	if (!r.found)
		return CM_SOCKDIAG_NOT_FOUND;
	*uid = r.uid;
	if (state)
		*state = r.state;
	if (held)
		*held = r.held;
	return CM_SOCKDIAG_FOUND;
}

typedef struct CountResult
{
	uint32_t	state_mask;
	uid_t		uid;
	int			owned;
	int			others;
} CountResult;

static void
count_cb(void *arg, const struct inet_diag_msg *m)
{
	CountResult *r = arg;

	if (m->idiag_state >= 32 || !(r->state_mask & CM_SOCKDIAG_STATE(m->idiag_state)))
		return;
	if ((uid_t) m->idiag_uid == r->uid)
		r->owned++;
	else
		r->others++;
}

/* Write one host condition (operation, condition, address) at p. */
static char *
put_cond(char *p, uint8_t code, uint16_t yes, uint16_t no, int family,
		 int prefix_len, int port, const uint32_t *addr, int addrlen)
{
	struct inet_diag_bc_op op;
	struct inet_diag_hostcond cond;

	memset(&op, 0, sizeof(op));
	op.code = code;
	op.yes = (uint8_t) yes;
	op.no = no;
	memset(&cond, 0, sizeof(cond));
	cond.family = (uint8_t) family;
	cond.prefix_len = (uint8_t) prefix_len;
	cond.port = port;
	memcpy(p, &op, sizeof(op));
	p += sizeof(op);
	memcpy(p, &cond, sizeof(cond));
	p += sizeof(cond);
	if (addrlen > 0)
		memcpy(p, addr, (size_t) addrlen);
	return p + addrlen;
}

CmSockDiagStatus
cm_sockdiag_count_local(const struct sockaddr *local, uint32_t state_mask,
						uid_t uid, int *owned, int *others,
						char *err, size_t errcap)
{
	SockDiagRequest rq;
	CountResult r;
	int			family = local->sa_family;
	int			addrlen;
	int			port;
	uint32_t	addr[4];
	size_t		proglen;
	int			pass;

	if (family == AF_INET)
	{
		const struct sockaddr_in *sin = (const struct sockaddr_in *) local;

		addrlen = 4;
		port = ntohs(sin->sin_port);
		memcpy(addr, &sin->sin_addr, 4);
	}
	else if (family == AF_INET6)
	{
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) local;

		addrlen = 16;
		port = ntohs(sin6->sin6_port);
		memcpy(addr, &sin6->sin6_addr, 16);
	}
	else
	{
		snprintf(err, errcap, "not an IPv4 or IPv6 address");
		return CM_SOCKDIAG_ERROR;
	}

	memset(&r, 0, sizeof(r));
	r.state_mask = state_mask;
	r.uid = uid;

	/*
	 * The program, one condition: own address (full prefix) and port match.
	 * True jumps to the end (accept), false past it (reject).
	 */
	proglen = sizeof(struct inet_diag_bc_op) + sizeof(struct inet_diag_hostcond) +
		(size_t) addrlen;

	/*
	 * An IPv4 address: the IPv4 sockets, then the IPv6 sockets (a dual-stack
	 * socket connected to an IPv4 address has it in its IPv4-mapped form,
	 * which the kernel's S_COND matches against an AF_INET condition).
	 */
	for (pass = 0; pass < (family == AF_INET ? 2 : 1); pass++)
	{
		struct rtattr attr;
		char	   *p = (char *) rq.bytecode;
		CmSockDiagStatus st;

		memset(&rq, 0, sizeof(rq));
		rq.req.sdiag_family = (uint8_t) (pass == 0 ? family : AF_INET6);
		rq.req.sdiag_protocol = IPPROTO_TCP;
		rq.req.idiag_states = state_mask;
		memset(&attr, 0, sizeof(attr));
		attr.rta_type = INET_DIAG_REQ_BYTECODE;
		attr.rta_len = (unsigned short) RTA_LENGTH(proglen);
		memcpy(p, &attr, sizeof(attr));
		p += RTA_LENGTH(0);
		(void) put_cond(p, INET_DIAG_BC_S_COND, (uint16_t) proglen,
						(uint16_t) (proglen + 4), family, addrlen * 8, port,
						addr, addrlen);
		st = exchange(&rq, NLMSG_LENGTH(sizeof(rq.req)) + RTA_LENGTH(proglen),
					  true, count_cb, &r, err, errcap);
		if (st != CM_SOCKDIAG_FOUND)
			return st;
	}
	*owned = r.owned;
	*others = r.others;
	return CM_SOCKDIAG_FOUND;
}

#else							/* !__linux__ */

CmSockDiagStatus
cm_sockdiag_peer_owner(const struct sockaddr *local,
					   const struct sockaddr *remote,
					   uid_t *uid, int *state, bool *held,
					   char *err, size_t errcap)
{
	snprintf(err, errcap, "socket diagnostics (sock_diag) exist on Linux only");
	return CM_SOCKDIAG_UNAVAILABLE;
}

CmSockDiagStatus
cm_sockdiag_count_local(const struct sockaddr *local, uint32_t state_mask,
						uid_t uid, int *owned, int *others,
						char *err, size_t errcap)
{
	snprintf(err, errcap, "socket diagnostics (sock_diag) exist on Linux only");
	return CM_SOCKDIAG_UNAVAILABLE;
}

#endif							/* __linux__ */
