//! Test support: a tiny DER writer, test keys, a CSR builder able to
//! express hostile requests (re-signed so the signature is valid and the
//! refusal really comes from the named rule), and the hostile / accepted
//! CSR corpora. Available to this crate's tests and, with the
//! `test-support` feature, to other crates' tests.
//!
//! Every [`HostileCase`] is refused by [`crate::check_csr`] under
//! [`CsrPolicy::default()`] with its `order_names`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::missing_panics_doc)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};

use crate::csr::RefusalKind;
use crate::dnsname::DnsName;
use crate::policy::{CsrPolicy, ExtraEku, SignatureAlgorithm};

/// Minimal DER writer for hand-built structures.
pub mod der_w {
    /// One TLV with a minimal definite length.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend(len(content.len()));
        out.extend_from_slice(content);
        out
    }

    /// Minimal DER length octets.
    pub fn len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            return vec![n as u8];
        }
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    /// SEQUENCE.
    pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &concat(parts))
    }
    /// SET (elements in the given order).
    pub fn set(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x31, &concat(parts))
    }
    /// OBJECT IDENTIFIER from dotted text.
    pub fn oid(dotted: &str) -> Vec<u8> {
        let oid = const_oid::ObjectIdentifier::new(dotted).expect("valid OID");
        tlv(0x06, oid.as_bytes())
    }
    /// NULL.
    pub fn null() -> Vec<u8> {
        vec![0x05, 0x00]
    }
    /// BOOLEAN.
    pub fn boolean(b: bool) -> Vec<u8> {
        vec![0x01, 0x01, if b { 0xff } else { 0x00 }]
    }
    /// Small non-negative INTEGER.
    pub fn int(v: u8) -> Vec<u8> {
        if v < 0x80 {
            vec![0x02, 0x01, v]
        } else {
            vec![0x02, 0x02, 0x00, v]
        }
    }
    /// OCTET STRING.
    pub fn octet(content: &[u8]) -> Vec<u8> {
        tlv(0x04, content)
    }
    /// BIT STRING without unused bits.
    pub fn bits(content: &[u8]) -> Vec<u8> {
        let mut c = vec![0u8];
        c.extend_from_slice(content);
        tlv(0x03, &c)
    }
    /// UTF8String.
    pub fn utf8(s: &str) -> Vec<u8> {
        tlv(0x0c, s.as_bytes())
    }
    /// PrintableString.
    pub fn printable(s: &str) -> Vec<u8> {
        tlv(0x13, s.as_bytes())
    }
    /// IA5String.
    pub fn ia5(s: &str) -> Vec<u8> {
        tlv(0x16, s.as_bytes())
    }
    /// Context-specific tag `[n]`.
    pub fn ctx(n: u8, constructed: bool, content: &[u8]) -> Vec<u8> {
        tlv(0x80 | if constructed { 0x20 } else { 0 } | n, content)
    }
}

use der_w::*;

/// GeneralName constructors for SAN entries.
pub mod gn {
    use super::der_w::*;
    /// dNSName.
    pub fn dns(s: &str) -> Vec<u8> {
        ctx(2, false, s.as_bytes())
    }
    /// rfc822Name.
    pub fn email(s: &str) -> Vec<u8> {
        ctx(1, false, s.as_bytes())
    }
    /// uniformResourceIdentifier.
    pub fn uri(s: &str) -> Vec<u8> {
        ctx(6, false, s.as_bytes())
    }
    /// iPAddress.
    pub fn ip(addr: &[u8]) -> Vec<u8> {
        ctx(7, false, addr)
    }
    /// otherName with the Microsoft UPN type.
    pub fn upn(s: &str) -> Vec<u8> {
        let mut c = oid("1.3.6.1.4.1.311.20.2.3");
        c.extend(ctx(0, true, &utf8(s)));
        ctx(0, true, &c)
    }
    /// directoryName with one CN.
    pub fn directory(cn: &str) -> Vec<u8> {
        let name = seq(&[&set(&[&seq(&[&oid("2.5.4.3"), &utf8(cn)])])]);
        ctx(4, true, &name)
    }
    /// registeredID.
    pub fn registered_id(dotted: &str) -> Vec<u8> {
        let o = oid(dotted);
        ctx(8, false, &o[2..])
    }
}

/// Key types for test CSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKeyType {
    /// RSA 2048 (fixed test key).
    Rsa2048,
    /// RSA 3072 (fixed test key).
    Rsa3072,
    /// RSA 4096 (fixed test key).
    Rsa4096,
    /// ECDSA P-256 (fresh).
    P256,
    /// ECDSA P-384 (fresh).
    P384,
    /// Ed25519 (fresh).
    Ed25519,
}

enum Signer {
    Rsa(rs::RsaKeyPair),
    Ec(rs::EcdsaKeyPair),
    Ed(rs::Ed25519KeyPair),
}

/// A key able to sign test CSRs.
pub struct TestKey {
    kind: TestKeyType,
    signer: Signer,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("kind", &self.kind).finish()
    }
}

fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).expect("test key PEM")
}

const RSA2048: &str = include_str!("../testdata/rsa2048.pk8.pem");
const RSA3072: &str = include_str!("../testdata/rsa3072.pk8.pem");
const RSA4096: &str = include_str!("../testdata/rsa4096.pk8.pem");

