//! The registration authority's state machines, driven without HTTP: a real
//! SQLite store in a temporary directory, the built-in CA, the job engine
//! running each job on the calling task (the waits are set long, so every
//! attempt ends before the call returns), and a validation profile whose
//! only DNS server refuses (nothing listens on 127.0.0.1:1), so a
//! validation fails without leaving the machine.

use std::sync::Arc;

use acme_wire::{
    AuthorizationStatus, ChallengeStatus, FinalizeRequest, Identifier, Jwk, NewAccountRequest,
    NewOrderRequest, OrderStatus, ProblemType,
};
use pki::testing::{CsrBuilder, TestKey, TestKeyType};

use super::accounts::{new_account, NewAccount};
use super::orders::{deactivate_authz, finalize, new_order, owned_authz, respond_challenge};
use super::Ra;
use crate::ca::Authorities;
use crate::error::AcmeError;
use crate::jobs::Jobs;
use crate::policy::Catalogue;
use crate::store::{AccountRow, AuthzRow, OrderRow, Store};

struct Lab {
    ra: Arc<Ra>,
    _dir: tempfile::TempDir,
}

fn config_text(workdir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"workdir: {workdir}
server:
  url: ["https://acme.example.test"]
  listen: "127.0.0.1:0"
tls-certificate-manager:
  bundles:
    - name: main
      mode: pki
      authority: builtin
dns-validation-profiles:
  - name: local
    timeout: 2s
    zones:
      - suffixes: [example.test]
        dns-server: ["127.0.0.1:1"]
    resolved-ip-policy:
      allow-cidrs: ["127.0.0.0/8"]
authorities:
  - name: builtin
    type: builtin
    configuration:
      password: secret
issuance-policies:
  - name: default
    dns:
      allow: [".example.test/3", "*..example.test/2"]
workers:
  validation-wait: 10m
  finalize-wait: 10m
{extra}"#,
        workdir = workdir.display()
    )
}

async fn lab(extra: &str) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    let text = config_text(&dir.path().join("work"), extra);
    let config = Arc::new(crate::config::load_str(&text, &path).unwrap());
    crate::fsutil::create_private_dir(&config.workdir).unwrap();
    let store = Store::open_sqlite(&config.database_path).await.unwrap();
    let authorities = Arc::new(Authorities::open(&config).unwrap());
    let catalogue = Arc::new(Catalogue::new(config.clone(), authorities).unwrap());
    let jobs = Arc::new(Jobs::new(
        store.clone(),
        config.workers.clone(),
        "test".into(),
    ));
    let (audit, _writer) = crate::audit::writer::start(store.clone(), &config.audit, "test-node")
        .await
        .unwrap();
    let ra = Arc::new(Ra::new(config, store, catalogue, jobs, audit));
    Lab { ra, _dir: dir }
}

async fn account(ra: &Ra) -> AccountRow {
    let key = TestKey::new(TestKeyType::P256);
    let jwk = Jwk::from_spki_der(key.spki_der()).unwrap();
    let req = NewAccountRequest {
        terms_of_service_agreed: Some(true),
        ..Default::default()
    };
    match new_account(ra, &jwk, &req, "https://localhost/acme/new-account", None)
        .await
        .unwrap()
    {
        NewAccount::Created(row) => row,
        NewAccount::Existing(_) => panic!("a fresh key had an account"),
    }
}

fn order_request(names: &[&str]) -> NewOrderRequest {
    NewOrderRequest {
        identifiers: names.iter().map(|n| Identifier::dns(*n)).collect(),
        not_before: None,
        not_after: None,
        replaces: None,
        profile: None,
    }
}

fn problem(e: AcmeError) -> acme_wire::Problem {
    match e {
        AcmeError::Problem(p) => p,
        AcmeError::Internal(e) => panic!("internal error instead of a problem: {e:#}"),
    }
}

async fn order(ra: &Ra, id: &str) -> OrderRow {
    ra.store.order(id).await.unwrap().expect("order stored")
}

