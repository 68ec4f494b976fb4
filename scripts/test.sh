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

echo "== pg_regress and TAP"
status=0
as_user make -C "$work" installcheck ${PROVE_TESTS:+PROVE_TESTS="$PROVE_TESTS"} 2>&1 | tee "$work/installcheck.out" || status=$?
if [ $status -ne 0 ]; then
	echo "== failure details"
	[ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
	# the log of every TAP file that prove reported as failed
	for t in $(sed -n 's|^\(t/[0-9A-Za-z_]*\)\.pl .*Wstat.*|\1|p' "$work/installcheck.out" | sort -u); do
		f="$work/tmp_check/log/regress_log_${t#t/}"
		[ -f "$f" ] || continue
		echo "---- $f (last 80 lines)"
		tail -n 80 "$f"
	done
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
