//! Orders, authorizations, challenges and finalize.

use std::sync::Arc;

use acme_wire::{
    AuthorizationStatus, ChallengeStatus, FinalizeRequest, Identifier, NewOrderRequest,
    OrderStatus, Problem, ProblemType, Subproblem,
};
use pki::{DnsName, RefusalKind};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Ra;
use super::{effective_order_status, MAX_IDENTIFIERS, ORDER_LIFETIME_MS};
use crate::audit::Event;
use crate::error::{AcmeError, AcmeResult};
use crate::limits::{window_retry_after, Denial};
use crate::store::jobs::JobKind;
use crate::store::{
    new_id, now_ms, AccountRow, AuthzRow, ChallengeRow, NewAuthz, NewOrder, OrderRow, Store,
};

/// Normalises and checks the identifiers of a new-order request: every
/// failure becomes a subproblem naming its identifier.
pub fn normalise_identifiers(ids: &[Identifier]) -> AcmeResult<Vec<DnsName>> {
    if ids.is_empty() {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            "the order has no identifiers",
        ));
    }
    if ids.len() > MAX_IDENTIFIERS {
        return Err(AcmeError::new(
            ProblemType::RejectedIdentifier,
            format!("an order may carry at most {MAX_IDENTIFIERS} identifiers"),
        ));
    }
    let mut names = Vec::new();
    let mut subs = Vec::new();
    for id in ids {
        if id.kind != "dns" {
            subs.push(Subproblem {
                kind: ProblemType::UnsupportedIdentifier,
                detail: format!(
                    "identifier type {:?} is not supported; only \"dns\" is",
                    id.kind
                ),
                identifier: Some(id.clone()),
            });
            continue;
        }
        match DnsName::parse(&id.value) {
            Ok(n) => names.push(n),
            Err(e) => subs.push(Subproblem {
                kind: ProblemType::RejectedIdentifier,
                detail: e.to_string(),
                identifier: Some(id.clone()),
            }),
        }
    }
    if !subs.is_empty() {
        let kind = if subs
            .iter()
            .all(|s| s.kind == ProblemType::UnsupportedIdentifier)
        {
            ProblemType::UnsupportedIdentifier
        } else {
            ProblemType::RejectedIdentifier
        };
        let detail = if subs.len() == 1 {
            subs[0].detail.clone()
        } else {
            format!("{} identifiers were refused", subs.len())
        };
        return Err(Problem::new(kind, detail).with_subproblems(subs).into());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn parse_time(field: &str, v: &Option<String>) -> AcmeResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
            .map_err(|e| {
                AcmeError::new(
                    ProblemType::Malformed,
                    format!("{field} {s:?} is not an RFC 3339 date-time: {e}"),
                )
            }),
    }
}

/// How far in the past a client-chosen notBefore may lie: room for a
/// client clock that is a little behind, not for backdating.
pub const NOT_BEFORE_SKEW_MS: i64 = 5 * 60 * 1000;

/// How far the built-in CA backdates a certificate whose order names no
/// notBefore (`ca::builtin`): the lifetime a notAfter asks for is measured
/// from there, as the issued certificate's will be.
const UNSPECIFIED_NOT_BEFORE_BACKDATE_MS: i64 = 60_000;

