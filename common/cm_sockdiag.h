/*-------------------------------------------------------------------------
 *
 * cm_sockdiag.h
 *	  Which local user owns a TCP socket of this host: a query of the
 *	  Linux kernel's socket diagnostics (NETLINK_SOCK_DIAG, inet_diag).
 *
 * conmgr accepts applications on the loopback addresses, so the other end
 * of every application connection is a socket of this host, and the kernel
 * knows the user that created it.  conmgr uses that to count application
 * connections per user, and to check that the SQL socket an application
 * registers is one of its own.  Any user may make these queries (the same
 * information is in /proc/net/tcp); nothing here needs a privilege.
 *
 * Plain C, no PostgreSQL headers, no allocation, no logging, no global
 * state: a failed query returns a status and a message for the caller to
 * log, so that conmgr and the client library can share it.  Each call opens
 * and closes its own netlink socket and waits for the kernel's answer
 * (a local query, answered at once; bounded by a one-second receive
 * timeout all the same).  On systems other than Linux every call returns
 * CM_SOCKDIAG_UNAVAILABLE.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_sockdiag.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_SOCKDIAG_H
#define CM_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef enum CmSockDiagStatus
{
	CM_SOCKDIAG_FOUND = 0,		/* the answer is in the out parameters */
	CM_SOCKDIAG_NOT_FOUND,		/* no such socket */
	CM_SOCKDIAG_UNAVAILABLE,	/* the kernel does not answer such queries
								 * here (not Linux, no inet_diag, forbidden) */
	CM_SOCKDIAG_ERROR			/* anything else; see the message */
} CmSockDiagStatus;

/*
 * TCP states (as in the kernel's TCP_ESTABLISHED = 1, ...) as bits of a
 * state mask.  CM_SOCKDIAG_CONNECTED: a socket that completed its
 * connection and is not gone yet, which is what an established SQL
 * connection is, including while either side is closing it.  Not LISTEN
 * (a server's socket), not SYN_SENT/SYN_RECV (not connected yet), not
 * TIME_WAIT/CLOSE (no owner any more).
 */
#define CM_SOCKDIAG_STATE(s)		(1U << (s))
#define CM_SOCKDIAG_ESTABLISHED		1
#define CM_SOCKDIAG_LISTEN			10
#define CM_SOCKDIAG_CONNECTED \
	(CM_SOCKDIAG_STATE(1) | CM_SOCKDIAG_STATE(4) | CM_SOCKDIAG_STATE(5) | \
	 CM_SOCKDIAG_STATE(8) | CM_SOCKDIAG_STATE(9) | CM_SOCKDIAG_STATE(11))

/*
 * The owner of the TCP socket whose own end is local and whose other end is
 * remote (an exact lookup in the kernel's connection table, cheap at any
 * number of sockets).  For an accepted connection, pass the peer's address
 * as local and the accepting socket's own address as remote: the answer is
 * the user who created the peer's socket.  On CM_SOCKDIAG_FOUND, *uid and
 * *state (a TCP state number, if state is not NULL) and *held (if not
 * NULL: whether a process still holds the socket; the kernel reports a
 * socket not yet accepted, or one its owner closed, as root's) are set.
 * Addresses are AF_INET or AF_INET6 (IPv4-mapped IPv6 counts as IPv4).
 */
extern CmSockDiagStatus cm_sockdiag_peer_owner(const struct sockaddr *local,
											   const struct sockaddr *remote,
											   uid_t *uid, int *state, bool *held,
											   char *err, size_t errcap);

/*
 * Count the TCP sockets whose own address and port are local and whose
 * state is in state_mask: *owned of them belong to uid, *others to other
 * users.  The kernel filters the table (one pass over the TCP sockets of
 * the host).  An IPv4 address also finds IPv6 sockets bound to its
 * IPv4-mapped form.  Returns CM_SOCKDIAG_FOUND when the query worked
 * (even with both counts 0).
 */
extern CmSockDiagStatus cm_sockdiag_count_local(const struct sockaddr *local,
												uint32_t state_mask, uid_t uid,
												int *owned, int *others,
												char *err, size_t errcap);

#endif							/* CM_SOCKDIAG_H */
