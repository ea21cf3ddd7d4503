#!/usr/bin/env bash
# Debian's redis-sentinel for the Sentinel failover tests (they start sentinels of their own on
# free ports; the packaged service, which would watch 127.0.0.1:6379, is not started).
set -euo pipefail
if command -v redis-sentinel >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "the Sentinel tests need Debian's redis-sentinel: apt-get install redis-sentinel" >&2
  exit 1
fi
echo "installing redis-sentinel (Sentinel failover tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# RUNLEVEL=1: invoke-rc.d does not start the packaged service (where systemd runs, stop it)
RUNLEVEL=1 apt-get install -y -qq redis-sentinel >/dev/null
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now redis-sentinel >/dev/null 2>&1 || true
fi
