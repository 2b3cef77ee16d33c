"""Interop cases for issue 14: External Account Binding, ACME profiles and
ACME Renewal Information (RFC 9773) with real clients.

Registered by run.py (`CASES += modern.cases(run_module)`), against its
shared certeasy, whose configuration gets `CONFIG_YAML` appended: two
profiles and a 1-second ARI window and Retry-After, so that an early
renewal asked with `certeasy cert renew-early` is due at once for
certbot's random pick inside the window, and certbot (which honours
Retry-After between two ARI checks) asks again a second later. EAB keys are made with `certeasy eab add` on the running
server's configuration.

Clients: certbot (PyPI; --eab-kid/--eab-hmac-key/--eab-hmac-alg,
--preferred-profile/--required-profile, ARI on `certbot renew`) and lego
(Debian 4.9.1: --eab --kid --hmac; it predates profiles and ARI).
"""

import json
import os
import sqlite3
import subprocess

NAMES = [
    "cb-eab.test",
    "cb-eab2.test",
    "lg-eab.test",
    "lg-eab-out.test",
    "cb-prof.test",
    "cb-prof2.test",
    "cb-ari.test",
]

CONFIG_YAML = """acme-profiles:
  - name: shortlived
    description: "6-day certificates"
    policy: interop
    validity: 144h
  - name: classic
    description: "90-day certificates"
    policy: interop
renewal-info:
  window-width: 1s
  retry-after: 1s
"""


