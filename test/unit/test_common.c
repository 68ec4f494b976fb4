/*-------------------------------------------------------------------------
 *
 * test_common.c
 *	  Unit tests of the pure helpers of common/: the rate limiters (window
 *	  and token bucket, driven by hand-set times), the socket-address
 *	  conversions of cm_net, the big-endian reads and writes of cm_endian.h,
 *	  frame intake with cm_proto_next() and the monotonic clock.
 *
 * Prints one "ok N - ..." / "not ok N - ..." line per check (unit_tap.h,
 * read by t/001_unit.pl); exits 1 if any check failed.
 *
 * Copyright (c) 2026, Connection Manager for PostgreSQL developers
 *
 * IDENTIFICATION
 *	  test/unit/test_common.c
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cm_endian.h"
#include "cm_net.h"
#include "cm_protocol.h"
#include "cm_ratelimit.h"
#include "cm_time.h"
#include "unit_tap.h"

/* One decision of a window limiter: allowed or not, and the count reported. */
static void
check_window(CmRateWindow *w, int64_t now, int64_t window, bool want,
			 uint64_t want_suppressed, const char *what)
{
	uint64_t	suppressed = 999;
	bool		got = cm_rate_window_allow(w, now, window, &suppressed);
	char		detail[128];

	snprintf(detail, sizeof(detail), "got %s, suppressed %llu",
			 got ? "allowed" : "refused", (unsigned long long) suppressed);
	unit_check(got == want && (!want || suppressed == want_suppressed),
			   what, detail);
}

static void
test_rate_window(void)
{
	CmRateWindow w = {.burst = 2};
	CmRateWindow one = {.burst = 0};

	/* two per 1000 time units, the window opening at the first event */
	check_window(&w, 100, 1000, true, 0, "window: first event allowed");
	check_window(&w, 200, 1000, true, 0, "window: second event of a burst of 2 allowed");
	check_window(&w, 300, 1000, false, 0, "window: third event in the window refused");
	check_window(&w, 400, 1000, false, 0, "window: fourth event in the window refused");
	check_window(&w, 1099, 1000, false, 0, "window: refused until the window's last unit");
	check_window(&w, 1100, 1000, true, 3, "window: a new window allows, reporting 3 suppressed");
	check_window(&w, 1150, 1000, true, 0, "window: the suppressed count restarts at 0");
	check_window(&w, 1200, 1000, false, 0, "window: the new window holds 2 as well");

	/* burst 0 means 1 */
	check_window(&one, 10, 50, true, 0, "window of burst 0: one event allowed");
	check_window(&one, 59, 50, false, 0, "window of burst 0: a second refused");
	check_window(&one, 60, 50, true, 1, "window of burst 0: allowed again after the window");
}

static void
check_take(CmTokenBucket *b, int64_t now, bool want, const char *what)
{
	bool		got = cm_token_bucket_take(b, now, 1.0, 1000, 3.0);
	char		detail[128];

	snprintf(detail, sizeof(detail), "got %s, %.3f tokens left",
			 got ? "a token" : "none", b->tokens);
	unit_check(got == want, what, detail);
}

static void
test_token_bucket(void)
{
	CmTokenBucket b;

	/* a burst of 3, one token per 1000 time units */
	cm_token_bucket_init(&b, 5000, 3.0);
	check_take(&b, 5000, true, "bucket: full, first token taken");
	check_take(&b, 5000, true, "bucket: second token of 3 taken");
	check_take(&b, 5000, true, "bucket: third token of 3 taken");
	check_take(&b, 5000, false, "bucket: empty at the same time");
	check_take(&b, 5500, false, "bucket: half a token after half a period is not enough");
	check_take(&b, 6000, true, "bucket: a whole token after a period");
	check_take(&b, 6000, false, "bucket: empty again");
	check_take(&b, 100000, true, "bucket: long idle refills it");
	check_take(&b, 100000, true, "bucket: second token after the idle time");
	check_take(&b, 100000, true, "bucket: third token after the idle time");
	check_take(&b, 100000, false, "bucket: the refill stops at the burst");
}

/* A socket address for host (IPv4 or IPv6 text) and port. */
static struct sockaddr *
set_sa(struct sockaddr_storage *ss, const char *host, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':') == NULL)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, host, &sin->sin_addr);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, host, &sin6->sin6_addr);
	}
	return (struct sockaddr *) ss;
}

/* A protocol address of family (4 or 6) converted to a socket address. */
static void
check_to_sockaddr(uint8_t family, const uint8_t *bytes, uint16_t port,
				  const char *what)
{
	CmProtoAddr a;
	struct sockaddr_storage ss;
	socklen_t	len;
	bool		ok;

	memset(&a, 0, sizeof(a));
	a.family = family;
	memcpy(a.addr, bytes, family == 4 ? 4 : 16);
	a.port = port;
	len = cm_net_sockaddr_from_addr(&a, &ss);
	if (family == 4)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

		ok = len == sizeof(*sin) && sin->sin_family == AF_INET &&
			sin->sin_port == htons(port) && memcmp(&sin->sin_addr, bytes, 4) == 0;
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

		ok = len == sizeof(*sin6) && sin6->sin6_family == AF_INET6 &&
			sin6->sin6_port == htons(port) && memcmp(&sin6->sin6_addr, bytes, 16) == 0;
	}
	unit_check(ok, what, NULL);
}

