//! Error paths over raw HTTP with hand-built JWS: every refusal is a problem
//! document of the right type and status, with a fresh nonce.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::raw::{Key, Raw};
use common::{csr, new_order as order, Harness};
use http::{Method, StatusCode};
use serde_json::json;

async fn setup() -> (Harness, Raw) {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    (h, raw)
}

#[tokio::test]
async fn directory_lists_every_resource() {
    let (_h, raw) = setup().await;
    let r = raw
        .send(Method::GET, &raw.url("directory"), None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = r.json();
    for k in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
    ] {
        assert!(d[k].as_str().unwrap().starts_with(&raw.base), "{k}");
    }
    assert_eq!(d["meta"]["externalAccountRequired"], json!(false));
}

#[tokio::test]
async fn new_nonce_head_and_get() {
    let (_h, raw) = setup().await;
    let head = raw
        .send(Method::HEAD, &raw.url("new-nonce"), None, vec![])
        .await;
    assert_eq!(head.status, StatusCode::OK);
    let get = raw
        .send(Method::GET, &raw.url("new-nonce"), None, vec![])
        .await;
    assert_eq!(get.status, StatusCode::NO_CONTENT);
    assert_ne!(head.header("replay-nonce"), get.header("replay-nonce"));
    assert!(get.header("link").unwrap().contains("rel=\"index\""));
    assert_eq!(get.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn account_create_is_idempotent_per_key() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let again = raw.post(&key, None, &raw.url("new-account"), "{}").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.location(), kid);
    let other = Key::generate();
    let r = raw
        .post(
            &other,
            None,
            &raw.url("new-account"),
            r#"{"onlyReturnExisting":true}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.problem_type(), "accountDoesNotExist");
}

#[tokio::test]
async fn bad_nonce_is_refused_with_a_fresh_nonce() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let url = raw.url("new-account");
    let r = raw
        .post_raw(&url, key.jws(None, Some("not-a-real-nonce"), &url, "{}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.problem_type(), "badNonce");
    assert!(r.header("replay-nonce").is_some());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    // A nonce is single use.
    let nonce = raw.nonce().await;
    let first = raw
        .post_raw(&url, key.jws(None, Some(&nonce), &url, "{}"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = raw
        .post_raw(&url, key.jws(None, Some(&nonce), &url, "{}"))
        .await;
    assert_eq!(replay.problem_type(), "badNonce");
    // A missing nonce too.
    let r = raw.post_raw(&url, key.jws(None, None, &url, "{}")).await;
    assert_eq!(r.problem_type(), "badNonce");
}

#[tokio::test]
async fn url_mismatch_is_unauthorized() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let nonce = raw.nonce().await;
    let r = raw
        .post_raw(
            &raw.url("new-account"),
            key.jws(None, Some(&nonce), &raw.url("new-order"), "{}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.problem_type(), "unauthorized");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("does not match"));
}

#[tokio::test]
async fn kid_and_jwk_rules() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-account"), "{}")
        .await;
    assert_eq!(r.problem_type(), "malformed");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("requires a jwk"));
    let r = raw
        .post(
            &key,
            None,
            &raw.url("new-order"),
            r#"{"identifiers":[{"type":"dns","value":"x.test"}]}"#,
        )
        .await;
    assert_eq!(r.problem_type(), "malformed");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("requires a kid"));
    let unknown = format!("{}/acme/acct/doesnotexist", raw.base);
    let r = raw
        .post(&key, Some(&unknown), &raw.url("new-order"), "{}")
        .await;
    assert_eq!(r.problem_type(), "accountDoesNotExist");
}

#[tokio::test]
async fn unsupported_algorithm_is_refused() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let nonce = raw.nonce().await;
    let url = raw.url("new-account");
    let header = json!({"alg": "HS256", "nonce": nonce, "url": url, "jwk": key.jwk()});
    let r = raw.post_raw(&url, key.jws_with_header(&header, "{}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.problem_type(), "badSignatureAlgorithm");
}

#[tokio::test]
async fn bad_signature_and_wrong_content_type() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let other = Key::generate();
    let nonce = raw.nonce().await;
    let url = raw.url("new-account");
    // Signed by `other` but claims `key`'s jwk.
    let header = json!({"alg": "ES256", "nonce": nonce, "url": url, "jwk": key.jwk()});
    let r = raw
        .post_raw(&url, other.jws_with_header(&header, "{}"))
        .await;
    assert_eq!(r.problem_type(), "malformed");
    let r = raw
        .send(
            Method::POST,
            &url,
            Some("application/json"),
            key.jws(None, Some(&raw.nonce().await), &url, "{}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = raw.post_raw(&url, b"not json".to_vec()).await;
    assert_eq!(r.problem_type(), "malformed");
}

#[tokio::test]
async fn get_on_post_as_get_resource_is_405() {
    let (_h, raw) = setup().await;
    let r = raw
        .send(Method::GET, &raw.url("order/whatever"), None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    assert_eq!(r.problem_type(), "malformed");
}

#[tokio::test]
async fn post_as_get_with_payload_is_refused() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (order_url, _) = order(&raw, &key, &kid, &["pag.test"]).await;
    let r = raw.post(&key, Some(&kid), &order_url, "{}").await;
    assert_eq!(r.problem_type(), "malformed");
    let ok = raw.post(&key, Some(&kid), &order_url, "").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["status"], json!("pending"));
}

#[tokio::test]
async fn key_change_conflict_and_success() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let taken = Key::generate();
    let taken_kid = raw.new_account(&taken).await;
    let url = raw.url("key-change");
    let inner_for = |new: &Key| {
        let header = json!({"alg": "ES256", "url": url, "jwk": new.jwk()});
        let payload = json!({"account": kid, "oldKey": key.jwk()}).to_string();
        String::from_utf8(new.jws_with_header(&header, &payload)).unwrap()
    };
    let r = raw.post(&key, Some(&kid), &url, &inner_for(&taken)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.location(), taken_kid);
    let fresh = Key::generate();
    let r = raw.post(&key, Some(&kid), &url, &inner_for(&fresh)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    // The old key no longer authenticates the account; the new one does.
    let r = raw.post(&key, Some(&kid), &kid, "").await;
    assert_eq!(r.problem_type(), "malformed");
    let r = raw.post(&fresh, Some(&kid), &kid, "").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn account_update_and_deactivation() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let r = raw
        .post(
            &key,
            Some(&kid),
            &kid,
            r#"{"contact":["mailto:new@example.com"]}"#,
        )
        .await;
    assert_eq!(r.json()["contact"], json!(["mailto:new@example.com"]));
    let r = raw
        .post(&key, Some(&kid), &kid, r#"{"contact":["tel:123"]}"#)
        .await;
    assert_eq!(r.problem_type(), "unsupportedContact");
    let r = raw
        .post(&key, Some(&kid), &kid, r#"{"status":"deactivated"}"#)
        .await;
    assert_eq!(r.json()["status"], json!("deactivated"));
    let r = raw
        .post(
            &key,
            Some(&kid),
            &raw.url("new-order"),
            r#"{"identifiers":[{"type":"dns","value":"x.test"}]}"#,
        )
        .await;
    // RFC 8555 §7.3.6: a deactivated account's requests are 401.
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.problem_type(), "unauthorized");
}

#[tokio::test]
async fn identifiers_are_checked_with_subproblems() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let body = json!({"identifiers": [
        {"type": "dns", "value": "ok.test"},
        {"type": "dns", "value": "x.denied.test"},
        {"type": "dns", "value": "outside.example"},
    ]});
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &body.to_string())
        .await;
    assert_eq!(r.problem_type(), "rejectedIdentifier");
    let subs = r.json()["subproblems"].as_array().unwrap().clone();
    let by_name = |n: &str| {
        subs.iter()
            .find(|s| s["identifier"]["value"] == json!(n))
            .cloned()
    };
    assert!(by_name("x.denied.test").unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("denied by rule"));
    assert!(by_name("outside.example").unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("not allowed"));
    let r = raw
        .post(
            &key,
            Some(&kid),
            &raw.url("new-order"),
            r#"{"identifiers":[{"type":"ip","value":"127.0.0.1"}]}"#,
        )
        .await;
    assert_eq!(r.problem_type(), "unsupportedIdentifier");
    let r = raw
        .post(
            &key,
            Some(&kid),
            &raw.url("new-order"),
            r#"{"identifiers":[{"type":"dns","value":"bad_name.test"}]}"#,
        )
        .await;
    assert_eq!(r.problem_type(), "rejectedIdentifier");
    assert_eq!(
        r.json()["subproblems"][0]["identifier"]["value"],
        json!("bad_name.test")
    );
    let r = raw
        .post(
            &key,
            Some(&kid),
            &raw.url("new-order"),
            r#"{"identifiers":[]}"#,
        )
        .await;
    assert_eq!(r.problem_type(), "malformed");
}

#[tokio::test]
async fn wildcard_orders_offer_only_dns01() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (_, o) = order(&raw, &key, &kid, &["*.wc.test"]).await;
    let authz_url = o["authorizations"][0].as_str().unwrap().to_string();
    let a = raw.post(&key, Some(&kid), &authz_url, "").await.json();
    assert_eq!(a["wildcard"], json!(true));
    assert_eq!(a["identifier"]["value"], json!("wc.test"));
    let kinds: Vec<_> = a["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("dns-01")]);
}

#[tokio::test]
async fn not_after_beyond_max_validity_is_refused() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let body = json!({"identifiers": [{"type": "dns", "value": "t.test"}], "notAfter": "2099-01-01T00:00:00Z"});
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &body.to_string())
        .await;
    assert_eq!(r.problem_type(), "malformed");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("exceeds the maximum"));
    let body =
        json!({"identifiers": [{"type": "dns", "value": "t.test"}], "notBefore": "yesterday"});
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &body.to_string())
        .await;
    assert!(r.json()["detail"].as_str().unwrap().contains("RFC 3339"));
}

