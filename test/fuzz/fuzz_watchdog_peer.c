/*-------------------------------------------------------------------------
 *
 * fuzz_watchdog_peer.c
 *	  libFuzzer target: the watchdog's per-peer state machine
 *	  (watchdog/wd_peer.c, with watchdog/wd_slots.c, common/cm_protocol.c
 *	  and common/cm_auth.c), driven as wd_server.c drives it, without a
 *	  server: wd_stubs.c stands in for the rest (see there).
 *
 * One input is one heartbeat connection.  The first three bytes choose
 * the settings:
 *
 *	byte 0	bit 0		the harness plays conmgr's handshake (below)
 *			bits 1-3	the server's secrets (WdFakeAuth, modulo its count)
 *			bit 4		watchdog.termination_mode = precise
 *			bits 5-6	the peer: 127.0.0.1, [::1], ::ffff:127.0.0.1
 *						(accepted as IPv4), 127.0.0.1 again
 *			bit 7		conmgr stops reading after the handshake, and
 *						has left attribute pushes unread until the
 *						output buffer is nearly full
 *	byte 1	bits 0-2	slots held before the peer comes (prefill(),
 *						modulo 5)
 *			bits 3-4	what the log rate limiter answers (WdFakeLog)
 *			bit 5		the random source fails
 *			bit 6		watchdog.timeout_margin is its maximum
 *			bit 7		watchdog.max_heartbeat_connections_per_address = 2
 *	byte 2	bits 0-1	heartbeat interval and timeout of the played hello
 *			bit 2		the played conmgr holds a wrong secret, or asks
 *						for the other authentication method than the
 *						server's setting needs
 *			bit 3		the played hello has no incarnation
 *			bits 4-5	how the connection ends: EOF, server shutdown,
 *						watchdog restart, its deadline passes
 *			bits 6-7	the socket breaks at the 1st, 3rd or 6th send
 *
 * Then chunks, each: a control byte, a big-endian u16 length (modulo
 * 4096), that many bytes.  Control: bits 0-2 advance the clock (0, 1, 100,
 * 1000, 3000, 5001, 60000 ms, one day) before the deadlines are checked
 * and the chunk arrives; bit 3 flips the instance's attributes (found by
 * the watchdog's periodic check, every watchdog.check_attr_interval, or by
 * the next welcome or heartbeat, which refresh them); bits 4-5, once the session
 * is sealed, how the chunk is sent: sealed as one frame with the next
 * sequence number (the length field is the sealer's), raw, sealed with a
 * wrong sequence number, or sealed with one bit flipped afterwards; bit 6
 * delivers it in two reads; bit 7 reloads the secrets (the next WdFakeAuth).
 *
 * The played handshake: the harness sends a hello (conmgr's, with the
 * server's secret when it has one), reads the challenge, answers with the
 * proof computed as conmgr/cm_instance.c does, checks the welcome's proof
 * and derives the session keys; the chunks are then the frames of the
 * session.  Without it, the chunks are the connection's bytes from the
 * start.
 *
 * Checked, beyond "no crash, no leak, no undefined behaviour": no ERROR
 * and no failed assertion (USE_ASSERT_CHECKING); the LWLock never taken
 * twice nor held on return; the pending/active counters match the peer's
 * state; an active peer holds its own ACTIVE slot; the reconnect timer is
 * never later than a RECONNECTING slot's deadline; every frame the
 * watchdog sends decodes (and, sealed, opens in sequence), nothing follows
 * a refusal, shutdown or goodbye, heartbeat replies answer the heartbeats
 * read, in order, and every attribute the watchdog reports is the
 * instance's; a welcome comes only when the server's
 * settings allow it (never when a secret is required and the proof was not
 * the harness's), and its proof verifies; a registration of this peer
 * names a backend connected from the peer's address and the registered
 * port, and one that conmgr asked for (decoded by wd_peer.c, seen through
 * -Wl,--wrap=cm_proto_next) and has not unregistered; at the end no slot the peer claimed is left ACTIVE, other peers'
 * ACTIVE slots are untouched, and every registration belongs to a slot of
 * its generation that still awaits or holds a conmgr.
 *
 * With FUZZ_STATS set, how far the inputs got is printed at exit; with
 * FUZZ_VERBOSE, the watchdog's log.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_watchdog_peer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "watchdog.h"
#include "wd_stubs.h"
#include "fuzz_common.h"

#define CONMGR_NAME			"fuzz-conmgr"
#define CONMGR_INCARNATION	UINT64CONST(0x1122334455667788)

/* conmgr's side of the connection, as the harness plays it */
typedef struct Conmgr
{
	bool		played;			/* the harness sent hello and proof */
	uint16		version;		/* the highest version its hello names */
	const CmAuthSecret *secret; /* the secret conmgr proves, or NULL */
	CmAuthTranscript transcript;
	bool		challenged;
	uint8		challenge[CM_PROTO_MAX_MSG];	/* the challenge frame */
	size_t		challenge_len;
	bool		welcomed;
	bool		sealed;
	CmAuthKeys	keys;
	uint64		seq_in;
	uint64		seq_out;
	size_t		pos;			/* read up to here in wd_fake.received */
	bool		ended;			/* received a refusal, shutdown or goodbye */
} Conmgr;