/// Refuses a notBefore more than [`NOT_BEFORE_SKEW_MS`] before `now`.
fn check_not_before(not_before: i64, now: i64, when: &str) -> AcmeResult<()> {
    if not_before >= now - NOT_BEFORE_SKEW_MS {
        return Ok(());
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(not_before) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{not_before} ms"));
    Err(AcmeError::new(
        ProblemType::Malformed,
        format!(
            "notBefore {at} lies more than {} minutes in the past{when}; certificates are not backdated beyond that clock-skew allowance: omit notBefore or use the current time",
            NOT_BEFORE_SKEW_MS / 60_000
        ),
    ))
}

/// new-order.
pub async fn new_order(
    s: &Ra,
    acct: &AccountRow,
    req: &NewOrderRequest,
) -> AcmeResult<(OrderRow, Vec<AuthzRow>)> {
    let names = normalise_identifiers(&req.identifiers)?;
    // Accounts created through an external account binding are held to
    // their key's restrictions (one indexed read; none for other accounts).
    let eab_key = super::eab::account_key(s, acct).await?;
    if let Some(k) = &eab_key {
        super::eab::check_names(k, &names)?;
    }
    let (policy, profile) =
        select_policy_and_profile(s, &names, req.profile.as_deref(), eab_key.as_ref())?;
    let replaces = match &req.replaces {
        Some(cert_id) => Some(super::ari::check_replaces(s, acct, &names, cert_id).await?),
        None => None,
    };
    order_limits(s, &acct.id, &names).await?;
    let now = now_ms();
    let not_before = parse_time("notBefore", &req.not_before)?;
    let not_after = parse_time("notAfter", &req.not_after)?;
    if let Some(nb) = not_before {
        check_not_before(nb, now, "")?;
    }
    if let (Some(nb), Some(na)) = (not_before, not_after) {
        if na <= nb {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "notAfter must be later than notBefore",
            ));
        }
    }
    if let Some(na) = not_after {
        if na <= now {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "notAfter is in the past",
            ));
        }
        let max = s
            .catalogue
            .max_validity(&policy.name)
            .map_or(i64::MAX, |d| d.as_millis() as i64);
        // The lifetime the issued certificate will have: from the
        // notBefore asked for, or from the CA's backdated start.
        let start = not_before.unwrap_or(now - UNSPECIFIED_NOT_BEFORE_BACKDATE_MS);
        if na - start > max {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                format!("the requested lifetime exceeds the maximum of {} allowed by the authorities of policy {:?}", crate::config::duration::format_duration(std::time::Duration::from_millis(max as u64)), policy.name),
            ));
        }
    }
    if let Some(nb) = not_before {
        if nb > now + ORDER_LIFETIME_MS {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "notBefore is too far in the future",
            ));
        }
    }
    let expires = now + ORDER_LIFETIME_MS;
    let order = OrderRow {
        id: new_id(),
        account_id: acct.id.clone(),
        status: OrderStatus::Pending,
        policy: policy.name.clone(),
        names: names.iter().map(|n| n.as_str().to_string()).collect(),
        not_before,
        not_after,
        expires,
        error: None,
        csr: None,
        replaces: req.replaces.clone(),
        profile: profile.map(|p| p.name.clone()),
        created_at: now,
        ca_pending: None,
    };
    let authzs: Vec<NewAuthz> = names
        .iter()
        .map(|n| {
            let kinds: &[&str] = if n.is_wildcard() {
                &["dns-01"]
            } else {
                &["http-01", "dns-01", "tls-alpn-01"]
            };
            let authz = AuthzRow {
                id: new_id(),
                order_id: order.id.clone(),
                account_id: acct.id.clone(),
                identifier: n.base().to_string(),
                wildcard: n.is_wildcard(),
                status: AuthorizationStatus::Pending,
                expires,
            };
            let challenges = kinds
                .iter()
                .map(|k| ChallengeRow {
                    id: new_id(),
                    authz_id: authz.id.clone(),
                    kind: (*k).to_string(),
                    token: acme_wire::new_token(),
                    status: ChallengeStatus::Pending,
                    validated: None,
                    error: None,
                })
                .collect();
            NewAuthz { authz, challenges }
        })
        .collect();
    let new = NewOrder { order, authzs };
    let mut tx = s.store.begin().await?;
    if let Err(refusal) = pending_authz_limit(s, &mut tx, &acct.id, new.authzs.len(), now).await {
        tx.rollback().await?;
        return Err(match refusal {
            Refused::Limit(d) => s.deny(Some(&acct.id), d).await,
            Refused::Error(e) => e,
        });
    }
    Store::insert_order(&mut tx, &new).await?;
    if let Some(cert_id) = &replaces {
        if !Store::mark_replaced(&mut tx, cert_id, &new.order.id, now).await? {
            tx.rollback().await?;
            return Err(AcmeError::new(
                ProblemType::AlreadyReplaced,
                "the certificate named in replaces is already replaced by another order; finish or abandon that one",
            ));
        }
    }
    let mut event = Event::new("order.create")
        .account(&acct.id)
        .detail("order", new.order.id.as_str())
        .detail("policy", policy.name.as_str())
        .detail("names", new.order.names.clone());
    if let Some(p) = &new.order.profile {
        event = event.detail("profile", p.as_str());
    }
    if let Some(r) = &new.order.replaces {
        event = event.detail("replaces", r.as_str());
    }
    s.audit.record(&mut tx, event).await?;
    tx.commit().await?;
    tracing::info!(target: "ra", order = %new.order.id, account = %acct.id, policy = %policy.name, names = ?new.order.names, "order created");
    Ok((new.order, new.authzs.into_iter().map(|a| a.authz).collect()))
}

