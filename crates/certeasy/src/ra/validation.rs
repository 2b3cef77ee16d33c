//! `validate` jobs: ask the VA, then record the outcome on the challenge, its
//! authorization and its order in one transaction.

use acme_wire::{
    AuthorizationStatus, ChallengeStatus, Identifier, OrderStatus, Problem, ProblemType, Subproblem,
};
use certeasy_va::{FailureKind, ValidationFailure};

use super::Ra;
use crate::jobs::Outcome;
use crate::store::jobs::ClaimedJob;
use crate::store::Store;

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
                Store::set_authz_status(
                    &mut tx,
                    &authz.id,
                    &[AuthorizationStatus::Pending],
                    AuthorizationStatus::Valid,
                )
                .await?;
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
                Store::set_authz_status(
                    &mut tx,
                    &authz.id,
                    &[AuthorizationStatus::Pending],
                    AuthorizationStatus::Invalid,
                )
                .await?;
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
                Store::set_order_status(
                    &mut tx,
                    &order.id,
                    &[OrderStatus::Pending, OrderStatus::Ready],
                    OrderStatus::Invalid,
                    Some(&order_problem.to_json().to_string()),
                )
                .await?;
                crate::telemetry::metrics::order_final(false);
            }
            tracing::info!(target: "va", challenge = %chall.id, kind = %chall.kind, identifier = %domain, reason = %failure.detail, "challenge invalid");
        }
    }
    Store::complete_job(&mut tx, job).await?;
    tx.commit().await?;
    Ok(Outcome::Done)
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
