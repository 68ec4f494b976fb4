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
 * Given docs/conmgr.md as a second argument, it also checks that the
 * tables of parameters there ("Parameters" and "Instances") and those of
 * the code (cm_config_params, cm_config_instance_params) agree: every
 * parameter of the code is documented once, with its type and unit, its
 * default, its range and whether a reload changes it, and the
 * documentation has no parameter the code lacks.
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
#include "unit_tap.h"

/* One check, named "name: what". */
static void
check(int cond, const char *name, const char *what, const char *detail)
{
	char		label[4096];

	snprintf(label, sizeof(label), "%s: %s", name, what);
	unit_check(cond, label, detail);
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

/* docs/conmgr.md writes ranges with an en dash, no default with an em dash. */
#define EN_DASH "\xe2\x80\x93"
#define EM_DASH "\xe2\x80\x94"

#define DOC_MAX_ROWS	64
#define DOC_MAX_CELLS	8

/* A row of a table of the documentation, split into trimmed cells. */
typedef struct DocRow
{
	char	   *text;			/* the line, cut into the cells */
	const char *cell[DOC_MAX_CELLS];
	int			ncells;
	int			line;
	int			seen;			/* matched by a parameter of the code */
} DocRow;

/*
 * Read the rows of the table under heading (a whole line, "### Name") of
 * the markdown file path, up to the next heading; the header and the
 * separator rows are skipped (a row is one whose first cell is quoted
 * with backquotes).  Returns the number of rows, -1 when the file cannot
 * be read.
 */
static int
read_doc_table(const char *path, const char *heading, DocRow *rows, int max)
{
	FILE	   *f = fopen(path, "r");
	char		line[8192];
	int			lineno = 0;
	int			in = 0;
	int			n = 0;

	if (f == NULL)
	{
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f))
	{
		size_t		len = strlen(line);
		char	   *p;
		DocRow	   *r;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!in)
		{
			in = strcmp(line, heading) == 0;
			continue;
		}
		if (line[0] == '#')
			break;
		if (strncmp(line, "| `", 3) != 0 || n == max)
			continue;
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		r->text = strdup(line);
		r->line = lineno;
		p = r->text + 1;
		while (*p && r->ncells < DOC_MAX_CELLS)
		{
			char	   *bar = strchr(p, '|');
			char	   *end;

			if (bar == NULL)
				break;
			*bar = '\0';
			while (*p == ' ')
				p++;
			end = p + strlen(p);
			while (end > p && end[-1] == ' ')
				*--end = '\0';
			r->cell[r->ncells++] = p;
			p = bar + 1;
		}
	}
	fclose(f);
	return n;
}

/* The first word of a cell, or what its first backquotes enclose. */
static void
doc_first_token(const char *cell, char *out, size_t cap)
{
	size_t		n;

	if (cell[0] == '`')
	{
		const char *end = strchr(cell + 1, '`');

		n = end ? (size_t) (end - cell - 1) : strlen(cell + 1);
		cell++;
	}
	else
		n = strcspn(cell, " ");
	snprintf(out, cap, "%.*s", (int) n, cell);
}

/* Does cell start with prefix, followed by the end or by one of stops? */
static int
doc_starts(const char *cell, const char *prefix, const char *stops)
{
	size_t		n = strlen(prefix);

	return strncmp(cell, prefix, n) == 0 &&
		(cell[n] == '\0' || strchr(stops, cell[n]) != NULL);
}

/* Check one aspect of a documented parameter. */
static void
doc_check(int cond, const char *name, const char *what, const char *docs,
		  const char *code, const DocRow *row)
{
	char		label[300];
	char		detail[1200];

	snprintf(label, sizeof(label), "docs/conmgr.md %s", name);
	snprintf(detail, sizeof(detail),
			 "line %d documents \"%.400s\", the code means \"%.400s\"",
			 row->line, docs, code);
	check(cond, label, what, detail);
}

