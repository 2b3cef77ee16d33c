#!/usr/bin/env bash
# certeasy benchmark: complete ACME issuances against certeasy and Pebble on
# this machine, then against certeasy holding 1,000,000 certificates.
#
#   scripts/bench.sh            full run (about 25 minutes), rewrites the
#                               generated part of docs/performance.md
#   scripts/bench.sh --smoke    a few issuances at 1 client against certeasy
#                               only; exit non-zero on any failure
#   scripts/bench.sh --adcs     issuances through certeasy → lab-adcs (the
#                               native ADCS bridge); prints a table with
#                               lab-adcs's CPU per issuance
#   scripts/bench.sh --postgres certeasy on PostgreSQL (a throwaway cluster,
#                               scripts/pg-cluster.sh): one node, then two
#                               nodes behind HAProxy (round-robin per
#                               request), against SQLite; prints a table
#                               with the CPU per issuance of each node and
#                               of PostgreSQL
#
# Environment (defaults in brackets):
#   CARGO_TARGET_DIR   [/var/tmp/certeasy-target]
#   BENCH_PROFILE      cargo profile of the binaries: release | debug
#                      [release; debug for --smoke, which then reuses the
#                      workspace build of scripts/test.sh without building]
#   CLIENTS            client counts                       ["1 4 8 16"]
#   LARGE_CLIENTS      client counts on the 1M database    ["1 8 16"]
#   DURATION           length of one measured run          [15s]
#   REPS               repetitions per point (median kept) [3]
#   POLL               order poll interval                 [2ms]
#   SEED_CERTS         certificates of the large run       [1000000]
#   SEED_ACCOUNTS      accounts of the large run           [1000]
#   SKIP_PEBBLE=1, SKIP_LARGE=1  leave those parts out
#   BENCH_CACHE        keeps the seeded database between runs
#                      [/var/tmp/certeasy-cache/bench]
#   BENCH_KEEP=1       keep the temporary workdir
#   BENCH_BIN_DIR      use the certeasy and certeasy-bench binaries of this
#                      directory and build nothing (e.g. to measure a
#                      snapshot of another commit)
#   BENCH_AUDIT_LIMITS on | off | audit | limits: the audit log and the rate limits (on by
#                      default, as in production; limits raised so that
#                      they count but never refuse the benchmark)   [on]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
ADCS=0
[ "${1:-}" = "--adcs" ] && ADCS=1
PG=0
[ "${1:-}" = "--postgres" ] && PG=1

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/certeasy-target}"
if [ "$SMOKE" = 1 ]; then PROFILE="${BENCH_PROFILE:-debug}"; else PROFILE="${BENCH_PROFILE:-release}"; fi
CLIENTS="${CLIENTS:-1 4 8 16}"
LARGE_CLIENTS="${LARGE_CLIENTS:-1 8 16}"
DURATION="${DURATION:-15s}"
REPS="${REPS:-3}"
POLL="${POLL:-2ms}"
SEED_CERTS="${SEED_CERTS:-1000000}"
SEED_ACCOUNTS="${SEED_ACCOUNTS:-1000}"
BENCH_CACHE="${BENCH_CACHE:-/var/tmp/certeasy-cache/bench}"
CE_PORT="${CE_PORT:-14443}"
PEBBLE_PORT="${PEBBLE_PORT:-14000}"
PEBBLE_MGMT_PORT="${PEBBLE_MGMT_PORT:-15000}"
DNS_PORT="${DNS_PORT:-5053}"
HTTP_PORT="${HTTP_PORT:-5002}"

BIN="${BENCH_BIN_DIR:-$CARGO_TARGET_DIR/$PROFILE}"
CERTEASY="$BIN/certeasy"
BENCH="$BIN/certeasy-bench"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d /var/tmp/certeasy-bench.XXXXXX)"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
SERVER_PID=""
LAB_PID=""
EXTRA_PIDS=()
PG_CLUSTER=""
cleanup() {
    [ -z "$LAB_PID" ] || { kill "$LAB_PID" 2>/dev/null || true; wait "$LAB_PID" 2>/dev/null || true; }
    local p
    for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ -z "$PG_CLUSTER" ] || bash "$ROOT/scripts/pg-cluster.sh" stop "$PG_CLUSTER" || true
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- build ---------------------------------------------------------------
if [ -n "${BENCH_BIN_DIR:-}" ]; then
    say "using the binaries of $BENCH_BIN_DIR (no build)"
