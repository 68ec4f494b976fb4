#!/usr/bin/env bash
# Run every test of Connection Manager: build with warnings as errors, unit
# tests (plain and under ASan/UBSan), static analysis, the fuzz targets for
# a bounded time, pg_regress and the TAP suite against real PostgreSQL
# clusters.
#
# Works from a clean clone on Debian 12, as root or as a user with sudo.
# PostgreSQL parts run as an unprivileged user (created when run as root).
set -euo pipefail

. "$(dirname "$0")/common.sh"
cd "$top"

prepare_tree "== build"

echo "== static analysis (cppcheck)"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	--inline-suppr -I common common conmgr client

# Fuzz targets (test/fuzz/): each parser of untrusted input for a bounded
# time, on a copy of its seed corpus.  30 s per target in CI, 10 s
# otherwise; FUZZ_SECONDS overrides (0 skips them).
if [ "${CI:-}" = true ]; then fuzz_default=30; else fuzz_default=10; fi
fuzz_seconds=${FUZZ_SECONDS:-$fuzz_default}
if [ "$fuzz_seconds" != 0 ]; then
	echo "== fuzz targets (${fuzz_seconds} s each)"
	make -s -C test/fuzz COPT=-Werror run FUZZ_SECONDS="$fuzz_seconds"
else
	echo "== fuzz targets: skipped (FUZZ_SECONDS=0)"
fi

# pg_regress and prove write into the tree: run them in a copy that the
# unprivileged user owns.
work=$(user_workdir /tmp/cm-test.XXXXXX)
cleanup() { as_root rm -rf "$work"; }
trap cleanup EXIT
tar -C "$top" --exclude=.git -cf - . | tar -C "$work" -xf -
as_root chown -R "$CM_USER" "$work"

# failed_tap_logs OUT: the log of every TAP file that prove reported as
# failed in its output OUT
failed_tap_logs() {
	local t f
	for t in $(sed -n 's|^\(t/[0-9A-Za-z_]*\)\.pl .*Wstat.*|\1|p' "$1" | sort -u); do
		f="$work/tmp_check/log/regress_log_${t#t/}"
		[ -f "$f" ] || continue
		echo "---- $f (last 80 lines)"
		tail -n 80 "$f"
	done
}

echo "== pg_regress and TAP"
status=0
as_user make -C "$work" installcheck ${PROVE_TESTS:+PROVE_TESTS="$PROVE_TESTS"} 2>&1 | tee "$work/installcheck.out" || status=$?
if [ $status -ne 0 ]; then
	echo "== failure details"
	[ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
	failed_tap_logs "$work/installcheck.out"
fi

# conmgr under AddressSanitizer and UndefinedBehaviorSanitizer: the TAP
# files that run conmgr (hostile, malformed and unusual input included)
# run again against conmgr/conmgr_san (CM_CONMGR, t/lib/CmProg.pm; a
# conmgr that cm_ctl starts is still the installed one).  A sanitizer
# report (memory error, leak at exit, undefined behaviour) goes to a file
# and fails the run, even where the test itself passed.  A full run does
# this; CM_SAN_TESTS names other files (with PROVE_TESTS too), and
# CM_SAN_TESTS= (empty) skips it.
san_default="t/200_conmgr_basic.pl t/220_conmgr_config.pl t/230_conmgr_routing.pl
	t/231_conmgr_draining.pl t/240_conmgr_fanout.pl t/250_conmgr_protocol.pl
	t/255_conmgr_fuzz.pl t/260_conmgr_clusters.pl t/270_conmgr_auth.pl
	t/271_conmgr_integrity.pl t/275_conmgr_watchdog_restart.pl
	t/276_conmgr_datagrams.pl t/280_conmgr_hostile_apps.pl t/285_conmgr_metrics.pl
	t/310_client_conmgr.pl"
if [ -n "${CM_SAN_TESTS+set}" ]; then
	san_tests=$CM_SAN_TESTS
elif [ -z "${PROVE_TESTS:-}" ]; then
	san_tests=$san_default
else
	san_tests=
fi
if [ $status -eq 0 ] && [ -n "$(echo $san_tests)" ]; then
	echo "== conmgr under ASan/UBSan:" $san_tests
	as_user make -s -C "$work/conmgr" COPT=-Werror conmgr_san
	# not in tmp_check (prove empties it); only the test user, who runs
	# conmgr_san, may write there: no other local user can plant a report
	reports="$work/sanitizer-reports"
	as_user mkdir -m 700 -p "$reports"
	san_status=0
	as_user env CM_CONMGR="$work/conmgr/conmgr_san" \
		ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:verify_asan_link_order=0" \
		UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1" \
		make -C "$work" installcheck REGRESS= PROVE_TESTS="$(echo $san_tests)" 2>&1 |
		tee "$work/sanitizer.out" || san_status=$?
	if [ $san_status -ne 0 ]; then
		echo "== failure details (conmgr under ASan/UBSan)"
		failed_tap_logs "$work/sanitizer.out"
	fi
	found=$(find "$reports" -type f | sort)
	if [ -n "$found" ]; then
		echo "== sanitizer reports of conmgr_san"
		for f in $found; do
			echo "---- $f"
			head -n 60 "$f"
		done
		san_status=1
	else
		echo "conmgr under ASan/UBSan: no sanitizer report"
	fi
	[ $san_status -eq 0 ] || status=$san_status
fi

# Failure scenarios with real network partitions need root (namespaces).
# With PROVE_TESTS, only the t/4* files it names run here.
partition_tests=
if [ -n "${PROVE_TESTS:-}" ]; then
	for t in $PROVE_TESTS; do
		case "$t" in t/4*) partition_tests="$partition_tests $t" ;; esac
	done
fi
if [ $status -eq 0 ] && { [ -z "${PROVE_TESTS:-}" ] || [ -n "$partition_tests" ]; }; then
	echo "== network partition scenarios"
	if [ "$(id -u)" -eq 0 ]; then
		env CM_USER="$CM_USER" CM_PARTITION_TESTS="$partition_tests" \
			scripts/test-partitions.sh "$work" || status=$?
	elif sudo -n true 2>/dev/null; then
		sudo env CM_USER="$CM_USER" CM_PARTITION_TESTS="$partition_tests" \
			scripts/test-partitions.sh "$work" || status=$?
	else
		echo "skipped: the partition scenarios need root (network namespaces); run as root or with sudo"
	fi
fi
exit $status
