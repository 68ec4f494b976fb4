#!/usr/bin/env bash
# The benchmark itself, run by bench/client-overhead.sh as an unprivileged
# user.  Usage: client-overhead-run.sh WORKDIR ROUNDS SECONDS
set -euo pipefail

work=$1 rounds=$2 secs=$3
. "$(dirname "$0")/lib.sh"
cd "$work"

bench_ports 26432 wd cm

cleanup() { bench_stop "$work"; }
trap cleanup EXIT

bench_cluster_start "$work" "$pg_port" "$wd_port"
pgbench -i -q -s 1 -h "$work" -p "$pg_port" postgres >/dev/null 2>&1
bench_conmgr_start "$work" "$cm_port" "$pg_port" "$wd_port"

# tps of one pgbench run: run ENV... -- PGBENCH-ARGS...
tps() {
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	env "${envs[@]}" pgbench -n -S -T "$secs" "$@" postgres 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# compare NAME "BASE-ENV -- BASE-ARGS" "VARIANT-ENV -- VARIANT-ARGS"
compare() {
	local name=$1 base=$2 variant=$3 b=() v=() i
	for i in $(seq 1 "$rounds"); do
		# shellcheck disable=SC2086
		b+=("$(tps $base)")
		# shellcheck disable=SC2086
		v+=("$(tps $variant)")
	done
	local bm vm
	bm=$(printf '%s\n' "${b[@]}" | median)
	vm=$(printf '%s\n' "${v[@]}" | median)
	if [ -z "$bm" ] || [ -z "$vm" ]; then
		echo "bench: $name: a pgbench run failed (baseline: ${b[*]}; variant: ${v[*]})" >&2
		exit 1
	fi
	awk -v n="$name" -v b="$bm" -v v="$vm" 'BEGIN { printf "%-13s %12.1f %12.1f %8.3f\n", n, b, v, v / b }'
}

pre=LD_PRELOAD=libpqcm.so.1
off=BENCH=plain-libpq
unix="-h $work -p $pg_port"
tcp="-h 127.0.0.1 -p $pg_port"
via="-h localhost -p $cm_port"

echo "== client library cost: median tps of $rounds alternating runs of $secs s each"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), PostgreSQL $(pg_config --version | cut -d' ' -f2)"
printf '%-13s %12s %12s %8s\n' workload baseline variant ratio
compare queries      "$off -- $unix -c 1"       "$pre -- $unix -c 1"
compare connect-unix "$off -- $unix -C -c 1"    "$pre -- $unix -C -c 1"
compare connect-tcp  "$off -- $tcp -C -c 1"     "$pre -- $tcp -C -c 1"
compare via-conmgr   "$pre -- $tcp -C -c 1"     "$pre -- $via -C -c 1"
compare queries-cm   "$pre -- $tcp -c 1"        "$pre -- $via -c 1"
echo "(ratio = variant / baseline; 1.000 = no difference)"
