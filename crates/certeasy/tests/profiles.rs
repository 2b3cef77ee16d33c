//! ACME profiles (draft-ietf-acme-profiles) and the directory's `meta`
//! by raw requests: `meta.profiles`, `termsOfService`, `website`,
//! `caaIdentities` shown when configured and absent otherwise; `profile`
//! in new-order validated, stored and shown; the default profile; the
//! certificate reflects its profile (validity, EKUs); configuration
//! errors name the key and the line.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::raw::{Key, Raw, Resp};
use common::{answer_http01, csr, Harness, Options};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const PROFILES: &str = r#"acme-profiles:
  - name: shortlived
    description: "6-day certificates"
    policy: test
    validity: 144h
  - name: classic
    description: "90-day certificates"
    policy: test
    default: true
  - name: client
    description: "serverAuth and clientAuth"
    policy: test
    extra-eku: [clientAuth]
"#;

const META: &str = "  meta:\n    terms-of-service: https://example.com/tos\n    website: https://example.com/acme\n    caa-identities: [ca.example.com]\n";

async fn with_profiles() -> Harness {
    Harness::start_with(Options {
        extra_sections: PROFILES.into(),
        policy_extra: "    csr:\n      allowed-extra-eku: [clientAuth]\n".into(),
        server_extra: META.into(),
        ..Options::default()
    })
    .await
}

async fn directory(raw: &Raw) -> Value {
    raw.send(Method::GET, &raw.url("directory"), None, Vec::new())
        .await
        .json()
}

async fn new_order(raw: &Raw, key: &Key, kid: &str, name: &str, profile: Option<&str>) -> Resp {
    let mut payload = json!({"identifiers": [{"type": "dns", "value": name}]});
    if let Some(p) = profile {
        payload["profile"] = json!(p);
    }
    raw.post(key, Some(kid), &raw.url("new-order"), &payload.to_string())
        .await
}

