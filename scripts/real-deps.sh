#!/usr/bin/env bash
# Builds the real upstream programs the real-server tests and `DEMO_FORGEJO=real make demo` run
# against, from the Go module proxy, into a cache outside the clone keyed by version. A second run
# reuses the cache and takes seconds. Nothing is installed system-wide.
#
#   scripts/real-deps.sh          build (or reuse) and print where the binary is
#   scripts/real-deps.sh --env    print GITEA_VERSION=… GITEA_BIN=… GITEA_ROOT=… (nothing is built)
#
# Exit status: 0 built or reused; 3 Go missing or too old; 4 the module proxy refused or failed;
# 1 the build itself failed.
set -euo pipefail

# ---- pinned versions: the one place they are written ------------------------------------------
# Forgejo (module forgejo.org, code.forgejo.org/*) is refused by the Go module proxy on the
# machines this project is built on, so the real-server suite runs on Gitea, the project Forgejo
# was forked from; emulator/README.md lists where the two differ in what the broker relies on.
GITEA_MODULE=code.gitea.io/gitea
GITEA_VERSION=v1.27.3
GITEA_TAGS='sqlite sqlite_unlock_notify'
# The Go version Gitea v1.27.3's go.mod asks for.
GO_MIN=1.26.4
# The intended forgejo-mcp pin is git.b4mad.industries/agentic-forges/forgejo-mcp/v2@v2.34.1. It is
# not built: the Go module proxy answers 403 for every path of it (and of its Codeberg/GitHub
# mirrors), so the broker's children in the real suite are the stand-in (emulator/forgejo-mcp).
FORGEJO_MCP_MODULE=git.b4mad.industries/agentic-forges/forgejo-mcp/v2
FORGEJO_MCP_VERSION=v2.34.1
# -------------------------------------------------------------------------------------------------

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/forgejo-mcp-broker"
OUT="$CACHE_ROOT/gitea-$GITEA_VERSION"
BIN="$OUT/gitea"
# Gitea without `bindata` reads templates/, options/ and public/ from this folder (STATIC_ROOT_PATH).
ROOT="$OUT/root"
STAMP="$OUT/.built"

say() { echo "real-deps: $*" >&2; }
fail() {
  local code=$1
  shift
  say "ERROR: $*"
  exit "$code"
}

if [[ "${1:-}" == "--env" ]]; then
  echo "GITEA_VERSION=$GITEA_VERSION"
  echo "GITEA_BIN=$BIN"
  echo "GITEA_ROOT=$ROOT"
  echo "GITEA_READY=$([[ -f "$STAMP" && -x "$BIN" ]] && echo 1 || echo 0)"
  echo "FORGEJO_MCP_PIN=$FORGEJO_MCP_MODULE@$FORGEJO_MCP_VERSION"
  exit 0
fi

started=$(date +%s)

# The stamp records what was built; anything else in the folder is a half-finished build.
if [[ -f "$STAMP" && -x "$BIN" && "$(cat "$STAMP")" == "$GITEA_MODULE@$GITEA_VERSION tags=$GITEA_TAGS" ]]; then
  say "1/1 reusing Gitea $GITEA_VERSION from $OUT"
  echo "$BIN"
  exit 0
fi

say "1/5 checking Go (need >= $GO_MIN)"
command -v go >/dev/null 2>&1 || fail 3 "Go is not on PATH; install Go >= $GO_MIN (https://go.dev/dl/) and run again"
# A local toolchain only: an older Go must not quietly fetch a newer one through the proxy.
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
[[ -n "$have" ]] || fail 3 "cannot tell the Go version (go env GOVERSION failed)"
if [[ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -1)" != "$GO_MIN" ]]; then
  fail 3 "Go $have is too old: Gitea $GITEA_VERSION needs Go >= $GO_MIN"
fi
say "    Go $have at $(command -v go)"

mkdir -p "$CACHE_ROOT"
# One build at a time per machine: a second caller waits, then finds the stamp.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
  if [[ -f "$STAMP" && -x "$BIN" ]]; then
    say "1/1 reusing Gitea $GITEA_VERSION from $OUT (built while waiting)"
    echo "$BIN"
    exit 0
  fi
fi

say "2/5 fetching $GITEA_MODULE@$GITEA_VERSION through $(go env GOPROXY)"
err=$(mktemp)
trap 'rm -f "$err"' EXIT
if ! json=$(go mod download -json "$GITEA_MODULE@$GITEA_VERSION" 2>"$err"); then
  reason=$(sed -n 's/.*"Error": *"\(.*\)".*/\1/p' <<<"$json" | head -1)
  [[ -n "$reason" ]] || reason=$(head -3 "$err")
  fail 4 "the Go module proxy did not give $GITEA_MODULE@$GITEA_VERSION: $reason"
fi
src=$(sed -n 's/.*"Dir": *"\(.*\)".*/\1/p' <<<"$json" | head -1)
[[ -d "$src" ]] || fail 4 "go mod download gave no source folder for $GITEA_MODULE@$GITEA_VERSION"
say "    source in $src"

say "3/5 fetching Gitea's dependencies"
if ! (cd "$src" && go mod download 2>"$err"); then
  fail 4 "the Go module proxy did not give all of Gitea's dependencies: $(grep -m3 -E '403|404|not available|refused|error' "$err" || head -3 "$err")"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
say "4/5 building Gitea $GITEA_VERSION (tags: $GITEA_TAGS; several minutes the first time)"
# Built inside the module cache's copy (read-only is fine: go build writes only the -o file and its
# own build cache); the version is set as Gitea's Makefile sets it, so /api/v1/version is real.
if ! (cd "$src" && go build -tags "$GITEA_TAGS" -ldflags "-s -w -X main.Version=${GITEA_VERSION#v} -X 'main.Tags=$GITEA_TAGS'" -o "$BIN.tmp" . 2>"$err"); then
  tail -20 "$err" >&2
  fail 1 "go build of Gitea $GITEA_VERSION failed (above)"
fi
mv "$BIN.tmp" "$BIN"

say "5/5 copying templates, options and public assets to $ROOT"
mkdir -p "$ROOT"
cp -R "$src/templates" "$src/options" "$src/public" "$ROOT/"
chmod -R u+w "$ROOT"
echo "$GITEA_MODULE@$GITEA_VERSION tags=$GITEA_TAGS" >"$STAMP"
say "done in $(($(date +%s) - started)) s: $BIN"
echo "$BIN"
