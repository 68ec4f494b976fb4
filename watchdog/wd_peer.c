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
static uint64 wd_too_many_suppressed = 0;

static void wd_peer_protocol_violation(WdPeer *peer, const char *reason);
static void wd_peer_send_notice(WdPeer *peer, uint8 type, uint16 reason,
								const char *message);
static void wd_peer_hello(WdPeer *peer, const CmProtoHello *hello);
static void wd_peer_proof(WdPeer *peer, const CmProtoNonce *proof);
static void wd_peer_refuse_hello(WdPeer *peer, int sqlstate, uint16 reason,
								 const char *message);
static void wd_peer_accept(WdPeer *peer);
static bool wd_slots_release_reconnected(const CmProtoAddr *addr, const char *name);
static void wd_peer_heartbeat(WdPeer *peer, const CmProtoHeartbeat *hb);
static void wd_peer_register(WdPeer *peer, const CmProtoSession *session);
static void wd_peer_unregister(WdPeer *peer, const CmProtoSession *session);
static void wd_peer_goodbye(WdPeer *peer, const CmProtoNotice *notice);
static void wd_peer_release_slot(WdPeer *peer);

/*
 * Convert a socket address to our address form.  An IPv4-mapped IPv6
 * address becomes the IPv4 address, so that a peer and its sessions match
 * whichever way they connected.  Returns false for non-IP addresses.
 */
