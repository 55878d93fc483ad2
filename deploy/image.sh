#!/usr/bin/env bash
# Builds the broker image (Containerfile) with docker or podman, whichever has a working engine,
# labelled with the current commit and build time. `make image` runs this.
#   IMAGE=forgejo-mcp-broker:latest   tag to build
#   CONTAINER_ENGINE=docker|podman    use this engine only
#   FORGEJO_MCP_VERSION, FORGEJO_MCP_SHA256, FORGEJO_MCP_RELEASES   passed on as build arguments
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${IMAGE:-forgejo-mcp-broker:latest}"

engine=""
problems=()
for candidate in ${CONTAINER_ENGINE:-docker podman}; do
  if ! command -v "$candidate" >/dev/null 2>&1; then
    problems+=("$candidate: not installed")
  elif ! "$candidate" info >/dev/null 2>&1; then
    problems+=("$candidate: installed, but '$candidate info' fails (no engine running or reachable)")
  else
    engine="$candidate"
    break
  fi
done
if [ -z "$engine" ]; then
  {
    echo "make image: no working container engine, so no image was built."
    printf '  %s\n' "${problems[@]}"
    echo "Install and start Docker or Podman (or set CONTAINER_ENGINE), then run make image again."
  } >&2
  exit 1
fi

commit="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
args=(build -f "$root/Containerfile" -t "$image"
  --build-arg "GIT_COMMIT=$commit"
  --build-arg "BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
for name in FORGEJO_MCP_VERSION FORGEJO_MCP_SHA256 FORGEJO_MCP_RELEASES; do
  if [ -n "${!name:-}" ]; then args+=(--build-arg "$name=${!name}"); fi
done
echo "make image: $engine ${args[*]} $root" >&2
exec "$engine" "${args[@]}" "$root"
