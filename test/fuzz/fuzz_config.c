/*-------------------------------------------------------------------------
 *
 * fuzz_config.c
 *	  libFuzzer target: the conmgr.conf parser (cm_config_load) and the
 *	  reload of what it accepted (cm_config_reload).
 *
 * Each file is written as conmgr.conf in a scratch directory and loaded as
 * conmgr loads it at start and on SIGHUP.  Checked:
 *
 *	- the parser neither crashes nor leaks (the configuration is freed, as
 *	  conmgr frees it, whether or not the file was accepted);
 *	- it accepts the file exactly when it reports nothing, and every report
 *	  names the file and a line of it ("conmgr.conf:LINE: ..."), except the
 *	  one whole-file problem, a file that defines no instance;
 *	- an accepted configuration holds values within the documented ranges
 *	  and instances that are complete;
 *	- reloading it over the configuration in effect applies every
 *	  parameter a reload may change, keeps and counts the restart-only
 *	  ones, reports each change once and flags exactly the instances that
 *	  differ; once those are copied as conmgr does, a second reload has
 *	  nothing left to report but the ignored.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_config.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_config.h"
#include "fuzz_common.h"

/* What the parser reported, checked as it comes. */
typedef struct Reports
{
	const char *path;
	int			nlines;			/* lines in the file */
	int			count;
} Reports;

static void
check_report(void *arg, const char *message)
{
	Reports    *r = arg;
	size_t		plen = strlen(r->path);
	const char *p = message + plen;
	char	   *end;
	long		line;

	r->count++;
	FUZZ_CHECK(strncmp(message, r->path, plen) == 0 && *p == ':',
			   "report does not name the file: %s", message);
	p++;
	if (*p == ' ')
	{
		/* the two whole-file errors name no line */
		FUZZ_CHECK(strstr(p, "no instance is defined") == p + 1 ||
				   strstr(p, "secret_file is not set") == p + 1,
				   "report names no line: %s", message);
		return;
	}
	line = strtol(p, &end, 10);
	FUZZ_CHECK(end > p && *end == ':' && end[1] == ' ' && end[2] != '\0',
			   "report is not \"file:line: message\": %s", message);
	FUZZ_CHECK(line >= 1 && line <= r->nlines,
			   "report names line %ld of a file of %d lines: %s",
			   line, r->nlines, message);
}

static void
count_report(void *arg, const char *message)
{
	(*(int *) arg)++;
}

/* Lines as getline() sees them: a last line without newline counts. */
static int
count_lines(const uint8_t *data, size_t size)
{
	int			n = 0;
	size_t		i;

	for (i = 0; i < size; i++)
		if (data[i] == '\n')
			n++;
	if (size > 0 && data[size - 1] != '\n')
		n++;
	return n;
}

/*
 * An accepted configuration is complete, and every value is within the
 * bounds of its row of cm_config_params (the length for a string, the
 * words for an enumeration).
 */
static void
check_accepted(const CmConfig *cfg)
{
	int			i;
	int			defined = 0;

	for (i = 0; i < CM_NUM_KEYS; i++)
	{
		const CmConfigParam *par = &cm_config_params[i];

		if (par->type == CM_PARAM_STRING)
		{
			const char *v = cm_config_string(cfg, par);

			FUZZ_CHECK(v != NULL && (int) strlen(v) >= par->min &&
					   (int) strlen(v) <= par->max,
					   "%s missing or of %zu bytes", par->name,
					   v ? strlen(v) : 0);
		}
		else
			FUZZ_CHECK(cm_config_int(cfg, par) >= par->min &&
					   cm_config_int(cfg, par) <= par->max,
					   "%s %d", par->name, cm_config_int(cfg, par));
	}
	FUZZ_CHECK(cfg->heartbeat_interval < cfg->heartbeat_timeout,
			   "heartbeat_interval %d, heartbeat_timeout %d",
			   cfg->heartbeat_interval, cfg->heartbeat_timeout);
	FUZZ_CHECK(cfg->ninstances >= 1 && cfg->ninstances <= CM_MAX_INSTANCES &&
			   cfg->inst[cfg->ninstances - 1].defined,
			   "ninstances %d", cfg->ninstances);
	for (i = 0; i < CM_MAX_INSTANCES; i++)
	{
		const CmInstanceConfig *ic = &cfg->inst[i];

		if (!ic->defined)
		{
			FUZZ_CHECK(ic->host == NULL && ic->hostaddr == NULL &&
					   ic->port == 0 && ic->watchdog_port == 0,
					   "undefined instance %d has values", i);
			continue;
		}
		defined++;
		FUZZ_CHECK(i < cfg->ninstances, "instance %d beyond ninstances %d",
				   i, cfg->ninstances);
		FUZZ_CHECK(ic->host != NULL || ic->hostaddr != NULL,
				   "instance %d has no host", i);
		FUZZ_CHECK(ic->port >= 1 && ic->port <= 65535 &&
				   ic->watchdog_port >= 1 && ic->watchdog_port <= 65535,
				   "instance %d: port %d, watchdog port %d",
				   i, ic->port, ic->watchdog_port);
	}
	FUZZ_CHECK(defined > 0, "accepted a file without instances");
}

