#!/usr/bin/env bash
# The watchdog benchmark itself, as the unprivileged user (run by
# bench/watchdog-peers.sh, and in smoke mode by t/510_bench_smoke.pl).
#
# Usage: watchdog-peers-run.sh WORKDIR OUTDIR SECONDS INTERVAL_MS N...
#
# Starts a throw-away cluster (bench/lib.sh) sized for the largest N, then
# for each N runs bench/watchdog-peers: N authenticated peers heartbeating
# every INTERVAL_MS, measured for SECONDS after a warm-up; and, side by
# side, the same N peers against bench/echo-responder, the least a
# heartbeat responder can do (the baseline); each over TCP and as
# datagrams.  Prints a table, the ratio of the costs for each N and
# transport, and appends to OUTDIR/watchdog-peers.csv.
set -euo pipefail

work=$1 out=$2 secs=$3 interval=$4
shift 4
. "$(dirname "$0")/lib.sh"
cd "$work"

max=$(bench_max "$@")
# one descriptor per peer in the watchdog, and in this script's programs,
# plus room for the rest (the watchdog opens no relation files; the
# recommendation of docs/watchdog.md, "Open-files limit", also leaves room
# for connections waiting for their hello, which the benchmark starts 64 at
# a time)
bench_need_fds $((max + 1100)) "watchdog-peers with $max peers"

bench_ports 26632 wd echo
echo_pid=
cleanup() {
	[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null
	bench_stop "$work"
}
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
"$bench/echo-responder" "$echo_port" > "$work/echo.out" &
echo_pid=$!
for _ in $(seq 1 100); do
	grep -q ready "$work/echo.out" 2>/dev/null && break
	kill -0 "$echo_pid" 2>/dev/null || { echo "watchdog-peers: echo-responder did not start" >&2; exit 1; }
	sleep 0.1
done

header=--header
status=0
ratios=
for n in "$@"; do
	for transport in tcp datagram; do
		opt=
		[ "$transport" = datagram ] && opt=--datagram
		"$bench/watchdog-peers" $opt --port "$wd_port" --secret "$work/heartbeat.secret" \
			--pid "$wd_pid" --peers "$n" --interval "$interval" \
			--timeout $((interval * 3)) --warmup 1 --duration "$secs" \
			--csv "$out/watchdog-peers.csv" $header | tee "$work/row.wd" || status=1
		header=
		"$bench/watchdog-peers" $opt --baseline --port "$echo_port" \
			--pid "$echo_pid" --peers "$n" --interval "$interval" \
			--timeout $((interval * 3)) --warmup 1 --duration "$secs" \
			--csv "$out/watchdog-peers.csv" | tee "$work/row.echo" || status=1
		# CPU per heartbeat (schedstat): the watchdog's over the baseline's
		ratios="$ratios$(awk -v n="$n" -v t="$transport" '$1 ~ /^watchdog/ { w = $10 } $1 ~ /^echo/ { e = $10 }
			END { if (w > 0 && e > 0) printf "ratio %s %d %.2f %.2f %.2f\\n", t, n, w, e, w / e }' "$work/row.wd" "$work/row.echo")"
		# wait until the watchdog has freed every slot before the next run
		for _ in $(seq 1 100); do
			[ "$(slots)" = 0 ] && break
			sleep 0.1
		done
	done
done
echo "(responder: the watchdog, or echo = bench/echo-responder, the baseline; -udp:"
echo " heartbeats after the first as datagrams (protocol 1.2); hb/s and heartbeats:"
echo " replies in the window; wd_cpu%: the responder process's utime+stime over the"
echo " window; us/hb: that CPU time per reply; us/hb(ns): the same from"
echo " /proc/PID/schedstat; rtt in ms)"
echo "CPU per heartbeat, watchdog over baseline:"
printf '%-5s %-9s %7s %12s %12s %8s\n' "" transport peers "watchdog_us" "echo_us" ratio
printf "$ratios" | awk '{ printf "%-5s %-9s %7d %12.2f %12.2f %8.2f\n", $1, $2, $3, $4, $5, $6 }'
echo "conmgr peers declared lost by the watchdog: $(grep -c ' lost: ' "$work/server.log" || true)"
exit $status
