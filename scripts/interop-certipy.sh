#!/usr/bin/env bash
# Wire-compatibility check of lab-adcs (and so of the msrpc crate) against an
# independent client: Certipy + impacket from PyPI.
#
#   scripts/interop-certipy.sh
#
# * Installs pinned Certipy/impacket into a venv OUTSIDE the repository
#   (${CERTEASY_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certeasy-interop}),
#   reused across runs while the pins do not change.
# * Builds lab-adcs, starts it on 127.0.0.1 with the endpoint mapper on 135
#   (Certipy's -dynamic-endpoint always asks port 135: run as root or grant
#   CAP_NET_BIND_SERVICE), state in a temporary directory.
# * Runs `certipy req` for: issued, pending -> `lab-adcs approve` -> -retrieve,
#   denied (CERTSRV_E_TEMPLATE_DENIED), wrong password (access denied), and
#   `lab-adcs request` (our own client, as a binary) against the same server.
# * Certipy's DCOM paths against the same server: `certipy ca -list-templates`
#   (ICertAdminD2::GetCAProperty), `certipy req -dcom` (ICertRequestD::Request),
#   `-issue-request` / `-deny-request` (ICertAdminD::ResubmitRequest /
#   DenyRequest), each outcome read back with `lab-adcs status`; and against a
#   third lab-adcs with `icpr-enabled: false` on 127.0.0.3:135, where
#   `certipy req` over RPC is refused and `certipy req -dcom` issues.
# * Every name lookup and connection stays on loopback (-dc-ip/-ns 127.0.0.1).
#
# Environment: PYTHON (default python3), CARGO_TARGET_DIR (default
# /var/tmp/certeasy-target), LAB_ADCS_BIN (skip the build and use this binary).
# Exit status 0 when every check passed. Last line: "interop: N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
CACHE="${CERTEASY_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certeasy-interop}"
VENV="$CACHE/venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/certeasy-target}"

# Versions verified to install on Python 3.11 (certipy-ad 5.x declares
# Python >= 3.12, hence --ignore-requires-python) and to interoperate.
PINS="anyio==4.16.0
argcomplete==3.6.3
asn1crypto==1.5.1
beautifulsoup4==4.13.5
blinker==1.9.0
certifi==2026.10.18
certipy-ad==5.1.0
cffi==2.1.1
charset-normalizer==3.5.2
click==8.5.1
cryptography==42.0.8
dnspython==2.7.0
Flask==3.1.3
h11==0.16.0
httpcore==1.0.9
httpx==0.28.1
idna==3.20
impacket==0.13.1
itsdangerous==2.2.0
Jinja2==3.1.6
ldap3==2.9.1
ldapdomaindump==0.10.0
MarkupSafe==3.0.4
pyasn1==0.6.5
pyasn1_modules==0.4.2
pycparser==3.12
pycryptodome==3.22.0
pycryptodomex==3.24.2
pyOpenSSL==25.1.0
requests==2.32.5
six==1.17.0
soupsieve==4.1.2
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9"

say() { printf '[interop] %s\n' "$*"; }

