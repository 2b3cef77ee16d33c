//! External account binding (RFC 8555 §7.3.4) by raw requests, with keys
//! made by `certeasy eab add` against the running server's database: the
//! directory says it is required; an account without a binding, with a
//! wrong MAC, a wrong url, an unknown key or a key used twice is refused;
//! HS256/384/512 bind; the bound account's orders stay inside the key's
//! name scope; a revoked key deactivates its account.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use certeasy::cli::eab::{self, Failure, KeySpec, NewKey};
use common::raw::{Key, Raw, Resp};
use common::{Harness, Options};
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// The CLI's functions, in process (the binary in the shared target
/// directory may be another branch's build); the same code `certeasy eab`
/// runs, minus printing.
async fn add(h: &Harness, spec: KeySpec) -> Result<NewKey, Failure> {
    let file = h.config_path.clone();
    tokio::task::spawn_blocking(move || eab::add(&file, &spec))
        .await
        .unwrap()
}

/// A new key: (kid, raw HMAC key).
async fn add_key(h: &Harness, spec: KeySpec) -> (String, Vec<u8>) {
    let spec = KeySpec {
        label: "test".into(),
        ..spec
    };
    let k = add(h, spec)
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
    (k.kid, URL_SAFE_NO_PAD.decode(k.hmac_key).unwrap())
}

async fn revoke(h: &Harness, kid: &str) -> Result<Option<String>, Failure> {
    let (file, kid) = (h.config_path.clone(), kid.to_string());
    tokio::task::spawn_blocking(move || eab::revoke(&file, &kid))
        .await
        .unwrap()
}

async fn list(h: &Harness) -> String {
    let file = h.config_path.clone();
    let keys = tokio::task::spawn_blocking(move || eab::list(&file))
        .await
        .unwrap()
        .unwrap_or_else(|f| panic!("{}", f.message));
    eab::render_list(&keys, true)
}

fn binding(alg: &str, kid: &str, url: &str, payload: &Value, mac_key: &[u8]) -> Value {
    let ring_alg = match alg {
        "HS256" => ring::hmac::HMAC_SHA256,
        "HS384" => ring::hmac::HMAC_SHA384,
        _ => ring::hmac::HMAC_SHA512,
    };
    let p = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid, "url": url}).to_string());
    let pl = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring_alg, mac_key),
        format!("{p}.{pl}").as_bytes(),
    );
    json!({"protected": p, "payload": pl, "signature": URL_SAFE_NO_PAD.encode(tag.as_ref())})
}

async fn new_account(raw: &Raw, key: &Key, eab: Option<Value>) -> Resp {
    let mut payload = json!({"termsOfServiceAgreed": true});
    if let Some(e) = eab {
        payload["externalAccountBinding"] = e;
    }
    raw.post(key, None, &raw.url("new-account"), &payload.to_string())
        .await
}

async fn order(raw: &Raw, key: &Key, kid: &str, names: &[&str]) -> Resp {
    let ids: Vec<_> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    raw.post(
        key,
        Some(kid),
        &raw.url("new-order"),
        &json!({ "identifiers": ids }).to_string(),
    )
    .await
}

