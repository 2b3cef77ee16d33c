//! Tests of the neutral [`Store`] API: they use nothing of an engine but
//! its constructor in [`open`], so they can run against every engine.
//!
//! With `CERTEASY_TEST_PG_DSN` set (scripts/test.sh sets it to a throwaway
//! cluster started by scripts/pg-cluster.sh), [`open`] gives a PostgreSQL
//! store in a fresh schema of that database instead of a SQLite file, so
//! `cargo test -p certeasy --lib store::tests` runs them on PostgreSQL.

use acme_wire::{AccountStatus, AuthorizationStatus, ChallengeStatus, OrderStatus};

use super::*;

/// A fresh store: a SQLite file in a temporary directory (kept alive with
/// the store), or a fresh schema on the PostgreSQL server of
/// `CERTEASY_TEST_PG_DSN`.
pub(super) async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = match test_pg_settings() {
        Some(pg) => Store::open_postgres(&pg).await.unwrap(),
        None => Store::open_sqlite(&dir.path().join("db.sqlite"))
            .await
            .unwrap(),
    };
    (dir, store)
}

/// A fresh SQLite store, whatever `CERTEASY_TEST_PG_DSN` says (tests of
/// what is SQLite's own).
pub(super) async fn open_sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    (dir, store)
}

/// Settings for a fresh schema on the test PostgreSQL server, when
/// `CERTEASY_TEST_PG_DSN` names one.
pub(crate) fn test_pg_settings() -> Option<crate::config::PostgresSettings> {
    let dsn = std::env::var("CERTEASY_TEST_PG_DSN").ok()?;
    Some(crate::config::PostgresSettings {
        dsn,
        password: None,
        pool_size: 8,
        connect_timeout: std::time::Duration::from_secs(10),
        statement_timeout: std::time::Duration::from_secs(30),
        sslmode: crate::config::SslMode::Disable,
        ca_certs: Vec::new(),
        schema: format!("t_{}", new_id().to_ascii_lowercase().replace('-', "_")),
    })
}

#[tokio::test]
async fn a_dropped_transaction_rolls_back_and_frees_the_writer() {
    let (_dir, store) = open().await;
    {
        let mut tx = store.begin().await.unwrap();
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, "o", "nobody", -1)
            .await
            .unwrap();
    }
    assert_eq!(store.job_count().await.unwrap(), 0);
    // The writer is free again: a new transaction commits.
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Issue, "o", "nobody", -1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.job_count().await.unwrap(), 1);
}

#[tokio::test]
async fn nonce_uses_are_recorded_once_and_purged_after_expiry() {
    let (_dir, store) = open().await;
    assert!(store.use_nonce("n1", now_ms() + 60_000).await.unwrap());
    assert!(!store.use_nonce("n1", now_ms() + 60_000).await.unwrap());
    assert!(store.use_nonce("old", now_ms() - 1).await.unwrap());
    assert_eq!(store.purge_nonces().await.unwrap(), 1);
    assert!(
        !store.use_nonce("n1", now_ms() + 60_000).await.unwrap(),
        "unexpired uses are kept"
    );
}

/// Workers of several nodes claiming at once take different jobs, each
/// once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_take_each_job_once() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    for i in 0..12 {
        Store::enqueue_leased_job(&mut tx, JobKind::Validate, &format!("c{i}"), "gone", -1)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let claims = (0..16).map(|w| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_job(&format!("node-{w}"), 60_000).await })
    });
    let mut subjects = Vec::new();
    for c in claims {
        if let Some(job) = c.await.unwrap().unwrap() {
            subjects.push(job.subject);
        }
    }
    subjects.sort();
    let before = subjects.len();
    subjects.dedup();
    assert_eq!(subjects.len(), before, "a job was claimed twice");
    assert_eq!(subjects.len(), 12, "every runnable job was claimed once");
}

