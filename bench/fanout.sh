#!/usr/bin/env bash
# Benchmark: how long conmgr takes to tell M registered applications that
# their instance failed (bench/fanout.c, bench/fanout-run.sh), for a server
# stopped at once and for a frozen watchdog.
#
# Runs against a throw-away cluster and conmgr with the installed product
# (install it first: make && sudo make install; or set CM_BENCH_BINDIR to a
# directory holding the conmgr and cm_ctl to use); as root, everything runs
# as the unprivileged user of the tests.  Prints a table and writes
# bench/results/fanout.csv (replaced).
#
# Usage: bench/fanout.sh [M...]   (default: 100 1000 5000)
set -euo pipefail

. "$(dirname "$0")/../scripts/common.sh"
cd "$top"

[ $# -gt 0 ] || set -- 100 1000 5000

ensure_user
# as root, lift the open-files hard limit that the unprivileged run inherits
# (the run script raises its soft limit to it, and stops when it is too low)
[ "$(id -u)" -ne 0 ] || ulimit -Hn 262144 2>/dev/null || true
make -s COPT=-Werror bench-programs
mkdir -p bench/results
rm -f bench/results/fanout.csv

as_root chown -R "$CM_USER" bench/results

work=$(user_workdir /tmp/cm-bench.XXXXXX)
status=0
as_user env CM_BENCH_BINDIR="${CM_BENCH_BINDIR:-}" bash "$top/bench/fanout-run.sh" "$work" "$top/bench/results" "$@" || status=$?
as_root rm -rf "$work"
exit $status
