#!/usr/bin/env bash
# Start PostgreSQL and Redis on localhost when they are installed but not running,
# then make sure the test database can be reached. Used by `make test` and .ci/run.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "starting redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  else
    echo "redis is not installed and not running on 127.0.0.1:6379" >&2; exit 1
  fi
fi

if ! pg_isready -h "$PGHOST" -p "$PGPORT" -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "starting postgresql"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  else
    echo "postgresql is not installed and not running on $PGHOST:$PGPORT" >&2; exit 1
  fi
fi

for _ in $(seq 1 30); do
  if pg_isready -h "$PGHOST" -p "$PGPORT" -q && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "postgresql or redis did not come up" >&2
exit 1
