//! Accounts: creation, lookup by key, contact update, deactivation, key roll-over.

use acme_wire::{
    AccountStatus, AccountUpdateRequest, Jwk, KeyChangeRequest, NewAccountRequest, Problem,
    ProblemType,
};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Ra;
use crate::audit::Event;
use crate::error::{AcmeError, AcmeResult};
use crate::store::{new_id, now_ms, AccountChange, AccountRow, Store};

/// Accounts with their parsed keys, cached in this process: every
/// authenticated request needs both, and re-reading the row and re-validating
/// the key cost a database hand-off and a curve check per request.
///
/// The cache never serves an account older than the last change this
/// process made to it: the operations that change an account
/// ([`update_account`], [`key_change`]) call [`AccountCache::invalidate`]
/// after their write commits, and a lookup that missed inserts the row it
/// read only if no invalidation happened since it started (the
/// invalidation counter is read and compared under the lock that guards
/// the map), so a row read just before a deactivation or a key change
/// cannot come back after it. The account rows are written conditionally
/// besides (`status = 'valid'` and the old key in the WHERE clause), so
/// even a stale entry cannot undo a change. Entries expire after
/// [`CACHED_ACCOUNT_LIFETIME`] (which bounds how long a change made by
/// another process can go unseen) and the map is bounded.
#[derive(Default)]
pub struct AccountCache {
    inner: Mutex<CacheInner>,
}

impl std::fmt::Debug for AccountCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCache").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, CachedAccount>,
    /// Invalidations so far.
    invalidations: u64,
}

struct CachedAccount {
    entry: Arc<(AccountRow, Jwk)>,
    loaded: Instant,
}

/// Entries kept before the cache starts over (bounded memory).
const MAX_CACHED_ACCOUNTS: usize = 10_000;

/// How long a cached account is served before it is read again.
pub const CACHED_ACCOUNT_LIFETIME: Duration = Duration::from_secs(60);

impl AccountCache {
    /// The account `id` and its key, from the cache or the database.
    pub async fn get(&self, store: &Store, id: &str) -> AcmeResult<Option<Arc<(AccountRow, Jwk)>>> {
        self.get_or_load(id, || async { Ok(store.account(id).await?) })
            .await
    }

    /// The account `id` from the cache, or from `load` on a miss.
    async fn get_or_load<F, Fut>(
        &self,
        id: &str,
        load: F,
    ) -> AcmeResult<Option<Arc<(AccountRow, Jwk)>>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = AcmeResult<Option<AccountRow>>>,
    {
        let epoch = {
            let m = lock(&self.inner);
            if let Some(hit) = m.map.get(id) {
                if hit.loaded.elapsed() < CACHED_ACCOUNT_LIFETIME {
                    return Ok(Some(hit.entry.clone()));
                }
            }
            m.invalidations
        };
        let read_at = Instant::now();
        let Some(acct) = load().await? else {
            return Ok(None);
        };
        let json: serde_json::Value = serde_json::from_str(&acct.jwk)
            .map_err(|e| AcmeError::Internal(anyhow::anyhow!("stored key of account {id}: {e}")))?;
        let entry = Arc::new((acct, Jwk::from_json(&json)?));
        let mut m = lock(&self.inner);
        // An invalidation since `epoch` may concern this account: the row
        // read above may predate it, so it is used once, not kept.
        if m.invalidations == epoch {
            if m.map.len() >= MAX_CACHED_ACCOUNTS {
                m.map
                    .retain(|_, a| a.loaded.elapsed() < CACHED_ACCOUNT_LIFETIME);
                if m.map.len() >= MAX_CACHED_ACCOUNTS {
                    m.map.clear();
                }
            }
            m.map.insert(
                id.to_string(),
                CachedAccount {
                    entry: entry.clone(),
                    loaded: read_at,
                },
            );
        }
        Ok(Some(entry))
    }

    /// Forgets account `id` (after a change to it committed).
    pub fn invalidate(&self, id: &str) {
        let mut m = lock(&self.inner);
        m.map.remove(id);
        m.invalidations += 1;
    }
}

fn lock(m: &Mutex<CacheInner>) -> std::sync::MutexGuard<'_, CacheInner> {
    // The map is only ever left consistent (no panics while it is held).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The refusal of a request by an account that is not `valid` (RFC 8555
/// §7.3.6: 401 `unauthorized`).
pub fn account_not_valid(status: AccountStatus) -> AcmeError {
    Problem::new(
        ProblemType::Unauthorized,
        format!("the account is {status}; it can no longer be used"),
    )
    .with_status(401)
    .into()
}

