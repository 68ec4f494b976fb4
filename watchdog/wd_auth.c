/*-------------------------------------------------------------------------
 *
 * wd_auth.c
 *	  The watchdog's shared secret (watchdog.secret_file), loaded when the
 *	  worker starts and at every reload.
 *
 * With one or more secret files set, every conmgr must prove it holds the
 * secret (common/cm_auth.h), and the watchdog proves it too, with the same
 * secret.  With none set, every conmgr is refused: unauthenticated heartbeat
 * connections would let anything that reaches watchdog.port make the
 * terminator end sessions, so they are accepted only when an administrator
 * turns watchdog.insecure_no_authentication on (a lab setting; the worker
 * warns about it, see wd_auth_warn_insecure).  Up to WD_MAX_SECRET_FILES files may be given, so that a
 * secret can be replaced without refusing anyone: a conmgr may prove any
 * of them.  A file
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

#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "watchdog.h"
#include "wd_server.h"

static CmAuthSecret wd_secrets[WD_MAX_SECRET_FILES];
static int	wd_nsecrets = 0;		/* secrets loaded, 0 = none usable */
static bool wd_auth_required = false;	/* watchdog.secret_file is set */
static char *wd_loaded_path = NULL;		/* the setting the secrets came from */

/*
 * Split watchdog.secret_file into file names (a comma-separated list, as
 * unix_socket_directories).  Returns false on bad syntax or too many
 * names, with the reason in *why.
 */
static bool
wd_split_secret_files(const char *value, List **files, const char **why)
{
	char	   *raw = pstrdup(value);
	bool		ok;

	/* the names in *files are copies: raw can go */
	*files = NIL;
	ok = SplitDirectoriesString(raw, ',', files);
	pfree(raw);
	if (ok && list_length(*files) <= WD_MAX_SECRET_FILES)
		return true;
	*why = ok ? "more than " CppAsString2(WD_MAX_SECRET_FILES) " files" : "invalid list syntax";
	list_free_deep(*files);
	*files = NIL;
	return false;
}

/* GUC check hook: list syntax and length; the files are read by the worker. */
bool
wd_check_secret_file(char **newval, void **extra, GucSource source)
{
	List	   *files;
	const char *why;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!wd_split_secret_files(*newval, &files, &why))
	{
		GUC_check_errdetail("watchdog.secret_file: %s (a comma-separated list of at most %d files).",
							why, WD_MAX_SECRET_FILES);
		return false;
	}
	list_free_deep(files);
	return true;
}

void
wd_auth_load(bool reload)
{
	const char *setting = wd_secret_file ? wd_secret_file : "";
	CmAuthSecret fresh[WD_MAX_SECRET_FILES];
	int			nfresh = 0;
	List	   *files;
	ListCell   *lc;
	const char *why;
	char		err[600] = "";

	memset(fresh, 0, sizeof(fresh));	/* compared whole with wd_secrets */
	if (setting[0] == '\0')
	{
		if (wd_auth_required || !reload)
			ereport(LOG,
					(errmsg(wd_insecure_no_authentication ?
							"watchdog: heartbeat authentication is off (watchdog.secret_file is empty)" :
							"watchdog: every conmgr is refused: watchdog.secret_file is empty"),
					 wd_insecure_no_authentication ? 0 :
					 errhint("Set watchdog.secret_file to a file holding a secret, and give every conmgr the same secret with secret_file.")));
		wd_auth_required = false;
		wd_nsecrets = 0;
		explicit_bzero(wd_secrets, sizeof(wd_secrets));
		return;
	}

	wd_auth_required = true;
	if (!wd_split_secret_files(setting, &files, &why))
		snprintf(err, sizeof(err), "watchdog.secret_file: %s", why);
	else
	{
		foreach(lc, files)
		{
			if (!cm_auth_read_secret((const char *) lfirst(lc), &fresh[nfresh],
									 err, sizeof(err)))
				break;
			nfresh++;
		}
		list_free_deep(files);
	}
	if (err[0] != '\0')
	{
		if (reload && wd_nsecrets > 0)
			ereport(WARNING,
					(errmsg("watchdog: %s", err),
					 errdetail(wd_nsecrets == 1 ?
							   "The secret read from \"%s\" stays in force." :
							   "The secrets read from \"%s\" stay in force.",
							   wd_loaded_path)));
		else
			ereport(WARNING,
					(errmsg("watchdog: %s", err),
					 errdetail("Every conmgr is refused until the file can be read (reload the configuration after fixing it).")));
		explicit_bzero(fresh, sizeof(fresh));
		return;
	}

	if (wd_nsecrets != nfresh || strcmp(wd_loaded_path, setting) != 0 ||
		memcmp(fresh, wd_secrets, sizeof(CmAuthSecret) * nfresh) != 0)
		ereport(LOG,
				(errmsg(nfresh == 1 ?
						"watchdog: heartbeat authentication is on, with the secret of \"%s\"" :
						"watchdog: heartbeat authentication is on, with the secrets of \"%s\"",
						setting),
				 errdetail(nfresh == 1 ?
						   "Applies to conmgr processes that connect from now on." :
						   "A conmgr may prove any of them; applies to conmgr processes that connect from now on.")));
	memcpy(wd_secrets, fresh, sizeof(CmAuthSecret) * nfresh);
	wd_nsecrets = nfresh;
	if (wd_loaded_path)
		pfree(wd_loaded_path);
	wd_loaded_path = MemoryContextStrdup(TopMemoryContext, setting);
	explicit_bzero(fresh, sizeof(fresh));
}

/*
 * The secrets a conmgr may prove it holds, and how many: 0 when
 * authentication is off (*problem NULL) or when it is required but no
 * secret could be read (*problem says so).
 */
int
wd_auth_secrets(const CmAuthSecret **secrets, const char **problem)
{
	*problem = NULL;
	*secrets = wd_secrets;
	if (!wd_auth_required)
	{
		if (!wd_insecure_no_authentication)
			*problem = "this server requires authentication: set watchdog.secret_file on the server and the same secret in conmgr.conf's secret_file";
		return 0;
	}
	if (wd_nsecrets == 0)
		*problem = "the watchdog requires authentication but could not read its secret file";
	return wd_nsecrets;
}
