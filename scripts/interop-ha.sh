#!/usr/bin/env bash
# Active/Active on PostgreSQL: three certeasy nodes on one throwaway
# PostgreSQL cluster behind HAProxy (HTTP mode, round-robin per request),
# several ACME clients (certeasy-bench, each client its own account) in
# parallel, one node killed with SIGKILL mid-load and restarted.
#
# Asserts:
#   - every client finishes: all issuances succeed (badNonce answers are
#     retried by the client as RFC 8555 §6.5 allows; their count is shown);
#   - no order is left processing and every finalized order is valid or
#     invalid; no order has two certificates; one certificate per valid order;
#   - the restarted node takes its worker id again, and a second node with
#     a live node's worker id is refused;
#   - account-creation holds across the nodes (one budget, not one per node);
#   - every node's audit chain verifies (`certeasy audit verify`).
#
#   scripts/interop-ha.sh            one run
#   RUNS=5 scripts/interop-ha.sh     five runs in a row
#
# Needs the debug binaries certeasy and certeasy-bench (built here when
# missing), python3, openssl; installs haproxy and postgresql (Debian
# packages) when missing. Everything listens on 127.0.0.1 and stops at the
# end; the last line is "interop-ha: N passed, M failed".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/certeasy-target}"
CERTEASY="${CERTEASY_BIN:-$CARGO_TARGET_DIR/debug/certeasy}"
BENCH="${BENCH_BIN:-$CARGO_TARGET_DIR/debug/certeasy-bench}"
RUNS="${RUNS:-1}"
CLIENTS="${HA_CLIENTS:-6}"
ORDERS="${HA_ORDERS:-12}"

say() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$CERTEASY" ] || [ ! -x "$BENCH" ]; then
  say "cargo build -p certeasy -p certeasy-bench"
  cargo build -q -p certeasy -p certeasy-bench
fi

if ! command -v haproxy >/dev/null 2>&1; then
  say "apt-get install haproxy"
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
  policy_rc=/usr/sbin/policy-rc.d
  own_policy_rc=
  if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy_rc" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy_rc"
    own_policy_rc=1
  fi
  set +e
  "${SUDO[@]}" apt-get update -q >/dev/null &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy >/dev/null
  rc=$?
  set -e
  [ -z "$own_policy_rc" ] || "${SUDO[@]}" rm -f "$policy_rc"
  [ "$rc" -eq 0 ] || { echo "apt-get install haproxy failed (exit $rc)" >&2; exit "$rc"; }
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # wait_port PORT PID: up to 60 s
  local i
  for i in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

PASSED=0
FAILED=0
check() { # check NAME COMMAND...: one assertion
  local name="$1"; shift
  if "$@"; then
    PASSED=$((PASSED + 1)); echo "ok   $name"
  else
    FAILED=$((FAILED + 1)); echo "FAIL $name"
  fi
}

