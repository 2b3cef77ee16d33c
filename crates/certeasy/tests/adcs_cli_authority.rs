//! The `adcs-cli` fallback (certreq.exe), tested on Linux with a stub that
//! prints certreq's formats: issued, pending then approved, denied; scratch
//! files are always removed.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::stub::StubCa;
use common::{csr, pem_certs, Harness, Options};
use instant_acme::ChallengeType;

fn opts(stub: &StubCa, template: &str) -> Options {
    Options {
        authority_extra: stub.authority("cli", template),
        extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [cli]\n".into(),
        ..Options::default()
    }
}

fn scratch_is_empty(h: &Harness) -> bool {
    match std::fs::read_dir(h.dir.path().join("work/adcs-cli")) {
        Ok(rd) => rd.count() == 0,
        Err(_) => true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_through_certreq_and_scratch_removed() {
    let stub = StubCa::new();
    let h = Harness::start_with(opts(&stub, "StubIssue")).await;
    let account = h.account().await;
    let (der, _) = csr(&["cli.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &["cli.test"], ChallengeType::Http01, &der)
        .await
        .unwrap();
    let certs = pem_certs(&pem);
    assert_eq!(
        certs.last().unwrap(),
        &stub.root_der(),
        "chain from certreq's PKCS #7"
    );
    let calls = std::fs::read_to_string(stub.dir.path().join("calls.log")).unwrap();
    assert!(calls.starts_with("submit StubIssue "), "{calls}");
    assert!(scratch_is_empty(&h), "scratch files left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_then_approved_then_retrieved() {
    let stub = Arc::new(StubCa::new());
    let h = Arc::new(Harness::start_with(opts(&stub, "StubPending")).await);
    let account = h.account().await;
    let client = {
        let h = h.clone();
        tokio::spawn(async move {
            let (der, _) = csr(&["clipend.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
            h.issue(&account, &["clipend.test"], ChallengeType::Http01, &der)
                .await
        })
    };
    let pending = common::wait_for_pending(&h).await;
    assert_eq!(pending.len(), 1);
    stub.approve(pending[0].2);
    let pem = client.await.unwrap().unwrap();
    assert_eq!(pem_certs(&pem).last().unwrap(), &stub.root_der());
    let calls = std::fs::read_to_string(stub.dir.path().join("calls.log")).unwrap();
    assert!(calls.contains("retrieve"), "{calls}");
    assert!(scratch_is_empty(&h));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_is_final_with_certreqs_reason() {
    let stub = StubCa::new();
    let h = Harness::start_with(opts(&stub, "NotAllowed")).await;
    let account = h.account().await;
    let (der, _) = csr(&["clideny.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let err = h
        .issue(&account, &["clideny.test"], ChallengeType::Http01, &der)
        .await
        .unwrap_err();
    let instant_acme::Error::Api(problem) = err else {
        panic!("{err:?}")
    };
    let detail = problem.detail.unwrap_or_default();
    assert!(detail.contains("0x80094012"), "{detail}");
    assert!(scratch_is_empty(&h));
}
