#![allow(clippy::unwrap_used)]

use super::*;
use crate::policy::{EcCurve, ExtraEku, SignatureAlgorithm};
use crate::testing::*;

#[test]
fn hostile_corpus_is_refused_by_the_named_rule() {
    let corpus = hostile_csr_corpus();
    println!("hostile corpus: {} cases", corpus.len());
    assert!(corpus.len() >= 70, "corpus has {} cases", corpus.len());
    let mut failures = Vec::new();
    for case in &corpus {
        match check_csr(&case.der, &case.order_names, &CsrPolicy::default()) {
            Ok(ok) => failures.push(format!("{}: accepted {ok:?}", case.name)),
            Err(r) => {
                if r.kind != case.expected_kind
                    || !r.detail.contains(&case.expected_detail_substring)
                {
                    failures.push(format!(
                        "{}: got {:?} {:?}, want {:?} containing {:?}",
                        case.name,
                        r.kind,
                        r.detail,
                        case.expected_kind,
                        case.expected_detail_substring
                    ));
                }
                assert_eq!(r.to_string(), r.detail);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_recheck_of_a_stored_csr_differs_only_in_not_verifying_the_self_signature() {
    let mut bad_signatures = 0;
    for case in &hostile_csr_corpus() {
        let policy = CsrPolicy::default();
        let first = check_csr(&case.der, &case.order_names, &policy).unwrap_err();
        match recheck_stored_csr(&case.der, &case.order_names, &policy) {
            Ok(_) => {
                assert!(
                    first.detail.contains("self-signature does not verify"),
                    "{}: the recheck accepts what was refused for {}",
                    case.name,
                    first.detail
                );
                bad_signatures += 1;
            }
            Err(again) => assert_eq!(again, first, "{}", case.name),
        }
    }
    assert!(bad_signatures > 0, "the corpus has bad signatures");
    for case in &accepted_csr_corpus() {
        assert_eq!(
            recheck_stored_csr(&case.der, &case.order_names, &case.policy),
            check_csr(&case.der, &case.order_names, &case.policy),
            "{}",
            case.name
        );
    }
}

#[test]
fn hostile_corpus_names_are_unique() {
    let corpus = hostile_csr_corpus();
    let names: BTreeSet<&str> = corpus.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), corpus.len());
}

#[test]
fn accepted_corpus_is_accepted() {
    let corpus = accepted_csr_corpus();
    println!("accepted corpus: {} cases", corpus.len());
    assert!(corpus.len() >= 15);
    let mut failures = Vec::new();
    for case in &corpus {
        match check_csr(&case.der, &case.order_names, &case.policy) {
            Ok(approved) => {
                let mut want = case.order_names.clone();
                want.sort();
                want.dedup();
                assert_eq!(approved.names, want, "{}", case.name);
                assert!(crate::verify::parse_spki(&approved.spki_der).is_ok());
            }
            Err(r) => failures.push(format!("{}: {:?} {}", case.name, r.kind, r.detail)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn client_auth_is_a_request_granted_only_by_the_policy() {
    // acme.sh (and other clients) ask for serverAuth + clientAuth in every
    // CSR: accepted under any policy, clientAuth granted only where allowed.
    let der = include_bytes!("../../testdata/csr-acmesh.der");
    let order = names(&["www.example.com", "example.com"]);
    let ok = check_csr(der, &order, &CsrPolicy::default()).unwrap();
    assert_eq!(ok.key, PublicKeyKind::Ec(EcCurve::P256));
    assert!(ok.extra_eku.is_empty(), "{:?}", ok.extra_eku);
    let policy = CsrPolicy {
        allowed_extra_eku: vec![ExtraEku::ClientAuth],
        ..CsrPolicy::default()
    };
    let ok = check_csr(der, &order, &policy).unwrap();
    assert_eq!(ok.extra_eku, vec![crate::oids::KP_CLIENT_AUTH]);
    let again = recheck_stored_csr(der, &order, &policy).unwrap();
    assert_eq!(again.extra_eku, ok.extra_eku);
}

#[test]
fn server_auth_alone_grants_nothing_extra() {
    let key = TestKey::new(TestKeyType::P256);
    let order = names(&["example.com"]);
    let der = CsrBuilder::new(&key)
        .ext(eku_ext(&["1.3.6.1.5.5.7.3.1"]))
        .san(&["example.com"])
        .build();
    let policy = CsrPolicy {
        allowed_extra_eku: vec![ExtraEku::ClientAuth],
        ..CsrPolicy::default()
    };
    let ok = check_csr(&der, &order, &policy).unwrap();
    assert!(ok.extra_eku.is_empty(), "not requested, not granted");
}

#[test]
fn key_kinds_are_reported() {
    let order = names(&["example.com"]);
    for (kind, want) in [
        (TestKeyType::Rsa3072, PublicKeyKind::Rsa { bits: 3072 }),
        (TestKeyType::Rsa4096, PublicKeyKind::Rsa { bits: 4096 }),
        (TestKeyType::P256, PublicKeyKind::Ec(EcCurve::P256)),
        (TestKeyType::P384, PublicKeyKind::Ec(EcCurve::P384)),
        (TestKeyType::Ed25519, PublicKeyKind::Ed25519),
    ] {
        let key = TestKey::new(kind);
        let der = CsrBuilder::new(&key).san(&["example.com"]).build();
        let ok = check_csr(&der, &order, &CsrPolicy::default()).unwrap();
        assert_eq!(ok.key, want);
        assert_eq!(ok.spki_der, key.spki_der());
    }
}

#[test]
fn rsa_minimum_is_configurable_but_floored_at_2048() {
    let key = TestKey::new(TestKeyType::Rsa2048);
    let der = CsrBuilder::new(&key).san(&["example.com"]).build();
    let order = names(&["example.com"]);
    let mut policy = CsrPolicy::default();
    policy.key.min_rsa_bits = 2048;
    assert!(check_csr(&der, &order, &policy).is_ok());
    policy.key.min_rsa_bits = 1024;
    assert!(check_csr(&der, &order, &policy).is_ok());
    policy.key.min_rsa_bits = 4096;
    let r = check_csr(&der, &order, &policy).unwrap_err();
    assert_eq!(r.kind, RefusalKind::BadPublicKey);
    assert!(
        r.detail.contains("2048 bits") && r.detail.contains("4096"),
        "{}",
        r.detail
    );
}

#[test]
fn curve_policy() {
    let key = TestKey::new(TestKeyType::P384);
    let der = CsrBuilder::new(&key).san(&["example.com"]).build();
    let order = names(&["example.com"]);
    let mut policy = CsrPolicy::default();
    policy.key.allowed_ec_curves = vec![EcCurve::P256];
    let r = check_csr(&der, &order, &policy).unwrap_err();
    assert_eq!(r.kind, RefusalKind::BadPublicKey);
    assert!(
        r.detail.contains("EC curve P-384 is not allowed"),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("allowed: P-256"), "{}", r.detail);
    policy.key.allowed_ec_curves = vec![];
    let r = check_csr(&der, &order, &policy).unwrap_err();
    assert!(r.detail.contains("allowed: none"), "{}", r.detail);
}

#[test]
fn p521_refused_even_when_policy_lists_it() {
    let der = include_bytes!("../../testdata/csr-p521.der");
    let order = names(&["p521.example.com"]);
    let mut policy = CsrPolicy::default();
    policy.key.allowed_ec_curves = vec![EcCurve::P256, EcCurve::P384, EcCurve::P521];
    let r = check_csr(der, &order, &policy).unwrap_err();
    assert_eq!(r.kind, RefusalKind::BadPublicKey);
    assert!(r.detail.contains("P-521 is not allowed"), "{}", r.detail);
}

#[test]
fn algorithm_policy() {
    let order = names(&["example.com"]);
    let ed = TestKey::new(TestKeyType::Ed25519);
    let der = CsrBuilder::new(&ed).san(&["example.com"]).build();
    let mut policy = CsrPolicy::default();
    policy.key.allowed_algorithms = vec![
        SignatureAlgorithm::EcdsaSha256,
        SignatureAlgorithm::RsaSha256,
    ];
    let r = check_csr(&der, &order, &policy).unwrap_err();
    assert_eq!(r.kind, RefusalKind::BadCsr);
    assert!(r.detail.contains("ED25519 is not allowed"), "{}", r.detail);
    assert!(
        r.detail.contains("ECDSA-SHA256, RSA-SHA256"),
        "{}",
        r.detail
    );
    policy
        .key
        .allowed_algorithms
        .push(SignatureAlgorithm::Ed25519);
    assert!(check_csr(&der, &order, &policy).is_ok());

    let rsa = TestKey::new(TestKeyType::Rsa3072);
    let der = CsrBuilder::new(&rsa)
        .alg(SignatureAlgorithm::RsaSha512)
        .san(&["example.com"])
        .build();
    let r = check_csr(&der, &order, &policy).unwrap_err();
    assert!(
        r.detail.contains("RSA-SHA512 is not allowed"),
        "{}",
        r.detail
    );
}

#[test]
fn hash_mismatch_is_a_bad_signature() {
    // Labelled SHA-384 but signed with SHA-256.
    let rsa = TestKey::new(TestKeyType::Rsa3072);
    let b = CsrBuilder::new(&rsa).san(&["example.com"]);
    let tbs = b.tbs();
    let sig = rsa.sign(SignatureAlgorithm::RsaSha256, &tbs);
    let der = crate::testing::der_w::seq(&[
        &tbs,
        &alg_id(SignatureAlgorithm::RsaSha384),
        &crate::testing::der_w::bits(&sig),
    ]);
    let r = check_csr(&der, &names(&["example.com"]), &CsrPolicy::default()).unwrap_err();
    assert!(
        r.detail.contains("self-signature does not verify"),
        "{}",
        r.detail
    );
}

#[test]
fn empty_order_and_garbage() {
    let key = TestKey::new(TestKeyType::P256);
    let der = CsrBuilder::new(&key).san(&["example.com"]).build();
    let r = check_csr(&der, &[], &CsrPolicy::default()).unwrap_err();
    assert!(r.detail.contains("no identifiers"));
    for junk in [
        &b""[..],
        b"\x30",
        b"\x30\x00",
        b"hello world",
        &[0x30, 0x03, 0x02, 0x01, 0x00],
    ] {
        let r = check_csr(junk, &names(&["example.com"]), &CsrPolicy::default()).unwrap_err();
        assert_eq!(r.kind, RefusalKind::BadCsr);
        assert!(r.detail.contains("not valid DER"), "{junk:?}: {}", r.detail);
    }
}

#[test]
fn every_truncation_is_refused() {
    let key = TestKey::new(TestKeyType::P256);
    let der = CsrBuilder::new(&key).san(&["example.com"]).build();
    let order = names(&["example.com"]);
    for len in 0..der.len() {
        assert!(
            check_csr(&der[..len], &order, &CsrPolicy::default()).is_err(),
            "{len}"
        );
    }
    assert!(check_csr(&der, &order, &CsrPolicy::default()).is_ok());
}

#[test]
fn every_single_bit_flip_is_refused_or_harmless() {
    // Flipping any bit must never produce an accepted CSR with different
    // names or key: either it is refused, or (impossible with a valid
    // signature) identical.
    let key = TestKey::new(TestKeyType::Ed25519);
    let der = CsrBuilder::new(&key).san(&["example.com"]).build();
    let order = names(&["example.com"]);
    let original = check_csr(&der, &order, &CsrPolicy::default()).unwrap();
    for i in 0..der.len() {
        for bit in 0..8 {
            let mut m = der.clone();
            m[i] ^= 1 << bit;
            if let Ok(ok) = check_csr(&m, &order, &CsrPolicy::default()) {
                assert_eq!(ok, original, "byte {i} bit {bit}");
            }
        }
    }
}
