#!/usr/bin/env bash
# Debian's pgbouncer for the PgBouncer tests (they start a pgbouncer of their own on a free port,
# in transaction pooling; the packaged service is not started).
set -euo pipefail
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "the PgBouncer tests need Debian's pgbouncer: apt-get install pgbouncer" >&2
  exit 1
fi
echo "installing pgbouncer (PgBouncer tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# RUNLEVEL=1: invoke-rc.d does not start the packaged service (where systemd runs, stop it)
RUNLEVEL=1 apt-get install -y -qq pgbouncer >/dev/null
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now pgbouncer >/dev/null 2>&1 || true
fi
