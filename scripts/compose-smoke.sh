#!/usr/bin/env bash
# Compose smoke test: builds the real Dockerfile, starts compose.yaml (PostgreSQL, gateway, worker)
# with a throwaway .env and master key, and checks the deployment end to end — health and readiness,
# the image's user and its compiled entry point, two tenants added at run time and synced by the
# worker's schedule, a vendor key reading each tenant and only that one, /metrics. Prints a PASS or
# FAIL line per check, removes what it started (`down -v`, the temp folder) and exits non-zero on
# any failure. docs/deployment.md#compose-smoke-test says what it shows and what it does not.
#
#   scripts/compose-smoke.sh            # from anywhere; needs docker, Compose (v2 plugin or v1), curl, jq
#
# Stand-ins: where the base images (node:20-bookworm-slim, postgres:16-bookworm) cannot be pulled —
# no registry reachable — it builds local STAND-INS from Debian packages instead, tagged
# rostergate-standin/…, never under the official names: a debootstrap'd bookworm (minbase; needs
# root and debootstrap), a Node stand-in from it plus this machine's Node 20 (binary, headers, npm),
# and a PostgreSQL stand-in from Debian's postgresql package (15 in bookworm) with an entrypoint
# honouring what compose.yaml uses of the official one (scripts/compose-smoke/). They are kept and
# reused (a tag that exists is not rebuilt). SMOKE_STANDINS=always uses them without trying to pull.
#
# Variables: SMOKE_PORT (host port for the gateway, default a free one), SMOKE_PROJECT (Compose
# project, default rostergate-smoke: never the deployment's own, so `down -v` cannot touch its
# data), SMOKE_SYNC_TIMEOUT (seconds to wait for the scheduled syncs, default 240),
# SMOKE_STANDINS (auto | always | never), SMOKE_CA_BUNDLE (CA certificates the Node stand-in trusts besides
# its own; default $NODE_EXTRA_CA_CERTS, else /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/compose-smoke"
PROJECT="${SMOKE_PROJECT:-rostergate-smoke}"
STANDINS="${SMOKE_STANDINS:-auto}"
SYNC_TIMEOUT="${SMOKE_SYNC_TIMEOUT:-240}"
APP_IMAGE=rostergate:smoke
STANDIN_BASE=rostergate-standin/debian:bookworm-minbase
STANDIN_NODE=rostergate-standin/node:20-bookworm-slim
STANDIN_POSTGRES=rostergate-standin/postgres:15-bookworm
# The official names, as the files themselves give them.
NODE_OFFICIAL="$(sed -n 's/^ARG NODE_IMAGE=//p' "$ROOT/Dockerfile")"
POSTGRES_OFFICIAL="$(awk '/^  postgres:/{p=1} p && /image:/{print $2; exit}' "$ROOT/compose.yaml")"

started_at=$(date +%s)
failures=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
note() { echo "----  $*"; }
die() { fail "$*"; finish; }

# ---------------------------------------------------------------------------------------------
# Compose: the v2 plugin if there is one, else v1 (docker-compose, e.g. Debian bookworm's 1.29).
if docker compose version >/dev/null 2>&1; then
  COMPOSE_BIN=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE_BIN=(docker-compose)
else
  echo "FAIL  no Compose: install the docker compose plugin (v2) or docker-compose" >&2
  exit 1
fi
for tool in docker curl jq; do
  command -v "$tool" >/dev/null || { echo "FAIL  $tool is needed" >&2; exit 1; }
done

SMOKE_DIR=""
compose_up=0
compose() {
  "${COMPOSE_BIN[@]}" -p "$PROJECT" --env-file "$SMOKE_DIR/.env" \
    -f "$ROOT/compose.yaml" -f "$ROOT/compose.smoke.yaml" "$@"
}
finish() {
  trap - EXIT
  if [ "$compose_up" = 1 ]; then
    if [ "$failures" -gt 0 ]; then
      note "last log lines of each service (for the failure above)"
      compose logs --no-color --tail=15 2>&1 | sed 's/^/      /' || true
    fi
    compose down -v --remove-orphans >/dev/null 2>&1 && note "compose down -v: containers, network and volumes removed" \
      || fail "compose down -v"
  fi
  [ -n "$SMOKE_DIR" ] && rm -rf "$SMOKE_DIR"
  note "wall time $(( $(date +%s) - started_at ))s, compose: ${COMPOSE_BIN[*]}"
  if [ "$failures" -gt 0 ]; then echo "RESULT: FAIL ($failures check(s) failed)"; exit 1; fi
  echo "RESULT: PASS"
  exit 0
}
trap 'fail "interrupted or an unexpected error (line $LINENO)"; finish' EXIT

