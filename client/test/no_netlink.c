/*-------------------------------------------------------------------------
 *
 * no_netlink.c
 *	  Preloaded by t/306_client_impostor.pl ahead of libpqcm: socket()
 *	  refuses netlink sockets with EACCES, as a sandbox or a seccomp
 *	  filter does, so that the library cannot ask the kernel's socket
 *	  diagnostics who holds a conmgr port.  Every other socket is made
 *	  by the real socket().
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/test/no_netlink.c
 *
 *-------------------------------------------------------------------------
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>

int
socket(int domain, int type, int protocol)
{
	static int	(*real_socket) (int, int, int);

	if (domain == AF_NETLINK)
	{
		errno = EACCES;
		return -1;
	}
	if (real_socket == NULL)
		*(void **) &real_socket = dlsym(RTLD_NEXT, "socket");
	if (real_socket == NULL)
	{
		errno = ENOSYS;
		return -1;
	}
	return real_socket(domain, type, protocol);
}