/// Marks every authorization of an order valid, as a passed validation
/// would, and the order ready.
async fn validate_all(ra: &Ra, order: &OrderRow, authzs: &[AuthzRow]) {
    let mut tx = ra.store.begin().await.unwrap();
    for a in authzs {
        assert!(Store::set_authz_status(
            &mut tx,
            &a.id,
            &[AuthorizationStatus::Pending],
            AuthorizationStatus::Valid
        )
        .await
        .unwrap());
    }
    assert!(Store::set_order_status(
        &mut tx,
        &order.id,
        &[OrderStatus::Pending],
        OrderStatus::Ready,
        None
    )
    .await
    .unwrap());
    tx.commit().await.unwrap();
}

/// A ready order for `name`: created, its authorization marked valid.
async fn ready_order(ra: &Ra, acct: &AccountRow, name: &str) -> OrderRow {
    let (o, authzs) = new_order(ra, acct, &order_request(&[name])).await.unwrap();
    validate_all(ra, &o, &authzs).await;
    o
}

/// A finalize request with a CSR for `name` under a fresh P-256 key.
fn csr_request(name: &str) -> FinalizeRequest {
    let key = TestKey::new(TestKeyType::P256);
    let csr = CsrBuilder::new(&key).san(&[name]).build();
    FinalizeRequest {
        csr: acme_wire::b64u_encode(&csr),
    }
}

#[tokio::test]
async fn a_new_order_is_pending_with_one_pending_authorization_per_name() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let (o, authzs) = new_order(
        &lab.ra,
        &acct,
        &order_request(&["b.example.test", "*.x.example.test", "B.example.test"]),
    )
    .await
    .unwrap();
    assert_eq!(o.status, OrderStatus::Pending);
    assert_eq!(o.policy, "default");
    assert_eq!(o.names, ["*.x.example.test", "b.example.test"]);
    assert_eq!(authzs.len(), 2, "duplicates are folded");
    for a in &authzs {
        assert_eq!(a.status, AuthorizationStatus::Pending);
        let kinds: Vec<String> = lab
            .ra
            .store
            .challenges_of_authz(&a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.kind)
            .collect();
        if a.wildcard {
            assert_eq!(kinds, ["dns-01"], "a wildcard is proven by dns-01 only");
        } else {
            let mut kinds = kinds;
            kinds.sort();
            assert_eq!(kinds, ["dns-01", "http-01", "tls-alpn-01"]);
        }
    }
}

#[tokio::test]
async fn names_outside_every_policy_are_refused_one_subproblem_each() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let p = problem(
        new_order(
            &lab.ra,
            &acct,
            &order_request(&["a.example.test", "a.other.test", "b.other.test"]),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(p.kind, ProblemType::RejectedIdentifier);
    let refused: Vec<_> = p
        .subproblems
        .iter()
        .map(|s| s.identifier.as_ref().unwrap().value.clone())
        .collect();
    assert_eq!(refused, ["a.example.test", "a.other.test", "b.other.test"]);
    assert!(p.subproblems[1]
        .detail
        .contains("not allowed by any issuance policy"));
}

#[tokio::test]
async fn a_pending_order_cannot_be_finalized() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let (o, _) = new_order(&lab.ra, &acct, &order_request(&["a.example.test"]))
        .await
        .unwrap();
    let req = FinalizeRequest { csr: "AA".into() };
    let p = problem(finalize(&lab.ra, &acct, &o.id, &req).await.unwrap_err());
    assert_eq!(p.kind, ProblemType::OrderNotReady);
    assert_eq!(order(&lab.ra, &o.id).await.status, OrderStatus::Pending);
}

#[tokio::test]
async fn deactivating_an_authorization_invalidates_its_order() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let (o, authzs) = new_order(&lab.ra, &acct, &order_request(&["a.example.test"]))
        .await
        .unwrap();
    deactivate_authz(&lab.ra, &acct, &authzs[0]).await.unwrap();
    let a = owned_authz(&lab.ra, &acct, &authzs[0].id).await.unwrap();
    assert_eq!(a.status, AuthorizationStatus::Deactivated);
    let o = order(&lab.ra, &o.id).await;
    assert_eq!(o.status, OrderStatus::Invalid);
    assert!(o.error.unwrap().contains("was deactivated"));
    // Deactivated is final.
    let p = problem(deactivate_authz(&lab.ra, &acct, &a).await.unwrap_err());
    assert_eq!(p.kind, ProblemType::Malformed);
}

