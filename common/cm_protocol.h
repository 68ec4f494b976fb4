/*-------------------------------------------------------------------------
 *
 * cm_protocol.h
 *	  Wire protocol v1 of Connection Manager: the heartbeat channel between
 *	  conmgr and the watchdog, and the application channel between the
 *	  client library and conmgr.
 *
 * This header and cm_protocol.c are plain C99: no PostgreSQL headers, no
 * allocation, no logging, no global state.  The same object file links into
 * watchdog.so (inside the postmaster's children), conmgr, cm_ctl and the
 * client library.  Decoders never trust a length field and return a static
 * reason string that the caller logs with its own logger.
 *
 * Framing (both channels, after the greeting): every message is
 *
 *		uint8	type
 *		uint32	length, network byte order, counting itself and the payload
 *				but not the type byte (as in the PostgreSQL protocol)
 *		payload
 *
 * All integers are unsigned and in network byte order.  A string is a
 * uint16 byte count followed by that many bytes, no terminator, no NUL byte
 * inside.  docs/protocol.md is the normative description.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_protocol.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_PROTOCOL_H
#define CM_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_endian.h"

/* Protocol versions: major in the high byte, minor in the low byte. */
#define CM_PROTO_VERSION(m, n)		((uint16_t) (((m) << 8) | (n)))
#define CM_PROTO_VERSION_MAJOR(v)	(((v) >> 8) & 0xff)
#define CM_PROTO_VERSION_MINOR(v)	((v) & 0xff)
#define CM_PROTO_VERSION_1_0		CM_PROTO_VERSION(1, 0)
#define CM_PROTO_VERSION_1_1		CM_PROTO_VERSION(1, 1)	/* + ATTR_STOPPING */
#define CM_PROTO_VERSION_1_2		CM_PROTO_VERSION(1, 2)	/* + datagram heartbeats */
#define CM_PROTO_VERSION_MIN		CM_PROTO_VERSION_1_0
#define CM_PROTO_VERSION_MAX		CM_PROTO_VERSION_1_2

/*
 * Hard limits.  CM_PROTO_MAX_MSG bounds a whole frame (type byte included);
 * a peer announcing more is refused before anything is read.
 */
#define CM_PROTO_HEADER_LEN			5
#define CM_PROTO_MAX_MSG			2048
#define CM_PROTO_MAX_STRING			255		/* bytes in any string field */
#define CM_PROTO_MAX_NONCE			32		/* bytes in nonce/proof fields */

/*
 * The longest heartbeat timeout a hello may announce (one day, in ms): the
 * codec refuses more, and conmgr's heartbeat_timeout and the watchdog's
 * watchdog.max_heartbeat_timeout stop there.
 */
#define CM_PROTO_MAX_HEARTBEAT_TIMEOUT_MS	86400000

/*
 * The heartbeat channel opens with a magic number inside the hello so that
 * a conmgr pointed at the wrong port is recognised at once.  ASCII "CMWD".
 */
#define CM_PROTO_HELLO_MAGIC		0x434d5744U

/*
 * Recognising conmgr (application channel).  The client opens the
 * connection with PostgreSQL's GSSENCRequest (8 bytes: length 8, code
 * 1234/5680).  A PostgreSQL server (version 12 and later) answers with the
 * single byte 'G' or 'N' and logs nothing when the client then closes;
 * conmgr answers with an ErrorResponse ('E') that carries the field
 * CM_PROTO_GREETING_FIELD whose value begins with CM_PROTO_GREETING_TAG.
 * Servers older than 12 also answer 'E' (unknown protocol), but never with
 * that field.  A stock libpq that sends GSSENCRequest treats 'E' as a
 * server failure, reconnects without GSS, and then receives conmgr's
 * readable refusal of its StartupMessage.
 */
