#!/usr/bin/env bash
# Benchmark: what the watchdog costs per heartbeat, and its heartbeat round
# trip, with N authenticated conmgr peers (bench/watchdog-peers.c).
#
# Runs against a throw-away cluster with the installed watchdog (install the
# product first: make && sudo make install); as root, PostgreSQL and the
# peers run as the unprivileged user of the tests.  Prints a table and
# writes bench/results/watchdog-peers.csv (replaced).
#
# Usage: bench/watchdog-peers.sh [SECONDS [INTERVAL_MS [N...]]]
#        (defaults: 10 s window, 1000 ms, N = 100 1000 5000)
set -euo pipefail

. "$(dirname "$0")/../scripts/common.sh"
cd "$top"

secs=${1:-10}
interval=${2:-1000}
shift $(($# < 2 ? $# : 2))
[ $# -gt 0 ] || set -- 100 1000 5000

ensure_user
# as root, lift the open-files hard limit that the unprivileged run inherits
# (the run script raises its soft limit to it, and stops when it is too low)
[ "$(id -u)" -ne 0 ] || ulimit -Hn 262144 2>/dev/null || true
make -s COPT=-Werror bench-programs
mkdir -p bench/results
rm -f bench/results/watchdog-peers.csv

as_root chown -R "$CM_USER" bench/results

work=$(user_workdir /tmp/cm-bench.XXXXXX)
status=0
as_user env CM_BENCH_BINDIR="${CM_BENCH_BINDIR:-}" bash "$top/bench/watchdog-peers-run.sh" "$work" "$top/bench/results" "$secs" "$interval" "$@" || status=$?
as_root rm -rf "$work"
exit $status