#[tokio::test]
async fn enqueue_is_idempotent_per_subject() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    let first =
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, "order-1", "node/handoff", 30_000)
            .await
            .unwrap()
            .expect("a new job is handed out");
    assert_eq!(
        (first.attempts, first.lease_owner.as_str()),
        (1, "node/handoff")
    );
    let again =
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, "order-1", "node/handoff", 30_000)
            .await
            .unwrap();
    assert!(again.is_none(), "the second enqueue hands out nothing");
    Store::enqueue_leased_job(
        &mut tx,
        JobKind::Validate,
        "order-1",
        "node/handoff",
        30_000,
    )
    .await
    .unwrap()
    .expect("another kind is another job");
    tx.commit().await.unwrap();
    assert_eq!(store.job_count().await.unwrap(), 2);
    // Leased at enqueue: nobody claims them before the lease runs out.
    assert!(store.claim_job("w", 30_000).await.unwrap().is_none());
}

#[tokio::test]
async fn an_uncommitted_enqueue_leaves_no_job() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Issue, "order-1", "nobody", -1)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.job_count().await.unwrap(), 0);
    assert!(store.claim_job("w", 1000).await.unwrap().is_none());
}

#[tokio::test]
async fn claimed_job_is_leased_then_reclaimed_after_expiry() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Validate, "chall-1", "nobody", -1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A lease in the past stands for a worker that died.
    // Enqueued with an expired lease: claimable at once.
    let job = store.claim_job("dead-worker", -1).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2);
    assert_eq!(job.subject, "chall-1");
    let again = store
        .claim_job("live-worker", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.kind, &again.subject), (job.kind, &job.subject));
    assert_eq!(again.attempts, 3);
    // Now leased for a minute: nobody else gets it.
    assert!(store.claim_job("third", 60_000).await.unwrap().is_none());
}

#[tokio::test]
async fn retry_requeues_for_later_and_only_for_the_lease_owner() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Issue, "o", "nobody", -1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let job = store.claim_job("w1", 60_000).await.unwrap().unwrap();
    // A stale worker cannot reschedule a job it no longer owns.
    let stale = ClaimedJob {
        lease_owner: "someone-else".into(),
        ..job.clone()
    };
    store.retry_job(&stale, now_ms(), "x").await.unwrap();
    assert!(store.claim_job("w2", 60_000).await.unwrap().is_none());
    store
        .retry_job(&job, now_ms() + 3_600_000, "CA unreachable")
        .await
        .unwrap();
    assert!(
        store.claim_job("w2", 60_000).await.unwrap().is_none(),
        "not due yet"
    );
    let next = store.next_job_time().await.unwrap().unwrap();
    assert!(next > now_ms() + 3_000_000);
    store.retry_job(&job, now_ms(), "x").await.unwrap();
    // Owner was cleared by the first retry; the second one did not apply.
    assert!(store.claim_job("w2", 60_000).await.unwrap().is_none());
}

