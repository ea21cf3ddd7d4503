#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads its own).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "the browser tests need Debian's chromium: apt-get install chromium" >&2
  exit 1
fi
echo "installing chromium (browser tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
