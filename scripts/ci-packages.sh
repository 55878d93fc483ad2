#!/usr/bin/env bash
# Installs the Debian packages the tests need when a machine lacks them (CI runs this before
# `make test`). One package per line below: add yours on a line of its own. With arguments, it
# installs those instead (make bench: `scripts/ci-packages.sh wrk`).
set -euo pipefail
packages=(
  bubblewrap # BROKER_CHILD_ISOLATION: test/e2e/child-isolation.test.ts, test/supervisor/isolation.test.ts
  caddy   # test/deploy/caddy.test.ts runs deploy/caddy/Caddyfile
  chromium # test/oauth/browser.test.ts and sdk-client.test.ts drive it through playwright-core
  postgresql # test/store/postgres.test.ts and the PostgreSQL e2e test run a throwaway cluster (test/support/postgres.ts)
  systemd # systemd-analyze, for test/deploy/systemd.test.ts
  # (chromium, above, is also what test/oauth/browser.test.ts drives)
)
if [ "$#" -gt 0 ]; then packages=("$@"); fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ci-packages: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ci-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
