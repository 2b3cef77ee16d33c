//! revoke-cert (by the owning account or by the certificate's own key),
//! `certeasy cert revoke`, and the `revoke` jobs that take a revocation to
//! the CA.
//!
//! A revocation is recorded at once, in one transaction with its audit
//! event, the CRL marked out of date and — unless it stays local — a
//! `revoke` job: certeasy refuses the certificate from then on (ARI, OCSP
//! and CRL of the built-in CA), and the job asks the authority that signed
//! it to revoke it too. The request waits up to `workers.finalize-wait`
//! for the job's first attempt, like finalize. A CA that cannot be reached
//! is asked again with the job engine's backoff, across restarts, for as
//! long as it takes; meanwhile the certificate shows "revocation pending
//! at the CA". A refusal is final: logged, counted and audited.
//!
//! Where the revocation stays local: an ADCS authority with
//! `disable-ca-revocation: true`.

use std::sync::Arc;

use acme_wire::{CertificateStatus, Jwk, ProblemType, RevocationRequest};

use super::Ra;
use crate::audit::{Audit, Event};
use crate::ca::AuthorityError;
use crate::config::{AuthorityKind, Config};
use crate::error::{AcmeError, AcmeResult};
use crate::jobs::{Jobs, Outcome};
use crate::store::jobs::{ClaimedJob, JobKind};
use crate::store::{now_ms, AccountRow, CaRevocation, CertRow, Store, Tx};

/// RFC 5280 reason codes a subscriber may give. 7 is unassigned; 2
/// (cACompromise), 8 (removeFromCRL) and 10 (aACompromise) are the CA's own
/// business, and 6 (certificateHold) is not offered by ACME CAs.
pub const ALLOWED_REASONS: &[u32] = &[0, 1, 3, 4, 5, 9];

/// Who signed the revocation request.
#[derive(Clone, Copy)]
pub enum Revoker<'a> {
    /// An account (kid).
    Account(&'a AccountRow),
    /// A bare key (jwk): must be the certificate's key.
    Key(&'a Jwk),
}

/// Revokes the certificate in `req`.
pub async fn revoke(s: &Arc<Ra>, who: Revoker<'_>, req: &RevocationRequest) -> AcmeResult<()> {
    let reason = req.reason.unwrap_or(0);
    if !ALLOWED_REASONS.contains(&reason) {
        return Err(AcmeError::new(
            ProblemType::BadRevocationReason,
            format!("reason code {reason} is not accepted; use one of {ALLOWED_REASONS:?} (RFC 5280 CRLReason)"),
        ));
    }
    let der = acme_wire::b64u_decode(&req.certificate).map_err(|e| {
        AcmeError::new(
            ProblemType::Malformed,
            format!("certificate is not base64url DER: {e}"),
        )
    })?;
    let serial = pki::serial_hex_of_cert(&der).map_err(|e| {
        AcmeError::new(
            ProblemType::Malformed,
            format!("certificate cannot be parsed: {e}"),
        )
    })?;
    let cert = s
        .store
        .cert_by_serial(&serial)
        .await?
        .into_iter()
        .find(|c| c.leaf_der == der)
        .ok_or_else(|| {
            AcmeError::new(
                ProblemType::Malformed,
                "this certificate was not issued by this server",
            )
        })?;
    match who {
        Revoker::Account(acct) if acct.id == cert.account_id => {}
        Revoker::Account(_) => {
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "the requesting account does not own this certificate",
            ))
        }
        Revoker::Key(jwk) => {
            let spki = pki::spki_of_cert(&cert.leaf_der).map_err(|e| {
                AcmeError::Internal(anyhow::anyhow!("stored certificate unparsable: {e}"))
            })?;
            let cert_key = Jwk::from_spki_der(&spki)?;
            if cert_key.thumbprint() != jwk.thumbprint() {
                return Err(AcmeError::new(ProblemType::Unauthorized, "the request is signed neither by the owning account nor by the certificate's key"));
            }
        }
    }
    let already = || {
        AcmeError::new(
            ProblemType::AlreadyRevoked,
            "the certificate is already revoked",
        )
    };
    if cert.status() == CertificateStatus::Revoked {
        return Err(already());
    }
    let by = match who {
        Revoker::Account(_) => "account",
        Revoker::Key(_) => "certificate-key",
    };
    let requested_by = match who {
        Revoker::Account(acct) => Some(acct.id.as_str()),
        Revoker::Key(_) => None,
    };
    let mut tx = s.store.begin().await?;
    let Some(recorded) = record(
        &mut tx,
        &s.config,
        &s.audit,
        Some(&s.jobs),
        &cert,
        reason,
        by,
        requested_by,
    )
    .await?
    else {
        tx.rollback().await?;
        return Err(already());
    };
    tx.commit().await?;
    revoked(&cert, reason, recorded.state);
    if recorded.state == CaRevocation::Pending {
        // A CA that answers quickly has revoked before the response.
        s.jobs
            .run_now(s, recorded.job, s.config.workers.finalize_wait.get())
            .await;
    }
    Ok(())
}

