/*-------------------------------------------------------------------------
 *
 * make_corpus.c
 *	  Writes the generated seeds of the fuzz targets: a valid frame of
 *	  every message type of every protocol direction (and a few frames in
 *	  a row, as a reader receives them), greetings, the first packets
 *	  applications send to conmgr, and heartbeat connections for the
 *	  watchdog_peer target.  Built with the product's own encoders, so the
 *	  seeds follow the protocol as the code speaks it.
 *
 *	make_corpus DIRECTORY     (writes DIRECTORY/TARGET/NAME; deterministic)
 *
 * The seeds of the config and secret targets are written by hand.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/make_corpus.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm_protocol.h"
#include "sample_msgs.h"

static const char *topdir;

/* A seed being assembled from one or more pieces. */
typedef struct Seed
{
	uint8_t		buf[8192];
	size_t		len;
} Seed;

static void
die(const char *what)
{
	fprintf(stderr, "make_corpus: %s\n", what);
	exit(1);
}

static void
put_seed(const char *target, const char *name, const Seed *s)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", topdir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", topdir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0)
		die(path);
}

/* Append the encoding of msg for dir. */
static void
add_msg(Seed *s, CmProtoDir dir, const CmProtoMsg *msg)
{
	size_t		n = cm_proto_encode(dir, msg, s->buf + s->len, sizeof(s->buf) - s->len);

	if (n == 0)
		die("a seed message does not encode");
	s->len += n;
}