# ---------------------------------------------------------------------------------------------
# Base images: the official ones, or the stand-ins.
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build_standin_base() {
  have_image "$STANDIN_BASE" && return 0
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; return 1; }
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; return 1; }
  local dir; dir="$(mktemp -d)"
  note "debootstrap bookworm (minbase) for $STANDIN_BASE"
  if ! debootstrap --variant=minbase bookworm "$dir/rootfs" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1; then
    tail -20 "$dir/debootstrap.log" >&2; rm -rf "$dir"; return 1
  fi
  # As the official Debian images: updates and security next to the release; no package lists.
  cat >"$dir/rootfs/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -rf "$dir"/rootfs/var/lib/apt/lists/* "$dir"/rootfs/var/cache/apt/archives/*.deb
  tar -C "$dir/rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' \
    -m "STAND-IN: debootstrap bookworm minbase (scripts/compose-smoke.sh)" - "$STANDIN_BASE" >/dev/null
  local rc=$?
  rm -rf "$dir"
  return $rc
}

build_standin_node() {
  have_image "$STANDIN_NODE" && return 0
  build_standin_base || return 1
  local node_bin prefix npm_dir ctx
  node_bin="$(readlink -f "$(command -v node)")" || { echo "no node on this machine to copy" >&2; return 1; }
  case "$("$node_bin" --version)" in v20.*) ;; *) echo "this machine's node is not Node 20" >&2; return 1 ;; esac
  prefix="$(dirname "$(dirname "$node_bin")")"
  npm_dir="$(npm root -g)/npm"
  [ -f "$prefix/include/node/node_version.h" ] || { echo "no Node headers in $prefix/include/node" >&2; return 1; }
  ctx="$(mktemp -d)"
  mkdir -p "$ctx/bin" "$ctx/include" "$ctx/lib/node_modules"
  cp "$node_bin" "$ctx/bin/node"
  cp -r "$prefix/include/node" "$ctx/include/node"
  cp -r "$npm_dir" "$ctx/lib/node_modules/npm"
  # This machine's CA certificates: where a TLS-inspecting proxy stands between it and the npm
  # registry, node here trusts it through these, and the build's npm ci must as well.
  local ca="${SMOKE_CA_BUNDLE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"
  if [ -f "$ca" ]; then cp "$ca" "$ctx/host-ca-certificates.crt"; else : >"$ctx/host-ca-certificates.crt"; fi
  note "building $STANDIN_NODE from $STANDIN_BASE and this machine's node $("$node_bin" --version)"
  docker build -q --force-rm --build-arg BASE_IMAGE="$STANDIN_BASE" -f "$HERE/node-standin.Dockerfile" -t "$STANDIN_NODE" "$ctx" >/dev/null
  local rc=$?
  rm -rf "$ctx"
  return $rc
}

build_standin_postgres() {
  have_image "$STANDIN_POSTGRES" && return 0
  build_standin_base || return 1
  note "building $STANDIN_POSTGRES from $STANDIN_BASE and Debian's postgresql-15"
  docker build -q --force-rm --build-arg BASE_IMAGE="$STANDIN_BASE" -f "$HERE/postgres-standin.Dockerfile" -t "$STANDIN_POSTGRES" "$HERE" >/dev/null
}

