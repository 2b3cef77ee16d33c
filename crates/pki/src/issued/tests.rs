#![allow(clippy::unwrap_used)]

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use super::*;
use crate::ari::{ari_cert_id, parse_ari_cert_id, AriError};
use crate::policy::ExtraEku;
use crate::testing::names;

const DAY: Duration = Duration::from_secs(86_400);

struct Ca {
    key: KeyPair,
    params: CertificateParams,
    der: Vec<u8>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca { key, params, der }
}

fn leaf_params() -> CertificateParams {
    let mut p =
        CertificateParams::new(vec!["a.example.com".to_owned(), "b.example.com".to_owned()])
            .unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.not_before = rcgen::date_time_ymd(2030, 1, 1);
    p.not_after = rcgen::date_time_ymd(2030, 3, 1);
    p
}

fn sign(ca: &Ca, params: &CertificateParams) -> Vec<u8> {
    let leaf_key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    params.signed_by(&leaf_key, &issuer).unwrap().der().to_vec()
}

fn order() -> Vec<DnsName> {
    names(&["a.example.com", "b.example.com"])
}

fn check(der: &[u8], policy: &CsrPolicy) -> Result<IssuedInfo, IssuedRefusal> {
    check_issued(der, &order(), policy, 90 * DAY)
}

#[test]
fn good_leaf_and_chain() {
    let ca = ca();
    let der = sign(&ca, &leaf_params());
    let info = check(&der, &CsrPolicy::default()).unwrap();
    assert_eq!(info.not_before, rcgen::date_time_ymd(2030, 1, 1));
    assert!(info.aki.is_some());
    chain_links(&der, std::slice::from_ref(&ca.der)).unwrap();
    // Root self-link.
    chain_links(&ca.der, std::slice::from_ref(&ca.der)).unwrap();
    // Reversed order breaks the link.
    let r = chain_links(&ca.der, std::slice::from_ref(&der)).unwrap_err();
    assert!(
        matches!(&r, IssuedRefusal::Chain(d) if d.contains("issued by")),
        "{r}"
    );
    let r = chain_links(&der, &[b"junk".to_vec()]).unwrap_err();
    assert!(
        matches!(&r, IssuedRefusal::Chain(d) if d.contains("certificate 1 does not parse")),
        "{r}"
    );
}

fn refused(params: CertificateParams, policy: &CsrPolicy) -> IssuedRefusal {
    check(&sign(&ca(), &params), policy).unwrap_err()
}

#[test]
fn eku_rules() {
    let mut p = leaf_params();
    p.extended_key_usages
        .push(ExtendedKeyUsagePurpose::ClientAuth);
    let r = refused(p.clone(), &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Eku(d) if d.contains("clientAuth")),
        "{r}"
    );
    let allow = CsrPolicy {
        allowed_extra_eku: vec![ExtraEku::ClientAuth],
        ..CsrPolicy::default()
    };
    assert!(check(&sign(&ca(), &p), &allow).is_ok());

    let mut p = leaf_params();
    p.extended_key_usages = vec![];
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Eku(d) if d.contains("any purpose")),
        "{r}"
    );

    let mut p = leaf_params();
    p.extended_key_usages.push(ExtendedKeyUsagePurpose::Any);
    let r = refused(p, &allow);
    assert!(
        matches!(&r, IssuedRefusal::Eku(d) if d.contains("anyExtendedKeyUsage")),
        "{r}"
    );

    let mut p = leaf_params();
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let r = refused(p, &allow);
    assert!(
        matches!(&r, IssuedRefusal::Eku(d) if d.contains("lacks serverAuth")),
        "{r}"
    );

    let mut p = leaf_params();
    p.extended_key_usages
        .push(ExtendedKeyUsagePurpose::Other(vec![
            1, 3, 6, 1, 4, 1, 311, 20, 2, 2,
        ]));
    let r = refused(p, &allow);
    assert!(
        matches!(&r, IssuedRefusal::Eku(d) if d.contains("smartcard")),
        "{r}"
    );
}

fn app_policies(oids: &[&[u64]]) -> CustomExtension {
    let content = yasna_like_policies(oids);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 311, 21, 10], content)
}

