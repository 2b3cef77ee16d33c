#!/usr/bin/env bash
# Interop tests: certbot and lego against the certeasy binary, with a real
# bind9 for dns-01, and through certeasy's native ADCS bridge (`type: adcs`)
# to lab-adcs (endpoint mapper on 127.0.0.1:135: run as root).
# Installs what it needs (idempotent, fast when present):
#   apt:  lego bind9 bind9-utils bind9-dnsutils caddy openssl (python3-venv if needed)
#   PyPI: certbot + certbot-dns-rfc2136 (pinned) in
#         ${CERTEASY_CACHE:-/var/tmp/certeasy-cache}/venv-certbot
# then runs tests/interop/run.py. Last line: `N passed, M failed`.
#
#   CERTEASY_BIN   certeasy binary (default /var/tmp/certeasy-target/debug/certeasy)
#   LAB_ADCS_BIN   lab-adcs binary (default /var/tmp/certeasy-target/debug/lab-adcs;
#                  built with `cargo build -p lab-adcs` when missing and not set)
#   CERTEASY_CACHE cache dir for the certbot venv (default /var/tmp/certeasy-cache)
#   INTEROP_KEEP=1 keep the temp dir even when everything passes
# Arguments are passed to run.py: case names to run a subset, --list to list them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CERTEASY_BIN="${CERTEASY_BIN:-/var/tmp/certeasy-target/debug/certeasy}"
LAB_ADCS_DEFAULT=/var/tmp/certeasy-target/debug/lab-adcs
CACHE="${CERTEASY_CACHE:-/var/tmp/certeasy-cache}"
VENV="$CACHE/venv-certbot"

# Pinned PyPI versions (checked with `pip index versions certbot`).
CERTBOT_PINS="certbot==5.8.0 certbot-dns-rfc2136==5.8.0 acme==5.8.0"
APT_PKGS=(lego bind9 bind9-utils bind9-dnsutils caddy openssl)

fail_setup() {
    echo "interop setup failed: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail_setup "not root and no sudo: cannot apt-get install"
    SUDO=(sudo -n)
fi

mkdir -p "$CACHE"

# ---- apt packages ------------------------------------------------------------
apt_updated=0
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "interop: apt-get install ${missing[*]}"
    if [ "$apt_updated" -eq 0 ]; then
        "${SUDO[@]}" apt-get update -q >"$CACHE/apt-update.log" 2>&1 \
            || { tail -20 "$CACHE/apt-update.log" >&2; fail_setup "apt-get update"; }
        apt_updated=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >"$CACHE/apt-install.log" 2>&1 \
        || { tail -20 "$CACHE/apt-install.log" >&2; fail_setup "apt-get install ${missing[*]}"; }
}
apt_install "${APT_PKGS[@]}"

NAMED="$(command -v named || echo /usr/sbin/named)"
[ -x "$NAMED" ] || fail_setup "named not found after installing bind9"
command -v lego >/dev/null || fail_setup "lego not found after installing lego"
command -v dig >/dev/null || fail_setup "dig not found after installing bind9-dnsutils"

# ---- certbot venv ------------------------------------------------------------
STAMP="$VENV/.certeasy-pins"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$CERTBOT_PINS" ] \
    || ! "$VENV/bin/certbot" --version >/dev/null 2>&1; then
    echo "interop: installing $CERTBOT_PINS into $VENV"
    PY="$(command -v python3)" || fail_setup "python3 not found"
    if ! "$PY" -m venv --clear "$VENV" >"$CACHE/venv.log" 2>&1; then
        # Debian's python3 needs python3-venv for ensurepip.
        apt_install python3-venv
        "$PY" -m venv --clear "$VENV" >"$CACHE/venv.log" 2>&1 \
            || { cat "$CACHE/venv.log" >&2; fail_setup "python3 -m venv $VENV"; }
    fi
    # shellcheck disable=SC2086 # word splitting of the pin list is intended
    "$VENV/bin/pip" install --disable-pip-version-check -q $CERTBOT_PINS >"$CACHE/pip.log" 2>&1 \
        || { tail -20 "$CACHE/pip.log" >&2; fail_setup "pip install $CERTBOT_PINS"; }
    echo "$CERTBOT_PINS" >"$STAMP"
fi

# ---- run ---------------------------------------------------------------------
[ -x "$CERTEASY_BIN" ] || fail_setup "certeasy binary $CERTEASY_BIN not found (cargo build -p certeasy first)"
CERTEASY_BIN="$(realpath "$CERTEASY_BIN")"
if [ -z "${LAB_ADCS_BIN:-}" ]; then
    LAB_ADCS_BIN="$LAB_ADCS_DEFAULT"
    if [ ! -x "$LAB_ADCS_BIN" ]; then
        command -v cargo >/dev/null 2>&1 || fail_setup "lab-adcs binary $LAB_ADCS_BIN not found and no cargo to build it"
        echo "interop: building lab-adcs"
        (cd "$ROOT" && CARGO_TARGET_DIR=/var/tmp/certeasy-target cargo build --quiet -p lab-adcs) >"$CACHE/lab-adcs-build.log" 2>&1 \
            || { tail -20 "$CACHE/lab-adcs-build.log" >&2; fail_setup "cargo build -p lab-adcs"; }
    fi
fi
[ -x "$LAB_ADCS_BIN" ] || fail_setup "lab-adcs binary $LAB_ADCS_BIN not found (cargo build -p lab-adcs first)"
LAB_ADCS_BIN="$(realpath "$LAB_ADCS_BIN")"

echo "interop: $("$CERTEASY_BIN" --version 2>&1 | head -1); certbot $("$VENV/bin/certbot" --version 2>&1 | awk '{print $2}');" \
    "lego $(dpkg-query -W -f='${Version}' lego); caddy $(dpkg-query -W -f='${Version}' caddy); bind9 $(dpkg-query -W -f='${Version}' bind9)"

export CERTEASY_BIN NAMED LAB_ADCS_BIN
export CERTBOT="$VENV/bin/certbot"
export LEGO; LEGO="$(command -v lego)"
export CADDY; CADDY="$(command -v caddy)"
exec python3 "$ROOT/tests/interop/run.py" "$@"