#[tokio::test]
async fn finalize_before_ready_is_order_not_ready() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (_, o) = order(&raw, &key, &kid, &["early.test"]).await;
    let (der, _) = csr(&["early.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(&key, Some(&kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.problem_type(), "orderNotReady");
}

#[tokio::test]
async fn csr_names_must_equal_order_names() {
    let (h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let o = common::ready_order(&h, &raw, &key, &kid, &["csr.test"]).await;
    let (der, _) = csr(&["csr.test", "extra.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(&key, Some(&kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    assert_eq!(r.problem_type(), "badCSR");
    assert!(
        r.json()["detail"].as_str().unwrap().contains("extra.test"),
        "{}",
        r.json()
    );
    // The refusal changed nothing: the order is still ready and finalizes.
    let (der, _) = csr(&["csr.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(&key, Some(&kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert!(["processing", "valid"].contains(&r.json()["status"].as_str().unwrap()));
}

#[tokio::test]
async fn revoke_by_foreign_account_is_unauthorized_and_by_cert_key_works() {
    let (h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let o = common::ready_order(&h, &raw, &key, &kid, &["own.test"]).await;
    let (der, cert_key) = csr(&["own.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(&key, Some(&kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    let order_url = r.location();
    let mut cert_url = None;
    for _ in 0..200 {
        let o = raw.post(&key, Some(&kid), &order_url, "").await.json();
        if let Some(c) = o["certificate"].as_str() {
            cert_url = Some(c.to_string());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let cert = raw.post(&key, Some(&kid), &cert_url.unwrap(), "").await;
    assert_eq!(
        cert.header("content-type").as_deref(),
        Some("application/pem-certificate-chain")
    );
    let leaf = pki::pem_to_der_certs(std::str::from_utf8(&cert.body).unwrap())
        .unwrap()
        .remove(0);
    let revoke = json!({"certificate": acme_wire::b64u_encode(&leaf)}).to_string();
    // Another account may not revoke it.
    let stranger = Key::generate();
    let stranger_kid = raw.new_account(&stranger).await;
    let r = raw
        .post(
            &stranger,
            Some(&stranger_kid),
            &raw.url("revoke-cert"),
            &revoke,
        )
        .await;
    assert_eq!(r.problem_type(), "unauthorized");
    // An unaccepted reason code is refused.
    let bad = json!({"certificate": acme_wire::b64u_encode(&leaf), "reason": 7}).to_string();
    let r = raw
        .post(&key, Some(&kid), &raw.url("revoke-cert"), &bad)
        .await;
    assert_eq!(r.problem_type(), "badRevocationReason");
    // The certificate's own key may (jwk-signed request).
    let pkcs8 = cert_key.serialize_der();
    let ck = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let pt = ring::signature::KeyPair::public_key(&ck).as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": acme_wire::b64u_encode(&pt[1..33]), "y": acme_wire::b64u_encode(&pt[33..65])});
    let url = raw.url("revoke-cert");
    let header = json!({"alg": "ES256", "nonce": raw.nonce().await, "url": url, "jwk": jwk});
    let p = acme_wire::b64u_encode(header.to_string().as_bytes());
    let pl = acme_wire::b64u_encode(revoke.as_bytes());
    let sig = ck
        .sign(
            &ring::rand::SystemRandom::new(),
            format!("{p}.{pl}").as_bytes(),
        )
        .unwrap();
    let body =
        json!({"protected": p, "payload": pl, "signature": acme_wire::b64u_encode(sig.as_ref())})
            .to_string();
    let r = raw.post_raw(&url, body.into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let r = raw
        .post(&key, Some(&kid), &raw.url("revoke-cert"), &revoke)
        .await;
    assert_eq!(r.problem_type(), "alreadyRevoked");
}

#[tokio::test]
async fn orders_list_and_foreign_order_access() {
    let (_h, raw) = setup().await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (order_url, _) = order(&raw, &key, &kid, &["list.test"]).await;
    let acct = raw.post(&key, Some(&kid), &kid, "").await.json();
    let list = raw
        .post(&key, Some(&kid), acct["orders"].as_str().unwrap(), "")
        .await
        .json();
    assert_eq!(list["orders"], json!([order_url]));
    let stranger = Key::generate();
    let skid = raw.new_account(&stranger).await;
    let r = raw.post(&stranger, Some(&skid), &order_url, "").await;
    assert_eq!(r.problem_type(), "unauthorized");
    let r = raw.post(&key, Some(&kid), &raw.url("order/nope"), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_endpoints() {
    let (_h, raw) = setup().await;
    let r = raw
        .send(Method::GET, &format!("{}/healthz", raw.base), None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = raw
        .send(Method::GET, &format!("{}/readyz", raw.base), None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"database": true, "authorities": true, "listener_certificate": true})
    );
    assert!(r.header("x-request-id").is_some());
}
