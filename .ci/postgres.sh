#!/usr/bin/env bash
# Installs (if needed) and starts a throwaway PostgreSQL server on a free loopback port for the store
# tests, and prints the URL to use as ROSTERGATE_TEST_POSTGRES. Source-free: call it and read stdout.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian package postgresql)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# A free loopback port, so a second server (another checkout, a rerun) never collides.
port=${ROSTERGATE_PG_PORT:-$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")}
# ROSTERGATE_PG_DATA: the (empty) data folder to use, so the caller can stop the server afterwards.
data=${ROSTERGATE_PG_DATA:-$(mktemp -d /tmp/rostergate-pg-XXXXXX)}
run() { if [ "$(id -u)" = 0 ]; then (cd / && su postgres -s /bin/sh -c "$*"); else sh -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$data"
run "$bin/initdb -D $data -A trust -U postgres --no-sync" >&2
run "$bin/pg_ctl -D $data -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -l $data/server.log -w start" >&2
echo "postgres://postgres@127.0.0.1:$port/postgres"
