/*-------------------------------------------------------------------------
 *
 * cm_auth.h
 *	  Authentication of the heartbeat channel: the shared secret file and
 *	  the HMAC-SHA-256 challenge-response of protocol auth method 1.
 *
 * Protocol auth method 2.  Both peers prove they hold the secret over the
 * transcript of the handshake (the hello with conmgr's nonce, the
 * challenge with the watchdog's, the proof, the welcome), so that every
 * field of it is covered; from the same transcript they derive session
 * keys that authenticate every later frame, with a sequence number, in
 * both directions.  docs/protocol.md is the normative description.
 *
 * Plain C with OpenSSL's libcrypto, no PostgreSQL headers: linked into
 * watchdog.so and conmgr (not into the client library).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_auth.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_AUTH_H
#define CM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_AUTH_NONCE_LEN	32
#define CM_AUTH_PROOF_LEN	32
#define CM_AUTH_SECRET_MIN	16		/* bytes, after trailing newlines */
#define CM_AUTH_SECRET_MAX	1024

typedef struct CmAuthSecret
{
	size_t		len;
	uint8_t		data[CM_AUTH_SECRET_MAX];
} CmAuthSecret;

/*
 * Read a secret file.  The file must be a regular file that neither group
 * nor others may access when its owner is the running user (or that others
 * may not access when root owns it), and hold CM_AUTH_SECRET_MIN to
 * CM_AUTH_SECRET_MAX bytes once trailing CR and LF are removed.  On failure
 * returns false with a message naming the file in err.
 */
extern bool cm_auth_read_secret(const char *path, CmAuthSecret *secret,
								char *err, size_t errcap);

/* Fill buf with random bytes from a cryptographic generator. */
extern bool cm_auth_random(uint8_t *buf, size_t len);

/*
 * The handshake transcript: a chained hash of every handshake frame, byte
 * for byte as sent (type and length included):
 *
 *	T0 = 32 zero bytes, Ti+1 = SHA-256("CMWD2 transcript" || Ti || frame)
 */
typedef struct CmAuthTranscript
{
	uint8_t		hash[32];
} CmAuthTranscript;

extern void cm_auth_transcript_init(CmAuthTranscript *t);
extern bool cm_auth_transcript_add(CmAuthTranscript *t, const uint8_t *frame,
								   size_t len);

/*
 * Proofs into proof[CM_AUTH_PROOF_LEN]; false if HMAC failed.  conmgr's
 * covers the transcript of hello and challenge; the watchdog's that of
 * hello, challenge, proof and the welcome without its proof field.
 */
extern bool cm_auth_conmgr_proof(const CmAuthSecret *secret,
								 const CmAuthTranscript *t, uint8_t *proof);
extern bool cm_auth_watchdog_proof(const CmAuthSecret *secret,
								   const CmAuthTranscript *t, uint8_t *proof);

/*
 * Session keys, from the transcript of the whole handshake (the welcome
 * included): K = HMAC(secret, "CMWD2 session key" || T), and one key per
 * direction, HMAC(K, "CMWD2 conmgr to watchdog") and HMAC(K, "CMWD2
 * watchdog to conmgr").  The datagram id, which names the session in its
 * datagrams (protocol 1.2), is the first bytes of HMAC(K, "CMWD2 datagram
 * id").
 */
#define CM_AUTH_KEY_LEN		32
#define CM_AUTH_DGRAM_ID_LEN 8

typedef struct CmAuthKeys
{
	uint8_t		to_watchdog[CM_AUTH_KEY_LEN];
	uint8_t		to_conmgr[CM_AUTH_KEY_LEN];
	uint8_t		datagram_id[CM_AUTH_DGRAM_ID_LEN];
} CmAuthKeys;

extern bool cm_auth_session_keys(const CmAuthSecret *secret,
								 const CmAuthTranscript *t, CmAuthKeys *keys);

/*
 * Sealed frames.  After the welcome every frame in both directions carries
 * a trailer: u64 sequence number, then the first CM_AUTH_TAG_LEN bytes of
 * HMAC-SHA-256(direction key, channel || the frame up to the tag), the
 * frame's length field counting the trailer.  The channel byte separates a
 * stream (the TCP connection, sequence numbers 1, 2, 3 ...) from datagrams.
 */
#define CM_AUTH_TAG_LEN		16
#define CM_AUTH_SEAL_LEN	(8 + CM_AUTH_TAG_LEN)
#define CM_AUTH_SEALED_MAX	4096	/* a sealed frame, at most */
#define CM_AUTH_CHANNEL_STREAM	'T'
#define CM_AUTH_CHANNEL_DATAGRAM 'U'

/*
 * Seal frame[0..len) in place (cap bytes available): returns the sealed
 * length, or 0 when it does not fit or HMAC failed.
 */
extern size_t cm_auth_seal(const uint8_t *key, uint8_t channel, uint64_t seq,
						   uint8_t *frame, size_t len, size_t cap);

/*
 * Check a sealed frame of len bytes: on success returns true with its
 * sequence number and the frame unsealed in place (length field restored,
 * *inner_len bytes long).  A wrong tag, or a frame too short to carry a
 * trailer, returns false and leaves the frame as it was.
 */
extern bool cm_auth_open(const uint8_t *key, uint8_t channel, uint8_t *frame,
						 size_t len, uint64_t *seq, size_t *inner_len);

/*
 * Datagrams (protocol 1.2): the session's datagram id, then a heartbeat or
 * heartbeat reply frame sealed over CM_AUTH_CHANNEL_DATAGRAM with the
 * datagram sequence of its direction; CM_AUTH_DGRAM_MAX bytes at most.
 *
 * cm_auth_datagram_make writes id || frame[0..len) sealed with seq into out
 * (cap bytes): returns the datagram's length, or 0 when it does not fit.
 */
#define CM_AUTH_DGRAM_MAX	64

extern size_t cm_auth_datagram_make(const uint8_t *key, const uint8_t *id,
									 uint64_t seq, const uint8_t *frame,
									 size_t len, uint8_t *out, size_t cap);

/*
 * The id of a received datagram of len bytes, or NULL when it cannot be a
 * datagram: too short or too long, or a frame length field that does not
 * match its size.  Costs no HMAC.
 */
extern const uint8_t *cm_auth_datagram_id(const uint8_t *dgram, size_t len);

/*
 * Check a received datagram (cm_auth_datagram_id accepted it) under key:
 * on success returns true with its sequence number and the frame unsealed
 * in place at dgram + CM_AUTH_DGRAM_ID_LEN, *inner_len bytes long.
 */
extern bool cm_auth_datagram_open(const uint8_t *key, uint8_t *dgram,
								  size_t len, uint64_t *seq, size_t *inner_len);

/* Compare two proofs in constant time. */
extern bool cm_auth_proof_equal(const uint8_t *a, size_t alen, const uint8_t *b);

#endif							/* CM_AUTH_H */
