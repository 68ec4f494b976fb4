/*-------------------------------------------------------------------------
 *
 * wd_auth.c
 *	  The watchdog's shared secret (watchdog.secret_file), loaded when the
 *	  worker starts and at every reload.
 *
 * With no secret file set, heartbeat connections are not authenticated.
 * With one set, every conmgr must prove it holds the secret (protocol auth
 * method 1, common/cm_auth.h), and the watchdog proves it too.  A file
 * that cannot be used at start leaves authentication required with no
 * usable secret: every conmgr is refused until a reload fixes it (fail
 * closed).  A file that cannot be used at a reload leaves the previous
 * secret in force.  Each outcome is logged once.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_auth.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "watchdog.h"
#include "wd_server.h"

static CmAuthSecret wd_secret;
static bool wd_secret_loaded = false;	/* wd_secret holds a secret */
static bool wd_auth_required = false;	/* watchdog.secret_file is set */
static char *wd_loaded_path = NULL;		/* the file wd_secret came from */

void
wd_auth_load(bool reload)
{
	const char *path = wd_secret_file ? wd_secret_file : "";
	CmAuthSecret fresh;
	char		err[512];

	if (path[0] == '\0')
	{
		if (wd_auth_required)
			ereport(LOG,
					(errmsg("watchdog: heartbeat authentication is off (watchdog.secret_file is empty)")));
		wd_auth_required = false;
		wd_secret_loaded = false;
		explicit_bzero(&wd_secret, sizeof(wd_secret));
		return;
	}

	wd_auth_required = true;
	if (!cm_auth_read_secret(path, &fresh, err, sizeof(err)))
	{
		if (reload && wd_secret_loaded)
			ereport(WARNING,
					(errmsg("watchdog: %s", err),
					 errdetail("The secret read from \"%s\" stays in force.", wd_loaded_path)));
		else
			ereport(WARNING,
					(errmsg("watchdog: %s", err),
					 errdetail("Every conmgr is refused until the file can be read (reload the configuration after fixing it).")));
		explicit_bzero(&fresh, sizeof(fresh));
		return;
	}

	if (!wd_secret_loaded || fresh.len != wd_secret.len ||
		memcmp(fresh.data, wd_secret.data, fresh.len) != 0 ||
		strcmp(wd_loaded_path, path) != 0)
		ereport(LOG,
				(errmsg("watchdog: heartbeat authentication is on, with the secret of \"%s\"", path),
				 errdetail("Applies to conmgr processes that connect from now on.")));
	wd_secret = fresh;
	wd_secret_loaded = true;
	if (wd_loaded_path)
		pfree(wd_loaded_path);
	wd_loaded_path = MemoryContextStrdup(TopMemoryContext, path);
	explicit_bzero(&fresh, sizeof(fresh));
}

/*
 * The secret conmgr processes must prove they hold: NULL when
 * authentication is off (*problem NULL) or when it is required but no
 * secret could be read (*problem says so).
 */
const CmAuthSecret *
wd_auth_secret(const char **problem)
{
	*problem = NULL;
	if (!wd_auth_required)
		return NULL;
	if (!wd_secret_loaded)
	{
		*problem = "the watchdog requires authentication but could not read its secret file";
		return NULL;
	}
	return &wd_secret;
}