#[tokio::test]
async fn one_certificate_per_order_is_enforced_by_the_schema() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    let acct = AccountRow {
        id: "a".into(),
        thumbprint: "t".into(),
        jwk: "{}".into(),
        contact: vec![],
        status: AccountStatus::Valid,
        tos_agreed: true,
        created_at: 0,
        eab_kid: None,
    };
    Store::insert_account(&mut tx, &acct).await.unwrap();
    let order = OrderRow {
        id: "o".into(),
        account_id: "a".into(),
        status: OrderStatus::Processing,
        policy: "p".into(),
        names: vec!["x.test".into()],
        not_before: None,
        not_after: None,
        expires: now_ms() + 1000,
        error: None,
        csr: None,
        replaces: None,
        profile: None,
        created_at: now_ms(),
        ca_pending: None,
    };
    Store::insert_order(
        &mut tx,
        &NewOrder {
            order,
            authzs: vec![],
        },
    )
    .await
    .unwrap();
    let cert = |id: &str, serial: &str| CertRow {
        id: id.into(),
        order_id: "o".into(),
        account_id: "a".into(),
        authority: "ca".into(),
        serial: serial.into(),
        names: vec!["x.test".into()],
        leaf_der: vec![1],
        chain_pem: String::new(),
        not_before: 0,
        not_after: 1,
        revoked_at: None,
        revocation_reason: None,
    };
    Store::insert_cert(&mut tx, &cert("c1", "01"))
        .await
        .unwrap();
    let err = Store::insert_cert(&mut tx, &cert("c2", "02"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
}

#[test]
fn ids_are_url_safe_and_sort_in_creation_order() {
    assert_eq!(super::sortable_encode(0), "-".repeat(22));
    assert_eq!(
        super::sortable_encode(u128::MAX),
        format!("{}k", "z".repeat(21))
    );
    // Order is kept bit by bit, in every position of the 128 bits.
    for bit in 0..127 {
        let (lo, hi) = (1u128 << bit, 1u128 << (bit + 1));
        assert!(
            super::sortable_encode(lo) < super::sortable_encode(hi),
            "bit {bit}"
        );
        assert!(
            super::sortable_encode(hi - 1) < super::sortable_encode(hi),
            "bit {bit}"
        );
    }
    // A later millisecond sorts later whatever the random parts.
    let now = now_ms();
    assert!(super::id_at(now, [0xff; 10]) < super::id_at(now + 1, [0; 10]));
    assert!(super::id_at(now, [0; 10]) < super::id_at(now, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    let id = super::new_id();
    assert_eq!(id.len(), 22);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_ne!(super::new_id(), super::new_id(), "the random part differs");
}

pub(super) fn account_row(id: &str) -> AccountRow {
    AccountRow {
        id: id.into(),
        thumbprint: format!("thumb-{id}"),
        jwk: "{}".into(),
        contact: vec![],
        status: AccountStatus::Valid,
        tos_agreed: true,
        created_at: 0,
        eab_kid: None,
    }
}

/// An order `id` of `account` in `status` with one authorization `z-{id}`
/// (`authz_status`) holding one challenge `c-{id}` (`chall_status`).
pub(super) fn order_with(
    id: &str,
    account: &str,
    status: OrderStatus,
    authz_status: AuthorizationStatus,
    chall_status: ChallengeStatus,
) -> NewOrder {
    NewOrder {
        order: OrderRow {
            id: id.into(),
            account_id: account.into(),
            status,
            policy: "p".into(),
            names: vec![format!("{id}.test")],
            not_before: None,
            not_after: None,
            expires: now_ms() + 60_000,
            error: None,
            csr: None,
            replaces: None,
            profile: None,
            created_at: now_ms(),
            ca_pending: None,
        },
        authzs: vec![NewAuthz {
            authz: AuthzRow {
                id: format!("z-{id}"),
                order_id: id.into(),
                account_id: account.into(),
                identifier: format!("{id}.test"),
                wildcard: false,
                status: authz_status,
                expires: now_ms() + 60_000,
            },
            challenges: vec![ChallengeRow {
                id: format!("c-{id}"),
                authz_id: format!("z-{id}"),
                kind: "http-01".into(),
                token: format!("token-{id}"),
                status: chall_status,
                validated: None,
                error: None,
            }],
        }],
    }
}

#[tokio::test]
async fn cancelling_an_accounts_work_spares_jobs_a_worker_holds_and_other_accounts() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    for a in ["a", "b"] {
        Store::insert_account(&mut tx, &account_row(a))
            .await
            .unwrap();
    }
    use AuthorizationStatus as Z;
    use ChallengeStatus as C;
    use OrderStatus as O;
    let orders = [
        // (order, account, status, authz, challenge, job: kind and lease)
        ("idle", "a", O::Pending, Z::Pending, C::Pending, None),
        ("all-valid", "a", O::Ready, Z::Valid, C::Valid, None),
        (
            "val-free",
            "a",
            O::Pending,
            Z::Pending,
            C::Processing,
            Some((JobKind::Validate, -1)),
        ),
        (
            "val-held",
            "a",
            O::Pending,
            Z::Pending,
            C::Processing,
            Some((JobKind::Validate, 60_000)),
        ),
        (
            "iss-free",
            "a",
            O::Processing,
            Z::Valid,
            C::Valid,
            Some((JobKind::Issue, -1)),
        ),
        (
            "iss-held",
            "a",
            O::Processing,
            Z::Valid,
            C::Valid,
            Some((JobKind::Issue, 60_000)),
        ),
        ("done", "a", O::Valid, Z::Valid, C::Valid, None),
        (
            "other",
            "b",
            O::Pending,
            Z::Pending,
            C::Processing,
            Some((JobKind::Validate, -1)),
        ),
    ];
    for (id, account, status, authz, chall, job) in orders {
        Store::insert_order(&mut tx, &order_with(id, account, status, authz, chall))
            .await
            .unwrap();
        if let Some((kind, lease)) = job {
            let subject = match kind {
                JobKind::Validate => format!("c-{id}"),
                JobKind::Issue | JobKind::Revoke => id.to_string(),
            };
            Store::enqueue_leased_job(&mut tx, kind, &subject, "w", lease)
                .await
                .unwrap();
        }
    }
    Store::cancel_account_work(&mut tx, "a", "{\"detail\":\"deactivated\"}")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let order = |id: &str| {
        let store = store.clone();
        let id = id.to_string();
        async move { store.order(&id).await.unwrap().unwrap().status }
    };
    let authz = |id: &str| {
        let store = store.clone();
        let id = format!("z-{id}");
        async move { store.authz(&id).await.unwrap().unwrap().status }
    };
    let chall = |id: &str| {
        let store = store.clone();
        let id = format!("c-{id}");
        async move { store.challenge(&id).await.unwrap().unwrap().status }
    };
    for id in ["idle", "all-valid", "val-free", "val-held", "iss-free"] {
        assert_eq!(order(id).await, O::Invalid, "{id}");
        let error = store.order(id).await.unwrap().unwrap().error;
        assert_eq!(
            error.as_deref(),
            Some("{\"detail\":\"deactivated\"}"),
            "{id}"
        );
    }
    assert_eq!(order("iss-held").await, O::Processing, "its worker decides");
    assert_eq!(order("done").await, O::Valid);
    assert_eq!(order("other").await, O::Pending, "another account");
    for id in ["idle", "val-free", "val-held"] {
        assert_eq!(authz(id).await, Z::Deactivated, "{id}");
    }
    assert_eq!(authz("all-valid").await, Z::Valid);
    assert_eq!(authz("other").await, Z::Pending);
    assert_eq!(chall("val-free").await, C::Invalid);
    assert_eq!(chall("val-held").await, C::Processing, "its worker decides");
    assert_eq!(chall("other").await, C::Processing);
    // Left: the other account's job (claimable, its lease expired) and the
    // two that workers hold (not claimable); the free ones of `a` are gone.
    assert_eq!(store.job_count().await.unwrap(), 3);
    let claimable = store.claim_job("w2", 60_000).await.unwrap().unwrap();
    assert_eq!(claimable.subject, "c-other");
    assert!(store.claim_job("w2", 60_000).await.unwrap().is_none());
}

#[tokio::test]
async fn account_writes_apply_only_to_a_valid_account_with_the_signing_key() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::insert_account(&mut tx, &account_row("a"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let contact = ["mailto:x@example.com".to_string()];
    let update = AccountChange {
        contact: Some(&contact),
        ..AccountChange::default()
    };
    assert!(store
        .update_account("a", "another-key", &update)
        .await
        .unwrap()
        .is_none());
    let row = store
        .update_account("a", "thumb-a", &update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.contact.as_slice(), row.status),
        (&contact[..], AccountStatus::Valid)
    );
    // A key change from a key that is no longer the account's: nothing.
    let mut tx = store.begin().await.unwrap();
    assert!(Store::change_account_key(&mut tx, "a", "old", "new", "{}")
        .await
        .unwrap()
        .is_none());
    let rekeyed = Store::change_account_key(&mut tx, "a", "thumb-a", "thumb-new", "{}")
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rekeyed.thumbprint, "thumb-new");
    let deactivate = AccountChange {
        deactivate: true,
        ..AccountChange::default()
    };
    let row = store
        .update_account("a", "thumb-new", &deactivate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status, row.contact.len()),
        (AccountStatus::Deactivated, 1)
    );
    // Once deactivated, neither a contact update nor a key change applies.
    assert!(store
        .update_account("a", "thumb-new", &update)
        .await
        .unwrap()
        .is_none());
    let mut tx = store.begin().await.unwrap();
    assert!(
        Store::change_account_key(&mut tx, "a", "thumb-new", "t3", "{}")
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
    let stored = store.account("a").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.thumbprint.as_str()),
        (AccountStatus::Deactivated, "thumb-new")
    );
}

