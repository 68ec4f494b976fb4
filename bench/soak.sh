#!/usr/bin/env bash
# Benchmark: false failures over a long run, and what short network outages
# do, at several heartbeat settings.
#
#   part A  (bench/soak-load-run.sh) one server, one conmgr per setting,
#           real applications through each; both CPUs saturated for SECONDS
#           (spinning processes + pgbench); counts false failure
#           declarations, notices and terminations, and the heartbeat round
#           trip.  Runs as the unprivileged user.
#   part B  (bench/soak-blips.pl) the partition lab of t/lib/CmLab.pm
#           (network namespaces, needs root): link blips shorter than
#           heartbeat_timeout, REPEATS times per length, counting false
#           failures; then real cuts, measuring detection time.
#
# Runs with the installed product (install it first: make && sudo make
# install); builds the lab program test/lab/lab_app_cm.  Prints the tables
# and writes bench/results/soak-*.csv (those of the parts run are
# replaced).  Without root, part B is skipped with the reason.
#
# Usage: bench/soak.sh [SECONDS [REPEATS]]   (defaults: 600 s, 5 repeats)
# Environment: SOAK_PARTS (default "a b"), SOAK_SETTINGS (part A, default
# "1000/3000 200/1000 100/300 50/150"), SOAK_APPS (per conmgr, default 4),
# SOAK_BLIP_SETTINGS (part B, default "200/1000 100/300"), SOAK_DATAGRAMS
# (part B: set, authenticated heartbeats, so datagrams; its CSV files are
# soak-blips-datagram.csv and soak-detect-datagram.csv), SOAK_FRACTIONS
# (part B: blip lengths as fractions of the timeout, "0.1,0.2,...").
set -euo pipefail

. "$(dirname "$0")/../scripts/common.sh"
cd "$top"

secs=${1:-600}
repeats=${2:-5}
need_counts "usage: $0 [SECONDS [REPEATS]] (positive integers)" "$secs" "$repeats"
parts=${SOAK_PARTS:-a b}
settings=${SOAK_SETTINGS:-1000/3000 200/1000 100/300 50/150}
apps=${SOAK_APPS:-4}
blip_settings=${SOAK_BLIP_SETTINGS:-200/1000 100/300}

ensure_user
make -s -C test/lab lab_app_cm
mkdir -p bench/results
# the CSV files of the parts that run are replaced
case " $parts " in *" a "*) rm -f bench/results/soak-load.csv bench/results/soak-rtt.csv ;; esac
case " $parts " in *" b "*) rm -f bench/results/soak-blips${SOAK_DATAGRAMS:+-datagram}.csv bench/results/soak-detect${SOAK_DATAGRAMS:+-datagram}.csv ;; esac
as_root chown "$CM_USER" bench/results

status=0
case " $parts " in
	*" a "*)
		work=$(user_workdir /tmp/cm-bench.XXXXXX)
		# shellcheck disable=SC2086  # settings is a word list
		as_user env CM_BENCH_BINDIR="${CM_BENCH_BINDIR:-}" bash "$top/bench/soak-load-run.sh" \
			"$work" "$top/bench/results" "$secs" "$apps" $settings || status=$?
		as_root rm -rf "$work"
		;;
esac
case " $parts " in
	*" b "*)
		if [ "$(id -u)" -ne 0 ]; then
			echo "soak part B skipped: it needs root (network namespaces)"
		else
			perllib=$(dirname "$(pg_config --pgxs)")/../../src/test/perl
			# shellcheck disable=SC2086
			TESTDIR="$top" PATH="$(pg_config --bindir):$PATH" CM_USER="$CM_USER" CM_LAB_TAG="cms$$t" \
				perl -I "$top/t/lib" -I "$perllib" "$top/bench/soak-blips.pl" \
				--out "$top/bench/results" --repeats "$repeats" \
				${SOAK_DATAGRAMS:+--datagrams} ${SOAK_FRACTIONS:+--fractions "$SOAK_FRACTIONS"} \
				$blip_settings || status=$?
		fi
		;;
esac
exit $status
