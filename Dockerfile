# syntax=docker/dockerfile:1
#
# rostergate's container image (docs/deployment.md#container).
# - build: all dependencies (better-sqlite3 compiled from source if no prebuilt binary fits, hence
#   python3, make and g++), `npm run build` to JavaScript in dist/, then the dev dependencies pruned.
# - runtime: the slim Node 20 image with dist/, the production node_modules and package.json only;
#   plain `node`, no TypeScript loader; an unprivileged user (numeric, so Kubernetes'
#   runAsNonRoot can verify it); SQLite data in the /data volume.
# Port, host and store come from the environment (ROSTERGATE_PORT, ROSTERGATE_HOST,
# ROSTERGATE_STORE: docs/configuration.md#environment-variables); the config file is mounted at
# /etc/rostergate/rostergate.yaml. test/unit/deploy-files.test.ts checks this file against the CLI
# and the config (no Docker engine in CI: the image itself is not built there);
# scripts/compose-smoke.sh builds it and runs it under compose.yaml (docs/deployment.md#compose-smoke-test).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY schema/ schema/
COPY connectors/ connectors/
COPY src/ src/
# better-sqlite3 compiled here (no prebuilt binary reachable) leaves its objects and the SQLite
# sources next to the addon: ~26 MB the runtime never reads (it loads build/Release/*.node only).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/better-sqlite3/build/Release/obj node_modules/better-sqlite3/build/Release/obj.target \
      node_modules/better-sqlite3/build/Release/test_extension.node node_modules/better-sqlite3/deps node_modules/better-sqlite3/src

FROM ${NODE_IMAGE} AS runtime
# NODE_OPTIONS: a young generation of 32 MiB semi-spaces where V8 stops at 16. A sync, a page of
# GraphQL or an extract makes most of its garbage in short-lived rows; with more room fewer of them
# live through a scavenge into the old generation (docs/deployment.md, "Node's young generation").
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=32 \
    ROSTERGATE_HOST=0.0.0.0 \
    ROSTERGATE_PORT=4000
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
# uid 1000 is the image's `node` user; the data folder is its alone (stores are created mode 600).
RUN mkdir -p /data /etc/rostergate \
 && chown 1000:1000 /data \
 && chmod 700 /data
USER 1000:1000
VOLUME ["/data"]
EXPOSE 4000
# serve shuts down gracefully on SIGTERM (server.drainSeconds, then in-flight requests finish).
STOPSIGNAL SIGTERM
# Liveness (/healthz: the process answers). Readiness (/readyz: the store answers and takes writes)
# is for load balancers and Kubernetes' readinessProbe, which stop routing rather than restart.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ROSTERGATE_PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["serve", "--config", "/etc/rostergate/rostergate.yaml"]
