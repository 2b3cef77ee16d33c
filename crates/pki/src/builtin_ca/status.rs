//! Revocation status of the built-in CA: CRLs (RFC 5280 §5, signed with
//! rcgen) and OCSP responses (RFC 6960, [`crate::ocsp`]'s structures),
//! both signed by the issuing CA (the intermediate when there is one), and
//! the CRL distribution point and AIA OCSP URL put in every leaf.

use der::asn1::{BitString, Ia5String, Null, OctetString};
use der::{Decode, Encode};
use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CustomExtension, KeyIdMethod,
    RevocationReason, RevokedCertParams, SerialNumber, SigningKey,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};
use x509_cert::ext::Extensions;
use x509_cert::Certificate;

use super::{crypto, BuiltinCa, CaError};
use crate::ocsp::{
    self, BasicOcspResponse, CertId, CertStatus, OcspQuery, OcspResponse, ResponderId,
    ResponseBytes, ResponseData, ResponseStatus, RevokedInfo, SingleResponse, Status,
};
use crate::ObjectIdentifier;

const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const ID_PE_AIA: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Where relying parties find the revocation status of this CA's leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationUrls {
    /// The CRL's URL (CRL distribution point).
    pub crl: String,
    /// The OCSP responder's URL (authorityInfoAccess id-ad-ocsp).
    pub ocsp: String,
}

/// One revoked certificate on a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Serial as certeasy stores it (lower-case hex without leading zero
    /// bytes).
    pub serial_hex: String,
    /// Revocation time.
    pub revoked_at: time::OffsetDateTime,
    /// RFC 5280 reason code (0: no reason extension).
    pub reason: u32,
}

/// What the issuer's certificate contributes to CRLs and CertIDs.
#[derive(Clone, Debug)]
pub(super) struct IssuerIds {
    /// The subject Name, DER.
    name_der: Vec<u8>,
    /// The subjectPublicKey BIT STRING's bytes.
    key_bits: Vec<u8>,
    /// Its subjectKeyIdentifier (the CRL's AKI).
    ski: Option<Vec<u8>>,
}

impl IssuerIds {
    pub(super) fn of(cert_der: &[u8]) -> Result<IssuerIds, CaError> {
        let corrupt = |e: der::Error| CaError::Corrupt {
            what: format!("issuer certificate: {e}"),
        };
        let cert = Certificate::from_der(cert_der).map_err(corrupt)?;
        let tbs = cert.tbs_certificate();
        let ski = tbs
            .extensions()
            .and_then(|exts| {
                exts.iter()
                    .find(|e| e.extn_id == crate::oids::SUBJECT_KEY_IDENTIFIER)
            })
            .and_then(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .map(|o| o.as_bytes().to_vec());
        Ok(IssuerIds {
            name_der: tbs.subject().to_der().map_err(corrupt)?,
            key_bits: tbs
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes()
                .to_vec(),
            ski,
        })
    }
}

fn digest(alg: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    let alg = if *alg == ocsp::SHA1 {
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if *alg == ocsp::SHA256 {
        &ring::digest::SHA256
    } else {
        return None;
    };
    Some(ring::digest::digest(alg, data).as_ref().to_vec())
}

fn serial_bytes(hex: &str) -> Result<Vec<u8>, CaError> {
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CaError::Invalid(format!("serial {hex:?} is not hex bytes")));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|e| CaError::Invalid(format!("serial {hex:?}: {e}")))
        })
        .collect()
}

fn rcgen_reason(code: u32) -> Option<RevocationReason> {
    Some(match code {
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return None,
    })
}

/// The `authorityInfoAccess` extension with one OCSP URL, as rcgen adds
/// it to a leaf.
pub(super) fn aia_extension(ocsp_url: &str) -> Result<CustomExtension, CaError> {
    let uri = Ia5String::new(ocsp_url)
        .map_err(|e| CaError::Invalid(format!("OCSP URL {ocsp_url:?}: {e}")))?;
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: ID_AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(uri),
    }]);
    Ok(CustomExtension::from_oid_content(
        &ID_PE_AIA,
        aia.to_der().map_err(crypto)?,
    ))
}

/// The CRL distribution point of a leaf.
pub(super) fn crl_distribution_point(crl_url: &str) -> CrlDistributionPoint {
    CrlDistributionPoint {
        uris: vec![crl_url.to_string()],
    }
}