# ---------------------------------------------------------------- venv
mkdir -p "$CACHE"
STAMP="$VENV/.certeasy-pins"
if [[ ! -x "$VENV/bin/certipy" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$PINS" ]]; then
  say "installing Certipy/impacket into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  printf '%s\n' "$PINS" > "$CACHE/constraints.txt"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --ignore-requires-python \
    -c "$CACHE/constraints.txt" certipy-ad==5.1.0 impacket==0.13.1
  printf '%s' "$PINS" > "$STAMP"
fi
CERTIPY="$VENV/bin/certipy"

# ---------------------------------------------------------------- lab-adcs
if [[ -n "${LAB_ADCS_BIN:-}" ]]; then
  BIN="$LAB_ADCS_BIN"
else
  say "building lab-adcs"
  (cd "$ROOT" && cargo build --quiet -p lab-adcs)
  BIN="$CARGO_TARGET_DIR/debug/lab-adcs"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/certeasy-interop.XXXXXX")"
LAB_PID=""
LAB2_PID=""
LAB3_PID=""
cleanup() {
  for p in $LAB_PID $LAB2_PID $LAB3_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

sed "s#^  state-dir: .*#  state-dir: $WORK/state#" "$ROOT/examples/lab-adcs.yml" > "$WORK/lab-adcs.yml"
printf 'Passw0rd!\n' > "$WORK/password"

"$BIN" serve -f "$WORK/lab-adcs.yml" --address 127.0.0.1 --epm-port 135 >"$WORK/serve.out" 2>"$WORK/serve.err" &
LAB_PID=$!
for _ in $(seq 1 100); do
  grep -q '^lab-adcs ready:' "$WORK/serve.out" 2>/dev/null && break
  kill -0 "$LAB_PID" 2>/dev/null || { cat "$WORK/serve.err" >&2; say "lab-adcs did not start (port 135 needs root)"; exit 1; }
  sleep 0.1
done
grep -q '^lab-adcs ready:' "$WORK/serve.out" || { say "lab-adcs not ready after 10s"; exit 1; }
say "$(cat "$WORK/serve.out")"

PASS=0
FAIL=0
check() { # name, expected regexp, output file
  if grep -Eq "$2" "$3"; then PASS=$((PASS + 1)); say "PASS $1"
  else FAIL=$((FAIL + 1)); say "FAIL $1 (expected /$2/)"; sed 's/^/    /' "$3"; fi
}

certipy_req() { # output file, extra args...
  local out="$1"; shift
  (cd "$WORK" && printf 'n\n' | timeout 60 "$CERTIPY" req -u alice@CORP -p "${PASS_OVERRIDE:-Passw0rd!}" -ca LAB-CA \
      -target-ip 127.0.0.1 -dc-ip 127.0.0.1 -ns 127.0.0.1 -dynamic-endpoint -timeout 10 "$@") >"$out" 2>&1 || true
}

# 1. issued
certipy_req "$WORK/issued.log" -template WebServer -out issued
check "certipy issued" 'Successfully requested certificate' "$WORK/issued.log"
if [[ -f "$WORK/issued.pfx" ]]; then
  "$VENV/bin/python" - "$WORK/issued.pfx" >"$WORK/issuer.log" 2>&1 <<'PY' || true
import sys
from cryptography.hazmat.primitives.serialization import pkcs12
key, cert, _ = pkcs12.load_key_and_certificates(open(sys.argv[1], "rb").read(), None)
print("issuer:", cert.issuer.rfc4514_string())
PY
  check "certipy certificate issued by LAB-CA" 'issuer: .*CN=LAB-CA' "$WORK/issuer.log"
else
  FAIL=$((FAIL + 1)); say "FAIL certipy wrote no issued.pfx"
fi

# 2. pending -> approve -> retrieve
certipy_req "$WORK/pending.log" -template PendingWebServer
check "certipy pending" 'pending approval' "$WORK/pending.log"
ID="$(sed -n 's/.*Request ID is \([0-9][0-9]*\).*/\1/p' "$WORK/pending.log" | head -1)"
if [[ -n "$ID" ]]; then
  "$BIN" approve -f "$WORK/lab-adcs.yml" "$ID" >"$WORK/approve.log" 2>&1 || true
  check "lab-adcs approve $ID" "request $ID issued" "$WORK/approve.log"
  certipy_req "$WORK/retrieve.log" -retrieve "$ID"
  check "certipy retrieve $ID" 'Successfully retrieved certificate|Wrote certificate' "$WORK/retrieve.log"
else
  FAIL=$((FAIL + 1)); say "FAIL no request id in the pending output"
fi

# 3. denied
certipy_req "$WORK/denied.log" -template DeniedTemplate
check "certipy denied" 'CERTSRV_E_TEMPLATE_DENIED|0x80094012' "$WORK/denied.log"

# 4. wrong password
PASS_OVERRIDE='wrong-password' certipy_req "$WORK/badpw.log" -template WebServer
check "certipy wrong password refused" 'rpc_s_access_denied|ACCESS_DENIED' "$WORK/badpw.log"

# 5. our client binary against the same server, through the endpoint mapper
"$VENV/bin/python" - "$WORK/req.csr" <<'PY'
import sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
csr = (x509.CertificateSigningRequestBuilder()
       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test")]))
       .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.test")]), critical=False)
       .sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(csr.public_bytes(serialization.Encoding.PEM))
PY
"$BIN" request --host 127.0.0.1 --epm-port 135 --domain CORP --user alice --password-file "$WORK/password" \
  --ca LAB-CA --template WebServer --csr "$WORK/req.csr" --auth-level privacy --out "$WORK/ours.pem" \
  >"$WORK/ours.log" 2>&1 || true
check "lab-adcs request (msrpc client) issued" 'Disposition: issued' "$WORK/ours.log"

# 6. impacket at PKT_INTEGRITY (sign only) against a second lab-adcs that
#    requires integrity, on ephemeral ports (fixed ICertPassage port).
sed -e "s#^  state-dir: .*#  state-dir: $WORK/state2#" -e 's#^auth-level: .*#auth-level: integrity#' \
  "$ROOT/examples/lab-adcs.yml" > "$WORK/lab-int.yml"
"$BIN" serve -f "$WORK/lab-int.yml" --address 127.0.0.1 --epm-port 0 --icpr-port 0 >"$WORK/serve2.out" 2>"$WORK/serve2.err" &
LAB2_PID=$!
for _ in $(seq 1 100); do grep -q '^lab-adcs ready:' "$WORK/serve2.out" 2>/dev/null && break; sleep 0.1; done
ICPR2="$(sed -n 's/.* icpr=127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$WORK/serve2.out")"
"$VENV/bin/python" - "$ICPR2" "$WORK/req.csr" >"$WORK/integrity.log" 2>&1 <<'PY' || true
import sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from impacket.dcerpc.v5 import transport, rpcrt
from impacket.dcerpc.v5.nrpc import checkNullString
from impacket.uuid import uuidtup_to_bin
from certipy.lib.req import CertServerRequest, CERTTRANSBLOB
port, csr_path = sys.argv[1], sys.argv[2]
csr = x509.load_pem_x509_csr(open(csr_path, "rb").read()).public_bytes(serialization.Encoding.DER)
t = transport.DCERPCTransportFactory(f"ncacn_ip_tcp:127.0.0.1[{port}]")
t.set_credentials("alice", "Passw0rd!", "CORP")
dce = t.get_dce_rpc()
dce.set_auth_level(rpcrt.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY)
dce.connect()
dce.bind(uuidtup_to_bin(("91ae6020-9e3c-11cf-8d7c-00aa00c091be", "0.0")))
attrs = checkNullString("CertificateTemplate:WebServer").encode("utf-16le")
a = CERTTRANSBLOB(); a["cb"] = len(attrs); a["pb"] = attrs
r = CERTTRANSBLOB(); r["cb"] = len(csr); r["pb"] = csr
req = CertServerRequest()
req["dwFlags"] = 0
req["pwszAuthority"] = checkNullString("LAB-CA")
req["pdwRequestId"] = 0
req["pctbAttribs"] = a
req["pctbRequest"] = r
resp = dce.request(req)
print("integrity disposition", resp["pdwDisposition"], "cert octets", len(b"".join(resp["pctbEncodedCert"]["pb"])))
PY
kill "$LAB2_PID" 2>/dev/null || true; wait "$LAB2_PID" 2>/dev/null || true
check "impacket at packet integrity issued" 'integrity disposition 3 cert octets [1-9]' "$WORK/integrity.log"

# 7. Certipy's DCOM paths (activation on 135, the object exporter's dynamic port)
certipy_ca() { # output file, extra args...
  local out="$1"; shift
  (cd "$WORK" && timeout 60 "$CERTIPY" ca -u alice@CORP -p 'Passw0rd!' -ca LAB-CA \
      -target-ip "${CA_IP:-127.0.0.1}" -dc-ip 127.0.0.1 -ns 127.0.0.1 -timeout 10 "$@") >"$out" 2>&1 || true
}
certipy_dcom_req() { # output file, extra args...
  local out="$1"; shift
  (cd "$WORK" && printf 'n\n' | timeout 60 "$CERTIPY" req -u alice@CORP -p 'Passw0rd!' -ca LAB-CA \
      -target-ip "${CA_IP:-127.0.0.1}" -dc-ip 127.0.0.1 -ns 127.0.0.1 -dcom -timeout 10 "$@") >"$out" 2>&1 || true
}
lab_status() { "$BIN" status -f "${LAB_CONF:-$WORK/lab-adcs.yml}" "$@" 2>&1 || true; }

certipy_ca "$WORK/templates.log" -list-templates
check "certipy ca -list-templates (DCOM)" '^    PendingWebServer$' "$WORK/templates.log"

certipy_dcom_req "$WORK/dcom-issued.log" -template WebServer -out dcomissued
check "certipy req -dcom issued" 'Successfully requested certificate' "$WORK/dcom-issued.log"

certipy_dcom_req "$WORK/dcom-pending.log" -template PendingWebServer
DID="$(sed -n 's/.*Request ID is \([0-9][0-9]*\).*/\1/p' "$WORK/dcom-pending.log" | head -1)"
if [[ -n "$DID" ]]; then
  certipy_ca "$WORK/issue-request.log" -issue-request "$DID"
  check "certipy ca -issue-request $DID (DCOM)" "Successfully issued certificate request ID $DID" "$WORK/issue-request.log"
  lab_status "$DID" >"$WORK/status-issued.log"
  check "lab-adcs status $DID after -issue-request" '^issued$' "$WORK/status-issued.log"
else
  FAIL=$((FAIL + 1)); say "FAIL no request id in the DCOM pending output"; sed 's/^/    /' "$WORK/dcom-pending.log"
fi

certipy_dcom_req "$WORK/dcom-pending2.log" -template PendingWebServer
DID2="$(sed -n 's/.*Request ID is \([0-9][0-9]*\).*/\1/p' "$WORK/dcom-pending2.log" | head -1)"
if [[ -n "$DID2" ]]; then
  certipy_ca "$WORK/deny-request.log" -deny-request "$DID2"
  check "certipy ca -deny-request $DID2 (DCOM)" "Successfully denied certificate request ID $DID2" "$WORK/deny-request.log"
  lab_status "$DID2" >"$WORK/status-denied.log"
  check "lab-adcs status $DID2 after -deny-request" '^denied$' "$WORK/status-denied.log"
else
  FAIL=$((FAIL + 1)); say "FAIL no request id in the second DCOM pending output"; sed 's/^/    /' "$WORK/dcom-pending2.log"
fi

# 8. A CA that refuses ICertPassage (icpr-enabled: false) on 127.0.0.3:135
#    (127.0.0.2 belongs to the lab domain of scripts/lab-domain.sh):
#    Certipy over RPC is refused, Certipy over DCOM issues.
sed -e "s#^  state-dir: .*#  state-dir: $WORK/state3#" "$ROOT/examples/lab-adcs.yml" > "$WORK/lab-noicpr.yml"
printf 'icpr-enabled: false\n' >> "$WORK/lab-noicpr.yml"
"$BIN" serve -f "$WORK/lab-noicpr.yml" --address 127.0.0.3 --epm-port 135 >"$WORK/serve3.out" 2>"$WORK/serve3.err" &
LAB3_PID=$!
for _ in $(seq 1 100); do grep -q '^lab-adcs ready:' "$WORK/serve3.out" 2>/dev/null && break; sleep 0.1; done
if grep -q '^lab-adcs ready:' "$WORK/serve3.out"; then
  (cd "$WORK" && printf 'n\n' | timeout 60 "$CERTIPY" req -u alice@CORP -p 'Passw0rd!' -ca LAB-CA -target-ip 127.0.0.3 \
      -dc-ip 127.0.0.1 -ns 127.0.0.1 -dynamic-endpoint -timeout 10 -template WebServer) >"$WORK/noicpr-rpc.log" 2>&1 || true
  check "certipy req over RPC refused when ICPR is disabled" 'E_ACCESSDENIED|ACCESS_DENIED|0x80070005' "$WORK/noicpr-rpc.log"
  CA_IP=127.0.0.3 certipy_dcom_req "$WORK/noicpr-dcom.log" -template WebServer -out noicpr
  check "certipy req -dcom issued when ICPR is disabled" 'Successfully requested certificate' "$WORK/noicpr-dcom.log"
else
  FAIL=$((FAIL + 1)); say "FAIL lab-adcs (icpr-enabled: false) did not start on 127.0.0.3:135"; sed 's/^/    /' "$WORK/serve3.err"
fi
kill "$LAB3_PID" 2>/dev/null || true; wait "$LAB3_PID" 2>/dev/null || true

say "interop: $PASS passed, $FAIL failed"
echo "interop: $PASS passed, $FAIL failed"
[[ "$FAIL" -eq 0 ]]
