# Shared by scripts/test.sh, scripts/demo.sh and bench/: privilege handling,
# the unprivileged user that runs PostgreSQL (which refuses to run as root),
# a free TCP port, work directories and the configuration files of
# throw-away clusters and conmgr.

CM_USER=${CM_USER:-cmtest}

# top: the top directory of the source tree (this file is in its scripts/)
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# as_root CMD...: run as root (directly, or through sudo).
as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_user: when running as root, create the unprivileged user if needed;
# otherwise the invoking user runs PostgreSQL itself.
ensure_user() {
	if [ "$(id -u)" -eq 0 ]; then
		id "$CM_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$CM_USER"
	else
		CM_USER=$(id -un)
	fi
}

# as_user CMD...: run CMD as the unprivileged user with a sane PATH.
as_user() {
	local path="$(pg_config --bindir):/usr/local/bin:/usr/bin:/bin"
	if [ "$(id -un)" = "$CM_USER" ]; then
		env PATH="$path" "$@"
	else
		as_root runuser -u "$CM_USER" -- env PATH="$path" HOME="$(getent passwd "$CM_USER" | cut -d: -f6)" "$@"
	fi
}

# build_and_install: build everything (warnings are errors) and install.
build_and_install() {
	make -s COPT=-Werror
	as_root make -s install
	as_root ldconfig
	# test programs and examples link the installed library
	make -s COPT=-Werror test-programs
}

# free_port N: the first port from N on (up to N + 200) where nothing
# listens on 127.0.0.1.
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "no free port near $1" >&2; exit 1
}

# need_counts [-p] USAGE N...: exit 2, USAGE on standard error, unless
# every N is a whole number (with -p: at least 1).
need_counts() {
	local min=0 usage n
	if [ "$1" = -p ]; then min=1; shift; fi
	usage=$1
	shift
	for n in "$@"; do
		case "$n" in *[!0-9]*|'') echo "$usage" >&2; exit 2 ;; esac
		[ "$n" -ge "$min" ] || { echo "$usage" >&2; exit 2; }
	done
}

# prepare_tree [-q] MESSAGE: install what is missing (scripts/install-deps.sh),
# make sure of the unprivileged user (ensure_user), print MESSAGE, then build
# and install (build_and_install; with -q, without its standard output).
prepare_tree() {
	local quiet=
	if [ "$1" = -q ]; then quiet=1; shift; fi
	scripts/install-deps.sh
	ensure_user
	echo "$1"
	if [ -n "$quiet" ]; then build_and_install >/dev/null; else build_and_install; fi
}

# user_workdir TEMPLATE: a new temporary directory (mktemp -d TEMPLATE) that
# the unprivileged user owns and everybody may enter; prints its path.
user_workdir() {
	local dir
	dir=$(mktemp -d "$1")
	as_root chown -R "$CM_USER" "$dir"
	chmod 755 "$dir"
	echo "$dir"
}

# write_secret FILE: a new heartbeat secret (32 random bytes, base64) that
# only its owner may read.
write_secret() {
	(umask 077 && head -c 32 /dev/urandom | base64 > "$1")
}

# watchdog_conf DATADIR PG_PORT WD_PORT SOCKDIR SECRET: append to
# DATADIR/postgresql.conf the settings of a server with the watchdog
# preloaded and heartbeat authentication on, listening on 127.0.0.1:PG_PORT
# and in SOCKDIR, its watchdog on WD_PORT; then the lines of the standard
# input (further settings).
watchdog_conf() {
	{
		cat <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$4'
shared_preload_libraries = 'watchdog'
watchdog.port = $3
watchdog.secret_file = '$5'
CONF
		cat
	} >> "$1/postgresql.conf"
}

# conmgr_conf DIR CM_PORT SECRET PG_PORT:WD_PORT...: create the conmgr
# directory DIR and DIR/conmgr.conf for conmgr on CM_PORT with the heartbeat
# secret file SECRET and one instance on 127.0.0.1 per PG_PORT:WD_PORT (its
# server and its watchdog port); then the lines of the standard input
# (further settings).  Only the owner may write the file (conmgr refuses a
# conmgr.conf others may write).
conmgr_conf() {
	local dir=$1 cm_port=$2 secret=$3 i=0 ports
	shift 3
	mkdir -m 700 "$dir"
	{
		echo "port = $cm_port"
		for ports in "$@"; do
			echo "backend_host$i = '127.0.0.1'"
			echo "backend_port$i = ${ports%:*}"
			echo "watchdog_port$i = ${ports#*:}"
			i=$((i + 1))
		done
		echo "secret_file = '$secret'"
		cat
	} | (umask 077 && cat > "$dir/conmgr.conf")
}
