/*-------------------------------------------------------------------------
 *
 * wd_dgram.c
 *	  Heartbeats as UDP datagrams (protocol 1.2, docs/protocol.md).
 *
 * Beside every TCP listen socket the watchdog binds a UDP socket to the
 * same address and port.  A conmgr welcomed with protocol 1.2 on a sealed
 * connection may send its heartbeats there; each datagram names its
 * session by the datagram id both sides derived from the handshake
 * (cm_auth.c), and carries a heartbeat sealed with the session key over
 * the datagram channel, with a sequence of its own.  A valid one is taken
 * as a heartbeat of that connection (wd_peer_take_heartbeat) and answered
 * by a datagram to where it came from, from the address it was sent to.
 *
 * Anything else is dropped without an answer: a datagram of the wrong
 * size, of no known session, with a bad tag, a replayed or reordered one,
 * or one that is not a heartbeat; and authenticated ones beyond the
 * heartbeat rate allowed (they are not a protocol violation, as over TCP:
 * conmgr sends a few extra ones while a reply is overdue).  So a datagram
 * costs one hash lookup and
 * at most one HMAC, and an unauthenticated one is never answered (no
 * reflection, no amplification).  Drops are counted by cause and logged as
 * one summary line at most every WD_DGRAM_SUMMARY_MS.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_dgram.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "watchdog.h"
#include "wd_server.h"

#define WD_DGRAM_MAX_SOCKETS	64	/* as many as TCP listen sockets */
#define WD_DGRAM_BATCH			1024	/* datagrams read per wake-up and socket */

/*
 * Receive buffer asked for each UDP socket: heartbeats of thousands of
 * conmgr processes whose phases coincide (after a restart, say) arrive as
 * bursts, and a datagram that finds the buffer full is lost.  The kernel
 * gives at most net.core.rmem_max (often 208 kB: about 300 heartbeats).
 */
#define WD_DGRAM_RCVBUF			(4 * 1024 * 1024)
#define WD_DGRAM_SUMMARY_MS		10000	/* drops summarised this often, at most */

typedef struct WdDgramEntry
{
	uint8		id[CM_AUTH_DGRAM_ID_LEN];	/* hash key */
	WdPeer	   *peer;
} WdDgramEntry;

typedef enum WdDgramDrop
{
	WD_DROP_MALFORMED = 0,		/* size, framing, or not a heartbeat */
	WD_DROP_UNKNOWN,			/* no session of that id, or not active */
	WD_DROP_TAG,				/* the tag does not verify */
	WD_DROP_REPLAY,				/* sequence number not above the last */
	WD_DROP_RATE,				/* faster than the heartbeat rate allows */
	WD_NDROPS
} WdDgramDrop;

static pgsocket wd_dgram_socks[WD_DGRAM_MAX_SOCKETS];
static int	wd_ndgram = 0;
static HTAB *wd_dgram_sessions = NULL;

static uint64 wd_dgram_dropped[WD_NDROPS];
static int64 wd_dgram_summary_at = 0;	/* start of the current window */

/*
 * Bind a UDP socket beside the TCP listen socket of ai (same address and
 * port).  A failure is logged at elevel and leaves that address to TCP:
 * conmgr then finds that its datagrams get no answer and stays on TCP.
 */