#define CM_PROTO_PG_SSL_CODE		80877103U	/* 1234 << 16 | 5679 */
#define CM_PROTO_PG_GSS_CODE		80877104U	/* 1234 << 16 | 5680 */
#define CM_PROTO_PG_CANCEL_CODE		80877102U	/* 1234 << 16 | 5678 */
#define CM_PROTO_PG_MAX_STARTUP		10000		/* as the postmaster */
#define CM_PROTO_GREETING_FIELD		'c'
#define CM_PROTO_GREETING_TAG		"conmgr"
#define CM_PROTO_GREETING_SQLSTATE	"08P01"

/* Attribute bits of an instance (heartbeat and application channels). */
#define CM_PROTO_ATTR_STANDBY		0x01	/* in recovery */
#define CM_PROTO_ATTR_READ_ONLY		0x02	/* default_transaction_read_only */
#define CM_PROTO_ATTR_STOPPING		0x04	/* shutting down: takes no new
											 * sessions, keeps its own
											 * (protocol 1.1) */
#define CM_PROTO_ATTR_ALL_1_0		0x03
#define CM_PROTO_ATTR_ALL			0x07

/* Authentication methods named in the hello. */
#define CM_PROTO_AUTH_NONE			0
#define CM_PROTO_AUTH_HANDSHAKE_ONLY	1	/* retired: handshake only, refused */
#define CM_PROTO_AUTH_HMAC_SHA256	2	/* transcript proofs, sealed frames */

/*
 * Message types.  The same letter may mean different things on the two
 * channels; a decoder is always told which channel and direction it reads.
 */
/* heartbeat channel, conmgr -> watchdog */
#define CM_MSG_HELLO				'H'
#define CM_MSG_PROOF				'P'
#define CM_MSG_HEARTBEAT			'B'
#define CM_MSG_REGISTER				'J'
#define CM_MSG_UNREGISTER			'K'
#define CM_MSG_GOODBYE				'G'		/* also watchdog -> conmgr */
/* heartbeat channel, watchdog -> conmgr */
#define CM_MSG_CHALLENGE			'C'
#define CM_MSG_WELCOME				'W'
#define CM_MSG_HEARTBEAT_REPLY		'b'
#define CM_MSG_ATTRIBUTES			'A'
#define CM_MSG_SHUTDOWN				'S'
#define CM_MSG_REFUSE				'X'		/* also conmgr -> client */
/* application channel, client -> conmgr */
#define CM_MSG_ROUTE				'R'
#define CM_MSG_APP_REGISTER			'J'
/* application channel, conmgr -> client */
#define CM_MSG_INSTANCE				'I'
#define CM_MSG_NO_INSTANCE			'N'
#define CM_MSG_FAILURE				'F'

/* Channel and direction a decoder reads. */
typedef enum CmProtoDir
{
	CM_DIR_TO_WATCHDOG = 0,		/* heartbeat channel, sent by conmgr */
	CM_DIR_TO_CONMGR_HB,		/* heartbeat channel, sent by watchdog */
	CM_DIR_TO_CONMGR_APP,		/* application channel, sent by client */
	CM_DIR_TO_CLIENT			/* application channel, sent by conmgr */
} CmProtoDir;

/* Decoder results. */
typedef enum CmProtoStatus
{
	CM_PROTO_OK = 0,
	CM_PROTO_INCOMPLETE = 1,	/* need more bytes; nothing consumed */
	CM_PROTO_INVALID = -1		/* malformed: close the connection */
} CmProtoStatus;

/* Reason codes of refusals, goodbyes, shutdowns and failure notices. */
typedef enum CmProtoReason
{
	CM_REASON_NONE = 0,
	CM_REASON_VERSION = 1,		/* no common protocol version */
	CM_REASON_TOO_MANY = 2,		/* watchdog.max_heartbeat_connections
								 * or conmgr's max_app_connections */
	CM_REASON_PROTOCOL = 3,		/* malformed or unexpected message */
	CM_REASON_AUTH = 4,			/* authentication failed or required */
	CM_REASON_SHUTDOWN = 5,		/* server / conmgr is shutting down */
	CM_REASON_TIMEOUT = 6,		/* heartbeat not answered in time */
	CM_REASON_CONN_LOST = 7,	/* heartbeat connection broke */
	CM_REASON_ATTR_CHANGED = 8, /* instance no longer matches the request */
	CM_REASON_NO_INSTANCE = 9,	/* no live instance matches */
	CM_REASON_CONFIG = 10,		/* configuration changed (reload) */
	CM_REASON_BAD_REQUEST = 11, /* reserved: not sent in 1.0 */
	CM_REASON_RESTART = 12,		/* the watchdog process alone restarts */
	CM_REASON_MAX = 12
} CmProtoReason;

