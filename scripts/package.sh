#!/usr/bin/env bash
# Builds the Debian package with cargo-deb and tests it: installs it with
# `apt install ./certeasy_*.deb`, then checks the system user, the workdir,
# the conffile, `certeasy validate` on the shipped example (as the certeasy
# user), `certeasy serve` with it (as certeasy, /healthz over HTTPS), the
# man pages and completions, and the systemd unit
# (`systemd-analyze verify`, and `security` at "OK" or better).
#
#   scripts/package.sh                      package the debug binary test.sh built (fast)
#   CERTEASY_DEB_PROFILE=release scripts/package.sh   release build + package (for distribution)
#   CERTEASY_DEB_INSTALL=0 scripts/package.sh         only build the .deb
#
# cargo-deb refuses to *build* the dev profile, but packages an existing
# binary with --no-build (with a deprecation warning): the test reuses the
# debug binary instead of a second, release, build of the workspace.
# cargo-deb itself: the one on PATH, else a pinned version installed once
# with `cargo install` into $CERTEASY_CACHE/cargo-deb.
#
# Installing needs root (or sudo -n): meant for a throwaway CI machine. A
# package the script installed is purged again at the end, with the user,
# /etc/certeasy and /var/lib/certeasy it created.
#
# Output: $CARGO_TARGET_DIR/debian/certeasy_<version>_<arch>.deb.
# Last line: "package: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/certeasy-target}"
export CERTEASY_CACHE="${CERTEASY_CACHE:-/var/tmp/certeasy-cache}"
PROFILE="${CERTEASY_DEB_PROFILE:-dev}"
CARGO_DEB_VERSION=3.8.0

PASS=0
FAIL=0
check() {
  local name="$1"; shift
  if "$@"; then PASS=$((PASS + 1)); echo "ok   $name"; else FAIL=$((FAIL + 1)); echo "FAIL $name"; fi
}

# ---- cargo-deb -------------------------------------------------------------
if cargo deb --version >/dev/null 2>&1; then
  CARGO_DEB=(cargo deb)
else
  root="$CERTEASY_CACHE/cargo-deb"
  if ! "$root/bin/cargo-deb" --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --root "$root"
  fi
  CARGO_DEB=("$root/bin/cargo-deb")
fi

# ---- the binary, the generated man pages and completions ---------------------
case "$PROFILE" in
  dev)
    dir=debug
    [ -x "$CARGO_TARGET_DIR/debug/certeasy" ] || cargo build -p certeasy --bin certeasy
    ;;
  release)
    dir=release
    cargo build --release -p certeasy --bin certeasy
    ;;
  *) echo "CERTEASY_DEB_PROFILE must be dev or release" >&2; exit 2 ;;
esac
bin="$CARGO_TARGET_DIR/$dir/certeasy"
extra="$CARGO_TARGET_DIR/$dir/package-extra"
rm -rf "$extra"
mkdir -p "$extra/man" "$extra/completions"
"$bin" manpages --dir "$extra/man"
"$bin" completions bash >"$extra/completions/certeasy.bash"
"$bin" completions zsh >"$extra/completions/_certeasy"
"$bin" completions fish >"$extra/completions/certeasy.fish"

out="$CARGO_TARGET_DIR/debian"
rm -f "$out"/certeasy_*.deb
"${CARGO_DEB[@]}" -p certeasy --no-build --profile "$PROFILE" --fast -o "$out/" 2>&1 | grep -v "dev profile is not supported\|To enable debug symbols" || true
deb=$(ls "$out"/certeasy_*.deb)
echo "built $deb ($(du -h "$deb" | cut -f1))"
listing=$(dpkg-deb -c "$deb")
conffiles=$(dpkg-deb -I "$deb" conffiles)
has() { grep -q -- "$1" <<<"$listing"; }
check "the package carries the binary, the unit, the conffile, man pages and completions" \
  eval 'has " ./usr/bin/certeasy$" && has " ./usr/lib/systemd/system/certeasy.service$" &&
        has " ./usr/share/man/man1/certeasy.1" && has " ./usr/share/bash-completion/completions/certeasy$" &&
        grep -qx /etc/certeasy/config.yml <<<"$conffiles"'


if [ "${CERTEASY_DEB_INSTALL:-1}" = 0 ]; then
  echo "package: $PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]; exit
fi

