#!/usr/bin/env python3
"""Interop tests: real ACME clients (certbot, lego) against the certeasy binary.

Driven by scripts/interop.sh, which installs the clients. Stdlib only.

One bind9 (authoritative for zone `test.`, dynamic updates with a TSIG key) and
one certeasy server are started for the whole run on loopback ephemeral ports;
every case is a small function with its own client state directory and its own
DNS names, so cases do not depend on each other.

Environment:
  CERTEASY_BIN      certeasy binary (required)
  CERTBOT           certbot executable (default: certbot on PATH)
  LEGO              lego executable (default: lego on PATH)
  NAMED             named executable (default: named on PATH or /usr/sbin/named)
  INTEROP_KEEP=1    keep the temp dir even when everything passes

Usage: run.py [CASE_NAME ...]   (no argument: all cases; --list prints them)

The last line printed is `N passed, M failed`; the exit code is 1 if any failed.
"""

import base64
import glob
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

ZONE = "test"
TSIG_NAME = "interop-key."
TSIG_ALG = "hmac-sha256"
CLIENT_TIMEOUT = 180  # seconds, per client invocation (hard ceiling, not a sleep)
READY_TIMEOUT = 60  # seconds to wait for bind9 / certeasy readiness

# Every non-wildcard name any case uses: bind9 gets an A record -> 127.0.0.1 for each.
NAMES = [
    "cb-ec.test",
    "cb-rsa.test",
    "cb-rev.test",
    "cb-revkey.test",
    "w.test",
    "lg-http.test",
    "lg-http2.test",
    "lg-tls.test",
    "lg-dns.test",
    "lg-rsa.test",
    "lg-ec.test",
    "lg-rev.test",
    "cy.test",
]


class CaseFailure(Exception):
    """An assertion failed; `detail` is extra text to show (client output…)."""

    def __init__(self, msg, detail=""):
        super().__init__(msg)
        self.detail = detail


def log(msg):
    print(msg, flush=True)


