#!/usr/bin/env bash
# Installs (if needed) Chromium from the Debian package `chromium` for the browser tests
# (test/e2e/console-browser.test.ts drives it with playwright-core), and prints its path to use as
# ROSTERGATE_CHROMIUM. Source-free: call it and read stdout.
set -euo pipefail
path=${ROSTERGATE_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$path" ]; then
  echo "installing Chromium (Debian package chromium)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
[ -x "$path" ] || { echo "no Chromium at $path after installing the chromium package" >&2; exit 1; }
echo "$path"
