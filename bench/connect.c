/*-------------------------------------------------------------------------
 *
 * connect.c
 *	  Benchmark: how long an application takes to connect, one connection
 *	  at a time, directly to a server, through conmgr, or through a pooler.
 *
 * Measure mode opens and closes K connections to one conninfo, one after
 * the other, and takes the time of each from the call of PQconnectdb()
 * until it returns with CONNECTION_OK (with --query, until the result of
 * a trivial "SELECT 1" has arrived too).  PQfinish() is not timed.  The
 * program is linked with libpqcm ahead of libpq, as an application that
 * uses Connection Manager is, so a conninfo naming conmgr goes through
 * stage 1 (the route request to conmgr) and stage 2 (the connection to the
 * instance conmgr names, then the registration); a conninfo naming a
 * server or a pooler on a loopback address pays the library's probe once
 * (its answer is cached for 60 s), which the warm-up connections take.
 * --expect-conmgr yes|no checks, on every connection, that it did or did
 * not go through conmgr (PQcmSocket()).  Any failed connection ends the
 * run with an error naming the conninfo and libpq's message.  --pause
 * waits between connections, so that one connection does not overlap the
 * work its predecessor left to the server, conmgr and the watchdog
 * (backend exit, unregistration).  Prints min/median/p90/p99/max in ms and
 * can append every sample to a CSV file.
 *
 * Summary mode (--summary SAMPLES.csv) reads such a CSV file, in which
 * several runs (paths and rounds) may have appended their samples, and
 * prints the same figures per label over all its samples, optionally
 * writing them to a summary CSV file.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  bench/connect.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"
#include "libpq-cm.h"
#include "cm_time.h"
#include "bench_util.h"

#define SAMPLES_HEADER "label,round,seq,connect_ms,query_ms,ms"
#define SUMMARY_HEADER "label,connections,min_ms,median_ms,p90_ms,p99_ms,max_ms"
#define MAX_LABELS	16
#define MAX_LABEL_LEN	64

/* The samples of one label, in summary mode. */
typedef struct LabelSamples
{
	char		label[MAX_LABEL_LEN];
	double	   *v;
	size_t		n;
	size_t		cap;
} LabelSamples;

static int	opt_count = 1000;
static int	opt_warmup = 1;
static bool opt_query = false;
static const char *opt_label = "connect";
static int	opt_round = 1;
static const char *opt_csv = NULL;
static int	opt_expect_conmgr = -1; /* -1: no check */
static bool opt_header = false;
static int	opt_pause_ms = 0;

static void
usage(void)
{
	fprintf(stderr,
			"usage: connect [options] CONNINFO\n"
			"       connect --summary SAMPLES.csv [--csv SUMMARY.csv] [--header]\n"
			"  --count K             timed connections (1000)\n"
			"  --warmup W            untimed connections first (1)\n"
			"  --query               time until the result of SELECT 1, too\n"
			"  --label NAME          name of the path in the output and CSV (connect)\n"
			"  --round R             round number written to the CSV (1)\n"
			"  --csv FILE            append every sample to FILE (summary mode:\n"
			"                        write the summary rows to FILE, replaced)\n"
			"  --expect-conmgr yes|no  fail a connection that did not (did) go\n"
			"                        through conmgr\n"
			"  --pause MS            wait MS milliseconds after each connection (0)\n"
			"  --header              print the table header first\n");
	exit(2);
}

/*
 * Exit with status 1 and a message on stderr: a connection or query
 * failed.  msg (libpq's message, which ends in a newline) follows the text
 * of fmt after ": ", without its final newline.
 */
static void fail(const char *msg, const char *fmt,...) __attribute__((format(printf, 2, 3), noreturn));

static void
fail(const char *msg, const char *fmt,...)
{
	va_list		ap;
	size_t		len = strlen(msg);

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	while (len > 0 && msg[len - 1] == '\n')
		len--;
	fprintf(stderr, ": %.*s\n", (int) len, msg);
	exit(1);
}

static void
print_header(void)
{
	printf("%-16s %11s %8s %8s %8s %8s %8s\n",
		   "path", "connections", "min", "median", "p90", "p99", "max");
}

/*
 * Print one table row for the n samples in v (sorted in place), and write
 * it to csv when that is not NULL.
 */
