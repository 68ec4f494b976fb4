#!/usr/bin/env bash
# Run libFuzzer targets for a bounded time each: run.sh SECONDS TARGET...
#
# Each target works on a copy of its seed corpus (corpus/TARGET/) in a
# temporary directory, so the tree is not modified; a dictionary
# TARGET.dict is used when present.  Any crash, sanitizer report, leak,
# timeout (-timeout=5 per input) or memory use above 1 GB fails the run:
# the input that caused it is kept as artifacts/TARGET-crash-... (or
# leak-, timeout-, oom-) and the end of the target's log is printed.
# Every target runs even when an earlier one failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
secs=${1:?usage: run.sh SECONDS TARGET...}
shift
case "$secs" in
	'' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, not \"$secs\"" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/cm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/artifacts"

failed=()
for t in "$@"; do
	prog="$here/fuzz_$t"
	[ -x "$prog" ] || { echo "run.sh: $prog is not built" >&2; exit 2; }
	mkdir -p "$work/corpus/$t" "$work/tmp"
	if [ -d "$here/corpus/$t" ]; then
		cp -R "$here/corpus/$t/." "$work/corpus/$t/"
	fi
	seeds=$(find "$work/corpus/$t" -type f | wc -l)
	opts=(-max_total_time="$secs" -timeout=5 -rss_limit_mb=1024
		-artifact_prefix="$here/artifacts/$t-" -print_final_stats=1)
	[ -f "$here/$t.dict" ] && opts+=(-dict="$here/$t.dict")

	status=0
	TMPDIR="$work/tmp" "$prog" "${opts[@]}" "$work/corpus/$t" >"$work/$t.log" 2>&1 || status=$?
	# with -fno-sanitize-recover every report is fatal; this is a safety net
	if [ $status -eq 0 ] && grep -q -E '^(==[0-9]+==ERROR|SUMMARY: )|runtime error:' "$work/$t.log"; then
		status=1
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n 1)
	corpus=$(find "$work/corpus/$t" -type f | wc -l)
	if [ $status -eq 0 ]; then
		echo "fuzz $t: ok, ${runs:-?} inputs in ${secs} s, corpus $seeds -> $corpus files"
	else
		echo "fuzz $t: FAILED (exit status $status) after ${runs:-?} inputs; end of its log:"
		tail -n 60 "$work/$t.log" | sed 's/^/    /'
		find "$here/artifacts" -name "$t-*" | sed 's/^/    kept: /'
		failed+=("$t")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
	exit 1
fi
