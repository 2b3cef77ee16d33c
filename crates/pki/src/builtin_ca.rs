//! The built-in CA (certeasy's `type: builtin`): key generation, encrypted
//! PKCS#8 at rest and leaf issuance. Bytes in, bytes out — the server does
//! the file I/O and never overwrites existing material.
//!
//! * Root: self-signed, 10 years, `basicConstraints` cA=true with
//!   pathLen 1 (with an intermediate) or 0, keyUsage keyCertSign + cRLSign
//!   (critical), SKI.
//! * Intermediate (optional): CN "`<common name>` Intermediate", 5 years,
//!   pathLen 0, same key usages, SKI and AKI, signed by the root.
//! * Private keys: PKCS#8 encrypted with PBES2 (scrypt log2 N = 14, r = 8,
//!   p = 1, AES-256-CBC), PEM label `ENCRYPTED PRIVATE KEY` — readable by
//!   `openssl pkey`.
//! * Leaves: see [`BuiltinCa::issue`].
//!
//! The chain served after the leaf ([`BuiltinCa::chain_pem`]) is the
//! intermediate when there is one, else the root. Serving the root of a
//! private CA lets clients that do not have it installed still display and
//! pin the full path; clients that trust the root ignore the extra
//! certificate.

use der::{Decode, Encode, SecretDocument};
use pkcs8::pkcs5::pbes2;
use pkcs8::{EncryptedPrivateKeyInfoRef, LineEnding, PrivateKeyInfoRef};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_cert::ext::pkix::BasicConstraints as X509BasicConstraints;
use x509_cert::Certificate;

use crate::certs::{pem_encode, pem_to_der_certs};
use crate::dnsname::DnsName;
use crate::issued::chain_links;
use crate::oids;
use crate::policy::EcCurve;
use crate::verify::{self, PublicKeyKind};

const ROOT_YEARS: i64 = 10;
const INTERMEDIATE_YEARS: i64 = 5;
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";
/// Maximum CN length (RFC 5280 ub-common-name).
const MAX_CN: usize = 64;

/// The CA key algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKeyType {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
    /// RSA (2048..=4096 bits) with SHA-256.
    Rsa {
        /// Modulus size.
        bits: u32,
    },
}

/// The persisted material of a built-in CA (PEM texts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFiles {
    /// Root certificate.
    pub root_cert_pem: String,
    /// Root key, encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`).
    pub root_key_pem: String,
    /// Intermediate certificate, if any.
    pub intermediate_cert_pem: Option<String>,
    /// Intermediate key, encrypted PKCS#8, if any.
    pub intermediate_key_pem: Option<String>,
}

/// Built-in CA errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    /// Invalid arguments (common name, key size, names, dates, password).
    #[error("invalid built-in CA request: {0}")]
    Invalid(String),
    /// The password does not decrypt a key.
    #[error("wrong password for the built-in CA key (or the encrypted key is damaged)")]
    WrongPassword,
    /// A file does not parse.
    #[error("built-in CA material is corrupt: {what}")]
    Corrupt {
        /// What is wrong, naming the file.
        what: String,
    },
    /// Keys and certificates do not belong together.
    #[error("built-in CA material does not match: {what}")]
    Mismatch {
        /// What does not match.
        what: String,
    },
    /// The leaf public key is not usable.
    #[error("unsupported public key for issuance: {0}")]
    BadKey(String),
    /// Key generation, encryption or signing failed.
    #[error("built-in CA crypto failure: {0}")]
    Crypto(String),
}

fn crypto(e: impl std::fmt::Display) -> CaError {
    CaError::Crypto(e.to_string())
}

/// A freshly generated key: PKCS#8 DER and the rcgen signing key.
fn generate_key(key_type: CaKeyType) -> Result<(Vec<u8>, KeyPair), CaError> {
    let rng = SystemRandom::new();
    let (pkcs8, alg): (Vec<u8>, &'static rcgen::SignatureAlgorithm) = match key_type {
        CaKeyType::EcdsaP256 => (
            ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &rng,
            )
            .map_err(crypto)?
            .as_ref()
            .to_vec(),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        ),
        CaKeyType::EcdsaP384 => (
            ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &rng,
            )
            .map_err(crypto)?
            .as_ref()
            .to_vec(),
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ),
        CaKeyType::Rsa { bits } => {
            if !(2048..=4096).contains(&bits) || bits % 8 != 0 {
                return Err(CaError::Invalid(format!(
                    "RSA key size {bits} is not supported; use 2048 to 4096 bits (e.g. 3072)"
                )));
            }
            use rsa::pkcs8::EncodePrivateKey;
            let bits = usize::try_from(bits).map_err(crypto)?;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(crypto)?;
            let der = key.to_pkcs8_der().map_err(crypto)?;
            (der.as_bytes().to_vec(), &rcgen::PKCS_RSA_SHA256)
        }
    };
    let kp =
        KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8.as_slice()), alg)
            .map_err(crypto)?;
    Ok((pkcs8, kp))
}