/// The issuance policy and ACME profile of a new order for `names`:
/// - a profile asked for must be offered (`invalidProfile` otherwise) and
///   its policy must allow every name;
/// - none asked for: the account's key's first profile when its key
///   restricts profiles, else the default profile when its policy allows
///   every name (and, for an account bound by an EAB key, is one of the
///   key's policies), else no profile and the first policy that allows
///   every name (as without profiles);
/// - an account created through an external account binding may use only
///   its key's policies and profiles.
fn select_policy_and_profile<'a>(
    s: &'a Ra,
    names: &[DnsName],
    asked: Option<&str>,
    key: Option<&crate::store::EabKeyRow>,
) -> AcmeResult<(
    &'a crate::config::PolicySettings,
    Option<&'a crate::config::AcmeProfile>,
)> {
    let profiles = &s.config.profiles;
    let key_profiles = key.map(|k| k.profiles.as_slice()).unwrap_or_default();
    let key_policies = key.map(|k| k.policies.as_slice()).unwrap_or_default();
    let asked = asked.or(key_profiles.first().map(String::as_str));
    let profile = match asked {
        Some(name) => {
            let Some(p) = s.config.profile(name) else {
                let offered: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
                return Err(AcmeError::new(
                    ProblemType::InvalidProfile,
                    if offered.is_empty() {
                        format!("profile {name:?} is not offered: this server offers no profiles")
                    } else {
                        format!(
                            "profile {name:?} is not offered; offered: {}",
                            offered.join(", ")
                        )
                    },
                ));
            };
            Some(p)
        }
        None => profiles.iter().find(|p| {
            p.default
                && (key_policies.is_empty() || key_policies.contains(&p.policy))
                && s.catalogue
                    .policy(&p.policy)
                    .is_some_and(|pol| names.iter().all(|n| pol.scope.check(n).is_allowed()))
        }),
    };
    if let (Some(p), Some(k)) = (profile, key) {
        if !k.profiles.is_empty() && !k.profiles.contains(&p.name) {
            return Err(AcmeError::new(
                ProblemType::InvalidProfile,
                format!(
                    "profile {:?} is not allowed to this account by its external account binding; allowed: {}",
                    p.name,
                    k.profiles.join(", ")
                ),
            ));
        }
    }
    let policy = match profile {
        Some(p) => {
            let pol = s.catalogue.policy(&p.policy).ok_or_else(|| {
                AcmeError::Internal(anyhow::anyhow!(
                    "profile {} names unknown policy {}",
                    p.name,
                    p.policy
                ))
            })?;
            crate::policy::select_policy(std::slice::from_ref(pol), names).map_err(|mut e| {
                e.detail = format!("profile {:?} (policy {:?}): {}", p.name, p.policy, e.detail);
                e
            })?
        }
        None if key_policies.is_empty() => s.catalogue.select(names)?,
        None => {
            let allowed: Vec<crate::config::PolicySettings> = s
                .config
                .policies
                .iter()
                .filter(|p| key_policies.contains(&p.name))
                .cloned()
                .collect();
            let chosen = crate::policy::select_policy(&allowed, names).map_err(|mut e| {
                e.detail = format!(
                    "{} (this account may use only the policies {} of its external account binding)",
                    e.detail,
                    key_policies.join(", ")
                );
                e
            })?;
            s.catalogue.policy(&chosen.name).ok_or_else(|| {
                AcmeError::Internal(anyhow::anyhow!("policy {} vanished", chosen.name))
            })?
        }
    };
    if !key_policies.is_empty() && !key_policies.contains(&policy.name) {
        return Err(AcmeError::new(
            ProblemType::Unauthorized,
            format!(
                "policy {:?} is not allowed to this account by its external account binding; allowed: {}",
                policy.name,
                key_policies.join(", ")
            ),
        ));
    }
    Ok((policy, profile))
}