/// Why a conditional write to account `acct` (as authenticated) changed
/// nothing: the account changed since the request was authenticated.
async fn changed_meanwhile(s: &Ra, acct: &AccountRow) -> AcmeError {
    let now = match s.store.account(&acct.id).await {
        Ok(now) => now,
        Err(e) => return e.into(),
    };
    match now {
        None => AcmeError::new(
            ProblemType::AccountDoesNotExist,
            format!("account {} no longer exists", acct.id),
        ),
        Some(now) if now.status != AccountStatus::Valid => account_not_valid(now.status),
        Some(now) if now.thumbprint != acct.thumbprint => Problem::new(
            ProblemType::Unauthorized,
            "the account key was changed by a concurrent request; this request is signed with the previous key",
        )
        .with_status(401)
        .into(),
        Some(_) => AcmeError::Internal(anyhow::anyhow!(
            "the conditional update of account {} matched no row although it is valid with the same key",
            acct.id
        )),
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

/// new-account: find or create the account of `jwk`; `url` is the
/// new-account URL the request was sent to (an external account binding
/// must name it). A new account counts against
/// `rate-limiting.account-creation` for `client_ip`.
pub async fn new_account(
    s: &Ra,
    jwk: &Jwk,
    req: &NewAccountRequest,
    url: &str,
    client_ip: Option<std::net::IpAddr>,
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
    let eab_key = match &req.external_account_binding {
        Some(binding) => Some(super::eab::verify_binding(s, jwk, binding, url).await?),
        None if s.config.eab.required => {
            return Err(AcmeError::new(
                ProblemType::ExternalAccountRequired,
                "this server requires an external account binding: ask its operators for a key id and HMAC key (certeasy eab add)",
            ))
        }
        None => None,
    };
    if let Some(ip) = client_ip {
        if let Err(d) = s.limits.account_creation(ip).await {
            return Err(s.deny(None, d).await);
        }
    }
    let row = AccountRow {
        id: new_id(),
        thumbprint: thumbprint.clone(),
        jwk: jwk.to_json().to_string(),
        contact,
        status: AccountStatus::Valid,
        tos_agreed: req.terms_of_service_agreed.unwrap_or(false),
        created_at: now_ms(),
        eab_kid: eab_key.as_ref().map(|k| k.kid.clone()),
    };
    let mut tx = s.store.begin().await?;
    // Re-check inside the single writer: two concurrent new-account requests
    // for one key must end with one account.
    if let Some(existing) = Store::account_by_thumbprint_tx(&mut tx, &thumbprint).await? {
        return Ok(NewAccount::Existing(existing));
    }
    Store::insert_account(&mut tx, &row).await?;
    let mut event = Event::new("account.create")
        .account(&row.id)
        .detail("key", jwk.describe())
        .detail("thumbprint", thumbprint.as_str())
        .detail("contact", row.contact.clone());
    if let Some(key) = &eab_key {
        if !Store::bind_eab_key(&mut tx, &key.kid, &row.id, row.created_at).await? {
            tx.rollback().await?;
            let reason = format!(
                "external account binding key {:?} was bound to another account or revoked meanwhile",
                key.kid
            );
            let refused = Event::new("eab.bind")
                .decision("deny")
                .reason(reason.clone())
                .detail("kid", key.kid.as_str());
            s.audit.record_alone(&s.store, refused).await;
            return Err(AcmeError::new(ProblemType::Unauthorized, reason));
        }
        event = event.detail("eab_kid", key.kid.as_str());
        let bound = Event::new("eab.bind")
            .account(&row.id)
            .decision("allow")
            .detail("kid", key.kid.as_str());
        s.audit.record(&mut tx, bound).await?;
    }
    s.audit.record(&mut tx, event).await?;
    tx.commit().await?;
    tracing::info!(target: "ra", account = %row.id, key = %jwk.describe(), eab_kid = ?row.eab_kid, "account created");
    Ok(NewAccount::Created(row))
}

/// POST to the account URL: contact update and/or deactivation of `acct`
/// (as the request was authenticated). Only what the request names is
/// written, and only while the account is still `valid` with the key that
/// signed the request; otherwise the request is refused (401). A
/// deactivation cancels the account's pending work in the same transaction
/// ([`Store::cancel_account_work`]).
pub async fn update_account(
    s: &Ra,
    acct: AccountRow,
    req: &AccountUpdateRequest,
) -> AcmeResult<AccountRow> {
    if let Some(status) = &req.status {
        if status != AccountStatus::Deactivated.as_str() {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                format!("an account can only be moved to status \"deactivated\", not {status:?}"),
            ));
        }
    }
    if let Some(contact) = &req.contact {
        check_contacts(contact)?;
    }
    let change = AccountChange {
        contact: req.contact.as_deref(),
        agree_tos: req.terms_of_service_agreed == Some(true),
        deactivate: req.status.is_some(),
    };
    if change.is_empty() {
        return Ok(acct);
    }
    let updated = if change.deactivate {
        let problem = Problem::new(
            ProblemType::Unauthorized,
            "the account was deactivated; its pending orders and authorizations were cancelled",
        )
        .to_json()
        .to_string();
        let mut tx = s.store.begin().await?;
        let row = Store::update_account_tx(&mut tx, &acct.id, &acct.thumbprint, &change).await?;
        if row.is_some() {
            Store::cancel_account_work(&mut tx, &acct.id, &problem).await?;
            s.audit
                .record(&mut tx, Event::new("account.deactivate").account(&acct.id))
                .await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        row
    } else {
        s.store
            .update_account(&acct.id, &acct.thumbprint, &change)
            .await?
    };
    let Some(updated) = updated else {
        return Err(changed_meanwhile(s, &acct).await);
    };
    s.accounts.invalidate(&acct.id);
    if change.deactivate {
        tracing::info!(target: "ra", account = %acct.id, "account deactivated; its pending work was cancelled");
    }
    Ok(updated)
}

/// key-change: `inner` is the verified inner JWS's payload, `new_key` its key.
/// On success returns the updated account; when the new key already has an
/// account returns `Err(account id)`. The key is replaced only while the
/// account is still `valid` with the key that signed the request: of two
/// concurrent key changes from one key, one wins and the other is refused
/// (401).
pub async fn key_change(
    s: &Ra,
    acct: &AccountRow,
    acct_url: &str,
    new_key: &Jwk,
    inner: &KeyChangeRequest,
) -> AcmeResult<Result<AccountRow, String>> {
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
    let jwk = new_key.to_json().to_string();
    let Some(updated) =
        Store::change_account_key(&mut tx, &acct.id, &acct.thumbprint, &new_tp, &jwk).await?
    else {
        tx.rollback().await?;
        return Err(changed_meanwhile(s, acct).await);
    };
    let event = Event::new("account.keychange")
        .account(&acct.id)
        .detail("old_thumbprint", acct.thumbprint.as_str())
        .detail("new_thumbprint", new_tp.as_str())
        .detail("key", new_key.describe());
    s.audit.record(&mut tx, event).await?;
    tx.commit().await?;
    s.accounts.invalidate(&acct.id);
    tracing::info!(target: "ra", account = %acct.id, key = %new_key.describe(), "account key changed");
    Ok(Ok(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: AccountStatus) -> AccountRow {
        use ring::signature::{Ed25519KeyPair, KeyPair};
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk::ed25519(pair.public_key().as_ref().to_vec()).unwrap();
        AccountRow {
            id: id.into(),
            thumbprint: jwk.thumbprint(),
            jwk: jwk.to_json().to_string(),
            contact: vec![],
            status,
            tos_agreed: true,
            created_at: 0,
            eab_kid: None,
        }
    }

    #[tokio::test]
    async fn a_row_read_before_an_invalidation_is_used_once_but_not_kept() {
        let cache = AccountCache::default();
        // The lookup reads the row, then (before it can insert it) a
        // deactivation commits and invalidates the account.
        let stale = cache
            .get_or_load("a", || async {
                let r = row("a", AccountStatus::Valid);
                cache.invalidate("a");
                Ok(Some(r))
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stale.0.status, AccountStatus::Valid);
        let fresh = cache
            .get_or_load("a", || async {
                Ok(Some(row("a", AccountStatus::Deactivated)))
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            fresh.0.status,
            AccountStatus::Deactivated,
            "the stale row was cached"
        );
        // Without an invalidation in between, a row read is kept.
        let kept = cache
            .get_or_load("a", || async { panic!("a cache hit was expected") })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.0.status, AccountStatus::Deactivated);
    }

    #[tokio::test]
    async fn an_invalidated_account_is_read_again() {
        let cache = AccountCache::default();
        cache
            .get_or_load("a", || async { Ok(Some(row("a", AccountStatus::Valid))) })
            .await
            .unwrap();
        cache.invalidate("a");
        let again = cache
            .get_or_load("a", || async {
                Ok(Some(row("a", AccountStatus::Deactivated)))
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.0.status, AccountStatus::Deactivated);
    }

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
