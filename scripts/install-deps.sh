#!/usr/bin/env bash
# Install the Debian 12 packages Connection Manager needs to build, test and
# run its demo.  Idempotent: returns at once when everything is present.
# Run as root, or as a user with sudo.
set -euo pipefail

PACKAGES=(
	make gcc pkg-config
	postgresql-15 postgresql-server-dev-15 libpq-dev
	libevent-dev libssl-dev
	libipc-run-perl
	iproute2 procps
	valgrind cppcheck
	gnuplot-nox
	pgbouncer
	clang libclang-rt-14-dev
	python3-psycopg2 python3-psycopg
	libecpg-dev unixodbc unixodbc-dev odbc-postgresql
	debhelper dpkg-dev fakeroot lintian postgresql-server-dev-all
	groff-base man-db systemd
	default-jdk-headless libpostgresql-jdbc-java libhikaricp-java libslf4j-java
)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# pgbouncer is here only as the baseline of bench/connect.sh, which runs its
# own; the package starts a system service on port 6432, which nobody asked
# for.  Stop and disable that service when this script installed it (a
# pgbouncer that was already installed is left as it is).
if [[ " ${missing[*]} " == *" pgbouncer "* ]] && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now pgbouncer.service >/dev/null 2>&1 &&
		echo "install-deps: stopped and disabled the pgbouncer service the package started (bench/connect.sh runs its own)"
fi
echo "install-deps: done"
