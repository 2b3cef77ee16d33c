//! ACME Renewal Information (RFC 9773) by raw requests: the renewal-info
//! resource of an issued, a revoked, an unknown and a malformed CertID;
//! early renewal asked by the operator (`certeasy cert renew-early`); and
//! new-order's `replaces` (accepted and shown, foreign account, no shared
//! name, replaced twice).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use certeasy::cli::cert::Selection;
use common::raw::{Key, Raw};
use common::{csr, ready_order, Harness};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Issues a certificate for `names` with the raw client; its leaf DER.
async fn issue(h: &Harness, raw: &Raw, key: &Key, kid: &str, names: &[&str]) -> Vec<u8> {
    let order = ready_order(h, raw, key, kid, names).await;
    let (der, _) = csr(names, &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(key, Some(kid), order["finalize"].as_str().unwrap(), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let mut o = r.json();
    for _ in 0..400 {
        if o["status"] == json!("valid") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        o = raw.post(key, Some(kid), &r.location(), "").await.json();
    }
    let chain = raw
        .post(key, Some(kid), o["certificate"].as_str().unwrap(), "")
        .await;
    let pem = String::from_utf8(chain.body.to_vec()).unwrap();
    common::pem_certs(&pem).remove(0)
}

async fn renew_early(h: &Harness, sel: Selection) -> Result<u64, certeasy::cli::eab::Failure> {
    let file = h.config_path.clone();
    tokio::task::spawn_blocking(move || certeasy::cli::cert::renew_early(&file, &sel))
        .await
        .unwrap()
}

async fn renewal_info(raw: &Raw, cert_id: &str) -> common::raw::Resp {
    raw.send(
        Method::GET,
        &raw.url(&format!("renewal-info/{cert_id}")),
        None,
        Vec::new(),
    )
    .await
}

fn window(v: &Value) -> (OffsetDateTime, OffsetDateTime) {
    let w = &v["suggestedWindow"];
    (
        OffsetDateTime::parse(w["start"].as_str().unwrap(), &Rfc3339).unwrap(),
        OffsetDateTime::parse(w["end"].as_str().unwrap(), &Rfc3339).unwrap(),
    )
}

fn validity(leaf: &[u8]) -> (OffsetDateTime, OffsetDateTime) {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(leaf).unwrap();
    let v = c.tbs_certificate().validity();
    let t = |t: &x509_cert::time::Time| {
        OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap()
    };
    (t(&v.not_before), t(&v.not_after))
}

async fn post_order(
    raw: &Raw,
    key: &Key,
    kid: &str,
    names: &[&str],
    replaces: &str,
) -> common::raw::Resp {
    let ids: Vec<_> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    raw.post(
        key,
        Some(kid),
        &raw.url("new-order"),
        &json!({"identifiers": ids, "replaces": replaces}).to_string(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_info_of_issued_revoked_unknown_and_malformed_cert_ids() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let d = raw
        .send(Method::GET, &raw.url("directory"), None, Vec::new())
        .await
        .json();
    assert_eq!(d["renewalInfo"], json!(raw.url("renewal-info")));

    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let leaf = issue(&h, &raw, &key, &kid, &["ari.test"]).await;
    let cert_id = pki::ari_cert_id(&leaf).unwrap();
    let r = renewal_info(&raw, &cert_id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.header("retry-after").as_deref(), Some("21600"));
    let (start, end) = window(&r.json());
    let (nb, na) = validity(&leaf);
    let lifetime = na - nb;
    // Inside the renewal range: from 2/3 of the lifetime to halfway
    // through what remains, 48 hours wide.
    assert!(
        start >= nb + lifetime * 2 / 3 - time::Duration::seconds(1),
        "{start} {nb} {na}"
    );
    assert!(
        end <= nb + lifetime * 5 / 6 + time::Duration::seconds(1),
        "{end}"
    );
    assert_eq!(end - start, time::Duration::hours(48));
    // Stable: the same window every time.
    assert_eq!(
        window(&renewal_info(&raw, &cert_id).await.json()),
        (start, end)
    );

    // A second certificate of the same lifetime gets another window.
    let other = issue(&h, &raw, &key, &kid, &["ari2.test"]).await;
    let other_w = window(
        &renewal_info(&raw, &pki::ari_cert_id(&other).unwrap())
            .await
            .json(),
    );
    assert_ne!(other_w, (start, end), "two certificates share one window");

    // Revoked: the window is collapsed to now.
    let body = json!({"certificate": acme_wire::b64u_encode(&leaf)}).to_string();
    let r = raw
        .post(&key, Some(&kid), &raw.url("revoke-cert"), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let now = OffsetDateTime::now_utc();
    let (start, end) = window(&renewal_info(&raw, &cert_id).await.json());
    assert!(
        start < end && start <= now && end <= now + time::Duration::seconds(2),
        "{start} {end} {now}"
    );

    // Unknown (a valid form, no such certificate): 404.
    let (aki, _) = cert_id.split_once('.').unwrap();
    let r = renewal_info(&raw, &format!("{aki}.AQID")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json());
    let r = renewal_info(
        &raw,
        &format!("AAAA.{}", cert_id.split_once('.').unwrap().1),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "an AKI of another CA matched"
    );
    // Malformed: 400 malformed.
    for bad in ["nodot", "a.b.c", "AQ.gA", &format!("{cert_id}=")] {
        let r = renewal_info(&raw, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json());
        assert_eq!(r.problem_type(), "malformed", "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_early_moves_the_window_to_now() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let leaf = issue(&h, &raw, &key, &kid, &["early.test"]).await;
    let untouched = issue(&h, &raw, &key, &kid, &["late.test"]).await;
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    // The CLI's function, in process (the binary in the shared target
    // directory may be another branch's build).
    let n = renew_early(
        &h,
        Selection {
            name: Some("early.test".into()),
            ..Selection::default()
        },
    )
    .await
    .unwrap_or_else(|f| panic!("{}", f.message));
    assert_eq!(n, 1);
    let (start, end) = window(
        &renewal_info(&raw, &pki::ari_cert_id(&leaf).unwrap())
            .await
            .json(),
    );
    assert!(
        start >= before && start <= OffsetDateTime::now_utc(),
        "{start}"
    );
    assert_eq!(end - start, time::Duration::hours(48));
    let (start, _) = window(
        &renewal_info(&raw, &pki::ari_cert_id(&untouched).unwrap())
            .await
            .json(),
    );
    assert!(
        start > OffsetDateTime::now_utc() + time::Duration::days(30),
        "{start}"
    );
    // Nothing matches: exit 1, said so.
    let none = renew_early(
        &h,
        Selection {
            serial: Some("01".into()),
            ..Selection::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(none.code, 1, "{}", none.message);
    let bad = renew_early(&h, Selection::default()).await.unwrap_err();
    assert_eq!(bad.code, 2, "{}", bad.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_is_validated_persisted_and_single_use() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let leaf = issue(&h, &raw, &key, &kid, &["old.test", "www.old.test"]).await;
    let cert_id = pki::ari_cert_id(&leaf).unwrap();

    // Another account cannot replace it.
    let stranger = Key::generate();
    let stranger_kid = raw.new_account(&stranger).await;
    let r = post_order(&raw, &stranger, &stranger_kid, &["old.test"], &cert_id).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(r.problem_type(), "unauthorized");
    // An order sharing no name with it cannot.
    let r = post_order(&raw, &key, &kid, &["new.test"], &cert_id).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "malformed");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("shares no identifier"));
    // Unknown and malformed CertIDs.
    let (aki, _) = cert_id.split_once('.').unwrap();
    let r = post_order(&raw, &key, &kid, &["old.test"], &format!("{aki}.AQID")).await;
    assert_eq!(r.problem_type(), "malformed", "{}", r.json());
    let r = post_order(&raw, &key, &kid, &["old.test"], "not-a-cert-id").await;
    assert_eq!(r.problem_type(), "malformed", "{}", r.json());

    // Sharing one name is enough; the order shows what it replaces.
    let r = post_order(&raw, &key, &kid, &["old.test", "more.test"], &cert_id).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(r.json()["replaces"], json!(cert_id));
    let order_url = r.location();
    let again = raw.post(&key, Some(&kid), &order_url, "").await.json();
    assert_eq!(again["replaces"], json!(cert_id));

    // Replaced twice: alreadyReplaced (409).
    let r = post_order(&raw, &key, &kid, &["old.test"], &cert_id).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json());
    assert_eq!(r.problem_type(), "alreadyReplaced");

    // Once the replacing order is invalid (its authorization deactivated),
    // another order may replace the certificate.
    let authz = again["authorizations"][0].as_str().unwrap();
    let r = raw
        .post(&key, Some(&kid), authz, r#"{"status":"deactivated"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let r = post_order(&raw, &key, &kid, &["old.test"], &cert_id).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}