async fn required() -> Harness {
    Harness::start_with(Options {
        extra_sections: "external-account-binding:\n  required: true\n".into(),
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_need_a_valid_unused_binding() {
    let h = required().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let d = raw
        .send(Method::GET, &raw.url("directory"), None, Vec::new())
        .await
        .json();
    assert_eq!(d["meta"]["externalAccountRequired"], json!(true));
    let url = raw.url("new-account");

    let key = Key::generate();
    let r = new_account(&raw, &key, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "externalAccountRequired");

    let (kid, mac) = add_key(&h, KeySpec::default()).await;
    // Wrong MAC.
    let r = new_account(
        &raw,
        &key,
        Some(binding("HS256", &kid, &url, &key.jwk(), b"wrong key")),
    )
    .await;
    assert_eq!(r.problem_type(), "unauthorized", "{}", r.json());
    assert!(r.json()["detail"].as_str().unwrap().contains("MAC"));
    // Unknown key id.
    let r = new_account(
        &raw,
        &key,
        Some(binding("HS256", "nope", &url, &key.jwk(), &mac)),
    )
    .await;
    assert_eq!(r.problem_type(), "unauthorized", "{}", r.json());
    // The url of the binding must be the request's.
    let r = new_account(
        &raw,
        &key,
        Some(binding(
            "HS256",
            &kid,
            "https://elsewhere/acme/new-account",
            &key.jwk(),
            &mac,
        )),
    )
    .await;
    assert_eq!(r.problem_type(), "malformed", "{}", r.json());
    // The payload must be the key that signs the request.
    let other = Key::generate();
    let r = new_account(
        &raw,
        &key,
        Some(binding("HS256", &kid, &url, &other.jwk(), &mac)),
    )
    .await;
    assert_eq!(r.problem_type(), "malformed", "{}", r.json());
    // Nothing of this used the key: it still binds.
    let r = new_account(
        &raw,
        &key,
        Some(binding("HS256", &kid, &url, &key.jwk(), &mac)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    // The same account key again: the existing account, no second binding.
    let r = new_account(&raw, &key, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    // A key binds one account.
    let second = Key::generate();
    let r = new_account(
        &raw,
        &second,
        Some(binding("HS256", &kid, &url, &second.jwk(), &mac)),
    )
    .await;
    assert_eq!(r.problem_type(), "unauthorized", "{}", r.json());
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("already bound"));

    // HS384 and HS512 bind too.
    for alg in ["HS384", "HS512"] {
        let (kid, mac) = add_key(&h, KeySpec::default()).await;
        let k = Key::generate();
        let r = new_account(&raw, &k, Some(binding(alg, &kid, &url, &k.jwk(), &mac))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{alg}: {}", r.json());
    }

    // The list shows the keys, bound or not, never their MAC keys.
    let text = list(&h).await;
    let keys: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 3);
    assert_eq!(keys[0]["status"], json!("bound"));
    assert!(!text.contains(&URL_SAFE_NO_PAD.encode(&mac)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_account_is_held_to_its_keys_scope_and_dies_with_the_key() {
    let h = required().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let url = raw.url("new-account");
    let (kid, mac) = add_key(
        &h,
        KeySpec {
            names: vec![".team.test/2".into()],
            policies: vec!["test".into()],
            ..KeySpec::default()
        },
    )
    .await;
    let key = Key::generate();
    let r = new_account(
        &raw,
        &key,
        Some(binding("HS256", &kid, &url, &key.jwk(), &mac)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let acct = r.location();

    let r = order(&raw, &key, &acct, &["www.team.test"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    // Allowed by the policy, outside the key's scope: refused per name.
    let r = order(&raw, &key, &acct, &["www.team.test", "other.test"]).await;
    assert_eq!(r.problem_type(), "rejectedIdentifier", "{}", r.json());
    let subs = r.json()["subproblems"].as_array().unwrap().clone();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["identifier"]["value"], json!("other.test"));

    // Revoking the key deactivates its account and cancels its pending order.
    let bound = revoke(&h, &kid)
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
    assert_eq!(bound.as_deref(), acct.rsplit('/').next());
    let r = order(&raw, &key, &acct, &["www.team.test"]).await;
    assert_eq!(r.problem_type(), "unauthorized", "{}", r.json());
    // Revoked twice: said so, exit 1.
    let again = revoke(&h, &kid).await.unwrap_err();
    assert_eq!(again.code, 1);
    assert!(
        again.message.contains("already revoked"),
        "{}",
        again.message
    );
    // A revoked key binds nothing.
    let (kid2, mac2) = add_key(&h, KeySpec::default()).await;
    assert_eq!(revoke(&h, &kid2).await.unwrap(), None);
    let k = Key::generate();
    let r = new_account(
        &raw,
        &k,
        Some(binding("HS256", &kid2, &url, &k.jwk(), &mac2)),
    )
    .await;
    assert_eq!(r.problem_type(), "unauthorized", "{}", r.json());
    assert!(r.json()["detail"].as_str().unwrap().contains("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eab_add_refuses_what_the_configuration_does_not_know() {
    let h = required().await;
    let with = |f: fn(&mut KeySpec)| {
        let mut spec = KeySpec {
            label: "x".into(),
            ..KeySpec::default()
        };
        f(&mut spec);
        spec
    };
    for (spec, needle) in [
        (
            with(|s| s.policies = vec!["nope".into()]),
            "no such issuance policy",
        ),
        (
            with(|s| s.profiles = vec!["nope".into()]),
            "no such ACME profile",
        ),
        (with(|s| s.names = vec!["not a rule".into()]), "--names"),
        (with(|s| s.expires = Some("0s".into())), "--expires"),
        (with(|s| s.label = " ".into()), "--label"),
    ] {
        let f = add(&h, spec.clone()).await.unwrap_err();
        assert_eq!(f.code, 2, "{spec:?}");
        assert!(f.message.contains(needle), "{spec:?}: {}", f.message);
    }
    // Key ids never read as command-line options.
    let k = add(&h, with(|_| {})).await.unwrap();
    assert!(k.kid.starts_with("kid-"), "{}", k.kid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_limited_to_a_policy_selects_it_and_skips_a_default_profile_of_another() {
    let h = Harness::start_with(Options {
        policy_extra: "  - name: team\n    dns:\n      allow: [\".team.test/2\"]\n".into(),
        extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [builtin]\n  - policy: team\n    authorities: [builtin]\nacme-profiles:\n  - name: classic\n    policy: test\n    default: true\n  - name: teamonly\n    policy: team\n".into(),
        ..Options::default()
    })
    .await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let url = raw.url("new-account");
    let (kid, mac) = add_key(
        &h,
        KeySpec {
            policies: vec!["team".into()],
            ..KeySpec::default()
        },
    )
    .await;
    let key = Key::generate();
    let r = new_account(
        &raw,
        &key,
        Some(binding("HS256", &kid, &url, &key.jwk(), &mac)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let acct = r.location();
    // Policy `test` (first in the file) and the default profile `classic`
    // would take this name; the key allows only `team`.
    let r = order(&raw, &key, &acct, &["www.team.test"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert!(r.json().get("profile").is_none(), "{}", r.json());
    let stored = h
        .server()
        .ra
        .store
        .order(r.location().rsplit('/').next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.policy, "team");
    // A name only `test` allows: refused, saying which policies the key allows.
    let r = order(&raw, &key, &acct, &["www.other.test"]).await;
    assert_eq!(r.problem_type(), "rejectedIdentifier", "{}", r.json());
    assert!(
        r.json()["detail"].as_str().unwrap().contains("team"),
        "{}",
        r.json()
    );
    // A profile of another policy: unauthorized.
    let ids = json!([{"type": "dns", "value": "www.team.test"}]);
    let r = raw
        .post(
            &key,
            Some(&acct),
            &raw.url("new-order"),
            &json!({"identifiers": ids, "profile": "classic"}).to_string(),
        )
        .await;
    assert_eq!(r.problem_type(), "unauthorized", "{}", r.json());
    let r = raw
        .post(
            &key,
            Some(&acct),
            &raw.url("new-order"),
            &json!({"identifiers": ids, "profile": "teamonly"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(r.json()["profile"], json!("teamonly"));
}
