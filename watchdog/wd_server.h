/*-------------------------------------------------------------------------
 *
 * wd_server.h
 *	  Process-local state of the watchdog worker: the peers (heartbeat
 *	  connections) and the functions that wd_server.c (sockets, event loop)
 *	  and wd_peer.c (protocol, per-peer state machine) share.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_server.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WATCHDOG_WD_SERVER_H
#define WATCHDOG_WD_SERVER_H

#include "lib/ilist.h"

#include "cm_auth.h"
#include "cm_protocol.h"
#include "cm_ratelimit.h"
#include "cm_sealed.h"
#include "wd_shmem.h"

#define WD_OUTBUF_SIZE		(4 * CM_PROTO_MAX_MSG)

/* Per-peer state machine. */
typedef enum WdPeerState
{
	WD_PEER_PENDING = 0,		/* accepted, waiting for the hello */
	WD_PEER_ACTIVE,				/* welcomed, holds a shared slot */
	WD_PEER_CLOSED				/* closed; freed at the end of the cycle */
} WdPeerState;

typedef struct WdPeer
{
	dlist_node	node;			/* in wd_peers, in accept order */
	pgsocket	sock;
	WdPeerState state;
	CmProtoAddr addr;			/* peer address and port */
	char		desc[80];		/* "address:port" for messages */
	int			slot;			/* shared slot while ACTIVE, else -1 */
	uint32		generation;
	uint32		server_timeout; /* ms, announced in the welcome */
	uint16		version;		/* protocol version spoken, once welcomed */
	uint8		attrs_sent;		/* attributes last sent (welcome, reply, push) */
	int64		deadline;		/* monotonic ms: hello or heartbeat due */
	bool		challenged;		/* sent a challenge, awaiting the proof */
	bool		authenticated;	/* proved it holds the secret */
	CmProtoHello hello;			/* kept between challenge and proof */
	uint8		nonce_s[CM_AUTH_NONCE_LEN];	/* our challenge */
	int			secret_index;	/* which of the secrets it proved */
	CmAuthTranscript transcript;	/* every handshake frame so far */
	CmAuthTranscript proved;	/* hello and challenge: what conmgr proves */
	bool		sealed;			/* after the welcome: frames carry tags */
	CmAuthKeys	keys;			/* session keys, when sealed */
	uint64		seq_in;			/* last sequence number received */
	uint64		seq_out;		/* last sequence number sent */
	uint64		frames_in;		/* frames received after the welcome */
	CmTokenBucket hb_bucket[WD_NPATHS]; /* heartbeats allowed, by path */
	bool		dgram_registered;	/* its datagram id is in wd_dgram.c's table */
	bool		send_failed;	/* a send failed while its input was being
								 * handled: decided once that input is */
	char		send_error[128];	/* ... and why */
	uint64		dgram_seq_in;	/* highest datagram sequence number accepted */
	uint64		dgram_seq_out;	/* last datagram sequence number sent */
	int64		rtt_read_at;	/* monotonic ms the round trip was last read */
	uint64		bytes_in;		/* bytes received so far */
	int			wait_pos;		/* position in the WaitEventSet, or -1 */
	uint32		wait_events;	/* events registered at wait_pos */
	size_t		inlen;
	size_t		outlen;
	uint8		inbuf[CM_PROTO_MAX_MSG];
	uint8		outbuf[WD_OUTBUF_SIZE];
} WdPeer;

/* heartbeats a peer may send at once, above its announced rate */
#define WD_HEARTBEAT_BURST		10.0

/*
 * The kernel's round-trip estimate of a heartbeat connection (the view's
 * round_trip) is read at most this often (ms): reading it is a system call,
 * and it moves slowly.
 */
#define WD_RTT_SAMPLE_MS		5000

/* refusals of a hello logged per rate-limit window, at most */
#define WD_LOG_REFUSAL_BURST	10

/* wd_server.c */
extern dlist_head wd_peers;
extern WdPeer *wd_input_peer;
extern int	wd_pending_count;
extern int	wd_active_count;
extern uint8 wd_current_attrs;
extern bool wd_server_draining;
extern bool wd_shutting_down;

extern int64 wd_now_ms(void);
extern bool wd_log_allowed(CmRateWindow *limit, int64 now, uint64 *suppressed);
extern void wd_peer_set_deadline(WdPeer *peer, int64 deadline);
extern bool wd_peer_send(WdPeer *peer, const uint8 *buf, size_t len);
extern void wd_peer_close(WdPeer *peer);
extern void wd_bind_failed(pgsocket s, bool udp, const char *family,
						   const char *addrbuf, int elevel);
extern void wd_attrs_refresh(void);

/* wd_auth.c */
extern void wd_auth_load(bool reload);
extern int	wd_auth_secrets(const CmAuthSecret **secrets, const char **problem);

/* wd_dgram.c */
struct addrinfo;
extern void wd_dgram_open(const struct addrinfo *ai, const char *family,
						  const char *addrbuf, int elevel);
extern void wd_dgram_close_all(void);
extern int	wd_dgram_count(void);
extern pgsocket wd_dgram_socket(int i);
extern void wd_dgram_read(pgsocket sock);
extern void wd_dgram_register(WdPeer *peer);
extern void wd_dgram_unregister(WdPeer *peer);
extern void wd_dgram_log_summary(int64 now);

/* wd_peer.c */
extern bool wd_peer_queue(WdPeer *peer, const uint8 *buf, size_t len);
extern void wd_peer_detach(WdPeer *peer);
extern bool wd_peer_heartbeat_allowed(WdPeer *peer, WdPath path, int64 mono);
extern bool wd_peer_take_heartbeat(WdPeer *peer, const CmProtoHeartbeat *hb,
								   WdPath path);
extern size_t wd_peer_encode_reply(WdPeer *peer, const CmProtoHeartbeat *hb,
								   uint8 *buf, size_t cap);
extern void wd_peer_process_input(WdPeer *peer);
extern void wd_peer_check_deadline(WdPeer *peer, int64 now);
extern void wd_peer_lost(WdPeer *peer, uint16 reason, const char *detail);
extern void wd_peer_release(WdPeer *peer);
extern void wd_peer_broken(WdPeer *peer, const char *detail);
extern void wd_peer_push_attrs(WdPeer *peer, uint8 attrs);
extern void wd_peer_shutdown_notice(WdPeer *peer);
extern void wd_peer_refuse(WdPeer *peer, uint16 reason, const char *message);
extern void wd_peers_log_refusal_summary(void);
extern void wd_peer_restart_notice(WdPeer *peer);
extern void wd_slots_adopt_previous(int64 now);
extern void wd_slots_check_reconnect(int64 now);
extern int64 wd_slots_reconnect_next(void);

#endif							/* WATCHDOG_WD_SERVER_H */
