//! Configuration tests: every refusal names its key, line and fix.

use std::path::Path;

use super::*;

const BASE: &str = r#"workdir: /var/lib/certeasy
server:
  url: ["https://acme.example.test"]
  listen: "127.0.0.1:8443"
tls-certificate-manager:
  bundles:
    - name: main
      mode: pki
      authority: builtin
dns-validation-profiles:
  - name: local
    zones:
      - suffixes: [example.test]
        dns-server: ["127.0.0.1:5353"]
    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8"]
authorities:
  - name: builtin
    type: builtin
    configuration:
      password: secret
issuance-policies:
  - name: default
    dns:
      allow: [".example.test/3"]
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, Path::new("/etc/certeasy/config.yml"))
}

/// Loads, expects failure, returns (path, line, message) of the first issue.
fn refuse(text: &str) -> (String, Option<usize>, String) {
    match load(text) {
        Ok(_) => panic!("configuration accepted:\n{text}"),
        Err(e) => {
            let i = &e.issues[0];
            (i.path.clone(), i.line, i.message.clone())
        }
    }
}

fn with(replace: &str, by: &str) -> String {
    assert!(BASE.contains(replace), "BASE lacks {replace:?}");
    BASE.replacen(replace, by, 1)
}

#[test]
fn base_config_is_valid_and_gets_defaults() {
    let c = load(BASE).expect("valid");
    assert_eq!(c.workdir, Path::new("/var/lib/certeasy"));
    assert_eq!(c.database_path, Path::new("/var/lib/certeasy/db.sqlite"));
    assert_eq!(
        c.server.read_header_timeout,
        std::time::Duration::from_secs(5)
    );
    assert_eq!(
        c.server.shutdown_timeout,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(c.server.max_body_bytes, 1024 * 1024);
    assert_eq!(c.workers.workers.get(), 4);
    assert_eq!(c.workers.lease.get(), std::time::Duration::from_secs(30));
    assert_eq!(
        c.bindings["default"].authorities,
        vec!["builtin".to_string()],
        "implicit binding"
    );
    assert_eq!(c.policies[0].validation_profile, "local");
    let p = &c.validation_profiles["local"];
    assert_eq!(p.http01_port, 80);
    assert_eq!(p.tls_alpn01_port, 443);
    match &c.authorities[0].kind {
        AuthorityKind::Builtin(f) => {
            assert_eq!(f.validity, std::time::Duration::from_secs(90 * 86400));
            assert_eq!(c.authorities[0].max_validity, f.validity);
        }
        other => panic!("expected the built-in CA, got {other:?}"),
    }
}

#[test]
fn unknown_key_is_refused_with_path_and_line() {
    let (path, line, msg) = refuse(&with(
        "  listen: \"127.0.0.1:8443\"\n",
        "  listen: \"127.0.0.1:8443\"\n  lisen: x\n",
    ));
    assert_eq!(path, "server.lisen");
    assert_eq!(line, Some(5));
    assert!(msg.contains("unknown key `lisen`"), "{msg}");
    assert!(msg.contains("remove it or fix its spelling"), "{msg}");
}

#[test]
fn unknown_top_level_section_is_refused() {
    let (path, line, msg) = refuse(&format!("{BASE}bogus: 1\n"));
    assert_eq!(path, "bogus");
    assert_eq!(line, Some(26));
    assert!(msg.contains("unknown key `bogus`"), "{msg}");
}

#[test]
fn wrong_type_is_refused() {
    let (path, _, msg) = refuse(&with("  listen: \"127.0.0.1:8443\"", "  listen: [1, 2]"));
    assert_eq!(path, "server.listen");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn missing_required_section_is_named() {
    let text = BASE.replace(
        "issuance-policies:\n  - name: default\n    dns:\n      allow: [\".example.test/3\"]\n",
        "",
    );
    let (_, _, msg) = refuse(&text);
    assert!(
        msg.contains("required key `issuance-policies` is missing"),
        "{msg}"
    );
}

#[test]
fn explicit_zero_timeout_is_refused() {
    let (path, line, msg) = refuse(&with(
        "  listen: \"127.0.0.1:8443\"",
        "  listen: \"127.0.0.1:8443\"\n  read-timeout: 0s",
    ));
    assert_eq!(path, "server.read-timeout");
    assert_eq!(line, Some(5));
    assert!(msg.contains("explicit zero is not allowed"), "{msg}");
}

#[test]
fn explicit_zero_size_is_refused() {
    let (path, _, msg) = refuse(&with(
        "  listen: \"127.0.0.1:8443\"",
        "  listen: \"127.0.0.1:8443\"\n  max-body-bytes: 0",
    ));
    assert_eq!(path, "server.max-body-bytes");
    assert!(msg.contains("nonzero") || msg.contains("zero"), "{msg}");
}

#[test]
fn duration_without_unit_is_refused() {
    let (path, _, msg) = refuse(&with(
        "  listen: \"127.0.0.1:8443\"",
        "  listen: \"127.0.0.1:8443\"\n  idle-timeout: 60",
    ));
    assert_eq!(path, "server.idle-timeout");
    assert!(msg.contains("needs a unit"), "{msg}");
}

#[test]
fn connection_caps_default_and_refuse_zero() {
    let c = load(BASE).expect("valid");
    assert_eq!(c.server.max_connections_per_ip, 256);
    assert!(c.server.max_connections_is_default);
    assert_eq!(
        c.server.max_connections,
        default_max_connections(open_file_limit())
    );
    let c = load(&with(
        "  listen: \"127.0.0.1:8443\"",
        "  listen: \"127.0.0.1:8443\"\n  max-connections: 50000\n  max-connections-per-ip: 8",
    ))
    .expect("valid");
    assert_eq!(c.server.max_connections, 50_000);
    assert!(!c.server.max_connections_is_default);
    assert_eq!(c.server.max_connections_per_ip, 8);
    for key in ["max-connections", "max-connections-per-ip"] {
        let (path, line, msg) = refuse(&with(
            "  listen: \"127.0.0.1:8443\"",
            &format!("  listen: \"127.0.0.1:8443\"\n  {key}: 0"),
        ));
        assert_eq!(path, format!("server.{key}"));
        assert_eq!(line, Some(5));
        assert!(msg.contains("nonzero") || msg.contains("zero"), "{msg}");
    }
}

#[test]
fn default_max_connections_leaves_descriptors_in_reserve() {
    assert_eq!(default_max_connections(None), 10_000);
    assert_eq!(default_max_connections(Some(1_048_576)), 10_000);
    assert_eq!(default_max_connections(Some(10_256)), 10_000);
    assert_eq!(default_max_connections(Some(4096)), 3840);
    assert_eq!(default_max_connections(Some(1024)), 768);
    assert_eq!(default_max_connections(Some(256)), 192);
    assert_eq!(default_max_connections(Some(64)), 32);
    assert_eq!(default_max_connections(Some(8)), 1);
}

#[test]
fn partial_section_gets_defaults() {
    let c = load(&format!("{BASE}workers:\n  workers: 2\n")).expect("valid");
    assert_eq!(c.workers.workers.get(), 2);
    assert_eq!(
        c.workers.drain_timeout.get(),
        std::time::Duration::from_secs(30)
    );
}

#[test]
fn relative_workdir_is_refused_with_hint() {
    let (path, line, msg) = refuse(&with("workdir: /var/lib/certeasy", "workdir: data"));
    assert_eq!(path, "workdir");
    assert_eq!(line, Some(1));
    assert!(msg.contains("%CONFIGDIR%"), "{msg}");
}

#[test]
fn configdir_anchors_workdir() {
    let c = load(&with(
        "workdir: /var/lib/certeasy",
        "workdir: \"%CONFIGDIR%/work\"",
    ))
    .expect("valid");
    assert_eq!(c.workdir, Path::new("/etc/certeasy/work"));
}

#[test]
fn relative_path_elsewhere_is_refused() {
    let (path, _, msg) = refuse(&format!("{BASE}database:\n  path: db.sqlite\n"));
    assert_eq!(path, "database.path");
    assert!(msg.contains("%WORKDIR%"), "{msg}");
}

#[test]
fn workdir_anchor_expands() {
    let c = load(&format!(
        "{BASE}database:\n  path: \"%WORKDIR%/other.sqlite\"\n"
    ))
    .expect("valid");
    assert_eq!(c.database_path, Path::new("/var/lib/certeasy/other.sqlite"));
}

#[test]
fn http_url_is_refused() {
    let (path, _, msg) = refuse(&with(
        "https://acme.example.test",
        "http://acme.example.test",
    ));
    assert_eq!(path, "server.url[0]");
    assert!(msg.contains("must use https"), "{msg}");
}

#[test]
fn bad_listen_address_is_refused() {
    let (path, _, msg) = refuse(&with("\"127.0.0.1:8443\"", "\"localhost\""));
    assert_eq!(path, "server.listen");
    assert!(msg.contains("address:port"), "{msg}");
}

#[test]
fn missing_ip_policy_is_refused() {
    let (path, _, msg) = refuse(&with(
        "    resolved-ip-policy:\n      allow-cidrs: [\"127.0.0.0/8\"]\n",
        "",
    ));
    assert_eq!(path, "dns-validation-profiles[0].resolved-ip-policy");
    assert!(msg.contains("must never mean"), "{msg}");
}

#[test]
fn empty_ip_policy_is_refused() {
    let (path, _, msg) = refuse(&with(
        "      allow-cidrs: [\"127.0.0.0/8\"]",
        "      allow-cidrs: []",
    ));
    assert_eq!(path, "dns-validation-profiles[0].resolved-ip-policy");
    assert!(
        msg.contains("allow-cidrs") && msg.contains("deny-cidrs"),
        "{msg}"
    );
}

#[test]
fn bad_cidr_is_refused() {
    let (path, _, msg) = refuse(&with("[\"127.0.0.0/8\"]", "[\"127.0.0.0/99\"]"));
    assert_eq!(path, "dns-validation-profiles[0].resolved-ip-policy");
    assert!(msg.contains("127.0.0.0/99"), "{msg}");
}

#[test]
fn zone_needs_exactly_one_resolver() {
    let (path, _, msg) = refuse(&with(
        "        dns-server: [\"127.0.0.1:5353\"]",
        "        dns-server: [\"127.0.0.1:5353\"]\n        system: true",
    ));
    assert_eq!(path, "dns-validation-profiles[0].zones[0]");
    assert!(msg.contains("not both"), "{msg}");
    let (_, _, msg) = refuse(&with("        dns-server: [\"127.0.0.1:5353\"]\n", ""));
    assert!(msg.contains("set system: true or list dns-server"), "{msg}");
}

#[test]
fn builtin_type_loads_without_warnings() {
    let c = load(BASE).expect("valid");
    assert!(matches!(c.authorities[0].kind, AuthorityKind::Builtin(_)));
    assert_eq!(c.warnings, Vec::new());
}

#[test]
fn fake_type_loads_as_builtin_with_one_deprecation_warning() {
    let c = load(&with("    type: builtin\n", "    type: fake\n")).expect("valid");
    assert!(matches!(c.authorities[0].kind, AuthorityKind::Builtin(_)));
    assert_eq!(c.authorities[0].kind.type_name(), "builtin");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert_eq!(w.path, "authorities[0].type");
    assert_eq!(w.line, Some(19));
    assert!(w.message.contains("deprecated"), "{}", w.message);
    assert!(w.message.contains("type: builtin"), "{}", w.message);
    assert_eq!(
        w.in_file(Path::new("/etc/certeasy/config.yml")).to_string(),
        format!(
            "/etc/certeasy/config.yml:19: authorities[0].type: {}",
            w.message
        )
    );
}

#[test]
fn unknown_authority_type_suggests_the_current_names() {
    let (path, line, msg) = refuse(&with("    type: builtin\n", "    type: fakes\n"));
    assert_eq!(path, "authorities[0].type");
    assert_eq!(line, Some(19));
    assert!(
        msg.contains("unknown variant `fakes`, expected one of `builtin`, `adcs`, `adcs-cli`"),
        "{msg}"
    );
}

#[test]
fn builtin_authority_needs_a_password() {
    let (path, line, msg) = refuse(&with(
        "    configuration:\n      password: secret\n",
        "    configuration:\n      common-name: x\n",
    ));
    assert_eq!(path, "authorities[0].configuration");
    assert_eq!(line, Some(20));
    assert!(
        msg.contains("password-file, password-env or password"),
        "{msg}"
    );
}

#[cfg(unix)]
fn secret_file(dir: &std::path::Path, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join(format!("pw-{mode:o}"));
    std::fs::write(&f, "s3cret\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

#[cfg(unix)]
#[test]
fn world_readable_password_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The built-in CA's password file.
    let open = secret_file(dir.path(), 0o644);
    let (path, _, msg) = refuse(&with(
        "      password: secret",
        &format!("      password-file: {}", open.display()),
    ));
    assert_eq!(path, "authorities[0].configuration.password-file");
    assert!(
        msg.contains("mode 644") && msg.contains("chmod 600"),
        "{msg}"
    );
    // The ADCS service account's.
    let (path, _, msg) = refuse(&with_adcs("").replace(
        "password-env: CERTEASY_TEST_ADCS_PW",
        &format!("password-file: {}", open.display()),
    ));
    assert_eq!(path, "authorities[1].configuration.auth.password-file");
    assert!(msg.contains("chmod 600"), "{msg}");
    // A private one is read, newline dropped.
    let private = secret_file(dir.path(), 0o600);
    let c = load(&with(
        "      password: secret",
        &format!("      password-file: {}", private.display()),
    ))
    .unwrap();
    let crate::config::AuthorityKind::Builtin(f) = &c.authorities[0].kind else {
        panic!("not the built-in CA")
    };
    assert_eq!(f.password, b"s3cret");
}

#[test]
fn builtin_ca_password_may_come_from_the_environment() {
    std::env::set_var("CERTEASY_TEST_BUILTIN_PW", "from-env");
    let c = load(&with(
        "      password: secret",
        "      password-env: CERTEASY_TEST_BUILTIN_PW",
    ))
    .unwrap();
    let crate::config::AuthorityKind::Builtin(f) = &c.authorities[0].kind else {
        panic!("not the built-in CA")
    };
    assert_eq!(f.password, b"from-env");
    let (_, _, msg) = refuse(&with(
        "      password: secret",
        "      password: secret\n      password-env: CERTEASY_TEST_BUILTIN_PW",
    ));
    assert!(msg.contains("only one of"), "{msg}");
}

#[test]
fn unknown_key_inside_authority_configuration_has_its_line() {
    let (path, line, msg) = refuse(&with(
        "      password: secret\n",
        "      password: secret\n      colour: blue\n",
    ));
    assert_eq!(path, "authorities[0].configuration.colour");
    assert_eq!(line, Some(22));
    assert!(msg.contains("unknown key `colour`"), "{msg}");
}

#[test]
fn missing_password_file_is_reported() {
    let (path, _, msg) = refuse(&with(
        "      password: secret",
        "      password-file: /nonexistent/certeasy-pw",
    ));
    assert_eq!(path, "authorities[0].configuration.password-file");
    assert!(
        msg.contains("cannot read /nonexistent/certeasy-pw"),
        "{msg}"
    );
}

const ADCS: &str = r#"  - name: corp
    type: adcs
    configuration:
      ca-name: 'ca01.corp.example\Corp Issuing CA'
      certificate-template: CerteasyWebServer
      auth:
        method: ntlm
        domain: CORP
        username: svc-certeasy
        password-env: CERTEASY_TEST_ADCS_PW
"#;

fn with_adcs(auth_tail: &str) -> String {
    let text = BASE.replace(
        "issuance-policies:",
        &format!("{}{auth_tail}issuance-policies:", ADCS),
    );
    format!("{text}policy-bindings:\n  - policy: default\n    authorities: [corp]\n")
}

#[test]
fn adcs_authority_is_parsed() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let c = load(&with_adcs("")).unwrap_or_else(|e| panic!("{e}"));
    let a = c.authority("corp").unwrap();
    let AuthorityKind::Adcs(s) = &a.kind else {
        panic!("not adcs")
    };
    assert_eq!(s.host, "ca01.corp.example");
    assert_eq!(s.ca, "Corp Issuing CA");
    assert_eq!(s.password, "s3cret");
    assert_eq!(s.endpoint_mapper_port, 135);
    assert_eq!(s.port, None);
    assert_eq!(s.default_timeout, std::time::Duration::from_secs(240));
    assert_eq!(a.max_validity, std::time::Duration::from_secs(398 * 86400));
    assert!(
        !format!("{s:?}").contains("s3cret"),
        "password must not appear in Debug"
    );
}

#[test]
fn adcs_plain_password_is_refused_with_a_hint() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let (path, line, msg) = refuse(&with_adcs("        password: hunter2\n"));
    assert_eq!(path, "authorities[1].configuration.auth.password");
    assert_eq!(line, Some(32));
    assert!(
        msg.contains("password-file") && msg.contains("password-env"),
        "{msg}"
    );
}

#[test]
fn adcs_ca_name_needs_host_and_ca() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let text = with_adcs("").replace("'ca01.corp.example\\Corp Issuing CA'", "'Corp Issuing CA'");
    let (path, _, msg) = refuse(&text);
    assert_eq!(path, "authorities[1].configuration.ca-name");
    assert!(msg.contains("HOST\\CA Common Name"), "{msg}");
}