/// SEQUENCE OF SEQUENCE { OID } built with the test DER writer.
fn yasna_like_policies(oids: &[&[u64]]) -> Vec<u8> {
    use crate::testing::der_w::{oid, seq};
    let items: Vec<Vec<u8>> = oids
        .iter()
        .map(|arcs| {
            let dotted: Vec<String> = arcs.iter().map(u64::to_string).collect();
            seq(&[&oid(&dotted.join("."))])
        })
        .collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    seq(&refs)
}

#[test]
fn ms_application_policies_are_held_to_the_eku_rule() {
    let mut p = leaf_params();
    p.custom_extensions = vec![app_policies(&[&[1, 3, 6, 1, 5, 5, 7, 3, 1]])];
    assert!(check(&sign(&ca(), &p), &CsrPolicy::default()).is_ok());
    let mut p = leaf_params();
    p.custom_extensions = vec![app_policies(&[
        &[1, 3, 6, 1, 5, 5, 7, 3, 1],
        &[1, 3, 6, 1, 4, 1, 311, 20, 2, 1],
    ])];
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Eku(d) if d.contains("ESC15") && d.contains("enrollment agent")),
        "{r}"
    );
}

#[test]
fn ca_rules() {
    let mut p = leaf_params();
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Ca(d) if d.contains("cA=true")),
        "{r}"
    );
    let mut p = leaf_params();
    p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Ca(d) if d.contains("keyCertSign")),
        "{r}"
    );
}

#[test]
fn name_rules() {
    let mut p = leaf_params();
    p.subject_alt_names
        .push(SanType::IpAddress("192.0.2.7".parse().unwrap()));
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Names(d) if d.contains("192.0.2.7")),
        "{r}"
    );
    let mut p = leaf_params();
    p.subject_alt_names
        .push(SanType::Rfc822Name("a@example.com".try_into().unwrap()));
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Names(d) if d.contains("rfc822Name")),
        "{r}"
    );
    let mut p = leaf_params();
    p.subject_alt_names = vec![];
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Names(d) if d.contains("no subjectAltName")),
        "{r}"
    );
    let mut p = leaf_params();
    p.subject_alt_names.pop();
    p.subject_alt_names
        .push(SanType::DnsName("evil.example.net".try_into().unwrap()));
    let r = refused(p, &CsrPolicy::default());
    assert!(matches!(&r, IssuedRefusal::Names(_)), "{r}");
}

#[test]
fn duplicate_extension() {
    let mut p = leaf_params();
    p.custom_extensions = vec![CustomExtension::from_oid_content(
        &[2, 5, 29, 37],
        yasna_like_policies(&[]),
    )];
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Extension(d) if d.contains("extKeyUsage")),
        "{r}"
    );
}

#[test]
fn lifetime_rules() {
    let mut p = leaf_params();
    p.not_before = rcgen::date_time_ymd(2030, 1, 1);
    p.not_after = rcgen::date_time_ymd(2029, 1, 1);
    let r = refused(p, &CsrPolicy::default());
    assert!(
        matches!(&r, IssuedRefusal::Lifetime(d) if d.contains("before")),
        "{r}"
    );
    let p = leaf_params(); // 59 days
    let der = sign(&ca(), &p);
    assert!(check_issued(&der, &order(), &CsrPolicy::default(), 59 * DAY).is_ok());
    let r = check_issued(&der, &order(), &CsrPolicy::default(), 58 * DAY).unwrap_err();
    assert!(
        matches!(&r, IssuedRefusal::Lifetime(d) if d.contains("exceeds max-validity")),
        "{r}"
    );
}

#[test]
fn ari_cert_id_serial_sign_byte_and_missing_aki() {
    let mut p = leaf_params();
    p.serial_number = Some(SerialNumber::from_slice(&[0x80, 0x01]));
    let der = sign(&ca(), &p);
    let id = ari_cert_id(&der).unwrap();
    assert!(id.ends_with(".AIAB"), "{id}");
    let (_, serial) = parse_ari_cert_id(&id).unwrap();
    assert_eq!(serial, vec![0x00, 0x80, 0x01]);
    assert_eq!(crate::certs::serial_hex_of_cert(&der).unwrap(), "8001");

    let mut p = leaf_params();
    p.use_authority_key_identifier_extension = false;
    assert_eq!(ari_cert_id(&sign(&ca(), &p)).unwrap_err(), AriError::NoAki);
}