/// Where a new revocation of a certificate signed by `authority` stands:
/// `Local` for an ADCS authority with `disable-ca-revocation: true`,
/// `Pending` (a job takes it to the CA) otherwise — including an
/// authority no longer configured, whose job records the refusal.
pub fn initial_state(config: &Config, authority: &str) -> CaRevocation {
    match config.authority(authority).map(|a| &a.kind) {
        Some(AuthorityKind::Adcs(t)) if t.disable_ca_revocation => CaRevocation::Local,
        _ => CaRevocation::Pending,
    }
}

/// A revocation recorded by [`record`].
#[derive(Debug)]
pub struct Recorded {
    /// Where it stands at the CA.
    pub state: CaRevocation,
    /// With `Pending`: the job to give [`Jobs::run_now`] once the
    /// transaction committed (None: it waits in the database).
    pub job: Option<ClaimedJob>,
}

/// Records the revocation of `cert` in `tx`: the certificate revoked, its
/// CRL out of date, the `certificate.revoke` event (`by`: `account`,
/// `certificate-key` or `operator`), and the `revoke` job unless the
/// revocation stays local. `jobs`: the engine of this node (None: the job
/// is written for any node's worker to claim, as `certeasy cert revoke`
/// does). None when the certificate was already revoked.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    tx: &mut Tx,
    config: &Config,
    audit: &Audit,
    jobs: Option<&Jobs>,
    cert: &CertRow,
    reason: u32,
    by: &str,
    requested_by: Option<&str>,
) -> crate::store::Result<Option<Recorded>> {
    let state = initial_state(config, &cert.authority);
    if !Store::revoke_cert(tx, &cert.id, i64::from(reason), state).await? {
        return Ok(None);
    }
    Store::mark_crl_stale(tx, &cert.authority).await?;
    let job = match (state, jobs) {
        (CaRevocation::Pending, Some(jobs)) => jobs.enqueue(tx, JobKind::Revoke, &cert.id).await?,
        (CaRevocation::Pending, None) => {
            // Claimable at once by any node's worker.
            Store::enqueue_leased_job(tx, JobKind::Revoke, &cert.id, "-", -1).await?;
            None
        }
        _ => None,
    };
    let mut event = Event::new("certificate.revoke")
        .account(&cert.account_id)
        .detail("certificate", cert.id.as_str())
        .detail("authority", cert.authority.as_str())
        .detail("serial", cert.serial.as_str())
        .detail("reason", reason)
        .detail("by", by)
        .detail("ca", state.as_str());
    if let Some(r) = requested_by {
        event = event.detail("requested_by", r);
    }
    audit.record(tx, event).await?;
    Ok(Some(Recorded { state, job }))
}

/// Logs and counts a revocation once its transaction committed.
pub fn revoked(cert: &CertRow, reason: u32, state: CaRevocation) {
    match state {
        CaRevocation::Local => {
            tracing::info!(target: "ra", certificate = %cert.id, serial = %cert.serial, authority = %cert.authority, reason, "certificate revoked in certeasy only: authority {} has disable-ca-revocation: true, so the CA is not asked to revoke it (its CRL and OCSP still show it valid)", cert.authority);
            crate::telemetry::metrics::revocation(&cert.authority, "local");
        }
        _ => {
            tracing::info!(target: "ra", certificate = %cert.id, serial = %cert.serial, authority = %cert.authority, reason, "certificate revoked; revocation pending at the CA");
        }
    }
}

