#!/usr/bin/env bash
# The watchdog benchmark itself, as the unprivileged user (run by
# bench/watchdog-peers.sh, and in smoke mode by t/510_bench_smoke.pl).
#
# Usage: watchdog-peers-run.sh WORKDIR OUTDIR SECONDS INTERVAL_MS N...
#
# Starts a throw-away cluster (bench/lib.sh) sized for the largest N, then
# for each N runs bench/watchdog-peers: N authenticated peers heartbeating
# every INTERVAL_MS, measured for SECONDS after a warm-up.  Prints a table
# and appends to OUTDIR/watchdog-peers.csv.
set -euo pipefail

work=$1 out=$2 secs=$3 interval=$4
shift 4
bench=$(cd "$(dirname "$0")" && pwd)
# CM_BENCH_BINDIR: programs to use instead of the installed ones (a build tree)
export PATH="${CM_BENCH_BINDIR:+$CM_BENCH_BINDIR:}$(pg_config --bindir):$PATH"
. "$bench/../scripts/common.sh"
. "$bench/lib.sh"
cd "$work"

max=$(bench_max "$@")
# one descriptor per peer in the watchdog, plus room for PostgreSQL's own
# files (docs/watchdog.md, "Open-files limit")
bench_need_fds $((1000 + 2 * (max + 100))) "watchdog-peers with $max peers"

pg_port=$(free_port 26632)
wd_port=$(free_port 26745)
cleanup() { bench_stop "$work"; }
trap cleanup EXIT

# Every peer connects from 127.0.0.1: lift the per-address cap, which
# exists for real client hosts.
bench_cluster_start "$work" "$pg_port" "$wd_port" "watchdog.max_heartbeat_connections = $((max + 100))
watchdog.max_heartbeat_connections_per_address = $((max + 100))"
psql -h "$work" -p "$pg_port" -XAtq -d postgres -c "CREATE EXTENSION watchdog"
wd_pid=$(bench_watchdog_pid "$work")
[ -n "$wd_pid" ] || { echo "watchdog-peers: no watchdog process" >&2; exit 1; }

# active slots (a peer that said goodbye gives its slot back at once)
slots() {
	psql -h "$work" -p "$pg_port" -XAtq -d postgres \
		-c "SELECT count(*) FROM pgx_stat_watchdog WHERE state <> 'terminated'"
}

echo "== watchdog cost per heartbeat: $secs s window, heartbeat every $interval ms"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, PostgreSQL $(pg_config --version | cut -d' ' -f2), load average$(uptime | sed 's/.*load average//')"
header=--header
status=0
for n in "$@"; do
	"$bench/watchdog-peers" --port "$wd_port" --secret "$work/heartbeat.secret" \
		--pid "$wd_pid" --peers "$n" --interval "$interval" \
		--timeout $((interval * 3)) --warmup 1 --duration "$secs" \
		--csv "$out/watchdog-peers.csv" $header || status=1
	header=
	# wait until the watchdog has freed every slot before the next run
	for _ in $(seq 1 100); do
		[ "$(slots)" = 0 ] && break
		sleep 0.1
	done
done
echo "(hb/s and heartbeats: replies in the window; wd_cpu%: the watchdog process's"
echo " utime+stime over the window; us/hb: that CPU time per reply; rtt in ms)"
echo "conmgr peers declared lost by the watchdog: $(grep -c ' lost: ' "$work/server.log" || true)"
exit $status
