//! JWS authentication of POST requests (RFC 8555 §6.2–6.5).

use acme_wire::{AccountStatus, Jwk, Jws, KeyRef, ProblemType};
use axum::http::{header, HeaderMap};

use super::Wfe;
use crate::error::{AcmeError, AcmeResult};
use crate::store::AccountRow;

/// Which key reference a resource accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// `jwk` only (new-account).
    Jwk,
    /// `kid` only (everything else).
    Kid,
    /// Either (revoke-cert: account or certificate key).
    Either,
}

/// A request whose JWS verified.
pub struct Authenticated {
    /// The parsed JWS.
    pub jws: Jws,
    /// The verifying key.
    pub key: Jwk,
    /// The account, for `kid` requests.
    pub account: Option<AccountRow>,
}

impl Authenticated {
    /// The account of a `kid` request.
    pub fn account(&self) -> AcmeResult<&AccountRow> {
        self.account.as_ref().ok_or_else(|| {
            AcmeError::new(
                ProblemType::Malformed,
                "this request must be signed with an account key (kid)",
            )
        })
    }

    /// Refuses a non-empty payload (POST-as-GET resources).
    pub fn require_post_as_get(&self) -> AcmeResult<()> {
        if self.jws.is_post_as_get() {
            Ok(())
        } else {
            Err(AcmeError::new(
                ProblemType::Malformed,
                "this resource is read with POST-as-GET: the payload must be empty",
            ))
        }
    }
}

/// Authenticates a POST body for `expected_url`.
pub async fn authenticate(
    s: &Wfe,
    base: &str,
    headers: &HeaderMap,
    body: &[u8],
    expected_url: &str,
    rule: KeyRule,
) -> AcmeResult<Authenticated> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/jose+json"))
    {
        return Err(acme_wire::Problem::new(
            ProblemType::Malformed,
            format!("Content-Type must be application/jose+json, not {ct:?}"),
        )
        .with_status(415)
        .into());
    }
    let jws = Jws::parse(body)?;
    let url = jws.protected.url.as_deref().ok_or_else(|| {
        AcmeError::new(
            ProblemType::Malformed,
            "the JWS protected header has no url",
        )
    })?;
    if url != expected_url {
        return Err(AcmeError::new(
            ProblemType::Unauthorized,
            format!("the JWS url {url:?} does not match the request URL {expected_url:?}"),
        ));
    }
    let nonce = jws.protected.nonce.clone().ok_or_else(|| {
        AcmeError::new(
            ProblemType::BadNonce,
            "the JWS protected header has no nonce",
        )
    })?;
    let (key, account) = match (&jws.protected.key, rule) {
        (KeyRef::Jwk(_), KeyRule::Kid) => {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "this resource requires a kid (account URL) in the JWS header, not a jwk",
            ));
        }
        (KeyRef::Kid(_), KeyRule::Jwk) => {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "this resource requires a jwk in the JWS header, not a kid",
            ));
        }
        (KeyRef::Jwk(jwk), _) => (jwk.clone(), None),
        (KeyRef::Kid(kid), _) => {
            let prefix = format!("{base}/acme/acct/");
            let id = kid
                .strip_prefix(&prefix)
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .ok_or_else(|| {
                    AcmeError::new(
                        ProblemType::AccountDoesNotExist,
                        format!("kid {kid:?} is not an account URL of this server"),
                    )
                })?;
            let entry = s.ra.accounts.get(&s.ra.store, id).await?.ok_or_else(|| {
                AcmeError::new(
                    ProblemType::AccountDoesNotExist,
                    format!("no account {kid}"),
                )
            })?;
            (entry.1.clone(), Some(entry.0.clone()))
        }
    };
    jws.verify(&key)?;
    let fresh = s.nonces.use_once(&nonce).await;
    if !fresh {
        return Err(AcmeError::new(ProblemType::BadNonce, "the nonce is unknown, expired or already used; retry with the fresh nonce in this response"));
    }
    if let Some(a) = &account {
        if a.status != AccountStatus::Valid {
            return Err(crate::ra::accounts::account_not_valid(a.status));
        }
    }
    Ok(Authenticated { jws, key, account })
}
