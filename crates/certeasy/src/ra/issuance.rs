//! `issue` jobs: have the bound authority sign the order's CSR, check what
//! it returned (names, EKUs, lifetime, and that it certifies the CSR's key),
//! and store it with the order's move to `valid`.
//!
//! Idempotent: the certificate and the order's status change commit together
//! with the job's deletion, and `certificates.order_id` is unique, so a job
//! re-run after a crash finds the order `valid` and does nothing.
//!
//! A CA may take a request under submission (ADCS "pending"): the request id
//! is stored on the order and the job re-runs with backoff, retrieving the
//! request by id, until it is issued, denied, or older than the authority's
//! `default-timeout`. The ACME order stays `processing` meanwhile, across
//! restarts.

use acme_wire::{AccountStatus, OrderStatus, Problem, ProblemType};
use pki::DnsName;

use super::Ra;
use crate::audit::Event;
use crate::ca::{AuthorityError, IssueOutcome, IssueRequest, Issued};
use crate::config::AuthorityKind;
use crate::jobs::{Outcome, MAX_ATTEMPTS};
use crate::store::jobs::ClaimedJob;
use crate::store::{new_id, now_ms, CertRow, OrderRow, Store};

/// Runs one issuance job.
pub async fn run(s: &Ra, job: &ClaimedJob) -> anyhow::Result<Outcome> {
    let Some(order) = s.store.order(&job.subject).await? else {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    };
    if order.status != OrderStatus::Processing {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    }
    // Deactivating the account removed its queued jobs, not one a worker
    // already held: nothing is asked of a CA for a deactivated account.
    let account = s.accounts.get(&s.store, &order.account_id).await?;
    if account.is_none_or(|a| a.0.status != AccountStatus::Valid) {
        let detail = "the account was deactivated before the certificate was issued".to_string();
        return fail(s, job, &order, ProblemType::Unauthorized, detail).await;
    }
    if let Some(problem) = s.catalogue.scope_refusal(&order.policy, &order.names) {
        return fail(s, job, &order, problem.kind, problem.detail).await;
    }
    let policy = s.catalogue.require_policy(&order.policy)?;
    let csr = order
        .csr
        .clone()
        .ok_or_else(|| anyhow::anyhow!("order {} is processing without a CSR", order.id))?;
    let names: Vec<DnsName> = order
        .names
        .iter()
        .map(|n| DnsName::parse(n))
        .collect::<Result<_, _>>()?;
    // The CSR was checked at finalize; checking it again (all but the
    // self-signature verified then) guarantees that only a CSR that passes
    // today's model and policy is ever signed.
    let approved = match pki::recheck_stored_csr(&csr, &names, &policy.csr) {
        Ok(a) => a,
        Err(refusal) => return fail(s, job, &order, ProblemType::BadCsr, refusal.detail).await,
    };
    let started = std::time::Instant::now();
    let result = match &order.ca_pending {
        Some((authority, request_id, _)) => {
            s.catalogue
                .authorities()
                .retrieve(authority, *request_id as u32)
                .await
        }
        None => {
            // The order's ACME profile: its validity, its EKUs (within the
            // policy, checked at load) and its ADCS template overrides.
            let profile = order.profile.as_deref().and_then(|p| s.config.profile(p));
            let mut extra_eku = approved.extra_eku.clone();
            for e in profile.iter().flat_map(|p| p.extra_eku.iter()) {
                if !extra_eku.contains(&e.oid()) {
                    extra_eku.push(e.oid());
                }
            }
            let request = IssueRequest {
                spki_der: &approved.spki_der,
                csr_der: &csr,
                names: &names,
                key: Some(approved.key),
                extra_eku: &extra_eku,
                not_before: order.not_before,
                not_after: order.not_after,
                validity: profile.and_then(|p| p.validity),
                templates: profile.map(|p| &p.templates),
            };
            s.catalogue
                .authorities()
                .issue(&order.policy, &request)
                .await
        }
    };
    record_issuance(&result, started.elapsed());
    let issued = match result {
        Ok(IssueOutcome::Issued(i)) => i,
        Ok(IssueOutcome::Pending {
            authority,
            request_id,
            message,
        }) => return pending(s, job, &order, &authority, request_id, &message).await,
        Err(AuthorityError::Transient(msg)) if job.attempts < MAX_ATTEMPTS => {
            return Ok(Outcome::Retry(msg))
        }
        Err(AuthorityError::Transient(msg)) => {
            let detail = format!(
                "no authority could issue after {} attempts: {msg}",
                job.attempts
            );
            return fail(s, job, &order, ProblemType::ServerInternal, detail).await;
        }
        Err(AuthorityError::Refused(msg)) => {
            return fail(s, job, &order, ProblemType::ServerInternal, msg).await
        }
    };
    store_certificate(s, job, &order, &approved, issued).await
}

