#!/usr/bin/env bash
# The connect benchmark itself, as the unprivileged user (run by
# bench/connect.sh, and in smoke mode by t/510_bench_smoke.pl).
#
# Usage: connect-run.sh WORKDIR OUTDIR CONNECTIONS ROUNDS PGBENCH_LENGTH
#
# Starts a throw-away cluster and a conmgr (bench/lib.sh) and a pgbouncer
# (session pooling, its own ini in WORKDIR/pgbouncer) in front of the same
# server, all on 127.0.0.1, and compares three paths from the client to the
# server:
#   direct     TCP to the server
#   conmgr     through conmgr: stage 1 (route request) + stage 2 (TCP to
#              the instance conmgr names) + the registration
#   pgbouncer  TCP to pgbouncer, which hands over a pooled server connection
# In each of ROUNDS rounds, the three paths take their turn (the first one
# rotates from round to round):
#   - bench/connect opens and closes CONNECTIONS / ROUNDS connections, one
#     at a time (after one untimed warm-up connection), and appends every
#     sample to OUTDIR/connect-samples.csv; then as many again, paced
#     (10 ms between connections, label PATH-paced), so that a connection
#     does not overlap what its predecessor left to do;
#   - pgbench -S, PGBENCH_LENGTH long (a pgbench option: -T5 for 5 seconds,
#     -t100 for 100 transactions per client), with one connection kept
#     (-c 1; -c 8 -j 2) and with a new connection per transaction (-C).
# Prints the latency per path over all rounds (also OUTDIR/connect.csv)
# and one table of the medians side by side (also OUTDIR/connect-table.csv).
#
# bench/connect is linked with libpqcm; pgbench (not rebuilt) runs with
# LD_PRELOAD=libpqcm.so.1 on every path, as a program that uses Connection
# Manager would: for direct and pgbouncer the library only reads the options
# (the probe of a plain server on a loopback address is answered once and
# cached).
set -euo pipefail

work=$1 out=$2 conns=$3 rounds=$4 length=$5
. "$(dirname "$0")/lib.sh"
cd "$work"

per_round=$((conns / rounds))
[ "$per_round" -ge 1 ] || { echo "connect-run.sh: fewer connections ($conns) than rounds ($rounds)" >&2; exit 2; }
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
[ -x "$pgbouncer" ] || { echo "connect-run.sh: pgbouncer is not installed (scripts/install-deps.sh)" >&2; exit 1; }

bench_ports 28432 wd cm
pb_port=$(free_port 28646)

pb_pid=
# pgbouncer_stop: stop the pgbouncer of this run (SIGINT: it closes its
# connections and exits) and wait for it; SIGKILL after 10 s.
pgbouncer_stop() {
	[ -n "$pb_pid" ] || return 0
	kill -INT "$pb_pid" 2>/dev/null || true
	local i
	for i in $(seq 1 100); do
		kill -0 "$pb_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pb_pid" 2>/dev/null || true
	wait "$pb_pid" 2>/dev/null || true
	pb_pid=
}
cleanup() {
	trap '' PIPE
	pgbouncer_stop
	bench_stop "$work"
}
trap cleanup EXIT
# a signal ends the script through its EXIT trap too
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

bench_cluster_start "$work" "$pg_port" "$wd_port"
pgbench -i -q -s 1 -h "$work" -p "$pg_port" postgres >/dev/null 2>&1
bench_conmgr_start "$work" "$cm_port" "$pg_port" "$wd_port"

# pgbouncer, session pooling, in the foreground as a child of this script
# (so that it cannot outlive it unnoticed), trust authentication of the
# one user of the userlist
mkdir -m 700 "$work/pgbouncer"
printf '"%s" ""\n' "$(id -un)" > "$work/pgbouncer/userlist.txt"
cat > "$work/pgbouncer/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pb_port
unix_socket_dir =
auth_type = trust
auth_file = $work/pgbouncer/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $work/pgbouncer/pgbouncer.log
pidfile = $work/pgbouncer/pgbouncer.pid
log_connections = 0
log_disconnections = 0
INI
"$pgbouncer" -q "$work/pgbouncer/pgbouncer.ini" &
pb_pid=$!
for i in $(seq 1 100); do
	pg_isready -q -h 127.0.0.1 -p "$pb_port" -d postgres && break
	kill -0 "$pb_pid" 2>/dev/null || { pb_pid=; echo "connect-run.sh: pgbouncer exited at start:" >&2; cat "$work/pgbouncer/pgbouncer.log" >&2; exit 1; }
	sleep 0.1
done
pg_isready -q -h 127.0.0.1 -p "$pb_port" -d postgres || { echo "connect-run.sh: pgbouncer does not answer on port $pb_port" >&2; exit 1; }

paths=(direct conmgr pgbouncer)
declare -A port=([direct]=$pg_port [conmgr]=$cm_port [pgbouncer]=$pb_port)
declare -A expect=([direct]=no [conmgr]=yes [pgbouncer]=no)

# order R: the three paths, starting with path (R - 1) mod 3
order() {
	local r=$1 i
	for i in 0 1 2; do echo "${paths[$(((r - 1 + i) % 3))]}"; done
}

