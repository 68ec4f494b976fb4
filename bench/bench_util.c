/*-------------------------------------------------------------------------
 *
 * bench_util.c
 *	  Small helpers shared by the benchmark programs of bench/.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  bench/bench_util.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

uint64_t
bench_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * The p-th percentile by the nearest-rank method: the smallest value that
 * at least p % of the samples do not exceed.  0 for no samples.
 */
double
bench_percentile(double *v, size_t n, double p)
{
	size_t		rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(double), cmp_double);
	rank = (size_t) ((p / 100.0) * (double) n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/*
 * utime + stime (fields 14 and 15 of /proc/PID/stat).  The command name
 * (field 2) is in parentheses and may hold spaces: fields are counted from
 * the last closing parenthesis.
 */
long long
bench_proc_cpu_ticks(int pid)
{
	char		path[64];
	char		buf[2048];
	FILE	   *f;
	size_t		n;
	char	   *p;
	long long	ut,
				st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;

	/*
	 * after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
	 * cminflt majflt cmajflt utime(14) stime(15)
	 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
			   &ut, &st) != 2)
		return -1;
	return ut + st;
}

long long
bench_proc_cpu_ns(int pid)
{
	char		path[64];
	FILE	   *f;
	long long	ns = -1;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%lld", &ns) != 1)
		ns = -1;
	fclose(f);
	return ns;
}

long
bench_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if ((rlim_t) want > rl.rlim_cur)
	{
		rl.rlim_cur = (rlim_t) want < rl.rlim_max ? (rlim_t) want : rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
		(void) getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (long) rl.rlim_cur;
}

FILE	   *
bench_csv_open(const char *path, const char *header)
{
	FILE	   *f = fopen(path, "a");
	struct stat sb;

	if (f == NULL)
	{
		fprintf(stderr, "could not open \"%s\": %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &sb) == 0 && sb.st_size == 0)
		fprintf(f, "%s\n", header);
	return f;
}

int
bench_getopt(int argc, char **argv, const BenchOpt *opts, void (*usage) (void))
{
	struct option *longopts;
	size_t		n = 0;
	int			c;

	while (opts[n].name != NULL)
		n++;
	longopts = calloc(n + 1, sizeof(struct option));
	if (longopts == NULL)
		bench_fatal("out of memory");
	for (size_t i = 0; i < n; i++)
	{
		longopts[i].name = opts[i].name;
		longopts[i].has_arg = opts[i].kind == BENCH_OPT_FLAG ? no_argument : required_argument;
		longopts[i].val = 256 + (int) i;	/* no short option has such a value */
	}
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		const BenchOpt *o;

		if (c < 256 || c >= 256 + (int) n)
		{
			usage();
			continue;
		}
		o = &opts[c - 256];
		switch (o->kind)
		{
			case BENCH_OPT_INT:
				*(int *) o->value = atoi(optarg);
				break;
			case BENCH_OPT_DOUBLE:
				*(double *) o->value = atof(optarg);
				break;
			case BENCH_OPT_STRING:
				*(const char **) o->value = optarg;
				break;
			case BENCH_OPT_FLAG:
				*(bool *) o->value = true;
				break;
		}
	}
	free(longopts);
	return optind;
}

void
bench_fatal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

int
bench_connect_start(int epfd, uint32_t token, const char *host, int port,
					char *err, size_t errcap)
{
	struct sockaddr_in sin;
	struct epoll_event ev;
	int			one = 1;
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t) port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
	{
		snprintf(err, errcap, "not an IPv4 address: %s", host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
	{
		snprintf(err, errcap, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.u32 = token;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
	{
		snprintf(err, errcap, "epoll_ctl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0 && errno != EINPROGRESS)
	{
		snprintf(err, errcap, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