/* target_session_attrs, as libpq spells them. */
typedef enum CmProtoTsa
{
	CM_TSA_ANY = 0,
	CM_TSA_READ_WRITE = 1,
	CM_TSA_READ_ONLY = 2,
	CM_TSA_PRIMARY = 3,
	CM_TSA_STANDBY = 4,
	CM_TSA_PREFER_STANDBY = 5,
	CM_TSA_MAX = 5
} CmProtoTsa;

/* An IP address and port; family 4 or 6, addr in network order. */
typedef struct CmProtoAddr
{
	uint8_t		family;			/* 4 or 6 */
	uint8_t		addr[16];		/* IPv4 uses the first 4 bytes */
	uint16_t	port;
} CmProtoAddr;

/* Decoded string: NUL-terminated copy, at most CM_PROTO_MAX_STRING bytes. */
typedef struct CmProtoString
{
	uint16_t	len;
	char		str[CM_PROTO_MAX_STRING + 1];
} CmProtoString;

/* 'H' hello: opens the heartbeat channel. */
typedef struct CmProtoHello
{
	uint32_t	magic;			/* CM_PROTO_HELLO_MAGIC */
	uint16_t	min_version;
	uint16_t	max_version;
	uint32_t	heartbeat_interval_ms;
	uint32_t	heartbeat_timeout_ms;
	uint8_t		auth_method;	/* CM_PROTO_AUTH_* */
	uint8_t		nonce_len;
	uint8_t		nonce[CM_PROTO_MAX_NONCE];
	CmProtoString name;			/* conmgr's identity, informational */
	uint64_t	incarnation;	/* random per conmgr process, 0 = none
								 * (an optional last field) */
} CmProtoHello;

/* 'C' challenge (watchdog) and 'P' proof (conmgr): authentication. */
typedef struct CmProtoNonce
{
	uint8_t		len;
	uint8_t		data[CM_PROTO_MAX_NONCE];
} CmProtoNonce;

/* 'W' welcome: the watchdog accepted the peer. */
typedef struct CmProtoWelcome
{
	uint16_t	version;		/* the version both sides now speak */
	uint32_t	check_attr_interval_ms;
	uint32_t	server_timeout_ms;	/* when the watchdog declares conmgr lost */
	uint8_t		attrs;			/* CM_PROTO_ATTR_* */
	uint8_t		proof_len;		/* server's proof, 0 without auth */
	uint8_t		proof[CM_PROTO_MAX_NONCE];
} CmProtoWelcome;

/* 'B' heartbeat and 'b' heartbeat reply. */
typedef struct CmProtoHeartbeat
{
	uint32_t	seq;
	uint64_t	echo;			/* sender's clock, echoed back untouched */
	uint8_t		attrs;			/* reply only */
} CmProtoHeartbeat;

/* 'A' attributes pushed by the watchdog. */
typedef struct CmProtoAttributes
{
	uint8_t		attrs;
} CmProtoAttributes;

/*
 * 'X' refuse, 'S' shutdown, 'G' goodbye, 'N' no instance, 'F' failure:
 * a reason code and a human-readable message.
 */
typedef struct CmProtoNotice
{
	uint16_t	reason;			/* CmProtoReason */
	CmProtoString message;
} CmProtoNotice;

/* 'J' register / 'K' unregister a session (heartbeat channel). */
typedef struct CmProtoSession
{
	uint32_t	backend_pid;
	CmProtoAddr client;			/* the session's client address and port */
} CmProtoSession;

