#!/usr/bin/env bash
# Failure scenarios with real network partitions (t/4*.pl).
#
#   scripts/test-partitions.sh [WORKDIR]
#
# WORKDIR is a built and installed copy of the tree (scripts/test.sh passes
# the copy owned by the unprivileged user); default: this tree.  The lab
# (t/lib/CmLab.pm) creates network namespaces, so this must run as root;
# PostgreSQL, conmgr and the applications run as $CM_USER (default cmtest)
# inside the namespaces.  Without root, or without namespace support, the
# scenarios are skipped with the reason and the script exits 0.
#
# Environment: CM_USER, CM_PARTITION_TESTS (default t/4*.pl; not PROVE_TESTS,
# which scripts/test.sh uses for the unprivileged suite), PROVE_FLAGS.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
work=$(cd "${1:-$top}" && pwd)
CM_USER=${CM_USER:-cmtest}

skip() {
	echo "partition scenarios skipped: $*"
	exit 0
}

[ "$(id -u)" -eq 0 ] || skip "they need root to create network namespaces (run as root or with sudo)"
command -v ip >/dev/null || skip "the ip command (iproute2) is not installed"
id "$CM_USER" >/dev/null 2>&1 || skip "the unprivileged user \"$CM_USER\" does not exist (set CM_USER)"

# a tag unique to this run: every lab namespace starts with it
export CM_LAB_TAG="cmp$$t"
probe="${CM_LAB_TAG}probe"
ip netns add "$probe" 2>/dev/null || skip "network namespaces cannot be created here ($(ip netns add "$probe" 2>&1 || true))"
ip netns del "$probe"

# Sweep what a killed test may have left: processes and namespaces of
# this run only.
# shellcheck disable=SC2317  # invoked by the EXIT trap
sweep() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${CM_LAB_TAG}" || true); do
		for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
			kill -9 "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
		echo "removed leftover namespace $ns"
	done
	rm -rf "${TMPDIR:-/tmp}/${CM_LAB_TAG}"*_lab_* 2>/dev/null || true
}
trap sweep EXIT
trap 'exit 1' INT TERM HUP

pg_config=${PG_CONFIG:-pg_config}
bindir=$("$pg_config" --bindir)
perllib=$(dirname "$("$pg_config" --pgxs)")/../../src/test/perl

# the lab programs, built as the owner of the tree
owner=$(stat -c %U "$work")
as_owner() {
	if [ "$owner" = root ]; then "$@"; else runuser -u "$owner" -- "$@"; fi
}
as_owner make -s -C "$work/test/lab" PG_CONFIG="$pg_config" lab_app
if ! as_owner make -s -C "$work/test/lab" PG_CONFIG="$pg_config" lab_app_cm; then
	echo "warning: test/lab/lab_app_cm could not be built (client library missing?);" \
		"the Connection Manager scenarios will fail, the baselines still run"
fi

cd "$work"
mkdir -p tmp_check/log
echo "== partition scenarios as root in $work (lab user $CM_USER)"
status=0
# PROVE_FLAGS and CM_PARTITION_TESTS are word lists
# shellcheck disable=SC2086
TESTDIR="$work" PATH="$bindir:$PATH" CM_USER="$CM_USER" \
	prove ${PROVE_FLAGS:-} -I "$work/t/lib" -I "$perllib" ${CM_PARTITION_TESTS:-t/4*.pl} || status=$?
if [ -f tmp_check/log/failure_baselines.txt ]; then
	echo "== baselines (recorded in docs/failure-detection.md, not asserted)"
	cat tmp_check/log/failure_baselines.txt
fi
if [ $status -ne 0 ]; then
	for f in tmp_check/log/regress_log_4*; do
		[ -f "$f" ] || continue
		if grep -q '^not ok' "$f"; then
			echo "---- $f (failures and last 60 lines)"
			grep -B2 -A6 '^not ok' "$f" | head -n 80
			tail -n 60 "$f"
		fi
	done
fi
exit $status
