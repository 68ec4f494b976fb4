/*-------------------------------------------------------------------------
 *
 * wd_peer.c
 *	  The per-peer state machine of the watchdog: hello and welcome,
 *	  heartbeats, session registrations, goodbye, timeouts, loss.
 *
 * States: PENDING (accepted; must send its hello within
 * watchdog.hello_timeout) -> ACTIVE (welcomed, holds a shared slot; must
 * send a heartbeat at least every server_timeout ms) -> CLOSED.
 *
 * Server timeout (the lease rule).  conmgr sends a heartbeat every
 * heartbeat_interval ms and gives up when one is not answered within
 * heartbeat_timeout ms.  If the last heartbeat we received arrived at time
 * r, conmgr sent the next one no later than r + heartbeat_interval and has
 * given up no later than r + heartbeat_interval + heartbeat_timeout.  The
 * watchdog declares the peer lost at
 *
 *		r + heartbeat_interval + heartbeat_timeout + watchdog.timeout_margin
 *
 * measured on the monotonic clock, so it never acts before conmgr has
 * told its applications; the margin absorbs scheduling delays.  The value
 * is announced to conmgr in the welcome (server_timeout_ms).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_peer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"

#include "watchdog.h"
#include "wd_server.h"
#include "wd_shmem.h"

/* "max_heartbeat_connections reached" is logged once per episode */
static bool wd_too_many_logged = false;

/* Earliest reconnect deadline of a RECONNECTING slot (monotonic ms). */
static int64 wd_reconnect_next = PG_INT64_MAX;
static uint64 wd_too_many_suppressed = 0;

static void wd_peer_protocol_violation(WdPeer *peer, const char *reason);
static void wd_peer_send_notice(WdPeer *peer, uint8 type, uint16 reason,
								const char *message);
static void wd_peer_hello(WdPeer *peer, const CmProtoHello *hello);
static void wd_peer_proof(WdPeer *peer, const CmProtoNonce *proof);
static void wd_peer_refuse_hello(WdPeer *peer, int sqlstate, uint16 reason,
								 const char *message);
static void wd_peer_accept(WdPeer *peer);
static bool wd_slots_release_reconnected(const CmProtoAddr *addr, const char *name,
										 uint64 incarnation);
static void wd_peer_heartbeat(WdPeer *peer, const CmProtoHeartbeat *hb);
static void wd_peer_register(WdPeer *peer, const CmProtoSession *session);
static void wd_peer_unregister(WdPeer *peer, const CmProtoSession *session);
static void wd_peer_goodbye(WdPeer *peer, const CmProtoNotice *notice);
static void wd_peer_release_slot(WdPeer *peer);
static void wd_peer_integrity_failure(WdPeer *peer, const char *what);
static void wd_peer_process_frames(WdPeer *peer);

/* The host part of an address, for messages and the view. */
void
wd_addr_host_string(const CmProtoAddr *addr, char *buf, size_t cap)
{
	if (inet_ntop(addr->family == 4 ? AF_INET : AF_INET6, addr->addr,
				  buf, cap) == NULL)
		snprintf(buf, cap, "?");
}

/* Normalise an address received in a message (IPv4-mapped -> IPv4). */
static void
wd_addr_normalise(CmProtoAddr *addr)
{
	static const uint8 mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0xff};

	if (addr->family == 6 && memcmp(addr->addr, mapped_prefix, 12) == 0)
	{
		memmove(addr->addr, addr->addr + 12, 4);
		memset(addr->addr + 4, 0, 12);
		addr->family = 4;
	}
}

/* The kernel's smoothed round-trip time of a TCP socket, in us. */
static uint32
wd_socket_rtt(pgsocket sock)
{
#ifdef TCP_INFO
	struct tcp_info ti;
	socklen_t	len = sizeof(ti);

	if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
		return ti.tcpi_rtt;
#endif
	return 0;
}

