//! `revocation-status`: the built-in CA's CRL and OCSP responder over
//! plain HTTP, driven by a real revocation through the ACME API.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;

use common::plain::{get, request};
use common::{binding, csr, pem_certs, Harness, Options};
use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use instant_acme::{ChallengeType, RevocationReason, RevocationRequest};
use pki::ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, Request, ResponseStatus,
    TbsRequest,
};
use rustls::pki_types::CertificateDer;
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

const BASE: &str = "http://status.test:8080";

fn options() -> Options {
    Options {
        authority_extra: "  - name: ca2\n    type: builtin\n    configuration:\n      common-name: \"ca2 CA\"\n      password: \"pw\"\n      intermediate: true\n".into(),
        extra_sections: binding("ca2", "first_available")
            + &format!("revocation-status:\n  listen: \"127.0.0.1:0\"\n  base-url: \"{BASE}/\"\n"),
        ..Options::default()
    }
}

fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// The CertID of `leaf` issued by `issuer` (SHA-1, as openssl sends it).
fn cert_id(leaf: &[u8], issuer: &[u8]) -> CertId {
    let issuer = Certificate::from_der(issuer).unwrap();
    let leaf = Certificate::from_der(leaf).unwrap();
    let tbs = issuer.tbs_certificate();
    CertId {
        hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: pki::ocsp::SHA1,
            parameters: Some(der::Any::from(Null)),
        },
        issuer_name_hash: OctetString::new(sha1(&tbs.subject().to_der().unwrap())).unwrap(),
        issuer_key_hash: OctetString::new(sha1(
            tbs.subject_public_key_info().subject_public_key.raw_bytes(),
        ))
        .unwrap(),
        serial_number: leaf.tbs_certificate().serial_number().clone(),
    }
}