/// A certificate `id` of order `order` and account `account`.
fn cert_row(id: &str, order: &str, account: &str, serial: &str, names: &[&str]) -> CertRow {
    CertRow {
        id: id.into(),
        order_id: order.into(),
        account_id: account.into(),
        authority: "ca".into(),
        serial: serial.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
        leaf_der: vec![1],
        chain_pem: String::new(),
        not_before: 0,
        not_after: now_ms() + 86_400_000,
        revoked_at: None,
        revocation_reason: None,
    }
}

#[tokio::test]
async fn a_certificate_is_replaced_by_one_live_order_at_a_time() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::insert_account(&mut tx, &account_row("a"))
        .await
        .unwrap();
    let done = order_with(
        "o0",
        "a",
        OrderStatus::Valid,
        AuthorizationStatus::Valid,
        ChallengeStatus::Valid,
    );
    Store::insert_order(&mut tx, &done).await.unwrap();
    Store::insert_cert(&mut tx, &cert_row("c", "o0", "a", "0a", &["o0.test"]))
        .await
        .unwrap();
    for id in ["o1", "o2"] {
        let o = order_with(
            id,
            "a",
            OrderStatus::Pending,
            AuthorizationStatus::Pending,
            ChallengeStatus::Pending,
        );
        Store::insert_order(&mut tx, &o).await.unwrap();
    }
    let now = now_ms();
    assert!(Store::mark_replaced(&mut tx, "c", "o1", now).await.unwrap());
    // o1 is live: o2 cannot replace the certificate.
    assert!(!Store::mark_replaced(&mut tx, "c", "o2", now).await.unwrap());
    // Once o1 is invalid, it can.
    Store::set_order_status(
        &mut tx,
        "o1",
        &[OrderStatus::Pending],
        OrderStatus::Invalid,
        None,
    )
    .await
    .unwrap();
    assert!(Store::mark_replaced(&mut tx, "c", "o2", now).await.unwrap());
    // An order that expired while pending no longer counts either.
    assert!(Store::mark_replaced(&mut tx, "c", "o1", now + 3_600_000)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let found = store.ari_certs_by_serial("0a").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].names, ["o0.test"]);
    assert!(store.ari_certs_by_serial("0b").await.unwrap().is_empty());
}

