#!/usr/bin/env bash
# The real-server batch of `make test`: builds (or reuses) Gitea with scripts/real-deps.sh, then runs
# test/real/*.test.ts against it. Without a suitable Go, or when the Go module proxy refuses, the
# batch is NOT RUN: its last line says so and why, and it never counts as passed. With
# REQUIRE_REAL_SUITE=1 (CI) a batch that did not run fails.
set -uo pipefail
cd "$(dirname "$0")/.."

not_run() {
  echo "real suite: NOT RUN — $1" >&2
  if [[ "${REQUIRE_REAL_SUITE:-0}" == "1" ]]; then
    echo "real suite: REQUIRE_REAL_SUITE=1, so this fails" >&2
    exit 1
  fi
  exit 0
}

bash scripts/real-deps.sh >/dev/null
rc=$?
case $rc in
  0) ;;
  3) not_run "no suitable Go to build Gitea (see the real-deps line above)" ;;
  4) not_run "the Go module proxy did not give Gitea or its dependencies (see the real-deps line above)" ;;
  *) echo "real suite: FAILED — building Gitea failed (exit $rc)" >&2; exit 1 ;;
esac
# playwright-core drives Debian's Chromium; without it the sign-in tests cannot run at all.
[[ -x /usr/bin/chromium ]] || not_run "/usr/bin/chromium is missing (scripts/ci-packages.sh installs it)"

# shellcheck disable=SC2086 # NODE_TEST is a command line
if ${NODE_TEST:-node --test --test-timeout=600000} --test-concurrency=1 test/real/*.test.ts; then
  echo "real suite: PASSED against $(bash scripts/real-deps.sh --env | sed -n 's/^GITEA_VERSION=/Gitea /p') (forgejo-mcp: the stand-in; the real one cannot be had)" >&2
else
  echo "real suite: FAILED" >&2
  exit 1
fi
