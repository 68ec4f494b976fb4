#!/usr/bin/env bash
# Run Connection Manager on a throw-away local cluster and show a failure
# being noticed.
#
# Installs what is missing, builds, installs, then (as an unprivileged
# user) creates a primary and a streaming standby with the watchdog loaded,
# starts conmgr for them, connects a sample application through conmgr,
# stops the primary with -m immediate and shows the application being told.
# Everything is created under a temporary directory and removed at the end.
set -euo pipefail

. "$(dirname "$0")/common.sh"
cd "$top"

prepare_tree "== building and installing"

work=$(user_workdir /tmp/cm-demo.XXXXXX)
cp test/programs/cm_app "$work/"
status=0
as_user bash "$top/scripts/demo-run.sh" "$work" || status=$?
as_root rm -rf "$work"
exit $status
