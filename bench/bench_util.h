/*-------------------------------------------------------------------------
 *
 * bench_util.h
 *	  Small helpers shared by the benchmark programs of bench/: clocks,
 *	  percentiles, a process's CPU time, the open-files limit, CSV output,
 *	  long options.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  bench/bench_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef BENCH_BENCH_UTIL_H
#define BENCH_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The wall clock, in nanoseconds (the monotonic one is cm_mono_ns()). */
extern uint64_t bench_wall_ns(void);

/* Sort v[0..n) in place and return its p-th percentile (0..100). */
extern double bench_percentile(double *v, size_t n, double p);

/* utime + stime of a process, in clock ticks, from /proc/PID/stat; -1 if unreadable. */
extern long long bench_proc_cpu_ticks(int pid);

/*
 * CPU time of a process in nanoseconds, from the first field of
 * /proc/PID/schedstat (the scheduler's own account, not rounded to clock
 * ticks); -1 if unreadable.
 */
extern long long bench_proc_cpu_ns(int pid);

/* Raise the soft open-files limit to want (at most the hard limit); returns the new soft limit. */
extern long bench_raise_nofile(long want);

/*
 * Open csv for appending, writing header first when the file is empty;
 * NULL (and a message on stderr) on failure.
 */
extern FILE *bench_csv_open(const char *path, const char *header);

/*
 * Start a non-blocking TCP connection (TCP_NODELAY) to host (an IPv4
 * address) and port, registered in epfd for reading and writing with token
 * as its data.  Returns the descriptor, the connection in progress; or -1
 * with err set (and nothing left open).
 */
extern int	bench_connect_start(int epfd, uint32_t token, const char *host, int port,
								char *err, size_t errcap);

/* What a long option sets. */
typedef enum BenchOptKind
{
	BENCH_OPT_INT,				/* an int, from atoi() of the argument */
	BENCH_OPT_DOUBLE,			/* a double, from atof() of the argument */
	BENCH_OPT_STRING,			/* a const char *, the argument itself */
	BENCH_OPT_FLAG				/* a bool, set to true; no argument */
} BenchOptKind;

/* One long option, --name, and the variable it sets. */
typedef struct BenchOpt
{
	const char *name;
	BenchOptKind kind;
	void	   *value;
} BenchOpt;

/*
 * Parse the long options of argv (getopt_long) by opts, a table ended by an
 * entry whose name is NULL; an option not in it, or one without its
 * argument, calls usage.  Returns the index of the first argument that is
 * not an option.
 */
extern int	bench_getopt(int argc, char **argv, const BenchOpt *opts,
						 void (*usage) (void));

/* Exit with a message on stderr (a usage or set-up error). */
extern void bench_fatal(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

#endif							/* BENCH_BENCH_UTIL_H */
