# Shared by the benchmark scripts in bench/ that run as the unprivileged
# user: a throw-away PostgreSQL cluster with the watchdog preloaded and
# heartbeat authentication on, and a conmgr in front of it.  Sourcing it
# sets bench (this directory), puts the programs to use first on PATH and
# sources scripts/common.sh.

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# CM_BENCH_BINDIR: programs to use instead of the installed ones (a build tree)
export PATH="${CM_BENCH_BINDIR:+$CM_BENCH_BINDIR:}$(pg_config --bindir):$PATH"
. "$bench/../scripts/common.sh"

# bench_cluster_start WORK PG_PORT WD_PORT [EXTRA]: initdb WORK/data, write
# the shared secret WORK/heartbeat.secret, preload the watchdog and start
# the server (log in WORK/server.log).  EXTRA (lines) is appended to
# postgresql.conf: the settings of one benchmark.
bench_cluster_start() {
	local work=$1 pg_port=$2 wd_port=$3 extra=${4:-}
	# a throw-away cluster: nothing to sync to disk (--no-sync)
	initdb -N -D "$work/data" -A trust >/dev/null
	write_secret "$work/heartbeat.secret"
	watchdog_conf "$work/data" "$pg_port" "$wd_port" "$work" "$work/heartbeat.secret" <<CONF
max_connections = 50
$extra
CONF
	pg_ctl -D "$work/data" -l "$work/server.log" -w start >/dev/null
}

# bench_conmgr_start WORK CM_PORT PG_PORT WD_PORT [EXTRA]: write
# WORK/conmgr/conmgr.conf for the one instance of bench_cluster_start, EXTRA
# (lines) appended, and start conmgr; its log is WORK/conmgr/conmgr.log.
bench_conmgr_start() {
	local work=$1
	shift
	bench_conmgr_start_in "$work/conmgr" "$work/heartbeat.secret" "$@"
}

# bench_conmgr_start_in DIR SECRET CM_PORT PG_PORT WD_PORT [EXTRA]: the same
# with the conmgr directory DIR and the heartbeat secret file SECRET given,
# for benchmarks that run several conmgr processes against one server.
bench_conmgr_start_in() {
	local dir=$1 secret=$2 cm_port=$3 pg_port=$4 wd_port=$5 extra=${6:-}
	conmgr_conf "$dir" "$cm_port" "$secret" "$pg_port:$wd_port" <<CONF
log_destination = 'file'
$extra
CONF
	cm_ctl start -D "$dir" -t 30 >/dev/null
}

# bench_stop WORK: stop conmgr and the server of WORK, whatever their state.
bench_stop() {
	cm_ctl stop -D "$1/conmgr" -m immediate >/dev/null 2>&1 || true
	pg_ctl -D "$1/data" stop -m immediate >/dev/null 2>&1 || true
}

# bench_watchdog_pid WORK: PID of the server's watchdog process, the child
# of the postmaster titled "postgres: watchdog" (not in pg_stat_activity);
# waits up to 10 s for the worker to start.
bench_watchdog_pid() {
	local pm pid= i
	pm=$(head -n 1 "$1/data/postmaster.pid")
	for i in $(seq 1 100); do
		pid=$(ps -o pid=,args= --ppid "$pm" | awk '$2 == "postgres:" && $3 == "watchdog" && NF == 3 { print $1 }')
		[ -n "$pid" ] && break
		sleep 0.1
	done
	echo "$pid"
}

# bench_ports BASE NAME...: set pg_port to the first free port from BASE on
# (free_port), and NAME_port for each NAME to the next free ports from
# BASE + 113 on, one after the other, so that no two of them are the same.
bench_ports() {
	local base=$1 name p
	shift
	pg_port=$(free_port "$base")
	p=$((base + 112))
	for name in "$@"; do
		p=$(free_port $((p + 1)))
		printf -v "${name}_port" '%s' "$p"
	done
}

# bench_max N...: the largest of the numbers.
bench_max() {
	local m=0 x
	for x in "$@"; do [ "$x" -gt "$m" ] && m=$x; done
	echo "$m"
}

# bench_need_fds NEED WHAT: raise the open-files limit to the hard limit,
# and fail, naming WHAT, when that is below NEED.
bench_need_fds() {
	ulimit -n "$(ulimit -Hn)"
	if [ "$(ulimit -n)" -lt "$1" ]; then
		echo "$2: the open-files hard limit ($(ulimit -Hn)) is below the $1 it needs" >&2
		exit 1
	fi
}