/* Copy peer-supplied text (name, message), replacing unprintable bytes. */
static void
wd_copy_name(char *dst, size_t cap, const char *src)
{
	size_t		i;

	for (i = 0; i + 1 < cap && src[i] != '\0'; i++)
	{
		unsigned char c = (unsigned char) src[i];

		dst[i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	dst[i] = '\0';
}

/*
 * Process every whole frame in the peer's input buffer.  A malformed frame
 * closes the peer.
 */
void
wd_peer_process_input(WdPeer *peer)
{
	/* registrations of one batch share one backend-status snapshot */
	pgstat_clear_backend_activity_snapshot();
	wd_input_peer = peer;
	wd_peer_process_frames(peer);
	wd_input_peer = NULL;
	pgstat_clear_backend_activity_snapshot();
}

static void
wd_peer_process_frames(WdPeer *peer)
{
	while (peer->state != WD_PEER_CLOSED && peer->inlen > 0)
	{
		size_t		frame_len = 0;
		uint64		seq = 0;
		const char *reason = NULL;
		CmProtoMsg	msg;
		CmSealedStatus st;

		/*
		 * After the welcome, frames carry a sequence number and a tag; before
		 * it (no key) they are taken as they are.
		 */
		st = cm_sealed_next(CM_DIR_TO_WATCHDOG,
							peer->sealed ? peer->keys.to_watchdog : NULL,
							peer->seq_in + 1, peer->inbuf, peer->inlen,
							&frame_len, &seq, &msg, &reason);
		switch (st)
		{
			case CM_SEALED_OK:
				break;
			case CM_SEALED_INCOMPLETE:
				if (peer->inlen >= sizeof(peer->inbuf))
					wd_peer_protocol_violation(peer, "frame does not fit the input buffer");
				return;
			case CM_SEALED_INVALID:
				wd_peer_protocol_violation(peer, reason ? reason : "invalid message");
				return;
			case CM_SEALED_BAD_TAG:
				wd_peer_integrity_failure(peer, "a frame whose authentication tag is wrong");
				return;
			case CM_SEALED_BAD_SEQUENCE:
				{
					char		what[128];

					snprintf(what, sizeof(what),
							 "a frame with sequence number %llu where %llu was due",
							 (unsigned long long) seq,
							 (unsigned long long) (peer->seq_in + 1));
					wd_peer_integrity_failure(peer, what);
					return;
				}
		}
		if (peer->sealed)
			peer->seq_in = seq;
		else if (peer->state == WD_PEER_PENDING &&
				 !cm_auth_transcript_add(&peer->transcript, peer->inbuf, frame_len))
		{
			wd_peer_refuse(peer, CM_REASON_AUTH, "the watchdog could not hash the handshake");
			return;
		}

		if (peer->state == WD_PEER_ACTIVE)
			peer->frames_in++;
		switch (msg.type)
		{
			case CM_MSG_HELLO:
				if (peer->state != WD_PEER_PENDING || peer->challenged)
					wd_peer_protocol_violation(peer, "second hello on the same connection");
				else
					wd_peer_hello(peer, &msg.u.hello);
				break;
			case CM_MSG_HEARTBEAT:
				if (peer->state != WD_PEER_ACTIVE)
					wd_peer_protocol_violation(peer, "heartbeat before the hello");
				else
					wd_peer_heartbeat(peer, &msg.u.heartbeat);
				break;
			case CM_MSG_REGISTER:
				if (peer->state != WD_PEER_ACTIVE)
					wd_peer_protocol_violation(peer, "session registration before the hello");
				else
					wd_peer_register(peer, &msg.u.session);
				break;
			case CM_MSG_UNREGISTER:
				if (peer->state != WD_PEER_ACTIVE)
					wd_peer_protocol_violation(peer, "session unregistration before the hello");
				else
					wd_peer_unregister(peer, &msg.u.session);
				break;
			case CM_MSG_GOODBYE:
				wd_peer_goodbye(peer, &msg.u.notice);
				break;
			case CM_MSG_PROOF:
				if (peer->state != WD_PEER_PENDING || !peer->challenged)
					wd_peer_protocol_violation(peer, "authentication proof without a challenge");
				else
					wd_peer_proof(peer, &msg.u.nonce);
				break;
			default:
				wd_peer_protocol_violation(peer, "unexpected message type");
				break;
		}
		if (peer->state == WD_PEER_CLOSED)
			return;

		memmove(peer->inbuf, peer->inbuf + frame_len, peer->inlen - frame_len);
		peer->inlen -= frame_len;
	}
}

/*
 * Bad input: log it with the peer's address and close the connection.  A
 * peer that had been welcomed is then lost (its sessions are ended), since
 * its heartbeat no longer works and conmgr has declared the instance failed
 * when the connection closed.
 */
static void
wd_peer_protocol_violation(WdPeer *peer, const char *reason)
{
	static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
	uint64		suppressed;

	if (wd_log_allowed(&limit, wd_now_ms(), &suppressed))
		ereport(LOG,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid heartbeat message from %s", peer->desc),
				 errdetail("%s.", reason),
				 suppressed > 0 ?
				 errdetail_log("%s.  %llu earlier violations were not logged.", reason,
							   (unsigned long long) suppressed) : 0));

	if (peer->state == WD_PEER_ACTIVE)
	{
		wd_peer_send_notice(peer, CM_MSG_REFUSE, CM_REASON_PROTOCOL, reason);
		if (peer->state == WD_PEER_ACTIVE)
		{
			char		detail[300];

			snprintf(detail, sizeof(detail), "protocol violation: %s", reason);
			wd_peer_lost(peer, CM_REASON_PROTOCOL, detail);
		}
	}
	else
		wd_peer_refuse(peer, CM_REASON_PROTOCOL, reason);
}

/*
 * Append a frame to a peer's output buffer, sealed (sequence number and
 * tag) once the session is.  Returns false when it does not fit; sending
 * is wd_peer_send's.
 */
bool
wd_peer_queue(WdPeer *peer, const uint8 *buf, size_t len)
{
	if (len == 0 || peer->outlen + len + CM_AUTH_SEAL_LEN > sizeof(peer->outbuf))
		return false;
	memcpy(peer->outbuf + peer->outlen, buf, len);
	if (peer->sealed)
	{
		/* after the welcome every frame carries its sequence number and tag */
		len = cm_auth_seal(peer->keys.to_conmgr, CM_AUTH_CHANNEL_STREAM,
						   ++peer->seq_out, peer->outbuf + peer->outlen, len,
						   sizeof(peer->outbuf) - peer->outlen);
		if (len == 0)
			return false;
	}
	peer->outlen += len;
	return true;
}

/*
 * Mark a peer closed: out of the pending or active count and of the
 * datagram table.  Its socket and its place in the wait set are
 * wd_peer_close's.
 */
void
wd_peer_detach(WdPeer *peer)
{
	if (peer->state == WD_PEER_PENDING)
		wd_pending_count--;
	else if (peer->state == WD_PEER_ACTIVE)
		wd_active_count--;
	wd_dgram_unregister(peer);
	peer->state = WD_PEER_CLOSED;
}

/* Queue a notice-shaped message (refuse, shutdown, goodbye) for a peer. */
static void
wd_peer_send_notice(WdPeer *peer, uint8 type, uint16 reason, const char *message)
{
	uint8		buf[CM_PROTO_MAX_MSG];
	size_t		len;

	len = cm_proto_encode_notice(CM_DIR_TO_CONMGR_HB, type, reason, message,
								 buf, sizeof(buf));
	if (len > 0)
		(void) wd_peer_send(peer, buf, len);
}

/*
 * Send a refusal ('X') to a peer that holds no slot, and close it.
 */
void
wd_peer_refuse(WdPeer *peer, uint16 reason, const char *message)
{
	Assert(peer->slot < 0);
	wd_peer_send_notice(peer, CM_MSG_REFUSE, reason, message);
	wd_peer_close(peer);
}

/* Log how many refusals were not logged, once a slot is available again. */
void
wd_peers_log_refusal_summary(void)
{
	if (wd_too_many_logged && wd_too_many_suppressed > 0)
		ereport(LOG,
				(errmsg("watchdog refused %llu further heartbeat connections while watchdog.max_heartbeat_connections (%d) was reached",
						(unsigned long long) wd_too_many_suppressed,
						wd_max_heartbeat_connections)));
	wd_too_many_logged = false;
	wd_too_many_suppressed = 0;
}

/*
 * The hello: negotiate the version, check authentication, claim a slot,
 * answer with the welcome.
 */
static void
wd_peer_hello(WdPeer *peer, const CmProtoHello *hello)
{
	uint16		lo = Max(hello->min_version, CM_PROTO_VERSION_MIN);
	uint16		hi = Min(hello->max_version, CM_PROTO_VERSION_MAX);
	char		message[CM_PROTO_MAX_STRING + 1];
	uint64		server_timeout;
	const CmAuthSecret *secrets;
	int			nsecrets;
	const char *problem;
	CmProtoMsg	msg;
	uint8		buf[CM_PROTO_MAX_MSG];
	size_t		len;

	peer->hello = *hello;

	if (hello->magic != CM_PROTO_HELLO_MAGIC)
	{
		wd_peer_protocol_violation(peer, "wrong magic number in the hello");
		return;
	}

	if (lo > hi)
	{
		snprintf(message, sizeof(message),
				 "no common protocol version: conmgr speaks %u.%u to %u.%u, the watchdog %u.%u to %u.%u",
				 CM_PROTO_VERSION_MAJOR(hello->min_version),
				 CM_PROTO_VERSION_MINOR(hello->min_version),
				 CM_PROTO_VERSION_MAJOR(hello->max_version),
				 CM_PROTO_VERSION_MINOR(hello->max_version),
				 CM_PROTO_VERSION_MAJOR(CM_PROTO_VERSION_MIN),
				 CM_PROTO_VERSION_MINOR(CM_PROTO_VERSION_MIN),
				 CM_PROTO_VERSION_MAJOR(CM_PROTO_VERSION_MAX),
				 CM_PROTO_VERSION_MINOR(CM_PROTO_VERSION_MAX));
		wd_peer_refuse_hello(peer, ERRCODE_PROTOCOL_VIOLATION, CM_REASON_VERSION, message);
		return;
	}

	if (hello->heartbeat_timeout_ms > (uint32) wd_max_heartbeat_timeout)
	{
		snprintf(message, sizeof(message),
				 "heartbeat timeout %u ms is longer than watchdog.max_heartbeat_timeout (%d ms)",
				 hello->heartbeat_timeout_ms, wd_max_heartbeat_timeout);
		wd_peer_refuse_hello(peer, ERRCODE_PROTOCOL_VIOLATION, CM_REASON_PROTOCOL, message);
		return;
	}

	server_timeout = (uint64) hello->heartbeat_interval_ms +
		hello->heartbeat_timeout_ms + wd_timeout_margin;
	if (server_timeout > PG_INT32_MAX)
	{
		snprintf(message, sizeof(message),
				 "heartbeat interval (%u ms) plus timeout (%u ms) is too large",
				 hello->heartbeat_interval_ms, hello->heartbeat_timeout_ms);
		wd_peer_refuse_hello(peer, ERRCODE_PROTOCOL_VIOLATION, CM_REASON_PROTOCOL, message);
		return;
	}

	nsecrets = wd_auth_secrets(&secrets, &problem);
	if (problem)
	{
		wd_peer_refuse_hello(peer, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
							 CM_REASON_AUTH, problem);
		return;
	}
	if (nsecrets == 0)
	{
		if (hello->auth_method != CM_PROTO_AUTH_NONE)
		{
			snprintf(message, sizeof(message),
					 "conmgr asks for authentication method %u, but this server has no watchdog.secret_file",
					 (unsigned) hello->auth_method);
			wd_peer_refuse_hello(peer, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
								 CM_REASON_AUTH, message);
			return;
		}
		wd_peer_accept(peer);
		return;
	}

	/* authentication required */
	if (hello->auth_method != CM_PROTO_AUTH_HMAC_SHA256)
	{
		if (hello->auth_method == CM_PROTO_AUTH_NONE)
			snprintf(message, sizeof(message),
					 "this server requires authentication (watchdog.secret_file is set): give conmgr the same secret with secret_file");
		else if (hello->auth_method == CM_PROTO_AUTH_HANDSHAKE_ONLY)
			snprintf(message, sizeof(message),
					 "authentication method 1 (the handshake only) is no longer accepted: this watchdog requires method 2, which authenticates every frame (upgrade conmgr)");
		else
			snprintf(message, sizeof(message),
					 "authentication method %u is not supported by this watchdog",
					 (unsigned) hello->auth_method);
		wd_peer_refuse_hello(peer, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
							 CM_REASON_AUTH, message);
		return;
	}
	if (hello->nonce_len != CM_AUTH_NONCE_LEN)
	{
		wd_peer_protocol_violation(peer, "the hello's nonce is not 32 bytes long");
		return;
	}
	if (!cm_auth_random(peer->nonce_s, sizeof(peer->nonce_s)))
	{
		wd_peer_refuse_hello(peer, ERRCODE_INTERNAL_ERROR, CM_REASON_AUTH,
							 "the watchdog could not generate a random challenge");
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_CHALLENGE;
	msg.u.nonce.len = CM_AUTH_NONCE_LEN;
	memcpy(msg.u.nonce.data, peer->nonce_s, CM_AUTH_NONCE_LEN);
	len = cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, sizeof(buf));
	peer->challenged = true;
	/* conmgr's proof covers the hello and this challenge */
	if (len == 0 || !cm_auth_transcript_add(&peer->transcript, buf, len))
	{
		wd_peer_refuse_hello(peer, ERRCODE_INTERNAL_ERROR, CM_REASON_AUTH,
							 "the watchdog could not hash the handshake");
		return;
	}
	peer->proved = peer->transcript;
	if (!wd_peer_send(peer, buf, len))
		wd_peer_close(peer);
}

/*
 * Log the refusal of a hello with the peer's name and address, and refuse.
 */
static void
wd_peer_refuse_hello(WdPeer *peer, int sqlstate, uint16 reason, const char *message)
{
	static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
	char		name[WD_NAME_LEN];
	uint64		suppressed;

	/* anyone who reaches the port can cause this: at most one line a while */
	if (wd_log_allowed(&limit, wd_now_ms(), &suppressed))
	{
		wd_copy_name(name, sizeof(name), peer->hello.name.str);
		ereport(LOG,
				(errcode(sqlstate),
				 errmsg("refused heartbeat connection from conmgr \"%s\" at %s",
						name, peer->desc),
				 errdetail("%s.", message),
				 suppressed > 0 ?
				 errdetail_log("%s.  %llu earlier refusals were not logged.", message,
							   (unsigned long long) suppressed) : 0));
	}
	wd_peer_refuse(peer, reason, message);
}

/*
 * The answer to our challenge: accept the peer if it proves it holds the
 * secret.
 */
static void
wd_peer_proof(WdPeer *peer, const CmProtoNonce *proof)
{
	const char *problem;
	const CmAuthSecret *secrets;
	int			nsecrets = wd_auth_secrets(&secrets, &problem);
	uint8		expected[CM_AUTH_PROOF_LEN];

	if (proof->len != CM_AUTH_PROOF_LEN)
	{
		wd_peer_protocol_violation(peer, "the authentication proof is not 32 bytes long");
		return;
	}
	if (nsecrets == 0)
	{
		/* a reload switched authentication off meanwhile: ask again */
		wd_peer_refuse_hello(peer, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
							 CM_REASON_AUTH,
							 problem ? problem : "the watchdog's authentication settings changed; connect again");
		return;
	}
	/* any of the secrets will do (one at a time, or two while replacing) */
	peer->secret_index = -1;
	for (int i = 0; i < nsecrets && peer->secret_index < 0; i++)
		if (cm_auth_conmgr_proof(&secrets[i], &peer->proved, expected) &&
			cm_auth_proof_equal(proof->data, proof->len, expected))
			peer->secret_index = i;
	if (peer->secret_index < 0)
	{
		wd_peer_refuse_hello(peer, ERRCODE_INVALID_PASSWORD, CM_REASON_AUTH,
							 "authentication failed: conmgr's proof does not match the secret of watchdog.secret_file");
		return;
	}
	peer->authenticated = true;
	wd_peer_accept(peer);
}

/*
 * Sign an encoded welcome: its proof (the last field, zeros until now)
 * covers the handshake so far and every other field of the welcome; the
 * session keys come from the whole handshake.  From here on every frame is
 * sealed.  False when the secret went away with a reload or hashing failed.
 */
static bool
wd_peer_prove_welcome(WdPeer *peer, uint8 *buf, size_t len)
{
	const char *problem;
	const CmAuthSecret *secrets;
	int			nsecrets = wd_auth_secrets(&secrets, &problem);
	CmAuthTranscript t = peer->transcript;
	size_t		prefix = len - (1 + CM_AUTH_PROOF_LEN);

	/* with the secret the peer proved, checked a moment ago */
	if (peer->secret_index < 0 || peer->secret_index >= nsecrets ||
		!cm_auth_transcript_add(&t, buf, prefix) ||
		!cm_auth_watchdog_proof(&secrets[peer->secret_index], &t, buf + prefix + 1) ||
		!cm_auth_transcript_add(&peer->transcript, buf, len) ||
		!cm_auth_session_keys(&secrets[peer->secret_index], &peer->transcript,
							  &peer->keys))
	{
		memset(buf + prefix + 1, 0, CM_AUTH_PROOF_LEN);
		return false;
	}
	return true;
}

/*
 * Claim a slot for a peer whose hello was accepted (and proof checked) and
 * answer with the welcome.
 */
static void
wd_peer_accept(WdPeer *peer)
{
	const CmProtoHello *hello = &peer->hello;
	uint16		hi = Min(hello->max_version, CM_PROTO_VERSION_MAX);
	uint64		server_timeout = (uint64) hello->heartbeat_interval_ms +
		hello->heartbeat_timeout_ms + wd_timeout_margin;
	char		name[WD_NAME_LEN];
	char		message[CM_PROTO_MAX_STRING + 1];
	int			slotno = -1;
	int			same_addr = 0;
	uint32		generation = 0;
	bool		reconnected = false;
	CmProtoMsg	msg;
	uint8		buf[CM_PROTO_MAX_MSG];
	size_t		len;

	wd_copy_name(name, sizeof(name), hello->name.str);
	server_timeout = Min(server_timeout, PG_INT32_MAX);	/* a reload may have raised the margin */

	/* bring the attributes up to date before this peer is welcomed */
	wd_attrs_refresh();

	/*
	 * A conmgr coming back after the watchdog restarted first gives up the
	 * slot it held (so that it finds one even when every slot is taken),
	 * then claims a free slot, else the oldest one kept only for the view.
	 */
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	reconnected = wd_slots_release_reconnected(&peer->addr, name, hello->incarnation);
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		/* the slots this address holds, to apply the per-address cap */
		if ((slot->state == WD_SLOT_ACTIVE || slot->state == WD_SLOT_RECONNECTING) &&
			cm_proto_addr_equal(&slot->addr, &peer->addr))
			same_addr++;
	}
	for (int i = 0; i < wd_shared->max_slots && same_addr < wd_max_heartbeat_connections_per_address; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		if (slot->state == WD_SLOT_FREE)
		{
			slotno = i;
			break;
		}
		if (slot->state == WD_SLOT_TERMINATED &&
			(slotno < 0 ||
			 slot->terminated_at < wd_shared->slots[slotno].terminated_at))
			slotno = i;
	}
	if (slotno >= 0)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[slotno];

		generation = wd_slot_claim(slot);
		slot->version = hi;
		slot->addr = peer->addr;
		slot->heartbeat_interval = hello->heartbeat_interval_ms;
		slot->heartbeat_timeout = hello->heartbeat_timeout_ms;
		slot->server_timeout = (uint32) server_timeout;
		slot->authenticated = peer->authenticated;
		slot->incarnation = hello->incarnation;
		slot->rtt_us = wd_socket_rtt(peer->sock);
		peer->rtt_read_at = wd_now_ms();
		slot->connected_since = GetCurrentTimestamp();
		slot->last_heartbeat = slot->connected_since;
		memcpy(slot->name, name, sizeof(slot->name));
	}
	LWLockRelease(wd_shared->lock);
	if (reconnected)
		ereport(LOG,
				(errmsg("conmgr \"%s\" at %s reconnected within its server timeout", name, peer->desc)));

	if (slotno < 0 && same_addr >= wd_max_heartbeat_connections_per_address)
	{
		static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
		uint64		suppressed;

		snprintf(message, sizeof(message),
				 "too many conmgr connections from this address: watchdog.max_heartbeat_connections_per_address (%d) reached",
				 wd_max_heartbeat_connections_per_address);
		if (wd_log_allowed(&limit, wd_now_ms(), &suppressed))
			ereport(LOG,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("refused heartbeat connection from conmgr \"%s\" at %s",
							name, peer->desc),
					 errdetail("%s.", message)));
		wd_peer_refuse(peer, CM_REASON_TOO_MANY, message);
		return;
	}
	if (slotno < 0)
	{
		snprintf(message, sizeof(message),
				 "too many conmgr connections: watchdog.max_heartbeat_connections (%d) reached",
				 wd_max_heartbeat_connections);
		if (!wd_too_many_logged)
		{
			ereport(LOG,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("refused heartbeat connection from conmgr \"%s\" at %s",
							name, peer->desc),
					 errdetail("%s.", message),
					 errhint("Further refusals are counted and summarised once a slot is free again.")));
			wd_too_many_logged = true;
		}
		else
			wd_too_many_suppressed++;
		wd_peer_refuse(peer, CM_REASON_TOO_MANY, message);
		return;
	}
	wd_peers_log_refusal_summary();

	peer->slot = slotno;
	peer->generation = generation;
	peer->server_timeout = (uint32) server_timeout;
	peer->state = WD_PEER_ACTIVE;
	for (int path = 0; path < WD_NPATHS; path++)
	{
		cm_token_bucket_init(&peer->hb_bucket[path], wd_now_ms(),
							 WD_HEARTBEAT_BURST);
	}
	wd_pending_count--;
	wd_active_count++;
	wd_peer_set_deadline(peer, wd_now_ms() + peer->server_timeout);

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_WELCOME;
	msg.u.welcome.version = hi;
	msg.u.welcome.check_attr_interval_ms = (uint32) wd_check_attr_interval;
	msg.u.welcome.server_timeout_ms = peer->server_timeout;
	peer->version = hi;
	peer->attrs_sent = cm_proto_attrs_for_version(hi, wd_current_attrs);
	msg.u.welcome.attrs = peer->attrs_sent;
	msg.u.welcome.proof_len = peer->authenticated ? CM_AUTH_PROOF_LEN : 0;
	len = cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, sizeof(buf));
	if (len > 0 && peer->authenticated && !wd_peer_prove_welcome(peer, buf, len))
		msg.u.welcome.proof_len = 0;	/* conmgr finds no proof and gives up */

	ereport(LOG,
			(errmsg("conmgr \"%s\" connected from %s", name, peer->desc),
			 errdetail("Protocol %u.%u, %s, heartbeat interval %u ms, heartbeat timeout %u ms; declared lost after %u ms without a heartbeat.",
					   CM_PROTO_VERSION_MAJOR(hi), CM_PROTO_VERSION_MINOR(hi),
					   peer->authenticated ? "authenticated" : "not authenticated",
					   hello->heartbeat_interval_ms,
					   hello->heartbeat_timeout_ms, peer->server_timeout)));

	if (len == 0)
	{
		wd_peer_broken(peer, "could not encode the welcome");
		return;
	}
	if (!wd_peer_send(peer, buf, len))
	{
		/* a broken connection is handled by the send path already */
		if (peer->state == WD_PEER_ACTIVE && !peer->send_failed)
			wd_peer_broken(peer, "could not send the welcome");
		return;
	}
	peer->sealed = peer->authenticated && msg.u.welcome.proof_len > 0;
	/* protocol 1.2: heartbeats may come as datagrams too */
	if (peer->sealed && hi >= CM_PROTO_VERSION_1_2)
		wd_dgram_register(peer);
}