bool
wd_sockaddr_to_addr(const struct sockaddr_storage *ss, CmProtoAddr *addr)
{
	memset(addr, 0, sizeof(*addr));
	if (ss->ss_family == AF_INET)
	{
		const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;

		addr->family = 4;
		memcpy(addr->addr, &sin->sin_addr, 4);
		addr->port = ntohs(sin->sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		{
			addr->family = 4;
			memcpy(addr->addr, &sin6->sin6_addr.s6_addr[12], 4);
		}
		else
		{
			addr->family = 6;
			memcpy(addr->addr, &sin6->sin6_addr, 16);
		}
		addr->port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}

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
	while (peer->state != WD_PEER_CLOSED && peer->inlen > 0)
	{
		size_t		frame_len = 0;
		const char *reason = NULL;
		CmProtoMsg	msg;
		CmProtoStatus st;

		st = cm_proto_frame_peek(CM_DIR_TO_WATCHDOG, peer->inbuf, peer->inlen,
								 &frame_len, &reason);
		if (st == CM_PROTO_INCOMPLETE)
		{
			if (peer->inlen >= sizeof(peer->inbuf))
				wd_peer_protocol_violation(peer, "frame does not fit the input buffer");
			return;
		}
		if (st != CM_PROTO_OK || frame_len == 0 || frame_len > peer->inlen)
		{
			wd_peer_protocol_violation(peer, reason ? reason : "invalid frame");
			return;
		}
		st = cm_proto_decode(CM_DIR_TO_WATCHDOG, peer->inbuf, frame_len,
							 &msg, &reason);
		if (st != CM_PROTO_OK)
		{
			wd_peer_protocol_violation(peer, reason ? reason : "invalid message");
			return;
		}

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
	ereport(LOG,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("invalid heartbeat message from %s", peer->desc),
			 errdetail("%s.", reason)));

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
		snprintf(message, sizeof(message),
				 hello->auth_method == CM_PROTO_AUTH_NONE ?
				 "this server requires authentication (watchdog.secret_file is set): give conmgr the same secret with secret_file" :
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
	if (len == 0 || !wd_peer_send(peer, buf, len))
		wd_peer_close(peer);
}

/*
 * Log the refusal of a hello with the peer's name and address, and refuse.
 */
static void
wd_peer_refuse_hello(WdPeer *peer, int sqlstate, uint16 reason, const char *message)
{
	char		name[WD_NAME_LEN];

	wd_copy_name(name, sizeof(name), peer->hello.name.str);
	ereport(LOG,
			(errcode(sqlstate),
			 errmsg("refused heartbeat connection from conmgr \"%s\" at %s",
					name, peer->desc),
			 errdetail("%s.", message)));
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
		if (cm_auth_conmgr_proof(&secrets[i], peer->hello.nonce, peer->nonce_s,
								 peer->hello.heartbeat_interval_ms,
								 peer->hello.heartbeat_timeout_ms, expected) &&
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
	reconnected = wd_slots_release_reconnected(&peer->addr, name);
	for (int i = 0; i < wd_shared->max_slots; i++)
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

		generation = slot->generation + 1;
		memset(slot, 0, sizeof(*slot));
		slot->state = WD_SLOT_ACTIVE;
		slot->generation = generation;
		slot->version = hi;
		slot->addr = peer->addr;
		slot->heartbeat_interval = hello->heartbeat_interval_ms;
		slot->heartbeat_timeout = hello->heartbeat_timeout_ms;
		slot->server_timeout = (uint32) server_timeout;
		slot->authenticated = peer->authenticated;
		slot->rtt_us = wd_socket_rtt(peer->sock);
		slot->connected_since = GetCurrentTimestamp();
		slot->last_heartbeat = slot->connected_since;
		memcpy(slot->name, name, sizeof(slot->name));
	}
	LWLockRelease(wd_shared->lock);
	if (reconnected)
		ereport(LOG,
				(errmsg("conmgr \"%s\" at %s reconnected after the watchdog restarted", name, peer->desc)));

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
	wd_pending_count--;
	wd_active_count++;
	wd_peer_set_deadline(peer, wd_now_ms() + peer->server_timeout);

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_WELCOME;
	msg.u.welcome.version = hi;
	msg.u.welcome.check_attr_interval_ms = (uint32) wd_check_attr_interval;
	msg.u.welcome.server_timeout_ms = peer->server_timeout;
	msg.u.welcome.attrs = wd_current_attrs;
	msg.u.welcome.proof_len = 0;
	if (peer->authenticated)
	{
		const char *problem;
		const CmAuthSecret *secrets;
		int			nsecrets = wd_auth_secrets(&secrets, &problem);

		/* with the secret the peer proved, checked a moment ago */
		if (peer->secret_index < nsecrets &&
			cm_auth_watchdog_proof(&secrets[peer->secret_index], peer->nonce_s,
								   hello->nonce, peer->server_timeout,
								   msg.u.welcome.proof))
			msg.u.welcome.proof_len = CM_AUTH_PROOF_LEN;
		/* else conmgr finds no proof and gives up */
	}
	len = cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, sizeof(buf));

	ereport(LOG,
			(errmsg("conmgr \"%s\" connected from %s", name, peer->desc),
			 errdetail("Protocol %u.%u, %s, heartbeat interval %u ms, heartbeat timeout %u ms; declared lost after %u ms without a heartbeat.",
					   CM_PROTO_VERSION_MAJOR(hi), CM_PROTO_VERSION_MINOR(hi),
					   peer->authenticated ? "authenticated" : "not authenticated",
					   hello->heartbeat_interval_ms,
					   hello->heartbeat_timeout_ms, peer->server_timeout)));

	if (len == 0 || !wd_peer_send(peer, buf, len))
	{
		if (peer->state == WD_PEER_ACTIVE)
			wd_peer_lost(peer, CM_REASON_CONN_LOST, "could not send the welcome");
	}
}

/* A heartbeat: answer at once, move the deadline, update the slot. */
static void
wd_peer_heartbeat(WdPeer *peer, const CmProtoHeartbeat *hb)
{
	CmProtoMsg	msg;
	uint8		buf[64];
	size_t		len;
	WatchdogPeerSlot *slot;
	TimestampTz now = GetCurrentTimestamp();
	uint32		rtt = wd_socket_rtt(peer->sock);

	wd_peer_set_deadline(peer, wd_now_ms() + peer->server_timeout);

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	slot = &wd_shared->slots[peer->slot];
	if (slot->generation == peer->generation)
	{
		slot->last_heartbeat = now;
		slot->heartbeats++;
		slot->rtt_us = rtt;
	}
	LWLockRelease(wd_shared->lock);

	wd_attrs_refresh();
	if (peer->state != WD_PEER_ACTIVE)
		return;					/* the push found the connection broken */

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_HEARTBEAT_REPLY;
	msg.u.heartbeat.seq = hb->seq;
	msg.u.heartbeat.echo = hb->echo;
	msg.u.heartbeat.attrs = wd_current_attrs;
	len = cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, sizeof(buf));
	if (len == 0 || !wd_peer_send(peer, buf, len))
	{
		if (peer->state == WD_PEER_ACTIVE)
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

	pgstat_clear_backend_activity_snapshot();
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
		*is_ip = wd_sockaddr_to_addr(&be->st_clientaddr.addr, addr);
		break;
	}
	pgstat_clear_backend_activity_snapshot();
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
	WatchdogRegistration *regs;
	int			free_entry = -1;
	int			pid = (int) session->backend_pid;

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
		LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		regs = WD_REGISTRATIONS(wd_shared);
		for (int i = 0; i < wd_shared->max_registrations; i++)
		{
			if (regs[i].pid == pid)
			{
				free_entry = i;
				break;
			}
			if (regs[i].pid == 0 && free_entry < 0)
				free_entry = i;
		}
		if (free_entry < 0)
		{
			/* drop registrations of sessions that have ended */
			for (int i = 0; i < wd_shared->max_registrations; i++)
			{
				if (BackendPidGetProc(regs[i].pid) == NULL)
				{
					memset(&regs[i], 0, sizeof(regs[i]));
					if (free_entry < 0)
						free_entry = i;
				}
			}
		}
		if (free_entry >= 0)
		{
			regs[free_entry].pid = pid;
			regs[free_entry].slot = peer->slot;
			regs[free_entry].generation = peer->generation;
			regs[free_entry].port = actual.port;
		}
		LWLockRelease(wd_shared->lock);
		if (free_entry < 0)
			snprintf(reason, sizeof(reason),
					 "the registration table is full");
	}

	if (reason[0] != '\0')
		ereport(LOG,
				(errmsg("watchdog rejected a session registration from conmgr at %s",
						peer->desc),
				 errdetail("%s.", reason)));
	else
		ereport(DEBUG1,
				(errmsg_internal("watchdog: conmgr at %s registered backend %d (port %u)",
								 peer->desc, pid, (unsigned) actual.port)));
}