impl TestKey {
    /// A key of the given type (RSA keys are fixed test keys, others fresh).
    pub fn new(kind: TestKeyType) -> TestKey {
        let rng = SystemRandom::new();
        let (signer, pkcs8, spki) = match kind {
            TestKeyType::Rsa2048 | TestKeyType::Rsa3072 | TestKeyType::Rsa4096 => {
                let pem = match kind {
                    TestKeyType::Rsa2048 => RSA2048,
                    TestKeyType::Rsa3072 => RSA3072,
                    _ => RSA4096,
                };
                let pkcs8 = pem_body(pem);
                let kp = rs::RsaKeyPair::from_pkcs8(&pkcs8).expect("RSA test key");
                let spki = seq(&[
                    &seq(&[&oid("1.2.840.113549.1.1.1"), &null()]),
                    &bits(kp.public_key().as_ref()),
                ]);
                (Signer::Rsa(kp), pkcs8, spki)
            }
            TestKeyType::P256 | TestKeyType::P384 => {
                let (alg, curve) = if kind == TestKeyType::P256 {
                    (&rs::ECDSA_P256_SHA256_ASN1_SIGNING, "1.2.840.10045.3.1.7")
                } else {
                    (&rs::ECDSA_P384_SHA384_ASN1_SIGNING, "1.3.132.0.34")
                };
                let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(alg, &rng)
                    .expect("EC keygen")
                    .as_ref()
                    .to_vec();
                let kp = rs::EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng).expect("EC key");
                let spki = seq(&[
                    &seq(&[&oid("1.2.840.10045.2.1"), &oid(curve)]),
                    &bits(kp.public_key().as_ref()),
                ]);
                (Signer::Ec(kp), pkcs8, spki)
            }
            TestKeyType::Ed25519 => {
                let pkcs8 = rs::Ed25519KeyPair::generate_pkcs8(&rng)
                    .expect("Ed25519 keygen")
                    .as_ref()
                    .to_vec();
                let kp = rs::Ed25519KeyPair::from_pkcs8(&pkcs8).expect("Ed25519 key");
                let spki = seq(&[
                    &seq(&[&oid("1.3.101.112")]),
                    &bits(kp.public_key().as_ref()),
                ]);
                (Signer::Ed(kp), pkcs8, spki)
            }
        };
        TestKey {
            kind,
            signer,
            pkcs8,
            spki,
        }
    }

    /// The key type.
    pub fn kind(&self) -> TestKeyType {
        self.kind
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// PKCS#8 DER private key.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The natural signature algorithm of the key.
    pub fn default_alg(&self) -> SignatureAlgorithm {
        match self.kind {
            TestKeyType::Rsa2048 | TestKeyType::Rsa3072 | TestKeyType::Rsa4096 => {
                SignatureAlgorithm::RsaSha256
            }
            TestKeyType::P256 => SignatureAlgorithm::EcdsaSha256,
            TestKeyType::P384 => SignatureAlgorithm::EcdsaSha384,
            TestKeyType::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }

    /// Signs `msg`. RSA keys honour the RSA algorithms; EC and Ed25519 keys
    /// always use their own algorithm (so `alg` only labels the result).
    pub fn sign(&self, alg: SignatureAlgorithm, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(kp) => {
                let padding: &'static dyn rs::RsaEncoding = match alg {
                    SignatureAlgorithm::RsaSha384 => &rs::RSA_PKCS1_SHA384,
                    SignatureAlgorithm::RsaSha512 => &rs::RSA_PKCS1_SHA512,
                    _ => &rs::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; kp.public().modulus_len()];
                kp.sign(padding, &rng, msg, &mut sig).expect("RSA sign");
                sig
            }
            Signer::Ec(kp) => kp.sign(&rng, msg).expect("EC sign").as_ref().to_vec(),
            Signer::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
        }
    }

    /// The key as an rcgen signing key.
    pub fn rcgen_key_pair(&self) -> rcgen::KeyPair {
        let alg: &'static rcgen::SignatureAlgorithm = match self.kind {
            TestKeyType::Rsa2048 | TestKeyType::Rsa3072 | TestKeyType::Rsa4096 => {
                &rcgen::PKCS_RSA_SHA256
            }
            TestKeyType::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            TestKeyType::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            TestKeyType::Ed25519 => &rcgen::PKCS_ED25519,
        };
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.as_slice()),
            alg,
        )
        .expect("rcgen key")
    }
}

/// AlgorithmIdentifier DER for a signature algorithm.
pub fn alg_id(alg: SignatureAlgorithm) -> Vec<u8> {
    let o = oid(&alg.oid().to_string());
    match alg {
        SignatureAlgorithm::RsaSha256
        | SignatureAlgorithm::RsaSha384
        | SignatureAlgorithm::RsaSha512 => seq(&[&o, &null()]),
        _ => seq(&[&o]),
    }
}

/// Wraps a to-be-signed structure: `SEQUENCE { tbs, alg, BIT STRING sig }`.
pub fn sign_tbs(key: &TestKey, alg: SignatureAlgorithm, tbs: &[u8]) -> Vec<u8> {
    let sig = key.sign(alg, tbs);
    seq(&[tbs, &alg_id(alg), &bits(&sig)])
}

/// One extension.
pub fn extension(dotted: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        seq(&[&oid(dotted), &boolean(true), &octet(value)])
    } else {
        seq(&[&oid(dotted), &octet(value)])
    }
}

/// SAN extension with the given GeneralNames.
pub fn san_ext(names: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    extension("2.5.29.17", false, &seq(&refs))
}

/// SAN extension of dNSNames.
pub fn san_dns_ext(names: &[&str]) -> Vec<u8> {
    san_ext(&names.iter().map(|n| gn::dns(n)).collect::<Vec<_>>())
}

/// EKU extension.
pub fn eku_ext(ekus: &[&str]) -> Vec<u8> {
    let o: Vec<Vec<u8>> = ekus.iter().map(|e| oid(e)).collect();
    let refs: Vec<&[u8]> = o.iter().map(Vec::as_slice).collect();
    extension("2.5.29.37", false, &seq(&refs))
}