/*
 * May a heartbeat that came by path be answered now?  A conmgr sends one
 * heartbeat per announced interval on each path it uses (and, while a
 * datagram is unanswered, a few extra ones).  Allow bursts (after a stall)
 * and twice that rate sustained, nothing more: a peer cannot make the
 * watchdog spend its time answering.  Takes a token when it may.
 */
bool
wd_peer_heartbeat_allowed(WdPeer *peer, WdPath path, int64 mono)
{
	return cm_token_bucket_take(&peer->hb_bucket[path], mono, 2.0,
								Max(peer->hello.heartbeat_interval_ms, 1),
								WD_HEARTBEAT_BURST);
}

/*
 * A heartbeat that came by path, and may be answered: move the deadline
 * and update the slot.  Returns false when the peer is no longer active
 * (an attribute push found the connection broken); otherwise the caller
 * answers it.
 */
bool
wd_peer_take_heartbeat(WdPeer *peer, const CmProtoHeartbeat *hb, WdPath path)
{
	WatchdogPeerSlot *slot;
	TimestampTz now = GetCurrentTimestamp();
	int64		mono = wd_now_ms();
	bool		read_rtt = mono - peer->rtt_read_at >= WD_RTT_SAMPLE_MS;
	uint32		rtt = 0;

	if (path == WD_PATH_DATAGRAM)
		peer->frames_in++;

	wd_peer_set_deadline(peer, mono + peer->server_timeout);
	if (read_rtt)
	{
		rtt = wd_socket_rtt(peer->sock);
		peer->rtt_read_at = mono;
	}

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	slot = &wd_shared->slots[peer->slot];
	if (slot->generation == peer->generation)
	{
		slot->last_heartbeat = now;
		slot->heartbeats++;
		slot->path = (uint8) path;
		if (read_rtt)
			slot->rtt_us = rtt;
	}
	LWLockRelease(wd_shared->lock);

	wd_attrs_refresh();
	return peer->state == WD_PEER_ACTIVE;
}