def free_port(kind=socket.SOCK_STREAM):
    """An ephemeral port currently free on 127.0.0.1 for `kind`."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_tcp_udp():
    """A port free for both TCP and UDP (named listens on both)."""
    for _ in range(50):
        p = free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
    raise RuntimeError("no port free for both TCP and UDP")


def tail(path, start=0, lines=60):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    out = data.splitlines()
    if len(out) > lines:
        out = [f"... ({len(out) - lines} earlier lines in {path})"] + out[-lines:]
    return "\n".join(out)


def indent(text, prefix="    | "):
    return "\n".join(prefix + line for line in text.splitlines()) if text else prefix + "<empty>"


class Proc:
    """A long-running process started by the tests, always killed at the end."""

    def __init__(self, name, argv, logfile, env=None, cwd=None):
        self.name = name
        self.logfile = logfile
        self.log = open(logfile, "ab")
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()
        self.log.close()


def wait_for(what, check, deadline_s, proc=None):
    """Poll `check()` (returns truthy when ready) until a bounded deadline."""
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    last = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with {proc.p.returncode} before {what}\n"
                + indent(tail(proc.logfile))
            )
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - keep the last reason for the message
            last = e
        time.sleep(delay)  # poll interval between readiness probes
        delay = min(delay * 2, 0.5)
    msg = f"timed out after {deadline_s}s waiting for {what} (last error: {last})"
    if proc is not None:
        msg += "\n" + indent(tail(proc.logfile))
    raise RuntimeError(msg)


class Env:
    """The shared fixture: temp dir, bind9, certeasy."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="certeasy-interop-")
        self.certeasy_bin = os.environ["CERTEASY_BIN"]
        self.certbot = os.environ.get("CERTBOT") or shutil.which("certbot") or "certbot"
        self.lego = os.environ.get("LEGO") or shutil.which("lego") or "lego"
        self.named = os.environ.get("NAMED") or shutil.which("named") or "/usr/sbin/named"
        self.caddy = os.environ.get("CADDY") or shutil.which("caddy")
        self.tsig_secret = base64.b64encode(os.urandom(32)).decode()
        self.bind_port = free_port_tcp_udp()
        self.acme_port = free_port()
        self.http_port = free_port()
        self.tls_port = free_port()
        while len({self.acme_port, self.http_port, self.tls_port, self.bind_port}) < 4:
            self.tls_port = free_port()
            self.http_port = free_port()
        self.workdir = os.path.join(self.tmp, "work")
        self.root_pem = os.path.join(self.workdir, "ca", "root.pem")
        self.directory = f"https://localhost:{self.acme_port}/acme/directory"
        self.server_log = os.path.join(self.tmp, "certeasy.log")
        self.bind_log = os.path.join(self.tmp, "named.log")

    # ---- bind9 -------------------------------------------------------------
    def start_bind(self):
        d = os.path.join(self.tmp, "bind")
        os.makedirs(d)
        serial = int(time.time())
        records = "\n".join(f"{n}. 60 IN A 127.0.0.1" for n in NAMES)
        with open(os.path.join(d, "test.zone"), "w") as f:
            f.write(
                f"$TTL 60\n"
                f"@ IN SOA ns.test. hostmaster.test. {serial} 3600 600 86400 1\n"
                f"@ IN NS ns.test.\n"
                f"ns.test. IN A 127.0.0.1\n"
                f"{records}\n"
            )
        conf = os.path.join(d, "named.conf")
        with open(conf, "w") as f:
            f.write(
                f"""
key "{TSIG_NAME}" {{ algorithm {TSIG_ALG}; secret "{self.tsig_secret}"; }};
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    dump-file "{d}/cache_dump.db";
    statistics-file "{d}/named.stats";
    listen-on port {self.bind_port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query {{ 127.0.0.1; }};
    allow-transfer {{ none; }};
}};
controls {{ }};
zone "{ZONE}." {{
    type primary;
    file "{d}/test.zone";
    update-policy {{ grant {TSIG_NAME} zonesub TXT; }};
}};
"""
            )
        proc = Proc("named", [self.named, "-g", "-4", "-c", conf], self.bind_log, cwd=d)
        self.procs.append(proc)

        def ready():
            r = subprocess.run(
                ["dig", "@127.0.0.1", "-p", str(self.bind_port), "+time=1", "+tries=1",
                 "+short", "A", NAMES[0] + "."],
                capture_output=True, text=True, timeout=5,
            )
            return r.returncode == 0 and r.stdout.strip() == "127.0.0.1"

        wait_for(f"bind9 on 127.0.0.1:{self.bind_port}", ready, READY_TIMEOUT, proc)

    # ---- certeasy ----------------------------------------------------------
    def config_text(self):
        return f"""# generated by tests/interop/run.py
workdir: "{self.workdir}"
server:
  url: ["https://localhost:{self.acme_port}"]
  listen: "127.0.0.1:{self.acme_port}"
tls-certificate-manager:
  bundles:
    - name: listener
      mode: pki
      authority: builtin
dns-validation-profiles:
  - name: interop
    timeout: 10s
    zones:
      - suffixes: ["test"]
        dns-server: ["127.0.0.1:{self.bind_port}"]
    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8", "::1/128"]
    http-01-port: {self.http_port}
    tls-alpn-01-port: {self.tls_port}
authorities:
  - name: builtin
    type: fake
    configuration:
      common-name: "interop CA"
      password: "interop"
issuance-policies:
  - name: interop
    dns:
      allow: [".test/3", "*.test", "*..test/2"]
    signature:
      min-rsa-bits: 2048
    csr:
      allowed-extra-eku: [clientAuth]
"""

    def start_certeasy(self):
        cfg = os.path.join(self.tmp, "certeasy.yml")
        with open(cfg, "w") as f:
            f.write(self.config_text())
        env = dict(os.environ)
        env.setdefault("APP_LOG_LEVEL", "debug")
        env["NO_COLOR"] = "1"  # the log goes to a file: no ANSI escapes
        proc = Proc("certeasy", [self.certeasy_bin, "serve", "-f", cfg], self.server_log, env=env)
        self.procs.append(proc)

        def printed_directory():
            with open(self.server_log, "rb") as f:
                return b"ACME directory: " in f.read()

        wait_for("certeasy to print 'ACME directory:'", printed_directory, READY_TIMEOUT, proc)

        def directory_ok():
            if not os.path.exists(self.root_pem):
                return False
            ctx = ssl.create_default_context(cafile=self.root_pem)
            with urllib.request.urlopen(self.directory, context=ctx, timeout=5) as r:
                return r.status == 200 and b"newOrder" in r.read()

        wait_for(f"GET {self.directory}", directory_ok, READY_TIMEOUT, proc)

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    # ---- helpers used by the cases ------------------------------------------
    def case_dir(self, name):
        d = os.path.join(self.tmp, "cases", name)
        os.makedirs(d, exist_ok=True)
        return d

    def run(self, argv, env_extra=None, cwd=None):
        """Run a client to completion; returns (rc, combined output)."""
        env = dict(os.environ)
        env.update(env_extra or {})
        p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True,
        )
        try:
            out, _ = p.communicate(timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            out = (out or b"") + f"\n<killed after {CLIENT_TIMEOUT}s>".encode()
            return -9, f"$ {' '.join(argv)}\n" + out.decode("utf-8", "replace")
        except BaseException:  # interrupted: never leave the client running
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            raise
        cmd = " ".join(argv)
        return p.returncode, f"$ {cmd}\n" + out.decode("utf-8", "replace")

    def run_ok(self, argv, env_extra=None, what="client"):
        rc, out = self.run(argv, env_extra)
        if rc != 0:
            raise CaseFailure(f"{what} exited with {rc}", out)
        return out

    # certbot --------------------------------------------------------------
    def certbot_base(self, d):
        return [
            self.certbot,
            "--config-dir", os.path.join(d, "config"),
            "--work-dir", os.path.join(d, "work"),
            "--logs-dir", os.path.join(d, "logs"),
            "--server", self.directory,
            "--non-interactive",
        ]

    def certbot_env(self):
        return {"REQUESTS_CA_BUNDLE": self.root_pem}

    def certbot_http01(self, d, names, key_args, cert_name):
        argv = self.certbot_base(d) + [
            "certonly", "--standalone",
            "--http-01-port", str(self.http_port), "--http-01-address", "127.0.0.1",
            "--register-unsafely-without-email", "--agree-tos",
            "--cert-name", cert_name,
        ] + key_args
        for n in names:
            argv += ["-d", n]
        out = self.run_ok(argv, self.certbot_env(), "certbot certonly")
        live = os.path.join(d, "config", "live", cert_name)
        return out, os.path.join(live, "cert.pem"), os.path.join(live, "chain.pem"), os.path.join(live, "privkey.pem")

    # lego -----------------------------------------------------------------
    def lego_base(self, d, names, key_type="ec256"):
        argv = [
            self.lego, "--server", self.directory, "--path", os.path.join(d, "lego"),
            "--accept-tos", "--email", "a@b.test", "--key-type", key_type,
        ]
        for n in names:
            argv += ["--domains", n]
        return argv

    def lego_env(self):
        return {"LEGO_CA_CERTIFICATES": self.root_pem}

    def lego_files(self, d, name):
        base = os.path.join(d, "lego", "certificates", name.replace("*", "_"))
        return base + ".crt", base + ".issuer.crt", base + ".key"


# ---- assertions ----------------------------------------------------------------

def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def first_cert_only(src, dst):
    """Copy the first PEM certificate of `src` (a bundle) to `dst`."""
    with open(src) as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", text, re.S)
    if not m:
        raise CaseFailure(f"{src} holds no PEM certificate", text[:2000])
    with open(dst, "w") as f:
        f.write(m.group(0))
    return text.count("-----BEGIN CERTIFICATE-----")


def assert_certificate(env, cert, chain, names, key=None, client_out=""):
    """cert exists, SAN == names exactly, verifies against the root via chain."""
    if not os.path.isfile(cert) or os.path.getsize(cert) == 0:
        raise CaseFailure(f"certificate file {cert} missing or empty", client_out)
    leaf = cert + ".leaf.pem"
    first_cert_only(cert, leaf)
    rc, out = openssl("x509", "-in", leaf, "-noout", "-ext", "subjectAltName")
    if rc != 0:
        raise CaseFailure("openssl x509 -ext subjectAltName failed", out)
    got = set()
    for part in re.split(r"[,\n]", out):
        part = part.strip()
        if part.startswith("DNS:"):
            got.add(part[4:])
        elif part and not part.startswith("X509v3 Subject Alternative Name"):
            raise CaseFailure(f"unexpected SAN entry {part!r}", out)
    if got != set(names):
        raise CaseFailure(f"SAN mismatch: got {sorted(got)}, want {sorted(names)}", out)
    verify = ["verify", "-CAfile", env.root_pem]
    if chain and os.path.isfile(chain) and os.path.getsize(chain) > 0:
        verify += ["-untrusted", chain]
    verify += ["-purpose", "sslserver", leaf]
    rc, out = openssl(*verify)
    if rc != 0 or not out.strip().endswith("OK"):
        raise CaseFailure("openssl verify failed: openssl " + " ".join(verify), out)
    if key is not None:
        rc, text = openssl("x509", "-in", leaf, "-noout", "-text")
        if rc != 0 or not re.search(key, text):
            raise CaseFailure(f"certificate public key does not match /{key}/", text)


EC256 = r"Public Key Algorithm: id-ecPublicKey[\s\S]*(prime256v1|P-256)"


def rsa_bits(n):
    return rf"Public Key Algorithm: rsaEncryption[\s\S]*Public-Key: \({n} bit\)"


def assert_contains(out, needle, what):
    if needle not in out:
        raise CaseFailure(f"{what}: expected {needle!r} in the output", out)


# ---- cases ---------------------------------------------------------------------

def certbot_http01_ecdsa(env):
    d = env.case_dir("certbot_http01_ecdsa")
    names = ["cb-ec.test"]
    out, cert, chain, _ = env.certbot_http01(d, names, ["--key-type", "ecdsa"], "cb-ec")
    assert_certificate(env, cert, chain, names, key=EC256, client_out=out)


def certbot_http01_rsa3072(env):
    d = env.case_dir("certbot_http01_rsa3072")
    names = ["cb-rsa.test"]
    out, cert, chain, _ = env.certbot_http01(
        d, names, ["--key-type", "rsa", "--rsa-key-size", "3072"], "cb-rsa")
    assert_certificate(env, cert, chain, names, key=rsa_bits(3072), client_out=out)


def certbot_output_and_log(d, out):
    """certbot prints only a problem's detail; its debug log has the type."""
    path = os.path.join(d, "logs", "letsencrypt.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return out + f"\n--- {path} ---\n" + f.read()
    except OSError:
        return out


def certbot_revoke(env):
    """Revoke with the account key; a second revoke is alreadyRevoked."""
    d = env.case_dir("certbot_revoke")
    names = ["cb-rev.test"]
    out, cert, chain, _ = env.certbot_http01(d, names, ["--key-type", "ecdsa"], "cb-rev")
    assert_certificate(env, cert, chain, names, client_out=out)
    revoke = env.certbot_base(d) + [
        "revoke", "--cert-path", cert, "--reason", "superseded", "--no-delete-after-revoke"]
    out = env.run_ok(revoke, env.certbot_env(), "certbot revoke")
    assert_contains(out, "Congratulations! You have successfully revoked", "certbot revoke")
    rc, out = env.run(revoke, env.certbot_env())
    if rc == 0:
        raise CaseFailure("second certbot revoke of the same certificate succeeded", out)
    assert_contains(certbot_output_and_log(d, out), "urn:ietf:params:acme:error:alreadyRevoked",
                    "second certbot revoke (console + letsencrypt.log)")


def certbot_revoke_by_cert_key(env):
    """Revoke signed by the certificate's own key (jwk), reason keyCompromise."""
    d = env.case_dir("certbot_revoke_by_cert_key")
    names = ["cb-revkey.test"]
    out, cert, chain, key = env.certbot_http01(
        d, names, ["--key-type", "rsa", "--rsa-key-size", "3072"], "cb-revkey")
    assert_certificate(env, cert, chain, names, client_out=out)
    revoke = env.certbot_base(d) + [
        "revoke", "--cert-path", cert, "--key-path", key, "--reason", "keycompromise",
        "--no-delete-after-revoke"]
    out = env.run_ok(revoke, env.certbot_env(), "certbot revoke --key-path")
    assert_contains(out, "Congratulations! You have successfully revoked", "certbot revoke")
    rc, out = env.run(revoke, env.certbot_env())
    if rc == 0:
        raise CaseFailure("second certbot revoke (cert key) succeeded", out)
    assert_contains(certbot_output_and_log(d, out), "urn:ietf:params:acme:error:alreadyRevoked",
                    "second certbot revoke (console + letsencrypt.log)")


def certbot_dns01_rfc2136_wildcard(env):
    d = env.case_dir("certbot_dns01_rfc2136_wildcard")
    creds = os.path.join(d, "rfc2136.ini")
    with open(creds, "w") as f:
        f.write(
            "dns_rfc2136_server = 127.0.0.1\n"
            f"dns_rfc2136_port = {env.bind_port}\n"
            f"dns_rfc2136_name = {TSIG_NAME}\n"
            f"dns_rfc2136_secret = {env.tsig_secret}\n"
            f"dns_rfc2136_algorithm = {TSIG_ALG.upper()}\n"
        )
    os.chmod(creds, 0o600)
    names = ["*.w.test", "w.test"]
    argv = env.certbot_base(d) + [
        "certonly", "--dns-rfc2136", "--dns-rfc2136-credentials", creds,
        "--dns-rfc2136-propagation-seconds", "0",
        "--register-unsafely-without-email", "--agree-tos",
        "--key-type", "ecdsa", "--cert-name", "w",
        "-d", "*.w.test", "-d", "w.test",
    ]
    out = env.run_ok(argv, env.certbot_env(), "certbot certonly --dns-rfc2136")
    live = os.path.join(d, "config", "live", "w")
    assert_certificate(env, os.path.join(live, "cert.pem"), os.path.join(live, "chain.pem"),
                       names, client_out=out)


def lego_http01(env):
    d = env.case_dir("lego_http01")
    names = ["lg-http.test", "lg-http2.test"]
    argv = env.lego_base(d, names) + ["--http", "--http.port", f"127.0.0.1:{env.http_port}", "run"]
    out = env.run_ok(argv, env.lego_env(), "lego run --http")
    cert, issuer, _ = env.lego_files(d, names[0])
    assert_certificate(env, cert, issuer, names, key=EC256, client_out=out)


def lego_tlsalpn01(env):
    d = env.case_dir("lego_tlsalpn01")
    names = ["lg-tls.test"]
    argv = env.lego_base(d, names) + ["--tls", "--tls.port", f"127.0.0.1:{env.tls_port}", "run"]
    out = env.run_ok(argv, env.lego_env(), "lego run --tls")
    cert, issuer, _ = env.lego_files(d, names[0])
    assert_certificate(env, cert, issuer, names, client_out=out)


def lego_env_rfc2136(env):
    e = env.lego_env()
    e.update({
        "RFC2136_NAMESERVER": f"127.0.0.1:{env.bind_port}",
        "RFC2136_TSIG_KEY": TSIG_NAME,
        "RFC2136_TSIG_SECRET": env.tsig_secret,
        "RFC2136_TSIG_ALGORITHM": TSIG_ALG + ".",
        "RFC2136_POLLING_INTERVAL": "1",
        "RFC2136_PROPAGATION_TIMEOUT": "30",
        "RFC2136_TTL": "1",
        # lego solves the authorizations one after another with this pause
        # between them (default 60s).
        "RFC2136_SEQUENCE_INTERVAL": "1",
    })
    return e


def lego_dns01_rfc2136(env):
    d = env.case_dir("lego_dns01_rfc2136")
    names = ["lg-dns.test", "*.lg-dns.test"]
    argv = env.lego_base(d, names) + [
        "--dns", "rfc2136", "--dns.resolvers", f"127.0.0.1:{env.bind_port}",
        # Without this lego also asks the zone's NS (ns.test -> 127.0.0.1:53).
        "--dns.disable-cp", "run"]
    out = env.run_ok(argv, lego_env_rfc2136(env), "lego run --dns rfc2136")
    cert, issuer, _ = env.lego_files(d, names[0])
    assert_certificate(env, cert, issuer, names, client_out=out)


def lego_rsa4096(env):
    # lego 4.9.1 (Debian 12) offers rsa2048/rsa4096/rsa8192/ec256/ec384: no rsa3072.
    d = env.case_dir("lego_rsa4096")
    names = ["lg-rsa.test"]
    argv = env.lego_base(d, names, key_type="rsa4096") + [
        "--http", "--http.port", f"127.0.0.1:{env.http_port}", "run"]
    out = env.run_ok(argv, env.lego_env(), "lego run --key-type rsa4096")
    cert, issuer, _ = env.lego_files(d, names[0])
    assert_certificate(env, cert, issuer, names, key=rsa_bits(4096), client_out=out)


def lego_ec256(env):
    d = env.case_dir("lego_ec256")
    names = ["lg-ec.test"]
    argv = env.lego_base(d, names, key_type="ec256") + [
        "--tls", "--tls.port", f"127.0.0.1:{env.tls_port}", "run"]
    out = env.run_ok(argv, env.lego_env(), "lego run --key-type ec256")
    cert, issuer, _ = env.lego_files(d, names[0])
    assert_certificate(env, cert, issuer, names, key=EC256, client_out=out)


def lego_revoke(env):
    d = env.case_dir("lego_revoke")
    names = ["lg-rev.test"]
    argv = env.lego_base(d, names) + ["--http", "--http.port", f"127.0.0.1:{env.http_port}", "run"]
    out = env.run_ok(argv, env.lego_env(), "lego run --http")
    cert, issuer, _ = env.lego_files(d, names[0])
    assert_certificate(env, cert, issuer, names, client_out=out)
    revoke = env.lego_base(d, names) + ["revoke", "--keep"]
    out = env.run_ok(revoke, env.lego_env(), "lego revoke")
    assert_contains(out, "Certificate was revoked", "lego revoke")
    rc, out = env.run(revoke, env.lego_env())
    if rc == 0:
        raise CaseFailure("second lego revoke of the same certificate succeeded", out)
    assert_contains(out, "alreadyRevoked", "second lego revoke")


def certbot_refused_name(env):
    """A name outside the issuance policy: new-order refused, rejectedIdentifier."""
    d = env.case_dir("certbot_refused_name")
    argv = env.certbot_base(d) + [
        "certonly", "--standalone",
        "--http-01-port", str(env.http_port), "--http-01-address", "127.0.0.1",
        "--register-unsafely-without-email", "--agree-tos", "--cert-name", "refused",
        "-d", "host.example"]
    rc, out = env.run(argv, env.certbot_env())
    if rc == 0:
        raise CaseFailure("certbot got a certificate for host.example (outside the policy)", out)
    assert_contains(certbot_output_and_log(d, out), "urn:ietf:params:acme:error:rejectedIdentifier",
                    "certbot for a name outside the policy (console + letsencrypt.log)")
    if os.path.exists(os.path.join(d, "config", "live", "refused")):
        raise CaseFailure("certbot wrote a lineage for a refused name", out)


def lego_http01_nxdomain(env):
    """http-01 for a name the zone does not have: the order fails with a dns problem."""
    d = env.case_dir("lego_http01_nxdomain")
    names = ["absent.test"]
    argv = env.lego_base(d, names) + ["--http", "--http.port", f"127.0.0.1:{env.http_port}", "run"]
    rc, out = env.run(argv, env.lego_env())
    if rc == 0:
        raise CaseFailure("lego got a certificate for absent.test (NXDOMAIN)", out)
    assert_contains(out, "urn:ietf:params:acme:error:dns", "lego http-01 for an NXDOMAIN name")
    cert, _, _ = env.lego_files(d, names[0])
    if os.path.exists(cert):
        raise CaseFailure(f"{cert} exists although validation failed", out)


def caddy_automatic_https(env):
    """Caddy's automatic HTTPS gets a certificate and serves it over TLS."""
    if not env.caddy:
        raise CaseFailure("caddy not found (scripts/interop.sh installs it)")
    d = env.case_dir("caddy_automatic_https")
    name = "cy.test"
    storage = os.path.join(d, "data")
    caddyfile = os.path.join(d, "Caddyfile")
    with open(caddyfile, "w") as f:
        f.write(f"""{{
\tadmin off
\tskip_install_trust
\tauto_https disable_redirects
\thttp_port {env.http_port}
\thttps_port {env.tls_port}
\temail a@b.test
\tacme_ca {env.directory}
\tacme_ca_root {env.root_pem}
\tstorage file_system {{
\t\troot {storage}
\t}}
}}
{name} {{
\tbind 127.0.0.1
\trespond "hello from caddy"
}}
""")
    home = {"HOME": d, "XDG_DATA_HOME": os.path.join(d, "xdg-data"),
            "XDG_CONFIG_HOME": os.path.join(d, "xdg-config")}
    proc_env = dict(os.environ)
    proc_env.update(home)
    log_path = os.path.join(d, "caddy.log")
    caddy = Proc("caddy", [env.caddy, "run", "--config", caddyfile, "--adapter", "caddyfile"],
                 log_path, env=proc_env, cwd=d)
    env.procs.append(caddy)
    try:
        def cert_on_disk():
            return glob.glob(os.path.join(storage, "certificates", "*", name, name + ".crt"))

        try:
            wait_for(f"caddy to store a certificate for {name}", cert_on_disk, 90, caddy)
        except RuntimeError as e:
            raise CaseFailure(str(e).splitlines()[0], tail(log_path, 0, 80)) from None
        cert = cert_on_disk()[0]
        assert_certificate(env, cert, cert, [name], key=EC256, client_out=tail(log_path, 0, 80))

        # The served certificate: TLS to 127.0.0.1 with SNI cy.test, verified against the root.
        ctx = ssl.create_default_context(cafile=env.root_pem)

        def served():
            with socket.create_connection(("127.0.0.1", env.tls_port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname=name) as tls:
                    san = [v for k, v in tls.getpeercert().get("subjectAltName", ()) if k == "DNS"]
                    tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                    body = b""
                    while chunk := tls.recv(4096):
                        body += chunk
                    return san, body

        try:
            san, body = served()
        except (OSError, ssl.SSLError) as e:
            raise CaseFailure(f"TLS to caddy on 127.0.0.1:{env.tls_port} (SNI {name}) failed: {e}",
                              tail(log_path, 0, 80)) from None
        if san != [name] or b"hello from caddy" not in body:
            raise CaseFailure(f"caddy served SAN {san}, body {body[-200:]!r}", tail(log_path, 0, 80))
    finally:
        caddy.stop()
        env.procs.remove(caddy)


CASES = [
    certbot_http01_ecdsa,
    certbot_http01_rsa3072,
    certbot_revoke,
    certbot_revoke_by_cert_key,
    certbot_dns01_rfc2136_wildcard,
    lego_http01,
    lego_tlsalpn01,
    lego_dns01_rfc2136,
    lego_rsa4096,
    lego_ec256,
    lego_revoke,
    certbot_refused_name,
    lego_http01_nxdomain,
    caddy_automatic_https,
]


def main(argv):
    if "--list" in argv:
        for c in CASES:
            print(c.__name__)
        return 0
    wanted = [a for a in argv if not a.startswith("-")]
    by_name = {c.__name__: c for c in CASES}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
        print(f"0 passed, {len(unknown)} failed")
        return 1
    cases = [by_name[w] for w in wanted] if wanted else CASES

    # SIGTERM (e.g. CI timeout) must still run the finally below.
    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    passed, failed = 0, 0
    env = Env()
    t_all = time.monotonic()
    try:
        log(f"interop: temp dir {env.tmp}")
        log(f"interop: bind9 127.0.0.1:{env.bind_port}, certeasy 127.0.0.1:{env.acme_port}, "
            f"http-01 :{env.http_port}, tls-alpn-01 :{env.tls_port}")
        try:
            env.start_bind()
            env.start_certeasy()
        except Exception as e:  # noqa: BLE001
            log(f"FAIL setup: {e}")
            log("--- certeasy log tail ---\n" + indent(tail(env.server_log)))
            log("--- named log tail ---\n" + indent(tail(env.bind_log)))
            failed = len(cases)
            return 1
        log(f"interop: ready in {time.monotonic() - t_all:.1f}s; directory {env.directory}")
        for case in cases:
            name = case.__name__
            log_start = os.path.getsize(env.server_log)
            bind_start = os.path.getsize(env.bind_log)
            t0 = time.monotonic()
            try:
                case(env)
            except CaseFailure as e:
                failed += 1
                log(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {e}")
                if e.detail:
                    log("  --- client/tool output ---\n" + indent(e.detail[-8000:]))
                log("  --- certeasy log (this case) ---\n" + indent(tail(env.server_log, log_start)))
                log("  --- named log (this case) ---\n" + indent(tail(env.bind_log, bind_start, 20)))
            except Exception:  # noqa: BLE001 - an error in the test itself
                failed += 1
                log(f"FAIL {name} ({time.monotonic() - t0:.1f}s): error\n" + indent(traceback.format_exc()))
                log("  --- certeasy log (this case) ---\n" + indent(tail(env.server_log, log_start)))
            else:
                passed += 1
                log(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
            for p in env.procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} died during {name}:\n" + indent(tail(p.logfile)))
    except KeyboardInterrupt as e:
        log(f"interrupted: {e}")
        failed = max(failed, len(cases) - passed)
    except Exception:  # noqa: BLE001
        log("error:\n" + indent(traceback.format_exc()))
        failed = max(failed, len(cases) - passed)
    finally:
        env.stop()
        if failed == 0 and not os.environ.get("INTEROP_KEEP"):
            shutil.rmtree(env.tmp, ignore_errors=True)
        else:
            log(f"interop: kept {env.tmp} for inspection")
        log(f"interop: total {time.monotonic() - t_all:.1f}s")
        print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