static void
test_net(void)
{
	struct sockaddr_storage ss;
	struct sockaddr *sa;
	struct sockaddr_un sun;
	CmProtoAddr a;
	char		text[CM_NET_ADDR_TEXT_MAX];
	static const uint8_t v4[4] = {192, 0, 2, 1};
	static const uint8_t v4m[4] = {192, 0, 2, 7};
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 1};

	/* socket address to protocol address */
	sa = set_sa(&ss, "192.0.2.1", 5432);
	unit_check(cm_net_addr_from_sockaddr(sa, &a) &&
			   a.family == 4 && a.port == 5432 && memcmp(a.addr, v4, 4) == 0,
			   "net: IPv4 socket address converted", NULL);
	sa = set_sa(&ss, "2001:db8::1", 6543);
	unit_check(cm_net_addr_from_sockaddr(sa, &a) &&
			   a.family == 6 && a.port == 6543 && memcmp(a.addr, v6, 16) == 0,
			   "net: IPv6 socket address converted", NULL);
	sa = set_sa(&ss, "::ffff:192.0.2.7", 1);
	unit_check(cm_net_addr_from_sockaddr(sa, &a) &&
			   a.family == 4 && a.port == 1 && memcmp(a.addr, v4m, 4) == 0,
			   "net: IPv4-mapped IPv6 address becomes IPv4", NULL);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memset(&a, 0x5a, sizeof(a));
	unit_check(!cm_net_addr_from_sockaddr((struct sockaddr *) &sun, &a) &&
			   a.family == 0 && a.port == 0,
			   "net: a Unix-domain address is refused, zeroed", NULL);

	/* and back */
	check_to_sockaddr(4, v4, 5432, "net: IPv4 protocol address to a socket address");
	check_to_sockaddr(6, v6, 6543, "net: IPv6 protocol address to a socket address");

	/* text form */
	sa = set_sa(&ss, "192.0.2.1", 5432);
	cm_net_sockaddr_format(sa, text, sizeof(text));
	unit_check(strcmp(text, "192.0.2.1:5432") == 0, "net: IPv4 formatted as host:port", text);
	sa = set_sa(&ss, "2001:db8::1", 6543);
	cm_net_sockaddr_format(sa, text, sizeof(text));
	unit_check(strcmp(text, "[2001:db8::1]:6543") == 0, "net: IPv6 formatted in brackets", text);
	sa = set_sa(&ss, "::ffff:192.0.2.7", 1);
	cm_net_sockaddr_format(sa, text, sizeof(text));
	unit_check(strcmp(text, "[::ffff:192.0.2.7]:1") == 0,
			   "net: an IPv4-mapped address is formatted as the socket gives it", text);
	cm_net_sockaddr_format((struct sockaddr *) &sun, text, sizeof(text));
	unit_check(strcmp(text, "?") == 0, "net: a Unix-domain address is formatted as ?", text);
	sa = set_sa(&ss, "192.0.2.1", 5432);
	cm_net_sockaddr_format(sa, text, 6);
	unit_check(strcmp(text, "192.0") == 0, "net: a short buffer is cut, NUL-terminated", text);

	/* loopback */
	sa = set_sa(&ss, "127.0.0.5", 1);
	unit_check(cm_net_is_loopback(sa), "net: 127.0.0.5 is loopback", NULL);
	sa = set_sa(&ss, "192.0.2.1", 1);
	unit_check(!cm_net_is_loopback(sa), "net: 192.0.2.1 is not loopback", NULL);
	sa = set_sa(&ss, "::1", 1);
	unit_check(cm_net_is_loopback(sa), "net: ::1 is loopback", NULL);
	sa = set_sa(&ss, "::ffff:127.0.0.1", 1);
	unit_check(cm_net_is_loopback(sa), "net: ::ffff:127.0.0.1 is loopback", NULL);
	sa = set_sa(&ss, "2001:db8::1", 1);
	unit_check(!cm_net_is_loopback(sa), "net: 2001:db8::1 is not loopback", NULL);
}