/* Encode the reply to a heartbeat into buf: its length, 0 on failure. */
size_t
wd_peer_encode_reply(WdPeer *peer, const CmProtoHeartbeat *hb, uint8 *buf,
					 size_t cap)
{
	CmProtoMsg	msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_HEARTBEAT_REPLY;
	msg.u.heartbeat.seq = hb->seq;
	msg.u.heartbeat.echo = hb->echo;
	peer->attrs_sent = cm_proto_attrs_for_version(peer->version, wd_current_attrs);
	msg.u.heartbeat.attrs = peer->attrs_sent;
	return cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, cap);
}

/* A heartbeat on the connection: answered at once on it. */
static void
wd_peer_heartbeat(WdPeer *peer, const CmProtoHeartbeat *hb)
{
	uint8		buf[64];
	size_t		len;

	/* over TCP, too many heartbeats break the protocol */
	if (!wd_peer_heartbeat_allowed(peer, WD_PATH_TCP, wd_now_ms()))
	{
		char		reason[128];

		snprintf(reason, sizeof(reason),
				 "heartbeats faster than the announced interval of %u ms allows",
				 peer->hello.heartbeat_interval_ms);
		wd_peer_protocol_violation(peer, reason);
		return;
	}
	if (!wd_peer_take_heartbeat(peer, hb, WD_PATH_TCP))
		return;
	len = wd_peer_encode_reply(peer, hb, buf, sizeof(buf));
	if (len == 0 || !wd_peer_send(peer, buf, len))
	{
		/* a send that failed is decided after the rest of the input */
		if (peer->state == WD_PEER_ACTIVE && !peer->send_failed)
			wd_peer_lost(peer, CM_REASON_CONN_LOST,
						 "conmgr does not read the heartbeat replies (output buffer full)");
	}
}

