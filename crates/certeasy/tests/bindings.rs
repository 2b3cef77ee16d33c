//! Policy bindings through real issuances: failover past a failing
//! authority, round-robin across two, a CA's denial is final, and /readyz
//! reports a policy left without a healthy authority.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{binding, csr, pem_certs, signer, Harness, Options};
use instant_acme::ChallengeType;

fn authority(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    type: builtin\n    configuration:\n      common-name: \"{name} CA\"\n      password: \"pw\"\n      health-check-interval: 100ms\n{extra}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_available_fails_over_and_marks_the_failing_authority_unhealthy() {
    let opts = Options {
        authority_extra: authority("down", "      simulate-failure: transient\n")
            + &authority("up", ""),
        extra_sections: binding("down, up", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    for i in 0..3 {
        let name = format!("fo{i}.test");
        let (der, _) = csr(&[name.as_str()], &rcgen::PKCS_ECDSA_P256_SHA256);
        let pem = h
            .issue(&account, &[name.as_str()], ChallengeType::Http01, &der)
            .await
            .unwrap();
        assert_eq!(signer(&h, &pem).await, "up");
        // The chain served is the one of the authority that signed.
        let up_root = std::fs::read_to_string(h.dir.path().join("work/ca/up/root.pem")).unwrap();
        assert_eq!(pem_certs(&pem)[1], pem_certs(&up_root)[0]);
    }
    assert!(!h.server().ra.catalogue.authorities().is_healthy("down"));
    assert!(h.server().ra.catalogue.authorities().is_healthy("up"));
    assert!(h.server().ra.catalogue.authorities().every_policy_served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_uses_both_authorities() {
    let opts = Options {
        authority_extra: authority("a", "") + &authority("b", ""),
        extra_sections: binding("a, b", "round_robin"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let mut used = Vec::new();
    for i in 0..4 {
        let name = format!("rr{i}.test");
        let (der, _) = csr(&[name.as_str()], &rcgen::PKCS_ECDSA_P256_SHA256);
        let pem = h
            .issue(&account, &[name.as_str()], ChallengeType::Http01, &der)
            .await
            .unwrap();
        used.push(signer(&h, &pem).await);
    }
    assert_eq!(used.iter().filter(|a| *a == "a").count(), 2, "{used:?}");
    assert_eq!(used.iter().filter(|a| *a == "b").count(), 2, "{used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_is_final_and_invalidates_the_order() {
    let opts = Options {
        authority_extra: authority("denies", "      simulate-failure: refused\n")
            + &authority("up", ""),
        extra_sections: binding("denies, up", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (der, _) = csr(&["deny.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let err = h
        .issue(&account, &["deny.test"], ChallengeType::Http01, &der)
        .await
        .unwrap_err();
    let instant_acme::Error::Api(problem) = err else {
        panic!("expected a problem: {err:?}")
    };
    let detail = problem.detail.unwrap_or_default();
    assert!(
        detail.contains("denies") && detail.contains("denied by policy"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_policy_without_healthy_authority() {
    let opts = Options {
        authority_extra: authority("down", "      simulate-failure: transient\n"),
        extra_sections: binding("down", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let raw = common::raw::Raw::new(h.server().addr, &h.base(), &h.root_pem());
    // The probe runs every 100ms; after three failures the authority is
    // unhealthy and readiness says so.
    let mut last = None;
    for _ in 0..100 {
        let r = raw
            .send(
                http::Method::GET,
                &format!("{}/readyz", raw.base),
                None,
                vec![],
            )
            .await;
        if r.status == http::StatusCode::SERVICE_UNAVAILABLE {
            last = Some(r.json());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        last,
        Some(
            serde_json::json!({"database": true, "authorities": false, "listener_certificate": true})
        )
    );
}
