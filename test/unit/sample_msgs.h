/*-------------------------------------------------------------------------
 *
 * sample_msgs.h
 *	  Sample protocol messages for the tests: one builder per message type,
 *	  shared by the codec's unit test (test/unit/test_protocol.c) and the
 *	  generator of the fuzz seeds (test/fuzz/make_corpus.c).
 *
 * Each builder sets the whole message, every field it is not given zero,
 * so that the encoding of a sample depends only on the builder's arguments; the fields every sample shares (the hello's magic and
 * version range, the protocol version of a welcome or route request) are
 * set as this side of the protocol speaks it.  A test that wants an odd
 * field sets it afterwards.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/sample_msgs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEST_SAMPLE_MSGS_H
#define TEST_SAMPLE_MSGS_H

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_protocol.h"

/* A message of type with every other field zero. */
static inline void
sample_msg(CmProtoMsg *m, uint8_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

/*
 * 'H' hello: this side's version range, a heartbeat every 1000 ms and a
 * timeout of 3000 ms; auth_method with a nonce of nonce_len bytes of
 * nonce_byte; name; no incarnation.
 */
static inline void
sample_hello(CmProtoMsg *m, uint8_t auth_method, uint8_t nonce_len,
			 uint8_t nonce_byte, const char *name)
{
	cm_proto_hello_init(m, 1000, 3000, auth_method, name);
	m->u.hello.nonce_len = nonce_len;
	memset(m->u.hello.nonce, nonce_byte, nonce_len);
}

/* 'C' challenge or 'P' proof: a nonce of len bytes of byte. */
static inline void
sample_nonce(CmProtoMsg *m, uint8_t type, uint8_t len, uint8_t byte)
{
	*m = (CmProtoMsg) {.type = type, .u.nonce = {.len = len}};
	memset(m->u.nonce.data, byte, len);
}

/* 'W' welcome at protocol 1.0, without a proof. */
static inline void
sample_welcome(CmProtoMsg *m, uint32_t check_attr_interval_ms,
			   uint32_t server_timeout_ms, uint8_t attrs)
{
	*m = (CmProtoMsg) {
		.type = CM_MSG_WELCOME,
		.u.welcome = {.version = CM_PROTO_VERSION_1_0,
			.check_attr_interval_ms = check_attr_interval_ms,
		.server_timeout_ms = server_timeout_ms, .attrs = attrs}
	};
}

/* 'B' heartbeat or 'b' heartbeat reply (attrs: the reply's only). */
static inline void
sample_heartbeat(CmProtoMsg *m, uint8_t type, uint32_t seq, uint64_t echo,
				 uint8_t attrs)
{
	*m = (CmProtoMsg) {.type = type, .u.heartbeat = {.seq = seq, .echo = echo, .attrs = attrs}};
}

/* A refuse, shutdown, goodbye, no-instance or failure notice. */
static inline void
sample_notice(CmProtoMsg *m, uint8_t type, uint16_t reason, const char *text)
{
	*m = (CmProtoMsg) {.type = type, .u.notice = {.reason = reason}};
	cm_proto_set_string(&m->u.notice.message, text);
}

/* a: host (an IPv4 or IPv6 address in text) and port; exits if host is not one. */
static inline void
sample_addr(CmProtoAddr *a, const char *host, uint16_t port)
{
	int			family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;

	memset(a, 0, sizeof(*a));
	a->family = family == AF_INET ? 4 : 6;
	if (inet_pton(family, host, a->addr) != 1)
	{
		fprintf(stderr, "sample_addr: not an address: %s\n", host);
		exit(2);
	}
	a->port = port;
}

/* 'J' register or 'K' unregister of the session of backend_pid from host:port. */
static inline void
sample_session(CmProtoMsg *m, uint8_t type, uint32_t backend_pid,
			   const char *host, uint16_t port)
{
	*m = (CmProtoMsg) {.type = type, .u.session = {.backend_pid = backend_pid}};
	sample_addr(&m->u.session.client, host, port);
}

/* 'R' route request at protocol 1.0. */
static inline void
sample_route(CmProtoMsg *m, uint8_t tsa, uint32_t client_pid,
			 const char *application_name)
{
	*m = (CmProtoMsg) {
		.type = CM_MSG_ROUTE,
		.u.route = {.version = CM_PROTO_VERSION_1_0, .tsa = tsa, .client_pid = client_pid}
	};
	cm_proto_set_string(&m->u.route.application_name, application_name);
}

/* 'I' instance: the instance number, its attributes and where to connect. */
static inline void
sample_instance(CmProtoMsg *m, uint16_t instance, uint8_t attrs,
				const char *host, uint16_t port)
{
	*m = (CmProtoMsg) {
		.type = CM_MSG_INSTANCE,
		.u.instance = {.instance = instance, .attrs = attrs, .port = port}
	};
	cm_proto_set_string(&m->u.instance.host, host);
}

/* 'J' registration of an application's connection from host:port. */
static inline void
sample_app_register(CmProtoMsg *m, uint32_t backend_pid, const char *host,
					uint16_t port)
{
	*m = (CmProtoMsg) {.type = CM_MSG_APP_REGISTER, .u.app_register = {.backend_pid = backend_pid}};
	sample_addr(&m->u.app_register.local, host, port);
}

#endif							/* TEST_SAMPLE_MSGS_H */