/*
 * Find a backend by PID in the backend status array.  Returns false when
 * there is none; otherwise *is_ip tells whether it is a TCP session, and
 * *addr its client address.
 */
static bool
wd_find_backend(int pid, bool *is_ip, CmProtoAddr *addr, BackendType *type)
{
	int			n;
	bool		found = false;

	/* the snapshot is taken once per batch of frames (wd_peer_process_input) */
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid != pid)
			continue;
		found = true;
		*type = be->st_backendType;
		*is_ip = cm_net_addr_from_sockaddr((struct sockaddr *) &be->st_clientaddr.addr,
											   addr);
		break;
	}
	return found;
}

/*
 * Register a session for precise termination.  Accepted only when the
 * backend exists, is a TCP client session, and its client address and port
 * are the peer's own address and the port conmgr claims: a conmgr can
 * never have another host's sessions terminated.
 */
static void
wd_peer_register(WdPeer *peer, const CmProtoSession *session)
{
	CmProtoAddr claimed = session->client;
	CmProtoAddr actual;
	bool		is_ip = false;
	BackendType type = B_INVALID;
	char		reason[256];
	char		host[INET6_ADDRSTRLEN];
	char		peerhost[INET6_ADDRSTRLEN];
	int			pid = (int) session->backend_pid;
	static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
	uint64		suppressed;

	/* only precise mode uses registrations: nothing to look up otherwise */
	if (wd_termination_mode != WD_TERMINATE_PRECISE)
		return;

	wd_addr_normalise(&claimed);
	wd_addr_host_string(&peer->addr, peerhost, sizeof(peerhost));
	reason[0] = '\0';

	if (session->backend_pid > PG_INT32_MAX)
		snprintf(reason, sizeof(reason), "backend PID %u is out of range",
				 session->backend_pid);
	else if (!cm_proto_addr_equal(&claimed, &peer->addr))
	{
		wd_addr_host_string(&claimed, host, sizeof(host));
		snprintf(reason, sizeof(reason),
				 "the session's client address %s is not the conmgr's address %s",
				 host, peerhost);
	}
	else if (!wd_find_backend(pid, &is_ip, &actual, &type))
		snprintf(reason, sizeof(reason), "there is no backend with PID %d",
				 pid);
	else if (!is_ip)
		snprintf(reason, sizeof(reason),
				 "backend %d is not a TCP session", pid);
	else if (type != B_BACKEND && type != B_WAL_SENDER)
		snprintf(reason, sizeof(reason),
				 "process %d is not a client backend", pid);
	else if (!cm_proto_addr_equal(&actual, &peer->addr))
	{
		wd_addr_host_string(&actual, host, sizeof(host));
		snprintf(reason, sizeof(reason),
				 "backend %d is connected from %s, not from the conmgr's address %s",
				 pid, host, peerhost);
	}
	else if (actual.port != claimed.port)
		snprintf(reason, sizeof(reason),
				 "backend %d is connected from port %u, not from port %u",
				 pid, (unsigned) actual.port, (unsigned) claimed.port);

	if (reason[0] == '\0')
	{
		WdRegistrationResult added;

		LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		added = wd_registration_add(pid, peer->slot, peer->generation, actual.port);
		LWLockRelease(wd_shared->lock);
		if (added == WD_REGISTRATION_FULL)
			snprintf(reason, sizeof(reason), "the registration table is full");
		else if (added == WD_REGISTRATION_TAKEN)
			snprintf(reason, sizeof(reason),
					 "backend %d is registered by another conmgr connection", pid);
	}

	if (reason[0] != '\0' && wd_log_allowed(&limit, wd_now_ms(), &suppressed))
		ereport(LOG,
				(errmsg("watchdog rejected a session registration from conmgr at %s",
						peer->desc),
				 errdetail("%s.", reason),
				 suppressed > 0 ?
				 errdetail_log("%s.  %llu earlier rejections were not logged.", reason,
							   (unsigned long long) suppressed) : 0));
	else
		ereport(DEBUG1,
				(errmsg_internal("watchdog: conmgr at %s registered backend %d (port %u)",
								 peer->desc, pid, (unsigned) actual.port)));
}