static Conmgr cm;

/* How far the inputs got (FUZZ_STATS): runs that reached each point. */
typedef enum Milestone
{
	M_CHALLENGED,
	M_WELCOMED,
	M_SEALED,
	M_HEARTBEAT_REPLY,
	M_ATTRIBUTES,
	M_REGISTERED,
	M_REFUSED,
	M_SHUTDOWN,
	M_GOODBYE,
	M_COUNT
} Milestone;

static const char *const milestone_names[M_COUNT] = {
	"challenged", "welcomed", "welcomed and sealed", "heartbeat replies",
	"attribute pushes", "registrations held", "refused", "shutdown notices",
	"goodbyes from the watchdog"
};
static uint64 runs;
static uint64 milestone_runs[M_COUNT];
static bool reached[M_COUNT];

/*
 * The sessions conmgr asked to register (pid, client port) from the peer's
 * own address and has not unregistered: every registration of this peer
 * must be one of them.  Recorded as wd_peer.c decodes the frames.
 */
typedef struct Claim
{
	uint32		pid;
	uint16		port;
} Claim;

static Claim claims[64];
static int	nclaims;
static bool claims_overflow;

/* The heartbeats the watchdog read and has not answered yet, in order. */
static CmProtoHeartbeat heartbeats[256];
static int	nheartbeats;
static int	heartbeats_answered;
static bool heartbeats_overflow;

/* The slot this peer claimed, and the slots as they were before. */
static int	claimed_slot;
static uint32 claimed_generation;
static WatchdogPeerSlot slots_before[WD_FAKE_SLOTS];

static void
print_stats(void)
{
	fprintf(stderr, "watchdog_peer: %llu runs\n", (unsigned long long) runs);
	for (int i = 0; i < M_COUNT; i++)
		fprintf(stderr, "  %8llu %s\n", (unsigned long long) milestone_runs[i],
				milestone_names[i]);
	wd_fake_print_log_sites();
}

/* the real frame intake and its wrapper have cm_proto_next's type */
extern __typeof__(cm_proto_next) __real_cm_proto_next, __wrap_cm_proto_next;

/*
 * cm_proto_next, wrapped at link time (-Wl,--wrap=cm_proto_next): note
 * the registrations and unregistrations the watchdog reads (sealed frames
 * too: cm_sealed_next decodes what it opened with cm_proto_next).
 */
CmProtoStatus
__wrap_cm_proto_next(CmProtoDir dir, const uint8_t *buf, size_t len,
					 size_t *frame_len, CmProtoMsg *msg, const char **reason)
{
	static const uint8 mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	CmProtoStatus st = __real_cm_proto_next(dir, buf, len, frame_len, msg, reason);
	CmProtoAddr client;
	int			found = -1;

	if (st != CM_PROTO_OK || dir != CM_DIR_TO_WATCHDOG || wd_fake.peer == NULL)
		return st;
	if (msg->type == CM_MSG_HEARTBEAT && nheartbeats < (int) lengthof(heartbeats))
		heartbeats[nheartbeats++] = msg->u.heartbeat;
	else if (msg->type == CM_MSG_HEARTBEAT)
		heartbeats_overflow = true;
	if (msg->type != CM_MSG_REGISTER && msg->type != CM_MSG_UNREGISTER)
		return st;
	client = msg->u.session.client;
	if (client.family == 6 && memcmp(client.addr, mapped_prefix, 12) == 0)
	{
		memmove(client.addr, client.addr + 12, 4);
		client.family = 4;
	}
	if (!cm_proto_addr_equal(&client, &wd_fake.peer->addr))
		return st;
	for (int i = 0; i < nclaims && found < 0; i++)
		if (claims[i].pid == msg->u.session.backend_pid && claims[i].port == client.port)
			found = i;
	if (msg->type == CM_MSG_REGISTER && found < 0)
	{
		if (nclaims == lengthof(claims))
			claims_overflow = true;
		else
		{
			claims[nclaims].pid = msg->u.session.backend_pid;
			claims[nclaims++].port = client.port;
		}
	}
	else if (msg->type == CM_MSG_UNREGISTER && found >= 0)
		claims[found] = claims[--nclaims];
	return st;
}

/* ----------------------------------------------------------------
 * Shared state before the peer connects
 * ----------------------------------------------------------------
 */

static void
fill_slot(int i, const CmProtoAddr *addr, const char *name, uint64 incarnation)
{
	WatchdogPeerSlot *slot = &wd_shared->slots[i];

	wd_slot_claim(slot);
	slot->version = CM_PROTO_VERSION_1_0;
	slot->addr = *addr;
	slot->heartbeat_interval = 1000;
	slot->heartbeat_timeout = 3000;
	slot->server_timeout = 5000;
	slot->incarnation = incarnation;
	snprintf(slot->name, sizeof(slot->name), "%s", name);
}

static void
other_addr(CmProtoAddr *addr, int n)
{
	memset(addr, 0, sizeof(*addr));
	addr->family = 4;
	addr->addr[0] = 192;
	addr->addr[2] = 2;
	addr->addr[3] = (uint8) (10 + n);
	addr->port = 40000;
}