def cases(r):
    """The cases, bound to run.py's module `r` (its helpers and CaseFailure)."""

    def certeasy(env, *args):
        cfg = os.path.join(env.tmp, "certeasy.yml")
        p = subprocess.run([env.certeasy_bin, *args[:2], "-f", cfg, *args[2:]],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise r.CaseFailure(f"certeasy {' '.join(args)} exited with {p.returncode}",
                                p.stdout + p.stderr)
        return p.stdout

    def eab_key(env, *extra):
        v = json.loads(certeasy(env, "eab", "add", "--label", "interop", "--json", *extra))
        return v["kid"], v["hmac-key"]

    def key_status(env, kid):
        keys = json.loads(certeasy(env, "eab", "list", "--json"))
        return next(k for k in keys if k["kid"] == kid)

    def db(env):
        return sqlite3.connect(f"file:{os.path.join(env.workdir, 'db.sqlite')}?mode=ro", uri=True)

    def lifetime_hours(cert):
        leaf = cert + ".life.pem"
        r.first_cert_only(cert, leaf)
        rc, out = r.openssl("x509", "-in", leaf, "-noout", "-startdate", "-enddate")
        if rc != 0:
            raise r.CaseFailure("openssl x509 -dates failed", out)
        import email.utils
        dates = dict(line.split("=", 1) for line in out.strip().splitlines())
        start = email.utils.parsedate_to_datetime(dates["notBefore"].replace("GMT", "+0000"))
        end = email.utils.parsedate_to_datetime(dates["notAfter"].replace("GMT", "+0000"))
        return round((end - start).total_seconds() / 3600)

    def serial(cert):
        leaf = cert + ".serial.pem"
        r.first_cert_only(cert, leaf)
        rc, out = r.openssl("x509", "-in", leaf, "-noout", "-serial")
        if rc != 0:
            raise r.CaseFailure("openssl x509 -serial failed", out)
        return out.strip().split("=", 1)[1].lower().lstrip("0")

    def certbot_eab(env):
        """certbot registers with --eab-kid/--eab-hmac-key (HS256 and HS512);
        the key binds; a second account with the same key is refused."""
        d = env.case_dir("certbot_eab")
        kid, hmac = eab_key(env)
        names = ["cb-eab.test"]
        argv = env.certbot_http01_argv(d, names, ["--key-type", "ecdsa"], "cb-eab")
        argv += ["--eab-kid", kid, "--eab-hmac-key", hmac]
        out = env.run_ok(argv, env.certbot_env(), "certbot certonly --eab-kid")
        live = os.path.join(d, "config", "live", "cb-eab")
        r.assert_certificate(env, os.path.join(live, "cert.pem"), os.path.join(live, "chain.pem"),
                             names, client_out=out)
        st = key_status(env, kid)
        if st["status"] != "bound" or not st["account"]:
            raise r.CaseFailure(f"key not bound after certbot: {st}", out)
        # The same key for another account (fresh certbot state): refused.
        d2 = env.case_dir("certbot_eab_reuse")
        argv = env.certbot_http01_argv(d2, ["cb-eab2.test"], ["--key-type", "ecdsa"], "cb-eab2")
        argv += ["--eab-kid", kid, "--eab-hmac-key", hmac]
        rc, out = env.run(argv, env.certbot_env())
        if rc == 0:
            raise r.CaseFailure("a second account bound the same EAB key", out)
        r.assert_contains(r.certbot_output_and_log(d2, out), "already bound", "certbot (key reused)")
        # HS512 through --eab-hmac-alg.
        kid2, hmac2 = eab_key(env)
        d3 = env.case_dir("certbot_eab_hs512")
        argv = env.certbot_base(d3) + [
            "register", "--register-unsafely-without-email", "--agree-tos",
            "--eab-kid", kid2, "--eab-hmac-key", hmac2, "--eab-hmac-alg", "HS512"]
        out = env.run_ok(argv, env.certbot_env(), "certbot register --eab-hmac-alg HS512")
        if key_status(env, kid2)["status"] != "bound":
            raise r.CaseFailure("HS512 key not bound", out)

    def certbot_eab_wrong_mac(env):
        d = env.case_dir("certbot_eab_wrong_mac")
        kid, _ = eab_key(env)
        argv = env.certbot_base(d) + [
            "register", "--register-unsafely-without-email", "--agree-tos",
            "--eab-kid", kid, "--eab-hmac-key", "d3JvbmcgbWFjIGtleSB3cm9uZyBtYWMga2V5IDMyYg"]
        rc, out = env.run(argv, env.certbot_env())
        if rc == 0:
            raise r.CaseFailure("certbot registered with a wrong HMAC key", out)
        r.assert_contains(r.certbot_output_and_log(d, out), "MAC does not verify", "certbot (wrong MAC)")
        if key_status(env, kid)["status"] != "unused":
            raise r.CaseFailure("a failed binding used the key", out)

    def lego_eab_scoped(env):
        """lego --eab --kid --hmac with a key limited to one name: that name
        is issued, another is refused as outside the key's scope."""
        d = env.case_dir("lego_eab_scoped")
        kid, hmac = eab_key(env, "--names", "=lg-eab.test")
        names = ["lg-eab.test"]
        argv = env.lego_base(d, names) + [
            "--eab", "--kid", kid, "--hmac", hmac,
            "--http", "--http.port", f"127.0.0.1:{env.http_port}", "run"]
        out = env.run_ok(argv, env.lego_env(), "lego --eab run")
        cert, issuer, _ = env.lego_files(d, names[0])
        r.assert_certificate(env, cert, issuer, names, client_out=out)
        # Same lego account (bound to the key), a name outside its scope.
        argv = env.lego_base(d, ["lg-eab-out.test"]) + [
            "--eab", "--kid", kid, "--hmac", hmac,
            "--http", "--http.port", f"127.0.0.1:{env.http_port}", "run"]
        rc, out = env.run(argv, env.lego_env())
        if rc == 0:
            raise r.CaseFailure("lego got a name outside the EAB key's scope", out)
        r.assert_contains(out, "outside the names allowed to this account", "lego (out of scope)")

    def certbot_profiles(env):
        """--preferred-profile shortlived gives a 144 h certificate;
        --required-profile of a profile not offered fails before ordering;
        no profile: the authority's 90 days."""
        d = env.case_dir("certbot_profiles")
        names = ["cb-prof.test"]
        argv = env.certbot_http01_argv(d, names, ["--key-type", "ecdsa"], "cb-prof")
        argv += ["--preferred-profile", "shortlived"]
        out = env.run_ok(argv, env.certbot_env(), "certbot --preferred-profile")
        cert = os.path.join(d, "config", "live", "cb-prof", "cert.pem")
        r.assert_certificate(env, cert, None, names, client_out=out)
        if lifetime_hours(cert) != 144:
            raise r.CaseFailure(f"shortlived certificate lives {lifetime_hours(cert)} h, want 144", out)
        with db(env) as c:
            row = c.execute("SELECT profile FROM orders WHERE names = ? ORDER BY created_at DESC",
                            (json.dumps(names, separators=(",", ":")),)).fetchone()
        if not row or row[0] != "shortlived":
            raise r.CaseFailure(f"the order's stored profile is {row}", out)
        d2 = env.case_dir("certbot_profiles_required")
        argv = env.certbot_http01_argv(d2, ["cb-prof2.test"], ["--key-type", "ecdsa"], "cb-prof2")
        argv += ["--required-profile", "longlived"]
        rc, out = env.run(argv, env.certbot_env())
        if rc == 0:
            raise r.CaseFailure("certbot --required-profile of an unknown profile succeeded", out)
        r.assert_contains(r.certbot_output_and_log(d2, out), "longlived", "certbot --required-profile")
        argv = env.certbot_http01_argv(d2, ["cb-prof2.test"], ["--key-type", "ecdsa"], "cb-prof2")
        argv += ["--required-profile", "classic"]
        out = env.run_ok(argv, env.certbot_env(), "certbot --required-profile classic")
        cert = os.path.join(d2, "config", "live", "cb-prof2", "cert.pem")
        if lifetime_hours(cert) != 90 * 24:
            raise r.CaseFailure(f"classic certificate lives {lifetime_hours(cert)} h", out)

    def certbot_ari_renew(env):
        """certbot renew consults ARI: a fresh certificate is not renewed;
        after `certeasy cert renew-early` it is. (certbot 5.8 does not send
        `replaces` in the new order; the raw tests in tests/ari.rs cover it.)"""
        d = env.case_dir("certbot_ari_renew")
        names = ["cb-ari.test"]
        out, cert, _, _ = env.certbot_http01(d, names, ["--key-type", "ecdsa"], "cb-ari")
        first = serial(cert)
        renew = env.certbot_base(d) + ["renew", "--cert-name", "cb-ari", "--no-random-sleep-on-renew"]
        out = env.run_ok(renew, env.certbot_env(), "certbot renew (not due)")
        if serial(cert) != first:
            raise r.CaseFailure("certbot renewed a certificate ARI says is not due", out)
        said = certeasy(env, "cert", "renew-early", "--name", "cb-ari.test")
        if "1 certificate(s)" not in said:
            raise r.CaseFailure("renew-early did not mark the certificate", said)
        # certbot does not ask ARI again before the Retry-After (1 s) of its
        # last answer: a deadline of the client, not a synchronisation.
        import time
        time.sleep(1.5)
        out = env.run_ok(renew, env.certbot_env(), "certbot renew (after renew-early)")
        second = serial(cert)
        if second == first:
            raise r.CaseFailure("certbot did not renew after renew-early", r.certbot_output_and_log(d, out))
        log = r.certbot_output_and_log(d, out)
        r.assert_contains(log, "GET /acme/renewal-info/", "certbot renew (ARI request)")
        r.assert_contains(log, "Certificate is due for renewal", "certbot renew (ARI verdict)")

    return [certbot_eab, certbot_eab_wrong_mac, lego_eab_scoped, certbot_profiles, certbot_ari_renew]