elif [ "$PROFILE" = release ]; then
    say "cargo build --release -p certeasy -p certeasy-bench"
    cargo build --release -q -p certeasy -p certeasy-bench
elif [ ! -x "$CERTEASY" ] || [ ! -x "$BENCH" ]; then
    say "cargo build -p certeasy -p certeasy-bench"
    cargo build -q -p certeasy -p certeasy-bench
fi
[ -x "$CERTEASY" ] && [ -x "$BENCH" ] || die "binaries missing in $BIN"

# ---- certeasy --------------------------------------------------------------
# write_config WORKDIR: the bench configuration (built-in P-256 CA, SQLite
# file with the default durability: WAL + synchronous=NORMAL).
write_config() {
    local wd="$1"
    mkdir -p "$wd"
    cat >"$wd/config.yml" <<EOF
workdir: "$wd/work"
server:
  url: ["https://localhost:$CE_PORT"]
  listen: "127.0.0.1:$CE_PORT"
tls-certificate-manager:
  bundles:
    - name: listener
      mode: pki
      authority: builtin
dns-validation-profiles:
  - name: bench
    timeout: 5s
    zones:
      - suffixes: [bench.test]
        dns-server: ["127.0.0.1:$DNS_PORT"]
    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8"]
    http-01-port: $HTTP_PORT
authorities:
  - name: builtin
    type: builtin
    configuration:
      common-name: "certeasy bench CA"
      key-type: ecdsa-p256
      password: "bench-only-not-a-secret"
issuance-policies:
  - name: bench
    dns:
      allow: [".bench.test/3"]
    signature:
      min-rsa-bits: 2048
database:
  type: sqlite
  path: "$wd/work/db.sqlite"
workers:
  workers: 4
logs:
  level: warn
EOF
    # The audit log and every rate limit stay on, as by default: the bench
    # measures their cost. The limits counted per request and per account
    # are raised so that the benchmark's one address and few accounts are
    # counted but never refused. BENCH_AUDIT_LIMITS=off switches both off
    # (the baseline of docs/performance.md's cost figure).
    # BENCH_AUDIT_LIMITS=audit or =limits keeps only that one on (to
    # tell their costs apart).
    local mode="${BENCH_AUDIT_LIMITS:-on}"
    case "$mode" in
        on | off | audit | limits) ;;
        *) die "BENCH_AUDIT_LIMITS must be on, off, audit or limits (got $mode)" ;;
    esac
    if [ "$mode" = off ] || [ "$mode" = limits ]; then
        cat >>"$wd/config.yml" <<EOF
audit:
  enabled: false
EOF
    fi
    if [ "$mode" = off ] || [ "$mode" = audit ]; then
        cat >>"$wd/config.yml" <<EOF
rate-limiting:
  global: {enabled: false}
  account-creation: {enabled: false}
  order-creation: {enabled: false}
  duplicate-certificate: {enabled: false}
  failed-validation: {enabled: false}
  pending-authorizations: {enabled: false}
EOF
    else
        cat >>"$wd/config.yml" <<EOF
rate-limiting:
  global: {requests-per-minute: 600000000, burst: 1000000}
  order-creation: {orders-per-account-per-hour: 600000000, order-burst: 1000000, san-budget-per-account-per-hour: 600000000}
EOF
    fi
}