#[tokio::test]
async fn a_failed_validation_invalidates_challenge_authorization_and_order() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let (o, authzs) = new_order(&lab.ra, &acct, &order_request(&["a.example.test"]))
        .await
        .unwrap();
    let challenges = lab
        .ra
        .store
        .challenges_of_authz(&authzs[0].id)
        .await
        .unwrap();
    let dns = challenges.iter().find(|c| c.kind == "dns-01").unwrap();
    let (chall, _) = respond_challenge(&lab.ra, &acct, &dns.id).await.unwrap();
    assert_eq!(
        chall.status,
        ChallengeStatus::Invalid,
        "the DNS server refuses"
    );
    assert!(chall
        .error
        .unwrap()
        .contains("urn:ietf:params:acme:error:dns"));
    let a = owned_authz(&lab.ra, &acct, &authzs[0].id).await.unwrap();
    assert_eq!(a.status, AuthorizationStatus::Invalid);
    let o = order(&lab.ra, &o.id).await;
    assert_eq!(o.status, OrderStatus::Invalid);
    // The authorization is decided: its other challenges are refused.
    let http = challenges.iter().find(|c| c.kind == "http-01").unwrap();
    let p = problem(
        respond_challenge(&lab.ra, &acct, &http.id)
            .await
            .unwrap_err(),
    );
    assert_eq!(p.kind, ProblemType::Malformed);
    assert!(
        p.detail.contains("the authorization is invalid"),
        "{}",
        p.detail
    );
    // Answering the decided challenge again changes nothing.
    let (again, _) = respond_challenge(&lab.ra, &acct, &dns.id).await.unwrap();
    assert_eq!(again.status, ChallengeStatus::Invalid);
}

#[tokio::test]
async fn a_ready_order_is_issued_by_the_builtin_ca_on_finalize() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let o = ready_order(&lab.ra, &acct, "a.example.test").await;
    let req = csr_request("a.example.test");
    let done = finalize(&lab.ra, &acct, &o.id, &req).await.unwrap();
    assert_eq!(done.status, OrderStatus::Valid);
    assert_eq!(lab.ra.store.count_certs().await.unwrap(), 1);
    // Finalized once: the same finalize again (a client's retry after a
    // lost answer) gets the order and issues nothing; another CSR is
    // refused.
    let again = finalize(&lab.ra, &acct, &o.id, &req).await.unwrap();
    assert_eq!(again.status, OrderStatus::Valid);
    assert_eq!(lab.ra.store.count_certs().await.unwrap(), 1);
    let other = csr_request("a.example.test");
    assert_ne!(other.csr, req.csr, "a fresh key, a different CSR");
    let p = problem(finalize(&lab.ra, &acct, &o.id, &other).await.unwrap_err());
    assert_eq!(p.kind, ProblemType::OrderNotReady);
    assert_eq!(lab.ra.store.count_certs().await.unwrap(), 1);
}

#[tokio::test]
async fn a_csr_for_other_names_leaves_the_order_ready() {
    let lab = lab("").await;
    let acct = account(&lab.ra).await;
    let o = ready_order(&lab.ra, &acct, "a.example.test").await;
    let req = csr_request("b.example.test");
    let p = problem(finalize(&lab.ra, &acct, &o.id, &req).await.unwrap_err());
    assert_eq!(p.kind, ProblemType::BadCsr);
    assert_eq!(order(&lab.ra, &o.id).await.status, OrderStatus::Ready);
    assert_eq!(lab.ra.store.count_certs().await.unwrap(), 0);
}

#[tokio::test]
async fn pending_authorizations_beyond_the_limit_are_refused_with_retry_after() {
    let lab = lab("rate-limiting:\n  pending-authorizations:\n    max: 2\n").await;
    let acct = account(&lab.ra).await;
    new_order(
        &lab.ra,
        &acct,
        &order_request(&["a.example.test", "b.example.test"]),
    )
    .await
    .unwrap();
    let p = problem(
        new_order(&lab.ra, &acct, &order_request(&["c.example.test"]))
            .await
            .unwrap_err(),
    );
    assert_eq!(p.kind, ProblemType::RateLimited);
    assert!(p.retry_after.is_some_and(|s| s > 0));
    // Another account is not held up.
    let other = account(&lab.ra).await;
    new_order(&lab.ra, &other, &order_request(&["c.example.test"]))
        .await
        .unwrap();
}
