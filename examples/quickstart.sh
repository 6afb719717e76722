#!/usr/bin/env bash
# promotebot's main job on this machine, with nothing to configure: a local
# bare "remote" config repo seeded with the sample project, then the QA deploy
# of a branch into it, then the commit it made. It keeps them in a directory
# of its own, apart from `promotebot quickstart`'s (they would break each
# other's configuration and repository).
#
#   examples/quickstart.sh [feature/login] [registry.example.com/acme/hello:1.4.0]
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
target=${1:-feature/login}
image=${2:-registry.example.com/acme/hello:1.4.0}
work=${PROMOTEBOT_EXAMPLE_DIR:-/tmp/promotebot-example}
remote=$work/config.git
if [ ! -d "$remote" ]; then
  mkdir -p "$work"
  git init -q --bare -b main "$remote"
  seed=$(mktemp -d)
  git init -q -b main "$seed"
  cp -R testdata/configrepo/. "$seed/"
  git -C "$seed" add -A
  git -C "$seed" -c user.name=quickstart -c user.email=quickstart@localhost commit -q -m "Initial config"
  git -C "$seed" push -q "$remote" main
  rm -rf "$seed"
fi
cat > "$work/config.yaml" <<YAML
dataDir: $work/data
gitops:
  repo: $remote
projects:
- id: hello
  name: Hello Service
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
YAML
go run ./cmd/promotebot qa --config "$work/config.yaml" --project hello \
  --type branch --target "$target" --image "$image"
echo
git --git-dir "$remote" log -1 --format='%H%n%an <%ae>%n%n%B' main
git --git-dir "$remote" show --stat --format= main
