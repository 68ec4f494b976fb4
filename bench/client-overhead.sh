#!/usr/bin/env bash
# Benchmark: what the client library costs, side by side with a baseline.
#
# Runs pgbench against a throw-away local server with the watchdog and a
# conmgr, and prints, for each workload, the transactions per second of the
# baseline and of the variant, and their ratio:
#
#   queries      pgbench -S over a Unix socket, one connection kept:
#                plain libpq vs libpqcm preloaded (no Connection Manager
#                connection in the process: the wrapped calls' fast path)
#   connect-unix pgbench -S -C (a new connection per transaction) over a Unix
#                socket: plain vs preloaded (option parse, no probe)
#   connect-tcp  the same to 127.0.0.1, a plain server: plain vs preloaded
#                (the probe's answer is cached for 60 s)
#   via-conmgr   the same through conmgr (stage 1 + stage 2 per connection)
#                vs straight to the server over TCP, both preloaded
#   queries-cm   pgbench -S, one connection kept through conmgr vs straight
#                to the server (the watcher thread runs; the data path does
#                not go through conmgr)
#
# Baseline and variant alternate, ROUNDS times (default 3), each run
# SECONDS long (default 5); the median of each side is reported.  As root,
# PostgreSQL and the clients run as the unprivileged user of the tests.
#
# Usage: bench/client-overhead.sh [ROUNDS [SECONDS]]
set -euo pipefail

. "$(dirname "$0")/../scripts/common.sh"
cd "$top"

rounds=${1:-3}
secs=${2:-5}
need_counts -p "usage: $0 [ROUNDS [SECONDS]] (positive integers)" "$rounds" "$secs"

prepare_tree -q "== building and installing"

work=$(user_workdir /tmp/cm-bench.XXXXXX)
status=0
as_user bash "$top/bench/client-overhead-run.sh" "$work" "$rounds" "$secs" || status=$?
as_root rm -rf "$work"
exit $status
