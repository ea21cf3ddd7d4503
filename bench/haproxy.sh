#!/usr/bin/env bash
# Debian's haproxy for the fault drills (bench/drills.py starts one of its own, on a free port,
# with a configuration of its own; the packaged service is not started).
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "the drills need Debian's haproxy: apt-get install haproxy" >&2
  exit 1
fi
echo "installing haproxy (fault drills)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# RUNLEVEL=1: invoke-rc.d does not start the packaged service (where systemd runs, stop it)
RUNLEVEL=1 apt-get install -y -qq haproxy >/dev/null
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