impl BuiltinCa {
    /// Puts the CRL distribution point and the AIA OCSP URL in every leaf
    /// issued from now on (None: neither, the default).
    ///
    /// # Errors
    /// [`CaError::Invalid`] for a URL that is not IA5 (ASCII).
    pub fn set_revocation_urls(&mut self, urls: Option<RevocationUrls>) -> Result<(), CaError> {
        self.revocation = match urls {
            Some(u) => Some((crl_distribution_point(&u.crl), aia_extension(&u.ocsp)?, u)),
            None => None,
        };
        Ok(())
    }

    /// The URLs put in the leaves, if any.
    pub fn revocation_urls(&self) -> Option<&RevocationUrls> {
        self.revocation.as_ref().map(|(_, _, u)| u)
    }

    /// Signs a CRL (v2, with the authority key identifier and cRLNumber
    /// `number`) listing `entries`, valid from `this_update` to
    /// `next_update`.
    ///
    /// # Errors
    /// [`CaError::Invalid`] for a bad serial or `next_update <=
    /// this_update`, [`CaError::Crypto`] when signing fails.
    pub fn sign_crl(
        &self,
        number: u64,
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
        entries: &[CrlEntry],
    ) -> Result<Vec<u8>, CaError> {
        if next_update <= this_update {
            return Err(CaError::Invalid(
                "the CRL's nextUpdate must be after its thisUpdate".into(),
            ));
        }
        let revoked_certs = entries
            .iter()
            .map(|e| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial_bytes(&e.serial_hex)?),
                    revocation_time: e.revoked_at,
                    reason_code: rcgen_reason(e.reason),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: match &self.issuer_ids.ski {
                Some(ski) => KeyIdMethod::PreSpecified(ski.clone()),
                None => KeyIdMethod::Sha256,
            },
        };
        let crl = params.signed_by(&self.issuer).map_err(crypto)?;
        Ok(crl.der().to_vec())
    }

    /// Whether `id` names this CA as the issuer (its name and key hashes,
    /// SHA-1 or SHA-256).
    pub fn issued_cert_id(&self, id: &CertId) -> bool {
        let alg = &id.hash_algorithm.oid;
        let ids = &self.issuer_ids;
        digest(alg, &ids.name_der).is_some_and(|h| h == id.issuer_name_hash.as_bytes())
            && digest(alg, &ids.key_bits).is_some_and(|h| h == id.issuer_key_hash.as_bytes())
    }

    /// Signs the OCSP response to `query`: `statuses[i]` answers
    /// `query.cert_ids[i]`; the nonce is echoed when the request had one.
    /// Responder: this CA, by key hash; thisUpdate `now`, nextUpdate
    /// `next_update`.
    ///
    /// # Errors
    /// [`CaError::Invalid`] when the statuses do not match the request,
    /// [`CaError::Crypto`] when encoding or signing fails.
    pub fn sign_ocsp(
        &self,
        query: &OcspQuery,
        statuses: &[Status],
        now: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> Result<Vec<u8>, CaError> {
        if statuses.len() != query.cert_ids.len() {
            return Err(CaError::Invalid(
                "one status per certificate asked about".into(),
            ));
        }
        let produced = ocsp::generalized_time(now).map_err(crypto)?;
        let next = ocsp::generalized_time(next_update).map_err(crypto)?;
        let responses = query
            .cert_ids
            .iter()
            .zip(statuses)
            .map(|(id, status)| {
                let cert_status = match status {
                    Status::Good => CertStatus::Good(Null),
                    Status::Unknown => CertStatus::Unknown(Null),
                    Status::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                        revocation_time: ocsp::generalized_time(*at).map_err(crypto)?,
                        revocation_reason: ocsp::crl_reason(*reason),
                    }),
                };
                Ok(SingleResponse {
                    cert_id: id.clone(),
                    cert_status,
                    this_update: produced,
                    next_update: Some(next),
                    single_extensions: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let key_hash = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.issuer_ids.key_bits,
        );
        let tbs = ResponseData {
            version: None,
            responder_id: ResponderId::ByKey(OctetString::new(key_hash.as_ref()).map_err(crypto)?),
            produced_at: produced,
            responses,
            response_extensions: query.nonce.clone().map(|n| -> Extensions { vec![n] }),
        };
        let tbs_der = tbs.to_der().map_err(crypto)?;
        let key = self.issuer.key();
        let signature = key.sign(&tbs_der).map_err(crypto)?;
        let alg = key.algorithm();
        let signature_algorithm = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256,
                parameters: None,
            }
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            AlgorithmIdentifierOwned {
                oid: ECDSA_SHA384,
                parameters: None,
            }
        } else {
            AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(der::Any::from(Null)),
            }
        };
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm,
            signature: BitString::from_bytes(&signature).map_err(crypto)?,
            certs: None,
        };
        OcspResponse {
            response_status: ResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: ocsp::OCSP_BASIC,
                response: OctetString::new(basic.to_der().map_err(crypto)?).map_err(crypto)?,
            }),
        }
        .to_der()
        .map_err(crypto)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use der::Decode;
    use x509_cert::crl::CertificateList;

    use super::*;
    use crate::generate_ca;
    use crate::ocsp::{parse_request, OcspRequest, Request, TbsRequest};
    use crate::testing::{names, TestKey, TestKeyType};

    fn ca() -> BuiltinCa {
        let files = generate_ca("status CA", crate::CaKeyType::EcdsaP256, true, b"pw").unwrap();
        BuiltinCa::load(&files, b"pw").unwrap()
    }

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
    }

    fn verify_ecdsa(ca: &BuiltinCa, msg: &[u8], sig: &[u8]) {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &ca.issuer_ids.key_bits,
        )
        .verify(msg, sig)
        .expect("signed by the issuing CA");
    }

    fn cert_id(ca: &BuiltinCa, alg: ObjectIdentifier, serial: &[u8]) -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: alg,
                parameters: Some(der::Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(digest(&alg, &ca.issuer_ids.name_der).unwrap())
                .unwrap(),
            issuer_key_hash: OctetString::new(digest(&alg, &ca.issuer_ids.key_bits).unwrap())
                .unwrap(),
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).unwrap(),
        }
    }

    fn request(ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
        OcspRequest {
            tbs_request: TbsRequest {
                version: None,
                requestor_name: None,
                request_list: ids
                    .into_iter()
                    .map(|req_cert| Request {
                        req_cert,
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions: nonce.map(|n| {
                    vec![x509_cert::ext::Extension {
                        extn_id: ocsp::OCSP_NONCE,
                        critical: false,
                        extn_value: OctetString::new(
                            OctetString::new(n).unwrap().to_der().unwrap(),
                        )
                        .unwrap(),
                    }]
                }),
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn a_crl_lists_the_entries_with_number_times_and_reasons() {
        let ca = ca();
        let t = now();
        let entries = [
            CrlEntry {
                serial_hex: "0a1b".into(),
                revoked_at: t,
                reason: 1,
            },
            CrlEntry {
                serial_hex: "8f01".into(),
                revoked_at: t,
                reason: 0,
            },
        ];
        let der = ca
            .sign_crl(7, t, t + time::Duration::hours(24), &entries)
            .unwrap();
        let crl: CertificateList = CertificateList::from_der(&der).unwrap();
        let tbs = &crl.tbs_cert_list;
        assert_eq!(
            tbs.issuer.to_der().unwrap(),
            ca.issuer_ids.name_der,
            "issued by the issuing CA"
        );
        let revoked = tbs.revoked_certificates.as_ref().unwrap();
        let serials: Vec<String> = revoked
            .iter()
            .map(|r| crate::certs::serial_hex(r.serial_number.as_bytes()))
            .collect();
        assert_eq!(serials, ["0a1b", "8f01"], "a high bit keeps its value");
        assert!(revoked[0].crl_entry_extensions.is_some(), "keyCompromise");
        assert!(
            revoked[1].crl_entry_extensions.is_none(),
            "unspecified: none"
        );
        let exts = tbs.crl_extensions.as_ref().unwrap();
        let number = exts
            .iter()
            .find(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.20"))
            .unwrap();
        assert_eq!(number.extn_value.as_bytes(), [0x02, 0x01, 0x07]);
        let aki = exts
            .iter()
            .find(|e| e.extn_id == crate::oids::AUTHORITY_KEY_IDENTIFIER)
            .unwrap();
        assert!(aki
            .extn_value
            .as_bytes()
            .ends_with(ca.issuer_ids.ski.as_ref().unwrap()));
        verify_ecdsa(&ca, &tbs.to_der().unwrap(), crl.signature.raw_bytes());
        assert!(
            ca.sign_crl(8, t, t, &[]).is_err(),
            "nextUpdate after thisUpdate"
        );
    }

    #[test]
    fn leaves_carry_the_urls_only_when_set() {
        let mut ca = ca();
        let key = TestKey::new(TestKeyType::P256);
        let (nb, na) = (now(), now() + time::Duration::days(1));
        let plain = ca
            .issue(key.spki_der(), &names(&["a.example"]), nb, na)
            .unwrap();
        let has = |der: &[u8], oid: ObjectIdentifier| {
            Certificate::from_der(der)
                .unwrap()
                .tbs_certificate()
                .extensions()
                .is_some_and(|x| x.iter().any(|e| e.extn_id == oid))
        };
        let crl_dp = ObjectIdentifier::new_unwrap("2.5.29.31");
        let aia = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
        assert!(!has(&plain.leaf_der, crl_dp) && !has(&plain.leaf_der, aia));
        ca.set_revocation_urls(Some(RevocationUrls {
            crl: "http://status.example:8080/crl/builtin.crl".into(),
            ocsp: "http://status.example:8080/ocsp".into(),
        }))
        .unwrap();
        let with = ca
            .issue(key.spki_der(), &names(&["a.example"]), nb, na)
            .unwrap();
        assert!(has(&with.leaf_der, crl_dp) && has(&with.leaf_der, aia));
        let text = String::from_utf8_lossy(&with.leaf_der).to_string();
        assert!(text.contains("http://status.example:8080/ocsp"));
        assert!(text.contains("http://status.example:8080/crl/builtin.crl"));
        assert!(ca
            .set_revocation_urls(Some(RevocationUrls {
                crl: "http://é".into(),
                ocsp: "http://é".into(),
            }))
            .is_err());
    }

    #[test]
    fn an_ocsp_response_answers_each_certificate_and_echoes_the_nonce() {
        let ca = ca();
        let other = self::ca();
        let ids = vec![
            cert_id(&ca, ocsp::SHA1, &[0x0a, 0x1b]),
            cert_id(&ca, ocsp::SHA256, &[0x00, 0x8f, 0x01]),
        ];
        assert!(ca.issued_cert_id(&ids[0]) && ca.issued_cert_id(&ids[1]));
        assert!(!other.issued_cert_id(&ids[0]), "another CA's CertID");
        let der = request(ids.clone(), Some(b"0123456789abcdef"));
        let query = parse_request(&der).unwrap();
        assert_eq!(query.cert_ids, ids);
        assert_eq!(query.cert_ids[1].serial_hex(), "8f01");
        let t = now();
        let resp = ca
            .sign_ocsp(
                &query,
                &[Status::Good, Status::Revoked { at: t, reason: 1 }],
                t,
                t + time::Duration::hours(1),
            )
            .unwrap();
        let resp = OcspResponse::from_der(&resp).unwrap();
        assert_eq!(resp.response_status, ResponseStatus::Successful);
        let bytes = resp.response_bytes.unwrap();
        assert_eq!(bytes.response_type, ocsp::OCSP_BASIC);
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        let data = &basic.tbs_response_data;
        assert_eq!(data.responses.len(), 2);
        assert_eq!(data.responses[0].cert_id, ids[0]);
        assert_eq!(data.responses[0].cert_status, CertStatus::Good(Null));
        assert!(matches!(
            &data.responses[1].cert_status,
            CertStatus::Revoked(RevokedInfo {
                revocation_reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
                ..
            })
        ));
        assert_eq!(
            data.response_extensions.as_ref().unwrap(),
            &vec![query.nonce.clone().unwrap()]
        );
        verify_ecdsa(&ca, &data.to_der().unwrap(), basic.signature.raw_bytes());
        assert!(ca.sign_ocsp(&query, &[Status::Good], t, t).is_err());
    }

    proptest::proptest! {
        #[test]
        fn the_request_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_request(&bytes);
        }

        #[test]
        fn a_mutated_request_is_parsed_or_refused(at in 0usize..200, byte in proptest::num::u8::ANY) {
            let ca = ca_once();
            let mut der = request(vec![cert_id(ca, ocsp::SHA1, &[1, 2, 3])], Some(b"nonce"));
            let i = at % der.len();
            der[i] = byte;
            if let Ok(q) = parse_request(&der) {
                proptest::prop_assert_eq!(q.cert_ids.len(), 1);
            }
        }
    }

    fn ca_once() -> &'static BuiltinCa {
        static CA: std::sync::OnceLock<BuiltinCa> = std::sync::OnceLock::new();
        CA.get_or_init(ca)
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert!(parse_request(b"").is_err());
        assert!(parse_request(&[0x30, 0x00]).is_err());
        let ca = ca();
        let mut der = request(vec![cert_id(&ca, ocsp::SHA1, &[1])], None);
        der.push(0);
        assert!(parse_request(&der).is_err(), "trailing byte");
        assert!(
            parse_request(&request(Vec::new(), None)).is_err(),
            "no certificate"
        );
        let many = (0..=ocsp::MAX_REQUESTS as u8)
            .map(|i| cert_id(&ca, ocsp::SHA1, &[i + 1]))
            .collect();
        assert!(parse_request(&request(many, None)).is_err(), "too many");
        assert_eq!(
            ocsp::error_response(ResponseStatus::MalformedRequest),
            [0x30, 0x03, 0x0a, 0x01, 0x01]
        );
    }
}
