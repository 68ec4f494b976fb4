/*-------------------------------------------------------------------------
 *
 * watchdog-peers.c
 *	  Benchmark: N simulated conmgr peers heartbeating against one watchdog.
 *
 * Each peer does what conmgr does on the heartbeat channel (cm_instance.c):
 * hello with auth method 2, proof over the transcript, checks the
 * watchdog's proof in the welcome, derives the session keys, then sends a
 * sealed heartbeat every interval and opens the sealed replies.  Nothing is
 * re-implemented: frames, proofs, keys and seals come from common/.
 *
 * Once every peer is welcomed or refused, and a warm-up has passed, the
 * program counts the replies answered during the measuring window, takes
 * each one's round trip, and reads the CPU time (utime + stime) of the
 * watchdog process from /proc/PID/stat at both ends of the window.  Then
 * every peer says goodbye (so that the watchdog frees its slot and ends no
 * sessions) and the results are printed as one table row and appended to a
 * CSV file.
 *
 * With --datagram, every heartbeat after the first goes as a UDP datagram
 * (protocol 1.2, as conmgr sends them once datagrams get through), from one
 * socket for all peers; each reply is matched to its peer by the datagram
 * id, opened and checked as conmgr does.
 *
 * With --baseline the same peers heartbeat, unsealed and without the
 * handshake, against bench/echo-responder, which writes every heartbeat
 * back as it came: the CPU per heartbeat of that bare TCP responder is the
 * floor the watchdog's figure is read against.
 *
 * One thread, epoll, non-blocking sockets; heartbeats are scheduled on a
 * binary heap of due times.  Handshakes in flight are capped (--ramp), since
 * the watchdog closes the oldest of too many connections that have not yet
 * completed their hello.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  bench/watchdog-peers.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cm_auth.h"
#include "cm_protocol.h"
#include "cm_sealed.h"
#include "cm_time.h"
#include "bench_util.h"

#define RING		16			/* heartbeats remembered per peer */
#define RBUF_CAP	(2 * CM_AUTH_SEALED_MAX)

typedef enum PeerState
{
	P_IDLE = 0,					/* not started yet */
	P_CONNECTING,
	P_HELLO,					/* hello sent, waiting for the challenge */
	P_PROOF,					/* proof sent, waiting for the welcome */
	P_ACTIVE,
	P_REFUSED,					/* 'X' received */
	P_FAILED,					/* anything else went wrong */
	P_DONE						/* goodbye sent */
} PeerState;

typedef struct Peer
{
	int			fd;
	PeerState	state;
	CmAuthTranscript transcript;
	CmAuthKeys	keys;
	uint64_t	seq_out;
	uint64_t	seq_in;
	uint32_t	next_hb;
	uint64_t	sent_ns[RING];
	uint32_t	sent_seq[RING];
	uint64_t	due_ns;			/* next heartbeat */
	uint64_t	dseq_out;		/* datagram sequence numbers */
	uint64_t	dseq_in;
	size_t		rlen;
	uint8_t		rbuf[RBUF_CAP];
} Peer;

/* options */
static const char *opt_host = "127.0.0.1";
static int	opt_port = 0;
static const char *opt_secret = NULL;
static int	opt_peers = 100;
static int	opt_interval = 1000;
static int	opt_timeout = 3000;
static double opt_warmup = 2;
static double opt_duration = 10;
static int	opt_pid = 0;
static int	opt_ramp = 64;
static double opt_connect_limit = 60;
static const char *opt_csv = NULL;
static bool opt_header = false;
static bool opt_baseline = false;	/* against bench/echo-responder */
static bool opt_datagram = false;	/* heartbeats as datagrams */

/* --datagram: one UDP socket for every peer, and peers by datagram id */
#define UDP_TOKEN	0xFFFFFFFFu
static int	udp_fd = -1;
static struct sockaddr_in udp_to;
static int *id_slots;			/* open addressing: peer index + 1, 0 = free */
static size_t id_cap;

