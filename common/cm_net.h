/*-------------------------------------------------------------------------
 *
 * cm_net.h
 *	  Socket addresses: conversion to the protocol's address form, loopback
 *	  tests and the text form for logs.
 *
 * Plain C99 and POSIX sockets, no PostgreSQL headers, no allocation, no
 * logging: the watchdog (and its terminator), conmgr and the client library
 * convert addresses the same way, so that an address one side reports
 * matches what the other side sees.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_net.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CM_NET_H
#define CM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cm_protocol.h"

/*
 * Convert a socket address to the protocol's address form.  An IPv4-mapped
 * IPv6 address becomes the IPv4 address, so that a peer and its sessions
 * match whichever way they connected.  Returns false (and a zeroed *addr)
 * for addresses that are not IP.
 */
extern bool cm_net_addr_from_sockaddr(const struct sockaddr *sa,
									  CmProtoAddr *addr);

/*
 * The other way: a socket address (AF_INET or AF_INET6) for addr, and its
 * length.
 */
extern socklen_t cm_net_sockaddr_from_addr(const CmProtoAddr *addr,
										   struct sockaddr_storage *ss);

/* Is this a loopback address (127/8, ::1, or 127/8 mapped into IPv6)? */
extern bool cm_net_is_loopback(const struct sockaddr *sa);

/*
 * The address and port as text, "192.0.2.1:5432" or "[2001:db8::1]:5432",
 * as the socket gives it (an IPv4-mapped address stays IPv6); "?" for an
 * address that is not IP.  Always NUL-terminated; returns buf.
 */
#define CM_NET_ADDR_TEXT_MAX	64
extern char *cm_net_sockaddr_format(const struct sockaddr *sa, char *buf,
									size_t cap);

#endif							/* CM_NET_H */
