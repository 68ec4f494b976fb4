#!/usr/bin/env bash
# The CPU part of the soak, as the unprivileged user (run by bench/soak.sh,
# and in smoke mode by t/510_bench_smoke.pl).
#
# Usage: soak-load-run.sh WORKDIR OUTDIR SECONDS APPS INTERVAL/TIMEOUT...
#
# One throw-away cluster with the watchdog (bench/lib.sh,
# watchdog.termination_mode = precise), and one conmgr per setting
# INTERVAL/TIMEOUT (heartbeat_interval and heartbeat_timeout in ms), all
# heartbeating the same server at once.  Each conmgr routes APPS real
# applications (test/lab/lab_app_cm, the client library ahead of libpq,
# waiting idle on both of their sockets).  Then, for SECONDS, both kinds of
# CPU load at once: two spinning processes per CPU and pgbench -S with 4
# clients over the server's Unix socket.  Nothing fails during the run, so
# every failure counted is a false one:
#   declared   conmgr logged its instance down
#   notices    applications that received a failure notice
#   lost       the watchdog declared one of the conmgr processes lost (server
#              log, for all settings together)
#   ended      applications whose session the watchdog terminated
# Prints a table; appends one row per setting to OUTDIR/soak-load.csv and
# the heartbeat round-trip histogram of each conmgr (its metrics port) to
# OUTDIR/soak-rtt.csv.
set -euo pipefail

work=$1 out=$2 secs=$3 apps=$4
shift 4
. "$(dirname "$0")/lib.sh"
cd "$work"

app_prog=$bench/../test/lab/lab_app_cm
[ -x "$app_prog" ] || { echo "soak: $app_prog is missing (make -C test/lab lab_app_cm)" >&2; exit 1; }
for s in "$@"; do
	case "$s" in
		[0-9]*/[0-9]*) ;;
		*) echo "soak: setting \"$s\" is not INTERVAL/TIMEOUT in ms" >&2; exit 2 ;;
	esac
done