static void
add_registration(int pid, int slot, uint16 port)
{
	if (wd_registration_add(pid, slot, wd_shared->slots[slot].generation, port) !=
		WD_REGISTRATION_ADDED)
		fuzz_fail("prefill: registration table full");
}

/*
 * Slots held before this peer comes, in one of five situations:
 *	0: none;
 *	1: every slot held by a connected conmgr of another host;
 *	2: two slots held by conmgrs of the peer's own address, one lost slot
 *	   with registrations of sessions that have ended;
 *	3: two slots kept for the view (TERMINATED, the second older), one
 *	   connected conmgr, one lost peer with six registrations, two of
 *	   sessions that have ended;
 *	4: the peer's own slot from a previous watchdog process (same address,
 *	   name and incarnation; RECONNECTING) with a registration, and another
 *	   RECONNECTING slot whose deadline comes sooner.
 * Slots of a previous watchdog process are ACTIVE when
 * wd_slots_adopt_previous runs, as after an exit that skipped wd_on_exit.
 */
static void
prefill(int situation, const CmProtoAddr *peer_addr)
{
	CmProtoAddr other;
	int64		now = wd_now_ms();

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	if (situation == 4)
	{
		fill_slot(0, peer_addr, CONMGR_NAME, CONMGR_INCARNATION);
		add_registration(peer_addr->family == 4 ? 100 : 103, 0,
						 peer_addr->family == 4 ? 50000 : 50003);
		other_addr(&other, 1);
		fill_slot(1, &other, "gone-conmgr", 7);
		wd_shared->slots[1].server_timeout = 2000;
		add_registration(900, 1, 51000);
	}
	LWLockRelease(wd_shared->lock);

	/* a new watchdog process starts; this also resets its reconnect timer */
	wd_slots_adopt_previous(now);

	LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
	switch (situation)
	{
		case 1:
			for (int i = 0; i < WD_FAKE_SLOTS; i++)
			{
				other_addr(&other, i);
				fill_slot(i, &other, "other-conmgr", 0);
			}
			add_registration(105, 0, 50005);
			break;
		case 2:
			fill_slot(0, peer_addr, "sibling-conmgr", 1);
			fill_slot(1, peer_addr, "sibling-conmgr", 2);
			other_addr(&other, 2);
			fill_slot(2, &other, "lost-conmgr", 0);
			add_registration(900, 2, 51000);
			add_registration(901, 2, 51001);
			wd_slot_mark_lost(&wd_shared->slots[2], CM_REASON_TIMEOUT);
			break;
		case 3:
			for (int i = 0; i < 2; i++)
			{
				other_addr(&other, i);
				fill_slot(i, &other, "terminated-conmgr", 0);
				wd_slot_mark_lost(&wd_shared->slots[i], CM_REASON_TIMEOUT);
				wd_slot_take(&wd_shared->slots[i]);
				wd_slot_mark_terminated(i, wd_shared->slots[i].generation, 1);
				wd_shared->slots[i].terminated_at -= i;
			}
			other_addr(&other, 2);
			fill_slot(2, &other, "other-conmgr", 0);
			other_addr(&other, 3);
			fill_slot(3, &other, "lost-conmgr", 0);
			add_registration(900, 3, 51000);
			add_registration(901, 3, 51001);
			add_registration(103, 3, 50003);
			add_registration(104, 3, 50004);
			add_registration(109, 3, 50009);
			add_registration(105, 3, 50005);
			wd_slot_mark_lost(&wd_shared->slots[3], CM_REASON_CONN_LOST);
			break;
		default:
			break;
	}
	LWLockRelease(wd_shared->lock);
	memcpy(slots_before, wd_shared->slots, sizeof(slots_before));
}

/* ----------------------------------------------------------------
 * Checks
 * ----------------------------------------------------------------
 */

/* Is the backend of this registration one of the peer's sessions? */
static void
check_own_registration(const WdPeer *peer, const WatchdogRegistration *reg)
{
	bool		claimed = claims_overflow;

	for (int i = 0; i < nclaims; i++)
		if (claims[i].pid == (uint32) reg->pid && claims[i].port == reg->port)
			claimed = true;
	FUZZ_CHECK(claimed, "backend %d (port %u) is registered, but conmgr did not ask for it or unregistered it",
			   reg->pid, reg->port);
	for (int i = 0; i < wd_fake_nbackends; i++)
	{
		const WdFakeBackend *b = &wd_fake_backends[i];
		struct sockaddr_storage ss;
		CmProtoAddr addr;

		if (b->pid != reg->pid)
			continue;
		FUZZ_CHECK(b->type == B_BACKEND || b->type == B_WAL_SENDER,
				   "registered process %d is not a client backend", reg->pid);
		FUZZ_CHECK(b->family == AF_INET || b->family == AF_INET6,
				   "registered backend %d is not a TCP session", reg->pid);
		memset(&ss, 0, sizeof(ss));
		if (b->family == AF_INET)
		{
			struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

			sin->sin_family = AF_INET;
			sin->sin_port = htons(b->port);
			inet_pton(AF_INET, b->host, &sin->sin_addr);
		}
		else
		{
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(b->port);
			inet_pton(AF_INET6, b->host, &sin6->sin6_addr);
		}
		cm_net_addr_from_sockaddr((struct sockaddr *) &ss, &addr);
		FUZZ_CHECK(cm_proto_addr_equal(&addr, &peer->addr),
				   "registered backend %d is connected from %s, not from the peer %s",
				   reg->pid, b->host, peer->desc);
		FUZZ_CHECK(reg->port == b->port,
				   "backend %d registered with port %u, connected from port %u",
				   reg->pid, reg->port, b->port);
		return;
	}
	fuzz_fail("registered PID %d is not in the backend status array", reg->pid);
}

