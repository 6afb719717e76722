#!/usr/bin/env bash
# push.sh SIZE: one row of "Over smart HTTP" (bench/README.md).
#
# For a config repo of APPS apps and SIZE commits (bench/out/APPSxSIZE,
# built with bench/mkrepo unless present; REPO=DIR/config.git uses another),
# serves fresh copies of it over smart HTTP (bench/serve: git-http-backend
# behind Basic auth) and, against that one server:
#   1. floor: `CLI_TIMED=push bench/cli-bump.sh URL/floor.git N`, a bare
#      `git push` of one prepared commit, N times;
#   2. bot: `bench/webhook -mode latency -remote URL/bot.git -single N
#      -burst BURST_N`: webhook POST -> QA commit pushed (qa-ready), N builds
#      one after another, then BURST_N new environments posted at once;
#   3. burst: `bench/burst -n BURST_N` against URL/burst.git from a warm
#      clone (the writer alone, no HTTP handler or store).
# and prints one line: floor and bot medians, their ratio, the burst times.
#
# Tunables (environment): APPS (500), N (15), BURST_N (200), BENCH_LOCK (a
# file: each timed step runs under `flock BENCH_LOCK`, so that timed runs on
# a shared machine never overlap), STEP_TIMEOUT (300 s).
set -euo pipefail

if [[ $# -ne 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 SIZE" >&2
	exit 2
fi
size=$1
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
APPS=${APPS:-500}
N=${N:-15}
BURST_N=${BURST_N:-200}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
REPO=${REPO:-bench/out/${APPS}x$size/config.git}

work=$(mktemp -d "${TMPDIR:-/tmp}/promotebot-push.XXXXXX")
serve_pid=
cleanup() {
	if [[ -n $serve_pid ]]; then kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# timed CMD... runs CMD under BENCH_LOCK (when set) and STEP_TIMEOUT.
timed() {
	if [[ -n ${BENCH_LOCK:-} ]]; then
		flock "$BENCH_LOCK" timeout -k 10 "$STEP_TIMEOUT" "$@"
	else
		timeout -k 10 "$STEP_TIMEOUT" "$@"
	fi
}
# field KEY TEXT prints the value of the last KEY=value in TEXT.
field() { grep -o "$1=[^ ]*" <<<"$2" | tail -n 1 | cut -d= -f2-; }

log "compiling (not timed)"
for cmd in mkrepo serve webhook burst; do go build -o "$work/$cmd" "./bench/$cmd"; done
if [[ ! -d $REPO ]]; then
	log "building $APPS apps × $size commits in $(dirname "$REPO")"
	"$work/mkrepo" -apps "$APPS" -commits "$size" -out "$(dirname "$REPO")" >/dev/null
fi
mkdir "$work/root"
for name in floor bot burst; do cp -a "$REPO" "$work/root/$name.git"; done
"$work/serve" -root "$work/root" >"$work/serve.out" &
serve_pid=$!
for _ in $(seq 100); do
	[[ -s $work/serve.out ]] && break
	sleep 0.1
done
url=$(field url "$(cat "$work/serve.out")")
[[ -n $url ]] || { echo "$0: bench/serve printed no URL" >&2; exit 1; }

log "$size: floor, $N pushes"
floor=$(CLI_TIMED=push timed bench/cli-bump.sh "$url/floor.git" "$N" "$work/floor.ms")
echo "$floor" >&2
log "$size: bot, $N builds one after another, then $BURST_N at once"
bot=$(timed "$work/webhook" -mode latency -remote "$url/bot.git" -apps "$APPS" -single "$N" -burst "$BURST_N" ${JOBS:+-jobs "$JOBS"})
echo "$bot" >&2
log "$size: bench/burst, $BURST_N at once (warm clone)"
"$work/burst" -remote "$url/burst.git" -dir "$work/burst-clone" -clone-only >/dev/null
burst=$(timed "$work/burst" -remote "$url/burst.git" -dir "$work/burst-clone" -apps "$APPS" -n "$BURST_N")
echo "$burst" >&2

floor_p50=$(field median_ms "$floor")
single=$(grep '^latency single' <<<"$bot")
bursty=$(grep "^latency burst" <<<"$bot")
bot_p50=$(field p50_ms "$single")
ratio=$(awk -v b="$bot_p50" -v f="$floor_p50" 'BEGIN { printf "%.2f", b / f }')
printf '%s\n' "commits | floor p50/p90 ms | bot p50/p99 ms | bot/floor | webhook burst $BURST_N: all pushed (max) ms, peak MiB | bench/burst $BURST_N ms, commits"
printf '%s | %.1f / %.1f | %s / %s | %s | %s, %s | %s, %s\n' "$size" \
	"$floor_p50" "$(field p90_ms "$floor")" "$bot_p50" "$(field p99_ms "$single")" "$ratio" \
	"$(field max_ms "$bursty")" "$(field peak_rss_mib "$bot")" \
	"$(field total_ms "$burst")" "$(field commits "$burst")"