/// A request pending at a CA: remember it, wait, or give up after the
/// authority's `default-timeout`.
async fn pending(
    s: &Ra,
    job: &ClaimedJob,
    order: &OrderRow,
    authority: &str,
    request_id: u32,
    message: &str,
) -> anyhow::Result<Outcome> {
    let submitted_at = match &order.ca_pending {
        Some((_, _, at)) => *at,
        None => {
            s.store
                .set_ca_pending(&order.id, authority, i64::from(request_id))
                .await?;
            tracing::info!(target: "ca", order = %order.id, authority, request_id, ca_message = message, "request taken under submission by the CA");
            now_ms()
        }
    };
    let timeout = s
        .config
        .authority(authority)
        .and_then(|a| match &a.kind {
            AuthorityKind::Adcs(adcs) => Some(adcs.default_timeout),
            AuthorityKind::AdcsCli(cli) => Some(cli.default_timeout),
            AuthorityKind::Builtin(_) => None,
        })
        .unwrap_or(std::time::Duration::from_secs(240));
    if now_ms() - submitted_at > timeout.as_millis() as i64 {
        let detail = format!(
            "request {request_id} is still pending at authority {authority} after {}: a CA officer must issue or deny it (certutil -resubmit {request_id}); order a new certificate afterwards",
            crate::config::duration::format_duration(timeout)
        );
        return fail(s, job, order, ProblemType::ServerInternal, detail).await;
    }
    Ok(Outcome::Wait(format!(
        "request {request_id} pending at {authority}"
    )))
}

async fn store_certificate(
    s: &Ra,
    job: &ClaimedJob,
    order: &OrderRow,
    approved: &pki::ApprovedCsr,
    issued: Issued,
) -> anyhow::Result<Outcome> {
    let policy = s.catalogue.require_policy(&order.policy)?;
    let authority = s
        .config
        .authority(&issued.authority)
        .ok_or_else(|| anyhow::anyhow!("unknown authority {}", issued.authority))?;
    // Every path (signed now, retrieved after pending, certreq) ends here:
    // the certificate must carry the approved CSR's key and names.
    let info = match pki::check_issued_for_csr(
        &issued.leaf_der,
        approved,
        &policy.csr,
        authority.max_validity,
    )
    .and_then(|info| pki::chain_links(&issued.leaf_der, &issued.chain_der).map(|_| info))
    {
        Ok(info) => info,
        Err(refusal) => {
            tracing::error!(target: "ca", authority = %issued.authority, reason = %refusal, "authority returned a certificate that breaks the policy");
            let detail = format!(
                "the certificate returned by authority {} was refused: {refusal}",
                issued.authority
            );
            return fail(s, job, order, ProblemType::ServerInternal, detail).await;
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
    if Store::set_order_status(
        &mut tx,
        &order.id,
        &[OrderStatus::Processing],
        OrderStatus::Valid,
        None,
    )
    .await?
    {
        Store::insert_cert(&mut tx, &cert).await?;
        let event = Event::new("certificate.issue")
            .account(&cert.account_id)
            .detail("order", order.id.as_str())
            .detail("certificate", cert.id.as_str())
            .detail("authority", cert.authority.as_str())
            .detail("serial", cert.serial.as_str())
            .detail("names", cert.names.clone())
            .detail("not_before", info.not_before.unix_timestamp())
            .detail("not_after", info.not_after.unix_timestamp());
        s.audit.record(&mut tx, event).await?;
        crate::telemetry::metrics::order_final(true);
    }
    Store::complete_job(&mut tx, job).await?;
    tx.commit().await?;
    tracing::info!(target: "ca", order = %order.id, authority = %cert.authority, serial = %cert.serial, names = ?cert.names, "certificate issued");
    Ok(Outcome::Done)
}

async fn fail(
    s: &Ra,
    job: &ClaimedJob,
    order: &OrderRow,
    kind: ProblemType,
    detail: String,
) -> anyhow::Result<Outcome> {
    tracing::warn!(target: "ca", order = %order.id, %detail, "order invalid");
    let problem = Problem::new(kind, detail);
    let mut tx = s.store.begin().await?;
    if Store::set_order_status(
        &mut tx,
        &order.id,
        &[OrderStatus::Processing],
        OrderStatus::Invalid,
        Some(&problem.to_json().to_string()),
    )
    .await?
    {
        let event = super::orders::order_invalid(&order.account_id, &order.id, &problem);
        s.audit.record(&mut tx, event).await?;
        crate::telemetry::metrics::order_final(false);
    }
    Store::complete_job(&mut tx, job).await?;
    tx.commit().await?;
    Ok(Outcome::Done)
}

/// Records the latency and outcome of one request to an authority.
fn record_issuance(result: &Result<IssueOutcome, AuthorityError>, elapsed: std::time::Duration) {
    let (authority, outcome) = match result {
        Ok(IssueOutcome::Issued(i)) => (i.authority.as_str(), "issued"),
        Ok(IssueOutcome::Pending { authority, .. }) => (authority.as_str(), "pending"),
        Err(_) => ("none", "failed"),
    };
    crate::telemetry::metrics::issuance(authority, outcome, elapsed);
}
