//! External account binding (RFC 8555 §7.3.4): verifying the binding of a
//! new account, sealing the HMAC keys at rest, and the restrictions a key
//! puts on the orders of the account it bound (per-key policy).
//!
//! Storage choice: verifying a binding needs the HMAC key itself, so it
//! cannot be stored hashed. It is stored sealed (AES-256-GCM, the key id as
//! associated data) under a per-installation key kept in the file
//! `%WORKDIR%/eab.key` (0600), created by the first `certeasy eab add`. A
//! copy of the database alone (a backup, a dump) does not reveal any EAB
//! key; the workdir does, like it reveals the built-in CA's key material.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use acme_wire::{ExternalAccountBinding, Identifier, Jwk, ProblemType, Subproblem};
use anyhow::Context;
use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

use super::Ra;
use crate::error::{AcmeError, AcmeResult};
use crate::store::{now_ms, AccountRow, EabKeyRow};

/// Name of the installation's EAB sealing key file in the workdir.
pub const KEY_FILE: &str = "eab.key";

const NONCE_LEN: usize = 12;

/// The installation's sealing key, read once it exists.
#[derive(Default)]
pub struct SealingKey {
    key: OnceLock<[u8; 32]>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("loaded", &self.key.get().is_some())
            .finish()
    }
}

impl SealingKey {
    /// The key of `workdir`, read from its file on first use (only an
    /// account creation with a binding needs it); an error when the file
    /// is missing or unreadable, which is tried again next time.
    pub fn get(&self, workdir: &Path) -> anyhow::Result<&[u8; 32]> {
        if let Some(k) = self.key.get() {
            return Ok(k);
        }
        let k = read_key(&key_path(workdir))?;
        Ok(self.key.get_or_init(|| k))
    }
}

/// Path of the sealing key file.
pub fn key_path(workdir: &Path) -> PathBuf {
    workdir.join(KEY_FILE)
}

fn read_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the EAB sealing key {} (created by `certeasy eab add`)",
            path.display()
        )
    })?;
    bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "{} holds {} bytes, not a 32-byte key",
            path.display(),
            bytes.len()
        )
    })
}

/// The sealing key of `workdir`, created (32 random bytes, mode 0600,
/// never overwriting one that exists) when missing.
pub fn load_or_create_key(workdir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = key_path(workdir);
    if path.exists() {
        return read_key(&path);
    }
    crate::fsutil::create_private_dir(workdir)
        .with_context(|| format!("cannot create {}", workdir.display()))?;
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let tmp = workdir.join(format!("{KEY_FILE}.tmp"));
    crate::fsutil::replace_file(&tmp, &key, true)?;
    // A hard link does not replace an existing file: of two concurrent
    // creations, one key wins and both use it.
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(&path),
        Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
    }
}