/* After every call into wd_peer.c. */
static void
check_peer(WdPeer *peer)
{
	WatchdogRegistration *regs = WD_REGISTRATIONS(wd_shared);

	FUZZ_CHECK(wd_fake.lock_mode == 0, "the watchdog's lock is still held");
	for (int i = 0; i < wd_shared->max_slots; i++)
		if (wd_shared->slots[i].state == WD_SLOT_RECONNECTING)
			FUZZ_CHECK(wd_slots_reconnect_next() <= wd_shared->slots[i].reconnect_deadline,
					   "slot %d waits for a reconnection until %lld, the timer is set for %lld",
					   i, (long long) wd_shared->slots[i].reconnect_deadline,
					   (long long) wd_slots_reconnect_next());
	FUZZ_CHECK(wd_pending_count == (peer->state == WD_PEER_PENDING ? 1 : 0) &&
			   wd_active_count == (peer->state == WD_PEER_ACTIVE ? 1 : 0),
			   "counters pending %d, active %d for a peer in state %d",
			   wd_pending_count, wd_active_count, peer->state);
	if (peer->state == WD_PEER_CLOSED)
		return;
	FUZZ_CHECK(peer->inlen < sizeof(peer->inbuf),
			   "an open peer's input buffer is full");
	FUZZ_CHECK(!peer->sealed || peer->authenticated,
			   "the session is sealed without authentication");
	if (peer->state == WD_PEER_PENDING)
	{
		FUZZ_CHECK(peer->slot == -1, "a pending peer holds slot %d", peer->slot);
		return;
	}
	FUZZ_CHECK(peer->slot >= 0 && peer->slot < wd_shared->max_slots,
			   "an active peer has slot %d", peer->slot);
	FUZZ_CHECK(wd_shared->slots[peer->slot].state == WD_SLOT_ACTIVE &&
			   wd_shared->slots[peer->slot].generation == peer->generation,
			   "an active peer's slot %d is in state %d, generation %u (peer's %u)",
			   peer->slot, wd_shared->slots[peer->slot].state,
			   wd_shared->slots[peer->slot].generation, peer->generation);
	if (claimed_slot < 0)
	{
		claimed_slot = peer->slot;
		claimed_generation = peer->generation;
	}
	FUZZ_CHECK(claimed_slot == peer->slot && claimed_generation == peer->generation,
			   "an active peer moved from slot %d to %d", claimed_slot, peer->slot);
	for (int i = 0; i < wd_shared->max_registrations; i++)
	{
		if (regs[i].pid == 0 || regs[i].slot != peer->slot ||
			regs[i].generation != peer->generation)
			continue;
		check_own_registration(peer, &regs[i]);
		reached[M_REGISTERED] = true;
	}
}

/* At the end: what the connection leaves in shared memory. */
static void
check_shared(bool process_exited)
{
	WatchdogRegistration *regs = WD_REGISTRATIONS(wd_shared);

	FUZZ_CHECK(wd_fake.lock_mode == 0, "the watchdog's lock is still held");
	for (int i = 0; i < wd_shared->max_slots; i++)
	{
		const WatchdogPeerSlot *slot = &wd_shared->slots[i];
		const WatchdogPeerSlot *before = &slots_before[i];

		if (slot->state == WD_SLOT_ACTIVE)
			FUZZ_CHECK(before->state == WD_SLOT_ACTIVE &&
					   before->generation == slot->generation,
					   "slot %d is left ACTIVE (generation %u) after the peer closed",
					   i, slot->generation);
		if (!process_exited && before->state == WD_SLOT_ACTIVE)
			FUZZ_CHECK(slot->state == WD_SLOT_ACTIVE &&
					   slot->generation == before->generation,
					   "another conmgr's slot %d went from ACTIVE to state %d",
					   i, slot->state);
	}
	for (int i = 0; i < wd_shared->max_registrations; i++)
	{
		const WatchdogPeerSlot *slot;

		if (regs[i].pid == 0)
			continue;
		FUZZ_CHECK(regs[i].slot >= 0 && regs[i].slot < wd_shared->max_slots,
				   "registration of %d names slot %d", regs[i].pid, regs[i].slot);
		slot = &wd_shared->slots[regs[i].slot];
		FUZZ_CHECK(slot->generation == regs[i].generation &&
				   (slot->state == WD_SLOT_ACTIVE ||
					slot->state == WD_SLOT_RECONNECTING ||
					slot->state == WD_SLOT_LOST ||
					slot->state == WD_SLOT_TERMINATING),
				   "registration of %d (slot %d, generation %u) outlived its peer: slot in state %d, generation %u",
				   regs[i].pid, regs[i].slot, regs[i].generation,
				   slot->state, slot->generation);
	}
}

