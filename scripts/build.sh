#!/usr/bin/env bash
# Builds dist/ from nothing: the server, tests and bench (tsconfig.json), then the browser console
# (src/console/tsconfig.json: DOM types, no Node), whose page, styles and icon are copied beside its scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
node_modules/.bin/tsc -p .
node_modules/.bin/tsc -p src/console
cp src/console/*.html src/console/*.css src/console/*.svg dist/src/console/
# tsc writes files without the execute bit: the installed `lowcode-faas` command needs it.
chmod 0755 dist/src/cli.js
