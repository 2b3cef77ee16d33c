#!/usr/bin/env bash
# Runs every test layer of certeasy. Installs what the tests need first
# (Debian packages, a Python venv for the ACME/ADCS clients); every install
# step is idempotent and quick when already done.
#
#   scripts/test.sh            everything
#   SKIP_INTEROP=1 scripts/test.sh   only the Rust layers (unit, integration, crash)
#   FUZZ_SECONDS=60 scripts/test.sh  each fuzz target runs 60 s (default 20)
#
# Build artefacts go to $CARGO_TARGET_DIR (default /var/tmp/certeasy-target,
# outside the clone so CI and later runs reuse them); downloaded tools to
# $CERTEASY_CACHE (default /var/tmp/certeasy-cache).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/certeasy-target}"
export CERTEASY_CACHE="${CERTEASY_CACHE:-/var/tmp/certeasy-cache}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CERTEASY_CACHE"

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the Rust test layers need (the interop scripts install
# their own): strace for the host-footprint test, slapd for the LDAP part of
# `adcs check` (the test starts its own slapd on a loopback port), prometheus
# for `promtool check metrics` on a scrape (tests/operations.rs).
apt_need=()
for pkg in strace slapd prometheus; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_need+=("$pkg")
done
if [ "${#apt_need[@]}" -gt 0 ]; then
  step "apt-get install ${apt_need[*]}"
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
  # Keep package scripts from starting services (slapd's postinst would start
  # a system slapd on port 389, and fails without an init system): a
  # policy-rc.d that refuses every start, removed again unless it was there.
  policy_rc=/usr/sbin/policy-rc.d
  own_policy_rc=
  if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy_rc" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy_rc"
    own_policy_rc=1
  fi
  set +e
  "${SUDO[@]}" apt-get update -q >/dev/null &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt_need[@]}" >/dev/null
  apt_rc=$?
  set -e
  [ -z "$own_policy_rc" ] || "${SUDO[@]}" rm -f "$policy_rc"
  [ "$apt_rc" -eq 0 ] || { echo "apt-get install ${apt_need[*]} failed (exit $apt_rc)" >&2; exit "$apt_rc"; }
fi

step "toolchain"
cargo --version
rustc --version

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "unit and integration tests (one build profile for every layer)"
cargo build --workspace --all-targets --all-features
set +e
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$CERTEASY_CACHE/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
set -e
sum_field() { awk -v f="$1" '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ "^" f) n += $i } END { print n + 0 }' "$CERTEASY_CACHE/cargo-test.log"; }
rust_passed=$(sum_field passed)
rust_failed=$(sum_field failed)
if [ "$cargo_rc" -ne 0 ] && [ "$rust_failed" -eq 0 ]; then rust_failed=1; fi
# The same store tests and a representative set of integration tests on
# PostgreSQL (docs/high-availability.md lists them): a throwaway cluster on
# a loopback port (scripts/pg-cluster.sh), one fresh schema per test.
step "PostgreSQL engine: store tests and integration tests on a throwaway cluster"
PG_DIR="$(mktemp -d /var/tmp/certeasy-pg.XXXXXX)"
chmod 711 "$PG_DIR"
pg_stop() { bash scripts/pg-cluster.sh stop "$PG_DIR/cluster" || true; rm -rf "$PG_DIR"; }
trap pg_stop EXIT
set +e
PG_DSN="$(PG_FAST=1 bash scripts/pg-cluster.sh start "$PG_DIR/cluster")"
pg_rc=$?
if [ "$pg_rc" -eq 0 ]; then
  # The unit tests that open a store (store, nonces, cluster-wide limits)...
  CERTEASY_TEST_PG_DSN="$PG_DSN" cargo test -p certeasy --all-features --lib -- \
    store:: nonce:: limits:: 2>&1 | tee "$CERTEASY_CACHE/cargo-test-pg.log"
  pg_rc=${PIPESTATUS[0]}
  # ...and integration tests that reach the database only through the server.
  CERTEASY_TEST_PG_DSN="$PG_DSN" cargo test -p certeasy --all-features --no-fail-fast \
    --test issuance --test finalize --test rate_limits --test eab --test ari --test profiles \
    --test errors --test modern_clients --test fairness --test listener 2>&1 | tee -a "$CERTEASY_CACHE/cargo-test-pg.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || pg_rc=1