fn ocsp_request(id: CertId, nonce: Option<&[u8]>) -> Vec<u8> {
    OcspRequest {
        tbs_request: TbsRequest {
            version: None,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions: nonce.map(|n| {
                vec![x509_cert::ext::Extension {
                    extn_id: pki::ocsp::OCSP_NONCE,
                    critical: false,
                    extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap())
                        .unwrap(),
                }]
            }),
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

/// POSTs an OCSP request and returns the basic response, its signature
/// checked with the issuer's key.
async fn ocsp_post(addr: SocketAddr, req: &[u8], issuer: &[u8]) -> BasicOcspResponse {
    let r = request(addr, "POST", "/ocsp", Some("application/ocsp-request"), req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/ocsp-response");
    basic(&r.body, issuer)
}

fn basic(body: &[u8], issuer: &[u8]) -> BasicOcspResponse {
    let resp = OcspResponse::from_der(body).unwrap();
    assert_eq!(resp.response_status, ResponseStatus::Successful);
    let basic =
        BasicOcspResponse::from_der(resp.response_bytes.unwrap().response.as_bytes()).unwrap();
    verify(
        issuer,
        &basic.tbs_response_data.to_der().unwrap(),
        basic.signature.raw_bytes(),
    );
    basic
}

fn verify(issuer: &[u8], msg: &[u8], sig: &[u8]) {
    let issuer = Certificate::from_der(issuer).unwrap();
    let key = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(msg, sig)
        .expect("signed by the issuing CA");
}

fn error_status(body: &[u8]) -> ResponseStatus {
    let resp = OcspResponse::from_der(body).unwrap();
    assert!(resp.response_bytes.is_none());
    resp.response_status
}

fn uri_in(der: &[u8], uri: &str) -> bool {
    der.windows(uri.len()).any(|w| w == uri.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_and_the_crl_show_a_revocation_at_once() {
    let h = Harness::start_with(options()).await;
    let addr = h.server().revocation_status_addr.unwrap();
    let account = h.account().await;
    let (der, _) = csr(&["status.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &["status.test"], ChallengeType::Http01, &der)
        .await
        .unwrap();
    let certs = pem_certs(&pem);
    let (leaf, issuer) = (&certs[0], &certs[1]);
    // The certificate says where its status is.
    assert!(uri_in(leaf, &format!("{BASE}/crl/ca2.crl")));
    assert!(uri_in(leaf, &format!("{BASE}/ocsp")));

    // Before: good, and the CRL (number 1) lists nothing.
    let id = cert_id(leaf, issuer);
    let b = ocsp_post(
        addr,
        &ocsp_request(id.clone(), Some(b"nonce-1234567890")),
        issuer,
    )
    .await;
    let single = &b.tbs_response_data.responses[0];
    assert_eq!(single.cert_id, id);
    assert_eq!(single.cert_status, CertStatus::Good(Null));
    assert!(single.next_update.is_some());
    let nonce = &b.tbs_response_data.response_extensions.as_ref().unwrap()[0];
    assert_eq!(nonce.extn_id, pki::ocsp::OCSP_NONCE);
    assert!(uri_in(nonce.extn_value.as_bytes(), "nonce-1234567890"));
    let crl = get(addr, "/crl/ca2.crl").await;
    assert_eq!(
        (crl.status, crl.content_type.as_str()),
        (200, "application/pkix-crl")
    );
    let list: CertificateList = CertificateList::from_der(&crl.body).unwrap();
    verify(
        issuer,
        &list.tbs_cert_list.to_der().unwrap(),
        list.signature.raw_bytes(),
    );
    assert!(list.tbs_cert_list.revoked_certificates.is_none());
    assert!(list.tbs_cert_list.next_update.is_some());
    let number = |l: &CertificateList| {
        l.tbs_cert_list
            .crl_extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == der::oid::ObjectIdentifier::new_unwrap("2.5.29.20"))
            .unwrap()
            .extn_value
            .as_bytes()
            .to_vec()
    };
    assert_eq!(number(&list), [0x02, 0x01, 0x01]);
    // Served again unchanged while nothing changed.
    assert_eq!(get(addr, "/crl/ca2.crl").await.body, crl.body);

    // Revoked through ACME: both show it at once.
    account
        .revoke(&RevocationRequest {
            certificate: &CertificateDer::from(leaf.clone()),
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .unwrap();
    // The revoke job rebuilt the CRL right away (not at the next fetch).
    let stored = h.server().ra.store.crl("ca2").await.unwrap().unwrap();
    assert_eq!((stored.number, stored.stale), (2, 0));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(ocsp_request(id.clone(), None));
    let r = get(
        addr,
        &format!("/ocsp/{}", b64.replace('/', "%2F").replace('+', "%2B")),
    )
    .await;
    assert_eq!(r.status, 200);
    let b = basic(&r.body, issuer);
    assert!(
        b.tbs_response_data.response_extensions.is_none(),
        "no nonce asked, none sent"
    );
    match &b.tbs_response_data.responses[0].cert_status {
        CertStatus::Revoked(info) => assert_eq!(
            info.revocation_reason,
            Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
        ),
        other => panic!("not revoked: {other:?}"),
    }
    let crl = get(addr, "/crl/ca2.crl").await;
    let list: CertificateList = CertificateList::from_der(&crl.body).unwrap();
    verify(
        issuer,
        &list.tbs_cert_list.to_der().unwrap(),
        list.signature.raw_bytes(),
    );
    assert_eq!(
        number(&list),
        [0x02, 0x01, 0x02],
        "a new CRL, numbered higher"
    );
    let revoked = list.tbs_cert_list.revoked_certificates.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].serial_number,
        *Certificate::from_der(leaf)
            .unwrap()
            .tbs_certificate()
            .serial_number()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_answers_unknown_unauthorized_and_malformed_precisely() {
    let h = Harness::start_with(options()).await;
    let addr = h.server().revocation_status_addr.unwrap();
    let account = h.account().await;
    let (der, _) = csr(&["known.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &["known.test"], ChallengeType::Http01, &der)
        .await
        .unwrap();
    let certs = pem_certs(&pem);
    let (leaf, issuer) = (&certs[0], &certs[1]);

    // A serial this CA never issued: unknown.
    let mut id = cert_id(leaf, issuer);
    id.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x42, 0x42]).unwrap();
    let b = ocsp_post(addr, &ocsp_request(id, None), issuer).await;
    assert_eq!(
        b.tbs_response_data.responses[0].cert_status,
        CertStatus::Unknown(Null)
    );
    // An issuer that is none of this server's built-in CAs (the hashes
    // of the leaf itself): unauthorized.
    let r = request(
        addr,
        "POST",
        "/ocsp",
        Some("application/ocsp-request"),
        &ocsp_request(cert_id(leaf, leaf), None),
    )
    .await;
    assert_eq!(error_status(&r.body), ResponseStatus::Unauthorized);
    // Not DER, bad base64, wrong media type.
    let r = request(
        addr,
        "POST",
        "/ocsp",
        Some("application/ocsp-request"),
        b"hello",
    )
    .await;
    assert_eq!(error_status(&r.body), ResponseStatus::MalformedRequest);
    let r = get(addr, "/ocsp/!!!").await;
    assert_eq!(error_status(&r.body), ResponseStatus::MalformedRequest);
    let r = request(addr, "POST", "/ocsp", Some("text/plain"), b"x").await;
    assert_eq!(r.status, 415);
    // CRLs exist for built-in CAs only.
    assert_eq!(get(addr, "/crl/nope.crl").await.status, 404);
    assert_eq!(get(addr, "/crl/ca2").await.status, 404);
    assert_eq!(get(addr, "/crl/builtin.crl").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_revocation_status_no_listener_and_no_urls_in_certificates() {
    let h = Harness::start_with(Options {
        authority_extra: options().authority_extra,
        extra_sections: binding("ca2", "first_available"),
        ..Options::default()
    })
    .await;
    assert!(h.server().revocation_status_addr.is_none());
    let account = h.account().await;
    let (der, _) = csr(&["plain.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(&account, &["plain.test"], ChallengeType::Http01, &der)
        .await
        .unwrap();
    let leaf = Certificate::from_der(&pem_certs(&pem)[0]).unwrap();
    let exts = leaf.tbs_certificate().extensions().unwrap();
    for oid in ["2.5.29.31", "1.3.6.1.5.5.7.1.1"] {
        let oid = der::oid::ObjectIdentifier::new_unwrap(oid);
        assert!(exts.iter().all(|e| e.extn_id != oid), "{oid} present");
    }
}
