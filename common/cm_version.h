/*-------------------------------------------------------------------------
 *
 * cm_version.h
 *	  The release version of Connection Manager for PostgreSQL, the one
 *	  place it is written.
 *
 * cm_ctl and conmgr print it (--version; conmgr also in its start message
 * and its metrics' build_info).  The client library's PQCM_VERSION_NUM
 * (libpq-cm.h, a public header that cannot include this one;
 * PQcmLibVersion() returns it) must equal CM_VERSION_NUM, which a static
 * assertion in the library checks.  Makefile.common reads CM_VERSION_MAJOR
 * and CM_VERSION_MINOR from this file for libpqcm's file name, soname
 * (libpqcm.so.MAJOR) and pkg-config file, and debian/rules refuses to build
 * when debian/changelog names another version.
 *
 * The release version is not the SQL version of the watchdog extension
 * (watchdog.control's default_version and the watchdog--A--B.sql scripts):
 * that one changes only when the extension's SQL objects change, so a
 * release may ship the same SQL version as the previous one, and the SQL
 * version is never derived from this file.  Nor is it the wire protocol
 * version (CM_PROTO_VERSION_* in cm_protocol.h), which peers negotiate.
 *
 * Plain C99 and free of PostgreSQL headers, like the rest of common/.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_version.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_VERSION_H
#define CM_VERSION_H

/* Makefile.common reads these two lines: keep their shape */
#define CM_VERSION_MAJOR 1
#define CM_VERSION_MINOR 0

#define CM_VERSION_STR_(x)	#x
#define CM_VERSION_STR(x)	CM_VERSION_STR_(x)

/* "1.0" */
#define CM_VERSION \
	CM_VERSION_STR(CM_VERSION_MAJOR) "." CM_VERSION_STR(CM_VERSION_MINOR)

/* major * 10000 + minor, as PQCM_VERSION_NUM and PQcmLibVersion() give it */
#define CM_VERSION_NUM		(CM_VERSION_MAJOR * 10000 + CM_VERSION_MINOR)

#endif							/* CM_VERSION_H */