/* Forget a registration (the application closed its session). */
static void
wd_peer_unregister(WdPeer *peer, const CmProtoSession *session)
{
	bool		found = false;
	CmProtoAddr claimed = session->client;

	if (wd_termination_mode != WD_TERMINATE_PRECISE)
		return;
	wd_addr_normalise(&claimed);
	if (!cm_proto_addr_equal(&claimed, &peer->addr))
		return;					/* registrations carry the peer's address */
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	found = wd_registration_remove((int) session->backend_pid, session->client.port,
								   peer->slot, peer->generation);
	LWLockRelease(wd_shared->lock);

	ereport(DEBUG1,
			(errmsg_internal("watchdog: conmgr at %s unregistered backend %u%s",
							 peer->desc, session->backend_pid,
							 found ? "" : " (was not registered)")));
}

/* Free the peer's slot and its registrations, without termination. */
void
wd_peer_release(WdPeer *peer)
{
	wd_peer_release_slot(peer);
}

/*
 * The connection broke (end of file, or a receive or send error).  A
 * welcomed conmgr that is gone before a single frame gave up its handshake
 * (it never saw the welcome in time, or could not be sent it), so it told
 * no application anything and has no session to answer for: its slot is
 * released.  After that, a welcomed conmgr is lost.  Before the welcome
 * the connection is only closed.
 */
