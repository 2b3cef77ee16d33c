//! ARI `replaces`, ACME profiles and external account binding through a
//! third-party client library (instant-acme), and a profile's ADCS
//! template override through lab-adcs (the native bridge).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::lab::lab;
use common::{binding, csr, pem_certs, Harness, Options};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, ExternalAccountKey, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

/// Completes `order` over http-01 and returns the PEM chain.
async fn complete(h: &Harness, order: &mut instant_acme::Order, names: &[&str]) -> String {
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        if a.status == AuthorizationStatus::Valid {
            continue;
        }
        let mut ch = a.challenge(ChallengeType::Http01).unwrap();
        h.tokens.lock().unwrap().insert(
            ch.token.clone(),
            ch.key_authorization().as_str().to_string(),
        );
        ch.set_ready().await.unwrap();
    }
    let retry = RetryPolicy::new().timeout(std::time::Duration::from_secs(20));
    assert_eq!(order.poll_ready(&retry).await.unwrap(), OrderStatus::Ready);
    let (der, _) = csr(names, &rcgen::PKCS_ECDSA_P256_SHA256);
    order.finalize_csr(&der).await.unwrap();
    order.poll_certificate(&retry).await.unwrap()
}

async fn account(
    h: &Harness,
    eab: Option<&ExternalAccountKey>,
) -> Result<Account, instant_acme::Error> {
    let listener_root = h.dir.path().join("work/ca/builtin/root.pem");
    Account::builder_with_root(listener_root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            h.directory(),
            eab,
        )
        .await
        .map(|(a, _)| a)
}

fn lifetime_hours(pem: &str) -> u64 {
    let (not_after, _) = pki::leaf_expiry_and_names(&pem_certs(pem)[0]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    ((not_after - now).whole_minutes() as u64 + 30) / 60
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_binds_orders_a_profile_and_replaces() {
    let h = Harness::start_with(Options {
        extra_sections: "external-account-binding:\n  required: true\nacme-profiles:\n  - name: shortlived\n    description: short\n    policy: test\n    validity: 144h\n".into(),
        ..Options::default()
    })
    .await;
    // Without a binding: refused by the server.
    let err = account(&h, None)
        .await
        .err()
        .expect("an account without EAB");
    assert!(
        format!("{err}").contains("externalAccountRequired")
            || format!("{err:?}").contains("ExternalAccountRequired"),
        "{err:?}"
    );
    let file = h.config_path.clone();
    let key = tokio::task::spawn_blocking(move || {
        certeasy::cli::eab::add(
            &file,
            &certeasy::cli::eab::KeySpec {
                label: "instant-acme".into(),
                ..Default::default()
            },
        )
    })
    .await
    .unwrap()
    .unwrap_or_else(|f| panic!("{}", f.message));
    use base64::Engine;
    let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&key.hmac_key)
        .unwrap();
    let acct = account(&h, Some(&ExternalAccountKey::new(key.kid.clone(), &mac)))
        .await
        .unwrap();

    let names = ["ia.test"];
    h.host("ia.test");
    let ids = [Identifier::Dns("ia.test".into())];
    let mut order = acct
        .new_order(&NewOrder::new(&ids).profile("shortlived"))
        .await
        .unwrap();
    let first = complete(&h, &mut order, &names).await;
    assert_eq!(lifetime_hours(&first), 144);

    // Renew it, naming it in replaces.
    let cert_id = pki::ari_cert_id(&pem_certs(&first)[0]).unwrap();
    let quoted = format!("\"{cert_id}\"");
    let replaces: instant_acme::CertificateIdentifier<'_> = serde_json::from_str(&quoted).unwrap();
    let mut order = acct
        .new_order(&NewOrder::new(&ids).replaces(replaces.clone()))
        .await
        .unwrap();
    let second = complete(&h, &mut order, &names).await;
    assert_ne!(first, second);
    // A second replacement of the same certificate is refused.
    let err = acct
        .new_order(&NewOrder::new(&ids).replaces(replaces))
        .await
        .err()
        .expect("replaced twice");
    assert!(format!("{err:?}").contains("alreadyReplaced"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_submits_its_template_to_the_adcs_authority() {
    let l = lab().await;
    let h = Harness::start_with(Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!"),
        policy_extra: "    csr:\n      allowed-extra-eku: [clientAuth]\n".into(),
        extra_sections: format!(
            "{}acme-profiles:\n  - name: mtls\n    description: server and client\n    policy: test\n    certificate-templates:\n      lab: ClientAuthToo\n",
            binding("lab", "first_available")
        ),
        ..Options::default()
    })
    .await;
    let acct = account(&h, None).await.unwrap();
    h.host("tpl.test");
    h.host("plain.test");
    let ids = [Identifier::Dns("tpl.test".into())];
    let mut order = acct
        .new_order(&NewOrder::new(&ids).profile("mtls"))
        .await
        .unwrap();
    complete(&h, &mut order, &["tpl.test"]).await;
    let ids = [Identifier::Dns("plain.test".into())];
    let mut order = acct.new_order(&NewOrder::new(&ids)).await.unwrap();
    complete(&h, &mut order, &["plain.test"]).await;
    // The CA saw the profile's template for the first, the authority's own
    // for the second.
    let templates: Vec<String> = l
        .lab
        .state()
        .read()
        .unwrap()
        .requests
        .values()
        .map(|r| r.template.clone())
        .collect();
    assert_eq!(templates, ["ClientAuthToo", "WebServer"]);
}
