//! `issue` jobs: have the bound authority sign the order's CSR, check what
//! it returned, and store it with the order's move to `valid`.
//!
//! Idempotent: the certificate and the order's status change commit together
//! with the job's deletion, and `certificates.order_id` is unique, so a job
//! re-run after a crash finds the order `valid` and does nothing.

use std::sync::Arc;

use acme_wire::{Problem, ProblemType};
use pki::DnsName;

use super::{Outcome, MAX_ATTEMPTS};
use crate::ca::{AuthorityError, IssueRequest};
use crate::services::Services;
use crate::store::jobs::ClaimedJob;
use crate::store::{new_id, CertRow, Store};

/// Runs one issuance job.
pub async fn run(s: &Arc<Services>, job: &ClaimedJob) -> anyhow::Result<Outcome> {
    let Some(order) = s.store.order(&job.subject).await? else {
        s.store.delete_job(job.id).await?;
        return Ok(Outcome::Done);
    };
    if order.status != "processing" {
        s.store.delete_job(job.id).await?;
        return Ok(Outcome::Done);
    }
    if let Some(problem) = crate::ra::orders::scope_refusal(s, &order.policy, &order.names) {
        return fail(s, job, &order.id, problem.kind, problem.detail).await;
    }
    let policy = s.policy(&order.policy)?;
    let csr = order
        .csr
        .clone()
        .ok_or_else(|| anyhow::anyhow!("order {} is processing without a CSR", order.id))?;
    let names: Vec<DnsName> = order
        .names
        .iter()
        .map(|n| DnsName::parse(n))
        .collect::<Result<_, _>>()?;
    // The CSR was checked at finalize; checking again costs microseconds and
    // guarantees that only a CSR that passes today's model is ever signed.
    let approved = match pki::check_csr(&csr, &names, &policy.csr) {
        Ok(a) => a,
        Err(refusal) => return fail(s, job, &order.id, ProblemType::BadCsr, refusal.detail).await,
    };
    let request = IssueRequest {
        spki_der: &approved.spki_der,
        csr_der: &csr,
        names: &names,
        not_before: order.not_before,
        not_after: order.not_after,
    };
    let issued = match s.authorities.issue(&order.policy, &request).await {
        Ok(i) => i,
        Err(AuthorityError::Transient(msg)) if job.attempts < MAX_ATTEMPTS => {
            return Ok(Outcome::Retry(msg))
        }
        Err(AuthorityError::Transient(msg)) => {
            return fail(
                s,
                job,
                &order.id,
                ProblemType::ServerInternal,
                format!(
                    "no authority could issue after {} attempts: {msg}",
                    job.attempts
                ),
            )
            .await
        }
        Err(AuthorityError::Refused(msg)) => {
            return fail(s, job, &order.id, ProblemType::ServerInternal, msg).await
        }
    };
    let authority = s
        .config
        .authority(&issued.authority)
        .ok_or_else(|| anyhow::anyhow!("unknown authority {}", issued.authority))?;
    let info = match pki::check_issued(
        &issued.leaf_der,
        &names,
        &policy.csr,
        authority.max_validity,
    )
    .and_then(|info| pki::chain_links(&issued.leaf_der, &issued.chain_der).map(|_| info))
    {
        Ok(info) => info,
        Err(refusal) => {
            tracing::error!(target: "ca", authority = %issued.authority, reason = %refusal, "authority returned a certificate that breaks the policy");
            return fail(
                s,
                job,
                &order.id,
                ProblemType::ServerInternal,
                format!(
                    "the certificate returned by authority {} was refused: {refusal}",
                    issued.authority
                ),
            )
            .await;
        }
    };
    let cert = CertRow {
        id: new_id(),
        order_id: order.id.clone(),
        account_id: order.account_id.clone(),
        authority: issued.authority.clone(),
        serial: info.serial_hex.clone(),
        names: order.names.clone(),
        chain_pem: pki::pem_chain(&issued.leaf_der, &issued.chain_der),
        leaf_der: issued.leaf_der,
        not_before: info.not_before.unix_timestamp() * 1000,
        not_after: info.not_after.unix_timestamp() * 1000,
        revoked_at: None,
        revocation_reason: None,
    };
    let mut tx = s.store.begin().await?;
    if Store::set_order_status(&mut tx, &order.id, &["processing"], "valid", None).await? {
        Store::insert_cert(&mut tx, &cert).await?;
    }
    Store::complete_job(&mut tx, job.id).await?;
    tx.commit().await?;
    tracing::info!(target: "ca", order = %order.id, authority = %cert.authority, serial = %cert.serial, names = ?cert.names, "certificate issued");
    Ok(Outcome::Done)
}

async fn fail(
    s: &Arc<Services>,
    job: &ClaimedJob,
    order_id: &str,
    kind: ProblemType,
    detail: String,
) -> anyhow::Result<Outcome> {
    tracing::warn!(target: "ca", order = %order_id, %detail, "order invalid");
    let problem = Problem::new(kind, detail).to_json().to_string();
    let mut tx = s.store.begin().await?;
    Store::set_order_status(
        &mut tx,
        order_id,
        &["processing"],
        "invalid",
        Some(&problem),
    )
    .await?;
    Store::complete_job(&mut tx, job.id).await?;
    tx.commit().await?;
    Ok(Outcome::Done)
}