/* ----------------------------------------------------------------
 * conmgr's side
 * ----------------------------------------------------------------
 */

/* A welcome: check it as conmgr does, and take the session keys. */
static void
conmgr_welcome(const CmProtoWelcome *w, const uint8 *frame, size_t len)
{
	uint8		expected[CM_AUTH_PROOF_LEN];
	CmAuthTranscript t = cm.transcript;
	bool		auth_on = (wd_fake.auth == WD_FAKE_AUTH_ONE ||
						   wd_fake.auth == WD_FAKE_AUTH_TWO);

	FUZZ_CHECK(!cm.welcomed, "a second welcome");
	FUZZ_CHECK(wd_fake.auth != WD_FAKE_AUTH_UNREADABLE &&
			   wd_fake.auth != WD_FAKE_AUTH_REFUSE_ALL,
			   "welcomed while the server refuses every conmgr");
	cm.welcomed = true;
	reached[M_WELCOMED] = true;
	{
		/* the highest version both speak (the hello is the played one, or the input's) */
		uint16		want = Min(wd_fake.peer->hello.max_version, CM_PROTO_VERSION_MAX);

		FUZZ_CHECK(!cm.played || want == cm.version, "the hello kept is not the one sent");
		FUZZ_CHECK(w->version == want, "welcome with version %x, conmgr speaks up to %x",
				   w->version, want);
		cm.version = w->version;
	}
	FUZZ_CHECK(w->attrs == cm_proto_attrs_for_version(cm.version, wd_fake.attrs),
			   "welcome with attributes %u, the instance has %u", w->attrs, wd_fake.attrs);
	FUZZ_CHECK(w->server_timeout_ms == Min((uint64) wd_fake.peer->hello.heartbeat_interval_ms +
										   wd_fake.peer->hello.heartbeat_timeout_ms +
										   wd_timeout_margin, PG_INT32_MAX),
			   "welcome announces a server timeout of %u ms", w->server_timeout_ms);
	if (!auth_on)
	{
		FUZZ_CHECK(w->proof_len == 0, "a welcome with a proof without authentication");
		return;
	}
	FUZZ_CHECK(cm.played && cm.challenged && cm.secret != NULL,
			   "welcomed without the proof of a secret while authentication is required");
	FUZZ_CHECK(w->proof_len == CM_AUTH_PROOF_LEN, "the welcome carries no proof");
	if (!cm_auth_transcript_add(&t, frame, len - (1 + CM_AUTH_PROOF_LEN)) ||
		!cm_auth_watchdog_proof(cm.secret, &t, expected) ||
		!cm_auth_transcript_add(&cm.transcript, frame, len) ||
		!cm_auth_session_keys(cm.secret, &cm.transcript, &cm.keys))
		fuzz_fail("hashing failed");
	FUZZ_CHECK(cm_auth_proof_equal(w->proof, w->proof_len, expected),
			   "the welcome's proof does not verify");
	cm.sealed = true;
	reached[M_SEALED] = true;
}