/* 'R' route request from a client. */
typedef struct CmProtoRoute
{
	uint16_t	version;
	uint8_t		tsa;			/* CmProtoTsa */
	uint32_t	client_pid;
	CmProtoString application_name;
} CmProtoRoute;

/* 'I' instance chosen by conmgr. */
typedef struct CmProtoInstance
{
	uint16_t	instance;		/* N of backend_hostN */
	uint8_t		attrs;
	uint16_t	port;
	CmProtoString host;			/* what the client connects to */
} CmProtoInstance;

/* 'J' registration of an established connection (application channel). */
typedef struct CmProtoAppRegister
{
	uint32_t	backend_pid;
	CmProtoAddr local;			/* client's local address of its SQL socket */
} CmProtoAppRegister;

/* Any decoded message. */
typedef struct CmProtoMsg
{
	uint8_t		type;
	union
	{
		CmProtoHello hello;
		CmProtoNonce nonce;		/* 'C', 'P' */
		CmProtoWelcome welcome;
		CmProtoHeartbeat heartbeat; /* 'B', 'b' */
		CmProtoAttributes attributes;
		CmProtoNotice notice;	/* 'X', 'S', 'G', 'N', 'F' */
		CmProtoSession session; /* 'J', 'K' heartbeat channel */
		CmProtoRoute route;
		CmProtoInstance instance;
		CmProtoAppRegister app_register;
	}			u;
} CmProtoMsg;

/*
 * cm_proto_frame_peek: look at the start of a receive buffer.
 *
 * Returns CM_PROTO_OK and sets *frame_len (type byte included) when a whole
 * frame is present, CM_PROTO_INCOMPLETE when more bytes are needed, or
 * CM_PROTO_INVALID with *reason set when the header is bad (length out of
 * bounds, type not allowed in this direction).
 */
extern CmProtoStatus cm_proto_frame_peek(CmProtoDir dir, const uint8_t *buf,
										 size_t len, size_t *frame_len,
										 const char **reason);

/*
 * cm_proto_decode: decode exactly one whole frame of frame_len bytes.
 * Every field is validated; trailing bytes are an error.
 */
extern CmProtoStatus cm_proto_decode(CmProtoDir dir, const uint8_t *frame,
									 size_t frame_len, CmProtoMsg *msg,
									 const char **reason);

/*
 * cm_proto_next: take the next message from the start of a receive buffer
 * (cm_proto_frame_peek, then cm_proto_decode of the whole frame).  Returns
 * CM_PROTO_OK with *msg decoded and *frame_len (the bytes to consume),
 * CM_PROTO_INCOMPLETE when more bytes are needed, or CM_PROTO_INVALID with
 * *reason set.  A channel whose frames are sealed (cm_auth.h) opens each
 * frame between the two steps and calls them itself.
 */
extern CmProtoStatus cm_proto_next(CmProtoDir dir, const uint8_t *buf,
								   size_t len, size_t *frame_len,
								   CmProtoMsg *msg, const char **reason);

/*
 * cm_proto_encode: encode msg into buf.  Returns the frame length, or 0
 * when the message is invalid for dir or does not fit in cap.
 */
extern size_t cm_proto_encode(CmProtoDir dir, const CmProtoMsg *msg,
							  uint8_t *buf, size_t cap);

/*
 * cm_proto_escape: copy a string received from a peer (an application's
 * application_name, a watchdog's message) into buf, every byte that is not
 * printable ASCII (below 0x20, 0x7f and above) written as \xNN and a
 * backslash as \\, so that the text cannot start a new log line, forge
 * one, or send escape sequences to a terminal when it is logged or shown.
 * Always NUL-terminated; cut (at a whole escape) when cap is too small:
 * CM_PROTO_ESCAPED_MAX holds any protocol string.  Returns buf.
 */
#define CM_PROTO_ESCAPED_MAX	(4 * CM_PROTO_MAX_STRING + 1)
extern char *cm_proto_escape(const char *s, char *buf, size_t cap);

/* Helpers to fill messages. */
extern void cm_proto_set_string(CmProtoString *s, const char *str);