/// Runs one `revoke` job: asks the certificate's authority to revoke it;
/// records the CA's confirmation or refusal with the job's deletion; a
/// transient failure is retried with the engine's backoff, without limit
/// (a revocation must reach the CA however long it is down).
pub async fn run(s: &Ra, job: &ClaimedJob) -> anyhow::Result<Outcome> {
    let Some(cert) = s.store.cert(&job.subject).await? else {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    };
    let Some(rev) = s.store.revocation(&cert.id).await? else {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    };
    if rev.ca != CaRevocation::Pending {
        s.store.delete_job(job).await?;
        return Ok(Outcome::Done);
    }
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(rev.revoked_at).unwrap_or(0));
    let reason = u32::try_from(rev.reason).unwrap_or(0);
    let result = s
        .catalogue
        .authorities()
        .revoke(&cert.authority, &cert.serial, reason, at)
        .await;
    let (outcome, detail) = match result {
        Ok(()) => (CaRevocation::Confirmed, None),
        Err(AuthorityError::Transient(msg)) => {
            crate::telemetry::metrics::revocation(&cert.authority, "failed");
            tracing::warn!(target: "ca", certificate = %cert.id, serial = %cert.serial, authority = %cert.authority, attempt = job.attempts, error = %msg, "revocation pending at the CA: the CA could not be reached; retrying");
            return Ok(Outcome::Retry(msg));
        }
        Err(AuthorityError::Refused(msg)) => (CaRevocation::Refused, Some(msg)),
    };
    let mut tx = s.store.begin().await?;
    if Store::settle_ca_revocation(&mut tx, &cert.id, outcome, detail.as_deref(), now_ms()).await?
        && !is_builtin(&s.config, &cert.authority)
    {
        let mut event = Event::new("certificate.revoke_ca")
            .account(&cert.account_id)
            .detail("certificate", cert.id.as_str())
            .detail("authority", cert.authority.as_str())
            .detail("serial", cert.serial.as_str())
            .detail("outcome", outcome.as_str())
            .detail("attempts", job.attempts);
        if let Some(d) = &detail {
            event = event.decision("deny").reason(d.clone());
        }
        s.audit.record(&mut tx, event).await?;
    }
    Store::complete_job(&mut tx, job).await?;
    tx.commit().await?;
    match &detail {
        None => {
            crate::telemetry::metrics::revocation(&cert.authority, "confirmed");
            tracing::info!(target: "ca", certificate = %cert.id, serial = %cert.serial, authority = %cert.authority, attempt = job.attempts, "revoked at the CA");
            // The built-in CA publishes it: its next CRL is built now.
            if s.config.revocation_status.is_some() {
                if let Some(ca) = s.catalogue.authorities().builtin_ca(&cert.authority) {
                    if let Err(e) = super::crl::current(&s.store, &cert.authority, ca).await {
                        tracing::warn!(target: "ca", authority = %cert.authority, error = %format!("{e:#}"), "cannot rebuild the CRL now; the next fetch does");
                    }
                }
            }
        }
        Some(msg) => {
            crate::telemetry::metrics::revocation(&cert.authority, "refused");
            tracing::error!(target: "ca", certificate = %cert.id, serial = %cert.serial, authority = %cert.authority, error = %msg, "the CA refused the revocation; the certificate stays revoked in certeasy but the CA still considers it valid: revoke it at the CA by hand");
        }
    }
    Ok(Outcome::Done)
}

/// The built-in CA is certeasy's own records: its revocation needs no
/// second audit event.
fn is_builtin(config: &Config, authority: &str) -> bool {
    matches!(
        config.authority(authority).map(|a| &a.kind),
        Some(AuthorityKind::Builtin(_))
    )
}