/// One attribute `SEQUENCE { oid, SET { values } }`.
pub fn attribute(dotted: &str, values: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    seq(&[&oid(dotted), &set(&refs)])
}

/// Builds CSRs piece by piece, including pieces a sane encoder would never
/// produce. Defaults: version 0, empty subject, one extensionRequest
/// attribute holding the added extensions, the key's natural algorithm.
pub struct CsrBuilder<'k> {
    key: &'k TestKey,
    version: u8,
    rdns: Vec<Vec<u8>>,
    extensions: Vec<Vec<u8>>,
    extensions_der: Option<Vec<u8>>,
    extension_request: bool,
    extra_attributes: Vec<Vec<u8>>,
    attr_set_trailer: Vec<u8>,
    alg: SignatureAlgorithm,
    alg_id_override: Option<Vec<u8>>,
    corrupt_signature: bool,
    spki_override: Option<Vec<u8>>,
}

impl<'k> CsrBuilder<'k> {
    /// A builder for `key`.
    pub fn new(key: &'k TestKey) -> Self {
        CsrBuilder {
            key,
            version: 0,
            rdns: Vec::new(),
            extensions: Vec::new(),
            extensions_der: None,
            extension_request: true,
            extra_attributes: Vec::new(),
            attr_set_trailer: Vec::new(),
            alg: key.default_alg(),
            alg_id_override: None,
            corrupt_signature: false,
            spki_override: None,
        }
    }
    /// Sets the version field.
    pub fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }
    /// Adds an RDN with one UTF8String CN.
    pub fn cn(self, cn: &str) -> Self {
        self.subject_attr("2.5.4.3", utf8(cn))
    }
    /// Adds an RDN with one attribute.
    pub fn subject_attr(mut self, dotted: &str, value: Vec<u8>) -> Self {
        self.rdns.push(set(&[&seq(&[&oid(dotted), &value])]));
        self
    }
    /// Adds a raw RDN (a SET).
    pub fn rdn(mut self, raw: Vec<u8>) -> Self {
        self.rdns.push(raw);
        self
    }
    /// Adds a raw extension.
    pub fn ext(mut self, raw: Vec<u8>) -> Self {
        self.extensions.push(raw);
        self
    }
    /// Adds a SAN of dNSNames.
    pub fn san(self, names: &[&str]) -> Self {
        self.ext(san_dns_ext(names))
    }
    /// Replaces the encoded Extensions value of the extensionRequest.
    pub fn extensions_der(mut self, raw: Vec<u8>) -> Self {
        self.extensions_der = Some(raw);
        self
    }
    /// Omits the extensionRequest attribute.
    pub fn no_extension_request(mut self) -> Self {
        self.extension_request = false;
        self
    }
    /// Adds another attribute after the extensionRequest.
    pub fn attribute(mut self, raw: Vec<u8>) -> Self {
        self.extra_attributes.push(raw);
        self
    }
    /// Appends raw bytes inside the `[0]` attribute set.
    pub fn attr_set_trailer(mut self, raw: &[u8]) -> Self {
        self.attr_set_trailer = raw.to_vec();
        self
    }
    /// Signature algorithm (RSA keys only really change the hash).
    pub fn alg(mut self, alg: SignatureAlgorithm) -> Self {
        self.alg = alg;
        self
    }
    /// Writes this AlgorithmIdentifier instead of the real one.
    pub fn alg_id_override(mut self, raw: Vec<u8>) -> Self {
        self.alg_id_override = Some(raw);
        self
    }
    /// Replaces the SPKI.
    pub fn spki(mut self, raw: Vec<u8>) -> Self {
        self.spki_override = Some(raw);
        self
    }
    /// Flips a bit of the signature.
    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }
    /// The extensionRequest Extensions value.
    fn extensions_value(&self) -> Vec<u8> {
        self.extensions_der.clone().unwrap_or_else(|| {
            let refs: Vec<&[u8]> = self.extensions.iter().map(Vec::as_slice).collect();
            seq(&refs)
        })
    }
    /// The extensionRequest attribute.
    pub fn extension_request_attribute(&self) -> Vec<u8> {
        attribute("1.2.840.113549.1.9.14", &[self.extensions_value()])
    }
    /// The CertificationRequestInfo.
    pub fn tbs(&self) -> Vec<u8> {
        let rdn_refs: Vec<&[u8]> = self.rdns.iter().map(Vec::as_slice).collect();
        let subject = seq(&rdn_refs);
        let mut attrs = Vec::new();
        if self.extension_request {
            attrs.extend(self.extension_request_attribute());
        }
        for a in &self.extra_attributes {
            attrs.extend_from_slice(a);
        }
        attrs.extend_from_slice(&self.attr_set_trailer);
        let spki = self.spki_override.as_deref().unwrap_or(self.key.spki_der());
        seq(&[&int(self.version), &subject, spki, &ctx(0, true, &attrs)])
    }
    /// The signed CSR.
    pub fn build(&self) -> Vec<u8> {
        let tbs = self.tbs();
        let mut sig = self.key.sign(self.alg, &tbs);
        if self.corrupt_signature {
            if let Some(b) = sig.get_mut(10) {
                *b ^= 0x01;
            }
        }
        let alg = self
            .alg_id_override
            .clone()
            .unwrap_or_else(|| alg_id(self.alg));
        seq(&[&tbs, &alg, &bits(&sig)])
    }
}