static CmAuthSecret secret;
static Peer *peers;
static int	epfd;
static int	in_flight;			/* handshakes under way */
static int	next_to_start;
static int	n_welcomed,
			n_refused,
			n_failed;
static char first_refusal[300];
static char first_failure[300];

/* measuring window */
static bool measuring;
static uint64_t replies_in_window;
static double *rtts;
static size_t nrtt,
			rtt_cap;
static uint64_t late_replies;
static uint64_t stray_datagrams;	/* datagrams of no peer (--datagram) */	/* replies to a heartbeat not in the ring */

/* heap of active peers by due time */
static int *heap;
static int	heap_n;

static void
heap_swap(int a, int b)
{
	int			t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
}

static void
heap_push(int idx)
{
	int			i = heap_n++;

	heap[i] = idx;
	while (i > 0 && peers[heap[(i - 1) / 2]].due_ns > peers[heap[i]].due_ns)
	{
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static int
heap_pop(void)
{
	int			top = heap[0];
	int			i = 0;

	heap[0] = heap[--heap_n];
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;

		if (l < heap_n && peers[heap[l]].due_ns < peers[heap[m]].due_ns)
			m = l;
		if (r < heap_n && peers[heap[r]].due_ns < peers[heap[m]].due_ns)
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
	return top;
}

static void peer_fail(Peer *p, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* Close a peer that failed; remember the first cause for the report. */
static void
peer_fail(Peer *p, const char *fmt,...)
{
	va_list		ap;

	if (p->state == P_HELLO || p->state == P_PROOF || p->state == P_CONNECTING)
		in_flight--;
	if (p->state == P_ACTIVE)
		n_welcomed--;			/* counted as failed instead */
	if (first_failure[0] == '\0')
	{
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->state = P_FAILED;
	n_failed++;
}

/*
 * Encode, seal when the session keys exist, hash into the transcript during
 * the handshake, and write one frame.  The frames are small and the socket
 * buffer large: a short write is a failure (reported), not a queue.
 */
static bool
peer_send(Peer *p, const CmProtoMsg *msg)
{
	uint8_t		buf[CM_PROTO_MAX_MSG + CM_AUTH_SEAL_LEN];
	size_t		n;
	ssize_t		w;

	n = cm_proto_encode(CM_DIR_TO_WATCHDOG, msg, buf, CM_PROTO_MAX_MSG);
	if (n > 0 && p->state >= P_ACTIVE && !opt_baseline)
		n = cm_auth_seal(p->keys.to_watchdog, CM_AUTH_CHANNEL_STREAM,
						 ++p->seq_out, buf, n, sizeof(buf));
	else if (n > 0 && !cm_auth_transcript_add(&p->transcript, buf, n))
		n = 0;
	if (n == 0)
	{
		peer_fail(p, "could not encode a '%c' message", msg->type);
		return false;
	}
	w = send(p->fd, buf, n, MSG_NOSIGNAL);
	if (w != (ssize_t) n)
	{
		peer_fail(p, "could not send a '%c' message: %s", msg->type,
				  w < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

static void
send_hello(Peer *p)
{
	CmProtoMsg	msg;

	cm_proto_hello_init(&msg, (uint32_t) opt_interval, (uint32_t) opt_timeout,
						CM_PROTO_AUTH_HMAC_SHA256, "watchdog-peers");
	msg.u.hello.nonce_len = CM_AUTH_NONCE_LEN;
	if (!cm_auth_random(msg.u.hello.nonce, CM_AUTH_NONCE_LEN))
	{
		peer_fail(p, "could not generate a nonce");
		return;
	}
	/* a random incarnation per peer, never 0 */
	if (!cm_auth_random((uint8_t *) &msg.u.hello.incarnation,
						sizeof(msg.u.hello.incarnation)))
		msg.u.hello.incarnation = 0;
	msg.u.hello.incarnation |= 1;
	cm_auth_transcript_init(&p->transcript);
	p->state = P_HELLO;
	peer_send(p, &msg);
}

/* The datagram id of a peer: its session's, or its index for --baseline. */
static const uint8_t *
peer_dgram_id(Peer *p, uint8_t *buf)
{
	uint64_t	idx = (uint64_t) (p - peers);

	if (!opt_baseline)
		return p->keys.datagram_id;
	memset(buf, 0, CM_AUTH_DGRAM_ID_LEN);
	memcpy(buf, &idx, sizeof(idx));
	return buf;
}

static size_t
id_hash(const uint8_t *id)
{
	uint64_t	h;

	memcpy(&h, id, sizeof(h));
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t) (h & (id_cap - 1));
}

/* Remember the peer of a datagram id (--datagram). */
static void
id_insert(int idx)
{
	uint8_t		buf[CM_AUTH_DGRAM_ID_LEN];
	const uint8_t *id = peer_dgram_id(&peers[idx], buf);
	size_t		h = id_hash(id);

	while (id_slots[h] != 0)
		h = (h + 1) & (id_cap - 1);
	id_slots[h] = idx + 1;
}

/* The peer of a datagram id, or -1. */
static int
id_lookup(const uint8_t *id)
{
	size_t		h = id_hash(id);

	while (id_slots[h] != 0)
	{
		uint8_t		buf[CM_AUTH_DGRAM_ID_LEN];
		int			idx = id_slots[h] - 1;

		if (memcmp(peer_dgram_id(&peers[idx], buf), id, CM_AUTH_DGRAM_ID_LEN) == 0)
			return idx;
		h = (h + 1) & (id_cap - 1);
	}
	return -1;
}

/* Send a heartbeat as a datagram: sealed, or as it is for --baseline. */
static void
dgram_send(Peer *p, const CmProtoMsg *msg)
{
	uint8_t		frame[64];
	uint8_t		out[CM_AUTH_DGRAM_MAX];
	uint8_t		idbuf[CM_AUTH_DGRAM_ID_LEN];
	size_t		n = cm_proto_encode(CM_DIR_TO_WATCHDOG, msg, frame, sizeof(frame));
	size_t		len = 0;

	if (n > 0 && opt_baseline)
	{
		memcpy(out, peer_dgram_id(p, idbuf), CM_AUTH_DGRAM_ID_LEN);
		memcpy(out + CM_AUTH_DGRAM_ID_LEN, frame, n);
		len = CM_AUTH_DGRAM_ID_LEN + n;
	}
	else if (n > 0)
		len = cm_auth_datagram_make(p->keys.to_watchdog, p->keys.datagram_id,
									++p->dseq_out, frame, n, out, sizeof(out));
	if (len == 0)
	{
		peer_fail(p, "could not make a heartbeat datagram");
		return;
	}
	/* a datagram lost on the way is a reply missing: counted, not fatal */
	(void) sendto(udp_fd, out, len, MSG_DONTWAIT, (struct sockaddr *) &udp_to,
				  sizeof(udp_to));
}

static void
send_heartbeat(Peer *p, uint64_t now)
{
	CmProtoMsg	msg;
	uint32_t	seq = p->next_hb++;

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_HEARTBEAT;
	msg.u.heartbeat.seq = seq;
	msg.u.heartbeat.echo = now;
	p->sent_ns[seq % RING] = now;
	p->sent_seq[seq % RING] = seq;
	/* as conmgr: the first one over the connection, then datagrams */
	if (opt_datagram && seq > 1)
		dgram_send(p, &msg);
	else
		peer_send(p, &msg);
}

/* Start the next idle peer's TCP connection. */
static void
start_peer(int idx)
{
	Peer	   *p = &peers[idx];
	char		err[200];

	p->state = P_CONNECTING;
	in_flight++;
	p->fd = bench_connect_start(epfd, (uint32_t) idx, opt_host, opt_port,
								err, sizeof(err));
	if (p->fd < 0)
		peer_fail(p, "%s", err);
}

/* Welcomed (or connected, with --baseline): heartbeats start. */
static void
peer_activate(int idx, uint64_t now)
{
	Peer	   *p = &peers[idx];

	p->state = P_ACTIVE;
	p->seq_in = p->seq_out = 0;
	p->dseq_in = p->dseq_out = 0;
	in_flight--;
	n_welcomed++;
	if (opt_datagram)
		id_insert(idx);
	/*
	 * As conmgr: the first heartbeat at once.  The next ones at a random
	 * phase, as independent client hosts have: peers welcomed together
	 * would otherwise heartbeat in bursts.
	 */
	p->next_hb = 1;
	send_heartbeat(p, now);
	if (p->state == P_ACTIVE)
	{
		p->due_ns = now + 1 + (uint64_t) (drand48() * opt_interval * 1e6);
		heap_push(idx);
	}
}

static void
handle_msg(int idx, const CmProtoMsg *msg, const uint8_t *frame, size_t flen)
{
	Peer	   *p = &peers[idx];
	CmProtoMsg	out;

	switch (msg->type)
	{
		case CM_MSG_CHALLENGE:
			if (p->state != P_HELLO || msg->u.nonce.len != CM_AUTH_NONCE_LEN)
			{
				peer_fail(p, "unexpected challenge");
				return;
			}
			memset(&out, 0, sizeof(out));
			out.type = CM_MSG_PROOF;
			out.u.nonce.len = CM_AUTH_PROOF_LEN;
			if (!cm_auth_transcript_add(&p->transcript, frame, flen) ||
				!cm_auth_conmgr_proof(&secret, &p->transcript, out.u.nonce.data))
			{
				peer_fail(p, "could not compute the proof");
				return;
			}
			p->state = P_PROOF;
			peer_send(p, &out);
			return;
		case CM_MSG_WELCOME:
			{
				uint8_t		expected[CM_AUTH_PROOF_LEN];
				CmAuthTranscript t = p->transcript;
				const CmProtoWelcome *w = &msg->u.welcome;
				uint64_t	now = cm_mono_ns();

				if (p->state != P_PROOF)
				{
					peer_fail(p, "welcome without authentication");
					return;
				}
				if (w->proof_len != CM_AUTH_PROOF_LEN ||
					!cm_auth_transcript_add(&t, frame, flen - (1 + CM_AUTH_PROOF_LEN)) ||
					!cm_auth_watchdog_proof(&secret, &t, expected) ||
					!cm_auth_proof_equal(w->proof, w->proof_len, expected) ||
					!cm_auth_transcript_add(&p->transcript, frame, flen) ||
					!cm_auth_session_keys(&secret, &p->transcript, &p->keys))
				{
					peer_fail(p, "the watchdog's proof is wrong");
					return;
				}
				peer_activate(idx, now);
				return;
			}
		case CM_MSG_HEARTBEAT:
			if (!opt_baseline)
			{
				peer_fail(p, "unexpected heartbeat from the watchdog");
				return;
			}
			/* the echo of our own heartbeat: fall through */
			/* FALLTHROUGH */
		case CM_MSG_HEARTBEAT_REPLY:
			{
				uint32_t	seq = msg->u.heartbeat.seq;
				uint64_t	now = cm_mono_ns();

				if (p->state != P_ACTIVE)
				{
					peer_fail(p, "reply before the welcome");
					return;
				}
				if (!measuring)
					return;
				replies_in_window++;
				if (p->sent_seq[seq % RING] != seq)
				{
					late_replies++;
					return;
				}
				if (nrtt == rtt_cap)
				{
					rtt_cap = rtt_cap ? rtt_cap * 2 : 65536;
					rtts = realloc(rtts, rtt_cap * sizeof(double));
					if (rtts == NULL)
						bench_fatal("out of memory");
				}
				rtts[nrtt++] = (double) (now - p->sent_ns[seq % RING]) / 1e6;
				return;
			}
		case CM_MSG_ATTRIBUTES:
			return;
		case CM_MSG_REFUSE:
			if (first_refusal[0] == '\0')
				snprintf(first_refusal, sizeof(first_refusal), "%s: %s",
						 cm_proto_reason_name(msg->u.notice.reason),
						 msg->u.notice.message.str);
			if (p->state == P_HELLO || p->state == P_PROOF)
				in_flight--;
			else if (p->state == P_ACTIVE)
				n_welcomed--;
			close(p->fd);
			p->fd = -1;
			p->state = P_REFUSED;
			n_refused++;
			return;
		default:
			peer_fail(p, "unexpected '%c' (%s) from the watchdog", msg->type,
					  msg->type == CM_MSG_SHUTDOWN || msg->type == CM_MSG_GOODBYE ?
					  msg->u.notice.message.str : "");
			return;
	}
}

/* Read what arrived and handle every whole frame. */
static void
peer_read(int idx)
{
	Peer	   *p = &peers[idx];

	/* the echo responder sends our own heartbeats back */
	CmProtoDir	dir = opt_baseline ? CM_DIR_TO_WATCHDOG : CM_DIR_TO_CONMGR_HB;

	for (;;)
	{
		ssize_t		r = recv(p->fd, p->rbuf + p->rlen, RBUF_CAP - p->rlen, 0);

		if (r == 0)
		{
			peer_fail(p, "the watchdog closed the connection");
			return;
		}
		if (r < 0)
		{
			if (errno == EAGAIN || errno == EINTR)
				break;
			peer_fail(p, "recv: %s", strerror(errno));
			return;
		}
		p->rlen += (size_t) r;
		if (p->rlen < RBUF_CAP)
			break;
	}
	while (p->rlen > 0 && p->fd >= 0)
	{
		size_t		flen = 0,
					inner;
		uint64_t	seq = 0;
		const char *reason = "";
		CmProtoMsg	msg;
		CmSealedStatus st;
		bool		sealed = p->state == P_ACTIVE && !opt_baseline;

		st = cm_sealed_next(dir, sealed ? p->keys.to_conmgr : NULL,
							p->seq_in + 1, p->rbuf, p->rlen, &flen, &seq,
							&msg, &reason);
		if (st == CM_SEALED_INCOMPLETE)
			break;
		if (st == CM_SEALED_BAD_TAG || st == CM_SEALED_BAD_SEQUENCE)
		{
			peer_fail(p, "integrity check failed");
			return;
		}
		if (st != CM_SEALED_OK)
		{
			peer_fail(p, "invalid message: %s", reason);
			return;
		}
		if (sealed)
		{
			p->seq_in = seq;
			/* the opened frame has its own length field restored */
			inner = 1 + (size_t) cm_get_u32(p->rbuf + 1);
		}
		else
			inner = flen;
		handle_msg(idx, &msg, p->rbuf, inner);
		if (p->fd < 0)
			return;
		memmove(p->rbuf, p->rbuf + flen, p->rlen - flen);
		p->rlen -= flen;
	}
}

/* Read the datagrams that arrived on the UDP socket (--datagram). */
static void
udp_read(void)
{
	CmProtoDir	dir = opt_baseline ? CM_DIR_TO_WATCHDOG : CM_DIR_TO_CONMGR_HB;

	for (int i = 0; i < 256; i++)
	{
		uint8_t		buf[CM_AUTH_DGRAM_MAX + 1];
		ssize_t		r = recv(udp_fd, buf, sizeof(buf), MSG_DONTWAIT);
		const char *reason = "";
		CmProtoMsg	msg;
		size_t		inner;
		int			idx;
		Peer	   *p;

		if (r < 0)
			return;
		if (r < CM_AUTH_DGRAM_ID_LEN + 5 || r > CM_AUTH_DGRAM_MAX ||
			(idx = id_lookup(buf)) < 0)
		{
			stray_datagrams++;	/* not a peer's: cannot be timed */
			continue;
		}
		p = &peers[idx];
		inner = (size_t) r - CM_AUTH_DGRAM_ID_LEN;
		if (!opt_baseline)
		{
			uint64_t	seq;

			if (!cm_auth_datagram_open(p->keys.to_conmgr, buf, (size_t) r, &seq, &inner) ||
				seq <= p->dseq_in)
			{
				peer_fail(p, "a reply datagram failed its check");
				continue;
			}
			p->dseq_in = seq;
		}
		if (cm_proto_decode(dir, buf + CM_AUTH_DGRAM_ID_LEN, inner, &msg, &reason) != CM_PROTO_OK)
		{
			peer_fail(p, "invalid reply datagram: %s", reason);
			continue;
		}
		handle_msg(idx, &msg, buf + CM_AUTH_DGRAM_ID_LEN, inner);
	}
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: watchdog-peers --port PORT --secret FILE --pid WATCHDOG_PID [options]\n"
			"       watchdog-peers --baseline --port PORT --pid ECHO_RESPONDER_PID [options]\n"
			"  --host ADDR       watchdog address (127.0.0.1)\n"
			"  --peers N         simulated conmgr peers (100)\n"
			"  --interval MS     heartbeat interval announced and used (1000)\n"
			"  --timeout MS      heartbeat timeout announced (3000)\n"
			"  --warmup S        seconds after the last welcome before measuring (2)\n"
			"  --duration S      measuring window, seconds (10)\n"
			"  --ramp K          handshakes in flight at once (64)\n"
			"  --csv FILE        append the result row to FILE\n"
			"  --header          print the table header first\n"
			"  --baseline        heartbeat bench/echo-responder: no handshake, no seals\n"
			"  --datagram        heartbeats after the first as UDP datagrams (protocol 1.2)\n");
	exit(2);
}

#define TABLE_HEADER_FMT "%-12s %7s %8s %7s %6s %6s %10s %7s %7s %9s %8s %8s %8s\n"
#define CSV_HEADER "responder,peers,interval_ms,welcomed,refused,failed,heartbeats,heartbeats_per_s,watchdog_cpu_pct,cpu_us_per_heartbeat,cpu_us_per_heartbeat_schedstat,rtt_p50_ms,rtt_p99_ms,rtt_max_ms,window_s"

int
main(int argc, char **argv)
{
	static const BenchOpt opts[] = {
		{"host", BENCH_OPT_STRING, &opt_host},
		{"port", BENCH_OPT_INT, &opt_port},
		{"secret", BENCH_OPT_STRING, &opt_secret},
		{"peers", BENCH_OPT_INT, &opt_peers},
		{"interval", BENCH_OPT_INT, &opt_interval},
		{"timeout", BENCH_OPT_INT, &opt_timeout},
		{"warmup", BENCH_OPT_DOUBLE, &opt_warmup},
		{"duration", BENCH_OPT_DOUBLE, &opt_duration},
		{"pid", BENCH_OPT_INT, &opt_pid},
		{"ramp", BENCH_OPT_INT, &opt_ramp},
		{"csv", BENCH_OPT_STRING, &opt_csv},
		{"header", BENCH_OPT_FLAG, &opt_header},
		{"baseline", BENCH_OPT_FLAG, &opt_baseline},
		{"datagram", BENCH_OPT_FLAG, &opt_datagram},
		{NULL}
	};
	char		err[300];
	struct epoll_event *events;
	uint64_t	t0,
				ramp_done = 0,
				win_start = 0,
				win_end = 0;
	long long	ticks0 = 0,
				ticks1 = 0,
				ns0 = 0,
				ns1 = 0;
	double		hz = (double) sysconf(_SC_CLK_TCK);
	long		nofile;

	bench_getopt(argc, argv, opts, usage);
	if (opt_port <= 0 || (opt_secret == NULL && !opt_baseline) || opt_pid <= 0 || opt_peers <= 0 ||
		opt_interval <= 0 || opt_timeout <= opt_interval || opt_duration <= 0 ||
		opt_ramp <= 0 || opt_warmup < 0)
		usage();
	if (!opt_baseline && !cm_auth_read_secret(opt_secret, &secret, err, sizeof(err)))
		bench_fatal("watchdog-peers: %s", err);
	if (bench_proc_cpu_ticks(opt_pid) < 0)
		bench_fatal("watchdog-peers: cannot read /proc/%d/stat", opt_pid);
	nofile = bench_raise_nofile(opt_peers + 64);
	if (nofile < opt_peers + 16)
		bench_fatal("watchdog-peers: the open-files limit (%ld) is too low for %d peers",
					nofile, opt_peers);
	signal(SIGPIPE, SIG_IGN);

	peers = calloc((size_t) opt_peers, sizeof(Peer));
	heap = calloc((size_t) opt_peers, sizeof(int));
	events = calloc(1024, sizeof(struct epoll_event));
	if (peers == NULL || heap == NULL || events == NULL)
		bench_fatal("out of memory");
	for (int i = 0; i < opt_peers; i++)
		peers[i].fd = -1;
	epfd = epoll_create1(0);
	if (epfd < 0)
		bench_fatal("epoll_create1: %s", strerror(errno));
	if (opt_datagram)
	{
		struct epoll_event ev;
		int			bufsize = 4 << 20;

		for (id_cap = 16; id_cap < 2 * (size_t) opt_peers; id_cap *= 2)
			;
		id_slots = calloc(id_cap, sizeof(int));
		udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		memset(&udp_to, 0, sizeof(udp_to));
		udp_to.sin_family = AF_INET;
		udp_to.sin_port = htons((uint16_t) opt_port);
		if (id_slots == NULL || udp_fd < 0 ||
			inet_pton(AF_INET, opt_host, &udp_to.sin_addr) != 1)
			bench_fatal("watchdog-peers: datagram socket: %s", strerror(errno));
		(void) setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
		ev.events = EPOLLIN;
		ev.data.u32 = UDP_TOKEN;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, udp_fd, &ev) != 0)
			bench_fatal("epoll_ctl: %s", strerror(errno));
	}

	t0 = cm_mono_ns();
	for (;;)
	{
		uint64_t	now = cm_mono_ns();
		int			timeout_ms,
					n;

		/* start handshakes, a few at a time */
		while (next_to_start < opt_peers && in_flight < opt_ramp)
			start_peer(next_to_start++);

		/* phases: ramp, warm-up, window, end */
		if (ramp_done == 0 && next_to_start == opt_peers && in_flight == 0)
			ramp_done = now;
		if (ramp_done == 0 && now - t0 > (uint64_t) (opt_connect_limit * 1e9))
			bench_fatal("watchdog-peers: %d of %d peers still connecting after %.0f s",
						in_flight, opt_peers, opt_connect_limit);
		if (ramp_done && !measuring && win_start == 0 &&
			now >= ramp_done + (uint64_t) (opt_warmup * 1e9))
		{
			measuring = true;
			win_start = now;
			ticks0 = bench_proc_cpu_ticks(opt_pid);
			ns0 = bench_proc_cpu_ns(opt_pid);
		}
		if (measuring && now >= win_start + (uint64_t) (opt_duration * 1e9))
		{
			ticks1 = bench_proc_cpu_ticks(opt_pid);
			ns1 = bench_proc_cpu_ns(opt_pid);
			win_end = now;
			measuring = false;
			break;
		}

		/* heartbeats due */
		while (heap_n > 0 && peers[heap[0]].due_ns <= now)
		{
			int			idx = heap_pop();
			Peer	   *p = &peers[idx];

			if (p->state != P_ACTIVE)
				continue;
			send_heartbeat(p, now);
			if (p->state == P_ACTIVE)
			{
				p->due_ns += (uint64_t) opt_interval * 1000000ULL;
				heap_push(idx);
			}
		}

		timeout_ms = 100;
		if (heap_n > 0)
		{
			uint64_t	due = peers[heap[0]].due_ns;

			timeout_ms = due <= now ? 0 : (int) ((due - now) / 1000000ULL) + 1;
			if (timeout_ms > 100)
				timeout_ms = 100;
		}
		n = epoll_wait(epfd, events, 1024, timeout_ms);
		for (int i = 0; i < n; i++)
		{
			int			idx = (int) events[i].data.u32;
			Peer	   *p;

			if (events[i].data.u32 == UDP_TOKEN)
			{
				udp_read();
				continue;
			}
			p = &peers[idx];
			if (p->fd < 0)
				continue;
			if (p->state == P_CONNECTING)
			{
				int			soerr = 0;
				socklen_t	sl = sizeof(soerr);
				struct epoll_event ev;

				getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				if (soerr != 0)
				{
					peer_fail(p, "connect: %s", strerror(soerr));
					continue;
				}
				ev.events = EPOLLIN;
				ev.data.u32 = (uint32_t) idx;
				epoll_ctl(epfd, EPOLL_CTL_MOD, p->fd, &ev);
				if (opt_baseline)
					peer_activate(idx, cm_mono_ns());
				else
					send_hello(p);
				continue;
			}
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				peer_read(idx);
		}
	}

	/* leave cleanly: the watchdog frees the slots and ends no sessions */
	for (int i = 0; i < opt_peers; i++)
	{
		Peer	   *p = &peers[i];

		if (p->state == P_ACTIVE && !opt_baseline)
		{
			CmProtoMsg	msg;

			memset(&msg, 0, sizeof(msg));
			msg.type = CM_MSG_GOODBYE;
			msg.u.notice.reason = CM_REASON_SHUTDOWN;
			cm_proto_set_string(&msg.u.notice.message, "benchmark done");
			if (peer_send(p, &msg))
				p->state = P_DONE;
		}
		if (p->fd >= 0)
			close(p->fd);
	}

	{
		double		secs = (double) (win_end - win_start) / 1e9;
		double		cpu_s = ticks0 >= 0 && ticks1 >= 0 ? (double) (ticks1 - ticks0) / hz : -1;
		double		p50 = bench_percentile(rtts, nrtt, 50);
		double		p99 = bench_percentile(rtts, nrtt, 99);
		double		pmax = nrtt ? rtts[nrtt - 1] : 0;
		double		per_hb = replies_in_window ? cpu_s * 1e6 / (double) replies_in_window : 0;
		double		cpu_ns_s = ns0 >= 0 && ns1 >= 0 ? (double) (ns1 - ns0) / 1e9 : -1;
		double		per_hb_ns = replies_in_window ? cpu_ns_s * 1e6 / (double) replies_in_window : 0;
		const char *responder = opt_baseline ?
		(opt_datagram ? "echo-udp" : "echo") :
		(opt_datagram ? "watchdog-udp" : "watchdog");

		if (opt_header)
			printf(TABLE_HEADER_FMT, "responder", "peers", "welcomed", "refused", "failed",
				   "hb/s", "heartbeats", "wd_cpu%", "us/hb", "us/hb(ns)", "rtt_p50", "rtt_p99", "rtt_max");
		printf("%-12s %7d %8d %7d %6d %6.0f %10llu %7.2f %7.1f %9.2f %8.3f %8.3f %8.3f\n",
			   responder, opt_peers, n_welcomed, n_refused, n_failed,
			   (double) replies_in_window / secs,
			   (unsigned long long) replies_in_window,
			   100.0 * cpu_s / secs, per_hb, per_hb_ns, p50, p99, pmax);
		if (first_refusal[0])
			printf("        first refusal: %s\n", first_refusal);
		if (first_failure[0])
			printf("        first failure: %s\n", first_failure);
		if (stray_datagrams)
			printf("        %llu datagrams matched no peer\n",
				   (unsigned long long) stray_datagrams);
		if (late_replies)
			printf("        %llu replies came after 16 further heartbeats (no round trip taken)\n",
				   (unsigned long long) late_replies);
		if (opt_csv)
		{
			FILE	   *f = bench_csv_open(opt_csv, CSV_HEADER);

			if (f == NULL)
				return 1;
			fprintf(f, "%s,%d,%d,%d,%d,%d,%llu,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f\n",
					responder, opt_peers, opt_interval, n_welcomed, n_refused, n_failed,
					(unsigned long long) replies_in_window,
					(double) replies_in_window / secs, 100.0 * cpu_s / secs,
					per_hb, per_hb_ns, p50, p99, pmax, secs);
			fclose(f);
		}
	}
	return n_welcomed > 0 && replies_in_window > 0 ? 0 : 1;
}
