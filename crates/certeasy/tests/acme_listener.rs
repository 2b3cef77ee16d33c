//! `tls-certificate-manager` mode `acme` against Pebble (Debian package
//! `pebble`, with its `pebble-challtestsrv` as the DNS server Pebble's VA
//! uses): certeasy's listener obtains its own certificate, Pebble really
//! validates it over tls-alpn-01 on that listener (or http-01 on the
//! configured port), and a renewal is swapped in for new connections.
//!
//! Without Pebble installed the Pebble tests say so and pass, unless
//! `CERTEASY_REQUIRE_PEBBLE=1` (set by scripts/interop-pebble.sh, which
//! installs it). ACME Renewal Information, which Pebble 2.4 lacks, is
//! tested with another certeasy as the CA (no Pebble needed).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The name the listener's certificate is for (challtestsrv answers every
/// A query with 127.0.0.1).
const NAME: &str = "listener.certeasy.example.com";

fn pebble_available() -> bool {
    let found = ["pebble", "pebble-challtestsrv"].iter().all(|b| {
        Command::new(b)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !found {
        assert!(
            std::env::var_os("CERTEASY_REQUIRE_PEBBLE").is_none(),
            "CERTEASY_REQUIRE_PEBBLE is set but pebble / pebble-challtestsrv are not installed"
        );
        eprintln!("pebble not installed (apt-get install pebble): test skipped");
    }
    found
}

/// Kills a child process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` and waits until a line of its standard output contains
/// `ready`.
fn spawn_until(mut cmd: Command, ready: &str) -> Proc {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_string();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("  | {line}");
            if line.contains(&ready) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    let proc = Proc(child);
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the process did not get ready");
    proc
}

/// Waits until something accepts TCP connections on `port` of 127.0.0.1.
/// Pebble and challtestsrv print their "listening" lines before their
/// goroutines bind, so the line alone does not mean the port is open.
fn wait_accepting(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => return,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("nothing accepts connections on 127.0.0.1:{port}: {e}"),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port below the kernel's ephemeral range (32768–60999 by
/// default), for a server that is stopped and started again on the same
/// port: `bind(0)` in a test running beside this one can never be handed
/// it in between.
fn stable_free_port() -> u16 {
    let start = 20000 + (std::process::id() % 10000) as u16;
    (0..10000u16)
        .map(|i| 20000 + (start - 20000 + i) % 10000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port between 20000 and 29999")
}

/// A free port that is none of `taken` (ports chosen earlier and not yet
/// bound: the kernel may hand a just-released port out again).
fn free_port_except(taken: &[u16]) -> u16 {
    loop {
        let p = free_port();
        if !taken.contains(&p) {
            return p;
        }
    }
}

/// A running Pebble whose VA resolves every name to 127.0.0.1 and checks
/// tls-alpn-01 on `tls_port`, http-01 on `http_port`.
struct Pebble {
    _dns: Proc,
    _pebble: Proc,
    directory: String,
    management: SocketAddr,
    /// CA of Pebble's own HTTPS (ca-root of the bundle).
    https_ca: PathBuf,
}

/// External account binding Pebble requires of new accounts (key id,
/// base64url HMAC key), if any.
type Eab<'a> = Option<(&'a str, &'a str)>;

fn start_pebble(
    dir: &Path,
    tls_port: u16,
    http_port: u16,
    validity_secs: u64,
    eab: Eab<'_>,
) -> Pebble {
    start_pebble_at(
        dir,
        free_port_except(&[tls_port, http_port]),
        tls_port,
        http_port,
        validity_secs,
        eab,
    )
}

/// [`start_pebble`] with its ACME directory on `listen`; a second Pebble in
/// the same `dir` reuses the first one's HTTPS certificate (but starts with
/// an empty state and a new issuing CA, like any Pebble).
fn start_pebble_at(
    dir: &Path,
    listen: u16,
    tls_port: u16,
    http_port: u16,
    validity_secs: u64,
    eab: Eab<'_>,
) -> Pebble {
    let https_ca = dir.join("pebble-https-ca.pem");
    if !https_ca.exists() {
        write_pebble_https_cert(dir);
    }
    start_pebble_processes(
        dir,
        listen,
        tls_port,
        http_port,
        validity_secs,
        eab,
        https_ca,
    )
}

/// Pebble's own HTTPS certificate, from a CA the test makes.
fn write_pebble_https_cert(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pebble https test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params.subject_alt_names = vec![
        rcgen::SanType::DnsName("localhost".try_into().unwrap()),
        rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()),
    ];
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("pebble-https-ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();
}

fn start_pebble_processes(
    dir: &Path,
    listen: u16,
    tls_port: u16,
    http_port: u16,
    validity_secs: u64,
    eab: Eab<'_>,
    https_ca: PathBuf,
) -> Pebble {
    let mut taken = vec![listen, tls_port, http_port];
    let mut pick = || {
        let p = free_port_except(&taken);
        taken.push(p);
        p
    };
    let dns_port = pick();
    let dns_management = pick();
    let management: SocketAddr = format!("127.0.0.1:{}", pick()).parse().unwrap();
    let mut dns = Command::new("pebble-challtestsrv");
    dns.args([
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
        "-dns01",
        &format!("127.0.0.1:{dns_port}"),
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        &format!("127.0.0.1:{dns_management}"),
    ]);
    let dns = spawn_until(dns, "Starting management server");
    wait_accepting(dns_port);
    wait_accepting(dns_management);

    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": management.to_string(),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": eab.is_some(),
            "externalAccountMACKeys": eab.map(|(kid, key)| serde_json::json!({ kid: key })).unwrap_or_else(|| serde_json::json!({})),
            "certificateValidityPeriod": validity_secs,
        }
    });
    let config_path = dir.join("pebble-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut pebble = Command::new("pebble");
    pebble
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
        // No random VA delays, no nonce rejections for determinism, and a
        // fresh validation for every order (renewals are really validated).
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .current_dir(dir);
    let pebble = spawn_until(pebble, "Listening on");
    wait_accepting(listen);
    wait_accepting(management.port());
    Pebble {
        _dns: dns,
        _pebble: pebble,
        directory: format!("https://127.0.0.1:{listen}/dir"),
        management,
        https_ca,
    }
}

fn tls_config(anchors: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots.add(a.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// `GET path` over HTTPS/1.1 to `addr` as `host`: (status, body).
async fn get(
    addr: SocketAddr,
    host: &str,
    anchors: &[CertificateDer<'static>],
    path: &str,
) -> Result<(u16, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(tls_config(anchors, &[b"http/1.1"]))
        .connect(ServerName::try_from(host.to_string()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

/// Pebble's issuing root (its management API, over its own HTTPS).
async fn pebble_root(p: &Pebble) -> CertificateDer<'static> {
    let ca = pem_certs(&std::fs::read_to_string(&p.https_ca).unwrap());
    let (status, body) = get(p.management, "localhost", &ca, "/roots/0")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    pem_certs(&body).remove(0)
}

fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    pki::pem_to_der_certs(pem)
        .unwrap()
        .into_iter()
        .map(CertificateDer::from)
        .collect()
}

/// The leaf the listener presents to a new connection for `NAME`, if the
/// handshake verifies against `root`.
async fn served_leaf(addr: SocketAddr, root: &CertificateDer<'static>) -> Result<Vec<u8>, String> {
    served_leaf_for(addr, NAME, root).await
}

/// The leaf the listener presents to a new connection for `name`.
async fn served_leaf_for(
    addr: SocketAddr,
    name: &str,
    root: &CertificateDer<'static>,
) -> Result<Vec<u8>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(tls_config(
        std::slice::from_ref(root),
        &[b"h2", b"http/1.1"],
    ))
    .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
    .await
    .map_err(|e| e.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

/// Waits (bounded) for the listener to present a certificate issued by
/// Pebble other than `not`.
async fn wait_for_leaf(addr: SocketAddr, root: &CertificateDer<'static>, not: &[u8]) -> Vec<u8> {
    wait_for_leaf_for(addr, NAME, root, not).await
}

/// Waits (bounded) for the listener to present, for `name`, a certificate
/// chaining to `root` other than `not`.
async fn wait_for_leaf_for(
    addr: SocketAddr,
    name: &str,
    root: &CertificateDer<'static>,
    not: &[u8],
) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        match served_leaf_for(addr, name, root).await {
            Ok(leaf) if leaf != not => return leaf,
            Ok(_) => last = "still the previous certificate".into(),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no new certificate from the ACME CA on the listener: {last}");
}

/// Writes certeasy's configuration with `tls` as its one bundle (see
/// [`certeasy_config`]) and starts it on `listener`.
async fn serve_own(
    dir: &Path,
    listener: TcpListener,
    tls: &str,
) -> certeasy::server::RunningServer {
    let port = listener.local_addr().unwrap().port();
    let config_path = certeasy_config(dir, port, tls);
    let config = certeasy::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    certeasy::server::start_with_listener(config, listener)
        .await
        .unwrap()
}

fn certeasy_config(dir: &Path, port: u16, tls: &str) -> PathBuf {
    certeasy_config_for(dir, NAME, port, tls)
}

fn certeasy_config_for(dir: &Path, name: &str, port: u16, tls: &str) -> PathBuf {
    let text = format!(
        r#"workdir: {work}
server:
  url: ["https://{name}:{port}"]
  listen: "127.0.0.1:{port}"
  # A connection opened before a renewal is used after it.
  read-header-timeout: 60s
tls-certificate-manager:
  bundles:
    - name: own
{tls}dns-validation-profiles:
  - name: test
    timeout: 5s
    zones:
      - suffixes: [test]
        system: true
    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8"]
authorities:
  - name: builtin
    type: builtin
    configuration:
      common-name: "certeasy test CA"
      password: "test-password"
issuance-policies:
  - name: test
    dns:
      allow: [".test/3"]
"#,
        work = dir.join("work").display(),
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, text).unwrap();
    path
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_obtains_and_renews_its_certificate_over_tls_alpn_01() {
    if !pebble_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // 30 s certificates: renewal (at 2/3 of the lifetime, Pebble 2.4 has no
    // renewalInfo) comes within the test.
    let pebble = start_pebble(dir.path(), addr.port(), free_port(), 30, None);
    let tls = format!(
        "      mode: acme\n      directory-url: {}\n      ca-root: {}\n      contact: [\"mailto:ops@example.com\"]\n",
        pebble.directory,
        pebble.https_ca.display()
    );
    let server = serve_own(dir.path(), listener, &tls).await;
    let root = pebble_root(&pebble).await;

    // Pebble validated tls-alpn-01 on this very listener: the certificate
    // it issued is served, and /readyz is satisfied.
    let first = wait_for_leaf(addr, &root, &[]).await;
    let (_, names) = pki::leaf_expiry_and_names(&first).unwrap();
    assert_eq!(names, [NAME]);
    let (status, body) = get(addr, NAME, std::slice::from_ref(&root), "/readyz")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    let cache = dir.path().join("work/server-certificate-acme/own");
    #[cfg(unix)]
    {
        assert_eq!(mode(&cache.join("account.json")), 0o600);
        assert_eq!(mode(&cache.join("key.pem")), 0o600);
    }
    // A connection opened before the renewal keeps working after it.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut old =
        tokio_rustls::TlsConnector::from(tls_config(std::slice::from_ref(&root), &[b"http/1.1"]))
            .connect(ServerName::try_from(NAME).unwrap(), tcp)
            .await
            .unwrap();

    // Renewal: validated again (PEBBLE_AUTHZREUSE=0) and swapped in for new
    // connections without a restart.
    let second = wait_for_leaf(addr, &root, &first).await;
    assert_ne!(
        pki::serial_hex_of_cert(&first).unwrap(),
        pki::serial_hex_of_cert(&second).unwrap()
    );
    let cached = pem_certs(&std::fs::read_to_string(cache.join("cert.pem")).unwrap());
    let current = served_leaf(addr, &root).await.unwrap();
    assert!(
        cached[0].as_ref() == second.as_slice() || cached[0].as_ref() == current.as_slice(),
        "the renewed certificate is kept in the cache directory"
    );
    old.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = old.read_to_end(&mut buf).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "the connection opened before the renewal still serves"
    );

    // A handshake offering acme-tls/1 while no challenge is pending gets
    // no certificate.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let alpn_only =
        tokio_rustls::TlsConnector::from(tls_config(std::slice::from_ref(&root), &[b"acme-tls/1"]))
            .connect(ServerName::try_from(NAME).unwrap(), tcp)
            .await;
    assert!(alpn_only.is_err());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_obtains_its_certificate_over_http_01_with_eab_and_reuses_it_after_restart() {
    if !pebble_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http_port = free_port();
    // Pebble requires an external account binding here: the account is
    // created with the key id and the HMAC key from its file.
    let hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = start_pebble(
        dir.path(),
        free_port(),
        http_port,
        3600,
        Some(("kid-certeasy", hmac)),
    );
    let key_file = dir.path().join("eab.key");
    std::fs::write(&key_file, format!("{hmac}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let tls = format!(
        "      mode: acme\n      directory-url: {}\n      ca-root: {}\n      challenge: http-01\n      http-01-listen: 127.0.0.1:{http_port}\n      eab:\n        key-id: kid-certeasy\n        hmac-key-file: {}\n",
        pebble.directory,
        pebble.https_ca.display(),
        key_file.display()
    );
    let server = serve_own(dir.path(), listener, &tls).await;
    let root = pebble_root(&pebble).await;
    let first = wait_for_leaf(addr, &root, &[]).await;
    // The http-01 responder is bound only while a challenge is pending.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "http-01-listen still bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;

    // Restarted: the cached certificate and account are used at once (no
    // second order: the very same certificate is served).
    let listener = TcpListener::bind(addr).await.unwrap();
    let _server = serve_own(dir.path(), listener, &tls).await;
    assert_eq!(served_leaf(addr, &root).await.unwrap(), first);
}

/// ARI end to end, with another certeasy as the external CA (Pebble 2.4
/// has no renewalInfo): `certeasy cert renew-early` on that CA moves the
/// listener certificate's window to now; the listener sees it at its next
/// renewal-info poll, renews (naming the old certificate in `replaces`,
/// which the CA checks) and swaps the new one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_follows_ari_of_another_certeasy() {
    const OWN: &str = "own.test";
    let ca_dir = tempfile::tempdir().unwrap();
    let own_dir = tempfile::tempdir().unwrap();
    let dns = certeasy_va::testing::TestDns::start("test").await.unwrap();
    dns.set_a(OWN, std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let own_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own_addr = own_listener.local_addr().unwrap();

    // The CA: its tls-alpn-01 validations go to the listener under test.
    let ca_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ca_port = ca_listener.local_addr().unwrap().port();
    let ca_config = ca_dir.path().join("config.yml");
    std::fs::write(
        &ca_config,
        common::config_text(
            ca_dir.path(),
            ca_port,
            dns.addr(),
            free_port(),
            own_addr.port(),
            &common::Options {
                extra_sections: "renewal-info:\n  window-width: 1s\n  retry-after: 1s\n".into(),
                ..common::Options::default()
            },
        ),
    )
    .unwrap();
    let ca = certeasy::server::start_with_listener(
        certeasy::config::load(&ca_config).unwrap_or_else(|e| panic!("{e}")),
        ca_listener,
    )
    .await
    .unwrap();
    let root = pem_certs(&std::fs::read_to_string(&ca.root_pem).unwrap()).remove(0);

    let tls = format!(
        "      mode: acme\n      directory-url: {}\n      ca-root: {}\n",
        ca.directory_url(),
        ca.root_pem.display()
    );
    let config_path = certeasy_config_for(own_dir.path(), OWN, own_addr.port(), &tls);
    let config = certeasy::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let _own = certeasy::server::start_with_listener(config, own_listener)
        .await
        .unwrap();
    let first = wait_for_leaf_for(own_addr, OWN, &root, &[]).await;

    let serial = pki::serial_hex_of_cert(&first).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["cert", "renew-early", "-f"])
        .arg(&ca_config)
        // By name: `--serial` drops a leading zero nibble ("0f43…" finds
        // nothing; reported, cli/cert.rs is not this test's subject).
        .args(["--name", OWN])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "renew-early --name {OWN}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = wait_for_leaf_for(own_addr, OWN, &root, &first).await;
    assert_ne!(pki::serial_hex_of_cert(&second).unwrap(), serial);
    // The renewal's order named the certificate it replaces (the CA's
    // audit log records it with the order).
    let cert_id = pki::ari_cert_id(&first).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = common::audit_lines(&ca_dir.path().join("work/audit.log"));
        if log.iter().any(|l| l.to_string().contains(&cert_id)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no order with replaces = {cert_id} in the CA's audit log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CA that forgets the account (Pebble restarted: empty state, new
/// issuing CA): the renewal fails with accountDoesNotExist, the current
/// certificate stays in service meanwhile, and after the back-off the
/// listener creates a new account and gets its certificate from the new CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_recovers_when_the_ca_forgets_its_account() {
    if !pebble_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Pebble is restarted on the same port below.
    let listen = stable_free_port();
    let pebble = start_pebble_at(
        dir.path(),
        listen,
        addr.port(),
        free_port_except(&[listen]),
        30,
        None,
    );
    let tls = format!(
        "      mode: acme\n      directory-url: {}\n      ca-root: {}\n",
        pebble.directory,
        pebble.https_ca.display()
    );
    let _server = serve_own(dir.path(), listener, &tls).await;
    let old_root = pebble_root(&pebble).await;
    let first = wait_for_leaf(addr, &old_root, &[]).await;
    let account_file = dir
        .path()
        .join("work/server-certificate-acme/own/account.json");
    let old_account = std::fs::read(&account_file).unwrap();

    drop(pebble);
    let pebble = start_pebble_at(
        dir.path(),
        listen,
        addr.port(),
        free_port_except(&[listen]),
        30,
        None,
    );
    let new_root = pebble_root(&pebble).await;
    assert_ne!(new_root, old_root);
    // Until the renewal, the certificate of the first CA stays in service.
    assert_eq!(served_leaf(addr, &old_root).await.unwrap(), first);
    // Verified against the new CA's root only: issued by the new Pebble.
    let second = wait_for_leaf(addr, &new_root, &first).await;
    assert_ne!(second, first);
    assert_ne!(std::fs::read(&account_file).unwrap(), old_account);
}