fn encrypt_key(pkcs8: &[u8], password: &[u8]) -> Result<String, CaError> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rng.fill(&mut salt).map_err(crypto)?;
    rng.fill(&mut iv).map_err(crypto)?;
    let scrypt = pkcs8::pkcs5::scrypt::Params::new(14, 8, 1).map_err(crypto)?;
    let params = pbes2::Parameters::generate_scrypt_aes256cbc(scrypt, &salt, iv).map_err(crypto)?;
    let info = PrivateKeyInfoRef::from_der(pkcs8).map_err(crypto)?;
    let doc = info.encrypt_with_params(params, password).map_err(crypto)?;
    Ok(doc
        .to_pem(ENCRYPTED_LABEL, LineEnding::LF)
        .map_err(crypto)?
        .to_string())
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(crypto)?;
    // Positive and minimal: first byte in 0x01..=0x7f.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(
    common_name: &str,
    path_len: u8,
    years: i64,
    now: time::OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * years + years / 4);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// Generates a new CA: root (and optionally an intermediate), keys
/// encrypted with `password`.
///
/// # Errors
/// [`CaError::Invalid`] for an empty or over-long common name, an empty
/// password or an unsupported RSA size; [`CaError::Crypto`] otherwise.
pub fn generate_ca(
    common_name: &str,
    key_type: CaKeyType,
    with_intermediate: bool,
    password: &[u8],
) -> Result<CaFiles, CaError> {
    let cn = common_name.trim();
    if cn.is_empty() || cn.chars().count() > MAX_CN {
        return Err(CaError::Invalid(format!(
            "common name {common_name:?} must be 1 to {MAX_CN} characters"
        )));
    }
    if password.is_empty() {
        return Err(CaError::Invalid("the CA key password is empty".into()));
    }
    let now = time::OffsetDateTime::now_utc();
    let (root_pkcs8, root_key) = generate_key(key_type)?;
    let root_params = ca_params(cn, u8::from(with_intermediate), ROOT_YEARS, now)?;
    let root_cert = root_params.self_signed(&root_key).map_err(crypto)?;
    let mut files = CaFiles {
        root_cert_pem: pem_encode("CERTIFICATE", root_cert.der()),
        root_key_pem: encrypt_key(&root_pkcs8, password)?,
        intermediate_cert_pem: None,
        intermediate_key_pem: None,
    };
    if with_intermediate {
        let (int_pkcs8, int_key) = generate_key(key_type)?;
        let int_cn: String = format!("{cn} Intermediate");
        let int_cn = if int_cn.chars().count() > MAX_CN {
            format!("{} Int", cn.chars().take(MAX_CN - 4).collect::<String>())
        } else {
            int_cn
        };
        let mut int_params = ca_params(&int_cn, 0, INTERMEDIATE_YEARS, now)?;
        int_params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::new(root_params, &root_key);
        let int_cert = int_params.signed_by(&int_key, &issuer).map_err(crypto)?;
        files.intermediate_cert_pem = Some(pem_encode("CERTIFICATE", int_cert.der()));
        files.intermediate_key_pem = Some(encrypt_key(&int_pkcs8, password)?);
    }
    Ok(files)
}

mod status;

pub use status::{CrlEntry, RevocationUrls};

/// A loaded built-in CA, ready to issue.
pub struct BuiltinCa {
    issuer: Issuer<'static, KeyPair>,
    issuer_cert_der: Vec<u8>,
    issuer_ids: status::IssuerIds,
    /// CRL distribution point and AIA extension put in leaves.
    revocation: Option<(
        rcgen::CrlDistributionPoint,
        rcgen::CustomExtension,
        RevocationUrls,
    )>,
    root_cert_pem: String,
    root_der: Vec<u8>,
    intermediate_der: Option<Vec<u8>>,
}

impl std::fmt::Debug for BuiltinCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinCa")
            .field("has_intermediate", &self.intermediate_der.is_some())
            .finish_non_exhaustive()
    }
}

