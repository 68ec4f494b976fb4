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

	/* proofs from it are deterministic and verify */
	{
		uint8_t		nc[CM_AUTH_NONCE_LEN];
		uint8_t		ns[CM_AUTH_NONCE_LEN];
		uint8_t		p1[CM_AUTH_PROOF_LEN];
		uint8_t		p2[CM_AUTH_PROOF_LEN];

		memset(nc, 0x11, sizeof(nc));
		memset(ns, 0x22, sizeof(ns));
		FUZZ_CHECK(cm_auth_conmgr_proof(secret, nc, ns, 1000, 3000, p1) &&
				   cm_auth_conmgr_proof(secret, nc, ns, 1000, 3000, p2) &&
				   cm_auth_proof_equal(p1, sizeof(p1), p2),
				   "conmgr proof not reproducible");
		FUZZ_CHECK(cm_auth_watchdog_proof(secret, ns, nc, 5000, p2) &&
				   !cm_auth_proof_equal(p1, sizeof(p1), p2),
				   "watchdog proof equals conmgr proof");
	}
	free(secret);
	return 0;
}
