//! tls-alpn-01 against loopback rustls responders.

mod common;

use certeasy_va::testing::TestDns;
use certeasy_va::{FailureKind, Validator};
use common::*;

const KEY_AUTH: &str = "token.thumbprint";
const ACME_TLS: &[u8] = b"acme-tls/1";

async fn setup(
    names: &[&str],
    extension: Option<rcgen::CustomExtension>,
    alpn: Vec<Vec<u8>>,
) -> (TestDns, TlsResponder, Validator) {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_a("www.test", LOCALHOST);
    let (cert, key) = self_signed(names, extension);
    let tls = TlsResponder::start(server_config(cert, key, alpn)).await;
    let va = Validator::new(profile(&dns, 1, tls.addr.port())).expect("validator");
    (dns, tls, va)
}

fn acme_identifier(key_authorization: &str) -> Option<rcgen::CustomExtension> {
    Some(rcgen::CustomExtension::new_acme_identifier(&sha256(
        key_authorization,
    )))
}

#[tokio::test]
async fn success() {
    let (_dns, tls, va) = setup(
        &["www.test"],
        acme_identifier(KEY_AUTH),
        vec![ACME_TLS.to_vec()],
    )
    .await;
    let record = va.tls_alpn01("www.test", KEY_AUTH).await.expect("valid");
    assert_eq!(record.hostname, "www.test");
    assert_eq!(record.port, Some(tls.addr.port()));
    assert_eq!(record.address_used, Some(LOCALHOST));
    assert_eq!(record.url, None);
}

#[tokio::test]
async fn wrong_digest() {
    let (_dns, _tls, va) = setup(
        &["www.test"],
        acme_identifier("another.key-authorization"),
        vec![ACME_TLS.to_vec()],
    )
    .await;
    let err = va
        .tls_alpn01("www.test", KEY_AUTH)
        .await
        .expect_err("digest");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert!(
        err.detail
            .contains("does not match the SHA-256 of the key authorization"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_alpn() {
    let (_dns, tls, va) = setup(&["www.test"], acme_identifier(KEY_AUTH), vec![]).await;
    let err = va.tls_alpn01("www.test", KEY_AUTH).await.expect_err("alpn");
    assert_eq!(err.kind, FailureKind::Tls);
    assert_eq!(
        err.detail,
        format!(
            "the TLS server at 127.0.0.1:{} for www.test did not negotiate the acme-tls/1 ALPN protocol",
            tls.addr.port()
        )
    );
}

#[tokio::test]
async fn extension_not_critical() {
    let mut ext = rcgen::CustomExtension::new_acme_identifier(&sha256(KEY_AUTH));
    ext.set_criticality(false);
    let (_dns, _tls, va) = setup(&["www.test"], Some(ext), vec![ACME_TLS.to_vec()]).await;
    let err = va
        .tls_alpn01("www.test", KEY_AUTH)
        .await
        .expect_err("critical");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert!(err.detail.contains("not marked critical"), "{err}");
}

#[tokio::test]
async fn extra_san_is_refused() {
    let (_dns, _tls, va) = setup(
        &["www.test", "other.test"],
        acme_identifier(KEY_AUTH),
        vec![ACME_TLS.to_vec()],
    )
    .await;
    let err = va
        .tls_alpn01("www.test", KEY_AUTH)
        .await
        .expect_err("two SANs");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert!(err.detail.contains("exactly one subjectAltName"), "{err}");
}

#[tokio::test]
async fn denied_address_is_not_contacted() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_a("www.test", LOCALHOST);
    let trap = std::net::TcpListener::bind((LOCALHOST, 0)).expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let mut p = profile(&dns, 1, trap.local_addr().expect("addr").port());
    p.ip_policy = policy(&["10.0.0.0/8"], &[]);
    let va = Validator::new(p).expect("validator");
    let err = va
        .tls_alpn01("www.test", KEY_AUTH)
        .await
        .expect_err("denied");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert!(err.detail.contains("127.0.0.1"), "{err}");
    assert_eq!(
        trap.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock)
    );
}

#[tokio::test]
async fn success_over_tls12() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_a("www.test", LOCALHOST);
    let (cert, key) = self_signed(&["www.test"], acme_identifier(KEY_AUTH));
    let config = server_config_versions(
        cert,
        key,
        vec![ACME_TLS.to_vec()],
        &[&rustls::version::TLS12],
    );
    let tls = TlsResponder::start(config).await;
    let va = Validator::new(profile(&dns, 1, tls.addr.port())).expect("validator");
    va.tls_alpn01("www.test", KEY_AUTH)
        .await
        .expect("valid over TLS 1.2");
}

#[tokio::test]
async fn connection_refused() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_a("www.test", LOCALHOST);
    let port = closed_port();
    let va = Validator::new(profile(&dns, 1, port)).expect("validator");
    let err = va
        .tls_alpn01("www.test", KEY_AUTH)
        .await
        .expect_err("refused");
    assert_eq!(err.kind, FailureKind::Connection);
    assert_eq!(
        err.detail,
        format!("connection refused at 127.0.0.1:{port}")
    );
}
