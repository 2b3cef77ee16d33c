#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::ari::{ari_cert_id, parse_ari_cert_id};
use crate::certs::{pem_chain, serial_hex_of_cert, spki_of_cert};
use crate::csr::check_csr;
use crate::issued::{check_issued, check_issued_for_csr, IssuedRefusal};
use crate::policy::CsrPolicy;
use crate::testing::{names, CsrBuilder, TestKey, TestKeyType};

const PW: &[u8] = b"correct horse battery staple";
const DAY: Duration = Duration::from_secs(86_400);

fn window(days: i64) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let nb = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    (nb, nb + time::Duration::days(days))
}

fn round_trip(key_type: CaKeyType, with_intermediate: bool) {
    let files = generate_ca("certeasy Test CA", key_type, with_intermediate, PW).unwrap();
    assert!(files
        .root_key_pem
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_eq!(files.intermediate_cert_pem.is_some(), with_intermediate);
    assert_eq!(files.intermediate_key_pem.is_some(), with_intermediate);
    if let Some(k) = &files.intermediate_key_pem {
        assert!(k.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    }
    let ca = BuiltinCa::load(&files, PW).unwrap();
    assert_eq!(ca.root_cert_pem(), files.root_cert_pem);

    // Issue for every leaf key type, through the CSR model.
    let order = names(&["www.example.com", "example.com", "*.example.com"]);
    for leaf_type in [
        TestKeyType::P256,
        TestKeyType::Ed25519,
        TestKeyType::Rsa3072,
    ] {
        let key = TestKey::new(leaf_type);
        let csr = CsrBuilder::new(&key)
            .san(&["www.example.com", "example.com", "*.example.com"])
            .build();
        let approved = check_csr(&csr, &order, &CsrPolicy::default()).unwrap();
        let (nb, na) = window(90);
        let issued = ca
            .issue(&approved.spki_der, &approved.names, nb, na)
            .unwrap();
        let info =
            check_issued_for_csr(&issued.leaf_der, &approved, &CsrPolicy::default(), 90 * DAY)
                .unwrap();
        assert_eq!(info.not_before, nb);
        assert_eq!(info.not_after, na);
        assert_eq!(info.serial_hex.len(), 32, "{}", info.serial_hex);
        assert_eq!(info.spki_der, key.spki_der());
        assert_eq!(
            serial_hex_of_cert(&issued.leaf_der).unwrap(),
            info.serial_hex
        );
        assert_eq!(spki_of_cert(&issued.leaf_der).unwrap(), key.spki_der());
        // Lifetime one second shorter than issued is refused.
        assert!(matches!(
            check_issued(
                &issued.leaf_der,
                &order,
                &CsrPolicy::default(),
                90 * DAY - Duration::from_secs(1)
            ),
            Err(IssuedRefusal::Lifetime(_))
        ));

        // Chain.
        assert_eq!(issued.chain_der.len(), 1);
        crate::issued::chain_links(&issued.leaf_der, &issued.chain_der).unwrap();
        let root_der = ca.root_cert_der().to_vec();
        if with_intermediate {
            assert_ne!(issued.chain_der[0], root_der);
            let mut full = issued.chain_der.clone();
            full.push(root_der.clone());
            crate::issued::chain_links(&issued.leaf_der, &full).unwrap();
            // The leaf is not signed by the root directly.
            assert!(
                crate::issued::chain_links(&issued.leaf_der, std::slice::from_ref(&root_der))
                    .is_err()
            );
        } else {
            assert_eq!(issued.chain_der[0], root_der);
        }
        assert_eq!(ca.issuer_cert_der(), issued.chain_der[0].as_slice());

        // AKI = issuer SKI, and ARI CertID round trip.
        let aki = info.aki.clone().unwrap();
        let id = ari_cert_id(&issued.leaf_der).unwrap();
        let (aki2, serial) = parse_ari_cert_id(&id).unwrap();
        assert_eq!(aki2, aki);
        assert_eq!(crate::certs::serial_hex(&serial), info.serial_hex);

        // PEM chain: leaf first, then the chain.
        let pem = pem_chain(&issued.leaf_der, &issued.chain_der);
        let ders = crate::certs::pem_to_der_certs(&pem).unwrap();
        assert_eq!(ders[0], issued.leaf_der);
        assert_eq!(ders[1..], issued.chain_der[..]);
        assert_eq!(
            crate::certs::pem_to_der_certs(&ca.chain_pem()).unwrap(),
            issued.chain_der
        );
    }
}

#[test]
fn round_trip_p256() {
    round_trip(CaKeyType::EcdsaP256, false);
}

#[test]
fn round_trip_p256_intermediate() {
    round_trip(CaKeyType::EcdsaP256, true);
}

#[test]
fn round_trip_p384() {
    round_trip(CaKeyType::EcdsaP384, false);
}

#[test]
fn round_trip_p384_intermediate() {
    round_trip(CaKeyType::EcdsaP384, true);
}

#[test]
fn round_trip_rsa() {
    round_trip(CaKeyType::Rsa { bits: 2048 }, false);
}

#[test]
fn round_trip_rsa_intermediate() {
    round_trip(CaKeyType::Rsa { bits: 2048 }, true);
}

#[test]
fn invalid_requests() {
    assert!(matches!(
        generate_ca("", CaKeyType::EcdsaP256, false, PW),
        Err(CaError::Invalid(_))
    ));
    assert!(matches!(
        generate_ca(&"x".repeat(65), CaKeyType::EcdsaP256, false, PW),
        Err(CaError::Invalid(_))
    ));
    assert!(matches!(
        generate_ca("CA", CaKeyType::EcdsaP256, false, b""),
        Err(CaError::Invalid(_))
    ));
    assert!(matches!(
        generate_ca("CA", CaKeyType::Rsa { bits: 1024 }, false, PW),
        Err(CaError::Invalid(_))
    ));
    assert!(matches!(
        generate_ca("CA", CaKeyType::Rsa { bits: 8192 }, false, PW),
        Err(CaError::Invalid(_))
    ));
    // Long CN: intermediate name still fits.
    let files = generate_ca(&"c".repeat(64), CaKeyType::EcdsaP256, true, PW).unwrap();
    BuiltinCa::load(&files, PW).unwrap();
}

#[test]
fn wrong_password() {
    let files = generate_ca("CA", CaKeyType::EcdsaP256, true, PW).unwrap();
    assert_eq!(
        BuiltinCa::load(&files, b"wrong").unwrap_err(),
        CaError::WrongPassword
    );
    assert_eq!(
        BuiltinCa::load(&files, b"").unwrap_err(),
        CaError::WrongPassword
    );
}

#[test]
fn corrupt_material() {
    let files = generate_ca("CA", CaKeyType::EcdsaP256, true, PW).unwrap();
    let corrupt = |f: CaFiles| match BuiltinCa::load(&f, PW) {
        Err(CaError::Corrupt { what }) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    let mut f = files.clone();
    f.root_cert_pem = "garbage".into();
    assert!(corrupt(f).contains("root certificate"));
    let mut f = files.clone();
    f.root_cert_pem = f.root_cert_pem.replacen("MII", "MIX", 1);
    assert!(corrupt(f).contains("root certificate"));
    let mut f = files.clone();
    f.root_key_pem =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into();
    assert!(corrupt(f).contains("root key"));
    let mut f = files.clone();
    f.root_key_pem = f
        .root_key_pem
        .replace("ENCRYPTED PRIVATE KEY", "PRIVATE KEY");
    assert!(corrupt(f).contains("root key"));
    let mut f = files.clone();
    f.intermediate_key_pem = None;
    assert!(corrupt(f).contains("both be present"));
    let mut f = files.clone();
    f.root_cert_pem = format!("{}{}", f.root_cert_pem, f.root_cert_pem);
    assert!(corrupt(f).contains("more than one"));
    // An issuer that is not a CA.
    let key = TestKey::new(TestKeyType::P256);
    let ca = BuiltinCa::load(&files, PW).unwrap();
    let (nb, na) = window(1);
    let leaf = ca
        .issue(key.spki_der(), &names(&["example.com"]), nb, na)
        .unwrap();
    let mut f = files.clone();
    f.intermediate_cert_pem = Some(crate::certs::pem_encode("CERTIFICATE", &leaf.leaf_der));
    assert!(corrupt(f).contains("not a CA"));
}

#[test]
fn mismatched_material() {
    let a = generate_ca("CA A", CaKeyType::EcdsaP256, true, PW).unwrap();
    let b = generate_ca("CA B", CaKeyType::EcdsaP256, true, PW).unwrap();
    let mismatch = |f: CaFiles| match BuiltinCa::load(&f, PW) {
        Err(CaError::Mismatch { what }) => what,
        other => panic!("expected Mismatch, got {other:?}"),
    };
    // Root cert with another CA's key.
    let mut f = a.clone();
    f.root_key_pem = b.root_key_pem.clone();
    assert!(mismatch(f).contains("root key does not match"));
    // Intermediate key from elsewhere.
    let mut f = a.clone();
    f.intermediate_key_pem = b.intermediate_key_pem.clone();
    assert!(mismatch(f).contains("intermediate key does not match"));
    // Intermediate (with its key) not signed by this root.
    let mut f = a.clone();
    f.intermediate_cert_pem = b.intermediate_cert_pem.clone();
    f.intermediate_key_pem = b.intermediate_key_pem.clone();
    assert!(mismatch(f).contains("not signed by the root"));
    // Key of another algorithm.
    let r = generate_ca("CA R", CaKeyType::EcdsaP384, false, PW).unwrap();
    let mut f = a.clone();
    f.root_key_pem = r.root_key_pem;
    assert!(mismatch(f).contains("root key does not match"));
}

#[test]
fn leaf_shape() {
    use der::Decode;
    use x509_cert::Certificate;
    let files = generate_ca("CA", CaKeyType::EcdsaP256, false, PW).unwrap();
    let ca = BuiltinCa::load(&files, PW).unwrap();
    let key = TestKey::new(TestKeyType::Rsa3072);
    let (nb, na) = window(30);
    let long = format!("{}.example.com", "a".repeat(60));
    let issued = ca
        .issue(key.spki_der(), &names(&[&long, "example.com"]), nb, na)
        .unwrap();
    let cert = Certificate::from_der(&issued.leaf_der).unwrap();
    // First name longer than 64 characters: empty subject.
    assert!(cert.tbs_certificate().subject().is_empty());
    let exts = cert.tbs_certificate().extensions().unwrap();
    let ids: Vec<_> = exts.iter().map(|e| e.extn_id).collect();
    for want in [
        oids::SUBJECT_ALT_NAME,
        oids::EXT_KEY_USAGE,
        oids::KEY_USAGE,
        oids::BASIC_CONSTRAINTS,
        oids::AUTHORITY_KEY_IDENTIFIER,
        oids::SUBJECT_KEY_IDENTIFIER,
    ] {
        assert!(ids.contains(&want), "missing {want}");
    }
    let bc = exts
        .iter()
        .find(|e| e.extn_id == oids::BASIC_CONSTRAINTS)
        .unwrap();
    assert!(bc.critical);
    let ku = exts.iter().find(|e| e.extn_id == oids::KEY_USAGE).unwrap();
    let ku = x509_cert::ext::pkix::KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap();
    assert!(ku.digital_signature() && ku.key_encipherment());
    let serial = cert.tbs_certificate().serial_number().as_bytes();
    assert_eq!(serial.len(), 16);
    assert!(serial[0] & 0x80 == 0 && serial[0] != 0);

    // Short first name: CN = first name; EC key: no keyEncipherment.
    let key = TestKey::new(TestKeyType::P256);
    let issued = ca
        .issue(key.spki_der(), &names(&["www.example.com"]), nb, na)
        .unwrap();
    let cert = Certificate::from_der(&issued.leaf_der).unwrap();
    let cn = cert
        .tbs_certificate()
        .subject()
        .common_name()
        .unwrap()
        .unwrap();
    assert_eq!(cn.value(), "www.example.com");
    let exts = cert.tbs_certificate().extensions().unwrap();
    let ku = exts.iter().find(|e| e.extn_id == oids::KEY_USAGE).unwrap();
    let ku = x509_cert::ext::pkix::KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap();
    assert!(ku.digital_signature() && !ku.key_encipherment());
}

#[test]
fn issue_refuses_bad_input() {
    let files = generate_ca("CA", CaKeyType::EcdsaP256, false, PW).unwrap();
    let ca = BuiltinCa::load(&files, PW).unwrap();
    let key = TestKey::new(TestKeyType::P256);
    let (nb, na) = window(1);
    assert!(matches!(
        ca.issue(key.spki_der(), &[], nb, na),
        Err(CaError::Invalid(_))
    ));
    assert!(matches!(
        ca.issue(key.spki_der(), &names(&["a.example"]), na, nb),
        Err(CaError::Invalid(_))
    ));
    assert!(matches!(
        ca.issue(b"junk", &names(&["a.example"]), nb, na),
        Err(CaError::BadKey(_))
    ));
}

#[test]
fn issued_check_refusals() {
    let files = generate_ca("CA", CaKeyType::EcdsaP256, false, PW).unwrap();
    let ca = BuiltinCa::load(&files, PW).unwrap();
    let key = TestKey::new(TestKeyType::P256);
    let (nb, na) = window(10);
    let issued = ca
        .issue(
            key.spki_der(),
            &names(&["a.example.com", "b.example.com"]),
            nb,
            na,
        )
        .unwrap();
    let policy = CsrPolicy::default();
    let leaf = &issued.leaf_der;
    assert!(check_issued(
        leaf,
        &names(&["a.example.com", "b.example.com"]),
        &policy,
        10 * DAY
    )
    .is_ok());
    // SAN set differs: missing and extra.
    let r = check_issued(leaf, &names(&["a.example.com"]), &policy, 10 * DAY).unwrap_err();
    assert!(
        matches!(&r, IssuedRefusal::Names(d) if d.contains("b.example.com")),
        "{r}"
    );
    let r = check_issued(
        leaf,
        &names(&["a.example.com", "b.example.com", "c.example.com"]),
        &policy,
        10 * DAY,
    )
    .unwrap_err();
    assert!(
        matches!(&r, IssuedRefusal::Names(d) if d.contains("missing") && d.contains("c.example.com")),
        "{r}"
    );
    // Lifetime.
    let r = check_issued(
        leaf,
        &names(&["a.example.com", "b.example.com"]),
        &policy,
        9 * DAY,
    )
    .unwrap_err();
    assert!(matches!(r, IssuedRefusal::Lifetime(_)));
    // Garbage and trailing bytes.
    assert!(matches!(
        check_issued(b"junk", &[], &policy, DAY),
        Err(IssuedRefusal::Unparsable(_))
    ));
    let mut trailing = leaf.clone();
    trailing.push(0);
    assert!(matches!(
        check_issued(&trailing, &[], &policy, DAY),
        Err(IssuedRefusal::Unparsable(_))
    ));
    // The CA certificate itself: cA=true (its SAN is missing first, so use
    // check on a rcgen-made CA with SANs below).
    let r = check_issued(ca.root_cert_der(), &names(&["a.example.com"]), &policy, DAY).unwrap_err();
    assert!(matches!(r, IssuedRefusal::Names(_)));
    // Key mismatch.
    let other = TestKey::new(TestKeyType::P256);
    let csr = CsrBuilder::new(&other)
        .san(&["a.example.com", "b.example.com"])
        .build();
    let approved = check_csr(&csr, &names(&["a.example.com", "b.example.com"]), &policy).unwrap();
    assert!(matches!(
        check_issued_for_csr(leaf, &approved, &policy, 10 * DAY),
        Err(IssuedRefusal::Key(_))
    ));
    // Broken chain: leaf vs a foreign root.
    let other_ca = generate_ca("CA", CaKeyType::EcdsaP256, false, PW).unwrap();
    let other_root = crate::certs::pem_to_der_certs(&other_ca.root_cert_pem).unwrap();
    let r = crate::issued::chain_links(leaf, &other_root).unwrap_err();
    assert!(
        matches!(&r, IssuedRefusal::Chain(d) if d.contains("does not verify")),
        "{r}"
    );
    // Empty chain: nothing to link.
    assert!(crate::issued::chain_links(leaf, &[]).is_ok());
}
