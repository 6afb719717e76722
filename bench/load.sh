#!/usr/bin/env bash
# load.sh is the long version of TestLoad (cmd/promotebot/load_test.go): a
# real `promotebot serve` process with the embedded store, a config repo of
# PROJECTS apps on a local bare remote and a recording Slack; BUILDS builds
# posted by 32 clients as fast as they are answered, then CLICKS concurrent
# QA approvals, then CLICKS/3 concurrent owner deploys. Each run prints
# throughput, latency percentiles and the server's peak RSS, and checks that
# git holds exactly one QA commit per build and one production commit per
# deploy.
#
# Usage, from anywhere in the repository:
#   bench/load.sh                               3 runs: 500 builds, 100 projects, 300 clicks
#   RUNS=1 BUILDS=2000 PROJECTS=200 CLICKS=600 bench/load.sh
#
# Built without the race detector (the figures are the product's, not the
# detector's); CI runs a small version with it. Reports go to
# bench/out/load-<time>/run-N.txt.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
RUNS=${RUNS:-3}
BUILDS=${BUILDS:-500}
PROJECTS=${PROJECTS:-100}
CLICKS=${CLICKS:-300}
root=$PWD
out=$root/bench/out/load-$(date +%Y%m%dT%H%M%S)
mkdir -p "$out"

echo "machine: $(nproc) cores, $(git --version), $(go version | cut -d' ' -f3)" >&2
bin=$out/promotebot.test
go test -c -o "$bin" ./cmd/promotebot

failed=0
for run in $(seq 1 "$RUNS"); do
	rc=0
	(cd "$root/cmd/promotebot" && PROMOTEBOT_LOAD_BUILDS=$BUILDS PROMOTEBOT_LOAD_PROJECTS=$PROJECTS \
		PROMOTEBOT_LOAD_CLICKS=$CLICKS PROMOTEBOT_LOAD_REPORT="$out/run-$run.txt" \
		"$bin" -test.run '^TestLoad$' -test.count=1 -test.v -test.timeout 20m) >"$out/run-$run.log" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]]; then
		failed=$((failed + 1))
		echo "run $run: FAILED (see $out/run-$run.log)"
		grep -E '^\s+load_test.go' "$out/run-$run.log" | head -5 || true
		continue
	fi
	echo "run $run:"
	sed 's/^/  /' "$out/run-$run.txt"
done
rm -f "$bin"
[[ $failed -eq 0 ]]