void
wd_peer_broken(WdPeer *peer, const char *detail)
{
	if (peer->state == WD_PEER_ACTIVE && peer->frames_in == 0)
	{
		ereport(DEBUG1,
				(errmsg_internal("watchdog: conmgr at %s left before using its welcome (%s)",
								 peer->desc, detail)));
		wd_peer_release(peer);
		wd_peer_close(peer);
	}
	else if (peer->state == WD_PEER_ACTIVE)
		wd_peer_lost(peer, CM_REASON_CONN_LOST, detail);
	else
		wd_peer_close(peer);
}

static void
wd_peer_release_slot(WdPeer *peer)
{
	if (peer->slot < 0)
		return;
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	if (wd_shared->slots[peer->slot].generation == peer->generation &&
		wd_shared->slots[peer->slot].state == WD_SLOT_ACTIVE)
		wd_slot_release(peer->slot);
	LWLockRelease(wd_shared->lock);
	peer->slot = -1;
}

/* Goodbye: a clean departure.  Release the slot; terminate nothing. */
static void
wd_peer_goodbye(WdPeer *peer, const CmProtoNotice *notice)
{
	if (peer->state == WD_PEER_ACTIVE)
	{
		char		name[WD_NAME_LEN] = "";
		char		said[CM_PROTO_MAX_STRING + 1];

		LWLockAcquire(wd_shared->lock, LW_SHARED);
		memcpy(name, wd_shared->slots[peer->slot].name, sizeof(name));
		LWLockRelease(wd_shared->lock);
		/* the peer's text goes into the server log: printable bytes only */
		wd_copy_name(said, sizeof(said), notice->message.str);
		ereport(LOG,
				(errmsg("conmgr \"%s\" at %s disconnected (goodbye, %s)",
						name, peer->desc,
						cm_proto_reason_name(notice->reason)),
				 said[0] != '\0' ?
				 errdetail("conmgr said: %s", said) : 0));
		wd_peer_release_slot(peer);
	}
	wd_peer_close(peer);
}

/*
 * A sealed frame that does not verify: a tag that is wrong (injected or
 * altered bytes), or a sequence number out of order (a frame replayed,
 * dropped or reordered).  Whoever sent it cannot be conmgr, so nothing it
 * says is acted on, and it must not get the client host's sessions ended
 * either: the connection is closed, and the slot waits, as after a watchdog
 * restart, for conmgr to reconnect until its server timeout would have
 * expired anyway; only then is it declared lost.  conmgr sees the
 * connection close (its applications are told "connection lost") and
 * reconnects at once.
 */
static void
wd_peer_integrity_failure(WdPeer *peer, const char *what)
{
	static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
	int64		deadline = peer->deadline;
	uint64		suppressed;
	char		name[WD_NAME_LEN] = "";

	if (peer->frames_in == 0)
	{
		/* conmgr never used its welcome: there is nothing to wait for */
		wd_peer_release_slot(peer);
	}
	else if (peer->slot >= 0)
	{
		LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		if (wd_shared->slots[peer->slot].generation == peer->generation &&
			wd_shared->slots[peer->slot].state == WD_SLOT_ACTIVE)
		{
			WatchdogPeerSlot *slot = &wd_shared->slots[peer->slot];

			wd_slot_wait_reconnect(slot, deadline);
			memcpy(name, slot->name, sizeof(name));
		}
		LWLockRelease(wd_shared->lock);
		wd_reconnect_next = Min(wd_reconnect_next, deadline);
		peer->slot = -1;
	}
	if (wd_log_allowed(&limit, wd_now_ms(), &suppressed))
		ereport(LOG,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("heartbeat connection of conmgr \"%s\" at %s failed its integrity check: %s",
						name, peer->desc, what),
				 errdetail("The connection is closed; its sessions are kept while conmgr reconnects, for %lld ms at most.%s",
						   (long long) Max(deadline - wd_now_ms(), 0),
						   suppressed > 0 ? "  Earlier failures were not all logged." : "")));
	wd_peer_close(peer);
}

/*
 * The peer is lost: hand its slot to the terminator, close the
 * connection, wake the terminator.
 */
void
wd_peer_lost(WdPeer *peer, uint16 reason, const char *detail)
{
	char		name[WD_NAME_LEN] = "";

	if (peer->state != WD_PEER_ACTIVE || peer->slot < 0 || wd_shutting_down)
	{
		wd_peer_release_slot(peer);
		wd_peer_close(peer);
		return;
	}

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	if (wd_shared->slots[peer->slot].generation == peer->generation &&
		wd_shared->slots[peer->slot].state == WD_SLOT_ACTIVE)
	{
		wd_slot_mark_lost(&wd_shared->slots[peer->slot], (uint8) reason);
		memcpy(name, wd_shared->slots[peer->slot].name, sizeof(name));
	}
	LWLockRelease(wd_shared->lock);
	peer->slot = -1;

	ereport(LOG,
			(errmsg("conmgr \"%s\" at %s lost: %s", name, peer->desc, detail),
			 errdetail("Its sessions will be terminated (watchdog.termination_mode = %s).",
					   wd_termination_mode == WD_TERMINATE_PRECISE ?
					   "precise" : "address")));
	wd_peer_close(peer);
	wd_wake_terminator();
}

