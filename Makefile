# Makefile for Connection Manager for PostgreSQL
#
# PGXS builds the watchdog extension (watchdog.so: the heartbeat worker and
# the terminator worker); conmgr/ (conmgr, cm_ctl) and client/ (libpqcm)
# have their own pg_config-driven Makefiles.  The shared protocol objects in
# common/ are built here once, with -fPIC, before the sub-makes use them
# (cm_auth.o, which needs OpenSSL's libcrypto, only by watchdog.so and
# conmgr; cm_sockdiag.o only by conmgr).

EXTENSION    = watchdog
MODULE_big   = watchdog
COMMON_OBJS  = common/cm_protocol.o common/cm_auth.o common/cm_net.o common/cm_ratelimit.o \
               common/cm_sealed.o common/cm_time.o
# common objects that conmgr and the client library use, not watchdog.so
FRONTEND_COMMON_OBJS = common/cm_sockdiag.o
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard watchdog/*.c terminator/*.c))) $(COMMON_OBJS)
SHLIB_LINK   = -lcrypto
DATA         = watchdog--1.0.sql watchdog--1.0--1.1.sql watchdog--1.1--1.2.sql
PGFILEDESC   = "watchdog - heartbeat server and session terminator"
PG_CPPFLAGS  = -I$(srcdir)/common -I$(srcdir)/watchdog
PG_CFLAGS    = $(CM_WARNINGS)
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-instance=./tmp_check_regress --temp-config=$(srcdir)/sql/regress.conf
TAP_TESTS    = 1
EXTRA_CLEAN  = tmp_check_regress $(FRONTEND_COMMON_OBJS)

# warnings and the release version, shared with the other Makefiles
include $(dir $(lastword $(MAKEFILE_LIST)))Makefile.common

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# after the include: Makefile.global resets PROVE_FLAGS
PG_PROVE_FLAGS += -I $(srcdir)/t/lib

# PGXS tracks no header dependencies: every object depends on every header
# of the extension, so that a changed struct never leaves a stale object.
$(OBJS) $(FRONTEND_COMMON_OBJS): $(wildcard watchdog/*.h terminator/*.h common/*.h)

SUBDIRS = conmgr client

# The JDBC driver (client/jdbc) is built only where javac and pgjdbc's jar
# are present: the C build never needs Java.
PGJDBC_JAR ?= /usr/share/java/postgresql.jar
WITH_JAVA := $(shell command -v javac >/dev/null 2>&1 && test -f $(PGJDBC_JAR) && echo yes)
ifeq ($(WITH_JAVA),yes)
JAVA_SUBDIRS = client/jdbc
endif

all: all-sub
all-sub: $(COMMON_OBJS) $(FRONTEND_COMMON_OBJS)
	@for d in $(SUBDIRS) $(JAVA_SUBDIRS); do $(MAKE) -C $$d all || exit 1; done

install: install-sub
install-sub: all-sub
	@for d in $(SUBDIRS) $(JAVA_SUBDIRS); do $(MAKE) -C $$d install || exit 1; done

clean: clean-sub
clean-sub:
	@for d in $(SUBDIRS); do $(MAKE) -C $$d clean || exit 1; done
	$(MAKE) -C client/jdbc clean
	$(MAKE) -C test clean
	$(MAKE) -C bench clean

# Test programs (unit tests, client test programs, and the benchmark
# programs that t/5xx runs in smoke mode); built by scripts/test.sh.
test-programs: all-sub bench-programs
	$(MAKE) -C test all

# The benchmark programs (bench/): linked with the product's common/ objects.
bench-programs: all-sub
	$(MAKE) -C bench all

.PHONY: all-sub install-sub clean-sub test-programs bench-programs