# pick OFFICIAL BUILDER: the official image if it is here or can be pulled, else the stand-in.
pick_image() {
  local official="$1" builder="$2" standin="$3"
  if [ "$STANDINS" != always ]; then
    if have_image "$official" || timeout 120 docker pull -q "$official" >/dev/null 2>&1; then
      echo "$official"; return 0
    fi
    [ "$STANDINS" = never ] && { echo "cannot pull $official (SMOKE_STANDINS=never)" >&2; return 1; }
  fi
  "$builder" >&2 || return 1
  echo "$standin"
}

NODE_IMAGE="$(pick_image "$NODE_OFFICIAL" build_standin_node "$STANDIN_NODE")" || die "base image for Node: neither $NODE_OFFICIAL nor a stand-in"
POSTGRES_IMAGE="$(pick_image "$POSTGRES_OFFICIAL" build_standin_postgres "$STANDIN_POSTGRES")" || die "PostgreSQL image: neither $POSTGRES_OFFICIAL nor a stand-in"
pass "base images: NODE_IMAGE=$NODE_IMAGE, postgres=$POSTGRES_IMAGE"
[ "$NODE_IMAGE" = "$NODE_OFFICIAL" ] || note "STAND-IN base images in use (no registry reachable): see scripts/compose-smoke/"

# ---------------------------------------------------------------------------------------------
# The real Dockerfile, the NODE_IMAGE argument pointing at whichever base was picked.
note "docker build (the real Dockerfile) as $APP_IMAGE"
build_log="$(mktemp)"
previous="$(docker image inspect -f '{{.Id}}' "$APP_IMAGE" 2>/dev/null || true)"
if docker build --force-rm --build-arg NODE_IMAGE="$NODE_IMAGE" -t "$APP_IMAGE" "$ROOT" >"$build_log" 2>&1; then
  pass "image builds ($(( $(date +%s) - started_at ))s so far)"
  rm -f "$build_log"
  # The previous smoke image, now untagged: ours to remove (unless something still uses it).
  [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$APP_IMAGE")" ] && docker rmi "$previous" >/dev/null 2>&1 || true
else
  tail -30 "$build_log" | sed 's/^/      /'; rm -f "$build_log"
  die "image builds"
fi
size=$(docker image inspect -f '{{.Size}}' "$APP_IMAGE")
note "image size: $(( size / 1000000 )) MB ($size bytes; the base alone: $(( $(docker image inspect -f '{{.Size}}' "$NODE_IMAGE") / 1000000 )) MB)"

[ "$(docker image inspect -f '{{.Config.User}}' "$APP_IMAGE")" = 1000:1000 ] \
  && pass "image USER is 1000:1000" || fail "image USER is 1000:1000 (found $(docker image inspect -f '{{.Config.User}}' "$APP_IMAGE"))"
entry="$(docker image inspect -f '{{json .Config.Entrypoint}}' "$APP_IMAGE")"
[ "$entry" = '["node","/app/dist/src/cli.js"]' ] && pass "entrypoint is node /app/dist/src/cli.js" || fail "entrypoint is node /app/dist/src/cli.js (found $entry)"
# No TypeScript at run time: no .ts source in the image (declarations aside), no compiler; the
# processes' command lines are checked once they run. tsx (the loader bin/rostergate.mjs uses from
# a source checkout) is a production dependency in package.json, so it is in node_modules, unused.
ts_found="$(docker run --rm --entrypoint sh "$APP_IMAGE" -c \
  'ls -d /app/src /app/node_modules/typescript 2>/dev/null; find /app/dist -name "*.ts" ! -name "*.d.ts" | head -3' || true)"
[ -z "$ts_found" ] && pass "no .ts sources and no TypeScript compiler in the image" || fail "no TypeScript in the image (found: $(echo "$ts_found" | tr '\n' ' '))"
note "in node_modules, unused at run time: $(docker run --rm --entrypoint sh "$APP_IMAGE" -c 'du -sch /app/node_modules/tsx /app/node_modules/esbuild /app/node_modules/@esbuild 2>/dev/null | tail -1 | cut -f1') of tsx and esbuild (package.json dependencies)"

