#!/usr/bin/env bash
# Makes sure the real services the test suite needs are up: PostgreSQL 15 with pgvector, and Redis.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

pg_major() { ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1; }

ensure_postgres_running() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return; fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(pg_major)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return; sleep 1; done
  log "PostgreSQL did not become ready"; exit 1
}

ensure_pgvector() {
  local major; major=$(pg_major)
  if [ -f "/usr/share/postgresql/${major}/extension/vector.control" ]; then
    log "pgvector already installed for PostgreSQL ${major}"; return
  fi
  # Debian 12 ships no pgvector for PostgreSQL 15: build it from Debian's own source package (trixie).
  log "building pgvector from Debian's source package for PostgreSQL ${major}"
  if [ ! -f /etc/apt/sources.list.d/trixie-src.sources ]; then
    cat > /etc/apt/sources.list.d/trixie-src.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "postgresql-server-dev-${major}" dpkg-dev >/dev/null
  local dir; dir=$(mktemp -d)
  (cd "$dir" && apt-get source -qq pgvector >/dev/null 2>&1 && cd pgvector-*/ && make -s PG_CONFIG="/usr/lib/postgresql/${major}/bin/pg_config" >/dev/null && make -s install PG_CONFIG="/usr/lib/postgresql/${major}/bin/pg_config" >/dev/null)
  rm -rf "$dir"
  log "pgvector installed"
}

ensure_redis_running() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 0.5; done
  log "Redis did not become ready"; exit 1
}

ensure_database() {
  # A dedicated database so tests never touch anything else on the server.
  local db=stategate_test
  if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='${db}'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc "create database ${db}"
  fi
  psql -h 127.0.0.1 -U postgres -d "${db}" -qc "create extension if not exists vector"
}

ensure_postgres_running
ensure_pgvector
ensure_database
ensure_redis_running
log "PostgreSQL and Redis are ready"
