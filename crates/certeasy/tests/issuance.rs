//! Full issuances with a real third-party ACME client (instant-acme) against
//! the server in process: http-01, dns-01 (wildcard), tls-alpn-01, RSA and
//! ECDSA keys, revocation.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{csr, pem_certs, rsa_csr, Harness};
use instant_acme::{ChallengeType, RevocationReason, RevocationRequest};
use rustls::pki_types::CertificateDer;

fn leaf_names(pem: &str) -> Vec<String> {
    let certs = pem_certs(pem);
    let (_, mut names) = pki::leaf_expiry_and_names(&certs[0]).unwrap();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issuance_with_two_names() {
    let h = Harness::start().await;
    let account = h.account().await;
    let names = ["a.test", "b.test"];
    let (der, _) = csr(&names, &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &names, ChallengeType::Http01, &der)
        .await
        .unwrap();
    assert_eq!(leaf_names(&pem), vec!["a.test", "b.test"]);
    let certs = pem_certs(&pem);
    assert_eq!(certs.len(), 2, "leaf + built-in root");
    pki::chain_links(&certs[0], &certs[1..]).unwrap();
    // The served chain ends in the root written at ca/root.pem.
    let root = std::fs::read_to_string(h.root_pem()).unwrap();
    assert_eq!(pem_certs(&root)[0], certs[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_wildcard_issuance() {
    let h = Harness::start().await;
    let account = h.account().await;
    let names = ["*.w.test", "w.test"];
    let (der, _) = csr(&names, &rcgen::PKCS_ECDSA_P384_SHA384);
    let pem = h
        .issue(&account, &names, ChallengeType::Dns01, &der)
        .await
        .unwrap();
    assert_eq!(leaf_names(&pem), vec!["*.w.test", "w.test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_issuance() {
    let h = Harness::start().await;
    let account = h.account().await;
    let names = ["alpn.test"];
    let (der, _) = csr(&names, &rcgen::PKCS_ED25519);
    let pem = h
        .issue(&account, &names, ChallengeType::TlsAlpn01, &der)
        .await
        .unwrap();
    assert_eq!(leaf_names(&pem), vec!["alpn.test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_3072_issuance() {
    let h = Harness::start().await;
    let account = h.account().await;
    let names = ["rsa.test"];
    let der = rsa_csr(&names, 3072);
    let pem = h
        .issue(&account, &names, ChallengeType::Http01, &der)
        .await
        .unwrap();
    assert_eq!(leaf_names(&pem), vec!["rsa.test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_by_account_then_already_revoked() {
    let h = Harness::start().await;
    let account = h.account().await;
    let names = ["rev.test"];
    let (der, _) = csr(&names, &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &names, ChallengeType::Http01, &der)
        .await
        .unwrap();
    let leaf = CertificateDer::from(pem_certs(&pem).remove(0));
    account
        .revoke(&RevocationRequest {
            certificate: &leaf,
            reason: Some(RevocationReason::Superseded),
        })
        .await
        .unwrap();
    let again = account
        .revoke(&RevocationRequest {
            certificate: &leaf,
            reason: None,
        })
        .await
        .unwrap_err();
    match again {
        instant_acme::Error::Api(p) => {
            assert_eq!(
                p.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:alreadyRevoked"),
                "{p:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let serial = pki::serial_hex_of_cert(&leaf).unwrap();
    let stored = h.server().ra.store.cert_by_serial(&serial).await.unwrap();
    assert_eq!(stored[0].revocation_reason, Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_http01_invalidates_order_with_precise_problem() {
    let h = Harness::start().await;
    let account = h.account().await;
    // No token is served: the responder answers 404.
    h.host("missing.test");
    let ids = [instant_acme::Identifier::Dns("missing.test".into())];
    let mut order = account
        .new_order(&instant_acme::NewOrder::new(&ids))
        .await
        .unwrap();
    let mut authzs = order.authorizations();
    let mut a = authzs.next().await.unwrap().unwrap();
    // A validation that ends within the challenge POST (workers.validation-wait)
    // answers with the failed challenge, which instant-acme reports at once.
    let answered = a
        .challenge(ChallengeType::Http01)
        .unwrap()
        .set_ready()
        .await;
    if let Err(err) = answered {
        let instant_acme::Error::Api(problem) = err else {
            panic!("expected the challenge's problem, got {err:?}")
        };
        assert_eq!(
            problem.r#type.as_deref(),
            Some("urn:ietf:params:acme:error:incorrectResponse"),
            "{problem:?}"
        );
    }
    let err = order
        .poll_ready(&instant_acme::RetryPolicy::new())
        .await
        .unwrap_err();
    let instant_acme::Error::Api(problem) = err else {
        panic!("expected a problem, got {err:?}")
    };
    assert_eq!(
        problem.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:unauthorized")
    );
    let sub = &problem.subproblems[0];
    assert_eq!(
        sub.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:incorrectResponse"),
        "{problem:?}"
    );
    assert_eq!(
        sub.identifier,
        Some(instant_acme::Identifier::Dns("missing.test".into()))
    );
    let detail = sub.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("404") && detail.contains("127.0.0.1"),
        "{detail}"
    );
    assert_eq!(
        order.refresh().await.unwrap().status,
        instant_acme::OrderStatus::Invalid
    );
}