# The SQLite store (the container section's single-machine setup; compose runs PostgreSQL): the
# native addon loads, as uid 1000, and takes a write.
sqlite="$(docker run --rm --entrypoint node "$APP_IMAGE" -e "const D=require('better-sqlite3'); const d=new D(':memory:'); d.exec('create table t(x)'); d.prepare('insert into t values (?)').run(1); console.log(d.prepare('select count(*) n from t').get().n)" 2>&1 || true)"
[ "$sqlite" = 1 ] && pass "better-sqlite3 loads in the image and writes" || fail "better-sqlite3 loads in the image: $sqlite"

# ---------------------------------------------------------------------------------------------
# A throwaway deployment: .env, master key and drops in a temp folder, never in the repository.
SMOKE_DIR="$(mktemp -d)"
chmod 755 "$SMOKE_DIR"
port="${SMOKE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 4000)}"
metrics_token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >"$SMOKE_DIR/.env" <<EOF
POSTGRES_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ROSTERGATE_METRICS_TOKEN=$metrics_token
ROSTERGATE_PUBLISHED_PORT=$port
SMOKE_IMAGE=$APP_IMAGE
SMOKE_POSTGRES_IMAGE=$POSTGRES_IMAGE
SMOKE_MASTER_KEY=$SMOKE_DIR/master.key
SMOKE_DROPS=$SMOKE_DIR/drops
EOF
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SMOKE_DIR/master.key"
# Read by uid 1000 in the containers, written by nobody but its owner (docs/deployment.md#secrets).
chmod 644 "$SMOKE_DIR/master.key"

# Two tenants' OneRoster CSV drops, synthetic, different in size so a read of the wrong one shows,
# written by the image itself with the demo generator (no Node needed on this machine).
mkdir -p "$SMOKE_DIR/drops"
counts="$(docker run --rm --user 0:0 -v "$SMOKE_DIR/drops:/out" --entrypoint node "$APP_IMAGE" --input-type=module -e "
  const { RosterDataset } = await import('/app/dist/src/demo/dataset.js');
  const { writeOneRosterDrop } = await import('/app/dist/connectors/oneroster-csv/index.js');
  const counts = {};
  for (const [t, seed, students, classes] of [['a', 101, 12, 2], ['b', 202, 17, 3]]) {
    const d = RosterDataset.generate({ seed, students, teachers: 2, classes, schools: 1 });
    writeOneRosterDrop(d, '/out/' + t);
    counts[t] = d.list('person').filter((r) => r.data.roles.includes('student')).length;
  }
  console.log(JSON.stringify(counts));
" 2>&1)" && chmod -R a+rX "$SMOKE_DIR/drops" || die "two synthetic OneRoster CSV drops written by the image: $counts"
want_a=$(jq -r .a <<<"$counts"); want_b=$(jq -r .b <<<"$counts")
pass "two synthetic OneRoster CSV drops written by the image ($want_a and $want_b students)"
for t in a b; do
  cat >"$SMOKE_DIR/drops/$t.yaml" <<EOF
- id: smoke-$t-drop
  type: oneroster-csv
  path: /srv/smoke-drops/$t
  schedule: { every: 1m }