static void
add_bytes(Seed *s, const void *p, size_t n)
{
	if (sizeof(s->buf) - s->len < n)
		die("seed too long");
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void
add_u32(Seed *s, uint32_t v)
{
	uint8_t		b[4] = {(uint8_t) (v >> 24), (uint8_t) (v >> 16),
	(uint8_t) (v >> 8), (uint8_t) v};

	add_bytes(s, b, 4);
}

/*
 * The seeds of a frame target: each message alone, and some of them in a
 * row in the seed "stream", as a reader receives them.
 */
typedef struct FrameTarget
{
	const char *name;
	CmProtoDir	dir;
	Seed		stream;
} FrameTarget;

#define ALONE		false
#define IN_STREAM	true

/* Write msg alone as the seed name; IN_STREAM: also append it to the stream. */
static void
frame_seed(FrameTarget *t, const char *name, const CmProtoMsg *msg, bool in_stream)
{
	Seed		s = {.len = 0};

	add_msg(&s, t->dir, msg);
	put_seed(t->name, name, &s);
	if (in_stream)
		add_msg(&t->stream, t->dir, msg);
}

/* The four frame targets; their notices and streams: notices_and_streams(). */
static FrameTarget wd_frames = {.name = "frames_to_watchdog", .dir = CM_DIR_TO_WATCHDOG};
static FrameTarget hb_frames = {.name = "frames_to_conmgr_hb", .dir = CM_DIR_TO_CONMGR_HB};
static FrameTarget app_frames = {.name = "frames_to_conmgr_app", .dir = CM_DIR_TO_CONMGR_APP};
static FrameTarget client_frames = {.name = "frames_to_client", .dir = CM_DIR_TO_CLIENT};

/* conmgr -> watchdog */
static void
to_watchdog(void)
{
	FrameTarget *t = &wd_frames;
	CmProtoMsg	m;

	sample_hello(&m, CM_PROTO_AUTH_NONE, 0, 0, "app-host-1");
	frame_seed(t, "hello", &m, IN_STREAM);
	sample_hello(&m, CM_PROTO_AUTH_HMAC_SHA256, CM_PROTO_MAX_NONCE, 0xa5, "app-host-1");
	frame_seed(t, "hello-auth", &m, ALONE);

	sample_nonce(&m, CM_MSG_PROOF, CM_PROTO_MAX_NONCE, 0x5a);
	frame_seed(t, "proof", &m, ALONE);

	sample_heartbeat(&m, CM_MSG_HEARTBEAT, 7, 0x0102030405060708ULL, 0);
	frame_seed(t, "heartbeat", &m, IN_STREAM);

	sample_session(&m, CM_MSG_REGISTER, 4242, "192.0.2.1", 50000);
	frame_seed(t, "register-ipv4", &m, IN_STREAM);
	sample_session(&m, CM_MSG_UNREGISTER, 4242, "2001:db8::1", 50001);
	frame_seed(t, "unregister-ipv6", &m, ALONE);
}

/* watchdog -> conmgr */
static void
to_conmgr_hb(void)
{
	FrameTarget *t = &hb_frames;
	CmProtoMsg	m;

	sample_nonce(&m, CM_MSG_CHALLENGE, CM_PROTO_MAX_NONCE, 0x3c);
	frame_seed(t, "challenge", &m, ALONE);

	sample_welcome(&m, 1000, 5000, CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY);
	frame_seed(t, "welcome", &m, IN_STREAM);
	m.u.welcome.proof_len = CM_PROTO_MAX_NONCE;
	memset(m.u.welcome.proof, 0xc3, CM_PROTO_MAX_NONCE);
	frame_seed(t, "welcome-auth", &m, ALONE);

	sample_heartbeat(&m, CM_MSG_HEARTBEAT_REPLY, 7, 0x0102030405060708ULL,
					 CM_PROTO_ATTR_READ_ONLY);
	frame_seed(t, "heartbeat-reply", &m, IN_STREAM);

	sample_msg(&m, CM_MSG_ATTRIBUTES);	/* attributes 0: a writable primary */
	frame_seed(t, "attributes", &m, IN_STREAM);
}

/* client library -> conmgr */
static void
to_conmgr_app(void)
{
	FrameTarget *t = &app_frames;
	CmProtoMsg	m;

	sample_route(&m, CM_TSA_READ_WRITE, 99, "psql");
	frame_seed(t, "route", &m, IN_STREAM);
	sample_route(&m, CM_TSA_PREFER_STANDBY, 99, "");
	frame_seed(t, "route-prefer-standby", &m, ALONE);

	sample_app_register(&m, 4242, "192.0.2.1", 50000);
	frame_seed(t, "register-ipv4", &m, IN_STREAM);
	sample_app_register(&m, 4242, "2001:db8::1", 50001);
	frame_seed(t, "register-ipv6", &m, ALONE);
}

/* conmgr -> client library */
static void
to_client(void)
{
	FrameTarget *t = &client_frames;
	CmProtoMsg	m;

	sample_instance(&m, 1, CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY, "192.0.2.11", 5432);
	frame_seed(t, "instance", &m, IN_STREAM);
}

/*
 * The notices of every direction, each alone and some in its stream after
 * the other messages; then the streams.
 */
static void
notices_and_streams(void)
{
	static const struct
	{
		FrameTarget *t;
		const char *name;
		uint8_t		type;
		uint16_t	reason;
		const char *text;
		bool		in_stream;
	}			notices[] = {
		{&wd_frames, "goodbye", CM_MSG_GOODBYE, CM_REASON_SHUTDOWN, "conmgr is shutting down", IN_STREAM},
		{&hb_frames, "shutdown", CM_MSG_SHUTDOWN, CM_REASON_SHUTDOWN, "the server is shutting down", ALONE},
		{&hb_frames, "refuse", CM_MSG_REFUSE, CM_REASON_TOO_MANY, "too many heartbeat connections", ALONE},
		{&hb_frames, "goodbye", CM_MSG_GOODBYE, CM_REASON_RESTART, "", IN_STREAM},
		{&client_frames, "no-instance", CM_MSG_NO_INSTANCE, CM_REASON_NO_INSTANCE,
		"conmgr on port 27546 knows no live instance matching target_session_attrs=read-write", ALONE},
		{&client_frames, "failure", CM_MSG_FAILURE, CM_REASON_TIMEOUT,
		"heartbeat not answered within 3000 ms", IN_STREAM},
		{&client_frames, "refuse", CM_MSG_REFUSE, CM_REASON_PROTOCOL,
		"unexpected route request message", ALONE},
	};
	FrameTarget *targets[] = {&wd_frames, &hb_frames, &app_frames, &client_frames};
	CmProtoMsg	m;

	for (size_t i = 0; i < sizeof(notices) / sizeof(notices[0]); i++)
	{
		sample_notice(&m, notices[i].type, notices[i].reason, notices[i].text);
		frame_seed(notices[i].t, notices[i].name, &m, notices[i].in_stream);
	}
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		put_seed(targets[i]->name, "stream", &targets[i]->stream);
}

/* Answers to the client's GSSENCRequest. */
static void
greeting(void)
{
	const char *t = "greeting";
	Seed		s = {.len = 0};
	CmProtoMsg	m;
	size_t		n;

	n = cm_proto_encode_greeting(s.buf, sizeof(s.buf), "Connection Manager conmgr on port 27546");
	if (n == 0)
		die("greeting does not encode");
	s.len = n;
	put_seed(t, "conmgr", &s);

	/* the greeting, then conmgr's answer to the route request */
	sample_instance(&m, 0, 0, "db1", 5432);
	add_msg(&s, CM_DIR_TO_CLIENT, &m);
	put_seed(t, "conmgr-then-instance", &s);

	s.len = cm_proto_encode_pg_error(s.buf, sizeof(s.buf), "08P01",
									 "unsupported frontend protocol 1234.5680");
	if (s.len == 0)
		die("error response does not encode");
	put_seed(t, "postgresql-before-12", &s);

	s.len = 0;
	add_bytes(&s, "N", 1);
	put_seed(t, "postgresql-no-gss", &s);
	s.len = 0;
	add_bytes(&s, "G", 1);
	put_seed(t, "postgresql-gss", &s);
}

/* First packets an application sends to conmgr. */
static void
pg_startup(void)
{
	const char *t = "pg_startup";
	static const char params[] = "user\0alice\0database\0app\0application_name\0psql\0";
	Seed		s = {.len = 0};
	Seed		startup = {.len = 0};
	CmProtoMsg	m;

	s.len = cm_proto_encode_gss_request(s.buf, sizeof(s.buf));
	put_seed(t, "gssenc-request", &s);

	/* libpqcm's GSSENCRequest with its route request right behind it */
	sample_route(&m, 0, 99, "");
	add_msg(&s, CM_DIR_TO_CONMGR_APP, &m);
	put_seed(t, "gssenc-request-then-route", &s);

	/* a stock client's StartupMessage, protocol 3.0 */
	add_u32(&startup, (uint32_t) (8 + sizeof(params)));
	add_u32(&startup, 3U << 16);
	add_bytes(&startup, params, sizeof(params));	/* ends with two NULs */
	put_seed(t, "startup-3.0", &startup);

	s.len = 0;
	add_u32(&s, 8);
	add_u32(&s, CM_PROTO_PG_SSL_CODE);
	put_seed(t, "ssl-request", &s);
	add_bytes(&s, startup.buf, startup.len);
	put_seed(t, "ssl-request-then-startup", &s);

	s.len = 0;
	add_u32(&s, 16);
	add_u32(&s, CM_PROTO_PG_CANCEL_CODE);
	add_u32(&s, 4242);
	add_u32(&s, 0x12345678);
	put_seed(t, "cancel-request", &s);
}

/*
 * watchdog_peer: three settings bytes, then chunks (control byte, u16
 * length, bytes); fuzz_watchdog_peer.c documents the layout.
 */
#define WP_PLAYED			0x01	/* the harness plays the handshake */
#define WP_AUTH_ONE			(1 << 1)	/* the server has one secret */
#define WP_AUTH_TWO			(2 << 1)
#define WP_PRECISE			0x10
#define WP_IPV6				(1 << 5)
#define WP_MAPPED			(2 << 5)
#define WP_END_SHUTDOWN		(1 << 4)	/* byte 2: how the connection ends */
#define WP_END_RESTART		(2 << 4)
#define WP_END_TIMEOUT		(3 << 4)
#define WP_BREAK_FIRST		(1 << 6)	/* byte 2: the socket breaks at once */
#define WP_CLOCK_1S			3		/* control: advance the clock 1000 ms */
#define WP_CLOCK_DAY		7
#define WP_FLIP_ATTRS		0x08
#define WP_RAW				0x10	/* not sealed */
#define WP_BAD_SEQ			0x20
#define WP_BAD_TAG			0x30
#define WP_SPLIT			0x40
#define WP_RELOAD			0x80	/* the next secret configuration */

static void
wp_start(Seed *s, uint8_t b0, uint8_t b1, uint8_t b2)
{
	s->len = 0;
	add_bytes(s, &b0, 1);
	add_bytes(s, &b1, 1);
	add_bytes(s, &b2, 1);
}

static void
wp_chunk(Seed *s, uint8_t ctl, const CmProtoMsg *msg)
{
	uint8_t		frame[CM_PROTO_MAX_MSG];
	size_t		n = cm_proto_encode(CM_DIR_TO_WATCHDOG, msg, frame, sizeof(frame));
	uint8_t		head[3] = {ctl, (uint8_t) (n >> 8), (uint8_t) n};

	if (n == 0)
		die("a seed message does not encode");
	add_bytes(s, head, 3);
	add_bytes(s, frame, n);
}

static void
wp_hello_nonce(Seed *s, uint8_t ctl, uint8_t auth_method, uint8_t nonce_len)
{
	CmProtoMsg	m;

	sample_hello(&m, auth_method, nonce_len, 0xa5, "app-host-1");
	m.u.hello.incarnation = 0x1122334455667788ULL;
	wp_chunk(s, ctl, &m);
}

static void
wp_hello(Seed *s, uint8_t ctl, uint8_t auth_method)
{
	wp_hello_nonce(s, ctl, auth_method,
				   auth_method == CM_PROTO_AUTH_NONE ? 0 : CM_PROTO_MAX_NONCE);
}

static void
wp_proof(Seed *s, uint8_t ctl, uint8_t len)
{
	CmProtoMsg	m;

	sample_nonce(&m, CM_MSG_PROOF, len, 0x5a);
	wp_chunk(s, ctl, &m);
}

/* A chunk without bytes: only its control byte acts. */
static void
wp_nothing(Seed *s, uint8_t ctl)
{
	uint8_t		head[3] = {ctl, 0, 0};

	add_bytes(s, head, 3);
}

static void
wp_heartbeat(Seed *s, uint8_t ctl, uint32_t seq)
{
	CmProtoMsg	m;

	sample_heartbeat(&m, CM_MSG_HEARTBEAT, seq, 1000 * (uint64_t) seq, 0);
	wp_chunk(s, ctl, &m);
}

/* A register ('J') or unregister ('K') of a session from host:port. */
static void
wp_session(Seed *s, uint8_t ctl, uint8_t type, uint32_t pid, const char *host,
		   uint16_t port)
{
	CmProtoMsg	m;

	sample_session(&m, type, pid, host, port);
	wp_chunk(s, ctl, &m);
}

static void
wp_goodbye(Seed *s, uint8_t ctl)
{
	CmProtoMsg	m;

	sample_notice(&m, CM_MSG_GOODBYE, CM_REASON_SHUTDOWN, "conmgr is shutting down");
	wp_chunk(s, ctl, &m);
}

static void
watchdog_peer(void)
{
	const char *t = "watchdog_peer";
	Seed		s;

	/* a plain hello, no authentication, then the connection closes */
	wp_start(&s, 0, 0, 0);
	wp_hello(&s, 0, CM_PROTO_AUTH_NONE);
	put_seed(t, "hello", &s);

	/* the same with heartbeats, an attribute change and a goodbye */
	wp_start(&s, 0, 0, 0);
	wp_hello(&s, WP_SPLIT, CM_PROTO_AUTH_NONE);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_FLIP_ATTRS, 2);
	wp_heartbeat(&s, WP_CLOCK_1S, 3);
	wp_goodbye(&s, 0);
	put_seed(t, "hello-heartbeats", &s);

	/* hello and heartbeats, then silence until conmgr is declared lost */
	wp_start(&s, WP_PRECISE, 0, WP_END_TIMEOUT);
	wp_hello(&s, 0, CM_PROTO_AUTH_NONE);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_session(&s, 0, CM_MSG_REGISTER, 100, "127.0.0.1", 50000);
	put_seed(t, "hello-lost", &s);

	/* heartbeats faster than announced; the first welcome cannot be sent */
	wp_start(&s, 0, 0, 0);
	wp_hello(&s, 0, CM_PROTO_AUTH_NONE);
	for (uint32_t i = 1; i <= 12; i++)
		wp_heartbeat(&s, 0, i);
	put_seed(t, "heartbeats-too-fast", &s);
	wp_start(&s, 0, 0, WP_BREAK_FIRST);
	wp_hello(&s, 0, CM_PROTO_AUTH_NONE);
	put_seed(t, "welcome-not-sent", &s);

	/* a server with a secret: the fuzzer's hello asks for it, a bad proof */
	wp_start(&s, WP_AUTH_ONE, 0, 0);
	wp_hello(&s, 0, CM_PROTO_AUTH_HMAC_SHA256);
	wp_proof(&s, WP_CLOCK_1S, CM_PROTO_MAX_NONCE);
	put_seed(t, "auth-bad-proof", &s);
	wp_start(&s, WP_AUTH_ONE, 0, 0);
	wp_hello(&s, 0, CM_PROTO_AUTH_HMAC_SHA256);
	wp_proof(&s, 0, 16);
	put_seed(t, "auth-short-proof", &s);
	wp_start(&s, WP_AUTH_ONE, 0, 0);
	wp_hello_nonce(&s, 0, CM_PROTO_AUTH_HMAC_SHA256, 16);
	put_seed(t, "auth-short-nonce", &s);
	wp_start(&s, WP_AUTH_ONE, 0, 0);
	wp_hello(&s, 0, CM_PROTO_AUTH_HANDSHAKE_ONLY);
	put_seed(t, "auth-method-1", &s);

	/* the secrets are reloaded between challenge and proof: none left */
	wp_start(&s, WP_AUTH_TWO, 0, 0);
	wp_hello(&s, 0, CM_PROTO_AUTH_HMAC_SHA256);
	wp_nothing(&s, WP_RELOAD);	/* unreadable */
	wp_nothing(&s, WP_RELOAD);	/* every conmgr refused */
	wp_nothing(&s, WP_RELOAD);	/* authentication off */
	wp_proof(&s, 0, CM_PROTO_MAX_NONCE);
	put_seed(t, "auth-reload-before-proof", &s);

	/* authenticated session (played handshake), precise mode, IPv4 */
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE | WP_PRECISE, 0, 0);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_session(&s, 0, CM_MSG_REGISTER, 100, "127.0.0.1", 50000);
	wp_session(&s, 0, CM_MSG_REGISTER, 108, "127.0.0.1", 50008);
	wp_session(&s, 0, CM_MSG_REGISTER, 101, "::ffff:127.0.0.1", 50001);
	wp_heartbeat(&s, WP_CLOCK_1S, 2);
	wp_session(&s, 0, CM_MSG_UNREGISTER, 100, "127.0.0.1", 50000);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_FLIP_ATTRS, 3);
	wp_goodbye(&s, 0);
	put_seed(t, "auth-register-goodbye", &s);

	/* two secrets, IPv6, registrations refused and accepted, lost */
	wp_start(&s, WP_PLAYED | WP_AUTH_TWO | WP_PRECISE | WP_IPV6, 0, 0);
	wp_session(&s, 0, CM_MSG_REGISTER, 103, "::1", 50003);
	wp_session(&s, 0, CM_MSG_REGISTER, 104, "::1", 50004);
	wp_session(&s, 0, CM_MSG_REGISTER, 105, "::1", 50005);
	wp_session(&s, 0, CM_MSG_REGISTER, 109, "::1", 1);
	wp_session(&s, 0, CM_MSG_REGISTER, 106, "::1", 5432);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_SPLIT, 1);
	wp_session(&s, 0, CM_MSG_UNREGISTER, 104, "::1", 50004);
	wp_heartbeat(&s, WP_CLOCK_1S, 2);
	put_seed(t, "auth-ipv6-register-lost", &s);

	/* the registration table fills up (held by a lost peer's sessions) */
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE | WP_PRECISE, 3, 0);
	wp_session(&s, 0, CM_MSG_REGISTER, 100, "127.0.0.1", 50000);
	wp_session(&s, 0, CM_MSG_REGISTER, 101, "127.0.0.1", 50001);
	wp_session(&s, 0, CM_MSG_REGISTER, 102, "127.0.0.1", 50002);
	wp_session(&s, 0, CM_MSG_REGISTER, 108, "127.0.0.1", 50008);
	wp_session(&s, 0, CM_MSG_REGISTER, 110, "127.0.0.1", 50010);
	wp_session(&s, 0, CM_MSG_REGISTER, 107, "127.0.0.1", 50007);
	wp_goodbye(&s, 0);
	put_seed(t, "auth-registrations-full", &s);

	/* frames that fail the integrity check: unsealed, replayed, altered */
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE, 0, 0);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_RAW, 2);
	put_seed(t, "auth-unsealed", &s);
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE, 0, 0);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_BAD_SEQ, 2);
	put_seed(t, "auth-bad-sequence", &s);
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE, 0, 0);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_BAD_TAG, 2);
	put_seed(t, "auth-bad-tag", &s);

	/* back after a watchdog restart; then the server shuts down */
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE | WP_PRECISE, 4, WP_END_SHUTDOWN);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	put_seed(t, "auth-reconnect", &s);

	/* every slot taken; the watchdog process restarts */
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE, 1, WP_END_RESTART);
	put_seed(t, "auth-slots-full", &s);

	/* no authentication, the peer as an IPv4-mapped address, in address mode */
	wp_start(&s, WP_PLAYED | WP_MAPPED, 2, WP_END_RESTART);
	wp_heartbeat(&s, WP_CLOCK_1S, 1);
	wp_heartbeat(&s, WP_CLOCK_DAY, 2);
	put_seed(t, "played-mapped", &s);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
		return 2;
	}
	topdir = argv[1];
	if (mkdir(topdir, 0755) != 0 && errno != EEXIST)
		die(topdir);
	to_watchdog();
	to_conmgr_hb();
	to_conmgr_app();
	to_client();
	notices_and_streams();
	greeting();
	pg_startup();
	watchdog_peer();
	return 0;
}