bench_ports 27032 wd
load_pids=()
cleanup() {
	local p
	for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for d in "$work"/cm*; do
		[ -d "$d" ] && cm_ctl stop -D "$d" -m immediate >/dev/null 2>&1 || true
	done
	bench_stop "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

bench_cluster_start "$work" "$pg_port" "$wd_port" "max_connections = 100
watchdog.termination_mode = precise
log_line_prefix = '%m [%p] '
log_timezone = 'UTC'"
pgbench -i -q -s 1 -h "$work" -p "$pg_port" postgres >/dev/null 2>&1

# one conmgr per setting, ports from 27146 (application) and 27246 (metrics)
k=0
cm_ports=() metrics_ports=()
for s in "$@"; do
	cm_ports[k]=$(free_port $((27146 + 10 * k)))
	metrics_ports[k]=$(free_port $((27246 + 10 * k)))
	bench_conmgr_start_in "$work/cm$k" "$work/heartbeat.secret" "${cm_ports[k]}" \
		"$pg_port" "$wd_port" "heartbeat_interval = ${s%/*}
heartbeat_timeout = ${s#*/}
metrics_port = ${metrics_ports[k]}"
	k=$((k + 1))
done

# the applications, each waiting idle on its SQL and conmgr sockets for
# longer than the run
k=0 app_outs=()
for s in "$@"; do
	for j in $(seq 1 "$apps"); do
		app_outs+=("$work/cm$k/app$j.out")
		"$app_prog" "host=localhost port=${cm_ports[k]} dbname=postgres target_session_attrs=read-write connect_timeout=10" \
			idle $((secs + 120)) > "$work/cm$k/app$j.out" 2>&1 &
	done
	k=$((k + 1))
done
for f in "${app_outs[@]}"; do
	for _ in $(seq 1 300); do
		grep -qs '^ready \|^connect-failed ' "$f" && break
		sleep 0.1
	done
	grep -q '^ready ' "$f" || { echo "soak: an application did not connect through conmgr: $(cat "$f")" >&2; exit 1; }
done

# cpu_ticks: total and idle (idle + iowait) clock ticks of all CPUs
cpu_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6 }' /proc/stat; }

# metrics K: the metrics of conmgr K (HTTP/1.0 over bash's /dev/tcp)
metrics() {
	exec 3<>"/dev/tcp/127.0.0.1/${metrics_ports[$1]}"
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	cat <&3
	exec 3<&-
}

declared_before=() k=0
for s in "$@"; do
	declared_before[k]=$(grep -c 'instance is down' "$work/cm$k/conmgr.log" || true)
	metrics "$k" > "$work/cm$k/metrics.before"
	k=$((k + 1))
done
lost_before=$(grep -c ' lost: ' "$work/server.log" || true)
ms0=$(date +%s%3N)

read -r t0 i0 < <(cpu_ticks)
start=$(date -u '+%Y-%m-%d %H:%M UTC')
for _ in $(seq 1 $((2 * $(nproc)))); do
	awk 'BEGIN { for (;;) n++ }' &
	load_pids+=($!)
done
pgbench -n -S -c 4 -j 2 -T "$secs" -h "$work" -p "$pg_port" postgres > "$work/pgbench.out" 2>&1 &
pgbench_pid=$!
load_pids+=("$pgbench_pid")
wait "$pgbench_pid" || { echo "soak: pgbench failed: $(tail -n 3 "$work/pgbench.out")" >&2; exit 1; }
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done
read -r t1 i1 < <(cpu_ticks)
busy=$(awk -v t="$((t1 - t0))" -v i="$((i1 - i0))" 'BEGIN { printf "%.1f", 100 * (t - i) / t }')
tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench.out" | head -n 1)

k=0
for s in "$@"; do
	metrics "$k" > "$work/cm$k/metrics.after"
	k=$((k + 1))
done
ms1=$(date +%s%3N)

# watchdog losses: after the server timeout (interval + timeout +
# watchdog.timeout_margin, 1 s) has passed, so that a late one counts
sleep 2
lost=$(( $(grep -c ' lost: ' "$work/server.log" || true) - lost_before ))
# backend PIDs the watchdog terminated
grep -A1 'watchdog terminated' "$work/server.log" |
	sed -n 's/.*Terminated backend PIDs: \([0-9, ]*\);.*/\1/p' | tr ', ' '\n\n' | grep . > "$work/terminated.pids" || true

echo "== soak: false failures under CPU load, $secs s, $apps applications per conmgr"
echo "   $start, $(nproc) CPUs, $(uname -r), PostgreSQL $(pg_config --version | cut -d' ' -f2)"
echo "   load: $((2 * $(nproc))) spinning processes + pgbench -S -c 4 ($tps tps); CPUs busy $busy %, load average at the end $loadavg"
printf '%9s %8s %7s %5s %8s %7s %5s %10s %9s %7s %7s %8s %9s\n' \
	interval timeout server apps declared notices ended heartbeats expected 'p50<=' 'p99<=' 'p99.9<=' 'max<='
[ -f "$out/soak-load.csv" ] ||
	echo "interval_ms,timeout_ms,server_timeout_ms,seconds,apps,declared,notices,ended,heartbeats,expected,rtt_p50_ms,rtt_p99_ms,rtt_p999_ms,rtt_max_ms,watchdog_lost_all,cpu_busy_pct,tps" > "$out/soak-load.csv"
[ -f "$out/soak-rtt.csv" ] ||
	echo "interval_ms,timeout_ms,le_ms,count,fraction" > "$out/soak-rtt.csv"
k=0
for s in "$@"; do
	iv=${s%/*} to=${s#*/}
	d="$work/cm$k"
	declared=$(( $(grep -c 'instance is down' "$d/conmgr.log" || true) - ${declared_before[k]} ))
	notices=0 ended=0
	for f in "$d"/app*.out; do
		grep -q '^notified \|^failed ' "$f" && notices=$((notices + 1))
		pid=$(sed -n 's/^ready .* pid=\([0-9]*\) .*/\1/p' "$f")
		grep -qx "$pid" "$work/terminated.pids" && ended=$((ended + 1))
	done
	# the round-trip histogram of the run: cumulative buckets after minus before
	bucket() { sed -n 's/^conmgr_instance_heartbeat_rtt_seconds_bucket{.*le="\([^"]*\)".* \([0-9]*\)$/\1 \2/p' "$1"; }
	paste -d' ' <(bucket "$d/metrics.before") <(bucket "$d/metrics.after") |
		awk -v iv="$iv" -v to="$to" '{ le = ($1 == "+Inf") ? "inf" : $1 * 1000; n = $4 - $2; print iv, to, le, n }' > "$d/rtt.hist"
	total=$(awk 'END { print $4 }' "$d/rtt.hist")
	awk -v t="$total" 'BEGIN { OFS = "," } { print $1, $2, $3, $4, (t > 0 ? sprintf("%.6f", $4 / t) : 0) }' "$d/rtt.hist" >> "$out/soak-rtt.csv"
	# the smallest bucket bound holding fraction F of the round trips
	pct() { awk -v f="$1" -v t="$total" '$4 >= f * t { print $3; exit }' "$d/rtt.hist"; }
	# the largest: the first bound that holds them all
	max=$(pct 1)
	# heartbeats sent between the two reads of the metrics
	expected=$(((ms1 - ms0) / iv))
	server=$((iv + to + 1000))
	printf '%9s %8s %7s %5s %8s %7s %5s %10s %9s %7s %7s %8s %9s\n' \
		"$iv" "$to" "$server" "$apps" "$declared" "$notices" "$ended" "$total" "$expected" \
		"$(pct 0.5)" "$(pct 0.99)" "$(pct 0.999)" "$max"
	echo "$iv,$to,$server,$secs,$apps,$declared,$notices,$ended,$total,$expected,$(pct 0.5),$(pct 0.99),$(pct 0.999),$max,$lost,$busy,$tps" >> "$out/soak-load.csv"
	k=$((k + 1))
done
echo "conmgr processes declared lost by the watchdog (all settings): $lost"
echo "(server: the server timeout, interval + timeout + watchdog.timeout_margin; declared:"
echo " conmgr declared its instance down; notices: applications told of a failure; ended:"
echo " applications whose session the watchdog terminated; heartbeats: answered during the"
echo " run, expected: the run's length / interval; round trip in ms, as the upper bound of its"
echo " histogram bucket: 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000 ms, inf)"
