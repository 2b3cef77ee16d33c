//! revoke-cert: by the owning account or by the certificate's own key.

use acme_wire::{CertificateStatus, Jwk, ProblemType, RevocationRequest};

use super::Ra;
use crate::audit::Event;
use crate::error::{AcmeError, AcmeResult};
use crate::store::{AccountRow, Store};

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
pub async fn revoke(s: &Ra, who: Revoker<'_>, req: &RevocationRequest) -> AcmeResult<()> {
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
    let mut tx = s.store.begin().await?;
    if !Store::revoke_cert(&mut tx, &cert.id, reason as i64).await? {
        tx.rollback().await?;
        return Err(already());
    }
    let by = match who {
        Revoker::Account(_) => "account",
        Revoker::Key(_) => "certificate-key",
    };
    let mut event = Event::new("certificate.revoke")
        .account(&cert.account_id)
        .detail("certificate", cert.id.as_str())
        .detail("authority", cert.authority.as_str())
        .detail("serial", cert.serial.as_str())
        .detail("reason", reason)
        .detail("by", by);
    if let Revoker::Account(acct) = who {
        event = event.detail("requested_by", acct.id.as_str());
    }
    s.audit.record(&mut tx, event).await?;
    tx.commit().await?;
    tracing::info!(target: "ra", certificate = %cert.id, serial = %cert.serial, reason, "certificate revoked");
    Ok(())
}
