/*-------------------------------------------------------------------------
 *
 * cm_protocol.c
 *	  Encoding and decoding of Connection Manager wire protocol v1.
 *
 * Every decoder works on a caller's buffer, checks each length against the
 * bytes actually present before reading, validates every field, and refuses
 * trailing bytes.  Nothing here allocates, logs or keeps state: errors come
 * back as CM_PROTO_INVALID with a static reason string.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_protocol.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cm_protocol.h"

/* A bounded reader over a frame's payload. */
typedef struct CmReader
{
	const uint8_t *p;
	size_t		left;
	const char *err;
} CmReader;

/* A bounded writer; overflow is sticky and makes encode return 0. */
typedef struct CmWriter
{
	uint8_t    *p;
	size_t		len;
	size_t		cap;
	int			overflow;
} CmWriter;

/*
 * Take n bytes from the reader: a pointer to them, or NULL (and the sticky
 * error set) when fewer are left.
 */
static const uint8_t *
rd_take(CmReader *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (r->left < n)
	{
		r->err = "message too short";
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

/*
 * An unsigned integer of n bytes (1, 2, 4 or 8), network byte order; 0
 * once the reader has failed.  rd_u8 .. rd_u64 name the widths.
 */
static uint64_t
rd_uint(CmReader *r, size_t n)
{
	const uint8_t *p = rd_take(r, n);

	if (p == NULL)
		return 0;
	switch (n)
	{
		case 1:
			return p[0];
		case 2:
			return cm_get_u16(p);
		case 4:
			return cm_get_u32(p);
		default:
			return cm_get_u64(p);
	}
}

#define rd_u8(r)	((uint8_t) rd_uint((r), 1))
#define rd_u16(r)	((uint16_t) rd_uint((r), 2))
#define rd_u32(r)	((uint32_t) rd_uint((r), 4))
#define rd_u64(r)	rd_uint((r), 8)

static int
rd_bytes(CmReader *r, uint8_t *dst, size_t n)
{
	const uint8_t *p = rd_take(r, n);

	if (p)
		memcpy(dst, p, n);
	return p != NULL;
}

/* A string: uint16 length, bytes, no NUL inside, at most the limit. */
static int
rd_string(CmReader *r, CmProtoString *s)
{
	uint16_t	len = 0;

	len = rd_u16(r);
	if (r->err)
		return 0;
	if (len > CM_PROTO_MAX_STRING)
	{
		r->err = "string field longer than the protocol allows";
		return 0;
	}
	if (!rd_bytes(r, (uint8_t *) s->str, len))
		return 0;
	if (memchr(s->str, '\0', len) != NULL)
	{
		r->err = "string field contains a NUL byte";
		return 0;
	}
	s->str[len] = '\0';
	s->len = len;
	return 1;
}

/* A nonce/proof: uint8 length (at most CM_PROTO_MAX_NONCE) and bytes. */
static int
rd_nonce(CmReader *r, uint8_t *len, uint8_t *data)
{
	*len = rd_u8(r);
	if (r->err)
		return 0;
	if (*len > CM_PROTO_MAX_NONCE)
	{
		r->err = "nonce or proof longer than the protocol allows";
		return 0;
	}
	return rd_bytes(r, data, *len);
}

static int
rd_addr(CmReader *r, CmProtoAddr *a)
{
	a->family = rd_u8(r);
	if (r->err)
		return 0;
	if (a->family != 4 && a->family != 6)
	{
		r->err = "address family is neither 4 nor 6";
		return 0;
	}
	memset(a->addr, 0, sizeof(a->addr));
	if (!rd_bytes(r, a->addr, a->family == 4 ? 4 : 16))
		return 0;
	a->port = rd_u16(r);
	if (r->err)
		return 0;
	if (a->port == 0)
	{
		r->err = "port number 0 in an address";
		return 0;
	}
	return 1;
}

/*
 * A session's registration, on either channel: a backend PID (never 0)
 * and an address.
 */
static void
rd_registration(CmReader *r, uint32_t *backend_pid, CmProtoAddr *addr)
{
	*backend_pid = rd_u32(r);
	rd_addr(r, addr);
	if (!r->err && *backend_pid == 0)
		r->err = "backend PID 0";
}

static void
wr_raw(CmWriter *w, const void *src, size_t n)
{
	if (w->overflow || w->cap - w->len < n)
	{
		w->overflow = 1;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

/* An unsigned integer of n bytes (1, 2, 4 or 8), network byte order. */
static void
wr_uint(CmWriter *w, uint64_t v, size_t n)
{
	uint8_t		b[8];

	switch (n)
	{
		case 1:
			b[0] = (uint8_t) v;
			break;
		case 2:
			cm_put_u16(b, (uint16_t) v);
			break;
		case 4:
			cm_put_u32(b, (uint32_t) v);
			break;
		default:
			cm_put_u64(b, v);
			break;
	}
	wr_raw(w, b, n);
}

#define wr_u8(w, v)		wr_uint((w), (v), 1)
#define wr_u16(w, v)	wr_uint((w), (v), 2)
#define wr_u32(w, v)	wr_uint((w), (v), 4)
#define wr_u64(w, v)	wr_uint((w), (v), 8)

static void
wr_string(CmWriter *w, const CmProtoString *s)
{
	size_t		len = strnlen(s->str, CM_PROTO_MAX_STRING + 1);

	if (len > CM_PROTO_MAX_STRING)
	{
		w->overflow = 1;
		return;
	}
	wr_u16(w, (uint16_t) len);
	wr_raw(w, s->str, len);
}

static void
wr_nonce(CmWriter *w, uint8_t len, const uint8_t *data)
{
	if (len > CM_PROTO_MAX_NONCE)
	{
		w->overflow = 1;
		return;
	}
	wr_u8(w, len);
	wr_raw(w, data, len);
}

static void
wr_addr(CmWriter *w, const CmProtoAddr *a)
{
	if ((a->family != 4 && a->family != 6) || a->port == 0)
	{
		w->overflow = 1;
		return;
	}
	wr_u8(w, a->family);
	wr_raw(w, a->addr, a->family == 4 ? 4 : 16);
	wr_u16(w, a->port);
}

/*
 * Is this message type valid in this direction?  The table is the single
 * statement of which messages each side may send.
 */
static int
type_allowed(CmProtoDir dir, uint8_t type)
{
	switch (dir)
	{
		case CM_DIR_TO_WATCHDOG:
			return type == CM_MSG_HELLO || type == CM_MSG_PROOF ||
				type == CM_MSG_HEARTBEAT || type == CM_MSG_REGISTER ||
				type == CM_MSG_UNREGISTER || type == CM_MSG_GOODBYE;
		case CM_DIR_TO_CONMGR_HB:
			return type == CM_MSG_CHALLENGE || type == CM_MSG_WELCOME ||
				type == CM_MSG_HEARTBEAT_REPLY || type == CM_MSG_ATTRIBUTES ||
				type == CM_MSG_SHUTDOWN || type == CM_MSG_REFUSE ||
				type == CM_MSG_GOODBYE;
		case CM_DIR_TO_CONMGR_APP:
			return type == CM_MSG_ROUTE || type == CM_MSG_APP_REGISTER;
		case CM_DIR_TO_CLIENT:
			return type == CM_MSG_INSTANCE || type == CM_MSG_NO_INSTANCE ||
				type == CM_MSG_FAILURE || type == CM_MSG_REFUSE;
	}
	return 0;
}

CmProtoStatus
cm_proto_frame_peek(CmProtoDir dir, const uint8_t *buf, size_t len,
					size_t *frame_len, const char **reason)
{
	uint32_t	mlen;

	if (len < 1)
		return CM_PROTO_INCOMPLETE;
	if (!type_allowed(dir, buf[0]))
	{
		*reason = "unknown or unexpected message type";
		return CM_PROTO_INVALID;
	}
	if (len < CM_PROTO_HEADER_LEN)
		return CM_PROTO_INCOMPLETE;
	mlen = cm_get_u32(buf + 1);
	if (mlen < 4)
	{
		*reason = "message length smaller than its own length field";
		return CM_PROTO_INVALID;
	}
	if (mlen > CM_PROTO_MAX_MSG - 1)
	{
		*reason = "message length exceeds the protocol maximum";
		return CM_PROTO_INVALID;
	}
	if (len < (size_t) mlen + 1)
		return CM_PROTO_INCOMPLETE;
	*frame_len = (size_t) mlen + 1;
	return CM_PROTO_OK;
}

CmProtoStatus
cm_proto_next(CmProtoDir dir, const uint8_t *buf, size_t len,
			  size_t *frame_len, CmProtoMsg *msg, const char **reason)
{
	CmProtoStatus st;

	st = cm_proto_frame_peek(dir, buf, len, frame_len, reason);
	if (st != CM_PROTO_OK)
		return st;
	return cm_proto_decode(dir, buf, *frame_len, msg, reason);
}

static int
valid_reason(uint16_t reason)
{
	return reason <= CM_REASON_MAX;
}

CmProtoStatus
cm_proto_decode(CmProtoDir dir, const uint8_t *frame, size_t frame_len,
				CmProtoMsg *msg, const char **reason)
{
	size_t		flen = 0;
	CmProtoStatus st;
	CmReader	r;

	st = cm_proto_frame_peek(dir, frame, frame_len, &flen, reason);
	if (st == CM_PROTO_INCOMPLETE)
	{
		*reason = "message truncated";
		return CM_PROTO_INVALID;
	}
	if (st != CM_PROTO_OK)
		return st;
	if (flen != frame_len)
	{
		*reason = "message length does not match the frame";
		return CM_PROTO_INVALID;
	}

	memset(msg, 0, sizeof(*msg));
	msg->type = frame[0];
	r.p = frame + CM_PROTO_HEADER_LEN;
	r.left = frame_len - CM_PROTO_HEADER_LEN;
	r.err = NULL;

	switch (dir == CM_DIR_TO_CONMGR_APP || dir == CM_DIR_TO_CLIENT ? 0x100 | msg->type : msg->type)
	{
		case CM_MSG_HELLO:
			{
				CmProtoHello *h = &msg->u.hello;

				h->magic = rd_u32(&r);
				h->min_version = rd_u16(&r);
				h->max_version = rd_u16(&r);
				h->heartbeat_interval_ms = rd_u32(&r);
				h->heartbeat_timeout_ms = rd_u32(&r);
				h->auth_method = rd_u8(&r);
				rd_nonce(&r, &h->nonce_len, h->nonce);
				rd_string(&r, &h->name);
				h->incarnation = 0;
				if (!r.err && r.left > 0)
				{
					h->incarnation = rd_u64(&r);
					if (!r.err && h->incarnation == 0)
						r.err = "hello's incarnation is zero";
				}
				if (!r.err && h->magic != CM_PROTO_HELLO_MAGIC)
					r.err = "hello does not carry the Connection Manager magic number";
				else if (!r.err && h->min_version > h->max_version)
					r.err = "hello's minimum version is above its maximum";
				else if (!r.err && (h->heartbeat_interval_ms == 0 ||
									h->heartbeat_timeout_ms == 0))
					r.err = "heartbeat interval and timeout must be positive";
				else if (!r.err && h->heartbeat_timeout_ms <= h->heartbeat_interval_ms)
					r.err = "heartbeat timeout must be greater than the heartbeat interval";
				else if (!r.err && h->heartbeat_timeout_ms > CM_PROTO_MAX_HEARTBEAT_TIMEOUT_MS)
					r.err = "heartbeat timeout above one day";
				break;
			}
		case CM_MSG_PROOF:
		case CM_MSG_CHALLENGE:
			rd_nonce(&r, &msg->u.nonce.len, msg->u.nonce.data);
			if (!r.err && msg->u.nonce.len == 0)
				r.err = "empty nonce or proof";
			break;
		case CM_MSG_WELCOME:
			{
				CmProtoWelcome *w = &msg->u.welcome;

				w->version = rd_u16(&r);
				w->check_attr_interval_ms = rd_u32(&r);
				w->server_timeout_ms = rd_u32(&r);
				w->attrs = rd_u8(&r);
				rd_nonce(&r, &w->proof_len, w->proof);
				if (!r.err && (w->version < CM_PROTO_VERSION_MIN ||
							   w->version > CM_PROTO_VERSION_MAX))
					r.err = "welcome names a protocol version this side does not speak";
				else if (!r.err &&
						 w->attrs != cm_proto_attrs_for_version(w->version, w->attrs))
					r.err = "unknown attribute bits";
				else if (!r.err && w->check_attr_interval_ms == 0)
					r.err = "attribute check interval must be positive";
				break;
			}
		case CM_MSG_HEARTBEAT:
		case CM_MSG_HEARTBEAT_REPLY:
			msg->u.heartbeat.seq = rd_u32(&r);
			msg->u.heartbeat.echo = rd_u64(&r);
			if (msg->type == CM_MSG_HEARTBEAT_REPLY)
			{
				msg->u.heartbeat.attrs = rd_u8(&r);
				if (!r.err && (msg->u.heartbeat.attrs & ~CM_PROTO_ATTR_ALL))
					r.err = "unknown attribute bits";
			}
			break;
		case CM_MSG_ATTRIBUTES:
			msg->u.attributes.attrs = rd_u8(&r);
			if (!r.err && (msg->u.attributes.attrs & ~CM_PROTO_ATTR_ALL))
				r.err = "unknown attribute bits";
			break;
		case CM_MSG_SHUTDOWN:
		case CM_MSG_REFUSE:
		case CM_MSG_GOODBYE:
		case 0x100 | CM_MSG_NO_INSTANCE:
		case 0x100 | CM_MSG_FAILURE:
		case 0x100 | CM_MSG_REFUSE:
			msg->u.notice.reason = rd_u16(&r);
			rd_string(&r, &msg->u.notice.message);
			if (!r.err && !valid_reason(msg->u.notice.reason))
				r.err = "unknown reason code";
			break;
		case CM_MSG_REGISTER:
		case CM_MSG_UNREGISTER:
			rd_registration(&r, &msg->u.session.backend_pid,
							&msg->u.session.client);
			break;
		case 0x100 | CM_MSG_ROUTE:
			msg->u.route.version = rd_u16(&r);
			msg->u.route.tsa = rd_u8(&r);
			msg->u.route.client_pid = rd_u32(&r);
			rd_string(&r, &msg->u.route.application_name);
			if (!r.err && (msg->u.route.version < CM_PROTO_VERSION_MIN ||
						   msg->u.route.version > CM_PROTO_VERSION_MAX))
				r.err = "route request names a protocol version conmgr does not speak";
			else if (!r.err && msg->u.route.tsa > CM_TSA_MAX)
				r.err = "unknown target_session_attrs value";
			break;
		case 0x100 | CM_MSG_APP_REGISTER:
			rd_registration(&r, &msg->u.app_register.backend_pid,
							&msg->u.app_register.local);
			break;
		case 0x100 | CM_MSG_INSTANCE:
			msg->u.instance.instance = rd_u16(&r);
			msg->u.instance.attrs = rd_u8(&r);
			msg->u.instance.port = rd_u16(&r);
			rd_string(&r, &msg->u.instance.host);
			if (!r.err && (msg->u.instance.attrs & ~CM_PROTO_ATTR_ALL))
				r.err = "unknown attribute bits";
			else if (!r.err && msg->u.instance.port == 0)
				r.err = "instance port 0";
			else if (!r.err && msg->u.instance.host.len == 0)
				r.err = "empty instance host";
			break;
		default:
			r.err = "unknown or unexpected message type";
			break;
	}

	if (!r.err && r.left != 0)
		r.err = "trailing bytes after the message";
	if (r.err)
	{
		*reason = r.err;
		return CM_PROTO_INVALID;
	}
	return CM_PROTO_OK;
}

size_t
cm_proto_encode(CmProtoDir dir, const CmProtoMsg *msg, uint8_t *buf,
				size_t cap)
{
	CmWriter	w = {buf, 0, cap, 0};
	uint32_t	mlen;

	if (!type_allowed(dir, msg->type))
		return 0;
	wr_u8(&w, msg->type);
	wr_u32(&w, 0);				/* length, patched below */

	switch (dir == CM_DIR_TO_CONMGR_APP || dir == CM_DIR_TO_CLIENT ? 0x100 | msg->type : msg->type)
	{
		case CM_MSG_HELLO:
			wr_u32(&w, msg->u.hello.magic);
			wr_u16(&w, msg->u.hello.min_version);
			wr_u16(&w, msg->u.hello.max_version);
			wr_u32(&w, msg->u.hello.heartbeat_interval_ms);
			wr_u32(&w, msg->u.hello.heartbeat_timeout_ms);
			wr_u8(&w, msg->u.hello.auth_method);
			wr_nonce(&w, msg->u.hello.nonce_len, msg->u.hello.nonce);
			wr_string(&w, &msg->u.hello.name);
			if (msg->u.hello.incarnation != 0)
				wr_u64(&w, msg->u.hello.incarnation);
			break;
		case CM_MSG_PROOF:
		case CM_MSG_CHALLENGE:
			wr_nonce(&w, msg->u.nonce.len, msg->u.nonce.data);
			break;
		case CM_MSG_WELCOME:
			wr_u16(&w, msg->u.welcome.version);
			wr_u32(&w, msg->u.welcome.check_attr_interval_ms);
			wr_u32(&w, msg->u.welcome.server_timeout_ms);
			wr_u8(&w, msg->u.welcome.attrs);
			wr_nonce(&w, msg->u.welcome.proof_len, msg->u.welcome.proof);
			break;
		case CM_MSG_HEARTBEAT:
		case CM_MSG_HEARTBEAT_REPLY:
			wr_u32(&w, msg->u.heartbeat.seq);
			wr_u64(&w, msg->u.heartbeat.echo);
			if (msg->type == CM_MSG_HEARTBEAT_REPLY)
				wr_u8(&w, msg->u.heartbeat.attrs);
			break;
		case CM_MSG_ATTRIBUTES:
			wr_u8(&w, msg->u.attributes.attrs);
			break;
		case CM_MSG_SHUTDOWN:
		case CM_MSG_REFUSE:
		case CM_MSG_GOODBYE:
		case 0x100 | CM_MSG_NO_INSTANCE:
		case 0x100 | CM_MSG_FAILURE:
		case 0x100 | CM_MSG_REFUSE:
			wr_u16(&w, msg->u.notice.reason);
			wr_string(&w, &msg->u.notice.message);
			break;
		case CM_MSG_REGISTER:
		case CM_MSG_UNREGISTER:
			wr_u32(&w, msg->u.session.backend_pid);
			wr_addr(&w, &msg->u.session.client);
			break;
		case 0x100 | CM_MSG_ROUTE:
			wr_u16(&w, msg->u.route.version);
			wr_u8(&w, msg->u.route.tsa);
			wr_u32(&w, msg->u.route.client_pid);
			wr_string(&w, &msg->u.route.application_name);
			break;
		case 0x100 | CM_MSG_APP_REGISTER:
			wr_u32(&w, msg->u.app_register.backend_pid);
			wr_addr(&w, &msg->u.app_register.local);
			break;
		case 0x100 | CM_MSG_INSTANCE:
			wr_u16(&w, msg->u.instance.instance);
			wr_u8(&w, msg->u.instance.attrs);
			wr_u16(&w, msg->u.instance.port);
			wr_string(&w, &msg->u.instance.host);
			break;
		default:
			return 0;
	}

	if (w.overflow || w.len > CM_PROTO_MAX_MSG)
		return 0;
	mlen = (uint32_t) (w.len - 1);
	cm_put_u32(buf + 1, mlen);
	return w.len;
}

void
cm_proto_set_string(CmProtoString *s, const char *str)
{
	size_t		len = str ? strlen(str) : 0;

	if (len > CM_PROTO_MAX_STRING)
		len = CM_PROTO_MAX_STRING;
	if (len > 0)
		memcpy(s->str, str, len);
	s->str[len] = '\0';
	s->len = (uint16_t) len;
}

void
cm_proto_hello_init(CmProtoMsg *msg, uint32_t interval_ms, uint32_t timeout_ms,
					uint8_t auth_method, const char *name)
{
	memset(msg, 0, sizeof(*msg));
	msg->type = CM_MSG_HELLO;
	msg->u.hello.magic = CM_PROTO_HELLO_MAGIC;
	msg->u.hello.min_version = CM_PROTO_VERSION_MIN;
	msg->u.hello.max_version = CM_PROTO_VERSION_MAX;
	msg->u.hello.heartbeat_interval_ms = interval_ms;
	msg->u.hello.heartbeat_timeout_ms = timeout_ms;
	msg->u.hello.auth_method = auth_method;
	cm_proto_set_string(&msg->u.hello.name, name);
}

size_t
cm_proto_encode_notice(CmProtoDir dir, uint8_t type, uint16_t reason,
					   const char *message, uint8_t *buf, size_t cap)
{
	CmProtoMsg	msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.u.notice.reason = reason;
	cm_proto_set_string(&msg.u.notice.message, message);
	return cm_proto_encode(dir, &msg, buf, cap);
}

char *
cm_proto_escape(const char *s, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t		n = 0;

	if (cap == 0)
		return buf;
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c >= 0x20 && c < 0x7f && c != '\\')
		{
			if (n + 1 >= cap)
				break;
			buf[n++] = (char) c;
		}
		else if (c == '\\')
		{
			if (n + 2 >= cap)
				break;
			buf[n++] = '\\';
			buf[n++] = '\\';
		}
		else
		{
			if (n + 4 >= cap)
				break;
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 0x0f];
		}
	}
	buf[n] = '\0';
	return buf;
}

/* ---- PostgreSQL-protocol pieces of the application channel ---- */

size_t
cm_proto_encode_gss_request(uint8_t *buf, size_t cap)
{
	CmWriter	w = {buf, 0, cap, 0};

	wr_u32(&w, 8);
	wr_u32(&w, CM_PROTO_PG_GSS_CODE);
	return w.overflow ? 0 : w.len;
}

/* Append one ErrorResponse field: code byte and NUL-terminated text. */
static void
wr_pg_field(CmWriter *w, char code, const char *text)
{
	wr_u8(w, (uint8_t) code);
	wr_raw(w, text, strlen(text) + 1);
}

/*
 * Encode a PostgreSQL ErrorResponse with severity FATAL.  When tag is not
 * NULL, the greeting field is added.
 */
static size_t
encode_pg_error(uint8_t *buf, size_t cap, const char *sqlstate,
				const char *message, const char *tag)
{
	CmWriter	w = {buf, 0, cap, 0};
	uint32_t	mlen;

	wr_u8(&w, 'E');
	wr_u32(&w, 0);
	wr_pg_field(&w, 'S', "FATAL");
	wr_pg_field(&w, 'V', "FATAL");
	wr_pg_field(&w, 'C', sqlstate);
	wr_pg_field(&w, 'M', message);
	if (tag)
		wr_pg_field(&w, CM_PROTO_GREETING_FIELD, tag);
	wr_u8(&w, 0);
	if (w.overflow || w.len > CM_PROTO_MAX_MSG)
		return 0;
	mlen = (uint32_t) (w.len - 1);
	cm_put_u32(buf + 1, mlen);
	return w.len;
}

size_t
cm_proto_encode_greeting(uint8_t *buf, size_t cap, const char *message)
{
	return cm_proto_encode_refusal_greeting(buf, cap,
											CM_PROTO_GREETING_SQLSTATE,
											message);
}

size_t
cm_proto_encode_refusal_greeting(uint8_t *buf, size_t cap,
								 const char *sqlstate, const char *message)
{
	char		tag[64];

	snprintf(tag, sizeof(tag), "%s %u %u", CM_PROTO_GREETING_TAG,
			 (unsigned) CM_PROTO_VERSION_MIN, (unsigned) CM_PROTO_VERSION_MAX);
	return encode_pg_error(buf, cap, sqlstate, message, tag);
}

size_t
cm_proto_encode_pg_error(uint8_t *buf, size_t cap, const char *sqlstate,
						 const char *message)
{
	return encode_pg_error(buf, cap, sqlstate, message, NULL);
}

/* Parse "conmgr MIN MAX" (decimal) into a version both sides speak. */
static int
parse_greeting_tag(const char *s, uint16_t *version)
{
	size_t		taglen = strlen(CM_PROTO_GREETING_TAG);
	unsigned long v[2];
	int			i;

	if (strncmp(s, CM_PROTO_GREETING_TAG, taglen) != 0 || s[taglen] != ' ')
		return 0;
	s += taglen;
	for (i = 0; i < 2; i++)
	{
		if (*s != ' ')
			return 0;
		s++;
		if (*s < '0' || *s > '9')
			return 0;
		v[i] = 0;
		while (*s >= '0' && *s <= '9')
		{
			v[i] = v[i] * 10 + (unsigned long) (*s - '0');
			if (v[i] > 0xffff)
				return 0;
			s++;
		}
	}
	if (*s != '\0' || v[0] > v[1])
		return 0;
	if (v[1] < CM_PROTO_VERSION_MIN || v[0] > CM_PROTO_VERSION_MAX)
		return 0;
	*version = (uint16_t) (v[1] < CM_PROTO_VERSION_MAX ? v[1] : CM_PROTO_VERSION_MAX);
	return 1;
}

CmProtoStatus
cm_proto_parse_greeting(const uint8_t *buf, size_t len, size_t *frame_len,
						uint16_t *version, const char **reason)
{
	uint32_t	mlen;
	size_t		pos;
	int			found = 0;

	if (len < 1)
		return CM_PROTO_INCOMPLETE;
	if (buf[0] == 'G' || buf[0] == 'N')
	{
		*reason = "a PostgreSQL server answered, not conmgr";
		return CM_PROTO_INVALID;
	}
	if (buf[0] != 'E')
	{
		*reason = "the peer answered with something that is neither PostgreSQL nor conmgr";
		return CM_PROTO_INVALID;
	}
	if (len < CM_PROTO_HEADER_LEN)
		return CM_PROTO_INCOMPLETE;
	mlen = cm_get_u32(buf + 1);
	if (mlen < 5 || mlen > CM_PROTO_MAX_MSG - 1)
	{
		*reason = "an error response with an invalid length: not conmgr";
		return CM_PROTO_INVALID;
	}
	if (len < (size_t) mlen + 1)
		return CM_PROTO_INCOMPLETE;

	/* Fields: code byte + NUL-terminated string, list ends with a 0 byte. */
	pos = CM_PROTO_HEADER_LEN;
	while (pos < (size_t) mlen + 1 && buf[pos] != 0)
	{
		char		code = (char) buf[pos];
		const uint8_t *end;
		size_t		flen;

		pos++;
		end = memchr(buf + pos, 0, (size_t) mlen + 1 - pos);
		if (end == NULL)
		{
			*reason = "an unterminated error field: not conmgr";
			return CM_PROTO_INVALID;
		}
		flen = (size_t) (end - (buf + pos));
		if (code == CM_PROTO_GREETING_FIELD)
		{
			char		tag[64];

			if (flen >= sizeof(tag))
			{
				*reason = "an invalid conmgr greeting";
				return CM_PROTO_INVALID;
			}
			memcpy(tag, buf + pos, flen);
			tag[flen] = '\0';
			if (!parse_greeting_tag(tag, version))
			{
				*reason = "conmgr speaks no protocol version this client speaks";
				return CM_PROTO_INVALID;
			}
			found = 1;
		}
		pos += flen + 1;
	}
	if (pos != (size_t) mlen || buf[pos] != 0)
	{
		*reason = "a malformed error response: not conmgr";
		return CM_PROTO_INVALID;
	}
	if (!found)
	{
		*reason = "an error response from a server that is not conmgr";
		return CM_PROTO_INVALID;
	}
	*frame_len = (size_t) mlen + 1;
	return CM_PROTO_OK;
}

CmProtoStatus
cm_proto_peek_pg_startup(const uint8_t *buf, size_t len, size_t *packet_len,
						 uint32_t *code, const char **reason)
{
	uint32_t	plen;

	if (len < 8)
		return CM_PROTO_INCOMPLETE;
	plen = cm_get_u32(buf);
	if (plen < 8 || plen > CM_PROTO_PG_MAX_STARTUP)
	{
		*reason = "invalid length of startup packet";
		return CM_PROTO_INVALID;
	}
	*code = cm_get_u32(buf + 4);
	if ((*code == CM_PROTO_PG_GSS_CODE || *code == CM_PROTO_PG_SSL_CODE) &&
		plen != 8)
	{
		*reason = "invalid length of encryption request";
		return CM_PROTO_INVALID;
	}
	if (len < plen)
		return CM_PROTO_INCOMPLETE;
	*packet_len = plen;
	return CM_PROTO_OK;
}

/* ---- names ---- */

static const char *const reason_names[] = {
	"none", "version", "too many connections", "protocol violation",
	"authentication", "shutdown", "heartbeat timeout", "connection lost",
	"attributes changed", "no suitable instance", "configuration changed",
	"bad request", "watchdog restarting"
};

static const char *const tsa_names[] = {
	"any", "read-write", "read-only", "primary", "standby", "prefer-standby"
};

const char *
cm_proto_reason_name(uint16_t reason)
{
	if (reason > CM_REASON_MAX)
		return "unknown";
	return reason_names[reason];
}

const char *
cm_proto_tsa_name(uint8_t tsa)
{
	if (tsa > CM_TSA_MAX)
		return "unknown";
	return tsa_names[tsa];
}

bool
cm_proto_tsa_parse(const char *s, uint8_t *tsa)
{
	uint8_t		i;

	for (i = 0; i <= CM_TSA_MAX; i++)
	{
		if (strcmp(s, tsa_names[i]) == 0)
		{
			*tsa = i;
			return true;
		}
	}
	return false;
}

const char *
cm_proto_type_name(CmProtoDir dir, uint8_t type)
{
	int			app = (dir == CM_DIR_TO_CONMGR_APP || dir == CM_DIR_TO_CLIENT);

	if (!type_allowed(dir, type))
		return "unknown";
	switch (type)
	{
		case CM_MSG_HELLO:
			return "hello";
		case CM_MSG_PROOF:
			return "proof";
		case CM_MSG_HEARTBEAT:
			return "heartbeat";
		case CM_MSG_REGISTER:	/* == CM_MSG_APP_REGISTER */
			return "register";
		case CM_MSG_UNREGISTER:
			return "unregister";
		case CM_MSG_GOODBYE:
			return "goodbye";
		case CM_MSG_CHALLENGE:
			return "challenge";
		case CM_MSG_WELCOME:
			return "welcome";
		case CM_MSG_HEARTBEAT_REPLY:
			return "heartbeat reply";
		case CM_MSG_ATTRIBUTES:
			return "attributes";
		case CM_MSG_SHUTDOWN:
			return "shutdown";
		case CM_MSG_REFUSE:
			return "refuse";
		case CM_MSG_ROUTE:
			return "route request";
		case CM_MSG_INSTANCE:
			return "instance";
		case CM_MSG_NO_INSTANCE:
			return app ? "no instance" : "unknown";
		case CM_MSG_FAILURE:
			return "failure";
	}
	return "unknown";
}

const char *
cm_proto_attrs_name(uint8_t attrs)
{
	if (attrs & CM_PROTO_ATTR_STANDBY)
		return "standby";
	if (attrs & CM_PROTO_ATTR_READ_ONLY)
		return "primary (read-only)";
	return "primary";
}

bool
cm_proto_tsa_matches(uint8_t tsa, uint8_t attrs)
{
	bool		standby = (attrs & CM_PROTO_ATTR_STANDBY) != 0;
	bool		read_only = standby || (attrs & CM_PROTO_ATTR_READ_ONLY) != 0;

	switch (tsa)
	{
		case CM_TSA_ANY:
		case CM_TSA_PREFER_STANDBY:
			return true;
		case CM_TSA_READ_WRITE:
			return !read_only;
		case CM_TSA_READ_ONLY:
			return read_only;
		case CM_TSA_PRIMARY:
			return !standby;
		case CM_TSA_STANDBY:
			return standby;
	}
	return false;
}

uint8_t
cm_proto_attrs_for_version(uint16_t version, uint8_t attrs)
{
	return (uint8_t) (attrs & (version >= CM_PROTO_VERSION_1_1 ?
							   CM_PROTO_ATTR_ALL : CM_PROTO_ATTR_ALL_1_0));
}

bool
cm_proto_addr_equal(const CmProtoAddr *a, const CmProtoAddr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

size_t
cm_proto_addr_format(const CmProtoAddr *a, char *buf, size_t cap)
{
	char		host[INET6_ADDRSTRLEN];
	int			n;

	if (cap == 0)
		return 0;
	if (inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, host,
				  sizeof(host)) == NULL)
		snprintf(host, sizeof(host), "?");
	if (a->family == 6)
		n = snprintf(buf, cap, "[%s]:%u", host, (unsigned) a->port);
	else
		n = snprintf(buf, cap, "%s:%u", host, (unsigned) a->port);
	return n < 0 ? 0 : (size_t) n;
}
