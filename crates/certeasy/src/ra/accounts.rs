//! Accounts: creation, lookup by key, contact update, deactivation, key roll-over.

use acme_wire::{AccountUpdateRequest, Jwk, KeyChangeRequest, NewAccountRequest, ProblemType};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{AcmeError, AcmeResult};
use crate::services::Services;
use crate::store::{new_id, now_ms, AccountRow, Store};

/// Accounts with their parsed keys, cached in this process: every
/// authenticated request needs both, and re-reading the row and re-validating
/// the key cost a database hand-off and a curve check per request. The two
/// operations that change an account ([`update_account`], [`key_change`])
/// invalidate its entry after their write commits. Exact for one process,
/// which is what a SQLite deployment is.
#[derive(Default)]
pub struct AccountCache {
    map: Mutex<HashMap<String, Arc<(AccountRow, Jwk)>>>,
}

/// Entries kept before the cache starts over (bounded memory).
const MAX_CACHED_ACCOUNTS: usize = 10_000;

impl AccountCache {
    /// The account `id` and its key, from the cache or the database.
    pub async fn get(&self, s: &Services, id: &str) -> AcmeResult<Option<Arc<(AccountRow, Jwk)>>> {
        if let Some(hit) = self.map.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(Some(hit));
        }
        let Some(acct) = s.store.account(id).await? else {
            return Ok(None);
        };
        let json: serde_json::Value =
            serde_json::from_str(&acct.jwk).map_err(|e| AcmeError::Internal(e.into()))?;
        let entry = Arc::new((acct, Jwk::from_json(&json)?));
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= MAX_CACHED_ACCOUNTS {
                m.clear();
            }
            m.insert(id.to_string(), entry.clone());
        }
        Ok(Some(entry))
    }

    /// Forgets account `id` (after it changed).
    pub fn invalidate(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }
}

/// Outcome of new-account.
pub enum NewAccount {
    /// Created now (201).
    Created(AccountRow),
    /// The key already had an account (200).
    Existing(AccountRow),
}

/// Checks contact URIs: `mailto:` with exactly one address and no header fields.
pub fn check_contacts(contacts: &[String]) -> AcmeResult<()> {
    for c in contacts {
        let Some(addr) = c.strip_prefix("mailto:") else {
            return Err(AcmeError::new(
                ProblemType::UnsupportedContact,
                format!("contact {c:?} is not supported; only mailto: URIs are"),
            ));
        };
        let valid = !addr.is_empty()
            && !addr.contains(['?', ',', ' ', '<', '>'])
            && addr.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            });
        if !valid {
            return Err(AcmeError::new(
                ProblemType::InvalidContact,
                format!("contact {c:?} is not a single e-mail address without header fields"),
            ));
        }
    }
    Ok(())
}

/// new-account: find or create the account of `jwk`.
pub async fn new_account(
    s: &Services,
    jwk: &Jwk,
    req: &NewAccountRequest,
) -> AcmeResult<NewAccount> {
    let thumbprint = jwk.thumbprint();
    if let Some(existing) = s.store.account_by_thumbprint(&thumbprint).await? {
        return Ok(NewAccount::Existing(existing));
    }
    if req.only_return_existing == Some(true) {
        return Err(AcmeError::new(
            ProblemType::AccountDoesNotExist,
            "no account exists for this key",
        ));
    }
    let contact = req.contact.clone().unwrap_or_default();
    check_contacts(&contact)?;
    let row = AccountRow {
        id: new_id(),
        thumbprint: thumbprint.clone(),
        jwk: jwk.to_json().to_string(),
        contact,
        status: "valid".into(),
        tos_agreed: req.terms_of_service_agreed.unwrap_or(false),
        created_at: now_ms(),
    };
    let mut tx = s.store.begin().await?;
    // Re-check inside the single writer: two concurrent new-account requests
    // for one key must end with one account.
    if let Some(existing) = Store::account_by_thumbprint_tx(&mut tx, &thumbprint).await? {
        return Ok(NewAccount::Existing(existing));
    }
    Store::insert_account(&mut tx, &row).await?;
    tx.commit().await?;
    tracing::info!(target: "ra", account = %row.id, key = %jwk.describe(), "account created");
    Ok(NewAccount::Created(row))
}

/// POST to the account URL: contact update and/or deactivation.
pub async fn update_account(
    s: &Services,
    mut acct: AccountRow,
    req: &AccountUpdateRequest,
) -> AcmeResult<AccountRow> {
    if let Some(status) = &req.status {
        if status != "deactivated" {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                format!("an account can only be moved to status \"deactivated\", not {status:?}"),
            ));
        }
    }
    if let Some(contact) = &req.contact {
        check_contacts(contact)?;
        acct.contact = contact.clone();
    }
    if req.terms_of_service_agreed == Some(true) {
        acct.tos_agreed = true;
    }
    if req.status.is_some() {
        acct.status = "deactivated".into();
        tracing::info!(target: "ra", account = %acct.id, "account deactivated");
    }
    s.store.update_account(&acct).await?;
    s.accounts.invalidate(&acct.id);
    Ok(acct)
}

/// key-change: `inner` is the verified inner JWS's payload, `new_key` its key.
/// On success returns the updated account; when the new key already has an
/// account returns `Err(Conflict(url_id))`.
pub async fn key_change(
    s: &Services,
    acct: &AccountRow,
    acct_url: &str,
    new_key: &Jwk,
    inner: &KeyChangeRequest,
) -> AcmeResult<Result<(), String>> {
    if inner.account != acct_url {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            format!(
                "key-change payload names account {:?}, but the request is signed by {acct_url:?}",
                inner.account
            ),
        ));
    }
    let old = Jwk::from_json(&inner.old_key)?;
    if old.thumbprint() != acct.thumbprint {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            "key-change oldKey is not the account's current key",
        ));
    }
    let new_tp = new_key.thumbprint();
    if new_tp == acct.thumbprint {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            "the new key is the account's current key",
        ));
    }
    let mut tx = s.store.begin().await?;
    if let Some(other) = Store::account_by_thumbprint_tx(&mut tx, &new_tp).await? {
        return Ok(Err(other.id));
    }
    Store::change_account_key(&mut tx, &acct.id, &new_tp, &new_key.to_json().to_string()).await?;
    tx.commit().await?;
    s.accounts.invalidate(&acct.id);
    tracing::info!(target: "ra", account = %acct.id, key = %new_key.describe(), "account key changed");
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_checked() {
        assert!(check_contacts(&["mailto:a@example.com".into()]).is_ok());
        let e = |c: &str| match check_contacts(&[c.to_string()]) {
            Err(AcmeError::Problem(p)) => p.kind,
            _ => panic!("{c} accepted"),
        };
        assert_eq!(e("tel:+123"), ProblemType::UnsupportedContact);
        assert_eq!(e("mailto:"), ProblemType::InvalidContact);
        assert_eq!(e("mailto:a@b.c?subject=x"), ProblemType::InvalidContact);
        assert_eq!(e("mailto:a@b.c,d@e.f"), ProblemType::InvalidContact);
        assert_eq!(e("mailto:nodomain"), ProblemType::InvalidContact);
    }
}
