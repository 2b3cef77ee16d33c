//! A lean ACME client (RFC 8555) for the benchmark: one account, one
//! keep-alive connection, http-01 only, fast polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::http::{Conn, Resp, Target};
use crate::jws::{b64u, AccountKey};
use crate::responder::Tokens;
use crate::stats::{Step, StepTimes};

/// The URLs of a directory the benchmark uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// newNonce.
    pub new_nonce: String,
    /// newAccount.
    pub new_account: String,
    /// newOrder.
    pub new_order: String,
}

impl Directory {
    /// Fetches and parses the directory.
    pub async fn fetch(target: &Target, url: &str) -> Result<Directory> {
        let mut conn = Conn::new(target.clone());
        let r = conn.request(Method::GET, url, None).await?;
        if r.status != StatusCode::OK {
            bail!(
                "GET {url}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        serde_json::from_slice(&r.body).with_context(|| format!("{url}: not an ACME directory"))
    }
}

#[derive(Deserialize)]
struct OrderJson {
    status: String,
    #[serde(default)]
    authorizations: Vec<String>,
    #[serde(default)]
    finalize: String,
    certificate: Option<String>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct AuthzJson {
    status: String,
    challenges: Vec<ChallengeJson>,
}

#[derive(Deserialize)]
struct ChallengeJson {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    token: String,
}

/// The CSR key material of one client.
pub enum CsrKeys {
    /// A fresh P-256 key per CSR.
    P256,
    /// One RSA key (PKCS#8 DER) per client, a fresh CSR per order: RSA key
    /// generation (hundreds of ms) would otherwise dominate the load
    /// generator.
    Rsa(rustls::pki_types::PrivatePkcs8KeyDer<'static>),
}

impl CsrKeys {
    /// A CSR (DER) for `names`.
    pub fn csr(&self, names: &[String]) -> Result<Vec<u8>> {
        let mut params = rcgen::CertificateParams::new(names.to_vec()).context("CSR parameters")?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let der = match self {
            CsrKeys::P256 => {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .context("P-256 key")?;
                params
                    .serialize_request(&key)
                    .context("CSR")?
                    .der()
                    .to_vec()
            }
            CsrKeys::Rsa(pkcs8) => {
                let key =
                    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(pkcs8, &rcgen::PKCS_RSA_SHA256)
                        .context("RSA key")?;
                params
                    .serialize_request(&key)
                    .context("CSR")?
                    .der()
                    .to_vec()
            }
        };
        Ok(der)
    }

    /// Generates the per-client key for `kind`.
    pub fn new(kind: crate::KeyKind) -> Result<CsrKeys> {
        use rsa::pkcs8::EncodePrivateKey;
        let bits = match kind {
            crate::KeyKind::P256 => return Ok(CsrKeys::P256),
            crate::KeyKind::Rsa2048 => 2048,
            crate::KeyKind::Rsa3072 => 3072,
        };
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
            .context("RSA key generation")?;
        let der = key.to_pkcs8_der().context("RSA PKCS#8")?;
        Ok(CsrKeys::Rsa(der.as_bytes().to_vec().into()))
    }
}

/// One ACME client: account key, account URL, connection, current nonce.
pub struct Client {
    conn: Conn,
    key: AccountKey,
    dir: Arc<Directory>,
    nonce: Option<String>,
    kid: Option<String>,
    /// Requests sent (for the report).
    pub requests: u64,
    /// Order polls sent.
    pub polls: u64,
    /// badNonce answers retried.
    pub bad_nonces: u64,
}

fn problem(r: &Resp) -> String {
    match serde_json::from_slice::<serde_json::Value>(&r.body) {
        Ok(v) => format!(
            "{} {} {}",
            r.status.as_u16(),
            v["type"].as_str().unwrap_or("?"),
            v["detail"].as_str().unwrap_or("")
        ),
        Err(_) => format!("{} {}", r.status.as_u16(), String::from_utf8_lossy(&r.body)),
    }
}

impl Client {
    /// A client with a fresh account key (no account yet).
    pub fn new(target: Target, dir: Arc<Directory>) -> Result<Client> {
        Ok(Client {
            conn: Conn::new(target),
            key: AccountKey::generate()?,
            dir,
            nonce: None,
            kid: None,
            requests: 0,
            polls: 0,
            bad_nonces: 0,
        })
    }

    /// Connections opened.
    pub fn connects(&self) -> u64 {
        self.conn.connects
    }

    async fn take_nonce(&mut self) -> Result<String> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let url = self.dir.new_nonce.clone();
        self.requests += 1;
        let r = self.conn.request(Method::HEAD, &url, None).await?;
        r.header("replay-nonce")
            .map(str::to_string)
            .ok_or_else(|| anyhow!("HEAD {url}: {} without Replay-Nonce", r.status))
    }

    /// Signed POST (`payload` `None` = POST-as-GET). Retries badNonce up to
    /// three times; any other error status becomes an error.
    async fn post(&mut self, url: &str, payload: Option<&[u8]>) -> Result<Resp> {
        for _ in 0..4 {
            let nonce = self.take_nonce().await?;
            let body = self
                .key
                .sign(self.kid.as_deref(), &nonce, url, payload.unwrap_or(b""))?;
            self.requests += 1;
            let r = self.conn.request(Method::POST, url, Some(body)).await?;
            self.nonce = r.header("replay-nonce").map(str::to_string);
            if r.status.is_success() {
                return Ok(r);
            }
            let bad_nonce = r.status == StatusCode::BAD_REQUEST
                && memchr_str(&r.body, b"urn:ietf:params:acme:error:badNonce");
            if !bad_nonce {
                bail!("POST {url}: {}", problem(&r));
            }
            self.bad_nonces += 1;
        }
        bail!("POST {url}: badNonce four times in a row")
    }

    /// Creates the account (agreeing to the terms).
    pub async fn create_account(&mut self) -> Result<()> {
        let url = self.dir.new_account.clone();
        let r = self
            .post(&url, Some(br#"{"termsOfServiceAgreed":true}"#))
            .await?;
        let kid = r
            .header("location")
            .ok_or_else(|| anyhow!("new-account: no Location header"))?;
        self.kid = Some(kid.to_string());
        Ok(())
    }

    async fn poll_order(
        &mut self,
        url: &str,
        want: &str,
        poll: Duration,
        deadline: Instant,
    ) -> Result<OrderJson> {
        loop {
            self.polls += 1;
            let r = self.post(url, None).await?;
            let o: OrderJson = serde_json::from_slice(&r.body).context("order JSON")?;
            if o.status == want {
                return Ok(o);
            }
            if o.status == "invalid" {
                bail!(
                    "order {url} became invalid: {}",
                    o.error.unwrap_or_default()
                );
            }
            if Instant::now() + poll > deadline {
                bail!("order {url} still {} at the issuance timeout", o.status);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// One complete issuance for `names`; step times are added to `t`.
    pub async fn issue(
        &mut self,
        names: &[String],
        keys: &CsrKeys,
        tokens: &Tokens,
        poll: Duration,
        timeout: Duration,
        t: &mut StepTimes,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut tokens_set = Vec::with_capacity(names.len());
        let res = self
            .issue_inner(names, keys, tokens, poll, deadline, t, &mut tokens_set)
            .await;
        tokens.remove(&tokens_set);
        res
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue_inner(
        &mut self,
        names: &[String],
        keys: &CsrKeys,
        tokens: &Tokens,
        poll: Duration,
        deadline: Instant,
        t: &mut StepTimes,
        tokens_set: &mut Vec<String>,
    ) -> Result<()> {
        // new-order
        let start = Instant::now();
        let ids: Vec<serde_json::Value> = names
            .iter()
            .map(|n| serde_json::json!({"type": "dns", "value": n}))
            .collect();
        let payload = serde_json::to_vec(&serde_json::json!({ "identifiers": ids }))?;
        let url = self.dir.new_order.clone();
        let r = self.post(&url, Some(&payload)).await.context("new-order")?;
        let order_url = r
            .header("location")
            .ok_or_else(|| anyhow!("new-order: no Location header"))?
            .to_string();
        let order: OrderJson = serde_json::from_slice(&r.body).context("new-order: order JSON")?;
        let mut now = Instant::now();
        t.add(Step::NewOrder, now - start);

        // authorizations and challenges
        let mut challenges = Vec::with_capacity(order.authorizations.len());
        for authz_url in &order.authorizations {
            let r = self.post(authz_url, None).await.context("authz")?;
            let a: AuthzJson = serde_json::from_slice(&r.body).context("authz JSON")?;
            if a.status == "valid" {
                continue;
            }
            let ch = a
                .challenges
                .into_iter()
                .find(|c| c.kind == "http-01")
                .ok_or_else(|| anyhow!("authz {authz_url}: no http-01 challenge"))?;
            tokens.insert(&ch.token, self.key.key_authorization(&ch.token));
            tokens_set.push(ch.token);
            challenges.push(ch.url);
        }
        let t2 = Instant::now();
        t.add(Step::Authz, t2 - now);
        now = t2;
        for ch in &challenges {
            self.post(ch, Some(b"{}")).await.context("challenge")?;
        }
        let t2 = Instant::now();
        t.add(Step::Challenge, t2 - now);
        now = t2;

        // wait for ready
        let ready = if order.status == "ready" {
            order
        } else {
            self.poll_order(&order_url, "ready", poll, deadline)
                .await
                .context("poll ready")?
        };
        let t2 = Instant::now();
        t.add(Step::PollReady, t2 - now);
        now = t2;

        // CSR (client CPU, timed on its own)
        let csr = keys.csr(names)?;
        let t2 = Instant::now();
        t.add(Step::Csr, t2 - now);
        now = t2;

        // finalize
        let payload = serde_json::to_vec(&serde_json::json!({ "csr": b64u(&csr) }))?;
        let r = self
            .post(&ready.finalize, Some(&payload))
            .await
            .context("finalize")?;
        let fin: OrderJson = serde_json::from_slice(&r.body).context("finalize: order JSON")?;
        let t2 = Instant::now();
        t.add(Step::Finalize, t2 - now);
        now = t2;

        let valid = if fin.status == "valid" && fin.certificate.is_some() {
            fin
        } else {
            self.poll_order(&order_url, "valid", poll, deadline)
                .await
                .context("poll valid")?
        };
        let t2 = Instant::now();
        t.add(Step::PollValid, t2 - now);
        now = t2;

        let cert_url = valid
            .certificate
            .ok_or_else(|| anyhow!("order {order_url} is valid without a certificate URL"))?;
        let r = self.post(&cert_url, None).await.context("download")?;
        if !memchr_str(&r.body, b"-----BEGIN CERTIFICATE-----") {
            bail!("download {cert_url}: not a PEM chain");
        }
        let t2 = Instant::now();
        t.add(Step::Download, t2 - now);
        t.add(Step::Total, t2 - start);
        Ok(())
    }
}

fn memchr_str(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
