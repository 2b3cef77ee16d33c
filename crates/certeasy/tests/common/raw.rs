//! A raw ACME client for error paths: hand-built JWS over HTTPS, so tests
//! can send exactly the malformed requests a real client never would.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

/// An account key (ECDSA P-256).
pub struct Key {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl Key {
    pub fn generate() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Key {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    /// The private key as PKCS #8 DER (to sign a CSR with the account key).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn jwk(&self) -> Value {
        let pt = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&pt[1..33]), "y": URL_SAFE_NO_PAD.encode(&pt[33..65])})
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), input)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// A flattened JWS with an explicit protected header.
    pub fn jws_with_header(&self, header: &Value, payload: &str) -> Vec<u8> {
        let p = URL_SAFE_NO_PAD.encode(header.to_string());
        let pl = URL_SAFE_NO_PAD.encode(payload);
        let sig = URL_SAFE_NO_PAD.encode(self.sign(format!("{p}.{pl}").as_bytes()));
        json!({"protected": p, "payload": pl, "signature": sig})
            .to_string()
            .into_bytes()
    }

    /// A flattened ES256 JWS authenticated by `kid` or, when None, by `jwk`.
    pub fn jws(&self, kid: Option<&str>, nonce: Option<&str>, url: &str, payload: &str) -> Vec<u8> {
        let mut header = json!({"alg": "ES256", "url": url});
        if let Some(n) = nonce {
            header["nonce"] = json!(n);
        }
        match kid {
            Some(k) => header["kid"] = json!(k),
            None => header["jwk"] = self.jwk(),
        }
        self.jws_with_header(&header, payload)
    }
}

/// A response.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn problem_type(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_string()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn location(&self) -> String {
        self.header("location").unwrap_or_default()
    }
}

/// Raw HTTPS client trusting the test CA.
pub struct Raw {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    pub base: String,
}

impl Raw {
    pub fn new(addr: SocketAddr, base: &str, root_pem: &std::path::Path) -> Raw {
        let mut roots = rustls::RootCertStore::empty();
        for der in pki::pem_to_der_certs(&std::fs::read_to_string(root_pem).unwrap()).unwrap() {
            roots
                .add(rustls::pki_types::CertificateDer::from(der))
                .unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Raw {
            addr,
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            base: base.to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/acme/{path}", self.base)
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        self.send_with(method, url, content_type, body, &[]).await
    }

    /// Like [`Raw::send`], with extra request headers.
    pub async fn send_with(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Resp {
        self.try_send_with(method, url, content_type, body, extra)
            .await
            .unwrap()
    }

    /// Like [`Raw::send`], reporting a failure (connection refused or
    /// closed, a response cut short) instead of panicking.
    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        self.try_send_with(method, url, content_type, body, &[])
            .await
    }

    /// Like [`Raw::try_send`], with extra request headers.
    pub async fn try_send_with(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
        tokio::spawn(conn);
        let host = self.base.trim_start_matches("https://").to_string();
        let mut req = Request::builder()
            .method(method)
            .uri(url.trim_start_matches(&self.base))
            .header("host", host);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response body cut short ({status}): {e}"))?
            .to_bytes();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn nonce(&self) -> String {
        let r = self
            .send(Method::HEAD, &self.url("new-nonce"), None, Vec::new())
            .await;
        r.header("replay-nonce").expect("replay-nonce")
    }

    /// POSTs a JWS body.
    pub async fn post_raw(&self, url: &str, body: Vec<u8>) -> Resp {
        self.send(Method::POST, url, Some("application/jose+json"), body)
            .await
    }

    /// Signs `payload` with a fresh nonce and POSTs it to `url`.
    pub async fn post(&self, key: &Key, kid: Option<&str>, url: &str, payload: &str) -> Resp {
        let nonce = self.nonce().await;
        self.post_raw(url, key.jws(kid, Some(&nonce), url, payload))
            .await
    }

    /// Creates an account, returns its URL (kid).
    pub async fn new_account(&self, key: &Key) -> String {
        let r = self
            .post(
                key,
                None,
                &self.url("new-account"),
                r#"{"termsOfServiceAgreed":true}"#,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        r.location()
    }
}
