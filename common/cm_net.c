/*-------------------------------------------------------------------------
 *
 * cm_net.c
 *	  Socket-address helpers (see cm_net.h).
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  common/cm_net.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cm_net.h"

bool
cm_net_addr_from_sockaddr(const struct sockaddr *sa, CmProtoAddr *addr)
{
	memset(addr, 0, sizeof(*addr));
	if (sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

		addr->family = 4;
		memcpy(addr->addr, &sin->sin_addr, 4);
		addr->port = ntohs(sin->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6)
	{
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		{
			addr->family = 4;
			memcpy(addr->addr, &sin6->sin6_addr.s6_addr[12], 4);
		}
		else
		{
			addr->family = 6;
			memcpy(addr->addr, &sin6->sin6_addr, 16);
		}
		addr->port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}

socklen_t
cm_net_sockaddr_from_addr(const CmProtoAddr *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *) ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;

	memset(ss, 0, sizeof(*ss));
	if (addr->family == 4)
	{
		sin->sin_family = AF_INET;
		sin->sin_port = htons(addr->port);
		memcpy(&sin->sin_addr, addr->addr, 4);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(addr->port);
	memcpy(&sin6->sin6_addr, addr->addr, 16);
	return sizeof(*sin6);
}

bool
cm_net_is_loopback(const struct sockaddr *sa)
{
	CmProtoAddr a;

	if (!cm_net_addr_from_sockaddr(sa, &a))
		return false;
	if (a.family == 4)
		return a.addr[0] == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *) sa)->sin6_addr);
}

char *
cm_net_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
	char		host[INET6_ADDRSTRLEN] = "?";

	if (cap == 0)
		return buf;
	if (sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s:%d", host, (int) ntohs(sin->sin_port));
	}
	else if (sa->sa_family == AF_INET6)
	{
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%d", host, (int) ntohs(sin6->sin6_port));
	}
	else
		snprintf(buf, cap, "?");
	return buf;
}