wait_port() { # wait_port PORT PID: up to 30 s
    local i
    for i in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_certeasy() { # start_certeasy WORKDIR
    local wd="$1"
    "$CERTEASY" serve -f "$wd/config.yml" >"$wd/server.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$CE_PORT" "$SERVER_PID" || { cat "$wd/server.log" >&2; die "certeasy did not start"; }
    for _ in $(seq 1 100); do [ -s "$wd/work/ca/root.pem" ] && break; sleep 0.1; done
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# bench LABEL CLIENTS TRUST... : one measured run, JSON appended to $RESULTS
bench() {
    local label="$1" clients="$2"; shift 2
    local out
    out="$("$BENCH" run --label "$label" --clients "$clients" --duration "$DURATION" \
        --poll-interval "$POLL" --http01-listen "127.0.0.1:$HTTP_PORT" \
        --dns-listen "127.0.0.1:$DNS_PORT" --server-pid "$SERVER_PID" --json "$@")" || true
    if [ -z "$out" ]; then
        say "$label at $clients clients: the run produced no report (server hung?)"
        echo "{\"label\": \"$label\", \"clients\": $clients}" >>"$WORK/no-report.jsonl"
        return 0
    fi
    echo "$out" >>"$RESULTS"
    echo "$out" | python3 -c 'import json,sys
r = json.load(sys.stdin); t = r["latency"][0]; e = r["first_errors"]
print("  %-12s c=%-3d %8.1f/s  p50 %6.1f ms  p99 %7.1f ms  server %6.2f ms/iss  client %5.2f ms/iss  rss %5.1f MiB  fail %d%s" % (
    r["label"], r["clients"], r["issuances_per_s"], t["p50_ms"], t["p99_ms"], r["server_cpu_ms_per_issuance"] or 0,
    r["client_cpu_ms_per_issuance"], r["server_peak_rss_mib"] or 0, r["failures"], ("  first error: " + e[0]) if e else ""))' >&2
}

# series LABEL "COUNTS" TRUST... : REPS runs per client count
series() {
    local label="$1" counts="$2"; shift 2
    local c rep
    for c in $counts; do
        for rep in $(seq 1 "$REPS"); do bench "$label" "$c" "$@"; done
    done
}

# ---- PostgreSQL target (--postgres) -------------------------------------------
# SQLite, then PostgreSQL with one node, then two nodes behind HAProxy, all
# on this machine (the database server, the nodes, the balancer and the
# load generator share its cores). The CPU of each process is read from
# /proc before and after each run. Prints the table; docs/performance.md's
# PostgreSQL section is written by hand with the commit measured.
if [ "$PG" = 1 ]; then
    command -v haproxy >/dev/null 2>&1 || die "haproxy is not installed (scripts/interop-ha.sh installs it)"
    chmod 711 "$WORK"
    PG_CLUSTER="$WORK/pg"
    DSN="$(bash "$ROOT/scripts/pg-cluster.sh" start "$PG_CLUSTER")" || die "PostgreSQL did not start"
    POSTMASTER="$(head -n 1 "$PG_CLUSTER/data/postmaster.pid")"
    TCK="$(getconf CLK_TCK)"
    ticks() { # ticks PID...: utime+stime of the processes
        local t=0 p
        for p in "$@"; do
            [ -r "/proc/$p/stat" ] || continue
            t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
        done
        echo "$t"
    }
    pg_pids() { echo "$POSTMASTER $(pgrep -P "$POSTMASTER" | tr '\n' ' ')"; }
    to_postgres() { # to_postgres WORKDIR SCHEMA PORT WORKER
        python3 - "$1/config.yml" "$DSN" "$2" "$3" "$4" "$CE_PORT" <<'PY'
import sys
p, dsn, schema, port, worker, default_port = sys.argv[1:7]
s = open(p).read()
head, tail = s.split("database:\n", 1)
tail = tail.split("workers:\n", 1)[1]
s = (head + f'database:\n  type: postgres\n  dsn: "{dsn}"\n  sslmode: disable\n  schema: {schema}\n  pool-size: 16\n'
     + f"workers:\n  worker-id: {worker}\n" + tail)
s = s.replace(f'listen: "127.0.0.1:{default_port}"', f'listen: "127.0.0.1:{port}"', 1)
open(p, "w").write(s)
PY
    }
    # pg_run LABEL CLIENTS "NODE PIDS" TRUST...: one measured run with the CPU
    # of every node and of PostgreSQL per issuance added to its JSON.
    pg_run() {
        local label="$1" clients="$2" nodes="$3"; shift 3
        local starts p0 out
        starts="$(for p in $nodes; do ticks "$p"; done | tr '\n' ' ')"; p0=$(ticks $(pg_pids))
        out="$("$BENCH" run --label "$label" --clients "$clients" --duration "$DURATION" \
            --poll-interval "$POLL" --http01-listen "127.0.0.1:$HTTP_PORT" \
            --dns-listen "127.0.0.1:$DNS_PORT" --json "$@")" || true
        [ -n "$out" ] || { say "$label c=$clients: no report"; return 0; }
        local ends p1
        ends="$(for p in $nodes; do ticks "$p"; done | tr '\n' ' ')"; p1=$(ticks $(pg_pids))
        echo "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin)
tck, p0, p1 = (int(x) for x in sys.argv[1:4])
starts = [int(x) for x in sys.argv[4].split()]
ends = [int(x) for x in sys.argv[5].split()]
iss = max(r["issued"], 1)
r["node_cpu_ms_per_issuance"] = [round((e - s) * 1000 / tck / iss, 2) for s, e in zip(starts, ends)]
r["postgres_cpu_ms_per_issuance"] = round((p1 - p0) * 1000 / tck / iss, 2)
print(json.dumps(r))' "$TCK" "$p0" "$p1" "$starts" "$ends" >>"$RESULTS"
        tail -n 1 "$RESULTS" | python3 -c 'import json,sys
r = json.load(sys.stdin)
print("  %-14s c=%-3d %7.1f/s  p50 %6.1f ms  p99 %7.1f ms  nodes %s ms/iss  postgres %s ms/iss  fail %d" % (r["label"], r["clients"], r["issuances_per_s"], r["latency"][0]["p50_ms"], r["latency"][0]["p99_ms"], r["node_cpu_ms_per_issuance"], r["postgres_cpu_ms_per_issuance"], r["failures"]))' >&2
    }
    pg_series() { # pg_series LABEL "NODE PIDS" TRUST...
        local label="$1" nodes="$2" c rep; shift 2
        for c in $CLIENTS; do for rep in $(seq 1 "$REPS"); do pg_run "$label" "$c" "$nodes" "$@"; done; done
    }
    # SQLite, the reference.
    write_config "$WORK/sqlite"
    start_certeasy "$WORK/sqlite"
    TRUST=(--directory "https://localhost:$CE_PORT/acme/directory" --ca-root "$WORK/sqlite/work/ca/root.pem")
    "$BENCH" run "${TRUST[@]}" --clients 4 --orders-per-client 25 --json \
        --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
    say "SQLite, 1 node: clients $CLIENTS, $DURATION x $REPS"
    pg_series sqlite "$SERVER_PID" "${TRUST[@]}"
    stop_server
    # PostgreSQL, one node.
    write_config "$WORK/pg1"
    to_postgres "$WORK/pg1" bench_one "$CE_PORT" one
    start_certeasy "$WORK/pg1"
    TRUST=(--directory "https://localhost:$CE_PORT/acme/directory" --ca-root "$WORK/pg1/work/ca/root.pem")
    "$BENCH" run "${TRUST[@]}" --clients 4 --orders-per-client 25 --json \
        --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
    say "PostgreSQL, 1 node: clients $CLIENTS, $DURATION x $REPS"
    pg_series postgres-1 "$SERVER_PID" "${TRUST[@]}"
    stop_server
    # PostgreSQL, two nodes behind HAProxy (the clients see only the
    # balancer's URL).
    A_PORT=$((CE_PORT + 1)); B_PORT=$((CE_PORT + 2))
    for n in a b; do
        write_config "$WORK/pg-$n"
        port=$A_PORT; [ "$n" = b ] && port=$B_PORT
        to_postgres "$WORK/pg-$n" bench_two "$port" "node-$n"
    done
    "$CERTEASY" serve -f "$WORK/pg-a/config.yml" >"$WORK/pg-a/server.log" 2>&1 &
    A_PID=$!; EXTRA_PIDS+=("$A_PID")
    wait_port "$A_PORT" "$A_PID" || { cat "$WORK/pg-a/server.log" >&2; die "node a did not start"; }
    for _ in $(seq 1 100); do [ -s "$WORK/pg-a/work/ca/root.pem" ] && break; sleep 0.1; done
    mkdir -p "$WORK/pg-b/work"; chmod 700 "$WORK/pg-b/work"; cp -a "$WORK/pg-a/work/ca" "$WORK/pg-b/work/ca"
    "$CERTEASY" serve -f "$WORK/pg-b/config.yml" >"$WORK/pg-b/server.log" 2>&1 &
    B_PID=$!; EXTRA_PIDS+=("$B_PID")
    wait_port "$B_PORT" "$B_PID" || { cat "$WORK/pg-b/server.log" >&2; die "node b did not start"; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=bench balancer CA" -keyout "$WORK/lb-ca.key" -out "$WORK/lb-ca.crt" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout "$WORK/lb.key" -out "$WORK/lb.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WORK/lb.ext"
    openssl x509 -req -in "$WORK/lb.csr" -CA "$WORK/lb-ca.crt" -CAkey "$WORK/lb-ca.key" -CAcreateserial \
        -days 2 -extfile "$WORK/lb.ext" -out "$WORK/lb.crt" >/dev/null 2>&1
    cat "$WORK/lb.crt" "$WORK/lb.key" >"$WORK/lb.pem"
    cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 30s
frontend acme
  bind 127.0.0.1:$CE_PORT ssl crt $WORK/lb.pem
  default_backend nodes
backend nodes
  balance roundrobin
  default-server ssl verify required ca-file $WORK/pg-a/work/ca/root.pem verifyhost localhost sni str(localhost)
  server a 127.0.0.1:$A_PORT
  server b 127.0.0.1:$B_PORT
CFG
    haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
    HA_PID=$!; EXTRA_PIDS+=("$HA_PID")
    wait_port "$CE_PORT" "$HA_PID" || { cat "$WORK/haproxy.log" >&2; die "haproxy did not start"; }
    TRUST=(--directory "https://localhost:$CE_PORT/acme/directory" --ca-root "$WORK/lb-ca.crt")
    "$BENCH" run "${TRUST[@]}" --clients 4 --orders-per-client 25 --json \
        --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
    say "PostgreSQL, 2 nodes behind HAProxy: clients $CLIENTS, $DURATION x $REPS (HAProxy CPU not counted)"
    pg_series postgres-2 "$A_PID $B_PID" "${TRUST[@]}"
    python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows: by.setdefault((r["label"], r["clients"]), []).append(r)
print("| setup | clients | issuances/s | p50 ms | p99 ms | CPU ms/issuance per node | PostgreSQL CPU ms/issuance | failures |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
order = ["sqlite", "postgres-1", "postgres-2"]
for (label, c), rs in sorted(by.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
    m = lambda f: statistics.median([f(r) for r in rs])
    nodes = " + ".join(f"{statistics.median([r['node_cpu_ms_per_issuance'][i] for r in rs]):.2f}" for i in range(len(rs[0]["node_cpu_ms_per_issuance"])))
    pg = "–" if label == "sqlite" else f"{m(lambda r: r['postgres_cpu_ms_per_issuance']):.2f}"
    print(f"| {label} | {c} | {m(lambda r: r['issuances_per_s']):.1f} | {m(lambda r: r['latency'][0]['p50_ms']):.1f} | {m(lambda r: r['latency'][0]['p99_ms']):.1f} | {nodes} | {pg} | {sum(r['failures'] for r in rs)} |")
PY
    exit 0
fi

# ---- ADCS target (--adcs) ----------------------------------------------------
# certeasy → lab-adcs over the native bridge (DCE/RPC, NTLM at packet
# privacy); "server CPU" is lab-adcs's. Prints the table and leaves
# docs/performance.md alone (the ADCS figures there are written by hand
# with the commit measured).
if [ "$ADCS" = 1 ]; then
    LAB_ADCS="${LAB_ADCS_BIN:-$BIN/lab-adcs}"
    if [ ! -x "$LAB_ADCS" ] || [ -z "${BENCH_BIN_DIR:-}" ]; then
        cargo build $([ "$PROFILE" = release ] && echo --release) -q -p lab-adcs
    fi
    [ -x "$LAB_ADCS" ] || die "lab-adcs missing in $BIN"
    AD="$WORK/adcs"
    mkdir -p "$AD"
    sed "s#^  state-dir: .*#  state-dir: $AD/state#" "$ROOT/examples/lab-adcs.yml" >"$AD/lab-adcs.yml"
    LAB_ADCS_LOG="warn,msrpc::server=info" "$LAB_ADCS" serve -f "$AD/lab-adcs.yml" --address 127.0.0.1 --epm-port 0 >"$AD/ready.txt" 2>"$AD/lab-adcs.log" &
    LAB_PID=$!
    for _ in $(seq 1 100); do grep -q '^lab-adcs ready:' "$AD/ready.txt" 2>/dev/null && break; sleep 0.1; done
    EPM="$(sed -n 's/.* epm=127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$AD/ready.txt")"
    [ -n "$EPM" ] || die "lab-adcs did not start: $(cat "$AD/lab-adcs.log")"
    printf 'Passw0rd!\n' >"$AD/password"; chmod 600 "$AD/password"
    write_config "$AD"
    python3 - "$AD/config.yml" "$EPM" "$AD/password" <<'PY'
import sys
p, epm, pw = sys.argv[1:4]
s = open(p).read()
s = s.replace("issuance-policies:", f"""  - name: lab
    type: adcs
    configuration:
      ca-name: '127.0.0.1\\\\LAB-CA'
      certificate-template: WebServer
      endpoint-mapper-port: {epm}
      request-timeout: 10s
      auth:
        method: ntlm
        domain: CORP
        username: alice
        password-file: "{pw}"
issuance-policies:""", 1)
s = s.replace("database:", "policy-bindings:\n  - policy: bench\n    authorities: [lab]\ndatabase:", 1)
open(p, "w").write(s)
PY
    start_certeasy "$AD"
    CE_PID="$SERVER_PID"
    for _ in $(seq 1 100); do [ -s "$AD/work/ca/builtin/root.pem" ] && break; sleep 0.1; done
    AD_TRUST=(--directory "https://localhost:$CE_PORT/acme/directory" --ca-root "$AD/work/ca/builtin/root.pem")
    say "adcs: warm-up"
    "$BENCH" run "${AD_TRUST[@]}" --clients 4 --orders-per-client 10 --json \
        --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
    say "certeasy → lab-adcs: clients $CLIENTS, $DURATION x $REPS (server CPU = lab-adcs)"
    SERVER_PID="$LAB_PID"
    series adcs "$CLIENTS" "${AD_TRUST[@]}"
    SERVER_PID="$CE_PID"
    stop_server
    kill "$LAB_PID" 2>/dev/null || true; wait "$LAB_PID" 2>/dev/null || true
    logons="$(grep -c 'authenticated' "$AD/lab-adcs.log" || true)"
    requests="$(LAB_ADCS_LOG=error "$LAB_ADCS" list -f "$AD/lab-adcs.yml" 2>/dev/null | grep -c . || true)"
    say "lab-adcs: $requests requests, $logons authentications (NTLM binds)"
    python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows: by.setdefault(r["clients"], []).append(r)
print("| clients | issuances/s | p50 ms | lab-adcs CPU ms/issuance | failures |")
print("|---:|---:|---:|---:|---:|")
for c, rs in sorted(by.items()):
    m = lambda f: statistics.median([f(r) for r in rs if f(r) is not None] or [float("nan")])
    print(f"| {c} | {m(lambda r: r['issuances_per_s']):.1f} | {m(lambda r: r['latency'][0]['p50_ms']):.1f} | {m(lambda r: r['server_cpu_ms_per_issuance']):.2f} | {sum(r['failures'] for r in rs)} |")
PY
    exit 0
fi

CE_WD="$WORK/certeasy"
write_config "$CE_WD"
start_certeasy "$CE_WD"
CE_DIR="https://localhost:$CE_PORT/acme/directory"
CE_TRUST=(--directory "$CE_DIR" --ca-root "$CE_WD/work/ca/root.pem")

if [ "$SMOKE" = 1 ]; then
    say "smoke: 5 issuances at 1 client against certeasy ($PROFILE build)"
    "$BENCH" run "${CE_TRUST[@]}" --clients 1 --orders-per-client 5 --sans 1..2 \
        --poll-interval 5ms --http01-listen "127.0.0.1:$HTTP_PORT" \
        --dns-listen "127.0.0.1:$DNS_PORT" --server-pid "$SERVER_PID" --issuance-timeout 20s \
        || { tail -20 "$CE_WD/server.log" >&2; die "smoke bench failed"; }
    say "smoke: ok"
    exit 0
fi

say "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
say "certeasy: warm-up"
"$BENCH" run "${CE_TRUST[@]}" --clients 4 --orders-per-client 25 --json \
    --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
say "certeasy (empty database): clients $CLIENTS, $DURATION x $REPS"
series certeasy "$CLIENTS" "${CE_TRUST[@]}"
stop_server

# ---- Pebble ----------------------------------------------------------------
if [ -z "${SKIP_PEBBLE:-}" ]; then
    if ! command -v pebble >/dev/null 2>&1; then
        say "installing pebble (apt)"
        SUDO=(); [ "$(id -u)" -ne 0 ] && SUDO=(sudo -n)
        "${SUDO[@]}" apt-get install -y -q --no-install-recommends pebble >/dev/null 2>&1 \
            || { "${SUDO[@]}" apt-get update -q >/dev/null 2>&1 && "${SUDO[@]}" apt-get install -y -q --no-install-recommends pebble >/dev/null; } \
            || die "cannot install pebble"
    fi
    PB="$WORK/pebble"
    mkdir -p "$PB"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$PB/key.pem" -out "$PB/cert.pem" >/dev/null 2>&1
    cat >"$PB/pebble.json" <<EOF
{ "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
    "certificate": "$PB/cert.pem",
    "privateKey": "$PB/key.pem",
    "httpPort": $HTTP_PORT,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
} }
EOF
    PEBBLE_VERSION="$(dpkg-query -W -f='${Version}' pebble 2>/dev/null || echo unknown)"
    echo "{\"pebble_version\": \"$PEBBLE_VERSION\"}" >"$WORK/pebble-version.json"
    PB_TRUST=(--directory "https://localhost:$PEBBLE_PORT/dir" --insecure --issuance-timeout 10s)
    # A fresh Pebble for every run: it keeps everything in memory (RSS only
    # grows) and can hang under concurrency; in memory; no artificial
    # validation sleep; fresh authorizations every order; no random nonce
    # rejection (the client would retry them).
    start_pebble() {
        PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=0 \
            pebble -config "$PB/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" >>"$PB/pebble.log" 2>&1 &
        SERVER_PID=$!
        wait_port "$PEBBLE_PORT" "$SERVER_PID" || { cat "$PB/pebble.log" >&2; die "pebble did not start"; }
        "$BENCH" run "${PB_TRUST[@]}" --clients 1 --orders-per-client 10 --json \
            --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
    }
    say "pebble $PEBBLE_VERSION: clients $CLIENTS, $DURATION x $REPS (restarted for every run)"
    for c in $CLIENTS; do
        for rep in $(seq 1 "$REPS"); do
            start_pebble
            bench pebble "$c" "${PB_TRUST[@]}"
            stop_server
        done
    done
fi

# ---- 1M certificates ---------------------------------------------------------
if [ -z "${SKIP_LARGE:-}" ]; then
    SEEDED="$BENCH_CACHE/seeded-$SEED_CERTS-$SEED_ACCOUNTS"
    if [ ! -s "$SEEDED/db.sqlite" ]; then
        say "seeding $SEED_CERTS certificates, $SEED_ACCOUNTS accounts into $SEEDED"
        rm -rf "$SEEDED.tmp"; mkdir -p "$SEEDED.tmp"
        start=$(date +%s)
        "$BENCH" seed --workdir "$SEEDED.tmp" --accounts "$SEED_ACCOUNTS" --certs "$SEED_CERTS"
        echo "{\"seed_seconds\": $(( $(date +%s) - start ))}" >"$SEEDED.tmp/seed-time.json"
        rm -rf "$SEEDED"; mv "$SEEDED.tmp" "$SEEDED"
    fi
    cp "$SEEDED/seed-time.json" "$WORK/seed-time.json" 2>/dev/null || true
    LG_WD="$WORK/large"
    write_config "$LG_WD"
    mkdir -p "$LG_WD/work"
    chmod 700 "$LG_WD/work"
    cp "$SEEDED/db.sqlite" "$LG_WD/work/db.sqlite"
    start_certeasy "$LG_WD"
    LG_TRUST=(--directory "$CE_DIR" --ca-root "$LG_WD/work/ca/root.pem")
    say "certeasy (1M certificates): warm-up"
    "$BENCH" run "${LG_TRUST[@]}" --clients 4 --orders-per-client 25 --json \
        --http01-listen "127.0.0.1:$HTTP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" >/dev/null || true
    say "certeasy (1M certificates): clients $LARGE_CLIENTS, $DURATION x $REPS"
    series certeasy-1M "$LARGE_CLIENTS" "${LG_TRUST[@]}"
    stop_server
fi

# ---- report --------------------------------------------------------------------
mkdir -p "$ROOT/docs/perf"
cp "$RESULTS" "$ROOT/docs/perf/results.jsonl"
python3 - "$RESULTS" "$ROOT/docs/performance.md" "$WORK" <<'PY'
import json, os, re, statistics, subprocess, sys
results, doc, work = sys.argv[1:4]
rows = [json.loads(l) for l in open(results) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["label"], r["clients"]), []).append(r)
def med(rs, f):
    v = [f(r) for r in rs if f(r) is not None]
    return statistics.median(v) if v else float("nan")
out = []
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
out.append(f"Measured {subprocess.run(['date', '-u', '+%Y-%m-%d %H:%M UTC'], capture_output=True, text=True).stdout.strip()} "
           f"on `nproc` = {os.cpu_count()}, CPU: {cpu}; load generator on the same machine. "
           f"Each point is the **median of {len(next(iter(groups.values())))} runs** of {rows[0]['elapsed_s']:.0f} s "
           f"(poll interval {rows[0]['poll_interval_ms']:g} ms, P-256 CSR, 1 name per order).")
for name in ("pebble-version.json", "seed-time.json", "no-report.jsonl"):
    p = os.path.join(work, name)
    if os.path.exists(p):
        out.append(f"`{name}`: `{open(p).read().strip()}`")
out.append("")
out.append("| server | clients | issuances/s | p50 ms | p99 ms | server CPU ms/issuance | client CPU ms/issuance | requests/issuance | peak RSS MiB | failures |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (label, c), rs in sorted(groups.items(), key=lambda kv: (["certeasy", "pebble", "certeasy-1M"].index(kv[0][0]) if kv[0][0] in ("certeasy", "pebble", "certeasy-1M") else 9, kv[0][1])):
    out.append(f"| {label} | {c} | {med(rs, lambda r: r['issuances_per_s']):.0f} | "
               f"{med(rs, lambda r: r['latency'][0]['p50_ms']):.1f} | {med(rs, lambda r: r['latency'][0]['p99_ms']):.1f} | "
               f"{med(rs, lambda r: r['server_cpu_ms_per_issuance']):.2f} | {med(rs, lambda r: r['client_cpu_ms_per_issuance']):.2f} | "
               f"{med(rs, lambda r: r['requests_per_issuance']):.1f} | {max(r['server_peak_rss_mib'] or 0 for r in rs):.1f} | "
               f"{sum(r['failures'] for r in rs)} |")
errs = [e for r in rows for e in r["first_errors"]][:5]
if errs:
    out.append("")
    out.append("First errors seen:")
    out += [f"- `{e[:300]}`" for e in errs]
out.append("")
out.append("Raw reports (one JSON object per run, per-step latencies included): `docs/perf/results.jsonl`.")
block = "<!-- bench:begin (generated by scripts/bench.sh) -->\n" + "\n".join(out) + "\n<!-- bench:end -->"
text = open(doc).read() if os.path.exists(doc) else "# Performance\n\n<!-- bench:begin -->\n<!-- bench:end -->\n"
text, n = re.subn(r"<!-- bench:begin.*?<!-- bench:end -->", lambda m: block, text, flags=re.S)
if n == 0:
    text += "\n" + block + "\n"
open(doc, "w").write(text)
print("\n".join(out))
PY
say "docs/performance.md updated"