#[test]
fn adcs_missing_password_env_is_reported() {
    let text = with_adcs("").replace("CERTEASY_TEST_ADCS_PW", "CERTEASY_TEST_UNSET_VARIABLE");
    let (path, _, msg) = refuse(&text);
    assert_eq!(path, "authorities[1].configuration.auth.password-env");
    assert!(msg.contains("CERTEASY_TEST_UNSET_VARIABLE"), "{msg}");
}

#[test]
fn adcs_named_pipes_are_refused_and_kerberos_without_kdc_discovers_it() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let text = with_adcs("").replace(
        "      certificate-template:",
        "      transport: np\n      certificate-template:",
    );
    let (path, _, _) = refuse(&text);
    assert_eq!(path, "authorities[1].configuration.transport");
    // Without kdc the KDC is found by DNS SRV: accepted, given a realm.
    let text = with_adcs("")
        .replace("method: ntlm", "method: kerberos")
        .replace(
            "domain: CORP\n",
            "domain: CORP\n        realm: CORP.EXAMPLE\n",
        );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    assert_eq!(s.kdc, None);
    assert!(s.discovers_kdc());
    assert_eq!(
        s.client_auth().kdc.as_deref(),
        Some("tcp://_kerberos._tcp.corp.example")
    );
    assert!(s.client_options().kdc.is_some(), "the SRV transport");
    // negotiate with a realm discovers too (NTLM when no KDC is found);
    // without a realm there is nothing to look up.
    let negotiate = text.replace("method: kerberos", "method: negotiate");
    let c = load(&negotiate).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    assert!(s.discovers_kdc());
    let no_realm = negotiate.replace("        realm: CORP.EXAMPLE\n", "");
    let c = load(&no_realm).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    assert!(!s.discovers_kdc());
    assert_eq!(s.client_auth().kdc, None);
}

