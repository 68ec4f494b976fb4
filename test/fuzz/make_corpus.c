/*-------------------------------------------------------------------------
 *
 * make_corpus.c
 *	  Writes the generated seeds of the fuzz targets: a valid frame of
 *	  every message type of every protocol direction (and a few frames in
 *	  a row, as a reader receives them), greetings, and the first packets
 *	  applications send to conmgr.  Built with the product's own encoders,
 *	  so the seeds follow the protocol as the code speaks it.
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
	return 0;
}
