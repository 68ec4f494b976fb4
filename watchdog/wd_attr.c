/*-------------------------------------------------------------------------
 *
 * wd_attr.c
 *	  The instance's attributes as the watchdog reports them to conmgr:
 *	  standby (in recovery) and read-only (default_transaction_read_only,
 *	  or standby).
 *
 * default_transaction_read_only is read from this process's own GUC, so a
 * change reaches the watchdog when the configuration is reloaded (SIGHUP),
 * exactly as it reaches new sessions.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  watchdog/wd_attr.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"

#include "watchdog.h"

/* Compute the current attribute bits (CM_PROTO_ATTR_*). */
uint8
wd_attr_current(void)
{
	uint8		attrs = 0;

	if (RecoveryInProgress())
		attrs |= CM_PROTO_ATTR_STANDBY | CM_PROTO_ATTR_READ_ONLY;
	if (DefaultXactReadOnly)
		attrs |= CM_PROTO_ATTR_READ_ONLY;
	return attrs;
}