# tps PATH PGBENCH-ARGS...: transactions per second of one pgbench -S run
tps() {
	local path=$1 t
	shift
	t=$(env LD_PRELOAD=libpqcm.so.1 pgbench -n -S "$length" "$@" -h 127.0.0.1 -p "${port[$path]}" postgres 2>"$work/pgbench.err" |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p') || true
	if [ -z "$t" ]; then
		echo "bench: pgbench -S $length $* through $path (port ${port[$path]}) failed:" >&2
		cat "$work/pgbench.err" >&2
		exit 1
	fi
	echo "$t"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# the paced runs wait this long after each connection
pause_ms=10
samples=$out/connect-samples.csv
table=$out/connect-table.csv
rm -f "$samples" "$out/connect.csv" "$table"

echo "== connect: direct vs conmgr vs pgbouncer (session pooling), all on 127.0.0.1"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), PostgreSQL $(pg_config --version | cut -d' ' -f2), $("$pgbouncer" --version | head -n 1), load average$(uptime | sed 's/.*load average//')"
echo "   $rounds round(s), each: $per_round connections per path back to back, $per_round paced ($pause_ms ms apart),"
echo "   then pgbench -S $length per workload and path"

# workloads: name and pgbench options
workloads=("select-c1" "-c 1" "select-c8" "-c 8 -j 2" "select-C-c1" "-C -c 1" "select-C-c8" "-C -c 8 -j 2")
declare -A runs=()
for r in $(seq 1 "$rounds"); do
	for p in $(order "$r"); do
		"$bench/connect" --count "$per_round" --warmup 1 --label "$p" --round "$r" \
			--expect-conmgr "${expect[$p]}" --csv "$samples" \
			"host=127.0.0.1 port=${port[$p]} dbname=postgres" >/dev/null
	done
	for p in $(order "$r"); do
		"$bench/connect" --count "$per_round" --warmup 1 --pause "$pause_ms" \
			--label "$p-paced" --round "$r" \
			--expect-conmgr "${expect[$p]}" --csv "$samples" \
			"host=127.0.0.1 port=${port[$p]} dbname=postgres" >/dev/null
	done
	for ((w = 0; w < ${#workloads[@]}; w += 2)); do
		for p in $(order "$r"); do
			# shellcheck disable=SC2086
			runs[${workloads[w]},$p]+="$(tps "$p" ${workloads[w + 1]}) "
		done
	done
done

echo
echo "connection latency (ms, PQconnectdb until CONNECTION_OK, $((per_round * rounds)) per path; paced: $pause_ms ms apart):"
"$bench/connect" --summary "$samples" --csv "$out/connect.csv" --header

# the side-by-side table: medians (latency) and median tps of the rounds
echo
printf '%-16s %10s %10s %10s %14s %16s\n' workload direct conmgr pgbouncer conmgr/direct pgbouncer/direct
echo "workload,direct,conmgr,pgbouncer,conmgr_per_direct,pgbouncer_per_direct" > "$table"
row() {
	local name=$1 d=$2 c=$3 b=$4
	awk -v n="$name" -v d="$d" -v c="$c" -v b="$b" 'BEGIN {
		printf "%-16s %10.3f %10.3f %10.3f %14.3f %16.3f\n", n, d, c, b, c / d, b / d }'
	awk -v n="$name" -v d="$d" -v c="$c" -v b="$b" 'BEGIN {
		printf "%s,%.3f,%.3f,%.3f,%.3f,%.3f\n", n, d, c, b, c / d, b / d }' >> "$table"
}
# connect.csv: label,connections,min_ms,median_ms,p90_ms,p99_ms,max_ms
lat() { awk -F, -v p="$1" -v col="$2" '$1 == p { print $col }' "$out/connect.csv"; }
row connect-p50-ms "$(lat direct 4)" "$(lat conmgr 4)" "$(lat pgbouncer 4)"
row connect-p99-ms "$(lat direct 6)" "$(lat conmgr 6)" "$(lat pgbouncer 6)"
row paced-p50-ms "$(lat direct-paced 4)" "$(lat conmgr-paced 4)" "$(lat pgbouncer-paced 4)"
row paced-p99-ms "$(lat direct-paced 6)" "$(lat conmgr-paced 6)" "$(lat pgbouncer-paced 6)"
for ((w = 0; w < ${#workloads[@]}; w += 2)); do
	n=${workloads[w]}
	row "$n-tps" \
		"$(echo "${runs[$n,direct]}" | tr ' ' '\n' | grep . | median)" \
		"$(echo "${runs[$n,conmgr]}" | tr ' ' '\n' | grep . | median)" \
		"$(echo "${runs[$n,pgbouncer]}" | tr ' ' '\n' | grep . | median)"
done
echo "(latency in ms, lower is better; paced: $pause_ms ms between connections;"
echo " tps = median of $rounds pgbench runs, higher is better;"
echo " select-c8: -c 8 -j 2; -C: a new connection per transaction)"

pgbouncer_stop
echo "pgbouncer stopped"
