#!/usr/bin/env bash
# Benchmark: what a connection costs through conmgr, side by side with a
# direct connection to the server and with pgbouncer (session pooling) in
# front of the same server (bench/connect.c, bench/connect-run.sh):
#
#   connect latency   CONNECTIONS connections per path, opened and closed
#                     one at a time (min, median, p90, p99, max in ms)
#   pgbench -S        tps with one connection kept (-c 1; -c 8 -j 2) and
#                     with a new connection per transaction (-C -c 1;
#                     -C -c 8 -j 2)
#
# The three paths take turns, ROUNDS times (default 5); each pgbench run
# lasts SECONDS (default 5), and the median of the rounds is reported.
# Installs the packages it needs (pgbouncer among them), builds and installs
# the product; as root, PostgreSQL, conmgr, pgbouncer and the clients run
# as the unprivileged user of the tests.  Prints the tables and writes
# bench/results/connect.csv (latency per path), connect-table.csv (the
# side-by-side table) and connect-samples.csv (every connection), replaced.
#
# Usage: bench/connect.sh [CONNECTIONS [ROUNDS [SECONDS]]]   (default: 1000 5 5)
set -euo pipefail

. "$(dirname "$0")/../scripts/common.sh"
cd "$top"

conns=${1:-1000}
rounds=${2:-5}
secs=${3:-5}
usage="usage: $0 [CONNECTIONS [ROUNDS [SECONDS]]] (positive integers, CONNECTIONS >= ROUNDS)"
need_counts -p "$usage" "$conns" "$rounds" "$secs"
[ "$conns" -ge "$rounds" ] || { echo "$usage" >&2; exit 2; }

prepare_tree -q "== building and installing"
mkdir -p bench/results
as_root chown -R "$CM_USER" bench/results

work=$(user_workdir /tmp/cm-bench.XXXXXX)
status=0
as_user env CM_BENCH_BINDIR="${CM_BENCH_BINDIR:-}" bash "$top/bench/connect-run.sh" "$work" "$top/bench/results" "$conns" "$rounds" "-T$secs" || status=$?
# connect-run.sh stops its pgbouncer on every exit; should it have been
# killed itself, the pgbouncer of its work directory goes here
pidfile=$work/pgbouncer/pgbouncer.pid
if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && [ -n "$pid" ] &&
	tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$work/pgbouncer/"; then
	echo "bench/connect.sh: stopping the pgbouncer left running (PID $pid)" >&2
	as_root kill -KILL "$pid" || true
fi
as_root rm -rf "$work"
exit $status