/* Forget a registration (the application closed its session). */
static void
wd_peer_unregister(WdPeer *peer, const CmProtoSession *session)
{
	WatchdogRegistration *regs;
	bool		found = false;

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	regs = WD_REGISTRATIONS(wd_shared);
	for (int i = 0; i < wd_shared->max_registrations; i++)
	{
		if (regs[i].pid != 0 &&
			regs[i].pid == (int32) session->backend_pid &&
			regs[i].slot == peer->slot &&
			regs[i].generation == peer->generation)
		{
			memset(&regs[i], 0, sizeof(regs[i]));
			found = true;
			break;
		}
	}
	LWLockRelease(wd_shared->lock);

	ereport(DEBUG1,
			(errmsg_internal("watchdog: conmgr at %s unregistered backend %u%s",
							 peer->desc, session->backend_pid,
							 found ? "" : " (was not registered)")));
}

/* Free the peer's slot and its registrations, without termination. */
static void
wd_peer_release_slot(WdPeer *peer)
{
	if (peer->slot < 0)
		return;
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	if (wd_shared->slots[peer->slot].generation == peer->generation &&
		wd_shared->slots[peer->slot].state == WD_SLOT_ACTIVE)
	{
		wd_registrations_drop_slot(peer->slot, peer->generation);
		wd_shared->slots[peer->slot].state = WD_SLOT_FREE;
	}
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
		ereport(LOG,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("heartbeat connection from %s did not answer the authentication challenge within %d ms",
						peer->desc, wd_hello_timeout)));
		wd_peer_refuse(peer, CM_REASON_PROTOCOL, "no answer to the authentication challenge in time");
		return;
	}
	if (peer->state == WD_PEER_PENDING)
	{
		if (peer->bytes_in > 0)
			ereport(LOG,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("heartbeat connection from %s sent no complete hello within %d ms",
							peer->desc, wd_hello_timeout)));
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

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_ATTRIBUTES;
	msg.u.attributes.attrs = attrs;
	len = cm_proto_encode(CM_DIR_TO_CONMGR_HB, &msg, buf, sizeof(buf));
	if (len == 0 || !wd_peer_send(peer, buf, len))
	{
		if (peer->state == WD_PEER_ACTIVE)
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

/* Earliest reconnect deadline of a RECONNECTING slot (monotonic ms). */
static int64 wd_reconnect_next = PG_INT64_MAX;

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
		{
			slot->state = WD_SLOT_RECONNECTING;
			slot->reconnect_deadline = now + slot->server_timeout;
		}
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

	if (now < wd_reconnect_next)
		return;
	wd_reconnect_next = PG_INT64_MAX;
	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];
		char		host[64];

		if (slot->state != WD_SLOT_RECONNECTING)
			continue;
		if (slot->reconnect_deadline > now)
		{
			wd_reconnect_next = Min(wd_reconnect_next, slot->reconnect_deadline);
			continue;
		}
		wd_slot_mark_lost(slot, CM_REASON_TIMEOUT);
		lost++;
		wd_addr_host_string(&slot->addr, host, sizeof(host));
		ereport(LOG,
				(errmsg("conmgr \"%s\" at %s lost: it did not reconnect within %u ms after the watchdog restarted",
						slot->name, host, slot->server_timeout),
				 errdetail("Its sessions will be terminated (watchdog.termination_mode = %s).",
						   wd_termination_mode == WD_TERMINATE_PRECISE ?
						   "precise" : "address")));
	}
	LWLockRelease(wd_shared->lock);
	if (lost > 0)
		wd_wake_terminator();
}

/*
 * A welcomed peer that held a slot under an earlier watchdog process (same
 * address, same name) releases that slot: it came back.  Caller holds the
 * lock exclusively; returns true when one was released.
 */
static bool
wd_slots_release_reconnected(const CmProtoAddr *addr, const char *name)
{
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		WatchdogPeerSlot *slot = &wd_shared->slots[i];

		if (slot->state != WD_SLOT_RECONNECTING ||
			slot->addr.family != addr->family ||
			memcmp(slot->addr.addr, addr->addr, addr->family == 4 ? 4 : 16) != 0 ||
			strcmp(slot->name, name) != 0)
			continue;
		wd_registrations_drop_slot(i, slot->generation);
		slot->state = WD_SLOT_FREE;
		return true;
	}
	return false;
}
