/*-------------------------------------------------------------------------
 *
 * odd_usable_size.c
 *	  Preloaded by t/307_client_robustness.pl ahead of libpqcm: a
 *	  malloc_usable_size() that lies, so that the library's check of
 *	  libpq's connection objects can be seen accepting what it must accept
 *	  and refusing what a libpq of another layout would look like.
 *	  ODD_USABLE_SIZE chooses the lie:
 *
 *	  differ	every other block seems 16 bytes larger (the allocator may
 *				give a block a few bytes more than asked for: two
 *				connection objects need not have the same usable size)
 *	  half		every block seems half its size (exchanging two objects
 *				would exchange only their first halves)
 *	  zero		no block seems to come from this allocator
 *
 *	  Anything else (or unset): the truth.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/test/odd_usable_size.c
 *
 *-------------------------------------------------------------------------
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

size_t		malloc_usable_size(void *ptr);

size_t
malloc_usable_size(void *ptr)
{
	static size_t (*real_usable) (void *);
	static int	calls;
	const char *mode = getenv("ODD_USABLE_SIZE");
	size_t		n;

	if (real_usable == NULL)
		*(void **) &real_usable = dlsym(RTLD_NEXT, "malloc_usable_size");
	if (real_usable == NULL)
		return 0;
	n = real_usable(ptr);
	if (mode && strcmp(mode, "differ") == 0)
		return n + (size_t) (calls++ % 2) * 16;
	if (mode && strcmp(mode, "half") == 0)
		return (n / 2) & ~(size_t) 7;
	if (mode && strcmp(mode, "zero") == 0)
		return 0;
	return n;
}
