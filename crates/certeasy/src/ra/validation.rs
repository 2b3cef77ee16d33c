//! `validate` jobs: ask the VA, then record the outcome on the challenge, its
//! authorization and its order in one transaction.

use acme_wire::{
    AuthorizationStatus, ChallengeStatus, Identifier, OrderStatus, Problem, ProblemType, Subproblem,
};
use certeasy_va::{FailureKind, ValidationFailure};

use super::Ra;
use crate::audit::Event;
use crate::jobs::Outcome;
use crate::store::jobs::ClaimedJob;
use crate::store::{AuthzRow, ChallengeRow, Store};

/// Runs one validation job.
pub async fn run(s: &Ra, job: &ClaimedJob) -> anyhow::Result<Outcome> {
    let Some(chall) = s.store.challenge(&job.subject).await? else {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    };
    if chall.status != ChallengeStatus::Processing {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    }
    let authz = s
        .store
        .authz(&chall.authz_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("authorization {} vanished", chall.authz_id))?;
    let cap = s.config.workers.validations_per_account();
    let Some(_running) = s.jobs.account_slot(&authz.account_id, cap) else {
        return Ok(Outcome::Defer(format!(
            "account {} already has {cap} validations running (workers.validations-per-account)",
            authz.account_id
        )));
    };
    let order = s
        .store
        .order(&authz.order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order {} vanished", authz.order_id))?;
    let account = s
        .store
        .account(&authz.account_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("account {} vanished", authz.account_id))?;
    let validator = s.catalogue.validator(&order.policy)?;

    let key_auth = acme_wire::key_authorization(&chall.token, &account.thumbprint);
    let domain = authz.identifier.as_str();
    let started = std::time::Instant::now();
    let result = match chall.kind.as_str() {
        "http-01" => validator.http01(domain, &chall.token, &key_auth).await,
        "dns-01" => {
            validator
                .dns01(domain, &acme_wire::dns01_txt_value(&key_auth))
                .await
        }
        "tls-alpn-01" => validator.tls_alpn01(domain, &key_auth).await,
        other => Err(ValidationFailure {
            kind: FailureKind::ServerInternal,
            detail: format!("unknown challenge type {other}"),
        }),
    };
    crate::telemetry::metrics::validation(&chall.kind, result.is_ok(), started.elapsed());

    let mut tx = s.store.begin().await?;
    match result {
        Ok(record) => {
            let record = serde_json::to_string(&record).ok();
            if Store::finish_challenge(&mut tx, &chall.id, true, None, record.as_deref()).await? {
                let authz_valid = Store::set_authz_status(
                    &mut tx,
                    &authz.id,
                    &[AuthorizationStatus::Pending],
                    AuthorizationStatus::Valid,
                )
                .await?;
                s.audit
                    .record(&mut tx, challenge_event(&authz, &chall, "valid", None))
                    .await?;
                if authz_valid {
                    s.audit
                        .record(&mut tx, authz_event(&authz, "valid", None))
                        .await?;
                }
                let all = Store::authzs_of_order_tx(&mut tx, &order.id).await?;
                if all.iter().all(|a| a.status == AuthorizationStatus::Valid) {
                    Store::set_order_status(
                        &mut tx,
                        &order.id,
                        &[OrderStatus::Pending],
                        OrderStatus::Ready,
                        None,
                    )
                    .await?;
                }
            }
            tracing::info!(target: "va", challenge = %chall.id, kind = %chall.kind, identifier = %domain, "challenge valid");
        }
        Err(failure) => {
            let problem = failure_problem(&failure);
            let problem_json = problem.to_json().to_string();
            if Store::finish_challenge(&mut tx, &chall.id, false, Some(&problem_json), None).await?
            {
                let authz_invalid = Store::set_authz_status(
                    &mut tx,
                    &authz.id,
                    &[AuthorizationStatus::Pending],
                    AuthorizationStatus::Invalid,
                )
                .await?;
                let reason = Some(problem.detail.as_str());
                s.audit
                    .record(&mut tx, challenge_event(&authz, &chall, "invalid", reason))
                    .await?;
                if authz_invalid {
                    s.audit
                        .record(&mut tx, authz_event(&authz, "invalid", reason))
                        .await?;
                }
                if s.limits.settings().failed_validation.is_some() {
                    let key = super::orders::failed_validation_key(&authz.account_id, domain);
                    Store::limit_event_add(
                        &mut tx,
                        super::orders::FAILED_VALIDATION,
                        &key,
                        crate::store::now_ms(),
                    )
                    .await?;
                }
                let ident = Identifier::dns(if authz.wildcard {
                    format!("*.{domain}")
                } else {
                    domain.to_string()
                });
                let order_problem = Problem::new(
                    ProblemType::Unauthorized,
                    format!("authorization for {} failed", ident.value),
                )
                .with_status(403)
                .with_subproblems(vec![Subproblem {
                    kind: problem.kind,
                    detail: problem.detail.clone(),
                    identifier: Some(ident),
                }]);
                if Store::set_order_status(
                    &mut tx,
                    &order.id,
                    &[OrderStatus::Pending, OrderStatus::Ready],
                    OrderStatus::Invalid,
                    Some(&order_problem.to_json().to_string()),
                )
                .await?
                {
                    let event =
                        super::orders::order_invalid(&authz.account_id, &order.id, &order_problem);
                    s.audit.record(&mut tx, event).await?;
                    crate::telemetry::metrics::order_final(false);
                }
            }
            tracing::info!(target: "va", challenge = %chall.id, kind = %chall.kind, identifier = %domain, reason = %failure.detail, "challenge invalid");
        }
    }
    Store::complete_job(&mut tx, job).await?;
    tx.commit().await?;
    Ok(Outcome::Done)
}

/// `challenge.validate`: a challenge's outcome.
fn challenge_event(
    authz: &AuthzRow,
    chall: &ChallengeRow,
    outcome: &'static str,
    reason: Option<&str>,
) -> Event {
    let e = Event::new("challenge.validate")
        .account(&authz.account_id)
        .decision(if outcome == "valid" { "allow" } else { "deny" })
        .detail("challenge", chall.id.as_str())
        .detail("type", chall.kind.as_str())
        .detail("identifier", authz.identifier.as_str())
        .detail("status", outcome);
    match reason {
        Some(r) => e.reason(r),
        None => e,
    }
}

/// `authorization.validate`: an authorization decided by its challenge.
fn authz_event(authz: &AuthzRow, outcome: &'static str, reason: Option<&str>) -> Event {
    let e = Event::new("authorization.validate")
        .account(&authz.account_id)
        .decision(if outcome == "valid" { "allow" } else { "deny" })
        .detail("authorization", authz.id.as_str())
        .detail("order", authz.order_id.as_str())
        .detail("identifier", authz.identifier.as_str())
        .detail("wildcard", authz.wildcard)
        .detail("status", outcome);
    match reason {
        Some(r) => e.reason(r),
        None => e,
    }
}

/// The problem document for a failed validation.
pub fn failure_problem(f: &ValidationFailure) -> Problem {
    let kind = match f.kind {
        FailureKind::Dns => ProblemType::Dns,
        FailureKind::Connection => ProblemType::Connection,
        FailureKind::IncorrectResponse => ProblemType::IncorrectResponse,
        FailureKind::Unauthorized => ProblemType::Unauthorized,
        FailureKind::Tls => ProblemType::Tls,
        FailureKind::RejectedIdentifier => ProblemType::RejectedIdentifier,
        FailureKind::ServerInternal => ProblemType::ServerInternal,
    };
    Problem::new(kind, f.detail.clone())
}