EOF
done
chmod a+r "$SMOKE_DIR"/drops/*.yaml

# ---------------------------------------------------------------------------------------------
note "compose up (project $PROJECT, gateway on 127.0.0.1:$port)"
compose_up=1
if compose up -d --no-build >"$SMOKE_DIR/up.log" 2>&1; then
  pass "compose up -d: postgres, gateway, worker started"
else
  sed 's/^/      /' "$SMOKE_DIR/up.log"
  die "compose up -d"
fi
cid() { compose ps -q "$1"; }
exec_in() { local svc="$1"; shift; compose exec -T "$svc" "$@"; }
cli() { exec_in gateway node /app/dist/src/cli.js "$@" --config /etc/rostergate/rostergate.yaml; }

health=""
for _ in $(seq 1 60); do
  health="$(docker inspect -f '{{.State.Health.Status}}' "$(cid gateway)" 2>/dev/null || true)"
  [ "$health" = healthy ] && break
  sleep 2
done
[ "$health" = healthy ] && pass "gateway healthy (the image's HEALTHCHECK)" || die "gateway healthy (the image's HEALTHCHECK; status: $health)"

http_status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
base="http://127.0.0.1:$port"
[ "$(http_status "$base/healthz")" = 200 ] && pass "GET /healthz 200 on the published port" || fail "GET /healthz 200 (got $(http_status "$base/healthz"))"
[ "$(http_status "$base/readyz")" = 200 ] && pass "GET /readyz 200 (the store answers and takes writes)" || fail "GET /readyz 200 (got $(http_status "$base/readyz"))"

for svc in gateway worker; do
  uid="$(exec_in "$svc" id -u | tr -d '\r')"
  [ "$uid" = 1000 ] && pass "$svc runs as uid 1000" || fail "$svc runs as uid 1000 (found $uid)"
  cmdline="$(exec_in "$svc" cat /proc/1/cmdline | tr '\0' ' ')"
  opts="$(exec_in "$svc" sh -c 'printf %s "${NODE_OPTIONS:-}"')"
  if [[ "$cmdline" == "node /app/dist/src/cli.js "* ]] && ! [[ "$cmdline $opts" =~ (--import|--loader|--require|tsx|ts-node) ]]; then
    pass "$svc process: ${cmdline% }"
  else
    fail "$svc process is plain node on dist/ (found: $cmdline, NODE_OPTIONS: $opts)"
  fi
done
sleep 3
[ "$(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$(cid worker)")" = "true 0" ] \
  && pass "worker running, not restarting" || fail "worker running, not restarting ($(docker inspect -f '{{.State.Status}} restarts={{.RestartCount}}' "$(cid worker)"))"

# ---------------------------------------------------------------------------------------------
# Two tenants at run time, synced by the worker's schedule (nothing runs `sync` here).
for t in a b; do
  if out="$(cli tenants add "smoke-$t" --name "Smoke district ${t^^}" --sources "/srv/smoke-drops/$t.yaml" 2>&1)"; then
    pass "tenants add smoke-$t (exec in the gateway)"
  else
    fail "tenants add smoke-$t: $out"
  fi
done
listed="$(cli tenants list 2>&1 || true)"
grep -q smoke-a <<<"$listed" && grep -q smoke-b <<<"$listed" && pass "tenants list shows both" || fail "tenants list shows both: $listed"

key="$(cli keys create --client vendor-lms 2>/dev/null | tail -1 | tr -d '\r')"
[ -n "$key" ] && pass "keys create --client vendor-lms (tenants [\"*\"])" || die "keys create --client vendor-lms"

# gql TENANT QUERY → the response body; HTTP status in $gql_status.
gql() {
  local tenant="$1" query="$2" hdr=()
  [ -n "$tenant" ] && hdr=(-H "x-rostergate-tenant: $tenant")
  local body; body="$(jq -nc --arg q "$query" '{query: $q}')"
  curl -s -w '\n%{http_code}' -H 'content-type: application/json' -H "authorization: Bearer $key" "${hdr[@]}" \
    --data "$body" "$base/graphql"
}
students_query='{ people(role: STUDENT, first: 1000) { totalCount edges { node { id tenant } } } }'
count_of() { # tenant → number of students it answers with (or -1)
  local r; r="$(gql "$1" "$students_query")"
  sed '$d' <<<"$r" | jq -r '(.data.people.edges // null) | if . == null then -1 else length end' 2>/dev/null || echo -1
}

note "waiting up to ${SYNC_TIMEOUT}s for the worker's scheduled syncs (tick every worker.tickSeconds)"
got_a=0; got_b=0; deadline=$(( $(date +%s) + SYNC_TIMEOUT ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  got_a=$(count_of smoke-a); got_b=$(count_of smoke-b)
  [ "$got_a" = "$want_a" ] && [ "$got_b" = "$want_b" ] && break
  sleep 5
done
[ "$got_a" = "$want_a" ] && pass "worker synced smoke-a on schedule: $got_a students, as in its drop" || fail "worker synced smoke-a: $got_a students, want $want_a"
[ "$got_b" = "$want_b" ] && pass "worker synced smoke-b on schedule: $got_b students, as in its drop" || fail "worker synced smoke-b: $got_b students, want $want_b"

# Isolation through GraphQL: each tenant's answer holds its own records only, and every record
# says so; ids differ; an unknown tenant and a missing header are refused.
ra="$(gql smoke-a "$students_query" | sed '$d')"; rb="$(gql smoke-b "$students_query" | sed '$d')"
# jq … || true: a malformed answer is a FAIL line below, not the end of the script.
tenants_in() { jq -r '[.data.people.edges[].node.tenant] | unique | join(",")' <<<"$1" 2>/dev/null || true; }
total_in() { jq -r '.data.people.totalCount' <<<"$1" 2>/dev/null || true; }
if [ "$(tenants_in "$ra")" = smoke-a ] && [ "$(tenants_in "$rb")" = smoke-b ] \
  && [ "$(total_in "$ra")" = "$want_a" ] && [ "$(total_in "$rb")" = "$want_b" ]; then
  pass "x-rostergate-tenant smoke-a sees only smoke-a's records (tenant field, totalCount), smoke-b only smoke-b's"
else
  fail "tenant isolation: records of another tenant in an answer"
fi
shared_ids="$(jq -n --argjson a "$ra" --argjson b "$rb" '[$a.data.people.edges[].node.id] as $x | [$b.data.people.edges[].node.id] as $y | ($x - ($x - $y)) | length' 2>/dev/null || echo '?')"
[ "$shared_ids" = 0 ] && pass "no record id appears in both tenants' answers" || fail "$shared_ids ids in both tenants' answers"
# A record id of tenant A asked for under tenant B: not found there.
a_id="$(jq -r '.data.people.edges[0].node.id' <<<"$ra" 2>/dev/null || true)"
r="$(gql smoke-b "{ node(id: \"$a_id\") { id } }" | sed '$d')"
[ -n "$a_id" ] && [ "$a_id" != null ] && [ "$(jq -c '.data.node' <<<"$r" 2>/dev/null)" = null ] \
  && pass "smoke-a's record id under x-rostergate-tenant smoke-b: null" || fail "smoke-a's record id ($a_id) under smoke-b: $r"
r="$(gql smoke-nope "$students_query")"
[ "$(tail -1 <<<"$r")" = 403 ] && [ "$(sed '$d' <<<"$r" | jq -r '.errors[0].extensions.code' 2>/dev/null)" = TENANT_REFUSED ] \
  && pass "an unknown tenant: 403 TENANT_REFUSED" || fail "an unknown tenant: 403 TENANT_REFUSED (got $(tail -1 <<<"$r"))"
r="$(gql "" "$students_query")"
[ "$(tail -1 <<<"$r")" = 400 ] && [ "$(sed '$d' <<<"$r" | jq -r '.errors[0].extensions.code' 2>/dev/null)" = TENANT_REQUIRED ] \
  && pass "no x-rostergate-tenant from a client of every tenant: 400 TENANT_REQUIRED" || fail "no tenant header: 400 TENANT_REQUIRED (got $(tail -1 <<<"$r"))"

# ---------------------------------------------------------------------------------------------
# /metrics: on the API port with the token (and only with it); the worker's own listener.
[ "$(http_status "$base/metrics")" = 401 ] && pass "/metrics without the token: 401" || fail "/metrics without the token: 401 (got $(http_status "$base/metrics"))"
metrics="$(curl -s -H "authorization: Bearer $metrics_token" "$base/metrics")"
grep -q '^rostergate_requests_total{' <<<"$metrics" && pass "/metrics with the token: rostergate_requests_total counts the GraphQL requests" \
  || fail "/metrics with the token answers with rostergate_ metrics"
wm="$(exec_in worker node -e "fetch('http://127.0.0.1:9464/metrics',{headers:{authorization:'Bearer '+process.env.ROSTERGATE_METRICS_TOKEN}}).then(r=>r.text()).then(t=>console.log(t),e=>console.log(String(e)))" 2>&1)"
grep -q '^rostergate_sync_runs_total{' <<<"$wm" && pass "worker /metrics (port 9464): rostergate_sync_runs_total" \
  || fail "worker /metrics (port 9464) answers with its sync runs"

finish
