/*-------------------------------------------------------------------------
 *
 * fuzz_secret.c
 *	  libFuzzer target: the reader of heartbeat secret files
 *	  (cm_auth_read_secret), then the proofs computed from what it read.
 *
 * The input is written to a file of mode 0600 owned by the running user,
 * so that only its contents decide.  cm_auth.h promises that the secret is
 * the file's bytes with the trailing CR and LF removed, accepted when that
 * leaves CM_AUTH_SECRET_MIN to CM_AUTH_SECRET_MAX bytes.  Checked:
 *
 *	- the reader accepts exactly those files and returns exactly those
 *	  bytes; a refusal names the file and says whether the secret is too
 *	  short or too long;
 *	- proofs computed from an accepted secret are deterministic and verify.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_secret.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_auth.h"
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_scratch_path("heartbeat.secret");
	CmAuthSecret *secret = malloc(sizeof(CmAuthSecret));
	char		err[5000];
	size_t		want = size;
	bool		ok;

	if (secret == NULL)
		fuzz_fail("out of memory");
	fuzz_write_file(path, data, size, 0600);
	while (want > 0 && (data[want - 1] == '\n' || data[want - 1] == '\r'))
		want--;

	err[0] = '\0';
	ok = cm_auth_read_secret(path, secret, err, sizeof(err));
	if (want < CM_AUTH_SECRET_MIN || want > CM_AUTH_SECRET_MAX)
	{
		FUZZ_CHECK(!ok, "a file of %zu bytes (%zu without trailing CR and LF) was accepted as a secret of %zu bytes",
				   size, want, ok ? secret->len : 0);
		FUZZ_CHECK(strstr(err, path) != NULL,
				   "refusal does not name the file: %s", err);
		FUZZ_CHECK(strstr(err, want < CM_AUTH_SECRET_MIN ? "shorter than" : "longer than") != NULL,
				   "refusal of a secret of %zu bytes: %s", want, err);
		free(secret);
		return 0;
	}
	FUZZ_CHECK(ok, "a secret of %zu bytes was refused: %s", want, err);
	FUZZ_CHECK(secret->len == want && memcmp(secret->data, data, want) == 0,
			   "read %zu bytes of secret instead of the file's %zu",
			   secret->len, want);

	/* proofs and keys from it are deterministic, and differ by role */
	{
		CmAuthTranscript t;
		uint8_t		frame[16];
		uint8_t		p1[CM_AUTH_PROOF_LEN];
		uint8_t		p2[CM_AUTH_PROOF_LEN];
		CmAuthKeys	k1;
		CmAuthKeys	k2;

		memset(frame, 0x11, sizeof(frame));
		cm_auth_transcript_init(&t);
		FUZZ_CHECK(cm_auth_transcript_add(&t, frame, sizeof(frame)), "transcript failed");
		FUZZ_CHECK(cm_auth_conmgr_proof(secret, &t, p1) &&
				   cm_auth_conmgr_proof(secret, &t, p2) &&
				   cm_auth_proof_equal(p1, sizeof(p1), p2),
				   "conmgr proof not reproducible");
		FUZZ_CHECK(cm_auth_watchdog_proof(secret, &t, p2) &&
				   !cm_auth_proof_equal(p1, sizeof(p1), p2),
				   "watchdog proof equals conmgr proof");
		FUZZ_CHECK(cm_auth_session_keys(secret, &t, &k1) &&
				   cm_auth_session_keys(secret, &t, &k2) &&
				   memcmp(&k1, &k2, sizeof(k1)) == 0 &&
				   memcmp(k1.to_watchdog, k1.to_conmgr, CM_AUTH_KEY_LEN) != 0,
				   "session keys not reproducible, or one key for both directions");
	}
	free(secret);
	return 0;
}
