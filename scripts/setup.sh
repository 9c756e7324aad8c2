#!/usr/bin/env bash
# scripts: installs what `npm start` (and with --test, `npm test`) needs on a fresh Debian machine, then builds.
# System tools come from Debian packages when missing; npm packages from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--test" ]; then
  missing=()
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
  command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} from Debian packages" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup: need root (or sudo) to install ${missing[*]}; install them and run again" >&2
      exit 1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc -p tsconfig.json
if [ "${1:-}" = "--test" ]; then
  npx biome check .
  node dist/scripts/lint-compose.js
fi