# ---- install and check --------------------------------------------------------
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
was_installed=
dpkg-query -W -f='${Status}' certeasy 2>/dev/null | grep -q "install ok installed" && was_installed=1
had_user=; getent passwd certeasy >/dev/null && had_user=1
had_etc=; [ -e /etc/certeasy ] && had_etc=1
had_state=; [ -e /var/lib/certeasy ] && had_state=1
cleanup() {
  [ -z "$was_installed" ] || return 0
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --purge certeasy >/dev/null 2>&1 || true
  [ -n "$had_etc" ] || "${SUDO[@]}" rm -rf /etc/certeasy
  [ -n "$had_state" ] || "${SUDO[@]}" rm -rf /var/lib/certeasy
  [ -n "$had_user" ] || "${SUDO[@]}" deluser --system certeasy >/dev/null 2>&1 || true
}
trap cleanup EXIT

# apt wants a path it can read as _apt; the .deb is copied next to no secret.
stage=$(mktemp -d)
cp "$deb" "$stage/"
chmod 755 "$stage"; chmod 644 "$stage"/*.deb
check "apt install ./certeasy_*.deb" \
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt install -y -q "$stage/$(basename "$deb")"
check "certeasy is a system user with its own group" \
  bash -c '[ "$(id -u certeasy)" -lt 1000 ] && [ "$(id -gn certeasy)" = certeasy ]'
check "/var/lib/certeasy belongs to certeasy, mode 750" \
  bash -c '[ "$(stat -c %U:%G:%a /var/lib/certeasy)" = certeasy:certeasy:750 ]'
check "/etc/certeasy/config.yml is a conffile readable by the service only" \
  bash -c 'dpkg-query -W -f="\${Conffiles}" certeasy | grep -q "/etc/certeasy/config.yml" &&
           [ "$(stat -c %U:%G:%a /etc/certeasy/config.yml)" = root:certeasy:640 ] &&
           [ "$(stat -c %U:%G:%a /etc/certeasy/ca-password)" = root:certeasy:640 ]'
check "certeasy validate -f /etc/certeasy/config.yml (as the certeasy user)" \
  "${SUDO[@]}" setpriv --reuid=certeasy --regid=certeasy --init-groups /usr/bin/certeasy validate -f /etc/certeasy/config.yml
check "man page and bash completion installed" \
  bash -c 'ls /usr/share/man/man1/certeasy.1* >/dev/null &&
           bash -c "source /usr/share/bash-completion/completions/certeasy && complete -p certeasy" >/dev/null'
# The shipped configuration really serves as the certeasy user: the built-in
# CA is created in /var/lib/certeasy with the postinst's password file.
if ss -ltn 2>/dev/null | grep -q ':8443 '; then
  echo "port 8443 in use: serve smoke test skipped"
else
  serve_log=$(mktemp)
  "${SUDO[@]}" setpriv --reuid=certeasy --regid=certeasy --init-groups \
    /usr/bin/certeasy serve -f /etc/certeasy/config.yml >"$serve_log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 150); do
    grep -q '^ACME directory:' "$serve_log" && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.2
  done
  check "certeasy serve with the shipped configuration, as certeasy (/healthz answers)" \
    bash -c "grep -q '^ACME directory:' '$serve_log' &&
             curl -sf --cacert /var/lib/certeasy/ca/root.pem --resolve certeasy.example.internal:8443:127.0.0.1 \
               https://certeasy.example.internal:8443/healthz >/dev/null &&
             [ \"\$(stat -c %U /var/lib/certeasy/db.sqlite)\" = certeasy ]"
  "${SUDO[@]}" kill -TERM "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  grep -q '^ACME directory:' "$serve_log" || tail -n 20 "$serve_log"
  rm -f "$serve_log"
fi
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify certeasy.service" \
    systemd-analyze verify /usr/lib/systemd/system/certeasy.service
  exposure=$(systemd-analyze security --offline=yes /usr/lib/systemd/system/certeasy.service 2>/dev/null | sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p')
  echo "systemd-analyze security: exposure $exposure"
  check "systemd-analyze security rates the unit OK or better (exposure < 4.0)" \
    awk -v e="${exposure:-10}" 'BEGIN { exit !(e < 4.0) }'
else
  echo "systemd-analyze not available: unit checks skipped"
fi
# Upgrade (same version reinstalled): a local edit of the conffile and the
# CA password survive.
"${SUDO[@]}" sed -i 's/^  level: info$/  level: debug/' /etc/certeasy/config.yml
pw_before=$("${SUDO[@]}" sha256sum /etc/certeasy/ca-password)
check "reinstall keeps the edited conffile and the CA password" \
  bash -c "${SUDO[*]} env DEBIAN_FRONTEND=noninteractive apt install -y -q --reinstall -o Dpkg::Options::=--force-confold '$stage/$(basename "$deb")' >/dev/null &&
           grep -q '^  level: debug$' /etc/certeasy/config.yml &&
           [ \"\$(${SUDO[*]} sha256sum /etc/certeasy/ca-password)\" = '$pw_before' ]"
rm -rf "$stage"

echo "package: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
