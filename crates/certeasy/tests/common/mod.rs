//! Shared harness of the integration tests: a certeasy server in process on
//! an ephemeral port with a temporary workdir, an in-process authoritative
//! DNS zone, and http-01 / tls-alpn-01 responders on loopback.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

pub mod lab;
pub mod plain;
pub mod raw;
pub mod slapd;
pub mod stub;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use certeasy::server::RunningServer;
use certeasy_va::testing::TestDns;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Tokens served by the http-01 responder: token → key authorization.
pub type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// tls-alpn-01 certificates served by SNI.
pub type AlpnCerts = Arc<Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>>;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub dns: TestDns,
    pub extra_dns: Option<TestDns>,
    pub server: Option<RunningServer>,
    pub tokens: Tokens,
    pub alpn: AlpnCerts,
    pub http_port: u16,
    pub tls_port: u16,
    pub config_path: PathBuf,
    /// The listener's address (kept across stop and restart).
    pub addr: SocketAddr,
}

/// Extra YAML appended to the generated configuration's policy.
#[derive(Default, Clone)]
pub struct Options {
    /// A second authoritative zone (e.g. "example.com") served in process
    /// and allowed by the policy.
    pub extra_zone: Option<String>,
    pub policy_extra: String,
    pub extra_sections: String,
    pub authority_extra: String,
    /// Replaces the `tls-certificate-manager` section.
    pub tls_yaml: Option<String>,
    pub extra_zone_yaml: String,
    pub extra_allow: String,
    /// Replaces the `workers` section.
    pub workers_yaml: Option<String>,
    /// Extra keys of the `server` section, each line indented two spaces
    /// (e.g. "  idle-timeout: 2s\n").
    pub server_extra: String,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let dns = TestDns::start("test").await.unwrap();
        let extra_dns = match &opts.extra_zone {
            Some(z) => Some(TestDns::start(z).await.unwrap()),
            None => None,
        };
        let mut opts = opts;
        if let (Some(z), Some(d)) = (&opts.extra_zone, &extra_dns) {
            opts.extra_zone_yaml = format!(
                "      - suffixes: [{z}]\n        dns-server: [\"{}\"]\n",
                d.addr()
            );
            opts.extra_allow = format!(", \"={z}\", \".{z}/3\"");
        }
        let tokens: Tokens = Arc::default();
        let http_port = spawn_http01_responder(tokens.clone()).await;
        let alpn: AlpnCerts = Arc::default();
        let tls_port = spawn_tls_alpn_responder(alpn.clone()).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config_path = dir.path().join("config.yml");
        std::fs::write(
            &config_path,
            config_text(dir.path(), port, dns.addr(), http_port, tls_port, &opts),
        )
        .unwrap();
        let config = certeasy::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let server = certeasy::server::start_with_listener(config, listener)
            .await
            .unwrap();
        Harness {
            addr: server.addr,
            dir,
            dns,
            extra_dns,
            server: Some(server),
            tokens,
            alpn,
            http_port,
            tls_port,
            config_path,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub fn directory(&self) -> String {
        self.server().directory_url()
    }

    pub fn base(&self) -> String {
        self.directory()
            .trim_end_matches("/acme/directory")
            .to_string()
    }

    pub fn root_pem(&self) -> PathBuf {
        self.server().root_pem.clone()
    }

    /// Points `name` at 127.0.0.1 in the zone that holds it.
    pub fn host(&self, name: &str) {
        let zone = match &self.extra_dns {
            Some(d) if name == d.zone() || name.ends_with(&format!(".{}", d.zone())) => d,
            _ => &self.dns,
        };
        zone.set_a(name, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    pub async fn account(&self) -> Account {
        // instant-acme trusts only the first certificate of a PEM file: give
        // it the root of the authority that issued the listener certificate.
        let listener_root = self.dir.path().join("work/ca/builtin/root.pem");
        let (account, _) = Account::builder_with_root(listener_root)
            .unwrap()
            .create(
                &NewAccount {
                    contact: &["mailto:ops@example.com"],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.directory(),
                None,
            )
            .await
            .unwrap();
        account
    }

    /// Runs one complete issuance with instant-acme for `names` using
    /// challenge `kind`, a CSR built by `csr`, and returns the PEM chain.
    pub async fn issue(
        &self,
        account: &Account,
        names: &[&str],
        kind: ChallengeType,
        csr: &[u8],
    ) -> Result<String, instant_acme::Error> {
        for n in names {
            self.host(n.trim_start_matches("*."));
        }
        let ids: Vec<Identifier> = names
            .iter()
            .map(|n| Identifier::Dns((*n).to_string()))
            .collect();
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a?;
            if a.status == AuthorizationStatus::Valid {
                continue;
            }
            let ident = a.identifier().identifier.clone();
            let Identifier::Dns(domain) = ident else {
                panic!("not dns")
            };
            let mut ch = a
                .challenge(kind.clone())
                .unwrap_or_else(|| panic!("no {kind:?} challenge for {domain}"));
            let key_auth = ch.key_authorization();
            match kind {
                ChallengeType::Http01 => {
                    self.tokens
                        .lock()
                        .unwrap()
                        .insert(ch.token.clone(), key_auth.as_str().to_string());
                }
                ChallengeType::Dns01 => {
                    self.dns.set_txt(
                        &format!("_acme-challenge.{domain}"),
                        &[&key_auth.dns_value()],
                    );
                }
                ChallengeType::TlsAlpn01 => {
                    let ck = alpn_cert(&domain, key_auth.digest().as_ref());
                    self.alpn
                        .lock()
                        .unwrap()
                        .insert(domain.clone(), Arc::new(ck));
                }
                _ => unreachable!(),
            }
            ch.set_ready().await?;
        }
        let status = order
            .poll_ready(&RetryPolicy::new().timeout(std::time::Duration::from_secs(20)))
            .await?;
        if status != OrderStatus::Ready {
            let state = order.refresh().await?;
            return Err(instant_acme::Error::Str(Box::leak(
                format!("order not ready: {:?}", state.error).into_boxed_str(),
            )));
        }
        order.finalize_csr(csr).await?;
        order
            .poll_certificate(&RetryPolicy::new().timeout(std::time::Duration::from_secs(20)))
            .await
    }

    /// Stops the server gracefully (unless it is stopped) and starts it
    /// again on the same port with the same configuration and workdir.
    pub async fn restart(&mut self) {
        let addr = self.addr;
        self.stop().await;
        let listener = TcpListener::bind(addr).await.unwrap();
        let config = certeasy::config::load(&self.config_path).unwrap_or_else(|e| panic!("{e}"));
        self.server = Some(
            certeasy::server::start_with_listener(config, listener)
                .await
                .unwrap(),
        );
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// Creates an order for `names` with the raw client: (order URL, order JSON).
pub async fn new_order(
    raw: &raw::Raw,
    key: &raw::Key,
    kid: &str,
    names: &[&str],
) -> (String, serde_json::Value) {
    let ids: Vec<_> = names
        .iter()
        .map(|n| serde_json::json!({"type": "dns", "value": n}))
        .collect();
    let r = raw
        .post(
            key,
            Some(kid),
            &raw.url("new-order"),
            &serde_json::json!({ "identifiers": ids }).to_string(),
        )
        .await;
    assert_eq!(r.status, http::StatusCode::CREATED, "{}", r.json());
    (r.location(), r.json())
}

/// The http-01 challenge of an authorization object.
pub fn http01_challenge(authz: &serde_json::Value) -> serde_json::Value {
    authz["challenges"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "http-01"))
        .cloned()
        .unwrap_or_else(|| panic!("no http-01 challenge in {authz}"))
}

/// Answers the http-01 challenge of an authorization with the raw client:
/// points its name at the harness's responder, serves the key authorization
/// there when `serve` (a 404 otherwise), and POSTs the challenge; returns
/// that POST's response.
pub async fn answer_http01(
    h: &Harness,
    raw: &raw::Raw,
    key: &raw::Key,
    kid: &str,
    authz_url: &str,
    serve: bool,
) -> raw::Resp {
    let a = raw.post(key, Some(kid), authz_url, "").await.json();
    h.host(a["identifier"]["value"].as_str().unwrap());
    let ch = http01_challenge(&a);
    if serve {
        let token = ch["token"].as_str().unwrap();
        let thumb = acme_wire::Jwk::from_json(&key.jwk()).unwrap().thumbprint();
        h.tokens.lock().unwrap().insert(
            token.to_string(),
            acme_wire::key_authorization(token, &thumb),
        );
    }
    raw.post(key, Some(kid), ch["url"].as_str().unwrap(), "{}")
        .await
}

/// Drives a new order for `names` to `ready` through http-01 with the raw
/// client, polling the order as an ACME client does (bounded).
pub async fn ready_order(
    h: &Harness,
    raw: &raw::Raw,
    key: &raw::Key,
    kid: &str,
    names: &[&str],
) -> serde_json::Value {
    use serde_json::json;
    let (order_url, order) = new_order(raw, key, kid, names).await;
    for authz_url in order["authorizations"].as_array().unwrap() {
        let r = answer_http01(h, raw, key, kid, authz_url.as_str().unwrap(), true).await;
        assert_eq!(r.status, http::StatusCode::OK, "{}", r.json());
        assert!(r.header("link").unwrap().contains("rel=\"up\""));
    }
    for _ in 0..400 {
        let o = raw.post(key, Some(kid), &order_url, "").await.json();
        if o["status"] != json!("pending") {
            assert_eq!(o["status"], json!("ready"), "{o}");
            return o;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("order never became ready");
}

/// Waits (bounded) until an order's request is pending at a CA; returns
/// the pending requests: (order id, authority, request id).
pub async fn wait_for_pending(h: &Harness) -> Vec<(String, String, i64)> {
    for _ in 0..400 {
        let pending = h.server().ra.store.pending_ca_requests().await.unwrap();
        if !pending.is_empty() {
            return pending;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no request became pending at the CA");
}

/// `policy-bindings` YAML binding the test policy to `authorities`.
pub fn binding(authorities: &str, strategy: &str) -> String {
    format!("policy-bindings:\n  - policy: test\n    authorities: [{authorities}]\n    strategy: {strategy}\n")
}

/// Name of the authority that signed `pem`'s leaf, from the database.
pub async fn signer(h: &Harness, pem: &str) -> String {
    let serial = pki::serial_hex_of_cert(&pem_certs(pem)[0]).unwrap();
    h.server()
        .ra
        .store
        .cert_by_serial(&serial)
        .await
        .unwrap()
        .remove(0)
        .authority
}

/// A CSR for `names` with a fresh key of `alg`.
pub fn csr(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let mut params = params;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let der = params.serialize_request(&key).unwrap().der().to_vec();
    (der, key)
}

/// A CSR with a fresh RSA key of `bits` (ring cannot generate RSA keys, so
/// the RustCrypto `rsa` crate does and rcgen signs with it).
pub fn rsa_csr(names: &[&str], bits: usize) -> Vec<u8> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap();
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&kp).unwrap().der().to_vec()
}

/// A TLS connector trusting the CAs of `root_pem`, offering `alpn`.
pub fn tls_connector(root_pem: &Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for der in pki::pem_to_der_certs(&std::fs::read_to_string(root_pem).unwrap()).unwrap() {
        roots
            .add(rustls::pki_types::CertificateDer::from(der))
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// Waits until a `certeasy serve` subprocess prints its "ACME directory:"
/// line on `stdout` (the rest of its output is drained by a thread).
pub async fn wait_until_serving(stdout: std::process::ChildStdout) {
    use std::io::BufRead;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("ACME directory:") {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    ready_rx.await.expect("certeasy exited before serving");
}

/// Writes a password file readable only by its owner (certeasy refuses
/// secret files every user may read).
pub fn write_secret(path: &Path, secret: &str) {
    std::fs::write(path, secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Every line of the audit log at `base` (all segments, in order) that
/// parses as JSON; lines that do not (a line torn by a crash) are skipped.
pub fn audit_lines(base: &Path) -> Vec<serde_json::Value> {
    let dir = base.parent().unwrap();
    let stem = base.file_stem().unwrap().to_string_lossy().to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(&format!("{stem}."))
                && n.len() > stem.len() + 7
                && n[stem.len() + 1..stem.len() + 7]
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

/// Certificates of a PEM chain, DER.
pub fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    pki::pem_to_der_certs(pem).unwrap()
}

/// The `database` section of a test server: none (SQLite in the workdir)
/// unless `CERTEASY_TEST_PG_DSN` names a PostgreSQL server (scripts/test.sh
/// starts one with scripts/pg-cluster.sh), then a fresh schema on it, so
/// the same test runs on PostgreSQL.
pub fn test_database_yaml() -> String {
    match std::env::var("CERTEASY_TEST_PG_DSN") {
        Ok(dsn) if !dsn.is_empty() => {
            format!(
            "database:\n  type: postgres\n  dsn: \"{dsn}\"\n  sslmode: disable\n  schema: t_{}\n",
            certeasy::store::new_id().to_ascii_lowercase().replace('-', "_")
        )
        }
        _ => String::new(),
    }
}

pub fn config_text(
    dir: &Path,
    port: u16,
    dns: SocketAddr,
    http_port: u16,
    tls_port: u16,
    opts: &Options,
) -> String {
    format!(
        r#"workdir: {work}
server:
  url: ["https://localhost:{port}"]
  listen: "127.0.0.1:{port}"
{server_extra}{tls}dns-validation-profiles:
  - name: test
    timeout: 5s
    zones:
      - suffixes: [test]
        dns-server: ["{dns}"]
{extra_zone}    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8"]
    http-01-port: {http_port}
    tls-alpn-01-port: {tls_port}
authorities:
  - name: builtin
    type: builtin
    configuration:
      common-name: "certeasy test CA"
      password: "test-password"
{authority_extra}issuance-policies:
  - name: test
    dns:
      allow: [".test/3", "*.test", "*..test/2"{extra_allow}]
      deny: [".denied.test/3"]
    signature:
      min-rsa-bits: 3072
{policy_extra}{workers}{extra}{limits}{database}"#,
        work = dir.join("work").display(),
        authority_extra = opts.authority_extra,
        server_extra = opts.server_extra,
        policy_extra = opts.policy_extra,
        extra = opts.extra_sections,
        // The tests drive the server far harder from 127.0.0.1 than a site
        // does; the per-IP limits are exercised by tests that configure
        // `rate-limiting` themselves (and by the interop layer, with the
        // defaults).
        limits = if opts.extra_sections.contains("rate-limiting:") {
            ""
        } else {
            "rate-limiting:\n  whitelist: [127.0.0.0/8]\n"
        },
        tls = opts.tls_yaml.clone().unwrap_or_else(|| "tls-certificate-manager:\n  bundles:\n    - name: listener\n      mode: pki\n      authority: builtin\n".into()),
        extra_zone = opts.extra_zone_yaml,
        extra_allow = opts.extra_allow,
        database = if opts.extra_sections.contains("database:") {
            String::new()
        } else {
            test_database_yaml()
        },
        workers = opts.workers_yaml.clone().unwrap_or_else(|| {
            "workers:\n  workers: 2\n  idle-max: 1s\n  lease: 5s\n  base-backoff: 100ms\n  max-backoff: 1s\n".into()
        }),
    )
}

pub async fn spawn_http01_responder(tokens: Tokens) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(m) => n += m,
                    }
                    if n == buf.len() {
                        return;
                    }
                }
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
                let token = path
                    .strip_prefix("/.well-known/acme-challenge/")
                    .unwrap_or("");
                let body = tokens.lock().unwrap().get(token).cloned();
                let resp = match body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                        b.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

#[derive(Debug)]
struct AlpnResolver(AlpnCerts);

impl rustls::server::ResolvesServerCert for AlpnResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let name = hello.server_name()?.to_string();
        self.0.lock().unwrap().get(&name).cloned()
    }
}

fn alpn_cert(domain: &str, digest: &[u8]) -> rustls::sign::CertifiedKey {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).unwrap();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).unwrap();
    let pk = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    ));
    let signing = rustls::crypto::ring::sign::any_supported_type(&pk).unwrap();
    rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing)
}

async fn spawn_tls_alpn_responder(certs: AlpnCerts) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(AlpnResolver(certs)));
    cfg.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(sock).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// Runs the `certeasy` binary with `args` and `-f config`: (exit status,
/// stdout and stderr).
pub fn certeasy_cli(args: &[&str], config: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(args)
        .arg("-f")
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
