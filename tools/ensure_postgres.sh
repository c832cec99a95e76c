#!/usr/bin/env bash
# Ensure a local PostgreSQL for the indexer tests and print its URL on stdout.
#   - installs Debian's `postgresql` when missing (needs root; apt-get update first);
#   - starts the Debian cluster (pg_ctlcluster) on 127.0.0.1, or else a private cluster
#     initdb'd under $PG_DIR (default /tmp/codexfield-pg), run as the `postgres` user;
#   - creates the role and database `codexfield` (password `codexfield`).
# Usage: export CODEXFIELD_TEST_PG_URL=$(tools/ensure_postgres.sh)
set -euo pipefail
PORT="${PG_PORT:-5432}"
PG_DIR="${PG_DIR:-/tmp/codexfield-pg}"
log() { echo "ensure_postgres: $*" >&2; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then log "PostgreSQL is not installed and this is not root: apt-get install postgresql"; exit 1; fi
  log "installing postgresql (apt-get)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
VER="$(basename "$(dirname "$BIN")")"

as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; }

if ! ready; then
  if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2" "$3}' | grep -q "^$VER main $PORT$"; then
    log "starting the Debian cluster $VER/main on port $PORT"
    pg_ctlcluster "$VER" main start >&2 || true
  fi
fi
if ! ready; then
  log "starting a private cluster in $PG_DIR on port $PORT"
  mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    as_pg "$BIN/initdb -D $PG_DIR -A trust -U postgres >/dev/null"
  fi
  as_pg "$BIN/pg_ctl -D $PG_DIR -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $PG_DIR/log -w start >/dev/null"
fi
for _ in $(seq 1 30); do ready && break; sleep 0.5; done
ready || { log "PostgreSQL did not come up on 127.0.0.1:$PORT"; exit 1; }

psql_pg() { as_pg "psql -h 127.0.0.1 -p $PORT -U postgres -tAc \"$1\"" 2>/dev/null || as_pg "psql -p $PORT -tAc \"$1\""; }
if [ "$(psql_pg "SELECT 1 FROM pg_roles WHERE rolname='codexfield'")" != 1 ]; then
  psql_pg "CREATE ROLE codexfield LOGIN PASSWORD 'codexfield'" >/dev/null
fi
if [ "$(psql_pg "SELECT 1 FROM pg_database WHERE datname='codexfield'")" != 1 ]; then
  psql_pg "CREATE DATABASE codexfield OWNER codexfield" >/dev/null
fi
# scripts/bench_indexer.py checkpoints after its bulk load (PostgreSQL 15+: the pg_checkpoint role).
psql_pg "GRANT pg_checkpoint TO codexfield" >/dev/null 2>&1 || true
echo "postgresql+psycopg://codexfield:codexfield@127.0.0.1:$PORT/codexfield"