void
wd_dgram_open(const struct addrinfo *ai, const char *family,
			  const char *addrbuf, int elevel)
{
	pgsocket	s;
	int			one = 1;
	int			rc;

	if (wd_ndgram >= WD_DGRAM_MAX_SOCKETS)
		return;
	s = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s == PGINVALID_SOCKET)
	{
		ereport(elevel,
				(errcode_for_socket_access(),
				 errmsg("watchdog could not create %s UDP socket for address \"%s\": %m",
						family, addrbuf),
				 errdetail("conmgr heartbeats to this address go over TCP only.")));
		return;
	}
	/* to answer from the address a datagram was sent to */
	if (ai->ai_family == AF_INET6)
		rc = setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ? -1 :
			setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	else
		rc = setsockopt(s, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	if (rc == 0)
	{
		int			rcvbuf = WD_DGRAM_RCVBUF;

		(void) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if (rc < 0 || bind(s, ai->ai_addr, ai->ai_addrlen) < 0)
	{
		wd_bind_failed(s, true, family, addrbuf, elevel);
		return;
	}
	wd_dgram_socks[wd_ndgram++] = s;
	if (wd_dgram_summary_at == 0)
		wd_dgram_summary_at = wd_now_ms();
}

void
wd_dgram_close_all(void)
{
	for (int i = 0; i < wd_ndgram; i++)
		closesocket(wd_dgram_socks[i]);
	wd_ndgram = 0;
}

int
wd_dgram_count(void)
{
	return wd_ndgram;
}

pgsocket
wd_dgram_socket(int i)
{
	return wd_dgram_socks[i];
}

static HTAB *
wd_dgram_table(void)
{
	if (wd_dgram_sessions == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = CM_AUTH_DGRAM_ID_LEN;
		ctl.entrysize = sizeof(WdDgramEntry);
		ctl.hcxt = TopMemoryContext;
		wd_dgram_sessions = hash_create("watchdog datagram sessions",
										Max(wd_max_heartbeat_connections, 16),
										&ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return wd_dgram_sessions;
}

/*
 * A peer welcomed with protocol 1.2 on a sealed connection: its datagrams
 * are accepted from now on.  Two sessions with the same id (64 bits from
 * the session key: not expected) leave the second to TCP.
 */
void
wd_dgram_register(WdPeer *peer)
{
	WdDgramEntry *e;
	bool		found;

	e = hash_search(wd_dgram_table(), peer->keys.datagram_id, HASH_ENTER, &found);
	if (found)
	{
		ereport(LOG,
				(errmsg("watchdog: conmgr at %s has the datagram id of another session; its heartbeats go over TCP only",
						peer->desc)));
		return;
	}
	e->peer = peer;
	peer->dgram_registered = true;
	peer->dgram_seq_in = 0;
	peer->dgram_seq_out = 0;
}

/* The peer is closed: its datagrams are not accepted any more. */
void
wd_dgram_unregister(WdPeer *peer)
{
	if (!peer->dgram_registered)
		return;
	hash_search(wd_dgram_table(), peer->keys.datagram_id, HASH_REMOVE, NULL);
	peer->dgram_registered = false;
}

/*
 * Send the sealed reply dgram (len bytes) to the address a heartbeat came
 * from, from the address it was sent to (pktinfo, NULL when unknown).
 * Errors are not reported: the datagram is lost, as it may be anyway.
 */
static void
wd_dgram_answer(pgsocket sock, const struct sockaddr_storage *to, socklen_t tolen,
				const struct cmsghdr *pktinfo, const uint8 *dgram, size_t len)
{
	struct msghdr mh;
	struct iovec iov;
	union
	{
		char		buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	}			ctl;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *) dgram;
	iov.iov_len = len;
	mh.msg_name = (void *) to;
	mh.msg_namelen = tolen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (pktinfo != NULL)
	{
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(pktinfo->cmsg_len - CMSG_LEN(0));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = pktinfo->cmsg_level;
		c->cmsg_type = pktinfo->cmsg_type;
		c->cmsg_len = pktinfo->cmsg_len;
		memcpy(CMSG_DATA(c), CMSG_DATA(pktinfo), pktinfo->cmsg_len - CMSG_LEN(0));
		if (c->cmsg_level == IPPROTO_IP)
		{
			/* send from the address it came to, on any interface */
			struct in_pktinfo *pi = (struct in_pktinfo *) CMSG_DATA(c);

			pi->ipi_spec_dst = pi->ipi_addr;
			pi->ipi_ifindex = 0;
		}
	}
	(void) sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* One datagram received on sock: a heartbeat answered, or a drop counted. */
static void
wd_dgram_handle(pgsocket sock, uint8 *dgram, size_t len,
				const struct sockaddr_storage *from, socklen_t fromlen,
				const struct cmsghdr *pktinfo)
{
	const uint8 *id = cm_auth_datagram_id(dgram, len);
	WdDgramEntry *e;
	WdPeer	   *peer;
	uint64		seq;
	size_t		inner;
	CmProtoMsg	msg;
	const char *reason = NULL;
	uint8		frame[64];
	uint8		out[CM_AUTH_DGRAM_MAX];
	size_t		flen;
	size_t		n;

	if (id == NULL)
	{
		wd_dgram_dropped[WD_DROP_MALFORMED]++;
		return;
	}
	e = wd_dgram_sessions ? hash_search(wd_dgram_sessions, id, HASH_FIND, NULL) : NULL;
	if (e == NULL || e->peer->state != WD_PEER_ACTIVE)
	{
		wd_dgram_dropped[WD_DROP_UNKNOWN]++;
		return;
	}
	peer = e->peer;
	if (!cm_auth_datagram_open(peer->keys.to_watchdog, dgram, len, &seq, &inner))
	{
		wd_dgram_dropped[WD_DROP_TAG]++;
		return;
	}
	if (seq <= peer->dgram_seq_in)
	{
		wd_dgram_dropped[WD_DROP_REPLAY]++;
		return;
	}
	if (cm_proto_decode(CM_DIR_TO_WATCHDOG, dgram + CM_AUTH_DGRAM_ID_LEN, inner,
						&msg, &reason) != CM_PROTO_OK ||
		msg.type != CM_MSG_HEARTBEAT)
	{
		wd_dgram_dropped[WD_DROP_MALFORMED]++;
		return;
	}
	peer->dgram_seq_in = seq;
	/* datagrams over the rate are not answered; they break nothing */
	if (!wd_peer_heartbeat_allowed(peer, WD_PATH_DATAGRAM, wd_now_ms()))
	{
		wd_dgram_dropped[WD_DROP_RATE]++;
		return;
	}
	if (!wd_peer_take_heartbeat(peer, &msg.u.heartbeat, WD_PATH_DATAGRAM))
		return;
	flen = wd_peer_encode_reply(peer, &msg.u.heartbeat, frame, sizeof(frame));
	n = flen == 0 ? 0 :
		cm_auth_datagram_make(peer->keys.to_conmgr, peer->keys.datagram_id,
							  ++peer->dgram_seq_out, frame, flen, out, sizeof(out));
	if (n > 0)
		wd_dgram_answer(sock, from, fromlen, pktinfo, out, n);
}

/* Read what arrived on a UDP socket, a batch at most. */
void
wd_dgram_read(pgsocket sock)
{
	for (int i = 0; i < WD_DGRAM_BATCH; i++)
	{
		uint8		buf[CM_AUTH_DGRAM_MAX + 1];
		struct sockaddr_storage from;
		struct msghdr mh;
		struct iovec iov;
		struct cmsghdr *c;
		const struct cmsghdr *pktinfo = NULL;
		union
		{
			char		buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
			struct cmsghdr align;
		}			ctl;
		ssize_t		r;

		memset(&mh, 0, sizeof(mh));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		mh.msg_name = &from;
		mh.msg_namelen = sizeof(from);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		r = recvmsg(sock, &mh, MSG_DONTWAIT);
		if (r < 0)
		{
			/* nothing more; or an ICMP error of an earlier answer */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		if ((mh.msg_flags & MSG_TRUNC) != 0)
		{
			wd_dgram_dropped[WD_DROP_MALFORMED]++;
			continue;
		}
		for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
			if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) ||
				(c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO))
				pktinfo = c;
		wd_dgram_handle(sock, buf, (size_t) r, &from, mh.msg_namelen, pktinfo);
	}
}

/*
 * Log what was dropped since the last summary, at most once per
 * WD_DGRAM_SUMMARY_MS: never one line per datagram.
 */
void
wd_dgram_log_summary(int64 now)
{
	uint64		total = 0;

	if (now - wd_dgram_summary_at < WD_DGRAM_SUMMARY_MS)
		return;
	for (int i = 0; i < WD_NDROPS; i++)
		total += wd_dgram_dropped[i];
	if (total > 0)
	{
		ereport(LOG,
				(errmsg("watchdog dropped %llu heartbeat datagrams in the last %d s: %llu malformed, %llu of no session, %llu with a bad tag, %llu replayed or reordered, %llu over the heartbeat rate",
						(unsigned long long) total,
						(int) ((now - wd_dgram_summary_at) / 1000),
						(unsigned long long) wd_dgram_dropped[WD_DROP_MALFORMED],
						(unsigned long long) wd_dgram_dropped[WD_DROP_UNKNOWN],
						(unsigned long long) wd_dgram_dropped[WD_DROP_TAG],
						(unsigned long long) wd_dgram_dropped[WD_DROP_REPLAY],
						(unsigned long long) wd_dgram_dropped[WD_DROP_RATE])));
		memset(wd_dgram_dropped, 0, sizeof(wd_dgram_dropped));
	}
	wd_dgram_summary_at = now;
}
