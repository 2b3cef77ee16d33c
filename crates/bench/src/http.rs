//! A minimal HTTP/1.1 client: one keep-alive connection (TLS or plain) to
//! one server, reconnected when the server closes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Time allowed for one request (connect included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and how to connect: shared by every client of a run.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    host_header: HeaderValue,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// Builds the target of a directory URL.
    pub async fn new(
        directory: &Uri,
        ca_root: Option<&std::path::Path>,
        insecure: bool,
    ) -> Result<Target> {
        let authority = directory
            .authority()
            .ok_or_else(|| anyhow!("{directory}: no host"))?;
        let https = match directory.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("{directory}: only http:// and https:// are supported"),
        };
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| anyhow!("{host} does not resolve to a loopback address; the benchmark only talks to this machine"))?;
        let tls = if https {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .context("TLS versions")?;
            let mut cfg = if insecure {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                    .with_no_client_auth()
            } else {
                let mut roots = RootCertStore::empty();
                let path = ca_root.ok_or_else(|| {
                    anyhow!("an https directory needs --ca-root PEM or --insecure")
                })?;
                let pem =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                use rustls::pki_types::pem::PemObject;
                for c in CertificateDer::pem_slice_iter(&pem) {
                    let c = c.with_context(|| format!("parsing {}", path.display()))?;
                    roots
                        .add(c)
                        .with_context(|| format!("adding a root of {}", path.display()))?;
                }
                if roots.is_empty() {
                    bail!("{}: no certificate found", path.display());
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            };
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone()).context("server name")?;
            Some((TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        Ok(Target {
            addr,
            host_header: HeaderValue::from_str(authority.as_str()).context("host header")?,
            tls,
        })
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Resp {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One keep-alive connection.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Connections opened so far.
    pub connects: u64,
}

impl Conn {
    /// A connection to `target`, opened lazily.
    pub fn new(target: Target) -> Conn {
        Conn {
            target,
            sender: None,
            connects: 0,
        }
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(self.target.addr)
            .await
            .with_context(|| format!("connecting to {}", self.target.addr))?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.target.tls {
            Some((conn, name)) => Box::new(
                conn.connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?,
            ),
            None => Box::new(tcp),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.connects += 1;
        Ok(sender)
    }

    /// Sends a request to the path of `url` on the target.
    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Resp> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.request_inner(method, url, body))
            .await
            .map_err(|_| anyhow!("{url}: no response within {REQUEST_TIMEOUT:?}"))?
    }

    async fn request_inner(
        &mut self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Resp> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        if sender.ready().await.is_err() {
            sender = self.connect().await?;
            sender.ready().await.context("connection not ready")?;
        }
        let mut req = Request::builder().method(method).uri(path);
        if let Some(h) = req.headers_mut() {
            h.insert(header::HOST, self.target.host_header.clone());
            h.insert(
                header::USER_AGENT,
                HeaderValue::from_static("certeasy-bench"),
            );
            if body.is_some() {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/jose+json"),
                );
            }
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("building a request")?;
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("{url}: request failed"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("{url}: reading the body"))?
            .to_bytes();
        let keep = !parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if keep {
            self.sender = Some(sender);
        }
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Accepts any server certificate (`--insecure`), still checking the
/// handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
