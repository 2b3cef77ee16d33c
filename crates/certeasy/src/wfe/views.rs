//! Renders stored rows as RFC 8555 resources.

use acme_wire::{
    AccountResource, AuthorizationResource, AuthorizationStatus, ChallengeResource,
    ChallengeStatus, Identifier, OrderResource, OrderStatus, Problem,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Wfe;
use crate::ra::{effective_authz_status, effective_order_status};
use crate::store::{now_ms, AccountRow, AuthzRow, ChallengeRow, OrderRow};

/// RFC 3339 text of a unix-ms time.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn problem(json: &Option<String>) -> Option<Problem> {
    json.as_deref().and_then(|j| serde_json::from_str(j).ok())
}

/// Account resource.
pub fn account(base: &str, a: &AccountRow) -> AccountResource {
    AccountResource {
        status: a.status,
        contact: a.contact.clone(),
        terms_of_service_agreed: Some(a.tos_agreed),
        orders: format!("{base}/acme/acct/{}/orders", a.id),
        external_account_binding: None,
    }
}

/// Order resource (loads its authorizations and certificate id).
pub async fn order(s: &Wfe, base: &str, o: &OrderRow) -> anyhow::Result<OrderResource> {
    let authz_ids = s.ra.store.authz_ids_of_order(&o.id).await?;
    let status = effective_order_status(o.status, o.expires, now_ms());
    let certificate = if status == OrderStatus::Valid {
        s.ra.store
            .cert_id_of_order(&o.id)
            .await?
            .map(|id| format!("{base}/acme/cert/{id}"))
    } else {
        None
    };
    Ok(OrderResource {
        status,
        expires: Some(rfc3339(o.expires)),
        identifiers: o.names.iter().map(|n| Identifier::dns(n.clone())).collect(),
        not_before: o.not_before.map(rfc3339),
        not_after: o.not_after.map(rfc3339),
        error: problem(&o.error),
        authorizations: authz_ids
            .iter()
            .map(|id| format!("{base}/acme/authz/{id}"))
            .collect(),
        finalize: format!("{base}/acme/finalize/{}", o.id),
        certificate,
        replaces: o.replaces.clone(),
        profile: o.profile.clone(),
    })
}

/// Challenge resource.
pub fn challenge(base: &str, c: &ChallengeRow) -> ChallengeResource {
    ChallengeResource {
        kind: c.kind.clone(),
        url: format!("{base}/acme/chall/{}", c.id),
        status: c.status,
        token: c.token.clone(),
        validated: c.validated.map(rfc3339),
        error: problem(&c.error),
    }
}

/// Authorization resource (loads its challenges).
pub async fn authz(s: &Wfe, base: &str, a: &AuthzRow) -> anyhow::Result<AuthorizationResource> {
    let challenges = s.ra.store.challenges_of_authz(&a.id).await?;
    let status = effective_authz_status(a.status, a.expires, now_ms());
    // A valid authorization lists only the challenge that validated it.
    let shown: Vec<ChallengeResource> = challenges
        .iter()
        .filter(|c| status != AuthorizationStatus::Valid || c.status == ChallengeStatus::Valid)
        .map(|c| challenge(base, c))
        .collect();
    Ok(AuthorizationResource {
        identifier: Identifier::dns(a.identifier.clone()),
        status,
        expires: Some(rfc3339(a.expires)),
        challenges: shown,
        wildcard: a.wildcard.then_some(true),
    })
}
