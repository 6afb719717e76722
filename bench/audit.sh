#!/bin/sh
# bench/audit.sh R [PB] [RUNS]: the history read of `promotebot audit --format
# json` against `git log --first-parent --name-only` with trailers on the bare
# repository R (from bench/mkrepo), RUNS times each (default 3), under
# /usr/bin/time -v. Prints each run, then git's and the bot's median wall
# time and peak RSS side by side and their ratio. PB is the promotebot binary
# (default: built from this checkout into a temporary directory).
set -eu
R=${1:?usage: bench/audit.sh R [PB] [RUNS]}
PB=${2:-}
RUNS=${3:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$PB" ]; then
	PB=$tmp/pb
	(cd "$(dirname "$0")/.." && go build -o "$PB" ./cmd/promotebot)
fi
# measure NAME CMD...: one run; appends "seconds kib" to $tmp/NAME.
measure() {
	name=$1
	shift
	/usr/bin/time -v -o "$tmp/time" "$@" >/dev/null
	awk -v name="$name" '
		/Elapsed \(wall clock\)/ { n = split($NF, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
		/Maximum resident set size/ { kib = $NF }
		END { printf "%.2f %d\n", s, kib; printf "%s: %.2f s, %d MiB\n", name, s, kib / 1024 > "/dev/stderr" }
	' "$tmp/time" >>"$tmp/$name"
}
i=0
while [ "$i" -lt "$RUNS" ]; do
	measure git git -C "$R" log --first-parent --name-only --format='%H%n%(trailers)' main
	measure audit "$PB" audit --repo "$R" --format json
	i=$((i + 1))
done
# median FILE COLUMN
median() { cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
range() { cut -d' ' -f"$2" "$1" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'; }
gt=$(median "$tmp/git" 1)
at=$(median "$tmp/audit" 1)
printf '%s\t%s\n' "repository" "$R"
printf 'git log:  %s s (%s), %s MiB\n' "$gt" "$(range "$tmp/git" 1)" $(($(median "$tmp/git" 2) / 1024))
printf 'audit:    %s s (%s), %s MiB (%s KiB)\n' "$at" "$(range "$tmp/audit" 1)" $(($(median "$tmp/audit" 2) / 1024)) "$(range "$tmp/audit" 2)"
awk -v a="$at" -v g="$gt" 'BEGIN { printf "ratio:    %.2f×\n", a / g }'