#[tokio::test]
async fn renew_early_selects_by_serial_name_authority_and_policy() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::insert_account(&mut tx, &account_row("a"))
        .await
        .unwrap();
    for (i, names) in [["x.test"], ["y.test"]].iter().enumerate() {
        let o = format!("o{i}");
        let order = order_with(
            &o,
            "a",
            OrderStatus::Valid,
            AuthorizationStatus::Valid,
            ChallengeStatus::Valid,
        );
        Store::insert_order(&mut tx, &order).await.unwrap();
        Store::insert_cert(
            &mut tx,
            &cert_row(&format!("c{i}"), &o, "a", &format!("0{i}"), names),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let at = now_ms();
    assert_eq!(
        store
            .renew_early(&RenewEarly::Serial("01".into()), at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .renew_early(&RenewEarly::Name("x.test".into()), at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .renew_early(&RenewEarly::Name("z.test".into()), at)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .renew_early(&RenewEarly::Authority("ca".into()), at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .renew_early(&RenewEarly::Policy("p".into()), at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .renew_early(&RenewEarly::Policy("q".into()), at)
            .await
            .unwrap(),
        0
    );
    let c = store.ari_certs_by_serial("01").await.unwrap().remove(0);
    assert_eq!(c.renew_early_at, Some(at));
    // Revoked certificates are left alone.
    let mut tx = store.begin().await.unwrap();
    assert!(Store::revoke_cert(&mut tx, "c0", 1, CaRevocation::Local)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .renew_early(&RenewEarly::Authority("ca".into()), at)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn an_eab_key_binds_once_and_not_when_revoked_or_expired() {
    let (_dir, store) = open().await;
    let key = |kid: &str, expires_at: Option<i64>| EabKeyRow {
        kid: kid.into(),
        label: "l".into(),
        sealed_key: vec![1, 2, 3],
        policies: vec!["p".into()],
        profiles: vec![],
        names: vec![".x.test/1".into()],
        expires_at,
        created_at: now_ms(),
        revoked_at: None,
        account_id: None,
        bound_at: None,
    };
    store.insert_eab_key(&key("k1", None)).await.unwrap();
    store.insert_eab_key(&key("k2", None)).await.unwrap();
    store
        .insert_eab_key(&key("k3", Some(now_ms() - 1)))
        .await
        .unwrap();
    let err = store.insert_eab_key(&key("k1", None)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let mut tx = store.begin().await.unwrap();
    for id in ["a", "b", "c"] {
        Store::insert_account(&mut tx, &account_row(id))
            .await
            .unwrap();
    }
    let now = now_ms();
    assert!(Store::bind_eab_key(&mut tx, "k1", "a", now).await.unwrap());
    assert!(
        !Store::bind_eab_key(&mut tx, "k1", "b", now).await.unwrap(),
        "bound twice"
    );
    assert!(
        !Store::bind_eab_key(&mut tx, "k3", "b", now).await.unwrap(),
        "expired"
    );
    assert!(!Store::bind_eab_key(&mut tx, "nope", "b", now)
        .await
        .unwrap());
    assert_eq!(
        Store::revoke_eab_key(&mut tx, "k2", now).await.unwrap(),
        Some(None)
    );
    assert!(
        !Store::bind_eab_key(&mut tx, "k2", "c", now).await.unwrap(),
        "revoked"
    );
    assert_eq!(
        Store::revoke_eab_key(&mut tx, "k2", now).await.unwrap(),
        None
    );
    assert_eq!(
        Store::revoke_eab_key(&mut tx, "k1", now).await.unwrap(),
        Some(Some("a".into()))
    );
    assert!(Store::deactivate_account_tx(&mut tx, "a").await.unwrap());
    assert!(!Store::deactivate_account_tx(&mut tx, "a").await.unwrap());
    tx.commit().await.unwrap();
    let k1 = store.eab_key("k1").await.unwrap().unwrap();
    assert_eq!(k1.account_id.as_deref(), Some("a"));
    assert_eq!(k1.names, [".x.test/1"]);
    assert!(k1.revoked_at.is_some());
    assert_eq!(store.eab_keys().await.unwrap().len(), 3);
    assert_eq!(
        store.account("a").await.unwrap().unwrap().status,
        AccountStatus::Deactivated
    );
}

#[tokio::test]
async fn the_audit_outbox_is_read_after_a_position_and_trimmed_through_one() {
    let (_dir, store) = open().await;
    let genesis = "00".repeat(32);
    store.audit_register("node-a", &genesis).await.unwrap();
    store.audit_register("node-b", &genesis).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    for (node, event) in [
        ("node-a", "order.create"),
        ("node-b", "order.create"),
        ("node-a", "order.finalize"),
        ("node-a", "certificate.issue"),
    ] {
        let row = AuditRow {
            event: event.to_string(),
            ts: 1,
            ..AuditRow::default()
        };
        Store::audit_append(&mut tx, node, &row).await.unwrap();
    }
    tx.commit().await.unwrap();
    let names = |rows: &[AuditRow]| rows.iter().map(|r| r.event.clone()).collect::<Vec<_>>();
    let all = store.audit_pending("node-a", 0, 10).await.unwrap();
    assert_eq!(
        names(&all),
        ["order.create", "order.finalize", "certificate.issue"]
    );
    // Written but not yet synced: the writer reads on after the last one.
    let next = store.audit_pending("node-a", all[0].id, 10).await.unwrap();
    assert_eq!(names(&next), ["order.finalize", "certificate.issue"]);
    assert_eq!(
        names(&store.audit_pending("node-a", all[0].id, 1).await.unwrap()),
        ["order.finalize"]
    );
    // Synced through the second: only the third is left, and node-b's
    // events are untouched.
    let end = ChainRow {
        seq: 2,
        mac: "ab".repeat(32),
        segment: 1,
    };
    let mut tx = store.begin().await.unwrap();
    Store::audit_advance(&mut tx, "node-a", all[1].id, &end)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        names(&store.audit_pending("node-a", 0, 10).await.unwrap()),
        ["certificate.issue"]
    );
    assert_eq!(store.audit_chain("node-a").await.unwrap(), Some(end));
    assert_eq!(
        names(&store.audit_pending("node-b", 0, 10).await.unwrap()),
        ["order.create"]
    );
}

#[tokio::test]
async fn a_revocation_is_pending_until_the_ca_answers_once() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::insert_account(&mut tx, &account_row("a"))
        .await
        .unwrap();
    for i in 0..3 {
        let o = format!("o{i}");
        let order = order_with(
            &o,
            "a",
            OrderStatus::Valid,
            AuthorizationStatus::Valid,
            ChallengeStatus::Valid,
        );
        Store::insert_order(&mut tx, &order).await.unwrap();
        let mut c = cert_row(&format!("c{i}"), &o, "a", &format!("0{i}"), &["x.test"]);
        if i == 2 {
            c.not_after = now_ms() - 1;
        }
        Store::insert_cert(&mut tx, &c).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(store.revocation("c0").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    assert!(Store::revoke_cert(&mut tx, "c0", 1, CaRevocation::Pending)
        .await
        .unwrap());
    assert!(Store::revoke_cert(&mut tx, "c1", 4, CaRevocation::Local)
        .await
        .unwrap());
    assert!(Store::revoke_cert(&mut tx, "c2", 0, CaRevocation::Pending)
        .await
        .unwrap());
    assert!(!Store::revoke_cert(&mut tx, "c0", 0, CaRevocation::Local)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.count_ca_revocations_pending().await.unwrap(), 2);
    let r = store.revocation("c0").await.unwrap().unwrap();
    assert_eq!((r.ca, r.reason, r.ca_at), (CaRevocation::Pending, 1, None));

    let mut tx = store.begin().await.unwrap();
    assert!(
        Store::settle_ca_revocation(&mut tx, "c0", CaRevocation::Confirmed, None, 42)
            .await
            .unwrap()
    );
    assert!(
        !Store::settle_ca_revocation(&mut tx, "c0", CaRevocation::Refused, Some("no"), 43)
            .await
            .unwrap(),
        "settled once"
    );
    assert!(
        !Store::settle_ca_revocation(&mut tx, "c1", CaRevocation::Confirmed, None, 43)
            .await
            .unwrap(),
        "a local revocation is not pending"
    );
    tx.commit().await.unwrap();
    let r = store.revocation("c0").await.unwrap().unwrap();
    assert_eq!((r.ca, r.ca_at), (CaRevocation::Confirmed, Some(42)));
    assert_eq!(store.count_ca_revocations_pending().await.unwrap(), 1);

    // The CRL's entries: unexpired revoked certificates of the authority.
    let entries = store.revoked_certs("ca", now_ms()).await.unwrap();
    let serials: Vec<_> = entries.iter().map(|e| e.serial.as_str()).collect();
    assert_eq!(serials, ["00", "01"]);
    assert_eq!(entries[1].reason, 4);
    assert!(store.revoked_certs("other", 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crl_is_replaced_only_by_a_higher_number() {
    let (_dir, store) = open().await;
    let row = |number: i64| CrlRow {
        authority: "ca".into(),
        number,
        this_update: number * 10,
        next_update: number * 10 + 5,
        der: vec![number as u8],
        stale: 0,
    };
    assert_eq!(store.crl("ca").await.unwrap(), None);
    // A revocation before the first CRL leaves a placeholder.
    let mut tx = store.begin().await.unwrap();
    Store::mark_crl_stale(&mut tx, "ca").await.unwrap();
    tx.commit().await.unwrap();
    let placeholder = store.crl("ca").await.unwrap().unwrap();
    assert_eq!((placeholder.number, placeholder.stale), (0, 1));
    assert!(store
        .store_crl(&CrlRow { stale: 1, ..row(1) })
        .await
        .unwrap());
    assert!(store.store_crl(&row(2)).await.unwrap());
    assert!(!store.store_crl(&row(2)).await.unwrap(), "same number");
    assert!(!store.store_crl(&row(1)).await.unwrap(), "older");
    assert_eq!(store.crl("ca").await.unwrap(), Some(row(2)));
    let mark = || async {
        let mut tx = store.begin().await.unwrap();
        Store::mark_crl_stale(&mut tx, "ca").await.unwrap();
        tx.commit().await.unwrap();
    };
    mark().await;
    assert_eq!(store.crl("ca").await.unwrap().unwrap().stale, 1);
    // Built after reading stale = 1; a revocation comes in meanwhile.
    mark().await;
    assert!(store
        .store_crl(&CrlRow { stale: 1, ..row(3) })
        .await
        .unwrap());
    assert_eq!(
        store.crl("ca").await.unwrap().unwrap().stale,
        1,
        "still stale"
    );
    assert!(store
        .store_crl(&CrlRow { stale: 1, ..row(4) })
        .await
        .unwrap());
    assert_eq!(store.crl("ca").await.unwrap().unwrap().stale, 0);
}

#[tokio::test]
async fn one_node_at_a_time_obtains_a_listener_certificate() {
    let (_dir, store) = open().await;
    assert_eq!(store.listener_cert("listener").await.unwrap(), None);
    // Node a claims; b is refused while a's claim holds, even twice.
    assert!(store
        .listener_cert_claim("listener", "a", 100, 220)
        .await
        .unwrap());
    assert!(!store
        .listener_cert_claim("listener", "b", 101, 221)
        .await
        .unwrap());
    assert!(!store
        .listener_cert_claim("listener", "b", 220, 340)
        .await
        .unwrap());
    // A claim row holds no certificate yet.
    assert_eq!(store.listener_cert("listener").await.unwrap(), None);
    // a renews its own claim; another bundle is independent.
    assert!(store
        .listener_cert_claim("listener", "a", 150, 270)
        .await
        .unwrap());
    assert!(store
        .listener_cert_claim("other", "b", 150, 270)
        .await
        .unwrap());
    let row = ListenerCertRow {
        names: vec!["a.test".into(), "b.test".into()],
        chain_pem: "chain".into(),
        key_pem: "key".into(),
        not_after: 9_000,
        issued_at: 160,
        issued_by: "a".into(),
    };
    store.listener_cert_put("listener", &row).await.unwrap();
    assert_eq!(
        store.listener_cert("listener").await.unwrap(),
        Some(row.clone())
    );
    // Storing ended a's claim: b may claim (to renew) at once.
    assert!(store
        .listener_cert_claim("listener", "b", 170, 290)
        .await
        .unwrap());
    // b dies mid-issuance: its claim runs out, then a takes over.
    assert!(!store
        .listener_cert_claim("listener", "a", 290, 410)
        .await
        .unwrap());
    assert!(store
        .listener_cert_claim("listener", "a", 291, 411)
        .await
        .unwrap());
    // Releasing only ends one's own claim.
    store.listener_cert_release("listener", "b").await.unwrap();
    assert!(!store
        .listener_cert_claim("listener", "b", 300, 420)
        .await
        .unwrap());
    store.listener_cert_release("listener", "a").await.unwrap();
    assert!(store
        .listener_cert_claim("listener", "b", 300, 420)
        .await
        .unwrap());
    // The certificate stays through claims and releases.
    assert_eq!(store.listener_cert("listener").await.unwrap(), Some(row));
}