#[test]
fn adcs_ldap_section_is_parsed_with_defaults() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let c = load(&with_adcs(
        "      ldap:\n        url: ldaps://dc01.corp.example:636\n",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    let l = s.ldap.as_ref().expect("ldap settings");
    assert_eq!(l.url, "ldaps://dc01.corp.example:636");
    assert!(!l.start_tls);
    assert!(l.ca_certs.is_empty(), "system roots by default");
    assert_eq!(l.configuration_dn, None);
    assert_eq!(l.bind_name, None);
    assert_eq!(l.timeout, std::time::Duration::from_secs(10));
    // Without the section, no LDAP checks.
    let c = load(&with_adcs("")).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    assert!(s.ldap.is_none());
}

#[test]
fn adcs_ldap_plaintext_url_without_start_tls_is_refused() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let (path, line, msg) = refuse(&with_adcs(
        "      ldap:\n        url: ldap://dc01.corp.example\n",
    ));
    assert_eq!(path, "authorities[1].configuration.ldap.url");
    assert_eq!(line, Some(33));
    assert!(msg.contains("password in clear"), "{msg}");
    assert!(
        msg.contains("ldaps://") && msg.contains("start-tls: true"),
        "the message names both fixes: {msg}"
    );
    // With StartTLS the same URL is accepted.
    let text =
        with_adcs("      ldap:\n        url: ldap://dc01.corp.example\n        start-tls: true\n");
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    assert!(s.ldap.as_ref().is_some_and(|l| l.start_tls));
}

#[test]
fn adcs_ldap_bad_values_are_refused_with_their_key() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let cases = [
        (
            "        url: ldaps://dc01\n        start-tls: true\n",
            "ldap.start-tls",
            "remove it",
        ),
        ("        url: https://dc01\n", "ldap.url", "ldaps://"),
        (
            "        url: ldaps://dc01/DC=corp,DC=example\n",
            "ldap.url",
            "configuration-dn",
        ),
        (
            "        url: ldaps://dc01\n        ca-file: /nonexistent/dc-root.pem\n",
            "ldap.ca-file",
            "cannot read /nonexistent/dc-root.pem",
        ),
        (
            "        url: ldaps://dc01\n        configuration-dn: Configuration\n",
            "ldap.configuration-dn",
            "not a DN",
        ),
        (
            "        url: ldaps://dc01\n        bind-name: ''\n",
            "ldap.bind-name",
            "anonymous",
        ),
        (
            "        url: ldaps://dc01\n        timeout: 0s\n",
            "ldap.timeout",
            "explicit zero",
        ),
        (
            "        url: ldaps://dc01\n        bind-dn: x\n",
            "ldap",
            "unknown key",
        ),
    ];
    for (tail, key, needle) in cases {
        let (path, _, msg) = refuse(&with_adcs(&format!("      ldap:\n{tail}")));
        assert!(
            path.starts_with(&format!("authorities[1].configuration.{key}")),
            "{tail}: {path}: {msg}"
        );
        assert!(msg.contains(needle), "{tail}: {msg}");
    }
}

