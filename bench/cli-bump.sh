#!/usr/bin/env bash
# cli-bump.sh REMOTE N [MS_FILE]
#
# The git CLI "kept clone" baseline: clone REMOTE once (not timed), then N
# times, each timed end to end: fetch, reset to origin/main, write a QA overlay
# image bump for app-007, add, commit, push to main. Prints one line:
#   cli median_ms=… p90_ms=… n=… runs=MS_FILE
# MS_FILE (default: a new temporary file) receives one duration in ms per run.
# With CLI_TIMED=push only the push is timed (the line starts with "push"):
# the floor of any QA bump, a bare push of one prepared commit to REMOTE.
# Each run pushes a commit to REMOTE: give it a fresh copy of the bench repo.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 || ! $2 =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 REMOTE N [MS_FILE]" >&2
	exit 2
fi
remote=$1
n=$2
ms_file=${3:-$(mktemp "${TMPDIR:-/tmp}/cli-bump.XXXXXX.ms")}
[[ $ms_file == /* ]] || ms_file=$PWD/$ms_file # the runs happen in a temp dir

# The same hermetic git environment as gitops/gittest: no inherited GIT_*
# variables, no system or user config, a fixed identity, no prompts.
while IFS='=' read -r name _; do
	[[ $name == GIT_* ]] && unset "$name"
done < <(env)
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 GIT_ASKPASS= LC_ALL=C
export GIT_AUTHOR_NAME="Gittest Author" GIT_AUTHOR_EMAIL=author@gittest.invalid
export GIT_COMMITTER_NAME="Gittest Committer" GIT_COMMITTER_EMAIL=committer@gittest.invalid
export GIT_CONFIG_COUNT=4
export GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main
export GIT_CONFIG_KEY_1=core.excludesFile GIT_CONFIG_VALUE_1=/dev/null
export GIT_CONFIG_KEY_2=core.attributesFile GIT_CONFIG_VALUE_2=/dev/null
# No auto-gc in the middle of a timed run.
export GIT_CONFIG_KEY_3=gc.auto GIT_CONFIG_VALUE_3=0

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-bump.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
git clone -q "$remote" "$tmp/work"
cd "$tmp/work"

app=app-007
overlay=apps/$app/overlays/qa/branch-bench/kustomization.yaml
if [[ -e $overlay ]]; then
	echo "$0: $remote already has $overlay: use a fresh copy of the bench repo" >&2
	exit 1
fi

# write_overlay TAG writes the QA overlay promotebot would write for app-007.
write_overlay() {
	mkdir -p "$(dirname "$overlay")"
	cat >"$overlay" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $app-branch-bench
resources:
  - ../../../base
images:
  - name: registry.example.com/acme/$app
    newTag: "$1"
EOF
}

: >"$ms_file"
timed=${CLI_TIMED:-all}
[[ $timed == all || $timed == push ]] || {
	echo "$0: CLI_TIMED=$timed: want all or push" >&2
	exit 2
}
for ((i = 1; i <= n; i++)); do
	start=$(date +%s%N)
	git fetch -q origin main
	git reset -q --hard origin/main
	write_overlay "2.0.$i"
	git add -A
	git commit -q -m "Deploy $app 2.0.$i to qa/branch-bench"
	if [[ $timed == push ]]; then start=$(date +%s%N); fi
	git push -q origin HEAD:main
	end=$(date +%s%N)
	ns=$((end - start))
	printf '%d.%03d\n' $((ns / 1000000)) $((ns / 1000 % 1000)) >>"$ms_file"
done

# Nearest-rank percentiles: the ceil(p*n)-th smallest run.
sort -n "$ms_file" | awk -v file="$ms_file" -v label="$([[ $timed == push ]] && echo push || echo cli)" '
	function rank(p,   r) { r = p * NR; return (r == int(r)) ? r : int(r) + 1 }
	{ v[NR] = $1 }
	END { printf "%s median_ms=%s p90_ms=%s n=%d runs=%s\n", label, v[rank(0.5)], v[rank(0.9)], NR, file }'