fn single_cert(pem: &str, what: &str) -> Result<Vec<u8>, CaError> {
    let mut certs = pem_to_der_certs(pem).map_err(|e| CaError::Corrupt {
        what: format!("{what}: {e}"),
    })?;
    match (certs.pop(), certs.is_empty()) {
        (Some(der), true) => Ok(der),
        _ => Err(CaError::Corrupt {
            what: format!("{what} holds more than one certificate"),
        }),
    }
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` PEM and binds it to `cert_der`.
fn load_key(
    key_pem: &str,
    cert_der: &[u8],
    password: &[u8],
    what: &str,
) -> Result<KeyPair, CaError> {
    let corrupt = |detail: String| CaError::Corrupt {
        what: format!("{what} key: {detail}"),
    };
    let (label, doc) = SecretDocument::from_pem(key_pem).map_err(|e| corrupt(e.to_string()))?;
    if label != ENCRYPTED_LABEL {
        return Err(corrupt(format!(
            "PEM label is {label:?}, expected {ENCRYPTED_LABEL:?}"
        )));
    }
    let encrypted =
        EncryptedPrivateKeyInfoRef::from_der(doc.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
    let plain = encrypted
        .decrypt(password)
        .map_err(|_| CaError::WrongPassword)?;
    // A wrong password passes the CBC padding check about once in 256; the
    // plaintext then is not a PKCS#8 structure.
    PrivateKeyInfoRef::from_der(plain.as_bytes()).map_err(|_| CaError::WrongPassword)?;

    let cert = Certificate::from_der(cert_der).map_err(|e| CaError::Corrupt {
        what: format!("{what} certificate: {e}"),
    })?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| corrupt(e.to_string()))?;
    let parsed = verify::parse_spki(&spki).map_err(|e| CaError::Corrupt {
        what: format!("{what} certificate key: {e}"),
    })?;
    let alg: &'static rcgen::SignatureAlgorithm = match parsed.kind {
        PublicKeyKind::Ec(EcCurve::P256) => &rcgen::PKCS_ECDSA_P256_SHA256,
        PublicKeyKind::Ec(EcCurve::P384) => &rcgen::PKCS_ECDSA_P384_SHA384,
        PublicKeyKind::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        other => {
            return Err(CaError::Corrupt {
                what: format!("{what} certificate has an unsupported {other} key"),
            })
        }
    };
    let mismatch = || CaError::Mismatch {
        what: format!("the {what} key does not match the {what} certificate"),
    };
    let kp =
        KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(plain.as_bytes()), alg)
            .map_err(|_| mismatch())?;
    if kp.subject_public_key_info() != spki {
        return Err(mismatch());
    }
    Ok(kp)
}

fn check_is_ca(cert_der: &[u8], what: &str) -> Result<(), CaError> {
    let cert = Certificate::from_der(cert_der).map_err(|e| CaError::Corrupt {
        what: format!("{what} certificate: {e}"),
    })?;
    let is_ca = cert
        .tbs_certificate()
        .extensions()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == oids::BASIC_CONSTRAINTS))
        .and_then(|e| X509BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|bc| bc.ca);
    if !is_ca {
        return Err(CaError::Corrupt {
            what: format!("{what} certificate is not a CA certificate (basicConstraints cA=true)"),
        });
    }
    Ok(())
}

impl BuiltinCa {
    /// Loads and cross-checks CA material.
    ///
    /// # Errors
    /// [`CaError::Corrupt`] for unparsable PEM/DER or a half-present
    /// intermediate, [`CaError::WrongPassword`], and [`CaError::Mismatch`]
    /// when a key does not match its certificate, the root is not
    /// self-signed or the intermediate is not signed by the root.
    pub fn load(files: &CaFiles, password: &[u8]) -> Result<BuiltinCa, CaError> {
        let root_der = single_cert(&files.root_cert_pem, "root certificate")?;
        check_is_ca(&root_der, "root")?;
        let root_key = load_key(&files.root_key_pem, &root_der, password, "root")?;
        chain_links(&root_der, std::slice::from_ref(&root_der)).map_err(|e| CaError::Mismatch {
            what: format!("the root certificate is not self-signed: {e}"),
        })?;
        let (issuer_der, issuer_key, intermediate_der) =
            match (&files.intermediate_cert_pem, &files.intermediate_key_pem) {
                (None, None) => (root_der.clone(), root_key, None),
                (Some(cert_pem), Some(key_pem)) => {
                    let int_der = single_cert(cert_pem, "intermediate certificate")?;
                    check_is_ca(&int_der, "intermediate")?;
                    let int_key = load_key(key_pem, &int_der, password, "intermediate")?;
                    chain_links(&int_der, std::slice::from_ref(&root_der)).map_err(|e| {
                        CaError::Mismatch {
                            what: format!(
                                "the intermediate certificate is not signed by the root: {e}"
                            ),
                        }
                    })?;
                    (int_der.clone(), int_key, Some(int_der))
                }
                _ => {
                    return Err(CaError::Corrupt {
                        what:
                            "intermediate certificate and key must both be present or both absent"
                                .into(),
                    })
                }
            };
        let issuer_ids = status::IssuerIds::of(&issuer_der)?;
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(issuer_der.as_slice()), issuer_key)
                .map_err(|e| CaError::Corrupt {
                    what: format!("issuer certificate: {e}"),
                })?;
        Ok(BuiltinCa {
            issuer,
            issuer_cert_der: issuer_der,
            issuer_ids,
            revocation: None,
            root_cert_pem: pem_encode("CERTIFICATE", &root_der),
            root_der,
            intermediate_der,
        })
    }

    /// Issues a leaf for `spki_der` (normally [`crate::ApprovedCsr::spki_der`]).
    ///
    /// The leaf has: a random positive 16-byte serial; subject CN = the
    /// first name when it is at most 64 characters, else an empty subject
    /// (the SAN is then the only identity); SAN = `names` as dNSNames; EKU
    /// serverAuth (see [`issue_with_eku`](Self::issue_with_eku)); keyUsage digitalSignature (+ keyEncipherment for RSA
    /// keys), critical; basicConstraints cA=false, critical; AKI = the
    /// issuer's SKI; SKI = truncated SHA-256 of the key; with
    /// [`set_revocation_urls`](Self::set_revocation_urls), a CRL
    /// distribution point and an authorityInfoAccess OCSP URL. It is
    /// signed by the intermediate when there is one, else by the root.
    ///
    /// # Errors
    /// [`CaError::Invalid`] for no names or `not_after <= not_before`,
    /// [`CaError::BadKey`] for an unusable key, [`CaError::Crypto`].
    pub fn issue(
        &self,
        spki_der: &[u8],
        names: &[DnsName],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<IssuedCert, CaError> {
        self.issue_with_eku(spki_der, names, &[], not_before, not_after)
    }

    /// [`issue`](Self::issue) with EKUs beyond serverAuth (normally
    /// [`crate::ApprovedCsr::extra_eku`]: what the CSR asked for and the
    /// policy allows). serverAuth is always first; a repeated serverAuth in
    /// `extra_eku` is ignored.
    ///
    /// # Errors
    /// As [`issue`](Self::issue).
    pub fn issue_with_eku(
        &self,
        spki_der: &[u8],
        names: &[DnsName],
        extra_eku: &[const_oid::ObjectIdentifier],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<IssuedCert, CaError> {
        let Some(first) = names.first() else {
            return Err(CaError::Invalid("no names to issue for".into()));
        };
        if not_after <= not_before {
            return Err(CaError::Invalid(format!(
                "notAfter {not_after} is not after notBefore {not_before}"
            )));
        }
        let parsed = verify::parse_spki(spki_der).map_err(|e| CaError::BadKey(e.to_string()))?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| CaError::BadKey(e.to_string()))?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if first.as_str().len() <= MAX_CN {
            dn.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| {
                n.as_str()
                    .to_owned()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e| CaError::Invalid(format!("name {n}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = match parsed.kind {
            PublicKeyKind::Rsa { .. } => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            _ => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = std::iter::once(ExtendedKeyUsagePurpose::ServerAuth)
            .chain(
                extra_eku
                    .iter()
                    .filter(|oid| **oid != crate::oids::KP_SERVER_AUTH)
                    .map(|oid| {
                        if *oid == crate::oids::KP_CLIENT_AUTH {
                            ExtendedKeyUsagePurpose::ClientAuth
                        } else {
                            ExtendedKeyUsagePurpose::Other(oid.arcs().map(u64::from).collect())
                        }
                    }),
            )
            .collect();
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        if let Some((crl_dp, aia, _)) = &self.revocation {
            params.crl_distribution_points = vec![crl_dp.clone()];
            params.custom_extensions.push(aia.clone());
        }
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(crypto)?;
        Ok(IssuedCert {
            leaf_der: cert.der().to_vec(),
            chain_der: vec![self.chain_cert().to_vec()],
        })
    }

    fn chain_cert(&self) -> &[u8] {
        self.intermediate_der.as_deref().unwrap_or(&self.root_der)
    }

    /// The root certificate (PEM), for trust-store distribution.
    pub fn root_cert_pem(&self) -> &str {
        &self.root_cert_pem
    }

    /// The root certificate (DER).
    pub fn root_cert_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The issuing certificate (intermediate if present, else root), DER.
    pub fn issuer_cert_der(&self) -> &[u8] {
        &self.issuer_cert_der
    }

    /// The chain served after the leaf: the intermediate when present, else
    /// the root (see the module documentation).
    pub fn chain_pem(&self) -> String {
        pem_encode("CERTIFICATE", self.chain_cert())
    }
}

/// A certificate issued by the built-in CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCert {
    /// The leaf, DER.
    pub leaf_der: Vec<u8>,
    /// The chain after the leaf, DER (one certificate, see
    /// [`BuiltinCa::chain_pem`]).
    pub chain_der: Vec<Vec<u8>>,
}

#[cfg(test)]
mod tests;
