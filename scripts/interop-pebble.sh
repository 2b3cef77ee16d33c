#!/usr/bin/env bash
# certeasy's listener gets its own certificate from an external ACME CA:
# Pebble (Debian package `pebble`, with pebble-challtestsrv as the DNS server
# of Pebble's VA), validating for real over tls-alpn-01 on certeasy's
# listener and over http-01 on the configured port; one test also renews
# (30 s certificates) and checks the hot swap on a new TLS connection.
#
#   scripts/interop-pebble.sh
#
# * Installs the `pebble` package when missing (apt-get; root or sudo -n).
# * Runs tests/acme_listener.rs with CERTEASY_REQUIRE_PEBBLE=1 (without
#   Pebble those tests would pass as skipped); PEBBLE_VA_ALWAYS_VALID is not
#   used: every validation reaches certeasy.
#
# Environment: CARGO_TARGET_DIR (default /var/tmp/certeasy-target).
# Exit status 0 when every check passed. Last line: "pebble: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/certeasy-target}"

if ! dpkg-query -W -f='${Status}' pebble 2>/dev/null | grep -q "install ok installed"; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends pebble >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
CERTEASY_REQUIRE_PEBBLE=1 cargo test -q -p certeasy --test acme_listener 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) n += $i } END { print n + 0 }' "$log")
failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^failed/) n += $i } END { print n + 0 }' "$log")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "pebble: $passed passed, $failed failed"
[ "$rc" -eq 0 ]
