# Shared by scripts/test.sh, scripts/demo.sh and bench/: privilege handling,
# the unprivileged user that runs PostgreSQL (which refuses to run as root),
# and a free TCP port for throw-away clusters.

CM_USER=${CM_USER:-cmtest}

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