/* Read every frame the watchdog sent since the last call. */
static void
conmgr_read(void)
{
	if (wd_fake.received_overflow)
		return;					/* frames were dropped: nothing to check */
	while (cm.pos < wd_fake.received_len)
	{
		uint8		frame[CM_PROTO_MAX_MSG];
		const uint8 *p = wd_fake.received + cm.pos;
		size_t		left = wd_fake.received_len - cm.pos;
		size_t		flen = 0;
		size_t		inner;
		const char *reason = NULL;
		CmProtoMsg	msg;
		CmProtoStatus st;

		st = cm_proto_frame_peek(CM_DIR_TO_CONMGR_HB, p, left, &flen, &reason);
		FUZZ_CHECK(st == CM_PROTO_OK, "the watchdog sent %s (%zu bytes at %zu)",
				   st == CM_PROTO_INCOMPLETE ? "part of a frame" : reason,
				   left, cm.pos);
		FUZZ_CHECK(!cm.ended, "the watchdog sent a frame after its last word");
		memcpy(frame, p, flen);
		cm.pos += flen;
		inner = flen;
		if (cm.sealed)
		{
			uint64		seq;

			FUZZ_CHECK(cm_auth_open(cm.keys.to_conmgr, CM_AUTH_CHANNEL_STREAM,
									frame, flen, &seq, &inner),
					   "a frame from the watchdog does not open");
			FUZZ_CHECK(seq == cm.seq_in + 1, "frame %llu from the watchdog after %llu",
					   (unsigned long long) seq, (unsigned long long) cm.seq_in);
			cm.seq_in = seq;
		}
		st = cm_proto_decode(CM_DIR_TO_CONMGR_HB, frame, inner, &msg, &reason);
		FUZZ_CHECK(st == CM_PROTO_OK, "the watchdog sent an invalid frame: %s", reason);
		switch (msg.type)
		{
			case CM_MSG_CHALLENGE:
				FUZZ_CHECK(!cm.challenged && !cm.welcomed, "an unexpected challenge");
				FUZZ_CHECK(msg.u.nonce.len == CM_AUTH_NONCE_LEN, "a short challenge");
				cm.challenged = true;
				memcpy(cm.challenge, frame, flen);
				cm.challenge_len = flen;
				reached[M_CHALLENGED] = true;
				break;
			case CM_MSG_WELCOME:
				conmgr_welcome(&msg.u.welcome, frame, inner);
				break;
			case CM_MSG_HEARTBEAT_REPLY:
				FUZZ_CHECK(cm.welcomed, "a heartbeat reply before the welcome");
				FUZZ_CHECK(heartbeats_overflow ||
						   (heartbeats_answered < nheartbeats &&
							heartbeats[heartbeats_answered].seq == msg.u.heartbeat.seq &&
							heartbeats[heartbeats_answered].echo == msg.u.heartbeat.echo),
						   "heartbeat reply %u does not answer the next heartbeat",
						   msg.u.heartbeat.seq);
				FUZZ_CHECK(msg.u.heartbeat.attrs ==
						   cm_proto_attrs_for_version(cm.version, wd_fake.attrs),
						   "a heartbeat reply with attributes %u, the instance has %u",
						   msg.u.heartbeat.attrs, wd_fake.attrs);
				heartbeats_answered++;
				reached[M_HEARTBEAT_REPLY] = true;
				break;
			case CM_MSG_ATTRIBUTES:
				FUZZ_CHECK(cm.welcomed, "attributes before the welcome");
				FUZZ_CHECK(msg.u.attributes.attrs ==
						   cm_proto_attrs_for_version(cm.version, wd_fake.attrs),
						   "attributes %u pushed, the instance has %u",
						   msg.u.attributes.attrs, wd_fake.attrs);
				reached[M_ATTRIBUTES] = true;
				break;
			case CM_MSG_REFUSE:
				reached[M_REFUSED] = true;
				cm.ended = true;
				break;
			case CM_MSG_SHUTDOWN:
				reached[M_SHUTDOWN] = true;
				cm.ended = true;
				break;
			case CM_MSG_GOODBYE:
				reached[M_GOODBYE] = true;
				cm.ended = true;
				break;
			default:
				fuzz_fail("unexpected message type %c", msg.type);
		}
	}
}

/*
 * Bytes arrive: one read at a time into the input buffer, as wd_server.c's
 * wd_peer_read, each followed by the checks and by conmgr reading.
 */
static void
deliver(WdPeer *peer, const uint8 *p, size_t len)
{
	while (len > 0 && peer->state != WD_PEER_CLOSED)
	{
		size_t		space = sizeof(peer->inbuf) - peer->inlen;
		size_t		n = Min(space, len);

		memcpy(peer->inbuf + peer->inlen, p, n);
		peer->inlen += n;
		peer->bytes_in += n;
		wd_peer_process_input(peer);
		check_peer(peer);
		conmgr_read();
		p += n;
		len -= n;
	}
}

/* conmgr sends one handshake frame (added to its transcript). */
static void
conmgr_send_handshake(WdPeer *peer, const CmProtoMsg *msg)
{
	uint8		buf[CM_PROTO_MAX_MSG];
	size_t		len = cm_proto_encode(CM_DIR_TO_WATCHDOG, msg, buf, sizeof(buf));

	if (len == 0)
		fuzz_fail("a handshake frame does not encode");
	if (cm.secret && !cm_auth_transcript_add(&cm.transcript, buf, len))
		fuzz_fail("hashing failed");
	deliver(peer, buf, len);
}

/* The handshake as conmgr/cm_instance.c runs it. */
static void
conmgr_handshake(WdPeer *peer, uint8 opts)
{
	static const uint32 timing[4][2] = {
		{1000, 3000}, {10, 20}, {1, 2}, {1000, 400000}
	};
	bool		server_auth = (wd_fake.auth == WD_FAKE_AUTH_ONE ||
							   wd_fake.auth == WD_FAKE_AUTH_TWO);
	bool		lie = (opts & 0x04) != 0;
	CmProtoMsg	msg;

	cm.played = true;
	if (server_auth && lie)
		cm.secret = &wd_fake_wrong_secret;
	else if (server_auth)
		cm.secret = &wd_fake_secrets[wd_fake.auth == WD_FAKE_AUTH_TWO ? 1 : 0];
	else if (lie)
		cm.secret = &wd_fake_secrets[0];	/* asks for what the server lacks */

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_HELLO;
	msg.u.hello.magic = CM_PROTO_HELLO_MAGIC;
	msg.u.hello.min_version = CM_PROTO_VERSION_MIN;
	/* an older conmgr: no incarnation, and protocol 1.0 only */
	cm.version = (opts & 0x08) ? CM_PROTO_VERSION_1_0 : CM_PROTO_VERSION_MAX;
	msg.u.hello.max_version = cm.version;
	msg.u.hello.heartbeat_interval_ms = timing[opts & 3][0];
	msg.u.hello.heartbeat_timeout_ms = timing[opts & 3][1];
	msg.u.hello.auth_method = cm.secret ? CM_PROTO_AUTH_HMAC_SHA256 : CM_PROTO_AUTH_NONE;
	if (cm.secret)
	{
		msg.u.hello.nonce_len = CM_AUTH_NONCE_LEN;
		memset(msg.u.hello.nonce, 0xa5, CM_AUTH_NONCE_LEN);
	}
	cm_proto_set_string(&msg.u.hello.name, CONMGR_NAME);
	msg.u.hello.incarnation = (opts & 0x08) ? 0 : CONMGR_INCARNATION;
	conmgr_send_handshake(peer, &msg);

	if (!cm.challenged || cm.ended || peer->state == WD_PEER_CLOSED)
		return;
	FUZZ_CHECK(cm.secret != NULL, "challenged without asking for authentication");
	if (!cm_auth_transcript_add(&cm.transcript, cm.challenge, cm.challenge_len))
		fuzz_fail("hashing failed");
	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_PROOF;
	msg.u.nonce.len = CM_AUTH_PROOF_LEN;
	if (!cm_auth_conmgr_proof(cm.secret, &cm.transcript, msg.u.nonce.data))
		fuzz_fail("hashing failed");
	conmgr_send_handshake(peer, &msg);
}