/// `rate-limiting.pending-authorizations`: an order of `adding` names must
/// not take the account beyond `max` pending authorizations. Checked in the
/// order's transaction, so concurrent new-orders cannot overshoot. The
/// refusal's `Retry-After` is when enough of the account's pending
/// authorizations expire for this order to fit (validating or deactivating
/// them frees room sooner).
async fn pending_authz_limit(
    s: &Ra,
    tx: &mut crate::store::Tx,
    account: &str,
    adding: usize,
    now: i64,
) -> Result<(), Refused> {
    let limit = &s.config.rate_limiting.pending_authorizations;
    if !limit.enabled {
        return Ok(());
    }
    let max = i64::try_from(limit.max.get()).unwrap_or(i64::MAX);
    let adding = i64::try_from(adding).unwrap_or(i64::MAX);
    let pending = Store::pending_authzs_of_account_tx(tx, account, now).await?;
    let excess = pending.saturating_add(adding).saturating_sub(max);
    if excess <= 0 {
        return Ok(());
    }
    let detail = format!(
        "rate-limiting.pending-authorizations: this account holds {pending} pending authorizations and this order adds {adding}, beyond the limit of {max}; validate or deactivate pending authorizations, or wait for them to expire"
    );
    let mut retry_after = None;
    if adding <= max {
        if let Some(at) = Store::nth_pending_authz_expiry_tx(tx, account, now, excess).await? {
            retry_after = Some(std::time::Duration::from_millis((at - now).max(1) as u64));
        }
    }
    Err(Refused::Limit(Denial {
        limit: "rate-limiting.pending-authorizations",
        detail,
        retry_after,
    }))
}

/// Why a limit check inside a transaction failed: the limit, or the
/// database.
enum Refused {
    Limit(Denial),
    Error(AcmeError),
}

impl From<crate::store::StoreError> for Refused {
    fn from(e: crate::store::StoreError) -> Self {
        Refused::Error(e.into())
    }
}

/// Name of the failed-validation limit's events in the store.
pub const FAILED_VALIDATION: &str = "failed-validation";

/// The key of the failed-validation limit: account and base name.
pub fn failed_validation_key(account: &str, identifier: &str) -> String {
    format!("{account} {identifier}")
}

/// The limits a new order must pass before it is written: orders and names
/// per account (token buckets), duplicate certificates for this name set,
/// and failed validations per name (sliding windows over the database).
async fn order_limits(s: &Ra, account: &str, names: &[DnsName]) -> AcmeResult<()> {
    if let Err(d) = s.limits.new_order(account, names.len()).await {
        return Err(s.deny(Some(account), d).await);
    }
    let settings = s.limits.settings();
    let now = now_ms();
    if let Some(w) = settings.duplicate_certificate {
        let set: Vec<String> = names.iter().map(|n| n.as_str().to_string()).collect();
        let since = now - w.window.as_millis() as i64;
        let times = s.store.duplicate_certs_since(account, &set, since).await?;
        if let Err(wait) = window_retry_after(&times, w.max, w.window, now) {
            let d = Denial {
                limit: "rate-limiting.duplicate-certificate",
                detail: format!(
                    "rate-limiting.duplicate-certificate: this account already holds {} unrevoked certificates for exactly these names issued in the last {}, the limit is {}",
                    times.len(),
                    crate::config::duration::format_duration(w.window),
                    w.max
                ),
                retry_after: Some(wait),
            };
            return Err(s.deny(Some(account), d).await);
        }
    }
    if let Some(w) = settings.failed_validation {
        let since = now - w.window.as_millis() as i64;
        for n in names {
            let key = failed_validation_key(account, n.base());
            let times = s
                .store
                .limit_events_since(FAILED_VALIDATION, &key, since)
                .await?;
            if let Err(wait) = window_retry_after(&times, w.max, w.window, now) {
                let d = Denial {
                    limit: "rate-limiting.failed-validation",
                    detail: format!(
                        "rate-limiting.failed-validation: validation of {} failed {} times for this account in the last {}, the limit is {}; fix the cause (see the failed challenge's error) before ordering again",
                        n.base(),
                        times.len(),
                        crate::config::duration::format_duration(w.window),
                        w.max
                    ),
                    retry_after: Some(wait),
                };
                return Err(s.deny(Some(account), d).await);
            }
        }
    }
    Ok(())
}

