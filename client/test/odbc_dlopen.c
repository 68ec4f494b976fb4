/*-------------------------------------------------------------------------
 *
 * odbc_dlopen.c
 *	  Loads odbc_plugin.so (odbc_test.c built as a shared object linked
 *	  with unixODBC) with RTLD_LOCAL, as Python loads pyodbc, and runs its
 *	  odbc_test_main().  The driver manager is then outside the global
 *	  scope, where libpqcm's ODBC wrappers must still find it.
 *
 *	odbc_dlopen PLUGIN ARGUMENTS-OF-ODBC_TEST...
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  client/test/odbc_dlopen.c
 *
 *-------------------------------------------------------------------------
 */
#include <dlfcn.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
	void	   *h;
	int			(*run) (int, char **);

	if (argc < 3)
	{
		fprintf(stderr, "usage: %s PLUGIN ARGUMENTS...\n", argv[0]);
		return 2;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
	{
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	/* SQLDrivers: defined by the driver manager only, not by libpqcm */
	if (dlsym(RTLD_DEFAULT, "SQLDrivers") != NULL)
	{
		fprintf(stderr, "the driver manager is in the global scope: the test is void\n");
		return 2;
	}
	*(void **) &run = dlsym(h, "odbc_test_main");
	if (run == NULL)
	{
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	return run(argc - 1, argv + 1);
}