/* Check a peer's deadline: hello for a new peer, heartbeat otherwise. */
void
wd_peer_check_deadline(WdPeer *peer, int64 now)
{
	char		detail[128];

	if (now < peer->deadline)
		return;

	if (peer->state == WD_PEER_PENDING && peer->challenged)
	{
		static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
		uint64		suppressed;

		if (wd_log_allowed(&limit, now, &suppressed))
			ereport(LOG,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("heartbeat connection from %s did not answer the authentication challenge within %d ms",
							peer->desc, wd_hello_timeout),
					 suppressed > 0 ?
					 errdetail_log("%llu earlier such connections were not logged.",
								   (unsigned long long) suppressed) : 0));
		wd_peer_refuse(peer, CM_REASON_PROTOCOL, "no answer to the authentication challenge in time");
		return;
	}
	if (peer->state == WD_PEER_PENDING)
	{
		static CmRateWindow limit = {.burst = WD_LOG_REFUSAL_BURST};
		uint64		suppressed;

		if (peer->bytes_in > 0 && wd_log_allowed(&limit, now, &suppressed))
			ereport(LOG,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("heartbeat connection from %s sent no complete hello within %d ms",
							peer->desc, wd_hello_timeout),
					 suppressed > 0 ?
					 errdetail_log("%llu earlier such connections were not logged.",
								   (unsigned long long) suppressed) : 0));
		else
			ereport(DEBUG1,
					(errmsg_internal("watchdog: heartbeat connection from %s sent nothing within %d ms",
									 peer->desc, wd_hello_timeout)));
		wd_peer_refuse(peer, CM_REASON_PROTOCOL, "no hello in time");
		return;
	}
	if (peer->state == WD_PEER_ACTIVE)
	{
		snprintf(detail, sizeof(detail),
				 "no heartbeat received for %u ms", peer->server_timeout);
		wd_peer_lost(peer, CM_REASON_TIMEOUT, detail);
	}
}

/* Push an attribute change ('A') to a peer. */
void
wd_peer_push_attrs(WdPeer *peer, uint8 attrs)
{
	CmProtoMsg	msg;
	uint8		buf[64];
	size_t		len;

	/* what this peer's protocol version knows, and only a change */
	attrs = cm_proto_attrs_for_version(peer->version, attrs);
	if (attrs == peer->attrs_sent)
		return;
	peer->attrs_sent = attrs;
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_ATTRIBUTES;
	msg.u.attributes.attrs = attrs;
	len = cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, sizeof(buf));
	if (len == 0 || !wd_peer_send(peer, buf, len))
	{
		if (peer->state == WD_PEER_ACTIVE && !peer->send_failed)
			wd_peer_lost(peer, CM_REASON_CONN_LOST,
						 "conmgr does not read (output buffer full)");
	}
}

/* Send the shutdown notice ('S'), release the slot, close. */
void
wd_peer_shutdown_notice(WdPeer *peer)
{
	wd_peer_send_notice(peer, CM_MSG_SHUTDOWN, CM_REASON_SHUTDOWN,
						"the database server is shutting down");
	wd_peer_release_slot(peer);
	wd_peer_close(peer);
}

/*
 * A restart of the watchdog process alone (the server keeps running): tell
 * the peer to reconnect.  Its slot stays, and becomes RECONNECTING when
 * this process exits (wd_on_exit), so that the next watchdog process still
 * declares it lost if it does not come back.
 */
void
wd_peer_restart_notice(WdPeer *peer)
{
	wd_peer_send_notice(peer, CM_MSG_GOODBYE, CM_REASON_RESTART,
						"the watchdog process is restarting; the server keeps running");
	wd_peer_close(peer);
}


int64
wd_slots_reconnect_next(void)
{
	return wd_reconnect_next;
}

/*
 * At start: the peers of an earlier watchdog process have until their
 * reconnect deadline to come back (slots left ACTIVE, which only an exit
 * that skipped wd_on_exit leaves, get a server timeout from now).  Their
 * registrations are kept for the terminator.
 */
void
wd_slots_adopt_previous(int64 now)
{
	int			waiting = 0;

	wd_reconnect_next = PG_INT64_MAX;
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		if (slot->state == WD_SLOT_ACTIVE)
			wd_slot_wait_reconnect(slot, now + slot->server_timeout);
		if (slot->state == WD_SLOT_RECONNECTING)
		{
			waiting++;
			wd_reconnect_next = Min(wd_reconnect_next, slot->reconnect_deadline);
		}
	}
	LWLockRelease(wd_shared->lock);
	if (waiting > 0)
		ereport(LOG,
				(errmsg("watchdog: %d conmgr peers of the previous watchdog process may reconnect", waiting),
				 errdetail("Each one that does not reconnect within its server timeout is declared lost and its sessions are terminated.")));
}

/*
 * Declare lost the RECONNECTING slots whose deadline has passed, and wake
 * the terminator for them.
 */
void
wd_slots_check_reconnect(int64 now)
{
	int			lost = 0;
	WatchdogPeerSlot *gone;

	if (now < wd_reconnect_next)
		return;
	wd_reconnect_next = PG_INT64_MAX;
	/* copies of the slots declared lost, logged once the lock is released */
	gone = palloc(sizeof(WatchdogPeerSlot) * wd_shared->max_slots);
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		if (slot->state != WD_SLOT_RECONNECTING)
			continue;
		if (slot->reconnect_deadline > now)
		{
			wd_reconnect_next = Min(wd_reconnect_next, slot->reconnect_deadline);
			continue;
		}
		wd_slot_mark_lost(slot, CM_REASON_TIMEOUT);
		gone[lost++] = *slot;
	}
	LWLockRelease(wd_shared->lock);
	for (int i = 0; i < lost; i++)
	{
		char		host[64];

		wd_addr_host_string(&gone[i].addr, host, sizeof(host));
		ereport(LOG,
				(errmsg("conmgr \"%s\" at %s lost: it did not reconnect within %u ms",
						gone[i].name, host, gone[i].server_timeout),
				 errdetail("Its sessions will be terminated (watchdog.termination_mode = %s).",
						   wd_termination_mode == WD_TERMINATE_PRECISE ?
						   "precise" : "address")));
	}
	pfree(gone);
	if (lost > 0)
		wd_wake_terminator();
}

/*
 * A welcomed peer that held a slot waiting for it to reconnect (same
 * address, same name, and the same incarnation: the random number each
 * conmgr process announces, covered by the authentication proof) releases
 * that slot: it came back.  Another conmgr of the same host, or the host
 * rebooted, has another incarnation and leaves the slot to expire.  Caller
 * holds the lock exclusively; returns true when one was released.
 */
static bool
wd_slots_release_reconnected(const CmProtoAddr *addr, const char *name,
							 uint64 incarnation)
{
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		if (slot->state != WD_SLOT_RECONNECTING ||
			slot->addr.family != addr->family ||
			memcmp(slot->addr.addr, addr->addr, addr->family == 4 ? 4 : 16) != 0 ||
			strcmp(slot->name, name) != 0 ||
			slot->incarnation != incarnation)
			continue;
		wd_slot_release(i);
		return true;
	}
	return false;
}
