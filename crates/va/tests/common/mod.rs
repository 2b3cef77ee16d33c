//! Loopback responders and profiles shared by the integration tests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use certeasy_va::testing::TestDns;
use certeasy_va::{DnsProtocol, IpPolicy, ValidationProfile, ZoneConfig, ZoneServers};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A profile with one zone "test" served by `dns`, a policy that only denies
/// link-local, and the given challenge ports.
pub fn profile(dns: &TestDns, http01_port: u16, tls_alpn01_port: u16) -> ValidationProfile {
    ValidationProfile {
        name: "P".into(),
        timeout: Duration::from_secs(5),
        zones: vec![zone(dns, DnsProtocol::Udp)],
        ip_policy: policy(&[], &["169.254.0.0/16"]),
        http01_port,
        tls_alpn01_port,
    }
}

pub fn zone(dns: &TestDns, protocol: DnsProtocol) -> ZoneConfig {
    ZoneConfig {
        suffixes: vec!["test".into()],
        servers: ZoneServers::Explicit(vec![dns.addr()]),
        protocol,
        authoritative: false,
        dnssec: false,
    }
}

pub fn policy(allow: &[&str], deny: &[&str]) -> IpPolicy {
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    IpPolicy::new(&own(allow), &own(deny)).expect("policy")
}

/// What the HTTP responder answers: status, extra headers, body.
pub type Reply = (u16, Vec<(&'static str, String)>, String);

/// A request the responder saw: (Host header, path and query).
pub type Seen = (String, String);

/// An HTTP/1.1 responder on 127.0.0.1 (or a TLS one, see [`HttpResponder::start_tls`]).
pub struct HttpResponder {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for HttpResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpResponder {
    pub async fn start<F>(route: F) -> Self
    where
        F: Fn(&str) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        Self::serve(listener, None, route)
    }

    /// The same over TLS (any certificate; the validator does not verify).
    pub async fn start_tls<F>(route: F) -> Self
    where
        F: Fn(&str) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let (cert, key) = self_signed(&["localhost"], None);
        let config = server_config(cert, key, vec![b"http/1.1".to_vec()]);
        Self::serve(
            listener,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            route,
        )
    }

    fn serve<F>(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, route: F) -> Self
    where
        F: Fn(&str) -> Reply + Send + Sync + 'static,
    {
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let route = Arc::new(route);
        let seen2 = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let route = Arc::clone(&route);
                let seen = Arc::clone(&seen2);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let route = Arc::clone(&route);
                        let seen = Arc::clone(&seen);
                        async move {
                            let host = req
                                .headers()
                                .get(hyper::header::HOST)
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_owned())
                                .unwrap_or_default();
                            seen.lock().expect("lock").push((host, path.clone()));
                            let (status, headers, body) = route(&path);
                            let mut builder = Response::builder().status(status);
                            for (name, value) in headers {
                                builder = builder.header(name, value);
                            }
                            Ok::<_, Infallible>(
                                builder
                                    .body(Full::new(Bytes::from(body)))
                                    .expect("response"),
                            )
                        }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A self-signed certificate for `names`, with an optional extra extension.
pub fn self_signed(
    names: &[&str],
    extension: Option<rcgen::CustomExtension>,
) -> (
    rustls_pki_types::CertificateDer<'static>,
    rustls_pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    if let Some(ext) = extension {
        params.custom_extensions.push(ext);
    }
    let cert = params.self_signed(&key).expect("cert");
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (cert.der().clone(), key_der)
}

/// A server configuration presenting `cert` as is. rustls'
/// `with_single_cert` would refuse the (unknown to webpki) critical
/// acmeIdentifier extension, so the certificate is served by a resolver.
pub fn server_config(
    cert: rustls_pki_types::CertificateDer<'static>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    alpn: Vec<Vec<u8>>,
) -> rustls::ServerConfig {
    server_config_versions(cert, key, alpn, rustls::DEFAULT_VERSIONS)
}

/// [`server_config`] limited to `versions`.
pub fn server_config_versions(
    cert: rustls_pki_types::CertificateDer<'static>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    alpn: Vec<Vec<u8>>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .expect("signing key");
    let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signing_key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(certified)));
    config.alpn_protocols = alpn;
    config
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A TLS responder that completes handshakes and then closes.
pub struct TlsResponder {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsResponder {
    pub async fn start(config: rustls::ServerConfig) -> Self {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                    }
                });
            }
        });
        Self { addr, task }
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind((LOCALHOST, 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

/// SHA-256 of `text`.
pub fn sha256(text: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}
