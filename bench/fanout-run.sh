#!/usr/bin/env bash
# The fan-out benchmark itself, as the unprivileged user (run by
# bench/fanout.sh, and in smoke mode by t/510_bench_smoke.pl).
#
# Usage: fanout-run.sh WORKDIR OUTDIR M...
#
# Starts a throw-away cluster and a conmgr (bench/lib.sh) sized for the
# largest M; then for each M, twice: M applications register through
# conmgr (bench/fanout), and the instance fails
#   stop     pg_ctl stop -m immediate (the heartbeat connection breaks)
#   sigstop  the watchdog process frozen with SIGSTOP (conmgr's heartbeat
#            timeout expires)
# after which the server is started again, or the watchdog continued.
# Prints a table and appends to OUTDIR/fanout.csv.
set -euo pipefail

work=$1 out=$2
shift 2
. "$(dirname "$0")/lib.sh"
cd "$work"

max=$(bench_max "$@")
# conmgr: 32 + 2 per instance + max_app_connections (docs/conmgr.md); this
# program and its holder process: one per application each (the conmgr
# socket; the stand-in SQL connection)
bench_need_fds $((max + 164)) "fanout with $max applications"

# the stand-in SQL connections go to the port conmgr names as the
# instance's backend_port, as real ones do (bench/fanout.c): sql_port
bench_ports 26832 wd cm sql
cleanup() {
	[ -n "${wd_pid:-}" ] && kill -CONT "$wd_pid" 2>/dev/null
	bench_stop "$work"
}
trap cleanup EXIT

# heartbeat every 200 ms, failure after 1000 ms without an answer: the
# SIGSTOP case then takes about a second
interval=200 timeout=1000
bench_cluster_start "$work" "$pg_port" "$wd_port"
bench_conmgr_start "$work" "$cm_port" "$sql_port" "$wd_port" "heartbeat_interval = $interval
heartbeat_timeout = $timeout
max_app_connections = $((max + 100))
max_app_connections_per_user = $((max + 100))"
log=$work/conmgr/conmgr.log

echo "== failure notices to M registered applications (conmgr heartbeat_interval $interval ms, heartbeat_timeout $timeout ms)"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, PostgreSQL $(pg_config --version | cut -d' ' -f2), load average$(uptime | sed 's/.*load average//')"
header=--header
status=0
for m in "$@"; do
	# the server stops at once
	"$bench/fanout" --port "$cm_port" --sql-port "$sql_port" --timeout 300 --apps "$m" --log "$log" --label stop \
		--event "pg_ctl -D '$work/data' stop -m immediate >/dev/null" \
		--csv "$out/fanout.csv" $header || status=1
	header=
	pg_ctl -D "$work/data" -l "$work/server.log" -w start >/dev/null

	# the watchdog freezes (the server runs on)
	wd_pid=$(bench_watchdog_pid "$work")
	"$bench/fanout" --port "$cm_port" --sql-port "$sql_port" --timeout 300 --apps "$m" --log "$log" --label sigstop \
		--event "kill -STOP $wd_pid" --csv "$out/fanout.csv" || status=1
	kill -CONT "$wd_pid"
	wd_pid=
done
echo "(reg_s: seconds from the first instance answer until all M registered;"
echo " ms after the event: declared = conmgr logged the instance down; first, last = the"
echo " first and last notice received; first-d, last-d = the same after the declaration;"
echo " written = ms conmgr took to write every notice, from its own log)"
exit $status