static void
print_row(const char *label, double *v, size_t n, FILE *csv)
{
	double		min = bench_percentile(v, n, 0);
	double		med = bench_percentile(v, n, 50);
	double		p90 = bench_percentile(v, n, 90);
	double		p99 = bench_percentile(v, n, 99);
	double		max = bench_percentile(v, n, 100);

	printf("%-16s %11zu %8.3f %8.3f %8.3f %8.3f %8.3f\n",
		   label, n, min, med, p90, p99, max);
	if (csv != NULL)
		fprintf(csv, "%s,%zu,%.3f,%.3f,%.3f,%.3f,%.3f\n",
				label, n, min, med, p90, p99, max);
}

/*
 * Open one connection to conninfo, check it, optionally run SELECT 1, and
 * close it.  Returns the time from PQconnectdb() to CONNECTION_OK in
 * *connect_ms and, with --query, from then until the query's result in
 * *query_ms.  Exits with an error naming the conninfo on any failure.
 */
static void
one_connection(const char *conninfo, const char *what, int seq,
			   double *connect_ms, double *query_ms)
{
	uint64_t	t0,
				t1,
				t2;
	PGconn	   *conn;

	t0 = cm_mono_ns();
	conn = PQconnectdb(conninfo);
	t1 = cm_mono_ns();
	if (conn == NULL)
		fail("out of memory", "connect: %s: %s %d to \"%s\" failed",
			 opt_label, what, seq, conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		fail(PQerrorMessage(conn), "connect: %s: %s %d to \"%s\" failed",
			 opt_label, what, seq, conninfo);
	if (opt_expect_conmgr == 1 && PQcmSocket(conn) < 0)
		fail("PQcmSocket() is -1", "connect: %s: %s %d to \"%s\" did not go through conmgr",
			 opt_label, what, seq, conninfo);
	if (opt_expect_conmgr == 0 && PQcmSocket(conn) >= 0)
		fail("PQcmSocket() is a socket", "connect: %s: %s %d to \"%s\" went through conmgr",
			 opt_label, what, seq, conninfo);
	*connect_ms = (double) (t1 - t0) / 1e6;
	*query_ms = 0;
	if (opt_query)
	{
		PGresult   *res = PQexec(conn, "SELECT 1");

		t2 = cm_mono_ns();
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
			strcmp(PQgetvalue(res, 0, 0), "1") != 0)
			fail(PQerrorMessage(conn), "connect: %s: SELECT 1 on %s %d to \"%s\" failed",
				 opt_label, what, seq, conninfo);
		PQclear(res);
		*query_ms = (double) (t2 - t1) / 1e6;
	}
	PQfinish(conn);
	if (opt_pause_ms > 0)
	{
		struct timespec ts = {opt_pause_ms / 1000, (opt_pause_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
}

/* Measure mode: see the file header. */
static int
measure(const char *conninfo)
{
	double	   *v;
	FILE	   *csv = NULL;
	double		c_ms,
				q_ms;

	v = calloc((size_t) opt_count, sizeof(double));
	if (v == NULL)
		bench_fatal("out of memory");
	if (opt_csv != NULL && (csv = bench_csv_open(opt_csv, SAMPLES_HEADER)) == NULL)
		exit(1);

	for (int i = 0; i < opt_warmup; i++)
		one_connection(conninfo, "warm-up connection", i + 1, &c_ms, &q_ms);
	for (int i = 0; i < opt_count; i++)
	{
		one_connection(conninfo, "connection", i + 1, &c_ms, &q_ms);
		v[i] = c_ms + q_ms;
		if (csv != NULL)
		{
			if (opt_query)
				fprintf(csv, "%s,%d,%d,%.3f,%.3f,%.3f\n",
						opt_label, opt_round, i + 1, c_ms, q_ms, v[i]);
			else
				fprintf(csv, "%s,%d,%d,%.3f,,%.3f\n",
						opt_label, opt_round, i + 1, c_ms, v[i]);
		}
	}
	if (csv != NULL && fclose(csv) != 0)
		bench_fatal("connect: could not write \"%s\": %s", opt_csv, strerror(errno));

	if (opt_header)
		print_header();
	print_row(opt_label, v, (size_t) opt_count, NULL);
	free(v);
	return 0;
}

/*
 * Summary mode: the samples of SAMPLES.csv (written by measure mode) per
 * label, in the order the labels first appear.  A line that is not a
 * well-formed sample is an error naming the file and line.
 */
static int
summary(const char *path)
{
	LabelSamples labels[MAX_LABELS];
	int			nlabels = 0;
	FILE	   *f;
	FILE	   *out = NULL;
	char		line[512];
	int			lineno = 0;

	if ((f = fopen(path, "r")) == NULL)
		bench_fatal("connect: could not open \"%s\": %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char		label[MAX_LABEL_LEN];
		int			round,
					seq,
					used = 0;
		double		c_ms,
					ms;
		char	   *last;
		int			i;

		lineno++;
		if (lineno == 1 && strncmp(line, "label,", 6) == 0)
			continue;
		/* label,round,seq,connect_ms,query_ms (maybe empty),ms */
		if (sscanf(line, "%63[^,],%d,%d,%lf,%n", label, &round, &seq, &c_ms, &used) != 4 ||
			used == 0 || (last = strrchr(line, ',')) == NULL ||
			sscanf(last + 1, "%lf", &ms) != 1 || ms < c_ms)
			bench_fatal("connect: %s:%d: not a sample line", path, lineno);
		for (i = 0; i < nlabels; i++)
			if (strcmp(labels[i].label, label) == 0)
				break;
		if (i == nlabels)
		{
			if (nlabels == MAX_LABELS)
				bench_fatal("connect: %s:%d: more than %d labels", path, lineno, MAX_LABELS);
			memset(&labels[i], 0, sizeof(LabelSamples));
			snprintf(labels[i].label, sizeof(labels[i].label), "%s", label);
			nlabels++;
		}
		if (labels[i].n == labels[i].cap)
		{
			labels[i].cap = labels[i].cap ? 2 * labels[i].cap : 1024;
			labels[i].v = realloc(labels[i].v, labels[i].cap * sizeof(double));
			if (labels[i].v == NULL)
				bench_fatal("out of memory");
		}
		labels[i].v[labels[i].n++] = ms;
	}
	fclose(f);
	if (nlabels == 0)
		bench_fatal("connect: %s: no samples", path);

	if (opt_csv != NULL)
	{
		if ((out = fopen(opt_csv, "w")) == NULL)
			bench_fatal("connect: could not write \"%s\": %s", opt_csv, strerror(errno));
		fprintf(out, "%s\n", SUMMARY_HEADER);
	}
	if (opt_header)
		print_header();
	for (int i = 0; i < nlabels; i++)
	{
		print_row(labels[i].label, labels[i].v, labels[i].n, out);
		free(labels[i].v);
	}
	if (out != NULL && fclose(out) != 0)
		bench_fatal("connect: could not write \"%s\": %s", opt_csv, strerror(errno));
	return 0;
}

int
main(int argc, char **argv)
{
	const char *summary_of = NULL;
	const char *expect_conmgr = NULL;
	const BenchOpt opts[] = {
		{"count", BENCH_OPT_INT, &opt_count},
		{"warmup", BENCH_OPT_INT, &opt_warmup},
		{"query", BENCH_OPT_FLAG, &opt_query},
		{"label", BENCH_OPT_STRING, &opt_label},
		{"round", BENCH_OPT_INT, &opt_round},
		{"csv", BENCH_OPT_STRING, &opt_csv},
		{"expect-conmgr", BENCH_OPT_STRING, &expect_conmgr},
		{"summary", BENCH_OPT_STRING, &summary_of},
		{"header", BENCH_OPT_FLAG, &opt_header},
		{"pause", BENCH_OPT_INT, &opt_pause_ms},
		{NULL}
	};
	int			first_arg = bench_getopt(argc, argv, opts, usage);

	if (expect_conmgr != NULL && strcmp(expect_conmgr, "yes") == 0)
		opt_expect_conmgr = 1;
	else if (expect_conmgr != NULL && strcmp(expect_conmgr, "no") == 0)
		opt_expect_conmgr = 0;
	else if (expect_conmgr != NULL)
		usage();
	if (summary_of != NULL)
	{
		if (first_arg != argc)
			usage();
		return summary(summary_of);
	}
	if (first_arg != argc - 1 || opt_count <= 0 || opt_warmup < 0 || opt_pause_ms < 0 ||
		strlen(opt_label) == 0 || strlen(opt_label) >= MAX_LABEL_LEN ||
		strchr(opt_label, ',') != NULL)
		usage();
	return measure(argv[first_arg]);
}