/// Completes an order created by `created`; the leaf DER.
async fn complete(
    h: &Harness,
    raw: &Raw,
    key: &Key,
    kid: &str,
    created: Resp,
    name: &str,
) -> Vec<u8> {
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
    let url = created.location();
    let order = created.json();
    for a in order["authorizations"].as_array().unwrap() {
        let r = answer_http01(h, raw, key, kid, a.as_str().unwrap(), true).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    }
    let mut o = order;
    for _ in 0..400 {
        o = raw.post(key, Some(kid), &url, "").await.json();
        if o["status"] != json!("pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(o["status"], json!("ready"), "{o}");
    let (der, _) = csr(&[name], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(key, Some(kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    for _ in 0..400 {
        o = raw.post(key, Some(kid), &url, "").await.json();
        if o["status"] == json!("valid") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pem = raw
        .post(key, Some(kid), o["certificate"].as_str().unwrap(), "")
        .await;
    common::pem_certs(std::str::from_utf8(&pem.body).unwrap()).remove(0)
}

fn lifetime_hours(leaf: &[u8]) -> u64 {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(leaf).unwrap();
    let v = c.tbs_certificate().validity();
    (v.not_after.to_unix_duration() - v.not_before.to_unix_duration()).as_secs() / 3600
}

fn ekus(leaf: &[u8]) -> Vec<String> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(leaf).unwrap();
    let ext = c
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.37")
        .unwrap()
        .clone();
    x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .unwrap()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_shows_profiles_and_meta_only_when_configured() {
    let h = with_profiles().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let meta = directory(&raw).await["meta"].clone();
    assert_eq!(
        meta["profiles"],
        json!({"shortlived": "6-day certificates", "classic": "90-day certificates", "client": "serverAuth and clientAuth"})
    );
    assert_eq!(meta["termsOfService"], json!("https://example.com/tos"));
    assert_eq!(meta["website"], json!("https://example.com/acme"));
    assert_eq!(meta["caaIdentities"], json!(["ca.example.com"]));
    assert_eq!(meta["externalAccountRequired"], json!(false));

    let plain = Harness::start().await;
    let raw = Raw::new(plain.server().addr, &plain.base(), &plain.root_pem());
    let meta = directory(&raw).await["meta"].clone();
    for absent in ["profiles", "termsOfService", "website", "caaIdentities"] {
        assert!(meta.get(absent).is_none(), "{absent} shown: {meta}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_reflects_the_profile_asked_for_or_the_default() {
    let h = with_profiles().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;

    let r = new_order(&raw, &key, &kid, "short.test", Some("shortlived")).await;
    assert_eq!(r.json()["profile"], json!("shortlived"));
    let leaf = complete(&h, &raw, &key, &kid, r, "short.test").await;
    assert_eq!(lifetime_hours(&leaf), 144);

    // None asked: the default profile, shown on the order.
    let r = new_order(&raw, &key, &kid, "default.test", None).await;
    assert_eq!(r.json()["profile"], json!("classic"));
    let leaf = complete(&h, &raw, &key, &kid, r, "default.test").await;
    assert_eq!(lifetime_hours(&leaf), 90 * 24);
    assert_eq!(ekus(&leaf), ["1.3.6.1.5.5.7.3.1"]);

    // The client profile grants clientAuth though the CSR does not ask.
    let r = new_order(&raw, &key, &kid, "client.test", Some("client")).await;
    let leaf = complete(&h, &raw, &key, &kid, r, "client.test").await;
    assert_eq!(ekus(&leaf), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);

    // Unknown: invalidProfile, naming what is offered.
    let r = new_order(&raw, &key, &kid, "x.test", Some("longlived")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "invalidProfile");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("shortlived, classic, client"), "{detail}");
    // A name the profile's policy does not allow.
    let r = new_order(&raw, &key, &kid, "x.denied.test", Some("shortlived")).await;
    assert_eq!(r.problem_type(), "rejectedIdentifier", "{}", r.json());
    assert!(r.json()["detail"].as_str().unwrap().contains("shortlived"));
}

#[tokio::test]
async fn without_profiles_any_profile_is_invalid() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let r = new_order(&raw, &key, &kid, "a.test", Some("shortlived")).await;
    assert_eq!(r.problem_type(), "invalidProfile", "{}", r.json());
    let r = new_order(&raw, &key, &kid, "a.test", None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json().get("profile").is_none());
}

#[test]
fn profile_and_meta_errors_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::config_text(
        dir.path(),
        8443,
        "127.0.0.1:53".parse().unwrap(),
        80,
        443,
        &Options::default(),
    );
    let cases = [
        (
            "acme-profiles:\n  - name: a\n    policy: nope\n",
            "acme-profiles[0].policy",
            "unknown issuance policy",
        ),
        (
            "acme-profiles:\n  - name: a\n    policy: test\n    extra-eku: [clientAuth]\n",
            "acme-profiles[0].extra-eku[0]",
            "allowed-extra-eku",
        ),
        (
            "acme-profiles:\n  - name: a\n    policy: test\n    validity: 400d\n",
            "acme-profiles[0].validity",
            "max-validity",
        ),
        (
            "acme-profiles:\n  - name: a\n    policy: test\n    certificate-templates:\n      builtin: WebServer\n",
            "acme-profiles[0].certificate-templates.builtin",
            "no certificate templates",
        ),
        (
            "acme-profiles:\n  - name: a\n    policy: test\n    default: true\n  - name: b\n    policy: test\n    default: true\n",
            "acme-profiles[1].default",
            "only one profile",
        ),
        (
            "acme-profiles:\n  - name: \"bad name\"\n    policy: test\n",
            "acme-profiles[0].name",
            "not a profile name",
        ),
        (
            "renewal-info:\n  lifetime-fraction: \"3/2\"\n",
            "renewal-info.lifetime-fraction",
            "strictly between 0 and 1",
        ),
        (
            "renewal-info:\n  window-width: 0s\n",
            "renewal-info.window-width",
            "explicit zero",
        ),
        (
            "external-account-binding:\n  required: yes-please\n",
            "external-account-binding.required",
            "",
        ),
    ];
    for (extra, key, needle) in cases {
        let text = format!("{base}{extra}");
        let path = dir.path().join("c.yml");
        std::fs::write(&path, &text).unwrap();
        let err = certeasy::config::load(&path).unwrap_err();
        let issue = err
            .issues
            .iter()
            .find(|i| i.path == key)
            .unwrap_or_else(|| panic!("{key}: {err}"));
        assert!(issue.message.contains(needle), "{key}: {}", issue.message);
        let line = issue.line.unwrap_or_else(|| panic!("{key}: no line"));
        let leaf = key.rsplit('.').next().unwrap().split('[').next().unwrap();
        assert!(
            text.lines().nth(line - 1).unwrap().contains(leaf),
            "{key}: line {line} is {:?}",
            text.lines().nth(line - 1)
        );
    }
    // server.meta
    let text = base.replace(
        "  listen:",
        "  meta:\n    website: \"ftp://x\"\n    caa-identities: [\"CA.Example.com\"]\n  listen:",
    );
    let path = dir.path().join("m.yml");
    std::fs::write(&path, &text).unwrap();
    let err = certeasy::config::load(&path).unwrap_err().to_string();
    assert!(err.contains("server.meta.website"), "{err}");
    assert!(err.contains("server.meta.caa-identities[0]"), "{err}");
}
