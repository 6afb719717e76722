#!/usr/bin/env bash
# killloop.sh is the long version of the crash tests: it runs TestKillLoop
# (a server process killed with SIGKILL at random moments and just after
# pushes, while builds go through QA, approvals, rejections, deploys and
# closes) RUNS times with more builds and kills than CI, and, when
# PROMOTEBOT_TEST_POSTGRES is set, TestReplicaKilledMidRun (two replicas
# on one PostgreSQL, one killed for good) as often; with them the recovery
# tests (a process killed mid-promotion: TestEmbeddedStoreResumesAtOnce,
# TestReplicaKilledMidPromotionIsTakenOver), whose recovery times it
# reports as a distribution (min, median, max).
#
# Usage, from anywhere in the repository:
#   hack/killloop.sh                         10 runs of 100 builds, 50 kills (CI's size)
#   RUNS=3 BUILDS=200 KILLS=100 hack/killloop.sh
#   RACE= hack/killloop.sh                   without the race detector
#
# Denser runs than CI's kill the server faster than it can finish a job
# for tens of seconds (each build then waits that long). A Slack message
# posted again needs a kill between the two posts (the first answer was lost
# with the process); one posted three times needs two, and the summary
# line counts those.

#
# Each run's output and the servers' logs go to $OUT/run-N/ (default
# bench/out/killloop-<time>/); a failing run's are kept, a passing run's
# removed. Prints one line per run and a summary; exits 1 if any run failed.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
RUNS=${RUNS:-10}
BUILDS=${BUILDS:-100}
KILLS=${KILLS:-50}
RACE=${RACE--race}
root=$PWD
OUT=${OUT:-bench/out/killloop-$(date +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

tests='^(TestKillLoop|TestEmbeddedStoreResumesAtOnce)$'
if [[ -n "${PROMOTEBOT_TEST_POSTGRES:-}" ]]; then
	tests='^(TestKillLoop|TestReplicaKilledMidRun|TestEmbeddedStoreResumesAtOnce|TestReplicaKilledMidPromotionIsTakenOver)$'
else
	echo "PROMOTEBOT_TEST_POSTGRES is not set: the replica test is left out" >&2
fi

bin="$OUT/promotebot.test"
# shellcheck disable=SC2086 # RACE is one flag or empty
go test $RACE -c -o "$bin" ./cmd/promotebot

failed=0
for run in $(seq 1 "$RUNS"); do
	dir="$OUT/run-$run"
	mkdir -p "$dir"
	start=$(date +%s)
	rc=0
	# The tests find their fixtures relative to their package, as go test runs them.
	(cd "$root/cmd/promotebot" && PROMOTEBOT_KILL_BUILDS=$BUILDS PROMOTEBOT_KILLS=$KILLS PROMOTEBOT_TEST_LOG_DIR="$dir" \
		"$bin" -test.run "$tests" -test.count=1 -test.v -test.timeout 30m) >"$dir/out.txt" 2>&1 || rc=$?
	took=$(($(date +%s) - start))
	summary=$(grep -E '(builds driven|posted again|killed with)' "$dir/out.txt" | sed 's/^ *[a-z_]*_test.go:[0-9]*: //' | paste -sd ';' - || true)
	# Recovery times: "promotion pushed 66ms after the restart", "… 3.07s after the kill".
	grep -oE 'promotion pushed [0-9.]+m?s after the restart' "$dir/out.txt" | grep -oE '[0-9.]+m?s' >>"$OUT/embedded.txt" || true
	grep -oE 'taken over and pushed [0-9.]+m?s after the kill' "$dir/out.txt" | grep -oE '[0-9.]+m?s' >>"$OUT/replica.txt" || true
	if [[ $rc -eq 0 ]]; then
		echo "run $run: ok in ${took}s: $summary"
		rm -rf "$dir"
	else
		failed=$((failed + 1))
		echo "run $run: FAILED in ${took}s (output and server logs in $dir)"
		grep -E '^\s+(killloop|replicas)_test.go' "$dir/out.txt" | head -5 || true
	fi
done
rm -f "$bin"
# distribution prints min, median and max of the durations in a file (ms or s).
distribution() {
	[[ -s "$1" ]] || return 0
	awk '{v=$1; if (v ~ /ms$/) {sub(/ms$/,"",v); v=v/1000} else {sub(/s$/,"",v)} print v}' "$1" | sort -n |
		awk -v what="$2" '{a[NR]=$1} END {printf "%s: %d runs, min %.2fs, median %.2fs, max %.2fs\n", what, NR, a[1], a[int((NR+1)/2)], a[NR]}'
}
distribution "$OUT/embedded.txt" "embedded store, kill -9 mid-promotion -> pushed after the restart"
distribution "$OUT/replica.txt" "PostgreSQL, replica killed mid-promotion -> taken over (grace 3s)"
echo "$((RUNS - failed)) of $RUNS runs passed ($BUILDS builds, $KILLS kills each)"
[[ $failed -eq 0 ]]