/// A CSR that must be refused.
#[derive(Clone, Debug)]
pub struct HostileCase {
    /// Short identifier.
    pub name: String,
    /// The DER CSR.
    pub der: Vec<u8>,
    /// Expected refusal kind.
    pub expected_kind: RefusalKind,
    /// A substring of the refusal detail naming the element.
    pub expected_detail_substring: String,
    /// The order's names to check against.
    pub order_names: Vec<DnsName>,
}

/// A CSR that must be accepted under `policy`.
#[derive(Clone, Debug)]
pub struct AcceptedCase {
    /// Short identifier.
    pub name: String,
    /// The DER CSR.
    pub der: Vec<u8>,
    /// The order's names.
    pub order_names: Vec<DnsName>,
    /// The policy to check with.
    pub policy: CsrPolicy,
}

/// Parses names (test data, known good).
pub fn names(list: &[&str]) -> Vec<DnsName> {
    list.iter()
        .map(|n| DnsName::parse(n).expect("test name"))
        .collect()
}

const ORDER: [&str; 2] = ["example.com", "www.example.com"];

/// The hostile CSR corpus (see the module documentation).
pub fn hostile_csr_corpus() -> Vec<HostileCase> {
    let p256 = TestKey::new(TestKeyType::P256);
    let rsa2048 = TestKey::new(TestKeyType::Rsa2048);
    let base = || CsrBuilder::new(&p256).san(&ORDER);
    let mut cases: Vec<HostileCase> = Vec::new();
    let mut add = |name: &str, der: Vec<u8>, kind: RefusalKind, needle: &str, order: &[&str]| {
        cases.push(HostileCase {
            name: name.to_owned(),
            der,
            expected_kind: kind,
            expected_detail_substring: needle.to_owned(),
            order_names: names(order),
        });
    };
    use RefusalKind::{BadCsr, BadPublicKey};
    let dns = |n: &str| gn::dns(n);

    // --- SAN entry kinds.
    let san_with = |extra: Vec<u8>| {
        CsrBuilder::new(&p256)
            .ext(san_ext(&[dns(ORDER[0]), dns(ORDER[1]), extra]))
            .build()
    };
    add(
        "san_upn_other_name",
        san_with(gn::upn("administrator@corp.example.com")),
        BadCsr,
        "otherName entry (Microsoft UPN",
        &ORDER,
    );
    add(
        "san_email",
        san_with(gn::email("admin@example.com")),
        BadCsr,
        "rfc822Name (e-mail) entry",
        &ORDER,
    );
    add(
        "san_ipv4",
        san_with(gn::ip(&[192, 0, 2, 1])),
        BadCsr,
        "iPAddress entry 192.0.2.1",
        &ORDER,
    );
    add(
        "san_ipv6",
        san_with(gn::ip(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ])),
        BadCsr,
        "iPAddress entry 2001:db8::1",
        &ORDER,
    );
    add(
        "san_uri",
        san_with(gn::uri("https://example.com/")),
        BadCsr,
        "URI entry",
        &ORDER,
    );
    add(
        "san_directory_name",
        san_with(gn::directory("Administrator")),
        BadCsr,
        "directoryName entry",
        &ORDER,
    );
    add(
        "san_registered_id",
        san_with(gn::registered_id("1.2.3.4")),
        BadCsr,
        "registeredID entry",
        &ORDER,
    );
    add(
        "san_invalid_dns",
        san_with(dns("exa_mple.com")),
        BadCsr,
        "dNSName \"exa_mple.com\" is invalid",
        &ORDER,
    );
    add(
        "san_ip_literal_as_dns",
        san_with(dns("192.0.2.1")),
        BadCsr,
        "dNSName \"192.0.2.1\" is invalid",
        &ORDER,
    );
    add(
        "san_missing_order_name",
        CsrBuilder::new(&p256).san(&["example.com"]).build(),
        BadCsr,
        "missing the order's name(s) www.example.com",
        &ORDER,
    );
    add(
        "san_extra_name",
        CsrBuilder::new(&p256)
            .san(&["example.com", "www.example.com", "evil.example.net"])
            .build(),
        BadCsr,
        "contains evil.example.net which is not among the order's names",
        &ORDER,
    );
    add(
        "san_empty",
        CsrBuilder::new(&p256).ext(san_ext(&[])).build(),
        BadCsr,
        "subjectAltName is empty",
        &ORDER,
    );
    add(
        "no_san",
        CsrBuilder::new(&p256).cn("example.com").build(),
        BadCsr,
        "no subjectAltName extension",
        &ORDER,
    );
    add(
        "two_san_extensions",
        base().san(&ORDER).build(),
        BadCsr,
        "subjectAltName (2.5.29.17) more than once",
        &ORDER,
    );

    // --- Subject.
    let subj = |dotted: &str, v: Vec<u8>| base().subject_attr(dotted, v).build();
    add(
        "subject_o",
        subj("2.5.4.10", utf8("Evil Corp")),
        BadCsr,
        "CSR subject contains an O attribute",
        &ORDER,
    );
    add("subject_ou", subj("2.5.4.11", utf8("Domain Admins")), BadCsr, "CSR subject contains an OU attribute; only a single CN equal to one of the order's names is allowed", &ORDER);
    add(
        "subject_dc",
        subj("0.9.2342.19200300.100.1.25", ia5("corp")),
        BadCsr,
        "a DC attribute",
        &ORDER,
    );
    add(
        "subject_c",
        subj("2.5.4.6", printable("US")),
        BadCsr,
        "a C attribute",
        &ORDER,
    );
    add(
        "subject_l",
        subj("2.5.4.7", utf8("Paris")),
        BadCsr,
        "an L attribute",
        &ORDER,
    );
    add(
        "subject_st",
        subj("2.5.4.8", utf8("Texas")),
        BadCsr,
        "an ST attribute",
        &ORDER,
    );
    add(
        "subject_email",
        subj("1.2.840.113549.1.9.1", ia5("a@example.com")),
        BadCsr,
        "an emailAddress attribute",
        &ORDER,
    );
    add(
        "subject_custom_oid",
        subj("1.2.3.4.5", utf8("x")),
        BadCsr,
        "an attribute 1.2.3.4.5",
        &ORDER,
    );
    add(
        "subject_cn_then_ou",
        base()
            .cn("example.com")
            .subject_attr("2.5.4.11", utf8("IT"))
            .build(),
        BadCsr,
        "an OU attribute",
        &ORDER,
    );
    add(
        "subject_cn_not_in_order",
        base().cn("other.example.net").build(),
        BadCsr,
        "CN \"other.example.net\" is not one of the order's names",
        &ORDER,
    );
    add(
        "subject_two_cns",
        base().cn("example.com").cn("www.example.com").build(),
        BadCsr,
        "2 CN attributes",
        &ORDER,
    );
    add(
        "subject_multi_valued_rdn",
        base()
            .rdn(set(&[
                &seq(&[&oid("2.5.4.11"), &utf8("IT")]),
                &seq(&[&oid("2.5.4.3"), &utf8("example.com")]),
            ]))
            .build(),
        BadCsr,
        "an OU attribute",
        &ORDER,
    );
    add(
        "subject_empty_rdn",
        base().rdn(set(&[])).build(),
        BadCsr,
        "empty RDN",
        &ORDER,
    );
    add(
        "subject_cn_bmpstring",
        base()
            .subject_attr("2.5.4.3", tlv(0x1e, &[0, b'a']))
            .build(),
        BadCsr,
        "only UTF8String, PrintableString or IA5String",
        &ORDER,
    );

    // --- EKU.
    let eku = |list: &[&str]| base().ext(eku_ext(list)).build();
    // serverAuth + clientAuth is accepted (see the accepted corpus); any
    // other extra EKU the policy does not list is still refused.
    add(
        "eku_ipsec_ike_not_allowed",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.17"]),
        BadCsr,
        "which the policy does not allow",
        &ORDER,
    );
    add(
        "eku_client_auth_and_ipsec_ike",
        eku(&[
            "1.3.6.1.5.5.7.3.1",
            "1.3.6.1.5.5.7.3.2",
            "1.3.6.1.5.5.7.3.17",
        ]),
        BadCsr,
        "which the policy does not allow",
        &ORDER,
    );
    add(
        "eku_any_purpose",
        eku(&["1.3.6.1.5.5.7.3.1", "2.5.29.37.0"]),
        BadCsr,
        "anyExtendedKeyUsage (2.5.29.37.0), which is never allowed",
        &ORDER,
    );
    add(
        "eku_enrollment_agent",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.4.1.311.20.2.1"]),
        BadCsr,
        "enrollment agent",
        &ORDER,
    );
    add(
        "eku_smartcard_logon",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.4.1.311.20.2.2"]),
        BadCsr,
        "smartcard logon",
        &ORDER,
    );
    add(
        "eku_pkinit_client",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.2.3.4"]),
        BadCsr,
        "PKINIT",
        &ORDER,
    );
    add(
        "eku_code_signing",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.3"]),
        BadCsr,
        "codeSigning",
        &ORDER,
    );
    add(
        "eku_email_protection",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.4"]),
        BadCsr,
        "emailProtection",
        &ORDER,
    );
    add(
        "eku_ms_efs",
        eku(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.4.1.311.10.3.4"]),
        BadCsr,
        "ESC15",
        &ORDER,
    );
    add(
        "eku_without_server_auth",
        eku(&["1.3.6.1.5.5.7.3.2"]),
        BadCsr,
        "lacks serverAuth",
        &ORDER,
    );
    add(
        "eku_empty",
        eku(&[]),
        BadCsr,
        "extKeyUsage is empty",
        &ORDER,
    );
    add(
        "duplicate_eku_extension",
        base()
            .ext(eku_ext(&["1.3.6.1.5.5.7.3.1"]))
            .ext(eku_ext(&["1.3.6.1.5.5.7.3.1"]))
            .build(),
        BadCsr,
        "extKeyUsage (2.5.29.37) more than once",
        &ORDER,
    );

    // --- Other extensions (allow-list).
    let with_ext =
        |dotted: &str, value: Vec<u8>| base().ext(extension(dotted, false, &value)).build();
    let policies = seq(&[&seq(&[&oid("1.3.6.1.5.5.7.3.2")])]);
    add(
        "ext_ms_application_policies",
        with_ext("1.3.6.1.4.1.311.21.10", policies.clone()),
        BadCsr,
        "Microsoft application policies (ESC15) (1.3.6.1.4.1.311.21.10)",
        &ORDER,
    );
    add(
        "ext_ms_sid",
        with_ext(
            "1.3.6.1.4.1.311.25.2",
            seq(&[&ctx(
                0,
                true,
                &seq(&[
                    &oid("1.3.6.1.4.1.311.25.2.1"),
                    &ctx(0, true, &octet(b"S-1-5-21-1-2-3-500")),
                ]),
            )]),
        ),
        BadCsr,
        "SID security extension (1.3.6.1.4.1.311.25.2)",
        &ORDER,
    );
    add(
        "ext_ms_template_name",
        with_ext("1.3.6.1.4.1.311.20.2", tlv(0x1e, &[0, b'D', 0, b'C'])),
        BadCsr,
        "certificate template name (1.3.6.1.4.1.311.20.2)",
        &ORDER,
    );
    add(
        "ext_ms_template_info",
        with_ext(
            "1.3.6.1.4.1.311.21.7",
            seq(&[&oid("1.3.6.1.4.1.311.21.8.1.2"), &int(100)]),
        ),
        BadCsr,
        "certificate template information (1.3.6.1.4.1.311.21.7)",
        &ORDER,
    );
    add(
        "ext_name_constraints",
        with_ext(
            "2.5.29.30",
            seq(&[&ctx(0, true, &seq(&[&gn::dns("example.com")]))]),
        ),
        BadCsr,
        "nameConstraints (2.5.29.30)",
        &ORDER,
    );
    add(
        "ext_aia",
        with_ext(
            "1.3.6.1.5.5.7.1.1",
            seq(&[&seq(&[
                &oid("1.3.6.1.5.5.7.48.1"),
                &gn::uri("http://ocsp.example.com"),
            ])]),
        ),
        BadCsr,
        "authorityInfoAccess",
        &ORDER,
    );
    add(
        "ext_crl_dp",
        with_ext(
            "2.5.29.31",
            seq(&[&seq(&[&ctx(
                0,
                true,
                &ctx(0, true, &gn::uri("http://crl.example.com/x.crl")),
            )])]),
        ),
        BadCsr,
        "cRLDistributionPoints",
        &ORDER,
    );
    add(
        "ext_ski",
        with_ext("2.5.29.14", octet(&[1; 20])),
        BadCsr,
        "subjectKeyIdentifier",
        &ORDER,
    );
    add(
        "ext_aki",
        with_ext("2.5.29.35", seq(&[&ctx(0, false, &[1; 20])])),
        BadCsr,
        "authorityKeyIdentifier",
        &ORDER,
    );
    add(
        "ext_certificate_policies",
        with_ext("2.5.29.32", policies),
        BadCsr,
        "certificatePolicies",
        &ORDER,
    );
    add(
        "ext_must_staple",
        with_ext("1.3.6.1.5.5.7.1.24", seq(&[&int(5)])),
        BadCsr,
        "TLS feature",
        &ORDER,
    );
    add(
        "ext_unknown",
        with_ext("1.2.3.4.5.6", null()),
        BadCsr,
        "extension 1.2.3.4.5.6, which is not allowed",
        &ORDER,
    );
    add(
        "basic_constraints_ca_true",
        with_ext("2.5.29.19", seq(&[&boolean(true)])),
        BadCsr,
        "cA=true",
        &ORDER,
    );
    add(
        "basic_constraints_path_len",
        with_ext("2.5.29.19", seq(&[&int(0)])),
        BadCsr,
        "pathLenConstraint",
        &ORDER,
    );
    add(
        "key_usage_cert_sign",
        with_ext("2.5.29.15", tlv(0x03, &[0x02, 0x84])),
        BadCsr,
        "keyCertSign",
        &ORDER,
    );

    // --- Attributes.
    add(
        "attr_challenge_password",
        base()
            .attribute(attribute("1.2.840.113549.1.9.7", &[utf8("hunter2")]))
            .build(),
        BadCsr,
        "challengePassword (1.2.840.113549.1.9.7)",
        &ORDER,
    );
    add(
        "attr_ms_enrollment_name_value",
        base()
            .attribute(attribute(
                "1.3.6.1.4.1.311.13.2.1",
                &[seq(&[&tlv(0x1e, &[0, b'x']), &tlv(0x1e, &[0, b'y'])])],
            ))
            .build(),
        BadCsr,
        "Microsoft enrollment name-value pair",
        &ORDER,
    );
    add(
        "attr_ms_csp",
        base()
            .attribute(attribute("1.3.6.1.4.1.311.13.2.2", &[seq(&[&int(1)])]))
            .build(),
        BadCsr,
        "1.3.6.1.4.1.311.13.2.2",
        &ORDER,
    );
    add(
        "attr_ms_enrollment_other",
        base()
            .attribute(attribute("1.3.6.1.4.1.311.13.2.9", &[null()]))
            .build(),
        BadCsr,
        "Microsoft enrollment attribute (1.3.6.1.4.1.311.13.2.9)",
        &ORDER,
    );
    let b = base();
    let er = b.extension_request_attribute();
    add(
        "attr_two_extension_requests",
        b.attribute(er).build(),
        BadCsr,
        "2 extensionRequest attributes",
        &ORDER,
    );
    let b = base();
    let two_values = attribute(
        "1.2.840.113549.1.9.14",
        &[seq(&[&san_dns_ext(&ORDER)]), seq(&[&san_dns_ext(&ORDER)])],
    );
    add(
        "attr_extension_request_two_values",
        b.no_extension_request().attribute(two_values).build(),
        BadCsr,
        "extensionRequest attribute has 2 values",
        &ORDER,
    );
    add(
        "attr_missing_extension_request",
        CsrBuilder::new(&p256).no_extension_request().build(),
        BadCsr,
        "no extensionRequest attribute",
        &ORDER,
    );
    add(
        "trailing_garbage_in_attribute_set",
        base().attr_set_trailer(&[0xde, 0xad, 0xbe, 0xef]).build(),
        BadCsr,
        "attribute set is not valid DER",
        &ORDER,
    );

    // --- Strict DER.
    let good = base().build();
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0x00, 0x00]);
    add(
        "trailing_garbage_after_csr",
        trailing,
        BadCsr,
        "structure is not valid DER",
        &ORDER,
    );
    // Outer SEQUENCE length in a non-minimal long form (one extra 00 octet).
    let (header_len, len_octets) = match good[1] {
        0x81 => (3, &good[2..3]),
        0x82 => (4, &good[2..4]),
        other => panic!("unexpected test CSR length form {other:#x}"),
    };
    let mut long_form = vec![0x30, 0x80 | (len_octets.len() as u8 + 1), 0x00];
    long_form.extend_from_slice(len_octets);
    long_form.extend_from_slice(&good[header_len..]);
    add(
        "ber_non_minimal_length_outer",
        long_form,
        BadCsr,
        "not valid DER",
        &ORDER,
    );
    // Indefinite length on the outer SEQUENCE.
    let mut indefinite = vec![0x30, 0x80];
    indefinite.extend_from_slice(&good[header_len..]);
    indefinite.extend_from_slice(&[0x00, 0x00]);
    add(
        "ber_indefinite_length",
        indefinite,
        BadCsr,
        "not valid DER",
        &ORDER,
    );
    // Long-form length deep inside (the Extensions SEQUENCE), re-signed.
    let exts = seq(&[&san_dns_ext(&ORDER)]);
    let mut long_exts = vec![0x30, 0x81];
    long_exts.extend_from_slice(&exts[1..]);
    add(
        "ber_non_minimal_length_inner_resigned",
        CsrBuilder::new(&p256).extensions_der(long_exts).build(),
        BadCsr,
        "attribute set is not valid DER",
        &ORDER,
    );
    // critical FALSE explicitly encoded (DEFAULT must be omitted in DER).
    let explicit_false = seq(&[
        &oid("2.5.29.17"),
        &boolean(false),
        &octet(&seq(&[&gn::dns(ORDER[0]), &gn::dns(ORDER[1])])),
    ]);
    add(
        "der_default_encoded",
        CsrBuilder::new(&p256).ext(explicit_false).build(),
        BadCsr,
        "extensionRequest is not canonical DER",
        &ORDER,
    );
    // A multi-valued RDN whose SET OF is not in DER order (the longer
    // encoding first).
    let unsorted_rdn = tlv(
        0x31,
        &[
            seq(&[&oid("2.5.4.3"), &utf8("example.com")]),
            seq(&[&oid("2.5.4.11"), &utf8("IT")]),
        ]
        .concat(),
    );
    add(
        "der_unsorted_set",
        base().rdn(unsorted_rdn).build(),
        BadCsr,
        "not valid DER",
        &ORDER,
    );
    add(
        "version_2",
        base().version(1).build(),
        BadCsr,
        "CSR version is 2",
        &ORDER,
    );

    // --- Signatures.
    add(
        "bad_signature",
        base().corrupt_signature().build(),
        BadCsr,
        "self-signature does not verify",
        &ORDER,
    );
    add(
        "algorithm_does_not_fit_key",
        base()
            .alg_id_override(alg_id(SignatureAlgorithm::RsaSha256))
            .build(),
        BadCsr,
        "does not fit the ECDSA P-256 key",
        &ORDER,
    );
    add(
        "ecdsa_sha1",
        base()
            .alg_id_override(seq(&[&oid("1.2.840.10045.4.1")]))
            .build(),
        BadCsr,
        "ecdsa-with-SHA1",
        &ORDER,
    );
    add(
        "ecdsa_params_present",
        base()
            .alg_id_override(seq(&[&oid("1.2.840.10045.4.3.2"), &null()]))
            .build(),
        BadCsr,
        "invalid parameters",
        &ORDER,
    );
    add(
        "csr_md5_rsa",
        include_bytes!("../testdata/csr-rsa-md5.der").to_vec(),
        BadCsr,
        "md5WithRSAEncryption",
        &["md5.example.com"],
    );
    add(
        "csr_sha1_rsa",
        include_bytes!("../testdata/csr-rsa-sha1.der").to_vec(),
        BadCsr,
        "sha1WithRSAEncryption",
        &["sha1.example.com"],
    );
    add(
        "csr_rsa_pss",
        include_bytes!("../testdata/csr-rsa-pss.der").to_vec(),
        BadCsr,
        "RSASSA-PSS",
        &["pss.example.com"],
    );

    // --- Keys.
    add(
        "rsa_2048_under_min_3072",
        CsrBuilder::new(&rsa2048).san(&ORDER).build(),
        BadPublicKey,
        "RSA key is 2048 bits; the policy requires at least 3072 bits",
        &ORDER,
    );
    add(
        "p521_not_allowed",
        include_bytes!("../testdata/csr-p521.der").to_vec(),
        BadPublicKey,
        "EC curve P-521 is not allowed",
        &["p521.example.com"],
    );
    let ed448 = seq(&[&seq(&[&oid("1.3.101.113")]), &bits(&[7; 57])]);
    add(
        "ed448_key",
        base().spki(ed448).build(),
        BadPublicKey,
        "Ed448 (1.3.101.113) is not supported",
        &ORDER,
    );
    let secp256k1 = seq(&[
        &seq(&[&oid("1.2.840.10045.2.1"), &oid("1.3.132.0.10")]),
        &bits(&[4; 65]),
    ]);
    add(
        "secp256k1_key",
        base().spki(secp256k1).build(),
        BadPublicKey,
        "secp256k1",
        &ORDER,
    );

    cases
}

