//! The native ADCS bridge end to end: certeasy issues through lab-adcs (a CA
//! speaking MS-ICPR over DCE/RPC with NTLM at packet privacy) for a real
//! ACME client — issued, pending then approved by a CA officer, denied, and
//! wrong credentials failing over to another authority.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::lab::lab;
use common::{binding, csr, pem_certs, signer, Harness, Options};
use instant_acme::ChallengeType;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_through_the_native_bridge() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let names = ["adcs1.test", "adcs2.test"];
    let (der, _) = csr(&names, &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &names, ChallengeType::Http01, &der)
        .await
        .unwrap();
    assert_eq!(signer(&h, &pem).await, "lab");
    let certs = pem_certs(&pem);
    let (_, mut sans) = pki::leaf_expiry_and_names(&certs[0]).unwrap();
    sans.sort();
    assert_eq!(sans, vec!["adcs1.test", "adcs2.test"]);
    // The chain came from the CA's PKCS #7 reply and ends in its root.
    assert_eq!(certs.last().unwrap(), &l.root_der());
    pki::chain_links(&certs[0], &certs[1..]).unwrap();
    // Health probes (every 100ms here) ran meanwhile; they must not leave
    // requests in the CA's database: only the real one is there.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let requests = l.lab.state().read().unwrap().requests.len();
    assert_eq!(requests, 1, "health probes created CA requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_request_is_retrieved_after_a_ca_officer_approves_it() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "PendingWebServer", "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Arc::new(Harness::start_with(opts).await);
    let account = h.account().await;
    let client = {
        let h = h.clone();
        tokio::spawn(async move {
            let (der, _) = csr(&["pend.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
            h.issue(&account, &["pend.test"], ChallengeType::Http01, &der)
                .await
        })
    };
    // The order waits in `processing` with the CA's request id stored.
    let mut pending = common::wait_for_pending(&h).await;
    assert_eq!(pending.len(), 1);
    let (_, authority, request_id) = pending.remove(0);
    assert_eq!(authority, "lab");
    l.lab.approve(request_id as u32).unwrap();
    let pem = client.await.unwrap().unwrap();
    assert_eq!(signer(&h, &pem).await, "lab");
    assert!(h
        .server()
        .ra
        .store
        .pending_ca_requests()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_request_invalidates_the_order_with_the_cas_reason() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "DeniedTemplate", "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (der, _) = csr(&["denied.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let err = h
        .issue(&account, &["denied.test"], ChallengeType::Http01, &der)
        .await
        .unwrap_err();
    let instant_acme::Error::Api(problem) = err else {
        panic!("expected a problem: {err:?}")
    };
    let detail = problem.detail.unwrap_or_default();
    assert!(detail.contains("CERTSRV_E_TEMPLATE_DENIED"), "{detail}");
    assert!(detail.contains("authority lab"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_mark_the_authority_unhealthy_and_fail_over() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("badcreds", "WebServer", "wrong-password"),
        extra_sections: binding("badcreds, builtin", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (der, _) = csr(&["failover.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &["failover.test"], ChallengeType::Http01, &der)
        .await
        .unwrap();
    assert_eq!(signer(&h, &pem).await, "builtin");
    // The health probe (every 100ms) keeps failing authentication.
    let mut healthy = true;
    for _ in 0..100 {
        healthy = h.server().ra.catalogue.authorities().is_healthy("badcreds");
        if !healthy {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        !healthy,
        "an authority that cannot authenticate is unhealthy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_survives_a_restart() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "PendingWebServer", "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let mut h = Harness::start_with(opts).await;
    let raw = common::raw::Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = common::raw::Key::generate();
    let kid = raw.new_account(&key).await;
    let order = common::ready_order(&h, &raw, &key, &kid, &["restart.test"]).await;
    let (der, _) = csr(&["restart.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = serde_json::json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(&key, Some(&kid), order["finalize"].as_str().unwrap(), &body)
        .await;
    let order_url = r.location();
    let pending = common::wait_for_pending(&h).await;
    assert_eq!(pending.len(), 1);
    // Restart while the CA holds the request; the order is still processing
    // and answers with Retry-After.
    h.restart().await;
    let r = raw.post(&key, Some(&kid), &order_url, "").await;
    assert_eq!(r.json()["status"], serde_json::json!("processing"));
    assert!(r.header("retry-after").is_some());
    l.lab.approve(pending[0].2 as u32).unwrap();
    let mut state = r.json();
    for _ in 0..400 {
        state = raw.post(&key, Some(&kid), &order_url, "").await.json();
        if state["status"] != serde_json::json!("processing") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(state["status"], serde_json::json!("valid"), "{state}");
    // The request was retrieved, not submitted again: one request at the CA.
    assert_eq!(l.lab.state().read().unwrap().requests.len(), 1);
}

/// The detail of the problem an issuance through `template` ends with.
async fn issuance_problem(template: &str, names: &[&str], der: &[u8]) -> (String, i64) {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", template, "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let err = h
        .issue(&account, names, ChallengeType::Http01, der)
        .await
        .unwrap_err();
    let instant_acme::Error::Api(problem) = err else {
        panic!("expected a problem: {err:?}")
    };
    let stored = h.server().ra.store.count_certs().await.unwrap();
    (problem.detail.unwrap_or_default(), stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_key_is_refused_and_not_stored() {
    // The CA answers with a valid leaf for the right names, signed by the
    // right CA, but certifying a key of its own: never served, never stored.
    let (der, _) = csr(&["wrongkey.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let (detail, stored) = issuance_problem("WrongKey", &["wrongkey.test"], &der).await;
    assert!(
        detail.contains("public key is not the CSR's public key"),
        "{detail}"
    );
    assert!(detail.contains("authority lab"), "{detail}");
    assert_eq!(stored, 0, "the certificate was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_adding_client_auth_beyond_the_policy_is_refused() {
    // The CSR asks for serverAuth + clientAuth (accepted: a request), the
    // policy does not allow clientAuth, and the template adds it anyway:
    // the issued-certificate check refuses the CA's answer.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["both.test".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let der = params.serialize_request(&key).unwrap().der().to_vec();
    let (detail, stored) = issuance_problem("ClientAuthToo", &["both.test"], &der).await;
    assert!(detail.contains("clientAuth"), "{detail}");
    assert!(detail.contains("beyond the policy"), "{detail}");
    assert_eq!(stored, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_below_packet_privacy_says_the_ca_may_require_it() {
    // lab-adcs requires privacy and, like a CA with
    // IF_ENFORCEENCRYPTICERTREQUEST, answers E_ACCESSDENIED at integrity.
    let l = lab().await;
    let opts = Options {
        authority_extra: format!(
            "{}      auth-level: integrity\n",
            l.authority("lab", "WebServer", "Passw0rd!")
        ),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (der, _) = csr(&["integrity.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let err = h
        .issue(&account, &["integrity.test"], ChallengeType::Http01, &der)
        .await
        .unwrap_err();
    let instant_acme::Error::Api(problem) = err else {
        panic!("expected a problem: {err:?}")
    };
    let detail = problem.detail.unwrap_or_default();
    assert!(detail.contains("E_ACCESSDENIED"), "{detail}");
    assert!(detail.contains("packet privacy"), "{detail}");
    assert!(detail.contains("auth-level: privacy"), "{detail}");
}
