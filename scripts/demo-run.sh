#!/usr/bin/env bash
# The demo itself, run by scripts/demo.sh as an unprivileged user.
# Usage: demo-run.sh WORKDIR
set -euo pipefail

work=$1
bindir=$(pg_config --bindir)
export PATH="$bindir:$PATH"
cd "$work"
. "$(dirname "$0")/common.sh"

pg_port1=$(free_port 25432); wd_port1=$(free_port 25545)
pg_port2=$(free_port $((pg_port1 + 1))); wd_port2=$(free_port $((wd_port1 + 1)))
cm_port=$(free_port 27546)

cleanup() {
	echo "== cleaning up"
	[ -n "${frozen:-}" ] && kill -CONT $frozen 2>/dev/null || true
	cm_ctl stop -D "$work/conmgr" -m immediate >/dev/null 2>&1 || true
	pg_ctl -D "$work/standby" stop -m immediate >/dev/null 2>&1 || true
	pg_ctl -D "$work/primary" stop -m immediate >/dev/null 2>&1 || true
}
trap cleanup EXIT

# the secret that conmgr and the watchdogs prove to each other they hold
write_secret "$work/heartbeat.secret"

echo "== creating primary (port $pg_port1, watchdog $wd_port1)"
initdb -D "$work/primary" -A trust >/dev/null
watchdog_conf "$work/primary" "$pg_port1" "$wd_port1" "$work" "$work/heartbeat.secret" <<CONF
watchdog.check_attr_interval = 500
wal_level = replica
CONF
echo "host replication all 127.0.0.1/32 trust" >> "$work/primary/pg_hba.conf"
pg_ctl -D "$work/primary" -l "$work/primary.log" -w start >/dev/null

echo "== creating streaming standby (port $pg_port2, watchdog $wd_port2)"
pg_basebackup -h 127.0.0.1 -p "$pg_port1" -D "$work/standby" -R >/dev/null
cat >> "$work/standby/postgresql.conf" <<CONF
port = $pg_port2
watchdog.port = $wd_port2
CONF
pg_ctl -D "$work/standby" -l "$work/standby.log" -w start >/dev/null

echo "== starting conmgr (port $cm_port)"
conmgr_conf "$work/conmgr" "$cm_port" "$work/heartbeat.secret" "$pg_port1:$wd_port1" "$pg_port2:$wd_port2" <<CONF
heartbeat_interval = 500
heartbeat_timeout = 2000
CONF
cm_ctl start -D "$work/conmgr" --complete -t 30
cm_ctl status -D "$work/conmgr" || true

echo "== a read-only application that waits for failure notices"
"$work/cm_app" "host=localhost port=$cm_port dbname=postgres target_session_attrs=read-only" --wait-notice 30 > "$work/ro.out" 2>&1 &
app=$!
for _ in $(seq 1 100); do grep -q '^connected' "$work/ro.out" && break; sleep 0.1; done
cat "$work/ro.out"

# A hung host: every process of the standby is frozen.  Its sockets stay
# open, nothing is closed or reset: TCP alone would notice nothing.
pm=$(head -n 1 "$work/standby/postmaster.pid")
frozen="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
echo "== freezing every process of the standby (SIGSTOP) at $(date +%T.%3N)"
kill -STOP $frozen
wait $app || true
echo "== the application says:"
sed -n '2,$p' "$work/ro.out"
grep -q '^notice' "$work/ro.out" || { echo "demo: the application was not notified" >&2; exit 1; }
kill -CONT $frozen
frozen=

echo "== a read-write application that waits for failure notices"
"$work/cm_app" "host=localhost port=$cm_port dbname=postgres target_session_attrs=read-write" --wait-notice 30 > "$work/app.out" 2>&1 &
app=$!
for _ in $(seq 1 100); do grep -q '^connected' "$work/app.out" && break; sleep 0.1; done
cat "$work/app.out"

echo "== stopping the primary with -m immediate at $(date +%T.%3N)"
pg_ctl -D "$work/primary" stop -m immediate >/dev/null
wait $app || true
echo "== the application says:"
sed -n '2,$p' "$work/app.out"
grep -q '^notice' "$work/app.out" || { echo "demo: the application was not notified" >&2; exit 1; }
echo "== conmgr's log:"
tail -n 5 "$work/conmgr/"*.log 2>/dev/null || true