/* Find the row of parameter quoted (in backquotes); complain unless once. */
static DocRow *
doc_find(DocRow *rows, int n, const char *quoted, const char *table)
{
	DocRow	   *found = NULL;
	int			count = 0;
	int			i;
	char		label[300];
	char		detail[300];

	for (i = 0; i < n; i++)
	{
		if (rows[i].ncells > 0 && strcmp(rows[i].cell[0], quoted) == 0)
		{
			rows[i].seen = 1;
			if (found == NULL)
				found = &rows[i];
			count++;
		}
	}
	snprintf(label, sizeof(label), "docs/conmgr.md %s", quoted);
	snprintf(detail, sizeof(detail), "%d rows of the table \"%s\" name it",
			 count, table);
	check(count == 1, label, "documented once", detail);
	return found;
}

/* The documentation has no row the code lacks. */
static void
doc_check_unknown(const DocRow *rows, int n, const char *table)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		char		label[300];
		char		detail[300];

		snprintf(label, sizeof(label), "docs/conmgr.md %s", rows[i].cell[0]);
		snprintf(detail, sizeof(detail),
				 "line %d of the table \"%s\" names a parameter that conmgr does not know",
				 rows[i].line, table);
		check(rows[i].seen, label, "is a parameter of the code", detail);
	}
}

/*
 * A row of the table "Parameters": parameter, type, default, range,
 * change, meaning.  The type is "integer" (with " (ms)" for a time),
 * "string", "enum", or "`on`/`off`"; the default is the first word or
 * quoted word of its cell ("''" for an empty string); the range is
 * "MIN–MAX" for an integer (a comment may follow after a comma), "MIN–MAX
 * bytes" for a string, the quoted words for an enumeration, and empty for
 * on/off; the change starts with "reload" or "restart".
 */
static void
check_doc_parameter(const CmConfigParam *par, const DocRow *row,
					const char *quoted)
{
	int			onoff = par->type == CM_PARAM_ENUM &&
		strcmp(par->words[0], "off") == 0 && par->words[1] &&
		strcmp(par->words[1], "on") == 0 && par->words[2] == NULL;
	char		type[100];
	char		def[1100];
	char		token[1100];
	char		range[300];
	int			i;

	switch (par->type)
	{
		case CM_PARAM_INT:
			snprintf(type, sizeof(type), "integer%s",
					 strcmp(par->unit, " ms") == 0 ? " (ms)" : par->unit);
			snprintf(def, sizeof(def), "%d", par->default_int);
			snprintf(range, sizeof(range), "%d" EN_DASH "%d", par->min, par->max);
			break;
		case CM_PARAM_STRING:
			snprintf(type, sizeof(type), "string");
			snprintf(def, sizeof(def), "%s",
					 par->default_string[0] ? par->default_string : "''");
			snprintf(range, sizeof(range), "%d" EN_DASH "%d bytes", par->min, par->max);
			break;
		case CM_PARAM_ENUM:
			snprintf(type, sizeof(type), "%s", onoff ? "`on`/`off`" : "enum");
			snprintf(def, sizeof(def), "%s", par->words[par->default_int]);
			range[0] = '\0';
			for (i = 0; !onoff && par->words[i]; i++)
				snprintf(range + strlen(range), sizeof(range) - strlen(range),
						 "%s`%s`", i > 0 ? ", " : "", par->words[i]);
			break;
	}

	doc_check(strcmp(row->cell[1], type) == 0, quoted, "type and unit",
			  row->cell[1], type, row);
	doc_first_token(row->cell[2], token, sizeof(token));
	doc_check(strcmp(token, def) == 0, quoted, "default",
			  row->cell[2], def, row);
	if (par->type == CM_PARAM_INT)
		doc_check(doc_starts(row->cell[3], range, ","), quoted, "range",
				  row->cell[3], range, row);
	else
		doc_check(strcmp(row->cell[3], range) == 0, quoted, "range",
				  row->cell[3], range, row);
	doc_check(doc_starts(row->cell[4], par->reloadable ? "reload" : "restart", ","),
			  quoted, "changed by a reload or a restart", row->cell[4],
			  par->reloadable ? "reload" : "restart", row);
}