fi
set -e
pg_passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ "^passed") n += $i } END { print n + 0 }' "$CERTEASY_CACHE/cargo-test-pg.log" 2>/dev/null || echo 0)
pg_failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ "^failed") n += $i } END { print n + 0 }' "$CERTEASY_CACHE/cargo-test-pg.log" 2>/dev/null || echo 0)
if [ "$pg_rc" -ne 0 ] && [ "$pg_failed" -eq 0 ]; then pg_failed=1; fi
pg_stop
trap - EXIT
rust_passed=$((rust_passed + pg_passed))
rust_failed=$((rust_failed + pg_failed))
# `certeasy init` driven through a pseudo-terminal (a private copy of the binary).
if python3 scripts/init-pty.py "$CARGO_TARGET_DIR/debug/certeasy"; then rust_passed=$((rust_passed + 1)); else rust_failed=$((rust_failed + 1)); fi

step "benchmark smoke run (a few issuances through certeasy-bench)"
bench_passed=0
bench_failed=0
if BENCH_BIN_DIR="$CARGO_TARGET_DIR/debug" bash scripts/bench.sh --smoke; then bench_passed=1; else bench_failed=1; fi

# Brief fuzzing of every cargo-fuzz target (scripts/fuzz.sh: installs a
# pinned cargo-fuzz into the cache, FUZZ_SECONDS per target, 20 by default).
step "fuzz (scripts/fuzz.sh)"
set +e
bash scripts/fuzz.sh 2>&1 | tee "$CERTEASY_CACHE/fuzz.log"
fuzz_rc=${PIPESTATUS[0]}
set -e
fuzz_line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$CERTEASY_CACHE/fuzz.log" | tail -n 1 || true)
fuzz_passed=$(echo "$fuzz_line" | sed -nE 's/^fuzz: ([0-9]+) passed.*/\1/p')
fuzz_failed=$(echo "$fuzz_line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
fuzz_passed=${fuzz_passed:-0}
fuzz_failed=${fuzz_failed:-0}
if [ "$fuzz_rc" -ne 0 ] && [ "$fuzz_failed" -eq 0 ]; then fuzz_failed=1; fi

interop_passed=0
interop_failed=0
if [ -z "${SKIP_INTEROP:-}" ]; then
  export CERTEASY_BIN="$CARGO_TARGET_DIR/debug/certeasy"
  export LAB_ADCS_BIN="$CARGO_TARGET_DIR/debug/lab-adcs"
  for script in scripts/interop.sh scripts/interop-certipy.sh scripts/interop-pebble.sh scripts/interop-ha.sh scripts/package.sh; do
    [ -x "$script" ] || continue
    step "interop: $script"
    log="$CERTEASY_CACHE/$(basename "$script" .sh).log"
    set +e
    bash "$script" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | sed -E 's/^[A-Za-z-]+: //' || true)
    if [ -n "$line" ]; then
      interop_passed=$((interop_passed + $(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')))
      interop_failed=$((interop_failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    elif [ "$rc" -ne 0 ]; then
      interop_failed=$((interop_failed + 1))
    fi
    if [ "$rc" -ne 0 ] && [ -z "$line" ]; then echo "$script failed (exit $rc)"; fi
  done

  # ---- Kerberos against a real KDC (issue 16) --------------------------------
  # scripts/interop-kerberos.sh starts the throwaway Samba AD DC of
  # scripts/lab-domain.sh on 127.0.0.2 (state in $CERTEASY_CACHE/lab-domain)
  # and stops it again; it needs the certbot and Certipy venvs set up above.
  step "interop: scripts/interop-kerberos.sh"
  log="$CERTEASY_CACHE/interop-kerberos.log"
  set +e
  bash scripts/interop-kerberos.sh 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  line=$(grep -E '^interop-kerberos: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | sed -E 's/^[A-Za-z-]+: //' || true)
  if [ -n "$line" ]; then
    interop_passed=$((interop_passed + $(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')))
    interop_failed=$((interop_failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
  else
    interop_failed=$((interop_failed + 1)); echo "scripts/interop-kerberos.sh failed (exit $rc)"
  fi
  # ---- end of Kerberos block ---------------------------------------------------
fi

step "summary"
echo "rust: ${rust_passed:-0} passed, ${rust_failed:-0} failed"
echo "interop: $interop_passed passed, $interop_failed failed"
echo "bench smoke: $bench_passed passed, $bench_failed failed"
echo "fuzz: $fuzz_passed passed, $fuzz_failed failed"
total_passed=$(( ${rust_passed:-0} + interop_passed + bench_passed + fuzz_passed ))
total_failed=$(( ${rust_failed:-0} + interop_failed + bench_failed + fuzz_failed ))
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
