/*-------------------------------------------------------------------------
 *
 * echo-responder.c
 *	  Benchmark baseline: the least a TCP heartbeat responder can do.
 *
 * Listens on 127.0.0.1, accepts every connection, and writes back whatever
 * each connection sends, as soon as it arrives; and on the same UDP port
 * sends every datagram back where it came from: one epoll loop, one
 * receive and one send per heartbeat, no framing, no authentication, no
 * shared state.  bench/watchdog-peers --baseline heartbeats against it exactly as
 * against the watchdog, and its CPU time per heartbeat is the floor of what
 * the kernel's TCP (on loopback, the sender also pays for the receiver's
 * side) and one wake-up per heartbeat cost on the machine: what the
 * watchdog spends beyond it is its own.
 *
 * Usage: echo-responder PORT
 * Prints "ready" once it listens; runs until killed.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  bench/echo-responder.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_EVENTS	1024

/*
 * Write back what fd has to read.  Level-triggered: what is left is read
 * at the next wait.  A heartbeat is far below the socket buffer: a
 * connection whose echo does not go whole does not read, and is closed, as
 * at end of file or an error.
 */
static void
echo_once(int fd)
{
	uint8_t		buf[4096];
	ssize_t		r = recv(fd, buf, sizeof(buf), 0);

	if (r > 0 ? send(fd, buf, (size_t) r, MSG_NOSIGNAL) != r :
		r == 0 || (errno != EAGAIN && errno != EINTR))
		close(fd);
}

/* Send every datagram waiting on usock back where it came from. */
static void
echo_datagrams(int usock)
{
	for (int i = 0; i < 256; i++)
	{
		uint8_t		buf[2048];
		struct sockaddr_storage from;
		socklen_t	fromlen = sizeof(from);
		ssize_t		r = recvfrom(usock, buf, sizeof(buf), 0,
								 (struct sockaddr *) &from, &fromlen);

		if (r < 0)
			return;
		(void) sendto(usock, buf, (size_t) r, MSG_DONTWAIT,
					  (struct sockaddr *) &from, fromlen);
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct epoll_event ev;
	struct epoll_event *events;
	int			lsock;
	int			usock;
	int			epfd;
	int			one = 1;
	int			port;

	if (argc != 2 || (port = atoi(argv[1])) <= 0 || port > 65535)
	{
		fprintf(stderr, "usage: echo-responder PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	bench_raise_nofile(1L << 20);

	lsock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lsock < 0)
		bench_fatal("echo-responder: socket: %s", strerror(errno));
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t) port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lsock, (struct sockaddr *) &sin, sizeof(sin)) != 0 ||
		listen(lsock, 4096) != 0)
		bench_fatal("echo-responder: cannot listen on 127.0.0.1:%d: %s",
					port, strerror(errno));

	usock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (usock < 0 || bind(usock, (struct sockaddr *) &sin, sizeof(sin)) != 0)
		bench_fatal("echo-responder: cannot bind UDP 127.0.0.1:%d: %s",
					port, strerror(errno));

	epfd = epoll_create1(EPOLL_CLOEXEC);
	events = calloc(MAX_EVENTS, sizeof(*events));
	if (epfd < 0 || events == NULL)
		bench_fatal("echo-responder: epoll: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.fd = lsock;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lsock, &ev) != 0)
		bench_fatal("echo-responder: epoll_ctl: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.fd = usock;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, usock, &ev) != 0)
		bench_fatal("echo-responder: epoll_ctl: %s", strerror(errno));
	printf("ready\n");
	fflush(stdout);

	for (;;)
	{
		int			n = epoll_wait(epfd, events, MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR)
			bench_fatal("echo-responder: epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
		{
			int			fd = events[i].data.fd;

			if (fd == usock)
			{
				echo_datagrams(usock);
				continue;
			}
			if (fd == lsock)
			{
				int			s;

				while ((s = accept4(lsock, NULL, NULL,
									SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
				{
					setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.fd = s;
					if (epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev) != 0)
						close(s);
				}
				continue;
			}
			echo_once(fd);
		}
	}
}
