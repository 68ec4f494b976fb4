/*-------------------------------------------------------------------------
 *
 * cm_auth.h
 *	  Authentication of the heartbeat channel: the shared secret file and
 *	  the HMAC-SHA-256 challenge-response of protocol auth method 1.
 *
 * Both peers prove they hold the secret, over two fresh nonces:
 *
 *	conmgr's proof   = HMAC-SHA-256(secret, "CMWD conmgr" || Nc || Ns
 *									 || u32 heartbeat_interval
 *									 || u32 heartbeat_timeout)
 *	watchdog's proof = HMAC-SHA-256(secret, "CMWD watchdog" || Ns || Nc
 *									 || u32 server_timeout)
 *
 * Nc is conmgr's nonce (in the hello), Ns the watchdog's (in the
 * challenge), each CM_AUTH_NONCE_LEN random bytes; integers are in network
 * byte order, labels without a terminator.  docs/protocol.md is the
 * normative description.
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

/* Compute a proof into proof[CM_AUTH_PROOF_LEN]; false if HMAC failed. */
extern bool cm_auth_conmgr_proof(const CmAuthSecret *secret,
								 const uint8_t *nc, const uint8_t *ns,
								 uint32_t heartbeat_interval_ms,
								 uint32_t heartbeat_timeout_ms,
								 uint8_t *proof);
extern bool cm_auth_watchdog_proof(const CmAuthSecret *secret,
								   const uint8_t *ns, const uint8_t *nc,
								   uint32_t server_timeout_ms,
								   uint8_t *proof);

/* Compare two proofs in constant time. */
extern bool cm_auth_proof_equal(const uint8_t *a, size_t alen, const uint8_t *b);

#endif							/* CM_AUTH_H */
