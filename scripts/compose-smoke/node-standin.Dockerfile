# STAND-IN for node:20-bookworm-slim, built by scripts/compose-smoke.sh only where no container
# registry can be reached. Not an official image: Debian bookworm (debootstrap, minbase) plus the
# Node 20 binary, headers and npm of the machine running the smoke (copied into this build's
# context by the script). It keeps the parts of the official image's contract our Dockerfile uses:
# node, npm and npx in /usr/local, user and group `node` with uid/gid 1000, apt working against
# deb.debian.org. One difference, on purpose: npm_config_nodedir points node-gyp at the copied
# headers, because without GitHub and nodejs.org better-sqlite3 has no prebuilt binary and node-gyp
# could not download headers; the build stage then compiles it, the Dockerfile's fallback path.
# And this machine's CA certificates (NODE_EXTRA_CA_CERTS), for a TLS-inspecting proxy between the
# build and the npm registry such as the one where the smoke was first run; the official image has
# none, so an operator behind such a proxy must add theirs to the build there too.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY bin/node /usr/local/bin/node
COPY include/node/ /usr/local/include/node/
COPY lib/node_modules/npm/ /usr/local/lib/node_modules/npm/
COPY host-ca-certificates.crt /usr/local/share/rostergate-standin/host-ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
ENV npm_config_nodedir=/usr/local \
    NODE_EXTRA_CA_CERTS=/usr/local/share/rostergate-standin/host-ca-certificates.crt
LABEL org.rostergate.standin="node:20-bookworm-slim (not the official image; scripts/compose-smoke.sh)"
CMD ["node"]