one_run() {
  local run="$1"
  local W
  W="$(mktemp -d /var/tmp/certeasy-ha.XXXXXX)"
  # The PostgreSQL server runs as the postgres user: it must reach $W/pg.
  chmod 711 "$W"
  local PIDS=() HAPROXY_PID="" BENCH_PID=""
  # (errexit does not apply inside a function called with ||: each setup
  # step that must work returns 1 itself.)
  # shellcheck disable=SC2317
  cleanup_run() {
    [ -z "$BENCH_PID" ] || kill "$BENCH_PID" 2>/dev/null || true
    [ -z "$HAPROXY_PID" ] || { kill "$HAPROXY_PID" 2>/dev/null || true; wait "$HAPROXY_PID" 2>/dev/null || true; }
    local p
    for p in "${PIDS[@]}"; do
      [ -z "$p" ] || { kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
    done
    bash "$ROOT/scripts/pg-cluster.sh" stop "$W/pg" || true
    if [ -n "${HA_KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
  }
  trap cleanup_run RETURN

  say "run $run: PostgreSQL"
  local DSN
  DSN="$(PG_FAST=1 bash "$ROOT/scripts/pg-cluster.sh" start "$W/pg")" || return 1
  psql() { command psql "$DSN" -v ON_ERROR_STOP=1 -Atq "$@"; }
  q() { psql -c "SET search_path = certeasy; $1" | tail -n 1; }

  local LB HTTP DNS P
  LB=$(free_port); HTTP=$(free_port); DNS=$(free_port)
  P=("" "$(free_port)" "$(free_port)" "$(free_port)")

  # node_config N: node N's configuration (own workdir, own port, own
  # worker id; one database, one URL: the balancer's).
  node_config() {
    local n="$1" wd="$W/n$1"
    mkdir -p "$wd"
    cat >"$wd/config.yml" <<YML
workdir: "$wd/work"
server:
  url: ["https://localhost:$LB"]
  listen: "127.0.0.1:${P[$n]}"
tls-certificate-manager:
  bundles:
    - name: listener
      mode: pki
      authority: builtin
dns-validation-profiles:
  - name: ha
    timeout: 5s
    zones:
      - suffixes: [bench.test]
        dns-server: ["127.0.0.1:$DNS"]
    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8"]
    http-01-port: $HTTP
authorities:
  - name: builtin
    type: builtin
    configuration:
      common-name: "certeasy HA test CA"
      key-type: ecdsa-p256
      password: "ha-test-only-not-a-secret"
issuance-policies:
  - name: ha
    dns:
      allow: [".bench.test/3"]
    signature:
      min-rsa-bits: 2048
database:
  type: postgres
  dsn: "$DSN"
  sslmode: disable
  schema: certeasy
  pool-size: 8
workers:
  workers: 2
  worker-id: node-$n
  lease: 3s
  idle-max: 1s
rate-limiting:
  global: {requests-per-minute: 600000000, burst: 1000000}
  account-creation: {per-ip-per-hour: 1, burst: $((CLIENTS + 4))}
  order-creation: {orders-per-account-per-hour: 600000000, order-burst: 1000000, san-budget-per-account-per-hour: 600000000}
logs:
  level: warn
YML
  }
  start_node() { # start_node N
    local n="$1"
    "$CERTEASY" serve -f "$W/n$n/config.yml" >>"$W/n$n/server.log" 2>&1 &
    PIDS[n]=$!
    wait_port "${P[$n]}" "${PIDS[$n]}" || { tail -20 "$W/n$n/server.log" >&2; return 1; }
  }

  say "run $run: node 1 (creates the schema and the built-in CA)"
  node_config 1
  start_node 1 || return 1
  for _ in $(seq 1 100); do [ -s "$W/n1/work/ca/root.pem" ] && break; sleep 0.1; done
  [ -s "$W/n1/work/ca/root.pem" ] || { echo "node 1 wrote no ca/root.pem" >&2; return 1; }
  # The nodes share the CA (its encrypted key files), not their workdirs:
  # each keeps its own installation id, and so its own audit chain.
  for n in 2 3; do
    node_config "$n"
    mkdir -p "$W/n$n/work"; chmod 700 "$W/n$n/work"
    cp -a "$W/n1/work/ca" "$W/n$n/work/ca"
    start_node "$n" || return 1
  done

  # A node with a live node's worker id is refused.
  mkdir -p "$W/dup"
  sed -e "s#$W/n2/work#$W/dup/work#" -e "s#127.0.0.1:${P[2]}#127.0.0.1:$(free_port)#" "$W/n2/config.yml" >"$W/dup/config.yml"
  mkdir -p "$W/dup/work"; chmod 700 "$W/dup/work"; cp -a "$W/n1/work/ca" "$W/dup/work/ca"
  local dup_rc=0
  timeout 60 "$CERTEASY" serve -f "$W/dup/config.yml" >"$W/dup/server.log" 2>&1 || dup_rc=$?
  check "run $run: a second node with worker id node-2 is refused" \
    bash -c "[ $dup_rc -ne 0 ] && grep -q 'held by a live node' '$W/dup/server.log'"

  # The balancer: TLS in front, TLS to each node (checked against the
  # built-in root), one request at a time to the next node.
  # Its certificate: a throwaway CA (what the clients trust) and a leaf.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=certeasy HA test balancer CA" -keyout "$W/lb-ca.key" -out "$W/lb-ca.crt" >/dev/null 2>&1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$W/lb.key" -out "$W/lb.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$W/lb.ext"
  openssl x509 -req -in "$W/lb.csr" -CA "$W/lb-ca.crt" -CAkey "$W/lb-ca.key" -CAcreateserial \
    -days 2 -extfile "$W/lb.ext" -out "$W/lb.crt" >/dev/null 2>&1
  cat "$W/lb.crt" "$W/lb.key" >"$W/lb.pem"
  cat >"$W/haproxy.cfg" <<CFG
global
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 30s
  retries 3
  option redispatch 1
  # A request whose node died before answering is sent to another node:
  # a POST that had committed comes back as badNonce (its nonce is used),
  # which the client retries with a fresh nonce.
  retry-on conn-failure empty-response junk-response response-timeout 502 503
frontend acme
  bind 127.0.0.1:$LB ssl crt $W/lb.pem
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server ssl verify required ca-file $W/n1/work/ca/root.pem verifyhost localhost sni str(localhost) check inter 300ms fall 1 rise 2
  server n1 127.0.0.1:${P[1]}
  server n2 127.0.0.1:${P[2]}
  server n3 127.0.0.1:${P[3]}
CFG
  haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  wait_port "$LB" "$HAPROXY_PID" || { cat "$W/haproxy.log" >&2; return 1; }

  say "run $run: $CLIENTS clients x $ORDERS issuances through HAProxy; node 2 killed mid-load"
  "$BENCH" run --directory "https://localhost:$LB/acme/directory" --ca-root "$W/lb-ca.crt" \
    --clients "$CLIENTS" --orders-per-client "$ORDERS" --sans 1..2 --poll-interval 20ms \
    --http01-listen "127.0.0.1:$HTTP" --dns-listen "127.0.0.1:$DNS" --issuance-timeout 60s \
    --json >"$W/bench.json" 2>"$W/bench.log" &
  BENCH_PID=$!
  local total=$((CLIENTS * ORDERS)) i
  # Kill once a quarter of the certificates are issued, restart at half.
  for i in $(seq 1 1200); do
    [ "$(q 'SELECT count(*) FROM certificates' 2>/dev/null || echo 0)" -ge $((total / 4)) ] && break
    kill -0 "$BENCH_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "run $run: SIGKILL node 2 at $(q 'SELECT count(*) FROM certificates') certificates"
  kill -KILL "${PIDS[2]}"; wait "${PIDS[2]}" 2>/dev/null || true
  for i in $(seq 1 1200); do
    [ "$(q 'SELECT count(*) FROM certificates')" -ge $((total / 2)) ] && break
    kill -0 "$BENCH_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "run $run: restart node 2 (same worker id) at $(q 'SELECT count(*) FROM certificates') certificates"
  check "run $run: the killed node restarts with its worker id" start_node 2
  # The pki listener certificate: obtained once (one row), served by all.
  local fps=() n
  for n in 1 2 3; do
    fps+=("$(openssl s_client -connect "127.0.0.1:${P[$n]}" -servername localhost </dev/null 2>/dev/null \
      | openssl x509 -noout -fingerprint -sha256 2>/dev/null)")
  done
  echo "  listener certificates: ${fps[*]}" >&2
  check "run $run: every node serves the one listener certificate" \
    [ -n "${fps[0]}" -a "${fps[0]}" = "${fps[1]}" -a "${fps[0]}" = "${fps[2]}" ]
  check "run $run: the listener certificate was obtained once, by node 1" \
    [ "$(q "SELECT count(*) || ' ' || min(issued_by) FROM listener_certificates")" = "1 node-1" ]
  local bench_rc=0
  wait "$BENCH_PID" || bench_rc=$?
  BENCH_PID=""
  python3 - "$W/bench.json" <<'PY' >&2 || true
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  bench: issued {r['issued']}, failures {r['failures']}, badNonce retries {r.get('bad_nonces', '?')}, "
      f"{r['issuances_per_s']:.1f}/s; first errors: {r['first_errors'][:3]}")
PY
  check "run $run: every client finished every issuance (exit $bench_rc)" [ "$bench_rc" -eq 0 ]

  # The jobs of the killed node are taken over when their leases run out.
  for i in $(seq 1 600); do
    [ "$(q 'SELECT count(*) FROM jobs')" -eq 0 ] && break
    sleep 0.1
  done
  check "run $run: no job left" [ "$(q 'SELECT count(*) FROM jobs')" -eq 0 ]
  check "run $run: no order left processing" [ "$(q "SELECT count(*) FROM orders WHERE status = 'processing'")" -eq 0 ]
  check "run $run: every finalized order is valid or invalid" \
    [ "$(q "SELECT count(*) FROM orders WHERE csr IS NOT NULL AND status NOT IN ('valid', 'invalid')")" -eq 0 ]
  check "run $run: no order has two certificates" \
    [ "$(q 'SELECT count(*) FROM (SELECT order_id FROM certificates GROUP BY order_id HAVING count(*) > 1) x')" -eq 0 ]
  check "run $run: one certificate per valid order" \
    [ "$(q "SELECT count(*) FROM orders WHERE status = 'valid'")" -eq "$(q 'SELECT count(*) FROM certificates')" ]
  check "run $run: at least every client's issuances are certificates" \
    [ "$(q 'SELECT count(*) FROM certificates')" -ge "$total" ]

  # account-creation: burst CLIENTS+4 for the whole cluster. The load used
  # CLIENTS accounts; of 9 more clients, 4 get one and 5 are refused —
  # per-node buckets would have let all 9 through.
  say "run $run: account-creation across the nodes"
  local before after
  before=$(q 'SELECT count(*) FROM accounts')
  "$BENCH" run --directory "https://localhost:$LB/acme/directory" --ca-root "$W/lb-ca.crt" \
    --clients 9 --orders-per-client 1 --http01-listen "127.0.0.1:$HTTP" --dns-listen "127.0.0.1:$DNS" \
    --issuance-timeout 30s --json >"$W/bench-limit.json" 2>"$W/bench-limit.log" || true
  after=$(q 'SELECT count(*) FROM accounts')
  echo "  accounts: $before before, $after after (cluster budget $((CLIENTS + 4)))" >&2
  check "run $run: account-creation holds across nodes" [ "$after" -eq $((CLIENTS + 4)) ]
  check "run $run: refusals are rateLimited" grep -q "rateLimited rate-limiting.account-creation" "$W/bench-limit.log"

  # Stop the nodes (SIGTERM: drain), then verify each node's chain.
  local n
  for n in 1 2 3; do
    kill -TERM "${PIDS[$n]}" 2>/dev/null || true
    wait "${PIDS[$n]}" 2>/dev/null || true
    PIDS[n]=""
  done
  local chains
  chains=$(q 'SELECT count(*) FROM audit_chains')
  check "run $run: three audit chains, one per node" [ "$chains" -eq 3 ]
  for n in 1 2 3; do
    check "run $run: node $n audit chain verifies" "$CERTEASY" audit verify -f "$W/n$n/config.yml"
  done
}

for run in $(seq 1 "$RUNS"); do
  one_run "$run" || { FAILED=$((FAILED + 1)); echo "FAIL run $run: setup failed"; }
done
echo "interop-ha: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
