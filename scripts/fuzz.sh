#!/usr/bin/env bash
# Runs the cargo-fuzz targets of certeasy (crates/*/fuzz) briefly; the
# parsers of untrusted input must never panic. scripts/test.sh calls it.
#
#   scripts/fuzz.sh                  every target, FUZZ_SECONDS (20) each
#   scripts/fuzz.sh jws dns          only these targets
#   FUZZ_SECONDS=3600 scripts/fuzz.sh config    a long run (docs/fuzzing.md)
#
# cargo-fuzz is installed once into $CERTEASY_CACHE (pinned version; an
# install that fails fails the script). Fuzz builds need nightly flags:
# RUSTC_BOOTSTRAP=1 on the stable toolchain, no sanitizer (-s none: a panic
# or an abort is what the targets look for). Every fuzz crate builds into one
# target dir in the cache, so reruns are incremental, and starts from the
# product's Cargo.lock, so the dependency versions fuzzed are the ones that
# ship. Each target's corpus grows in $CERTEASY_CACHE/fuzz-corpus/TARGET from
# run to run, and its committed seeds (crates/*/fuzz/seeds/TARGET) are read
# too. A crash leaves its input under crates/*/fuzz/artifacts/TARGET/.
set -uo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
export CERTEASY_CACHE="${CERTEASY_CACHE:-/var/tmp/certeasy-cache}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
fuzz_seconds="${FUZZ_SECONDS:-20}"
mkdir -p "$CERTEASY_CACHE"

step() { printf '\n==> %s\n' "$*"; }

root="$CERTEASY_CACHE/cargo-fuzz"
if [ "$("$root/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  step "install cargo-fuzz $CARGO_FUZZ_VERSION into $root"
  if ! cargo install --locked --force --version "$CARGO_FUZZ_VERSION" --root "$root" cargo-fuzz; then
    echo "cargo install cargo-fuzz $CARGO_FUZZ_VERSION failed: no fuzz target can run" >&2
    echo "fuzz: 0 passed, 1 failed"
    exit 1
  fi
fi
export PATH="$root/bin:$PATH"
# Not the workspace's target dir: the fuzz RUSTFLAGS would rebuild it all.
export CARGO_TARGET_DIR="$CERTEASY_CACHE/fuzz-target"
export RUSTC_BOOTSTRAP=1

wanted=" $* "
passed=0
failed=0
started=$SECONDS
for dir in crates/*/fuzz; do
  [ -d "$dir/fuzz_targets" ] || continue
  cp Cargo.lock "$dir/Cargo.lock"
  if ! all=$(cd "$dir" && cargo fuzz list) || [ -z "$all" ]; then
    echo "FAILED: $dir: cargo fuzz list found no target"
    failed=$((failed + 1))
    continue
  fi
  targets=()
  for target in $all; do
    if [ $# -eq 0 ] || [[ "$wanted" == *" $target "* ]]; then targets+=("$target"); fi
  done
  [ "${#targets[@]}" -gt 0 ] || continue
  step "fuzz build $dir: ${targets[*]}"
  build_started=$SECONDS
  build_ok=1
  for target in "${targets[@]}"; do
    (cd "$dir" && cargo fuzz build -s none "$target") || { build_ok=; break; }
  done
  echo "built in $((SECONDS - build_started)) s"
  if [ -z "$build_ok" ]; then
    echo "FAILED: $dir: the fuzz build failed (${targets[*]})"
    failed=$((failed + ${#targets[@]}))
    continue
  fi
  for target in "${targets[@]}"; do
    step "fuzz $target (${fuzz_seconds} s)"
    corpus="$CERTEASY_CACHE/fuzz-corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    [ -d "$dir/seeds/$target" ] && seeds=("seeds/$target")
    if (cd "$dir" && cargo fuzz run "$target" -s none "$corpus" "${seeds[@]}" -- \
        -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1); then
      passed=$((passed + 1))
    else
      echo "FAILED: fuzz target $target (the input is under $dir/artifacts/$target/)"
      failed=$((failed + 1))
    fi
  done
done
if [ $((passed + failed)) -eq 0 ]; then
  echo "no fuzz target matched: $*"
  failed=1
fi
echo "fuzz step took $((SECONDS - started)) s"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