static void
test_endian(void)
{
	uint8_t		buf[9];
	static const uint8_t be16[2] = {0x12, 0x34};
	static const uint8_t be32[4] = {0xde, 0xad, 0xbe, 0xef};
	static const uint8_t be64[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88};

	/* written at an odd offset: the helpers must not need alignment */
	memset(buf, 0, sizeof(buf));
	cm_put_u16(buf + 1, 0x1234);
	unit_check(memcmp(buf + 1, be16, 2) == 0 && cm_get_u16(buf + 1) == 0x1234,
			   "endian: u16 written big-endian and read back", NULL);
	cm_put_u32(buf + 1, 0xdeadbeefU);
	unit_check(memcmp(buf + 1, be32, 4) == 0 && cm_get_u32(buf + 1) == 0xdeadbeefU,
			   "endian: u32 written big-endian and read back", NULL);
	cm_put_u64(buf + 1, 0x0102030405060788ULL);
	unit_check(memcmp(buf + 1, be64, 8) == 0 &&
			   cm_get_u64(buf + 1) == 0x0102030405060788ULL,
			   "endian: u64 written big-endian and read back", NULL);
	unit_check(buf[0] == 0, "endian: no byte before the field written", NULL);
	cm_put_u64(buf, UINT64_MAX);
	unit_check(cm_get_u64(buf) == UINT64_MAX && cm_get_u32(buf) == UINT32_MAX &&
			   cm_get_u16(buf) == UINT16_MAX, "endian: all bits set survive", NULL);
}

static void
test_proto_next(void)
{
	CmProtoMsg	msg;
	CmProtoMsg	got;
	uint8_t		buf[2 * CM_PROTO_MAX_MSG];
	uint8_t		bad[CM_PROTO_MAX_MSG];
	size_t		n;
	size_t		flen;
	const char *reason;
	CmProtoStatus st;

	memset(&msg, 0, sizeof(msg));
	msg.type = CM_MSG_HEARTBEAT;
	msg.u.heartbeat.seq = 7;
	msg.u.heartbeat.echo = 0x1122334455667788ULL;
	n = cm_proto_encode(CM_DIR_TO_WATCHDOG, &msg, buf, sizeof(buf));
	unit_check(n > CM_PROTO_HEADER_LEN, "next: a heartbeat encodes", NULL);
	if (n <= CM_PROTO_HEADER_LEN)
		return;

	flen = 999;
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, buf, 0, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INCOMPLETE, "next: an empty buffer is incomplete", NULL);
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, buf, 3, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INCOMPLETE, "next: a partial header is incomplete", NULL);
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, buf, n - 1, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INCOMPLETE, "next: a frame short of one byte is incomplete", NULL);

	memset(&got, 0, sizeof(got));
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, buf, n, &flen, &got, &reason);
	unit_check(st == CM_PROTO_OK && flen == n && got.type == CM_MSG_HEARTBEAT &&
			   got.u.heartbeat.seq == 7 &&
			   got.u.heartbeat.echo == 0x1122334455667788ULL,
			   "next: a whole frame is decoded", NULL);

	/* a second frame behind the first: one frame at a time */
	memcpy(buf + n, buf, n);
	memset(&got, 0, sizeof(got));
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, buf, n + 3, &flen, &got, &reason);
	unit_check(st == CM_PROTO_OK && flen == n && got.u.heartbeat.seq == 7,
			   "next: only the first frame is taken from a longer buffer", NULL);

	/* bad frames */
	memcpy(bad, buf, n);
	bad[0] = 'Z';
	reason = NULL;
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, bad, n, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INVALID && reason != NULL && reason[0] != '\0',
			   "next: an unknown type is invalid, with a reason", reason);
	memcpy(bad, buf, n);
	bad[0] = CM_MSG_INSTANCE;
	reason = NULL;
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, bad, n, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INVALID && reason != NULL,
			   "next: a type of another direction is invalid", reason);
	memcpy(bad, buf, n);
	cm_put_u32(bad + 1, 3);
	reason = NULL;
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, bad, n, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INVALID && reason != NULL,
			   "next: a length below its own size is invalid", reason);
	memcpy(bad, buf, n);
	cm_put_u32(bad + 1, CM_PROTO_MAX_MSG);
	reason = NULL;
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, bad, n, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INVALID && reason != NULL,
			   "next: a length above the limit is invalid at once", reason);
	/* a whole frame whose payload is one byte short for a heartbeat */
	memcpy(bad, buf, n - 1);
	cm_put_u32(bad + 1, (uint32_t) (n - 2));
	reason = NULL;
	st = cm_proto_next(CM_DIR_TO_WATCHDOG, bad, n - 1, &flen, &got, &reason);
	unit_check(st == CM_PROTO_INVALID && reason != NULL,
			   "next: a whole frame with a truncated payload is invalid", reason);
}

static void
test_clock(void)
{
	int64_t		a = cm_mono_ns();
	int64_t		b = cm_mono_ns();
	int64_t		us = cm_mono_us();
	int64_t		ms = cm_mono_ms();

	unit_check(a > 0 && b >= a, "clock: monotonic nanoseconds do not go back", NULL);
	unit_check(us >= b / 1000 && us - b / 1000 < 1000000,
			   "clock: microseconds on the same clock", NULL);
	unit_check(ms >= us / 1000 && ms - us / 1000 < 1000,
			   "clock: milliseconds on the same clock", NULL);
}

int
main(void)
{
	test_rate_window();
	test_token_bucket();
	test_net();
	test_endian();
	test_proto_next();
	test_clock();
	printf("1..%d\n", unit_ntests);
	return unit_status();
}