/*
 * A row of the table "Instances": parameter (with the suffix N), type,
 * default, meaning.  The type is "integer MIN–MAX", "string (at most MAX
 * bytes)" or, for a string the parser checks otherwise, "string"; no
 * instance parameter has a default ("—").
 */
static void
check_doc_instance(const CmConfigParam *par, const DocRow *row,
				   const char *quoted)
{
	char		type[100];

	if (par->type == CM_PARAM_INT)
		snprintf(type, sizeof(type), "integer %d" EN_DASH "%d", par->min, par->max);
	else if (par->max > 0)
		snprintf(type, sizeof(type), "string (at most %d bytes)", par->max);
	else
		snprintf(type, sizeof(type), "string");
	doc_check(strcmp(row->cell[1], type) == 0, quoted, "type and range",
			  row->cell[1], type, row);
	doc_check(doc_starts(row->cell[2], EM_DASH, " "), quoted, "no default",
			  row->cell[2], EM_DASH, row);
}

/*
 * Compare the table under "### table" of the documentation at path with
 * the nparams rows of params: each parameter (its name followed by
 * suffix) documented once in a row of at least ncells cells, which
 * check_row checks; no row for a parameter the code lacks.
 */
static void
check_doc_table(const char *path, const char *table,
				const CmConfigParam *params, int nparams,
				const char *suffix, int ncells,
				void (*check_row) (const CmConfigParam *, const DocRow *, const char *))
{
	DocRow		rows[DOC_MAX_ROWS];
	char		heading[100];
	char		what[100];
	int			n;
	int			k;
	int			i;

	snprintf(heading, sizeof(heading), "### %s", table);
	snprintf(what, sizeof(what), "has a table \"%s\"", table);
	n = read_doc_table(path, heading, rows, DOC_MAX_ROWS);
	check(n > 0, "docs/conmgr.md", what, path);
	if (n <= 0)
		return;
	for (k = 0; k < nparams; k++)
	{
		char		quoted[200];
		DocRow	   *row;

		snprintf(quoted, sizeof(quoted), "`%s%s`", params[k].name, suffix);
		row = doc_find(rows, n, quoted, table);
		if (row == NULL)
			continue;
		if (row->ncells < ncells)
			check(0, quoted, "has every cell of the table", row->cell[0]);
		else
			check_row(&params[k], row, quoted);
	}
	doc_check_unknown(rows, n, table);
	for (i = 0; i < n; i++)
		free(rows[i].text);
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

	if (argc != 2 && argc != 3)
	{
		fprintf(stderr, "usage: %s config.cases [conmgr.md]\n", argv[0]);
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

	/* every key has its row in the tables */
	{
		int			k;
		int			rows = 0;

		for (k = 0; k < CM_NUM_KEYS; k++)
			rows += cm_config_params[k].name != NULL;
		for (k = 0; k < CM_NUM_IKEYS; k++)
			rows += cm_config_instance_params[k].name != NULL;
		check(rows == CM_NUM_KEYS + CM_NUM_IKEYS, "parameter tables",
			  "every key has a row", NULL);
	}

	if (argc == 3)
	{
		check_doc_table(argv[2], "Parameters", cm_config_params, CM_NUM_KEYS,
						"", 5, check_doc_parameter);
		check_doc_table(argv[2], "Instances", cm_config_instance_params,
						CM_NUM_IKEYS, "N", 3, check_doc_instance);
	}

	free(conf.s);
	free(expect.s);
	free(errors.s);
	free(reload.s);
	free(report.s);
	printf("1..%d\n", unit_ntests);
	return unit_status();
}