static bool
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Does instance i differ between the two configurations? */
static bool
instance_differs(const CmConfig *a, const CmConfig *b, int i)
{
	const CmInstanceConfig *x = &a->inst[i];
	const CmInstanceConfig *y = &b->inst[i];

	return x->defined != y->defined || !str_same(x->host, y->host) ||
		!str_same(x->hostaddr, y->hostaddr) || x->port != y->port ||
		x->watchdog_port != y->watchdog_port;
}

static bool
param_same(const CmConfig *a, const CmConfig *b, const CmConfigParam *par)
{
	if (par->type == CM_PARAM_STRING)
		return str_same(cm_config_string(a, par), cm_config_string(b, par));
	return cm_config_int(a, par) == cm_config_int(b, par);
}

/*
 * Reload newcfg over cur the way conmgr applies a SIGHUP, and check what
 * cm_config.h and docs/conmgr.md promise: every parameter that a reload may
 * change takes its new value, the restart-only ones (those whose row is
 * not reloadable: port, metrics_port and the two heartbeat times) keep
 * theirs and are counted as ignored, every change is reported once, and
 * exactly the instances that differ are flagged.  Once they are copied, a
 * second reload has nothing left but the ignored.
 */
static void
check_reload(CmConfig *cur, const CmConfig *newcfg)
{
	bool		changed[CM_MAX_INSTANCES];
	bool		differs[CM_MAX_INSTANCES];
	CmConfig	old = *cur;		/* the integers; strings are not kept */
	int			expect_ignored = 0;
	int			expect_reports = 0;
	int			ignored;
	int			reports = 0;
	int			i;

	for (i = 0; i < CM_NUM_KEYS; i++)
	{
		bool		differs_i = !param_same(cur, newcfg, &cm_config_params[i]);

		expect_reports += differs_i;
		if (!cm_config_params[i].reloadable)
			expect_ignored += differs_i;
	}
	for (i = 0; i < CM_MAX_INSTANCES; i++)
	{
		differs[i] = instance_differs(cur, newcfg, i);
		expect_reports += differs[i];
	}

	memset(changed, 0, sizeof(changed));
	ignored = cm_config_reload(cur, newcfg, count_report, &reports, changed);
	FUZZ_CHECK(ignored == expect_ignored, "reload ignored %d changes instead of %d",
			   ignored, expect_ignored);
	FUZZ_CHECK(reports == expect_reports, "reload reported %d changes instead of %d",
			   reports, expect_reports);
	for (i = 0; i < CM_NUM_KEYS; i++)
	{
		const CmConfigParam *par = &cm_config_params[i];

		if (par->reloadable)
			FUZZ_CHECK(param_same(cur, newcfg, par),
					   "reload did not apply the new value of %s", par->name);
		else if (par->type == CM_PARAM_STRING)
			FUZZ_CHECK(cm_config_string(cur, par) == cm_config_string(&old, par),
					   "reload changed %s, which needs a restart", par->name);
		else
			FUZZ_CHECK(cm_config_int(cur, par) == cm_config_int(&old, par),
					   "reload changed %s, which needs a restart", par->name);
	}
	for (i = 0; i < CM_MAX_INSTANCES; i++)
	{
		FUZZ_CHECK(changed[i] == differs[i], "instance %d %s flagged as changed",
				   i, changed[i] ? "wrongly" : "not");
		if (changed[i])
			cm_config_set_instance(cur, newcfg, i);
	}
	FUZZ_CHECK(cur->ninstances == newcfg->ninstances,
			   "after the reload ninstances is %d instead of %d",
			   cur->ninstances, newcfg->ninstances);

	/* only the ignored restart-only changes remain */
	reports = 0;
	memset(changed, 0, sizeof(changed));
	FUZZ_CHECK(cm_config_reload(cur, newcfg, count_report, &reports, changed) == ignored &&
			   reports == ignored,
			   "a second reload reported %d changes, %d ignored the first time",
			   reports, ignored);
	for (i = 0; i < CM_MAX_INSTANCES; i++)
		FUZZ_CHECK(!changed[i], "instance %d changed on a second reload", i);
}

/* Write data as conmgr.conf and load it, checking every report. */
static bool
load(const uint8_t *data, size_t size, CmConfig *cfg)
{
	const char *path = fuzz_scratch_path("conmgr.conf");
	Reports		r;
	bool		ok;

	fuzz_write_file(path, data, size, 0600);
	r.path = path;
	r.nlines = count_lines(data, size);
	r.count = 0;
	ok = cm_config_load(path, cfg, check_report, &r);
	FUZZ_CHECK(ok == (r.count == 0), "load returned %s with %d reports",
			   ok ? "true" : "false", r.count);
	if (ok)
		check_accepted(cfg);
	return ok;
}

/*
 * The input is one conmgr.conf, reloaded over the defaults; or, when it
 * holds a form feed, the file conmgr started with, a form feed, and the
 * file it reloads.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ff = memchr(data, '\f', size);
	CmConfig	cur;
	CmConfig	cfg;
	bool		cur_ok = true;

	if (ff != NULL)
		cur_ok = load(data, (size_t) (ff - data), &cur);
	else
		cm_config_init(&cur);
	if (ff != NULL)
	{
		size_t		skip = (size_t) (ff - data) + 1;

		data += skip;
		size -= skip;
	}
	if (load(data, size, &cfg) && cur_ok)
		check_reload(&cur, &cfg);
	cm_config_free(&cfg);
	cm_config_free(&cur);
	return 0;
}