#[test]
fn adcs_ldap_ca_file_is_read() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["dc01.corp.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = dir.path().join("dc-root.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let c = load(&with_adcs(&format!(
        "      ldap:\n        url: ldaps://dc01\n        ca-file: {}\n",
        pem.display()
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    let l = s.ldap.as_ref().unwrap();
    assert_eq!(l.ca_certs, vec![cert.der().to_vec()]);
    assert_eq!(l.ca_file.as_deref(), Some(pem.as_path()));
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let (path, _, msg) = refuse(&with_adcs(&format!(
        "      ldap:\n        url: ldaps://dc01\n        ca-file: {}\n",
        empty.display()
    )));
    assert_eq!(path, "authorities[1].configuration.ldap.ca-file");
    assert!(
        msg.contains("give the PEM of the CA that issued the domain controller's certificate"),
        "{msg}"
    );
}

#[test]
fn adcs_cli_needs_certreq_path_off_windows() {
    let text = with("    type: builtin\n    configuration:\n      password: secret\n", "    type: adcs-cli\n    configuration:\n      ca-name: 'ca01\\Corp CA'\n      certificate-template: Web\n");
    let (path, _, msg) = refuse(&text);
    assert_eq!(path, "authorities[0].configuration.certreq-path");
    assert!(msg.contains("prefer type: adcs"), "{msg}");
}

#[test]
fn adcs_cli_is_parsed() {
    let text = with(
        "    type: builtin\n    configuration:\n      password: secret\n",
        "    type: adcs-cli\n    configuration:\n      ca-name: 'ca01\\Corp CA'\n      certificate-template: Web\n      certreq-path: /opt/certreq\n",
    )
    .replace("      mode: pki\n      authority: builtin\n", "      mode: files\n      local-cert-file: /etc/c.pem\n      local-key-file: /etc/k.pem\n");
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::AdcsCli(s) = &c.authorities[0].kind else {
        panic!("not adcs-cli")
    };
    assert_eq!(s.certreq_path, Path::new("/opt/certreq"));
    assert_eq!(s.scratch_dir, Path::new("/var/lib/certeasy/adcs-cli"));
    assert_eq!(s.template, "Web");
}

#[test]
fn adcs_authorities_cannot_issue_for_ed25519_keys_the_built_in_ca_can() {
    use pki::{EcCurve, PublicKeyKind};
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let c = load(&with_adcs("")).unwrap_or_else(|e| panic!("{e}"));
    let adcs = &c.authority("corp").unwrap().kind;
    let builtin = &c.authority("builtin").unwrap().kind;
    let keys = [
        PublicKeyKind::Rsa { bits: 3072 },
        PublicKeyKind::Ec(EcCurve::P256),
        PublicKeyKind::Ec(EcCurve::P384),
    ];
    for key in keys {
        assert!(adcs.issues_for(key), "{key}");
        assert!(builtin.issues_for(key), "{key}");
    }
    assert!(!adcs.issues_for(PublicKeyKind::Ed25519));
    assert!(builtin.issues_for(PublicKeyKind::Ed25519));
    assert_eq!((adcs.type_name(), builtin.type_name()), ("adcs", "builtin"));
}

#[test]
fn validity_over_max_validity_is_refused() {
    let (path, _, msg) = refuse(&with(
        "      password: secret",
        "      password: secret\n      validity: 100d\n      max-validity: 90d",
    ));
    assert_eq!(path, "authorities[0].configuration.validity");
    assert!(msg.contains("exceeds max-validity"), "{msg}");
}

#[test]
fn bad_scope_rule_is_refused() {
    let (path, _, msg) = refuse(&with("[\".example.test/3\"]", "[\"example.test/x\"]"));
    assert_eq!(path, "issuance-policies[0].dns");
    assert!(msg.contains("example.test/x"), "{msg}");
}

#[test]
fn empty_allow_is_refused() {
    let (path, _, msg) = refuse(&with("[\".example.test/3\"]", "[]"));
    assert_eq!(path, "issuance-policies[0].dns.allow");
    assert!(msg.contains("at least one rule"), "{msg}");
}

#[test]
fn unknown_profile_reference_is_refused() {
    let (path, _, msg) = refuse(&with(
        "  - name: default\n",
        "  - name: default\n    dns-validation-profile: nope\n",
    ));
    assert_eq!(path, "issuance-policies[0].dns-validation-profile");
    assert!(msg.contains("unknown validation profile \"nope\""), "{msg}");
}

#[test]
fn bad_signature_algorithm_is_refused() {
    let (path, _, _) = refuse(&with(
        "      allow: [\".example.test/3\"]",
        "      allow: [\".example.test/3\"]\n    signature:\n      allowed-algorithms: [MD5]",
    ));
    assert_eq!(path, "issuance-policies[0].signature.allowed-algorithms[0]");
}

#[test]
fn dangerous_extra_eku_is_refused() {
    let (path, _, _) = refuse(&with(
        "      allow: [\".example.test/3\"]",
        "      allow: [\".example.test/3\"]\n    csr:\n      allowed-extra-eku: [\"2.5.29.37.0\"]",
    ));
    assert_eq!(path, "issuance-policies[0].csr.allowed-extra-eku[0]");
}

#[test]
fn two_policies_need_bindings() {
    let text = format!("{BASE}  - name: second\n    dns:\n      allow: [\".other.test/2\"]\n");
    let (path, _, msg) = refuse(&text);
    assert_eq!(path, "policy-bindings");
    assert!(
        msg.contains("is required when there is more than one policy"),
        "{msg}"
    );
}

#[test]
fn binding_to_unknown_authority_is_refused() {
    let (path, _, msg) = refuse(&format!(
        "{BASE}policy-bindings:\n  - policy: default\n    authorities: [builtin, ghost]\n"
    ));
    assert_eq!(path, "policy-bindings[0].authorities[1]");
    assert!(msg.contains("unknown authority \"ghost\""), "{msg}");
}

#[test]
fn duplicate_binding_is_refused() {
    let (path, _, msg) = refuse(&format!(
        "{BASE}policy-bindings:\n  - policy: default\n    authorities: [builtin]\n  - policy: default\n    authorities: [builtin]\n"
    ));
    assert_eq!(path, "policy-bindings[1].policy");
    assert!(msg.contains("bound twice"), "{msg}");
}

#[test]
fn bad_strategy_is_refused() {
    let (path, _, msg) = refuse(&format!("{BASE}policy-bindings:\n  - policy: default\n    authorities: [builtin]\n    strategy: random\n"));
    assert_eq!(path, "policy-bindings[0].strategy");
    assert!(msg.contains("first_available"), "{msg}");
}

#[test]
fn shutdown_timeout_must_not_exceed_drain_timeout() {
    let (path, _, msg) = refuse(&format!("{BASE}workers:\n  drain-timeout: 10s\n"));
    assert_eq!(path, "server.shutdown-timeout");
    assert!(
        msg.contains("less than or equal to workers.drain-timeout"),
        "{msg}"
    );
}

#[test]
fn idle_min_over_idle_max_is_refused() {
    let (path, _, _) = refuse(&format!(
        "{BASE}workers:\n  idle-min: 10s\n  idle-max: 1s\n"
    ));
    assert_eq!(path, "workers.idle-min");
}

#[test]
fn url_host_must_be_covered_by_one_bundle() {
    let text = with(
        "    - name: main\n      mode: pki\n      authority: builtin\n",
        "    - name: main\n      hosts: [other.example.test]\n      mode: pki\n      authority: builtin\n",
    );
    let (path, _, msg) = refuse(&text);
    assert_eq!(path, "server.url[0]");
    assert!(
        msg.contains("exactly one tls-certificate-manager bundle"),
        "{msg}"
    );
}

#[test]
fn files_mode_needs_both_files() {
    let (path, _, msg) = refuse(&with(
        "      mode: pki\n      authority: builtin\n",
        "      mode: files\n      local-cert-file: /etc/c.pem\n",
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0]");
    assert!(msg.contains("local-cert-file and local-key-file"), "{msg}");
}

#[test]
fn pki_mode_with_unknown_authority_is_refused() {
    let (path, _, msg) = refuse(&with("      authority: builtin", "      authority: nobody"));
    assert_eq!(path, "tls-certificate-manager.bundles[0].authority");
    assert!(msg.contains("unknown authority"), "{msg}");
}

#[test]
fn postgres_settings_are_read() {
    let c = load(&format!(
        "{BASE}database:\n  type: postgres\n  dsn: \"host=db.example user=certeasy dbname=ce\"\n  pool-size: 4\n  connect-timeout: 3s\n  statement-timeout: 20s\n  sslmode: require\n  schema: ce_prod\n"
    ))
    .expect("valid");
    let pg = c.postgres.expect("postgres settings");
    assert_eq!(pg.dsn, "host=db.example user=certeasy dbname=ce");
    assert_eq!(pg.pool_size, 4);
    assert_eq!(pg.connect_timeout, std::time::Duration::from_secs(3));
    assert_eq!(pg.statement_timeout, std::time::Duration::from_secs(20));
    assert_eq!(pg.sslmode, crate::config::SslMode::Require);
    assert_eq!(pg.schema, "ce_prod");
    assert!(pg.password.is_none());
}

#[test]
fn postgres_inline_password_is_refused_at_its_line() {
    for dsn in [
        "postgres://certeasy:hunter2@db.example/ce",
        "host=db.example user=certeasy password=hunter2",
    ] {
        let text = format!("{BASE}database:\n  type: postgres\n  dsn: \"{dsn}\"\n");
        let (path, line, msg) = refuse(&text);
        assert_eq!(path, "database.dsn");
        let expected = text.lines().position(|l| l.contains("dsn:")).unwrap() + 1;
        assert_eq!(line, Some(expected));
        assert!(msg.contains("password-file or password-env"), "{msg}");
    }
}

#[test]
fn postgres_password_comes_from_the_environment() {
    std::env::set_var("CERTEASY_TEST_PG_PW", "s3cret");
    let c = load(&format!(
        "{BASE}database:\n  type: postgres\n  dsn: postgres://certeasy@db.example/ce\n  password-env: CERTEASY_TEST_PG_PW\n"
    ))
    .expect("valid");
    assert_eq!(c.postgres.unwrap().password.as_deref(), Some("s3cret"));
    let (path, _, _) = refuse(&format!(
        "{BASE}database:\n  type: postgres\n  dsn: postgres://certeasy@db.example/ce\n  password-env: CERTEASY_TEST_PG_PW_UNSET\n"
    ));
    assert_eq!(path, "database.password-env");
}

#[test]
fn postgres_keys_are_refused_with_sqlite() {
    let (path, _, msg) = refuse(&format!("{BASE}database:\n  pool-size: 4\n"));
    assert_eq!(path, "database.pool-size");
    assert!(msg.contains("only to type: postgres"), "{msg}");
    let (path, _, _) = refuse(&format!(
        "{BASE}database:\n  type: postgres\n  dsn: postgres://u@h/d\n  schema: \"x; drop\"\n"
    ));
    assert_eq!(path, "database.schema");
}

#[test]
fn several_issues_are_all_reported() {
    let text = with("https://acme.example.test", "http://acme.example.test")
        .replace("[\".example.test/3\"]", "[]");
    let e = load(&text).expect_err("refused");
    assert!(e.issues.len() >= 2, "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("/etc/certeasy/config.yml:3: server.url[0]"),
        "{shown}"
    );
}

#[test]
fn yaml_syntax_error_names_the_line() {
    let e = load("workdir: /x\nserver: [\n").expect_err("refused");
    assert!(e.issues[0].line.is_some(), "{e}");
}

/// Found by the `config` fuzz target: serde_norway counts U+0085 as a line
/// break, so this text was refused with "required key `workdir` is missing"
/// on line 3 of a one-line file.
#[test]
fn yaml_1_1_line_breaks_are_refused_with_their_line() {
    let e = load("\u{85} ").expect_err("refused");
    assert_eq!(e.issues.len(), 1, "{e}");
    assert_eq!(e.issues[0].line, Some(1), "{e}");
    assert!(e.issues[0].message.contains("U+0085 (NEXT LINE)"), "{e}");
    for c in ['\u{85}', '\u{2028}', '\u{2029}'] {
        let text = with("password: secret", &format!("password: sec{c}ret"));
        let e = load(&text).expect_err("refused");
        let line = BASE
            .lines()
            .position(|l| l.contains("password: secret"))
            .map(|i| i + 1);
        assert_eq!(e.issues[0].line, line, "{e}");
        assert!(
            e.to_string().contains(&format!("U+{:04X}", u32::from(c))),
            "{e}"
        );
    }
}

#[test]
fn quickstart_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.yml");
    let c = super::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.workdir.ends_with("quickstart-workdir"));
}

#[test]
fn rate_limits_and_audit_default_to_on() {
    let c = load(BASE).expect("valid");
    let r = &c.rate_limiting;
    let g = r.global.expect("global on");
    assert_eq!((g.count, g.burst), (6000, 1000));
    assert_eq!(g.per, std::time::Duration::from_secs(60));
    assert_eq!(
        r.account_creation.map(|a| (a.count, a.burst)),
        Some((300, 60))
    );
    assert_eq!(r.orders.map(|o| (o.count, o.burst)), Some((1000, 200)));
    assert_eq!(r.san_budget.map(|o| o.count), Some(10_000));
    let d = r.duplicate_certificate.expect("on");
    assert_eq!(
        (d.max, d.window),
        (50, std::time::Duration::from_secs(86_400))
    );
    let f = r.failed_validation.expect("on");
    assert_eq!(
        (f.max, f.window),
        (50, std::time::Duration::from_secs(3_600))
    );
    assert!(r.pending_authorizations.enabled);
    assert!(r.whitelist.is_empty());
    assert!(c.audit.enabled);
    assert_eq!(c.audit.path, Path::new("/var/lib/certeasy/audit.log"));
    assert_eq!(c.audit.max_segment_bytes, 100 * 1024 * 1024);
}

#[test]
fn each_limit_can_be_tuned_or_switched_off() {
    let c = load(&format!(
        "{BASE}rate-limiting:\n  whitelist: [10.0.0.0/8, 192.0.2.7]\n  global: {{enabled: false}}\n  order-creation: {{order-burst: 5}}\n  failed-validation: {{window: 10m}}\naudit:\n  path: \"%WORKDIR%/log/trail.jsonl\"\n  rotate: {{max-size-mb: 5}}\n"
    ))
    .expect("valid");
    let r = &c.rate_limiting;
    assert!(r.global.is_none());
    assert_eq!(r.orders.map(|o| (o.count, o.burst)), Some((1000, 5)));
    assert_eq!(
        r.failed_validation.map(|f| f.window),
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(r.whitelist.len(), 2);
    assert_eq!(c.audit.path, Path::new("/var/lib/certeasy/log/trail.jsonl"));
    assert_eq!(c.audit.max_segment_bytes, 5 * 1024 * 1024);
}

#[test]
fn bad_rate_limit_and_audit_keys_are_refused_with_their_line() {
    let (path, line, msg) = refuse(&format!(
        "{BASE}rate-limiting:\n  whitelist: [\"10.0.0.0/33\"]\n"
    ));
    assert_eq!(path, "rate-limiting.whitelist[0]");
    assert_eq!(line, Some(27));
    assert!(msg.contains("not an IP address or CIDR"), "{msg}");
    let (path, _, msg) = refuse(&format!(
        "{BASE}rate-limiting:\n  global:\n    requests-per-minit: 5\n"
    ));
    assert_eq!(path, "rate-limiting.global.requests-per-minit");
    assert!(msg.contains("unknown key"), "{msg}");
    let (path, _, msg) = refuse(&format!(
        "{BASE}rate-limiting:\n  order-creation:\n    order-burst: 0\n"
    ));
    assert_eq!(path, "rate-limiting.order-creation.order-burst");
    assert!(msg.contains("nonzero"), "{msg}");
    let (path, _, msg) = refuse(&format!(
        "{BASE}rate-limiting:\n  duplicate-certificate:\n    window: 0s\n"
    ));
    assert_eq!(path, "rate-limiting.duplicate-certificate.window");
    assert!(msg.contains("explicit zero"), "{msg}");
    let (path, _, msg) = refuse(&format!("{BASE}audit:\n  path: audit.log\n"));
    assert_eq!(path, "audit.path");
    assert!(msg.contains("relative"), "{msg}");
}

#[test]
fn logs_file_output_needs_a_file_and_gets_rotation_defaults() {
    let (path, line, msg) = refuse(&format!("{BASE}logs:\n  output: file\n"));
    assert_eq!(path, "logs.output");
    assert_eq!(line, Some(27));
    assert!(msg.contains("needs logs.file"), "{msg}");
    let (path, _, msg) = refuse(&format!("{BASE}logs:\n  file: /var/log/certeasy.log\n"));
    assert_eq!(path, "logs.file");
    assert!(msg.contains("only to output: file"), "{msg}");
    let c = load(&format!(
        "{BASE}logs:\n  output: file\n  file: \"%WORKDIR%/log/certeasy.log\"\n  rotate:\n    max-backups: 3\n"
    ))
    .expect("valid");
    let f = c.logs.file.expect("a file");
    assert_eq!(f.path, Path::new("/var/lib/certeasy/log/certeasy.log"));
    assert_eq!(f.max_size_bytes, 100 * 1024 * 1024);
    assert_eq!(f.max_backups, 3);
    let (path, _, _) = refuse(&format!(
        "{BASE}logs:\n  output: file\n  file: /x.log\n  rotate:\n    max-size-mb: 0\n"
    ));
    assert_eq!(path, "logs.rotate.max-size-mb");
}

#[test]
fn logs_services_names_are_checked_against_the_components() {
    let (path, line, msg) = refuse(&format!(
        "{BASE}logs:\n  services:\n    va: debug\n    vaa: debug\n"
    ));
    assert_eq!(path, "logs.services.vaa");
    assert_eq!(line, Some(29));
    assert!(msg.contains("valid components: server, tls, wfe"), "{msg}");
    let c = load(&format!("{BASE}logs:\n  services:\n    msrpc: warn\n")).expect("valid");
    assert_eq!(c.logs.services.get("msrpc"), Some(&LogLevel::Warn));
}

#[test]
fn metrics_are_off_by_default_and_need_their_own_address() {
    let c = load(BASE).expect("valid");
    assert_eq!(c.metrics.listen, None);
    let c = load(&format!("{BASE}metrics:\n  listen: \"127.0.0.1:9464\"\n")).expect("valid");
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
    let (path, _, msg) = refuse(&format!("{BASE}metrics:\n  listen: \"127.0.0.1:8443\"\n"));
    assert_eq!(path, "metrics.listen");
    assert!(msg.contains("is server.listen"), "{msg}");
    let (path, _, msg) = refuse(&format!("{BASE}metrics:\n  listen: localhost\n"));
    assert_eq!(path, "metrics.listen");
    assert!(msg.contains("not an IP address and port"), "{msg}");
}

/// A Kerberos `auth` block in place of the NTLM one of [`ADCS`].
fn with_kerberos_auth(auth: &str) -> String {
    let text = BASE.replace(
        "issuance-policies:",
        &format!(
            "{}{auth}issuance-policies:",
            ADCS.split("      auth:\n")
                .next()
                .unwrap_or_default()
                .to_owned()
                + "      auth:\n"
        ),
    );
    format!("{text}policy-bindings:\n  - policy: default\n    authorities: [corp]\n")
}

/// A keytab with one AES-256 key of `alice@CORP.TEST`, mode 600.
pub(crate) fn keytab_file(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut e = Vec::new();
    e.extend_from_slice(&1u16.to_be_bytes());
    for s in ["CORP.TEST", "alice"] {
        e.extend_from_slice(&(s.len() as u16).to_be_bytes());
        e.extend_from_slice(s.as_bytes());
    }
    e.extend_from_slice(&1u32.to_be_bytes());
    e.extend_from_slice(&0u32.to_be_bytes());
    e.push(2);
    e.extend_from_slice(&18u16.to_be_bytes());
    e.extend_from_slice(&32u16.to_be_bytes());
    e.extend_from_slice(&[0x0a; 32]); // ends in '\n' on purpose: read as binary
    let mut f = vec![5, 2];
    f.extend_from_slice(&(e.len() as u32).to_be_bytes());
    f.extend(e);
    let p = dir.join("alice.keytab");
    std::fs::write(&p, f).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn adcs_kerberos_with_a_keytab_needs_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let kt = keytab_file(dir.path());
    let c = load(&with_kerberos_auth(&format!(
        "        method: kerberos\n        domain: corp.test\n        username: alice\n        keytab: {}\n        kdc: tcp://127.0.0.2:88\n        spn: HOST/ca.corp.test\n",
        kt.display()
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    assert_eq!(
        s.realm.as_deref(),
        Some("CORP.TEST"),
        "realm from the DNS domain"
    );
    assert_eq!(s.password, "");
    let k = s.keytab.as_ref().expect("keytab loaded");
    let e = k.client_key(Some("alice@CORP.TEST")).expect("alice's key");
    assert_eq!(e.key, vec![0x0a; 32], "binary content kept whole");
    assert_eq!(s.spn.as_deref(), Some("HOST/ca.corp.test"));
}

#[test]
fn adcs_kerberos_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let kt = keytab_file(dir.path());
    // a keytab with NTLM
    let (path, _, msg) = refuse(&with_kerberos_auth(&format!(
        "        method: ntlm\n        domain: CORP\n        username: alice\n        keytab: {}\n",
        kt.display()
    )));
    assert_eq!(path, "authorities[1].configuration.auth.keytab");
    assert!(msg.contains("method kerberos"), "{msg}");
    // no realm for kerberos (NetBIOS domain only)
    let (path, _, msg) = refuse(&with_kerberos_auth(&format!(
        "        method: kerberos\n        domain: CORP\n        username: alice\n        keytab: {}\n        kdc: tcp://127.0.0.2:88\n",
        kt.display()
    )));
    assert_eq!(path, "authorities[1].configuration.auth.realm");
    assert!(msg.contains("CORP.EXAMPLE"), "{msg}");
    // not a keytab
    let bad = dir.path().join("bad.keytab");
    std::fs::write(&bad, b"not a keytab").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (path, _, msg) = refuse(&with_kerberos_auth(&format!(
        "        method: kerberos\n        realm: CORP.TEST\n        username: alice\n        keytab: {}\n        kdc: tcp://127.0.0.2:88\n",
        bad.display()
    )));
    assert_eq!(path, "authorities[1].configuration.auth.keytab");
    assert!(msg.contains("not a keytab"), "{msg}");
    // Kerberos at packet integrity
    let (path, _, msg) = refuse(
        &with_kerberos_auth(&format!(
            "        method: kerberos\n        realm: CORP.TEST\n        username: alice\n        keytab: {}\n        kdc: tcp://127.0.0.2:88\n",
            kt.display()
        ))
        .replace("      auth:\n", "      auth-level: integrity\n      auth:\n"),
    );
    assert_eq!(path, "authorities[1].configuration.auth-level");
    assert!(msg.contains("privacy"), "{msg}");
}

const ACME_BUNDLE: &str =
    "      mode: acme\n      directory-url: https://ca.example.test/directory\n";

#[test]
fn acme_mode_loads_with_defaults() {
    let c = load(&with(
        "      mode: pki\n      authority: builtin\n",
        ACME_BUNDLE,
    ))
    .unwrap();
    let TlsSource::Acme(a) = &c.tls_bundles[0].source else {
        panic!("not acme: {:?}", c.tls_bundles[0].source);
    };
    assert_eq!(a.directory_url, "https://ca.example.test/directory");
    assert_eq!(a.challenge, AcmeChallenge::TlsAlpn01);
    assert_eq!(
        a.cache_dir,
        Path::new("/var/lib/certeasy/server-certificate-acme/main")
    );
    assert_eq!(a.key, ListenerKey::EcdsaP256);
    assert!(a.eab.is_none() && a.ca_root.is_none());
}

#[test]
fn acme_mode_needs_an_https_directory() {
    let (path, _, msg) = refuse(&with(
        "      mode: pki\n      authority: builtin\n",
        "      mode: acme\n",
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0]");
    assert!(msg.contains("directory-url"), "{msg}");
    let (path, line, msg) = refuse(&with(
        "      mode: pki\n      authority: builtin\n",
        "      mode: acme\n      directory-url: http://ca.example.test/directory\n",
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0].directory-url");
    assert_eq!(line, Some(9));
    assert!(msg.contains("https"), "{msg}");
}

#[test]
fn acme_mode_refuses_bad_contact_and_http01_without_address() {
    let (path, _, msg) = refuse(&with(
        "      mode: pki\n      authority: builtin\n",
        &format!("{ACME_BUNDLE}      contact: [ops@example.test]\n"),
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0].contact[0]");
    assert!(msg.contains("mailto:"), "{msg}");
    let (path, _, msg) = refuse(&with(
        "      mode: pki\n      authority: builtin\n",
        &format!("{ACME_BUNDLE}      challenge: http-01\n"),
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0].http-01-listen");
    assert!(msg.contains("0.0.0.0:80"), "{msg}");
    let c = load(&with(
        "      mode: pki\n      authority: builtin\n",
        &format!("{ACME_BUNDLE}      challenge: http-01\n      http-01-listen: \"0.0.0.0:80\"\n"),
    ))
    .unwrap();
    let TlsSource::Acme(a) = &c.tls_bundles[0].source else {
        panic!("not acme");
    };
    assert_eq!(
        a.challenge,
        AcmeChallenge::Http01("0.0.0.0:80".parse().unwrap())
    );
}

#[test]
fn acme_mode_refuses_a_wildcard_host() {
    let (path, _, msg) = refuse(&with(
        "    - name: main\n      mode: pki\n      authority: builtin\n",
        &format!(
            "    - name: main\n      hosts: [acme.example.test, \"*.example.test\"]\n{ACME_BUNDLE}"
        ),
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0].hosts");
    assert!(msg.contains("tls-alpn-01"), "{msg}");
}

#[cfg(unix)]
#[test]
fn acme_mode_eab_key_file_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), 0o644);
    let (path, _, msg) = refuse(&with(
        "      mode: pki\n      authority: builtin\n",
        &format!(
            "{ACME_BUNDLE}      eab:\n        key-id: kid-1\n        hmac-key-file: {}\n",
            key.display()
        ),
    ));
    assert_eq!(path, "tls-certificate-manager.bundles[0].eab.hmac-key-file");
    assert!(msg.contains("chmod 600"), "{msg}");
}

#[test]
fn revocation_status_is_off_by_default_and_parsed_when_given() {
    assert_eq!(load(BASE).unwrap().revocation_status, None);
    let text = format!(
        "{BASE}revocation-status:\n  listen: \"0.0.0.0:8080\"\n  base-url: \"http://pki.example.test:8080/status/\"\n"
    );
    let r = load(&text).unwrap().revocation_status.unwrap();
    assert_eq!(r.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(r.base_url, "http://pki.example.test:8080/status");
    assert_eq!(
        r.crl_url("builtin"),
        "http://pki.example.test:8080/status/crl/builtin.crl"
    );
    assert_eq!(r.ocsp_url(), "http://pki.example.test:8080/status/ocsp");
}

#[test]
fn revocation_status_refusals_name_key_and_line() {
    let section = |listen: &str, url: &str| {
        format!("{BASE}revocation-status:\n  listen: \"{listen}\"\n  base-url: \"{url}\"\n")
    };
    let lines = BASE.lines().count();
    let (path, line, msg) = refuse(&section("127.0.0.1:8443", "http://pki.example.test"));
    assert_eq!(path, "revocation-status.listen");
    assert_eq!(line, Some(lines + 2));
    assert!(msg.contains("server.listen"), "{msg}");
    let (path, _, msg) = refuse(&section("pki:80", "http://pki.example.test"));
    assert_eq!(path, "revocation-status.listen");
    assert!(msg.contains("not an IP address and port"), "{msg}");
    let (path, line, msg) = refuse(&section("0.0.0.0:8080", "https://pki.example.test"));
    assert_eq!(path, "revocation-status.base-url");
    assert_eq!(line, Some(lines + 3));
    assert!(msg.contains("plain HTTP"), "{msg}");
    let (_, _, msg) = refuse(&section("0.0.0.0:8080", "http://pki.example.test/?a=b"));
    assert!(msg.contains("without query"), "{msg}");
    let (path, _, msg) = refuse(&format!(
        "{BASE}revocation-status:\n  listen: \"0.0.0.0:8080\"\n"
    ));
    assert_eq!(path, "revocation-status");
    assert!(msg.contains("base-url"), "{msg}");
}

#[test]
fn adcs_enrollment_interface_is_parsed() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let transport = |text: &str| {
        let c = load(text).unwrap_or_else(|e| panic!("{e}"));
        let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
            panic!("not adcs")
        };
        s.transport
    };
    assert_eq!(transport(&with_adcs("")), certeasy_adcs::Transport::Auto);
    let dcom = with_adcs("").replace(
        "      certificate-template:",
        "      enrollment-interface: dcom\n      certificate-template:",
    );
    assert_eq!(transport(&dcom), certeasy_adcs::Transport::Dcom);
    let icpr = dcom.replace("enrollment-interface: dcom", "enrollment-interface: icpr");
    assert_eq!(transport(&icpr), certeasy_adcs::Transport::Icpr);
    let bad = dcom.replace("enrollment-interface: dcom", "enrollment-interface: smb");
    let (path, _, msg) = refuse(&bad);
    assert!(path.contains("enrollment-interface"), "{path}: {msg}");
}

/// The `ldap` section of a Kerberos authority (`auth` given whole).
fn kerberos_ldap(auth: &str, ldap: &str) -> String {
    with_kerberos_auth(&format!("{auth}      ldap:\n{ldap}"))
}

#[test]
fn adcs_ldap_bind_defaults_follow_auth_and_url() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let kt = keytab_file(dir.path());
    let keytab_auth = format!(
        "        method: kerberos\n        realm: CORP.TEST\n        username: alice\n        keytab: {}\n        kdc: tcp://127.0.0.2:88\n",
        kt.display()
    );
    let password_auth = "        method: kerberos\n        realm: CORP.TEST\n        username: alice\n        password-env: CERTEASY_TEST_ADCS_PW\n        kdc: tcp://127.0.0.2:88\n";
    let ldap_of = |text: &str| {
        let c = load(text).unwrap_or_else(|e| panic!("{e}"));
        let AuthorityKind::Adcs(s) = &c.authority("corp").unwrap().kind else {
            panic!("not adcs")
        };
        s.ldap.clone().expect("ldap settings")
    };
    // Keytab only, plain ldap://: Kerberos, SPN derived later from the URL.
    let l = ldap_of(&kerberos_ldap(
        &keytab_auth,
        "        url: ldap://dc01.corp.example:389\n",
    ));
    assert_eq!(l.bind, certeasy_adcs::LdapBind::Kerberos);
    assert_eq!(l.spn, None);
    assert_eq!(
        certeasy_adcs::preflight::ldap::ldap_spn(&l),
        "ldap/dc01.corp.example"
    );
    // A password and LDAPS: the simple bind stays the default.
    let l = ldap_of(&kerberos_ldap(
        password_auth,
        "        url: ldaps://dc01.corp.example:636\n",
    ));
    assert_eq!(l.bind, certeasy_adcs::LdapBind::Simple);
    // A password and plain ldap://: Kerberos (the simple bind would be refused).
    let l = ldap_of(&kerberos_ldap(
        password_auth,
        "        url: ldap://127.0.0.2\n        spn: ldap/dc1.corp.test\n",
    ));
    assert_eq!(l.bind, certeasy_adcs::LdapBind::Kerberos);
    assert_eq!(
        certeasy_adcs::preflight::ldap::ldap_spn(&l),
        "ldap/dc1.corp.test"
    );
    // NTLM: simple, and an explicit kerberos bind is refused.
    let l = ldap_of(&with_adcs("      ldap:\n        url: ldaps://dc01\n"));
    assert_eq!(l.bind, certeasy_adcs::LdapBind::Simple);
}

#[test]
fn adcs_ldap_kerberos_bind_bad_combinations_are_refused_with_their_key() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let kt = keytab_file(dir.path());
    let keytab_auth = format!(
        "        method: kerberos\n        realm: CORP.TEST\n        username: alice\n        keytab: {}\n        kdc: tcp://127.0.0.2:88\n",
        kt.display()
    );
    let cases = [
        (
            kerberos_ldap(&keytab_auth, "        url: ldaps://dc01:636\n"),
            "ldap.url",
            "plain ldap://HOST:389",
        ),
        (
            kerberos_ldap(
                &keytab_auth,
                "        url: ldap://dc01\n        start-tls: true\n",
            ),
            "ldap.url",
            "without start-tls",
        ),
        (
            kerberos_ldap(
                &keytab_auth,
                "        url: ldap://dc01\n        bind-name: alice@corp.test\n",
            ),
            "ldap.bind-name",
            "simple binds only",
        ),
        (
            kerberos_ldap(
                &keytab_auth,
                "        url: ldap://dc01\n        spn: dc01\n",
            ),
            "ldap.spn",
            "not an SPN",
        ),
        (
            with_adcs("      ldap:\n        url: ldap://dc01\n        bind: kerberos\n"),
            "ldap.bind",
            "kerberos or negotiate",
        ),
        (
            with_adcs("      ldap:\n        url: ldap://dc01\n        bind: kerberos\n")
                .replace("method: ntlm", "method: negotiate"),
            "ldap.bind",
            "needs the realm",
        ),
        (
            with_adcs("      ldap:\n        url: ldaps://dc01\n        spn: ldap/dc01\n"),
            "ldap.spn",
            "Kerberos bind only",
        ),
        (
            with_adcs("      ldap:\n        url: ldaps://dc01\n        bind: sasl\n"),
            "ldap",
            "unknown variant",
        ),
    ];
    for (text, key, needle) in cases {
        let (path, line, msg) = refuse(&text);
        assert!(
            path.starts_with(&format!("authorities[1].configuration.{key}")),
            "{key}: {path}: {msg}"
        );
        assert!(line.is_some(), "{key}: a line number");
        assert!(msg.contains(needle), "{key}: {msg}");
    }
}

#[test]
fn adcs_pool_keys_have_defaults_and_bounds() {
    std::env::set_var("CERTEASY_TEST_ADCS_PW", "s3cret");
    let c = load(&with_adcs("")).unwrap_or_else(|e| panic!("{e}"));
    let a = c.authority("corp").unwrap();
    assert_eq!(a.pool.size, 4);
    assert_eq!(a.pool.idle_timeout, std::time::Duration::from_secs(60));
    let text = with_adcs("").replace(
        "      certificate-template:",
        "      pool-size: 0\n      pool-idle-timeout: 5m\n      certificate-template:",
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let a = c.authority("corp").unwrap();
    assert_eq!(a.pool.size, 0, "0: authenticate every request");
    assert_eq!(a.pool.idle_timeout, std::time::Duration::from_secs(300));
    let (path, line, msg) = refuse(&with_adcs("").replace(
        "      certificate-template:",
        "      pool-size: 65\n      certificate-template:",
    ));
    assert_eq!(path, "authorities[1].configuration.pool-size");
    assert!(line.is_some());
    assert!(msg.contains("at most 64"), "{msg}");
    let (path, _, msg) = refuse(&with_adcs("").replace(
        "      certificate-template:",
        "      pool-idle-timeout: 0s\n      certificate-template:",
    ));
    assert_eq!(path, "authorities[1].configuration.pool-idle-timeout");
    assert!(msg.contains("explicit zero"), "{msg}");
}