/// Loads an order that must belong to `acct`.
pub async fn owned_order(s: &Ra, acct: &AccountRow, id: &str) -> AcmeResult<OrderRow> {
    match s.store.order(id).await? {
        Some(o) if o.account_id == acct.id => Ok(o),
        Some(_) => Err(AcmeError::new(
            ProblemType::Unauthorized,
            "this order belongs to another account",
        )),
        None => Err(not_found("order")),
    }
}

/// Loads an authorization that must belong to `acct`.
pub async fn owned_authz(s: &Ra, acct: &AccountRow, id: &str) -> AcmeResult<AuthzRow> {
    match s.store.authz(id).await? {
        Some(a) if a.account_id == acct.id => Ok(a),
        Some(_) => Err(AcmeError::new(
            ProblemType::Unauthorized,
            "this authorization belongs to another account",
        )),
        None => Err(not_found("authorization")),
    }
}

/// A 404 problem.
pub fn not_found(what: &str) -> AcmeError {
    Problem::new(ProblemType::Malformed, format!("no such {what}"))
        .with_status(404)
        .into()
}

/// POST to a challenge URL with `{}`: start validation, and wait up to
/// `workers.validation-wait` for it to end; the challenge as it is then.
pub async fn respond_challenge(
    s: &Arc<Ra>,
    acct: &AccountRow,
    chall_id: &str,
) -> AcmeResult<(ChallengeRow, AuthzRow)> {
    let chall = challenge(s, chall_id).await?;
    let authz = owned_authz(s, acct, &chall.authz_id).await?;
    let now = now_ms();
    if chall.status != ChallengeStatus::Pending {
        // Processing, valid or invalid: answering again changes nothing.
        return Ok((chall, authz));
    }
    let status = super::effective_authz_status(authz.status, authz.expires, now);
    if status != AuthorizationStatus::Pending {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            format!("the authorization is {status}; its challenges can no longer be answered"),
        ));
    }
    let mut tx = s.store.begin().await?;
    let started = Store::start_challenge(&mut tx, &chall.id).await?;
    let job = if started {
        s.jobs
            .enqueue(&mut tx, JobKind::Validate, &chall.id)
            .await?
    } else {
        None
    };
    tx.commit().await?;
    if !started {
        return not_started(s, chall_id, authz).await;
    }
    // A quick validation ends within the request: the answer is the
    // challenge's outcome and the client's first poll finds the
    // authorization decided.
    s.jobs
        .run_now(s, job, s.config.workers.validation_wait.get())
        .await;
    let chall = challenge(s, chall_id).await?;
    Ok((chall, authz))
}

/// The challenge `id`, or a 404 problem.
async fn challenge(s: &Ra, id: &str) -> AcmeResult<ChallengeRow> {
    s.store
        .challenge(id)
        .await?
        .ok_or_else(|| not_found("challenge"))
}

/// A challenge POST that did not start a validation: either the challenge
/// itself moved on meanwhile (answer it as it is), or another challenge of
/// its authorization was answered first — one challenge validates an
/// authorization, so this one is refused.
async fn not_started(
    s: &Ra,
    chall_id: &str,
    authz: AuthzRow,
) -> AcmeResult<(ChallengeRow, AuthzRow)> {
    let chall = challenge(s, chall_id).await?;
    if chall.status != ChallengeStatus::Pending {
        return Ok((chall, authz));
    }
    let answered = s
        .store
        .challenges_of_authz(&authz.id)
        .await?
        .into_iter()
        .find(|c| c.status != ChallengeStatus::Pending)
        .map(|c| format!("its {} challenge", c.kind))
        .unwrap_or_else(|| "another challenge".into());
    Err(AcmeError::new(
        ProblemType::Malformed,
        format!("{answered} was already answered; an authorization is validated by one challenge"),
    ))
}

