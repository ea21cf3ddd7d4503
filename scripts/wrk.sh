#!/usr/bin/env bash
# wrk, the HTTP load generator the webhook benchmark drives (Debian's package).
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "the webhook benchmark needs wrk: apt-get install wrk" >&2
  exit 1
fi
echo "installing wrk (webhook benchmark)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq wrk >/dev/null
