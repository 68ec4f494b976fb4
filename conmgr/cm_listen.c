/*-------------------------------------------------------------------------
 *
 * cm_listen.c
 *	  Listening on the loopback addresses, for every TCP port of conmgr.
 *
 * conmgr serves only its own host: applications on the application port,
 * scrapers on the metrics port.  Both are bound the same way, here: on
 * 127.0.0.1 and ::1, every loopback address the host has, so that no other
 * program can take the port on the address left free and answer in
 * conmgr's name.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  conmgr/cm_listen.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "cm_log.h"
#include "conmgr.h"

/* Outcome of binding one loopback address. */
typedef enum ListenResult
{
	LISTEN_OK,
	LISTEN_ABSENT,				/* the host has no such address */
	LISTEN_FAILED				/* logged */
} ListenResult;

/*
 * Bind and listen on one loopback address, and add its listener to
 * set->listeners.  LISTEN_ABSENT when the host has no such address (no
 * IPv6, or IPv6 turned off on the loopback interface); every other failure
 * is logged with the address and the cause and is LISTEN_FAILED.
 */
static ListenResult
listen_one(CmListenSet *set, int family, const char *addrtext)
{
	struct sockaddr_storage ss;
	socklen_t	sslen;
	int			fd;
	int			on = 1;
	struct evconnlistener *lis;
	const char *famname = family == AF_INET ? "IPv4" : "IPv6";

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t) set->port);
		inet_pton(AF_INET, addrtext, &sin->sin_addr);
		sslen = sizeof(*sin);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t) set->port);
		inet_pton(AF_INET6, addrtext, &sin6->sin6_addr);
		sslen = sizeof(*sin6);
	}

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		int			err = errno;

		if (err == EAFNOSUPPORT)
		{
			cm_info("%s address \"%s\" not used: the host has no %s (%s)",
					famname, addrtext, famname, strerror(err));
			return LISTEN_ABSENT;
		}
		cm_fatal("could not create %s socket for address \"%s\": %s",
				 famname, addrtext, strerror(err));
		return LISTEN_FAILED;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *) &ss, sslen) < 0)
	{
		int			err = errno;

		close(fd);
		if (err == EADDRNOTAVAIL)
		{
			cm_info("%s address \"%s\" not used: the host does not have it (%s)",
					famname, addrtext, strerror(err));
			return LISTEN_ABSENT;
		}
		cm_log_detail(CM_LOG_FATAL, NULL,
					  err == EADDRINUSE ? "Is another conmgr or another program already using this port?" : NULL,
					  "could not bind %s address \"%s\", port %d: %s",
					  famname, addrtext, set->port, strerror(err));
		return LISTEN_FAILED;
	}
	lis = evconnlistener_new(cm_server.base, set->accept_cb, set,
							 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
							 set->backlog, fd);
	if (lis == NULL)
	{
		cm_fatal("could not listen on %s address \"%s\", port %d: %s",
				 famname, addrtext, set->port, strerror(errno));
		close(fd);
		return LISTEN_FAILED;
	}
	evconnlistener_set_error_cb(lis, set->error_cb);
	set->listeners[set->nlisteners++] = lis;
	cm_info("listening %son %s address \"%s\", port %d", set->purpose,
			famname, addrtext, set->port);
	return LISTEN_OK;
}

/*
 * Listen on 127.0.0.1 and ::1 on port (backlog, the callbacks, and the
 * words naming the listeners in the log, set->purpose, and their clients
 * in errors, set->clients, are kept in set).  Every
 * loopback address the host has must be bound: were one of them held by
 * another program, that program would answer the clients that reach it
 * there (a client connecting to "localhost" may try either), so this
 * fails.  An address the host does not have (no IPv6, or IPv6 off on the
 * loopback interface) is left out and logged; at least one must be bound.
 * On success, set->desc names the bound addresses and set->family is the
 * family of the first one; on failure the reason is logged (naming
 * set->clients) and nothing stays bound.
 */
bool
cm_listen_loopback(CmListenSet *set, int port, int backlog,
				   const char *purpose, const char *clients,
				   evconnlistener_cb accept_cb, evconnlistener_errorcb error_cb)
{
	ListenResult v4;
	ListenResult v6;

	*set = (CmListenSet) {
		.port = port, .backlog = backlog, .purpose = purpose,
		.clients = clients, .accept_cb = accept_cb, .error_cb = error_cb
	};
	v4 = listen_one(set, AF_INET, "127.0.0.1");
	v6 = v4 == LISTEN_FAILED ? LISTEN_FAILED : listen_one(set, AF_INET6, "::1");
	if (v4 == LISTEN_FAILED || v6 == LISTEN_FAILED)
	{
		cm_fatal("conmgr must hold port %d on every loopback address of the host, so that no other program answers %s there; conmgr not started",
				 set->port, set->clients);
		cm_listen_close(set);
		return false;
	}
	if (v4 == LISTEN_ABSENT && v6 == LISTEN_ABSENT)
	{
		cm_fatal("could not listen for %s on any loopback address, port %d; conmgr not started",
				 set->clients, set->port);
		return false;
	}
	set->family = v4 == LISTEN_OK ? AF_INET : AF_INET6;
	snprintf(set->desc, sizeof(set->desc), "%s%s%s",
			 v4 == LISTEN_OK ? "127.0.0.1" : "",
			 v4 == LISTEN_OK && v6 == LISTEN_OK ? " and " : "",
			 v6 == LISTEN_OK ? "::1" : "");
	return true;
}

/* Pause or resume accepting. */
static void
listen_enable(CmListenSet *set, bool on)
{
	int			i;

	for (i = 0; i < set->nlisteners; i++)
	{
		if (on)
			evconnlistener_enable(set->listeners[i]);
		else
			evconnlistener_disable(set->listeners[i]);
	}
}

static void
listen_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	listen_enable((CmListenSet *) arg, true);
}

/*
 * accept() failed, typically EMFILE (the caller has logged why): pause the
 * listeners of set for a second instead of spinning on a socket that stays
 * readable.
 */
void
cm_listen_pause(CmListenSet *set)
{
	struct timeval tv = {1, 0};

	if (set->resume_timer == NULL)
		set->resume_timer = evtimer_new(cm_server.base, listen_resume_cb, set);
	if (set->resume_timer == NULL)
		return;
	listen_enable(set, false);
	evtimer_add(set->resume_timer, &tv);
}

/* Close the listeners of set. */
void
cm_listen_close(CmListenSet *set)
{
	int			i;

	for (i = 0; i < set->nlisteners; i++)
		evconnlistener_free(set->listeners[i]);
	set->nlisteners = 0;
	if (set->resume_timer)
	{
		event_free(set->resume_timer);
		set->resume_timer = NULL;
	}
}