/// CSRs that must be accepted (each with its policy).
pub fn accepted_csr_corpus() -> Vec<AcceptedCase> {
    let mut cases = Vec::new();
    let mut add = |name: &str, der: Vec<u8>, order: &[&str], policy: CsrPolicy| {
        cases.push(AcceptedCase {
            name: name.to_owned(),
            der,
            order_names: names(order),
            policy,
        });
    };
    let default = CsrPolicy::default;
    let client_auth = || CsrPolicy {
        allowed_extra_eku: vec![ExtraEku::ClientAuth],
        ..CsrPolicy::default()
    };
    let p256 = TestKey::new(TestKeyType::P256);
    let p384 = TestKey::new(TestKeyType::P384);
    let ed = TestKey::new(TestKeyType::Ed25519);
    let rsa3072 = TestKey::new(TestKeyType::Rsa3072);
    let rsa4096 = TestKey::new(TestKeyType::Rsa4096);

    // rcgen-made CSRs.
    let rcgen_csr = |key: &TestKey, cn: Option<&str>, sans: &[&str], eku_ku: bool, no_ca: bool| {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        if eku_ku {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::DigitalSignature,
                rcgen::KeyUsagePurpose::KeyEncipherment,
            ];
        }
        if no_ca {
            params.is_ca = rcgen::IsCa::ExplicitNoCa;
        }
        params
            .serialize_request(&key.rcgen_key_pair())
            .expect("csr")
            .der()
            .to_vec()
    };
    add(
        "rcgen_sans_only",
        rcgen_csr(&p256, None, &ORDER, false, false),
        &ORDER,
        default(),
    );
    add(
        "rcgen_with_cn",
        rcgen_csr(&p256, Some("www.example.com"), &ORDER, false, false),
        &ORDER,
        default(),
    );
    add(
        "rcgen_eku_ku",
        rcgen_csr(&p256, Some("example.com"), &ORDER, true, false),
        &ORDER,
        default(),
    );
    add(
        "rcgen_basic_constraints_false",
        rcgen_csr(&p384, None, &ORDER, true, true),
        &ORDER,
        default(),
    );
    add(
        "rcgen_rsa3072",
        rcgen_csr(&rsa3072, Some("example.com"), &ORDER, true, false),
        &ORDER,
        default(),
    );
    add(
        "rcgen_ed25519",
        rcgen_csr(&ed, None, &["ed.example.com"], false, false),
        &["ed.example.com"],
        default(),
    );
    add(
        "rcgen_wildcard",
        rcgen_csr(
            &p256,
            Some("*.example.com"),
            &["*.example.com", "example.com"],
            false,
            false,
        ),
        &["*.example.com", "example.com"],
        default(),
    );

    // certbot style: empty subject, SAN only, RSA (python cryptography).
    add(
        "certbot_style_rsa3072",
        CsrBuilder::new(&rsa3072).san(&ORDER).build(),
        &ORDER,
        default(),
    );
    // serverAuth + clientAuth under a policy without clientAuth: accepted
    // (the CSR's EKU is a request; the certificate gets serverAuth only).
    add(
        "eku_server_and_client_auth_default_policy",
        CsrBuilder::new(&p256)
            .ext(eku_ext(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]))
            .san(&ORDER)
            .build(),
        &ORDER,
        default(),
    );
    add(
        "acmesh_style_openssl_default_policy",
        include_bytes!("../testdata/csr-acmesh.der").to_vec(),
        &ORDER,
        default(),
    );
    // acme.sh style: CN + KU + EKU serverAuth,clientAuth (policy allows clientAuth).
    add(
        "acmesh_style_built",
        CsrBuilder::new(&p256)
            .cn("www.example.com")
            .ext(extension("2.5.29.15", false, &tlv(0x03, &[0x05, 0xe0])))
            .ext(eku_ext(&["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]))
            .san(&["www.example.com", "example.com"])
            .build(),
        &ORDER,
        client_auth(),
    );
    add(
        "acmesh_style_openssl",
        include_bytes!("../testdata/csr-acmesh.der").to_vec(),
        &ORDER,
        client_auth(),
    );
    // lego / Go style: PrintableString CN.
    add(
        "lego_style_printable_cn",
        CsrBuilder::new(&p256)
            .subject_attr("2.5.4.3", printable("example.com"))
            .san(&ORDER)
            .build(),
        &ORDER,
        default(),
    );
    // Case and trailing dots are normalised on both sides.
    add(
        "mixed_case_names",
        CsrBuilder::new(&p256)
            .cn("WWW.Example.COM.")
            .san(&["Example.com", "WWW.EXAMPLE.COM."])
            .build(),
        &ORDER,
        default(),
    );
    // Duplicated SAN entries are a set.
    add(
        "duplicate_san_entries",
        CsrBuilder::new(&p256)
            .san(&["example.com", "www.example.com", "EXAMPLE.com"])
            .build(),
        &ORDER,
        default(),
    );
    // Key sizes and hashes.
    add(
        "rsa3072_sha384",
        CsrBuilder::new(&rsa3072)
            .alg(SignatureAlgorithm::RsaSha384)
            .san(&ORDER)
            .build(),
        &ORDER,
        default(),
    );
    add(
        "rsa4096_sha512",
        CsrBuilder::new(&rsa4096)
            .alg(SignatureAlgorithm::RsaSha512)
            .san(&ORDER)
            .build(),
        &ORDER,
        default(),
    );
    add(
        "rsa_params_absent",
        CsrBuilder::new(&rsa3072)
            .alg_id_override(seq(&[&oid("1.2.840.113549.1.1.11")]))
            .san(&ORDER)
            .build(),
        &ORDER,
        default(),
    );
    add(
        "p384_sha384",
        CsrBuilder::new(&p384).san(&ORDER).build(),
        &ORDER,
        default(),
    );
    add(
        "ed25519",
        CsrBuilder::new(&ed).san(&ORDER).build(),
        &ORDER,
        default(),
    );
    add(
        "critical_san_empty_subject",
        CsrBuilder::new(&p256)
            .ext(extension(
                "2.5.29.17",
                true,
                &seq(&[&gn::dns(ORDER[0]), &gn::dns(ORDER[1])]),
            ))
            .build(),
        &ORDER,
        default(),
    );
    cases
}