/// POST to an authorization URL with `{"status":"deactivated"}`.
pub async fn deactivate_authz(s: &Ra, acct: &AccountRow, authz: &AuthzRow) -> AcmeResult<()> {
    let _ = acct;
    let mut tx = s.store.begin().await?;
    if !Store::set_authz_status(
        &mut tx,
        &authz.id,
        &[AuthorizationStatus::Pending, AuthorizationStatus::Valid],
        AuthorizationStatus::Deactivated,
    )
    .await?
    {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            format!(
                "an authorization in status {} cannot be deactivated",
                authz.status
            ),
        ));
    }
    let problem = Problem::new(
        ProblemType::Unauthorized,
        format!("authorization for {} was deactivated", authz.identifier),
    );
    let invalidated = Store::set_order_status(
        &mut tx,
        &authz.order_id,
        &[OrderStatus::Pending, OrderStatus::Ready],
        OrderStatus::Invalid,
        Some(&problem.to_json().to_string()),
    )
    .await?;
    let event = Event::new("authorization.deactivate")
        .account(&acct.id)
        .detail("authorization", authz.id.as_str())
        .detail("identifier", authz.identifier.as_str());
    s.audit.record(&mut tx, event).await?;
    if invalidated {
        s.audit
            .record(&mut tx, order_invalid(&acct.id, &authz.order_id, &problem))
            .await?;
    }
    tx.commit().await?;
    crate::telemetry::metrics::order_final(false);
    Ok(())
}

/// The `order.invalid` event of an order that became invalid for `problem`.
pub fn order_invalid(account: &str, order: &str, problem: &Problem) -> Event {
    Event::new("order.invalid")
        .account(account)
        .reason(problem.detail.clone())
        .detail("order", order)
        .detail("problem", problem.kind.urn())
}

/// Whether `spki_der` (a CSR's SubjectPublicKeyInfo) is the key of `acct`.
/// Compared as RFC 7638 thumbprints, which depend on the key alone, not on
/// how the SPKI encodes it (RSA parameters NULL or absent, and so on).
fn is_account_key(spki_der: &[u8], acct: &AccountRow) -> bool {
    acme_wire::Jwk::from_spki_der(spki_der).is_ok_and(|k| k.thumbprint() == acct.thumbprint)
}