/// Seals `hmac_key` for key id `kid`.
pub fn seal(master: &[u8; 32], kid: &str, hmac_key: &[u8]) -> anyhow::Result<Vec<u8>> {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, master)
            .map_err(|_| anyhow::anyhow!("bad sealing key"))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let mut buf = hmac_key.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(kid.as_bytes()),
        &mut buf,
    )
    .map_err(|_| anyhow::anyhow!("sealing failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`seal`] sealed for `kid`; None when it does not open (a
/// different installation key, or a row moved to another kid).
pub fn unseal(master: &[u8; 32], kid: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, master).ok()?);
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = ct.to_vec();
    let plain = key
        .open_in_place(nonce, aead::Aad::from(kid.as_bytes()), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

fn unauthorized(detail: impl Into<String>) -> AcmeError {
    AcmeError::new(ProblemType::Unauthorized, detail)
}

/// Records a refused binding (`eab.bind`, decision `deny`) and returns
/// its error.
async fn refused(s: &Ra, kid: &str, err: AcmeError) -> AcmeError {
    let mut e = crate::audit::Event::new("eab.bind")
        .decision("deny")
        .detail("kid", kid);
    if let AcmeError::Problem(p) = &err {
        e = e.reason(p.detail.clone());
    }
    s.audit.record_alone(&s.store, e).await;
    err
}

/// Verifies the `externalAccountBinding` of a new-account request signed
/// with `jwk` and sent to `url`; the usable key on success. Binding it to
/// the new account happens in the account's transaction
/// ([`crate::store::Store::bind_eab_key`]), which also settles a race of
/// two accounts for one key.
pub async fn verify_binding(
    s: &Ra,
    jwk: &Jwk,
    binding: &Value,
    url: &str,
) -> AcmeResult<EabKeyRow> {
    let eab = ExternalAccountBinding::parse(binding)?;
    if eab.url != url {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            format!(
                "the external account binding url {:?} must equal the request url {url:?}",
                eab.url
            ),
        ));
    }
    let Some(key) = s.store.eab_key(&eab.kid).await? else {
        return Err(refused(
            s,
            &eab.kid,
            unauthorized(format!(
                "external account binding key {:?} is unknown",
                eab.kid
            )),
        )
        .await);
    };
    let now = now_ms();
    if key.revoked_at.is_some() {
        return Err(refused(
            s,
            &eab.kid,
            unauthorized(format!(
                "external account binding key {:?} was revoked",
                key.kid
            )),
        )
        .await);
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err(refused(
            s,
            &eab.kid,
            unauthorized(format!(
                "external account binding key {:?} has expired",
                key.kid
            )),
        )
        .await);
    }
    if key.account_id.is_some() {
        return Err(refused(s, &eab.kid, unauthorized(format!(
            "external account binding key {:?} is already bound to an account; each key binds one account",
            key.kid
        ))).await);
    }
    let master = s.eab_sealing.get(&s.config.workdir)?;
    let mac_key = unseal(master, &key.kid, &key.sealed_key).ok_or_else(|| {
        AcmeError::Internal(anyhow::anyhow!(
            "EAB key {} does not open with {}: the database and the workdir's sealing key do not belong together",
            key.kid,
            key_path(&s.config.workdir).display()
        ))
    })?;
    if eab.verify(&mac_key).is_err() {
        return Err(refused(
            s,
            &eab.kid,
            unauthorized(format!(
                "the external account binding MAC does not verify with key {:?}",
                key.kid
            )),
        )
        .await);
    }
    let bound = eab.payload_jwk()?;
    if bound.thumbprint() != jwk.thumbprint() {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            "the external account binding payload is not the key that signs the request",
        ));
    }
    Ok(key)
}

/// The restrictions of the key an account was created with, checked at
/// every new-order: `Ok(None)` for an account without a key (no query).
pub async fn account_key(s: &Ra, acct: &AccountRow) -> AcmeResult<Option<EabKeyRow>> {
    let Some(kid) = &acct.eab_kid else {
        return Ok(None);
    };
    let key = s.store.eab_key(kid).await?.ok_or_else(|| {
        unauthorized(format!(
            "the external account binding key {kid:?} of this account no longer exists"
        ))
    })?;
    if key.revoked_at.is_some() {
        return Err(unauthorized(format!(
            "the external account binding key {kid:?} of this account was revoked"
        )));
    }
    Ok(Some(key))
}

/// Refuses names outside the key's name scope (a subproblem per name).
pub fn check_names(key: &EabKeyRow, names: &[pki::DnsName]) -> AcmeResult<()> {
    if key.names.is_empty() {
        return Ok(());
    }
    let scope = pki::Scope::new(&key.names, &[]).map_err(|e| {
        AcmeError::Internal(anyhow::anyhow!(
            "EAB key {} has an invalid name scope: {e}",
            key.kid
        ))
    })?;
    let subs: Vec<Subproblem> = names
        .iter()
        .filter(|n| !scope.check(n).is_allowed())
        .map(|n| Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail: format!(
                "{} is outside the names allowed to this account by its external account binding ({})",
                n.as_str(),
                key.names.join(", ")
            ),
            identifier: Some(Identifier::dns(n.as_str())),
        })
        .collect();
    if subs.is_empty() {
        return Ok(());
    }
    let detail = match subs.as_slice() {
        [one] => one.detail.clone(),
        _ => format!(
            "{} identifiers are outside the names allowed to this account by its external account binding",
            subs.len()
        ),
    };
    Err(
        acme_wire::Problem::new(ProblemType::RejectedIdentifier, detail)
            .with_subproblems(subs)
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_kid_and_master() {
        let master = [7u8; 32];
        let sealed = seal(&master, "kid-1", b"secret hmac key").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            unseal(&master, "kid-1", &sealed).unwrap(),
            b"secret hmac key"
        );
        assert!(unseal(&master, "kid-2", &sealed).is_none());
        assert!(unseal(&[8u8; 32], "kid-1", &sealed).is_none());
        assert!(unseal(&master, "kid-1", &sealed[..5]).is_none());
    }

    #[test]
    fn the_key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path()).unwrap();
        let b = load_or_create_key(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