/*
 * cm_proto_hello_init: a hello as this side speaks it: the magic number,
 * the whole version range, the heartbeat interval and timeout, the
 * authentication method and the name; every other field (nonce,
 * incarnation) zero, for the caller to set.
 */
extern void cm_proto_hello_init(CmProtoMsg *msg, uint32_t interval_ms,
								uint32_t timeout_ms, uint8_t auth_method,
								const char *name);
extern size_t cm_proto_encode_notice(CmProtoDir dir, uint8_t type,
									 uint16_t reason, const char *message,
									 uint8_t *buf, size_t cap);

/* Greeting and PostgreSQL-protocol helpers (application channel). */
extern size_t cm_proto_encode_gss_request(uint8_t *buf, size_t cap);
extern size_t cm_proto_encode_greeting(uint8_t *buf, size_t cap,
									   const char *message);

/*
 * The greeting of a connection that conmgr refuses at once: the same
 * ErrorResponse with the greeting field, but with the refusal's SQLSTATE
 * and message, so that a stock PostgreSQL client that reached conmgr shows
 * the cause.  The client library reads it as the greeting and takes the
 * cause from the refusal ('X' or 'N') that follows it.
 */
extern size_t cm_proto_encode_refusal_greeting(uint8_t *buf, size_t cap,
											   const char *sqlstate,
											   const char *message);

/*
 * cm_proto_parse_greeting: classify the answer to our GSSENCRequest.
 * Returns CM_PROTO_OK when it is conmgr's greeting (*frame_len = bytes to
 * consume, *version = highest version conmgr speaks), CM_PROTO_INCOMPLETE
 * when more bytes are needed, CM_PROTO_INVALID when the peer is not conmgr
 * (a PostgreSQL server or something else; *reason says what).
 */
extern CmProtoStatus cm_proto_parse_greeting(const uint8_t *buf, size_t len,
											 size_t *frame_len,
											 uint16_t *version,
											 const char **reason);

/*
 * cm_proto_peek_pg_startup: classify the first packet a client sent to
 * conmgr.  *code is the request code (CM_PROTO_PG_GSS_CODE,
 * CM_PROTO_PG_SSL_CODE, CM_PROTO_PG_CANCEL_CODE, or a protocol version for
 * a StartupMessage); *packet_len the bytes to consume.
 */
extern CmProtoStatus cm_proto_peek_pg_startup(const uint8_t *buf, size_t len,
											  size_t *packet_len,
											  uint32_t *code,
											  const char **reason);

/* A PostgreSQL ErrorResponse (severity FATAL) for stock clients. */
extern size_t cm_proto_encode_pg_error(uint8_t *buf, size_t cap,
									   const char *sqlstate,
									   const char *message);

/* Names for logs and status output. */
extern const char *cm_proto_reason_name(uint16_t reason);
extern const char *cm_proto_tsa_name(uint8_t tsa);
extern bool cm_proto_tsa_parse(const char *s, uint8_t *tsa);
extern const char *cm_proto_type_name(CmProtoDir dir, uint8_t type);

/*
 * The role an instance with these attribute bits plays, as logs, status
 * output and the view show it: "primary", "primary (read-only)" or
 * "standby".
 */
extern const char *cm_proto_attrs_name(uint8_t attrs);

/*
 * cm_proto_tsa_matches: does an instance with these attributes satisfy
 * tsa?  prefer-standby matches any instance; callers rank standbys first.
 */
extern bool cm_proto_tsa_matches(uint8_t tsa, uint8_t attrs);

/*
 * The attribute bits a peer that speaks version may be sent: 1.0 knows
 * standby and read-only only.
 */
extern uint8_t cm_proto_attrs_for_version(uint16_t version, uint8_t attrs);

/* Address helpers (no getaddrinfo: the caller converts). */
extern bool cm_proto_addr_equal(const CmProtoAddr *a, const CmProtoAddr *b);
extern size_t cm_proto_addr_format(const CmProtoAddr *a, char *buf,
								   size_t cap);

#endif							/* CM_PROTOCOL_H */
