/*-------------------------------------------------------------------------
 *
 * test_config.c
 *	  Unit tests of the conmgr.conf parser (conmgr/cm_config.c).
 *
 * Table driven from config.cases (see the header of that file): each case
 * is a configuration text and either the values the parser must produce
 * or the exact set of errors it must report (each "file:line: message"),
 * optionally followed by a second text to reload and the lines the reload
 * must report.
 *
 * Prints one "ok N - description" or "not ok N - description" line per
 * check; exits 1 if any check failed.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/test_config.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_config.h"

static int	ntests = 0;
static int	nfailed = 0;

static void
check(int cond, const char *name, const char *what, const char *detail)
{
	ntests++;
	if (!cond)
		nfailed++;
	printf("%sok %d - %s: %s\n", cond ? "" : "not ", ntests, name, what);
	if (!cond && detail)
		printf("# %s\n", detail);
}

/* A growing text buffer. */
typedef struct Text
{
	char	   *s;
	size_t		len;
	size_t		cap;
} Text;

static void
text_add(Text *t, const char *line)
{
	size_t		n = strlen(line);

	if (t->len + n + 2 > t->cap)
	{
		t->cap = (t->len + n + 2) * 2;
		t->s = realloc(t->s, t->cap);
		if (t->s == NULL)
		{
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	memcpy(t->s + t->len, line, n);
	t->len += n;
	t->s[t->len++] = '\n';
	t->s[t->len] = '\0';
}

static void
text_reset(Text *t)
{
	t->len = 0;
	if (t->s)
		t->s[0] = '\0';
}

static void
collect(void *arg, const char *message)
{
	text_add((Text *) arg, message);
}

/* Every field of a configuration as "name = value" lines. */
static void
dump(const CmConfig *cfg, Text *out)
{
	char		line[600];
	int			i;

	text_reset(out);
#define DUMP_INT(f) do { snprintf(line, sizeof(line), #f " = %d", cfg->f); text_add(out, line); } while (0)
	DUMP_INT(port);
	DUMP_INT(metrics_port);
	DUMP_INT(heartbeat_interval);
	DUMP_INT(heartbeat_timeout);
	DUMP_INT(connect_timeout);
	DUMP_INT(max_app_connections);
	DUMP_INT(max_app_connections_per_user);
	DUMP_INT(app_handshake_timeout);
	DUMP_INT(app_register_timeout);
	DUMP_INT(ninstances);
	DUMP_INT(heartbeat_datagrams);
	snprintf(line, sizeof(line), "log_level = %s", cm_config_level_name(cfg->log_level));
	text_add(out, line);
	snprintf(line, sizeof(line), "log_destination = %s", cm_config_destination_name(cfg->log_destination));
	text_add(out, line);
	snprintf(line, sizeof(line), "log_file = %s", cfg->log_file);
	text_add(out, line);
	for (i = 0; i < cfg->ninstances; i++)
	{
		const CmInstanceConfig *ic = &cfg->inst[i];

		if (!ic->defined)
			continue;
		snprintf(line, sizeof(line), "inst%d.host = %s", i, ic->host ? ic->host : "(null)");
		text_add(out, line);
		snprintf(line, sizeof(line), "inst%d.hostaddr = %s", i, ic->hostaddr ? ic->hostaddr : "(null)");
		text_add(out, line);
		snprintf(line, sizeof(line), "inst%d.port = %d", i, ic->port);
		text_add(out, line);
		snprintf(line, sizeof(line), "inst%d.watchdog_port = %d", i, ic->watchdog_port);
		text_add(out, line);
	}
}

/* Is every line of want present in have (whole lines, or substrings)? */
static int
contains_all(const Text *have, const Text *want, int whole_lines,
			 char *missing, size_t cap)
{
	const char *p = want->s ? want->s : "";

	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		n = nl ? (size_t) (nl - p) : strlen(p);
		char		needle[1024];
		const char *h = have->s ? have->s : "";
		int			found = 0;

		snprintf(needle, sizeof(needle), "%s%.*s%s", whole_lines ? "\n" : "",
				 (int) n, p, whole_lines ? "\n" : "");
		if (whole_lines)
		{
			char	   *padded = malloc(strlen(h) + 2);

			padded[0] = '\n';
			strcpy(padded + 1, h);
			found = strstr(padded, needle) != NULL;
			free(padded);
		}
		else
			found = strstr(h, needle) != NULL;
		if (!found)
		{
			snprintf(missing, cap, "missing: %.*s", (int) n, p);
			return 0;
		}
		p += n + (nl ? 1 : 0);
	}
	return 1;
}

static int
count_lines(const Text *t)
{
	int			n = 0;
	const char *p;

	for (p = t->s ? t->s : ""; *p; p++)
		if (*p == '\n')
			n++;
	return n;
}

static void
write_file(const char *path, const Text *t)
{
	FILE	   *f = fopen(path, "w");

	if (f == NULL)
	{
		perror(path);
		exit(2);
	}
	if (t->s)
		fputs(t->s, f);
	fclose(f);
}

typedef enum
{
	SEC_NONE, SEC_CONF, SEC_EXPECT, SEC_ERRORS, SEC_RELOAD, SEC_REPORT
} Section;

/* Run one case. */
static void
run_case(const char *name, const char *path, Text *conf, Text *expect,
		 Text *errors, Text *reload, Text *report, int has_errors,
		 int has_reload)
{
	CmConfig	cfg;
	Text		msgs = {0};
	Text		values = {0};
	char		missing[1200];
	bool		ok;

	write_file(path, conf);
	ok = cm_config_load(path, &cfg, collect, &msgs);
	if (has_errors)
	{
		char		detail[2400];

		snprintf(detail, sizeof(detail), "reported:\n# %s", msgs.s ? msgs.s : "");
		check(!ok, name, "the file is refused", detail);
		check(contains_all(&msgs, errors, 0, missing, sizeof(missing)),
			  name, "every expected error is reported", missing);
		check(count_lines(&msgs) == count_lines(errors), name,
			  "no other error is reported", detail);
	}
	else
	{
		check(ok, name, "the file is accepted", msgs.s);
		dump(&cfg, &values);
		check(contains_all(&values, expect, 1, missing, sizeof(missing)),
			  name, "the values are as expected", missing);
	}

	if (has_reload && ok)
	{
		CmConfig	newcfg;
		Text		rep = {0};

		write_file(path, reload);
		if (cm_config_load(path, &newcfg, collect, &rep))
		{
			cm_config_reload(&cfg, &newcfg, collect, &rep, NULL);
			check(contains_all(&rep, report, 0, missing, sizeof(missing)),
				  name, "reload reports every change", missing);
			check(count_lines(&rep) == count_lines(report), name,
				  "reload reports nothing else", rep.s);
		}
		else
			check(0, name, "reloaded file is accepted", rep.s);
		cm_config_free(&newcfg);
		free(rep.s);
	}
	cm_config_free(&cfg);
	free(msgs.s);
	free(values.s);
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char		line[2048];
	char		name[256] = "";
	char		path[] = "/tmp/cm_test_config_XXXXXX";
	int			fd;
	Section		sec = SEC_NONE;
	Text		conf = {0},
				expect = {0},
				errors = {0},
				reload = {0},
				report = {0};
	int			has_errors = 0,
				has_reload = 0;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s config.cases\n", argv[0]);
		return 2;
	}
	f = fopen(argv[1], "r");
	if (f == NULL)
	{
		perror(argv[1]);
		return 2;
	}
	fd = mkstemp(path);
	if (fd < 0)
	{
		perror("mkstemp");
		fclose(f);
		return 2;
	}
	close(fd);

	while (fgets(line, sizeof(line), f))
	{
		size_t		n = strlen(line);

		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (strncmp(line, "  ", 2) == 0 || strcmp(line, " ") == 0)
		{
			const char *body = n >= 2 ? line + 2 : "";

			switch (sec)
			{
				case SEC_CONF:
					text_add(&conf, body);
					break;
				case SEC_EXPECT:
					text_add(&expect, body);
					break;
				case SEC_ERRORS:
					text_add(&errors, body);
					break;
				case SEC_RELOAD:
					text_add(&reload, body);
					break;
				case SEC_REPORT:
					text_add(&report, body);
					break;
				case SEC_NONE:
					break;
			}
			continue;
		}
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (strncmp(line, "case: ", 6) == 0)
		{
			snprintf(name, sizeof(name), "%.200s", line + 6);
			text_reset(&conf);
			text_reset(&expect);
			text_reset(&errors);
			text_reset(&reload);
			text_reset(&report);
			has_errors = has_reload = 0;
			sec = SEC_NONE;
		}
		else if (strcmp(line, "conf:") == 0)
			sec = SEC_CONF;
		else if (strcmp(line, "expect:") == 0)
			sec = SEC_EXPECT;
		else if (strcmp(line, "errors:") == 0)
		{
			sec = SEC_ERRORS;
			has_errors = 1;
		}
		else if (strcmp(line, "reload:") == 0)
		{
			sec = SEC_RELOAD;
			has_reload = 1;
		}
		else if (strcmp(line, "report:") == 0)
			sec = SEC_REPORT;
		else if (strcmp(line, "end") == 0)
		{
			run_case(name, path, &conf, &expect, &errors, &reload, &report,
					 has_errors, has_reload);
			sec = SEC_NONE;
		}
		else
		{
			fprintf(stderr, "%s: unexpected line: %s\n", argv[1], line);
			unlink(path);
			fclose(f);
			return 2;
		}
	}
	fclose(f);

	/* a file that cannot be opened */
	{
		CmConfig	cfg;
		Text		msgs = {0};
		bool		ok;

		unlink(path);
		ok = cm_config_load(path, &cfg, collect, &msgs);
		check(!ok && msgs.s && strstr(msgs.s, "could not open configuration file: No such file or directory"),
			  "missing file", "refused with the cause", msgs.s);
		cm_config_free(&cfg);
		free(msgs.s);
	}

	free(conf.s);
	free(expect.s);
	free(errors.s);
	free(reload.s);
	free(report.s);
	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