/// finalize: check the CSR against the order and the policy, then queue issuance.
pub async fn finalize(
    s: &Arc<Ra>,
    acct: &AccountRow,
    order_id: &str,
    req: &FinalizeRequest,
) -> AcmeResult<OrderRow> {
    let order = owned_order(s, acct, order_id).await?;
    let status = effective_order_status(order.status, order.expires, now_ms());
    if matches!(status, OrderStatus::Processing | OrderStatus::Valid)
        && order.csr.is_some()
        && acme_wire::b64u_decode(&req.csr).ok() == order.csr
    {
        // The same finalize again, with the same CSR: a client retrying
        // after the answer was lost (its node died behind a load balancer
        // after the commit, the balancer resent the request, the client
        // got badNonce and signed it again). Answered as the first time —
        // with the order as it is now — so the retry RFC 8555 §6.5 allows
        // does not fail; nothing is written.
        return Ok(order);
    }
    if status != OrderStatus::Ready {
        let detail = match status {
            OrderStatus::Pending => {
                "the order is not ready: its authorizations are not all valid yet".to_string()
            }
            OrderStatus::Processing | OrderStatus::Valid => {
                format!("the order is already {status}; it was finalized before")
            }
            other => format!("the order is {other} and cannot be finalized"),
        };
        return Err(AcmeError::new(ProblemType::OrderNotReady, detail));
    }
    if let Some(nb) = order.not_before {
        // Days may have passed since new-order: the rule holds at signing.
        check_not_before(
            nb,
            now_ms(),
            " now; order a new certificate without notBefore",
        )?;
    }
    let csr = acme_wire::b64u_decode(&req.csr)
        .map_err(|e| AcmeError::new(ProblemType::BadCsr, format!("csr is not base64url: {e}")))?;
    // The configuration may have changed since new-order (restart with a
    // narrower policy): check the scope again before anything is signed.
    if let Some(problem) = s.catalogue.scope_refusal(&order.policy, &order.names) {
        let mut tx = s.store.begin().await?;
        if Store::set_order_status(
            &mut tx,
            &order.id,
            &[OrderStatus::Ready],
            OrderStatus::Invalid,
            Some(&problem.to_json().to_string()),
        )
        .await?
        {
            s.audit
                .record(&mut tx, order_invalid(&acct.id, &order.id, &problem))
                .await?;
        }
        tx.commit().await?;
        crate::telemetry::metrics::order_final(false);
        return Err(problem.into());
    }
    let policy = s
        .catalogue
        .require_policy(&order.policy)
        .map_err(AcmeError::Internal)?;
    let names: Vec<DnsName> = order
        .names
        .iter()
        .map(|n| DnsName::parse(n))
        .collect::<Result<_, _>>()
        .map_err(|e| AcmeError::Internal(e.into()))?;
    let approved = match pki::check_csr(&csr, &names, &policy.csr) {
        Ok(approved) => approved,
        Err(refusal) => {
            let kind = match refusal.kind {
                RefusalKind::BadCsr => ProblemType::BadCsr,
                RefusalKind::BadPublicKey => ProblemType::BadPublicKey,
            };
            tracing::info!(target: "ra", order = %order.id, reason = %refusal.detail, "CSR refused");
            return Err(AcmeError::new(kind, refusal.detail));
        }
    };
    if is_account_key(&approved.spki_der, acct) {
        tracing::info!(target: "ra", order = %order.id, "CSR refused: its key is the account key");
        return Err(AcmeError::new(
            ProblemType::BadPublicKey,
            "the CSR's public key is the ACME account key; a certificate needs a key of its own",
        ));
    }
    if let Some(refusal) = s.catalogue.key_refusal(&order.policy, approved.key) {
        tracing::info!(target: "ra", order = %order.id, key = %approved.key, "CSR refused: no authority of the policy issues for its key type");
        return Err(refusal.into());
    }
    let mut tx = s.store.begin().await?;
    if !Store::begin_processing(&mut tx, &order.id, &csr).await? {
        return Err(AcmeError::new(
            ProblemType::OrderNotReady,
            "the order changed state while it was being finalized; fetch it again",
        ));
    }
    let job = s.jobs.enqueue(&mut tx, JobKind::Issue, &order.id).await?;
    let event = Event::new("order.finalize")
        .account(&acct.id)
        .detail("order", order.id.as_str())
        .detail("key", approved.key.to_string())
        .detail("names", order.names.clone());
    s.audit.record(&mut tx, event).await?;
    tx.commit().await?;
    tracing::info!(target: "ra", order = %order.id, "order finalized; issuance queued");
    // A fast CA issues within the request: the client gets the valid order
    // with its certificate URL and needs no poll.
    s.jobs
        .run_now(s, job, s.config.workers.finalize_wait.get())
        .await;
    s.store
        .order(&order.id)
        .await?
        .ok_or_else(|| not_found("order"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER TLV with a definite length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// An RSA SubjectPublicKeyInfo, with the algorithm parameters NULL or absent.
    fn rsa_spki(n: &[u8], e: &[u8], null_params: bool) -> Vec<u8> {
        let oid = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        let mut alg = oid.to_vec();
        if null_params {
            alg.extend([0x05, 0x00]);
        }
        let mut n_int = vec![0u8];
        n_int.extend_from_slice(n);
        let key = tlv(0x30, &[tlv(0x02, &n_int), tlv(0x02, e)].concat());
        let mut bits = vec![0u8];
        bits.extend(key);
        tlv(0x30, &[tlv(0x30, &alg), tlv(0x03, &bits)].concat())
    }

    fn account_with(jwk: &acme_wire::Jwk) -> AccountRow {
        AccountRow {
            id: "a".into(),
            thumbprint: jwk.thumbprint(),
            jwk: jwk.to_json().to_string(),
            contact: vec![],
            status: acme_wire::AccountStatus::Valid,
            tos_agreed: true,
            created_at: 0,
            eab_kid: None,
        }
    }

    #[test]
    fn the_account_key_is_recognised_in_any_spki_encoding() {
        let mut n = vec![0xc5u8; 256];
        n[255] |= 1;
        let e = [1u8, 0, 1];
        let acct = account_with(&acme_wire::Jwk::rsa(n.clone(), e.to_vec()).unwrap());
        assert!(is_account_key(&rsa_spki(&n, &e, true), &acct));
        assert!(is_account_key(&rsa_spki(&n, &e, false), &acct));
        let mut other = n.clone();
        other[10] ^= 0x40;
        assert!(!is_account_key(&rsa_spki(&other, &e, true), &acct));
        assert!(!is_account_key(b"not DER", &acct));
    }
}