/* One chunk of the session, sealed or not as its control byte says. */
static void
conmgr_send_chunk(WdPeer *peer, uint8 ctl, const uint8 *data, size_t len)
{
	uint8		buf[4096 + CM_AUTH_SEAL_LEN];
	size_t		n = len;
	int			how = (ctl >> 4) & 3;

	memcpy(buf, data, len);
	if (cm.sealed && how != 1 && len >= CM_PROTO_HEADER_LEN)
	{
		uint64		seq = ++cm.seq_out;

		if (how == 2)
			seq = (len % 2 == 0) ? seq - 1 : seq + 1;	/* replayed or skipped */
		n = cm_auth_seal(cm.keys.to_watchdog, CM_AUTH_CHANNEL_STREAM, seq,
						 buf, len, sizeof(buf));
		if (n == 0)
			n = len;			/* too long to seal: as it is */
		else if (how == 3)
			buf[n - 1 - data[len - 1] % n] ^= (uint8) (1 << (data[len - 2] & 7));
	}
	if (ctl & 0x40)
	{
		deliver(peer, buf, n / 2);
		deliver(peer, buf + n / 2, n - n / 2);
	}
	else
		deliver(peer, buf, n);
}

/* ----------------------------------------------------------------
 * One input
 * ----------------------------------------------------------------
 */

/*
 * The connection ends: 0, conmgr closes it (wd_peer_read at end of file);
 * 1 and 2, the watchdog process exits during a server shutdown or alone
 * (wd_shutdown, then wd_on_exit for every slot, and after a restart the
 * next process adopts the slots); 3, nothing more arrives and the
 * deadline passes.
 */
