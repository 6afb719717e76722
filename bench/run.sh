#!/usr/bin/env bash
# run.sh: the QA-bump benchmark of NOTES.md, git CLI against promotebot.
#
# Builds the bench config repos (500 apps; 1,000 and 20,000 commits) under
# bench/out/ unless present, then for each size, each on its own fresh copy of
# the bare repo: the git CLI kept-clone baseline (bench/cli-bump.sh), the Go
# benchmark BenchmarkQABump (./gitops/), and the concurrent burst
# (bench/burst). Prints a summary table; raw outputs go to bench/out/results-*/.
#
# Tunables (environment): APPS (500), SIZES ("1000 20000"), N (30 runs),
# BURST_N (200), CLI_TIMEOUT (120 s), GO_TIMEOUT (120 s), BURST_TIMEOUT (60 s).
# Every step is bounded by its timeout; a step that runs out is reported as
# "timeout" and the run goes on.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

APPS=${APPS:-500}
SIZES=${SIZES:-"1000 20000"}
N=${N:-30}
BURST_N=${BURST_N:-200}
CLI_TIMEOUT=${CLI_TIMEOUT:-120}
GO_TIMEOUT=${GO_TIMEOUT:-120}
BURST_TIMEOUT=${BURST_TIMEOUT:-60}

out=bench/out
results=$out/results-$(date +%Y%m%dT%H%M%S)
mkdir -p "$results"
work=$(mktemp -d "${TMPDIR:-/tmp}/promotebot-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# bounded SECONDS CMD... runs CMD, killing its process group after SECONDS;
# it prints "timeout" or "failed" instead of failing the script.
bounded() {
	local secs=$1 rc=0
	shift
	timeout -k 10 "$secs" "$@" || rc=$?
	case $rc in
	0) ;;
	124 | 137) echo "timeout" ;;
	*) echo "failed(rc=$rc)" ;;
	esac
}

# field KEY FILE prints the value of the last KEY=value in FILE.
field() { grep -o "$1=[^ ]*" "$2" 2>/dev/null | tail -n 1 | cut -d= -f2- || true; }

# status FILE prints "timeout"/"failed(…)" when the step ended that way.
status() { grep -Eo '^(timeout|failed\(rc=[0-9]+\))$' "$1" | tail -n 1 || true; }

has_qa_bench=false
if grep -qs 'func BenchmarkQABump' gitops/*_test.go; then has_qa_bench=true; fi
has_burst=false
if [[ -f bench/burst/main.go ]]; then has_burst=true; fi

log "machine: $(nproc) cores, $(git --version), $(go version | cut -d' ' -f3)"
log "compiling (not timed)"
go build -o "$work/mkrepo" ./bench/mkrepo
if $has_burst && ! go build -o "$work/burst" ./bench/burst; then
	log "bench/burst does not build: skipped"
	has_burst=false
fi
if $has_qa_bench && ! go test -count=1 -run '^$' ./gitops/ >/dev/null; then
	log "./gitops/ tests do not build: BenchmarkQABump skipped"
	has_qa_bench=false
fi

gnutime=()
if /usr/bin/time -f %M true >/dev/null 2>&1; then gnutime=(/usr/bin/time -f %M); fi

declare -A row
for size in $SIZES; do
	dir=$out/${APPS}x$size
	if [[ ! -d $dir/config.git ]]; then
		log "building $APPS apps × $size commits in $dir"
		"$work/mkrepo" -apps "$APPS" -commits "$size" -out "$dir" >/dev/null
	fi
	bare=$dir/config.git

	log "$size: git CLI kept clone, $N bumps"
	cp -a "$bare" "$work/cli-$size.git"
	bounded "$CLI_TIMEOUT" bench/cli-bump.sh "$work/cli-$size.git" "$N" "$results/cli-$size.ms" \
		>"$results/cli-$size.txt" 2>&1
	cli=$(status "$results/cli-$size.txt")
	[[ -n $cli ]] || cli="$(field median_ms "$results/cli-$size.txt") / $(field p90_ms "$results/cli-$size.txt")"

	gobench="n/a" gorss="n/a"
	if $has_qa_bench; then
		log "$size: BenchmarkQABump, ${N}x"
		cp -a "$bare" "$work/go-$size.git"
		exec_flag=()
		if ((${#gnutime[@]})); then exec_flag=(-exec "${gnutime[*]} -o $PWD/$results/go-$size.rss"); fi
		bounded "$GO_TIMEOUT" env PROMOTEBOT_BENCH_REMOTE="$work/go-$size.git" \
			go test "${exec_flag[@]}" -run '^$' -bench 'BenchmarkQABump' -benchtime "${N}x" -count 1 \
			-timeout "${GO_TIMEOUT}s" ./gitops/ >"$results/go-$size.txt" 2>&1
		gobench=$(status "$results/go-$size.txt")
		if [[ -z $gobench ]]; then
			gobench=$(awk '/^BenchmarkQABump/ { for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") printf "%.1f", $i / 1e6 }' \
				"$results/go-$size.txt" | tail -n 1)
		fi
		if [[ -s $results/go-$size.rss ]]; then
			gorss=$(awk '{ v = $1 } END { printf "%.0f", v / 1024 }' "$results/go-$size.rss")
		fi
	fi

	burst="n/a"
	if $has_burst; then
		log "$size: burst of $BURST_N"
		cp -a "$bare" "$work/burst-$size.git"
		# The bot keeps its clone: make it first, then measure a warm start.
		bounded "$BURST_TIMEOUT" "$work/burst" -remote "$work/burst-$size.git" -dir "$work/burst-clone-$size" -clone-only \
			>"$results/burst-$size.clone.txt" 2>&1
		bounded "$BURST_TIMEOUT" "$work/burst" -remote "$work/burst-$size.git" -dir "$work/burst-clone-$size" \
			-n "$BURST_N" -apps "$APPS" >"$results/burst-$size.txt" 2>&1
		burst=$(status "$results/burst-$size.txt")
		if [[ -z $burst ]]; then
			burst="$(field total_ms "$results/burst-$size.txt") ms, $(field commits "$results/burst-$size.txt") commits, $(field peak_rss_mib "$results/burst-$size.txt") MiB"
		fi
	fi
	row[$size]=$(printf '%-8s | %-20s | %-12s | %-12s | %s' "$size" "$cli" "${gobench:-?}" "$gorss" "$burst")
done

{
	echo
	echo "QA image bump, $APPS apps, $N runs each ($(nproc) cores, $(git --version))"
	printf '%-8s | %-20s | %-12s | %-12s | %s\n' commits "cli p50 / p90 ms" "go ms/op" "go rss MiB" "burst ($BURST_N at once)"
	for size in $SIZES; do echo "${row[$size]}"; done
	echo "raw outputs: $results"
} | tee "$results/summary.txt"
