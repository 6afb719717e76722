#!/usr/bin/env bash
# Tell promotebot that CI built and pushed an image: POST /v1/builds.
#
#   post-build.sh PROJECT IMAGE TYPE TARGET
#
#   PROJECT  the project's id in promotebot's configuration (projects[].id)
#   IMAGE    the image pushed, repository:tag, repository@sha256:… or both;
#            the repository must be the project's image
#   TYPE     branch or tag
#   TARGET   the branch or tag name that was built (feature/login, v1.4.0)
#
# Environment:
#   PROMOTEBOT_URL             where promotebot listens, e.g. https://promotebot.example.com (required)
#   PROMOTEBOT_WEBHOOK_SECRET  the same value as the bot's PROMOTEBOT_WEBHOOK_SECRET (required)
#   PROMOTEBOT_AUTH            hmac (default): sign the body, X-Promotebot-Signature-256;
#                              bearer: send the secret itself, Authorization: Bearer
#   PROMOTEBOT_COMMIT          optional: the commit built (shown in Slack and commit trailers)
#   PROMOTEBOT_AUTHOR          optional: who pushed it (Slack id, e-mail or "Name <email>"),
#                              so that QA cannot approve their own build
#   PROMOTEBOT_BUILD_URL       optional: a link to the CI run
#
# Requires bash, curl and jq (the JSON body is built with jq, so branch names
# and URLs are escaped correctly); openssl for hmac. Prints promotebot's answer
# ({"id","environment","url","state"}) on success; exits non-zero with the
# bot's error otherwise. A repeat of the same build is safe: the bot answers
# 200 with the same id, which is why curl may retry transient failures.
set -euo pipefail

if [ "$#" -ne 4 ]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2
  exit 2
fi
project=$1 image=$2 type=$3 target=$4
: "${PROMOTEBOT_URL:?set PROMOTEBOT_URL to the base URL of promotebot}"
: "${PROMOTEBOT_WEBHOOK_SECRET:?set PROMOTEBOT_WEBHOOK_SECRET}"
auth=${PROMOTEBOT_AUTH:-hmac}
case $type in branch | tag) ;; *) echo "post-build.sh: TYPE must be branch or tag, not \"$type\"" >&2; exit 2 ;; esac
case $auth in hmac | bearer) ;; *) echo "post-build.sh: PROMOTEBOT_AUTH must be hmac or bearer, not \"$auth\"" >&2; exit 2 ;; esac
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "post-build.sh: $tool is required" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jq -cn \
  --arg project "$project" --arg image "$image" --arg type "$type" --arg target "$target" \
  --arg commit "${PROMOTEBOT_COMMIT:-}" --arg author "${PROMOTEBOT_AUTHOR:-}" \
  --arg buildURL "${PROMOTEBOT_BUILD_URL:-}" \
  '{$project, $image, $type, $target, $commit, $author, $buildURL}' >"$tmp/body.json"

# The header goes to curl through a file, so the secret is not in its
# command line.
if [ "$auth" = hmac ]; then
  command -v openssl >/dev/null || { echo "post-build.sh: openssl is required for hmac" >&2; exit 2; }
  # The signature covers the exact bytes sent (--data-binary @file). openssl
  # takes the key as an argument: on a shared machine, prefer bearer over
  # https or a CI runner of your own.
  sig=$(openssl dgst -sha256 -hmac "$PROMOTEBOT_WEBHOOK_SECRET" <"$tmp/body.json" | awk '{print $NF}')
  printf 'X-Promotebot-Signature-256: sha256=%s\n' "$sig" >"$tmp/headers"
else
  printf 'Authorization: Bearer %s\n' "$PROMOTEBOT_WEBHOOK_SECRET" >"$tmp/headers"
fi

status=$(curl -sS --retry 5 --retry-connrefused --max-time 30 \
  -o "$tmp/answer" -w '%{http_code}' \
  -H 'Content-Type: application/json' -H @"$tmp/headers" \
  --data-binary @"$tmp/body.json" \
  "${PROMOTEBOT_URL%/}/v1/builds")
case $status in
  2??) cat "$tmp/answer"; echo ;;
  *)
    echo "post-build.sh: promotebot answered $status: $(cat "$tmp/answer")" >&2
    exit 1
    ;;
esac