static void
end_connection(WdPeer *peer, int how)
{
	if (how == 0 && peer->state == WD_PEER_ACTIVE && peer->frames_in == 0)
	{
		wd_peer_release(peer);
		wd_peer_close(peer);
	}
	else if (how == 0 && peer->state == WD_PEER_ACTIVE)
		wd_peer_lost(peer, CM_REASON_CONN_LOST, "connection closed without a goodbye");
	else if (how == 0 && peer->state == WD_PEER_PENDING)
		wd_peer_close(peer);
	else if (how == 1 || how == 2)
	{
		wd_shutting_down = true;
		if (peer->state == WD_PEER_ACTIVE && how == 1)
			wd_peer_shutdown_notice(peer);
		else if (peer->state == WD_PEER_ACTIVE)
			wd_peer_restart_notice(peer);
		else if (peer->state == WD_PEER_PENDING)
			wd_peer_close(peer);
	}
	else if (how == 3 && peer->state != WD_PEER_CLOSED)
	{
		wd_fake.now_ms += 86400000;
		wd_peer_check_deadline(peer, wd_now_ms());
	}
	check_peer(peer);
	conmgr_read();

	if (how == 1 || how == 2)
	{
		LWLockAcquire(wd_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < wd_shared->max_slots; i++)
		{
			WatchdogPeerSlot *slot = &wd_shared->slots[i];

			if (slot->state != WD_SLOT_ACTIVE)
				continue;
			if (how == 1)
				wd_slot_release(i);
			else
				wd_slot_wait_reconnect(slot, wd_now_ms() + slot->server_timeout);
		}
		LWLockRelease(wd_shared->lock);
		if (how == 2)
			wd_slots_adopt_previous(wd_now_ms());
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64 advance[8] = {0, 1, 100, 1000, 3000, 5001, 60000, 86400000};
	static const int break_at[4] = {0, 1, 3, 6};
	static bool registered_atexit = false;
	struct sockaddr_storage ss;
	WdPeer	   *peer;
	size_t		pos = 3;
	int			end_how;
	int64		next_attr_check;

	if (size < 3)
		return 0;
	if (!registered_atexit && getenv("FUZZ_STATS") != NULL)
	{
		atexit(print_stats);
		registered_atexit = true;
	}
	runs++;
	memset(reached, 0, sizeof(reached));

	wd_fake_reset();
	memset(&cm, 0, sizeof(cm));
	claimed_slot = -1;
	claimed_generation = 0;
	nclaims = 0;
	claims_overflow = false;
	nheartbeats = 0;
	heartbeats_answered = 0;
	heartbeats_overflow = false;

	/* settings */
	wd_fake.auth = (WdFakeAuth) (((data[0] >> 1) & 7) % WD_FAKE_AUTH_COUNT);
	wd_termination_mode = (data[0] & 0x10) ? WD_TERMINATE_PRECISE : WD_TERMINATE_ADDRESS;
	wd_fake.log = (WdFakeLog) ((data[1] >> 3) & 3);
	wd_fake.random_fails = (data[1] & 0x20) != 0;
	if (data[1] & 0x40)
		wd_timeout_margin = 3600 * 1000;
	if (data[1] & 0x80)
		wd_max_heartbeat_connections_per_address = 2;
	wd_fake.break_at_send = break_at[data[2] >> 6];
	end_how = (data[2] >> 4) & 3;

	/* the peer, as wd_server.c accepts it */
	memset(&ss, 0, sizeof(ss));
	switch ((data[0] >> 5) & 3)
	{
		case 1:
		case 2:
			{
				struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

				sin6->sin6_family = AF_INET6;
				sin6->sin6_port = htons(40001 + ((data[0] >> 5) & 3) - 1);
				inet_pton(AF_INET6, ((data[0] >> 5) & 3) == 1 ? "::1" : "::ffff:127.0.0.1",
						  &sin6->sin6_addr);
				break;
			}
		default:
			{
				struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

				sin->sin_family = AF_INET;
				sin->sin_port = htons(40000 + ((data[0] >> 5) & 3));
				inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
				break;
			}
	}
	peer = calloc(1, sizeof(WdPeer));
	if (peer == NULL)
		fuzz_fail("out of memory");
	wd_fake.peer = peer;
	peer->sock = PGINVALID_SOCKET;
	peer->state = WD_PEER_PENDING;
	FUZZ_CHECK(cm_net_addr_from_sockaddr((struct sockaddr *) &ss, &peer->addr),
			   "not an IP address");
	peer->slot = -1;
	peer->wait_pos = -1;
	wd_peer_set_deadline(peer, wd_now_ms() + wd_hello_timeout);
	cm_proto_addr_format(&peer->addr, peer->desc, sizeof(peer->desc));
	wd_pending_count++;

	prefill((data[1] & 7) % 5, &peer->addr);

	if (data[0] & 0x01)
		conmgr_handshake(peer, data[2]);
	if (data[0] & 0x80)
	{
		/* conmgr has not read for a while: attribute changes piled up */
		wd_fake.conmgr_reads = false;
		while (peer->state == WD_PEER_ACTIVE &&
			   peer->outlen + 100 < sizeof(peer->outbuf))
		{
			wd_fake.attrs = wd_fake.attrs ? 0 : CM_PROTO_ATTR_STANDBY;
			wd_attrs_refresh();
		}
		check_peer(peer);
	}

	/* the chunks */
	next_attr_check = wd_now_ms() + wd_check_attr_interval;
	while (pos + 3 <= size && peer->state != WD_PEER_CLOSED)
	{
		uint8		ctl = data[pos];
		size_t		len = cm_get_u16(data + pos + 1) & 0x0fff;

		pos += 3;
		len = Min(len, size - pos);
		wd_fake.now_ms += advance[ctl & 7];
		if (ctl & 0x80)
			wd_fake.auth = (WdFakeAuth) ((wd_fake.auth + 1) % WD_FAKE_AUTH_COUNT);
		if (ctl & 0x08)
		{
			/* next of: primary, standby, stopping primary, stopping standby */
			static const uint8 cycle[] = {
				CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY,
				CM_PROTO_ATTR_STOPPING,
				CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY | CM_PROTO_ATTR_STOPPING,
				0};
			int			i;

			for (i = 0; i < 3 && cycle[(i + 3) % 4] != wd_fake.attrs; i++)
				;
			wd_fake.attrs = cycle[i];
		}
		if (wd_now_ms() >= next_attr_check)
		{
			/* the event loop's attribute check (wd_check_attrs) */
			next_attr_check = wd_now_ms() + wd_check_attr_interval;
			wd_attrs_refresh();
			check_peer(peer);
			conmgr_read();
		}
		/* the event loop's deadline checks */
		if (peer->state != WD_PEER_CLOSED)
		{
			wd_peer_check_deadline(peer, wd_now_ms());
			check_peer(peer);
			conmgr_read();
		}
		wd_slots_check_reconnect(wd_now_ms());
		if (peer->state != WD_PEER_CLOSED && len > 0)
			conmgr_send_chunk(peer, ctl, data + pos, len);
		pos += len;
	}

	end_connection(peer, end_how);
	FUZZ_CHECK(peer->state == WD_PEER_CLOSED, "the peer is still open at the end");
	/* slots waiting for a reconnection expire */
	wd_slots_check_reconnect(wd_now_ms() + 86400000);
	check_shared(end_how == 1 || end_how == 2);

	wd_fake.peer = NULL;
	free(peer);
	for (int i = 0; i < M_COUNT; i++)
		milestone_runs[i] += reached[i];
	return 0;
}
