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
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm_protocol.h"

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

/* Write one message alone as a seed. */
static void
one(const char *target, const char *name, CmProtoDir dir, const CmProtoMsg *msg)
{
	Seed		s = {.len = 0};

	add_msg(&s, dir, msg);
	put_seed(target, name, &s);
}

static void
set_addr(CmProtoAddr *a, int family, uint16_t port)
{
	static const uint8_t v4[4] = {192, 0, 2, 1};
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 1};

	memset(a, 0, sizeof(*a));
	a->family = (uint8_t) family;
	memcpy(a->addr, family == 4 ? v4 : v6, family == 4 ? 4 : 16);
	a->port = port;
}

static void
notice(CmProtoMsg *m, uint8_t type, uint16_t reason, const char *text)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->u.notice.reason = reason;
	cm_proto_set_string(&m->u.notice.message, text);
}

/* conmgr -> watchdog */
static void
to_watchdog(void)
{
	const char *t = "frames_to_watchdog";
	const CmProtoDir d = CM_DIR_TO_WATCHDOG;
	CmProtoMsg	hello,
				m;
	Seed		s = {.len = 0};

	memset(&hello, 0, sizeof(hello));
	hello.type = CM_MSG_HELLO;
	hello.u.hello.magic = CM_PROTO_HELLO_MAGIC;
	hello.u.hello.min_version = CM_PROTO_VERSION_MIN;
	hello.u.hello.max_version = CM_PROTO_VERSION_MAX;
	hello.u.hello.heartbeat_interval_ms = 1000;
	hello.u.hello.heartbeat_timeout_ms = 3000;
	hello.u.hello.auth_method = CM_PROTO_AUTH_NONE;
	cm_proto_set_string(&hello.u.hello.name, "app-host-1");
	one(t, "hello", d, &hello);
	add_msg(&s, d, &hello);

	m = hello;
	m.u.hello.auth_method = CM_PROTO_AUTH_HMAC_SHA256;
	m.u.hello.nonce_len = CM_PROTO_MAX_NONCE;
	memset(m.u.hello.nonce, 0xa5, CM_PROTO_MAX_NONCE);
	one(t, "hello-auth", d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_PROOF;
	m.u.nonce.len = CM_PROTO_MAX_NONCE;
	memset(m.u.nonce.data, 0x5a, CM_PROTO_MAX_NONCE);
	one(t, "proof", d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_HEARTBEAT;
	m.u.heartbeat.seq = 7;
	m.u.heartbeat.echo = 0x0102030405060708ULL;
	one(t, "heartbeat", d, &m);
	add_msg(&s, d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_REGISTER;
	m.u.session.backend_pid = 4242;
	set_addr(&m.u.session.client, 4, 50000);
	one(t, "register-ipv4", d, &m);
	add_msg(&s, d, &m);

	m.type = CM_MSG_UNREGISTER;
	set_addr(&m.u.session.client, 6, 50001);
	one(t, "unregister-ipv6", d, &m);

	notice(&m, CM_MSG_GOODBYE, CM_REASON_SHUTDOWN, "conmgr is shutting down");
	one(t, "goodbye", d, &m);
	add_msg(&s, d, &m);
	put_seed(t, "stream", &s);
}

/* watchdog -> conmgr */
static void
to_conmgr_hb(void)
{
	const char *t = "frames_to_conmgr_hb";
	const CmProtoDir d = CM_DIR_TO_CONMGR_HB;
	CmProtoMsg	m;
	Seed		s = {.len = 0};

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_CHALLENGE;
	m.u.nonce.len = CM_PROTO_MAX_NONCE;
	memset(m.u.nonce.data, 0x3c, CM_PROTO_MAX_NONCE);
	one(t, "challenge", d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_WELCOME;
	m.u.welcome.version = CM_PROTO_VERSION_1_0;
	m.u.welcome.check_attr_interval_ms = 1000;
	m.u.welcome.server_timeout_ms = 5000;
	m.u.welcome.attrs = CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY;
	one(t, "welcome", d, &m);
	add_msg(&s, d, &m);
	m.u.welcome.proof_len = CM_PROTO_MAX_NONCE;
	memset(m.u.welcome.proof, 0xc3, CM_PROTO_MAX_NONCE);
	one(t, "welcome-auth", d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_HEARTBEAT_REPLY;
	m.u.heartbeat.seq = 7;
	m.u.heartbeat.echo = 0x0102030405060708ULL;
	m.u.heartbeat.attrs = CM_PROTO_ATTR_READ_ONLY;
	one(t, "heartbeat-reply", d, &m);
	add_msg(&s, d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_ATTRIBUTES;
	m.u.attributes.attrs = 0;
	one(t, "attributes", d, &m);
	add_msg(&s, d, &m);

	notice(&m, CM_MSG_SHUTDOWN, CM_REASON_SHUTDOWN, "the server is shutting down");
	one(t, "shutdown", d, &m);
	notice(&m, CM_MSG_REFUSE, CM_REASON_TOO_MANY, "too many heartbeat connections");
	one(t, "refuse", d, &m);
	notice(&m, CM_MSG_GOODBYE, CM_REASON_RESTART, "");
	one(t, "goodbye", d, &m);
	add_msg(&s, d, &m);
	put_seed(t, "stream", &s);
}

/* client library -> conmgr */
static void
to_conmgr_app(void)
{
	const char *t = "frames_to_conmgr_app";
	const CmProtoDir d = CM_DIR_TO_CONMGR_APP;
	CmProtoMsg	m;
	Seed		s = {.len = 0};

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_ROUTE;
	m.u.route.version = CM_PROTO_VERSION_1_0;
	m.u.route.tsa = CM_TSA_READ_WRITE;
	m.u.route.client_pid = 99;
	cm_proto_set_string(&m.u.route.application_name, "psql");
	one(t, "route", d, &m);
	add_msg(&s, d, &m);
	m.u.route.tsa = CM_TSA_PREFER_STANDBY;
	cm_proto_set_string(&m.u.route.application_name, "");
	one(t, "route-prefer-standby", d, &m);

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_APP_REGISTER;
	m.u.app_register.backend_pid = 4242;
	set_addr(&m.u.app_register.local, 4, 50000);
	one(t, "register-ipv4", d, &m);
	add_msg(&s, d, &m);
	set_addr(&m.u.app_register.local, 6, 50001);
	one(t, "register-ipv6", d, &m);
	put_seed(t, "stream", &s);
}

/* conmgr -> client library */
static void
to_client(void)
{
	const char *t = "frames_to_client";
	const CmProtoDir d = CM_DIR_TO_CLIENT;
	CmProtoMsg	m;
	Seed		s = {.len = 0};

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_INSTANCE;
	m.u.instance.instance = 1;
	m.u.instance.attrs = CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY;
	m.u.instance.port = 5432;
	cm_proto_set_string(&m.u.instance.host, "192.0.2.11");
	one(t, "instance", d, &m);
	add_msg(&s, d, &m);

	notice(&m, CM_MSG_NO_INSTANCE, CM_REASON_NO_INSTANCE,
		   "conmgr on port 27546 knows no live instance matching target_session_attrs=read-write");
	one(t, "no-instance", d, &m);
	notice(&m, CM_MSG_FAILURE, CM_REASON_TIMEOUT, "heartbeat not answered within 3000 ms");
	one(t, "failure", d, &m);
	add_msg(&s, d, &m);
	notice(&m, CM_MSG_REFUSE, CM_REASON_PROTOCOL, "unexpected route request message");
	one(t, "refuse", d, &m);
	put_seed(t, "stream", &s);
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
	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_INSTANCE;
	m.u.instance.instance = 0;
	m.u.instance.port = 5432;
	cm_proto_set_string(&m.u.instance.host, "db1");
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
	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_ROUTE;
	m.u.route.version = CM_PROTO_VERSION_1_0;
	m.u.route.client_pid = 99;
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

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_HELLO;
	m.u.hello.magic = CM_PROTO_HELLO_MAGIC;
	m.u.hello.min_version = CM_PROTO_VERSION_MIN;
	m.u.hello.max_version = CM_PROTO_VERSION_MAX;
	m.u.hello.heartbeat_interval_ms = 1000;
	m.u.hello.heartbeat_timeout_ms = 3000;
	m.u.hello.auth_method = auth_method;
	m.u.hello.nonce_len = nonce_len;
	memset(m.u.hello.nonce, 0xa5, nonce_len);
	cm_proto_set_string(&m.u.hello.name, "app-host-1");
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

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_PROOF;
	m.u.nonce.len = len;
	memset(m.u.nonce.data, 0x5a, len);
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

	memset(&m, 0, sizeof(m));
	m.type = CM_MSG_HEARTBEAT;
	m.u.heartbeat.seq = seq;
	m.u.heartbeat.echo = 1000 * (uint64_t) seq;
	wp_chunk(s, ctl, &m);
}

/* A register ('J') or unregister ('K') of a session from host:port. */
static void
wp_session(Seed *s, uint8_t ctl, uint8_t type, uint32_t pid, int family,
		   const char *host, uint16_t port)
{
	CmProtoMsg	m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.u.session.backend_pid = pid;
	m.u.session.client.family = (uint8_t) (family == AF_INET ? 4 : 6);
	if (inet_pton(family, host, m.u.session.client.addr) != 1)
		die("bad seed address");
	m.u.session.client.port = port;
	wp_chunk(s, ctl, &m);
}

static void
wp_goodbye(Seed *s, uint8_t ctl)
{
	CmProtoMsg	m;

	notice(&m, CM_MSG_GOODBYE, CM_REASON_SHUTDOWN, "conmgr is shutting down");
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
	wp_session(&s, 0, CM_MSG_REGISTER, 100, AF_INET, "127.0.0.1", 50000);
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
	wp_session(&s, 0, CM_MSG_REGISTER, 100, AF_INET, "127.0.0.1", 50000);
	wp_session(&s, 0, CM_MSG_REGISTER, 108, AF_INET, "127.0.0.1", 50008);
	wp_session(&s, 0, CM_MSG_REGISTER, 101, AF_INET6, "::ffff:127.0.0.1", 50001);
	wp_heartbeat(&s, WP_CLOCK_1S, 2);
	wp_session(&s, 0, CM_MSG_UNREGISTER, 100, AF_INET, "127.0.0.1", 50000);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_FLIP_ATTRS, 3);
	wp_goodbye(&s, 0);
	put_seed(t, "auth-register-goodbye", &s);

	/* two secrets, IPv6, registrations refused and accepted, lost */
	wp_start(&s, WP_PLAYED | WP_AUTH_TWO | WP_PRECISE | WP_IPV6, 0, 0);
	wp_session(&s, 0, CM_MSG_REGISTER, 103, AF_INET6, "::1", 50003);
	wp_session(&s, 0, CM_MSG_REGISTER, 104, AF_INET6, "::1", 50004);
	wp_session(&s, 0, CM_MSG_REGISTER, 105, AF_INET6, "::1", 50005);
	wp_session(&s, 0, CM_MSG_REGISTER, 109, AF_INET6, "::1", 1);
	wp_session(&s, 0, CM_MSG_REGISTER, 106, AF_INET6, "::1", 5432);
	wp_heartbeat(&s, WP_CLOCK_1S | WP_SPLIT, 1);
	wp_session(&s, 0, CM_MSG_UNREGISTER, 104, AF_INET6, "::1", 50004);
	wp_heartbeat(&s, WP_CLOCK_1S, 2);
	put_seed(t, "auth-ipv6-register-lost", &s);

	/* the registration table fills up (held by a lost peer's sessions) */
	wp_start(&s, WP_PLAYED | WP_AUTH_ONE | WP_PRECISE, 3, 0);
	wp_session(&s, 0, CM_MSG_REGISTER, 100, AF_INET, "127.0.0.1", 50000);
	wp_session(&s, 0, CM_MSG_REGISTER, 101, AF_INET, "127.0.0.1", 50001);
	wp_session(&s, 0, CM_MSG_REGISTER, 102, AF_INET, "127.0.0.1", 50002);
	wp_session(&s, 0, CM_MSG_REGISTER, 108, AF_INET, "127.0.0.1", 50008);
	wp_session(&s, 0, CM_MSG_REGISTER, 110, AF_INET, "127.0.0.1", 50010);
	wp_session(&s, 0, CM_MSG_REGISTER, 107, AF_INET, "127.0.0.1", 50007);
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
	greeting();
	pg_startup();
	watchdog_peer();
	return 0;
}
