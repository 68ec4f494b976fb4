/*-------------------------------------------------------------------------
 *
 * fuzz_common.h
 *	  Helpers shared by the libFuzzer targets in test/fuzz/.
 *
 * A target checks the properties the code under test promises and calls
 * fuzz_fail() when one does not hold: it prints what was expected and
 * aborts, so that libFuzzer records the input as a crash just as it does
 * for a sanitizer report.  The parsers of the protocol's first bytes all
 * promise the same two things, checked by fuzz_check_prefixes() and
 * fuzz_check_refusal().  The targets that read files (conmgr.conf, the
 * secret file) write each input to a scratch directory made once per
 * process under $TMPDIR and removed at exit.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_common.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_protocol.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *fmt,...)
			__attribute__((format(printf, 1, 2), noreturn, unused));

/* A promised property does not hold: say which, and crash. */
static void
fuzz_fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "fuzz check failed: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

#define FUZZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			fuzz_fail(__VA_ARGS__); \
	} while (0)

/* malloc(len), never NULL (a zero len gets one byte); free() the result. */
static uint8_t *__attribute__((unused))
fuzz_malloc(size_t len)
{
	uint8_t    *p = malloc(len > 0 ? len : 1);

	if (p == NULL)
		fuzz_fail("out of memory");
	return p;
}

/*
 * A copy of len bytes in a heap block of exactly that size, so that
 * AddressSanitizer catches a read one byte past what the caller was given
 * (inside the fuzzer's input a frame is usually followed by more bytes).
 * Never returns NULL; free() the result.
 */
static uint8_t *__attribute__((unused))
fuzz_exact_copy(const uint8_t *data, size_t len)
{
	uint8_t    *p = fuzz_malloc(len);

	if (len > 0)
		memcpy(p, data, len);
	return p;
}

/* The parsers of the start of a receive buffer. */
typedef enum FuzzParser
{
	FUZZ_FRAME_PEEK,			/* cm_proto_frame_peek */
	FUZZ_PARSE_GREETING,		/* cm_proto_parse_greeting */
	FUZZ_PEEK_PG_STARTUP		/* cm_proto_peek_pg_startup */
} FuzzParser;

static const char *const fuzz_parser_name[] = {
	"frame_peek", "parse_greeting", "peek_pg_startup"
};

/*
 * What parser says of the first len bytes at buf (frames of direction dir),
 * its outputs other than the status dropped.
 */
static CmProtoStatus __attribute__((unused))
fuzz_peek(FuzzParser parser, CmProtoDir dir, const uint8_t *buf, size_t len)
{
	size_t		item_len = 0;
	uint16_t	version = 0;
	uint32_t	code = 0;
	const char *reason = NULL;

	switch (parser)
	{
		case FUZZ_FRAME_PEEK:
			return cm_proto_frame_peek(dir, buf, len, &item_len, &reason);
		case FUZZ_PARSE_GREETING:
			return cm_proto_parse_greeting(buf, len, &item_len, &version, &reason);
		case FUZZ_PEEK_PG_STARTUP:
			return cm_proto_peek_pg_startup(buf, len, &item_len, &code, &reason);
	}
	fuzz_fail("unknown parser %d", (int) parser);
}

/*
 * Every shorter prefix of the whole item of len bytes at buf is incomplete
 * to parser (item: "a frame" in the messages).
 */
static void __attribute__((unused))
fuzz_check_prefixes(FuzzParser parser, CmProtoDir dir, const uint8_t *buf,
					size_t len, const char *item)
{
	for (size_t k = 0; k < len; k++)
	{
		CmProtoStatus st = fuzz_peek(parser, dir, buf, k);

		FUZZ_CHECK(st == CM_PROTO_INCOMPLETE, "%s on %zu of the %zu bytes of %s gave %d",
				   fuzz_parser_name[parser], k, len, item, st);
	}
}

/* A status other than CM_PROTO_OK is a refusal, and it comes with a reason. */
static void __attribute__((unused))
fuzz_check_refusal(CmProtoStatus st, const char *reason, const char *fn,
				   const char *item)
{
	FUZZ_CHECK(st == CM_PROTO_INVALID, "%s returned %d", fn, st);
	FUZZ_CHECK(reason != NULL && reason[0] != '\0',
			   "%s refused %s without a reason", fn, item);
}

static char fuzz_dir[4096];

/* atexit: remove the scratch directory and the files in it. */
static void __attribute__((unused))
fuzz_remove_dir(void)
{
	DIR		   *d = opendir(fuzz_dir);
	struct dirent *de;
	char		path[4400];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(fuzz_dir);
}

/*
 * The path of a scratch file named name in this process's directory
 * (created on first use, removed at exit).
 */
static const char *__attribute__((unused))
fuzz_scratch_path(const char *name)
{
	static char path[4200];

	if (fuzz_dir[0] == '\0')
	{
		const char *tmp = getenv("TMPDIR");

		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/cm-fuzz.XXXXXX",
				 tmp && tmp[0] ? tmp : "/tmp");
		if (mkdtemp(fuzz_dir) == NULL)
			fuzz_fail("could not create a scratch directory %s", fuzz_dir);
		atexit(fuzz_remove_dir);
	}
	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
	return path;
}

/* Replace the file at path by data, with the given mode. */
static void __attribute__((unused))
fuzz_write_file(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
	int			fd;
	size_t		done = 0;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		fuzz_fail("could not create %s", path);
	while (done < len)
	{
		ssize_t		n = write(fd, data + done, len - done);

		if (n <= 0)
			fuzz_fail("could not write %s", path);
		done += (size_t) n;
	}
	if (fchmod(fd, mode) != 0 || close(fd) != 0)
		fuzz_fail("could not write %s", path);
}

#endif							/* FUZZ_COMMON_H */
