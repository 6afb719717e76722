#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target of the repository for a bounded time, one
# after the other, and stops at the first failing input.
#
# Usage, from anywhere in the repository:
#   hack/fuzz.sh                  each target for 10s (CI)
#   FUZZTIME=5m hack/fuzz.sh      longer; any -fuzztime value: 30s, 5m, 10000x
#   hack/fuzz.sh 'Image|Trailers' only the targets whose name matches (grep -E)
#
# A target is a `func FuzzXxx(f *testing.F)` in a _test.go file; each runs as
#   go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime "$FUZZTIME" ./<package>/
# Its seeds (f.Add and <package>/testdata/fuzz/FuzzXxx/*) run first, so a
# regression fails at once. Inputs that found new code paths are kept in
# $(go env GOCACHE)/fuzz, where the next run starts from them.
#
# When go test finds a failing input it writes it to
# <package>/testdata/fuzz/FuzzXxx/<hash>; the script prints that path and the
# command that replays it. Fix the bug and commit the file: from then on every
# plain `go test` replays it as a regression seed.
#
# Exit status: 0 when every target ran clean, 1 at the first failure, 2 when
# no target matched.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-10s}"
filter="${1:-.}"

# "<package dir> <target>" per line, sorted by package then name.
targets="$(grep -rn '^func Fuzz' --include='*_test.go' --exclude-dir=testdata --exclude-dir=vendor --exclude-dir=.git . |
	sed -E 's|^\./(.*):[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*$|\1 \2|' |
	while read -r file name; do echo "$(dirname "$file") $name"; done |
	awk -v f="$filter" '$2 ~ f' | sort)"
if [[ -z "$targets" ]]; then
	echo "fuzz.sh: no fuzz target matches '$filter'" >&2
	exit 2
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
summary=()
start_all=$(date +%s)
while read -r dir name; do
	echo "=== $name (./$dir/, $FUZZTIME)"
	start=$(date +%s)
	set +e
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir/" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	# Go's fuzzer can report "context deadline exceeded" when the time runs
	# out while a worker is busy with an input, with no failing input found
	# (nothing written to testdata/fuzz): that is the fuzzer's timing, not a
	# bug of ours, so the target runs once more.
	if [[ $status -ne 0 ]] && grep -q 'context deadline exceeded' "$log" &&
		! grep -qE 'testdata/fuzz/[^ ]+/[0-9a-f]+' "$log"; then
		echo "fuzz.sh: $name stopped with the fuzzer's 'context deadline exceeded' and no failing input; once more"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir/" 2>&1 | tee "$log"
		status=${PIPESTATUS[0]}
	fi
	set -e
	took=$(($(date +%s) - start))
	summary+=("$(printf '%-24s ./%-12s %4ds' "$name" "$dir/" "$took")")
	if [[ $status -ne 0 ]]; then
		echo
		crasher="$(grep -oE 'testdata/fuzz/[^ ]+/[0-9a-f]+' "$log" | tail -n 1 || true)"
		if [[ -n "$crasher" ]]; then
			echo "fuzz.sh: $name found a failing input, saved as $dir/$crasher"
			echo "  replay: go test -run '^$name/$(basename "$crasher")\$' ./$dir/"
			echo "  fix the bug, then commit $dir/$crasher: go test replays it from then on"
		else
			echo "fuzz.sh: $name failed before fuzzing (build error or a failing seed, see above)"
		fi
		exit 1
	fi
done <<<"$targets"

echo
echo "fuzz.sh: every target ran clean for $FUZZTIME each:"
printf '  %s\n' "${summary[@]}"
echo "  total $(($(date +%s) - start_all))s"
