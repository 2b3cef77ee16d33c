//! The key, signature and EKU part of an issuance policy (`signature` and
//! `csr` blocks).

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;

use crate::oids;

/// A policy value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Unknown signature algorithm name.
    #[error("unknown signature algorithm {0:?}; expected one of RSA-SHA256, RSA-SHA384, RSA-SHA512, ECDSA-SHA256, ECDSA-SHA384, ECDSA-SHA512, ED25519")]
    UnknownAlgorithm(String),
    /// Unknown curve name.
    #[error("unknown EC curve {0:?}; expected one of P-256, P-384, P-521")]
    UnknownCurve(String),
    /// Unknown EKU name and not a dotted OID.
    #[error("unknown extended key usage {0:?}; expected \"clientAuth\", \"ipsecIKE\" or a dotted OID such as \"1.3.6.1.5.5.7.3.2\"")]
    UnknownEku(String),
    /// An EKU that certeasy never issues, whatever the configuration.
    #[error("extended key usage {eku:?} ({what}) can never be allowed: {why}")]
    ForbiddenEku {
        /// As configured.
        eku: String,
        /// Its name and OID.
        what: String,
        /// Why.
        why: &'static str,
    },
}

/// A CSR / certificate signature algorithm as named in the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignatureAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaSha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaSha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaSha512,
    /// ECDSA with SHA-256.
    EcdsaSha256,
    /// ECDSA with SHA-384.
    EcdsaSha384,
    /// ECDSA with SHA-512.
    EcdsaSha512,
    /// Ed25519 (pure EdDSA).
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every variant.
    pub const ALL: [SignatureAlgorithm; 7] = [
        SignatureAlgorithm::RsaSha256,
        SignatureAlgorithm::RsaSha384,
        SignatureAlgorithm::RsaSha512,
        SignatureAlgorithm::EcdsaSha256,
        SignatureAlgorithm::EcdsaSha384,
        SignatureAlgorithm::EcdsaSha512,
        SignatureAlgorithm::Ed25519,
    ];

    /// The configuration name (`RSA-SHA256`, …).
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha256 => "RSA-SHA256",
            SignatureAlgorithm::RsaSha384 => "RSA-SHA384",
            SignatureAlgorithm::RsaSha512 => "RSA-SHA512",
            SignatureAlgorithm::EcdsaSha256 => "ECDSA-SHA256",
            SignatureAlgorithm::EcdsaSha384 => "ECDSA-SHA384",
            SignatureAlgorithm::EcdsaSha512 => "ECDSA-SHA512",
            SignatureAlgorithm::Ed25519 => "ED25519",
        }
    }

    /// The X.509 AlgorithmIdentifier OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::RsaSha256 => oids::SHA256_WITH_RSA,
            SignatureAlgorithm::RsaSha384 => oids::SHA384_WITH_RSA,
            SignatureAlgorithm::RsaSha512 => oids::SHA512_WITH_RSA,
            SignatureAlgorithm::EcdsaSha256 => oids::ECDSA_WITH_SHA256,
            SignatureAlgorithm::EcdsaSha384 => oids::ECDSA_WITH_SHA384,
            SignatureAlgorithm::EcdsaSha512 => oids::ECDSA_WITH_SHA512,
            SignatureAlgorithm::Ed25519 => oids::ED25519,
        }
    }

    /// The algorithm for an AlgorithmIdentifier OID, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<SignatureAlgorithm> {
        Self::ALL.into_iter().find(|a| a.oid() == *oid)
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| PolicyError::UnknownAlgorithm(s.to_owned()))
    }
}

/// A named elliptic curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl EcCurve {
    /// The configuration name (`P-256`, …).
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// The namedCurve OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            EcCurve::P256 => oids::SECP256R1,
            EcCurve::P384 => oids::SECP384R1,
            EcCurve::P521 => oids::SECP521R1,
        }
    }

    /// The curve for a namedCurve OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<EcCurve> {
        [EcCurve::P256, EcCurve::P384, EcCurve::P521]
            .into_iter()
            .find(|c| c.oid() == *oid)
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EcCurve {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "P-256" | "P256" | "SECP256R1" | "PRIME256V1" => Ok(EcCurve::P256),
            "P-384" | "P384" | "SECP384R1" => Ok(EcCurve::P384),
            "P-521" | "P521" | "SECP521R1" => Ok(EcCurve::P521),
            _ => Err(PolicyError::UnknownCurve(s.to_owned())),
        }
    }
}

/// The `signature` block: which keys and signature algorithms are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Accepted CSR signature algorithms; empty means all supported ones.
    pub allowed_algorithms: Vec<SignatureAlgorithm>,
    /// Minimum RSA modulus size in bits (default 3072). Whatever the value,
    /// RSA keys below 2048 bits are never accepted (they cannot be verified).
    pub min_rsa_bits: u32,
    /// Accepted EC curves (default P-256, P-384).
    pub allowed_ec_curves: Vec<EcCurve>,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            allowed_algorithms: Vec::new(),
            min_rsa_bits: 3072,
            allowed_ec_curves: vec![EcCurve::P256, EcCurve::P384],
        }
    }
}

impl KeyPolicy {
    /// Is the signature algorithm allowed (empty list = all)?
    pub fn allows_algorithm(&self, alg: SignatureAlgorithm) -> bool {
        self.allowed_algorithms.is_empty() || self.allowed_algorithms.contains(&alg)
    }
}

/// An extended key usage the policy may allow on top of serverAuth.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExtraEku {
    /// TLS client authentication (acme.sh puts it in its CSRs).
    ClientAuth,
    /// IKE (IPsec) endpoints.
    IpsecIke,
    /// Any other OID that is not forbidden (see [`ExtraEku::from_str`]).
    Other(ObjectIdentifier),
}

impl ExtraEku {
    /// The EKU OID.
    pub fn oid(&self) -> ObjectIdentifier {
        match self {
            ExtraEku::ClientAuth => oids::KP_CLIENT_AUTH,
            ExtraEku::IpsecIke => oids::KP_IPSEC_IKE,
            ExtraEku::Other(oid) => *oid,
        }
    }
}

impl fmt::Display for ExtraEku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtraEku::ClientAuth => f.write_str("clientAuth"),
            ExtraEku::IpsecIke => f.write_str("ipsecIKE"),
            ExtraEku::Other(oid) => write!(f, "{oid}"),
        }
    }
}

/// Why an EKU OID may never be issued by certeasy, if it is one of those.
///
/// ACME proves control of DNS names only; these purposes grant identities or
/// powers (Windows logon, enrollment on behalf of others, code or e-mail
/// signing, CA/OCSP duties, "any purpose") that DNS control must never buy.
/// The whole Microsoft arc 1.3.6.1.4.1.311 (application policies, the ESC15
/// vector) and the Kerberos PKINIT arc are refused.
pub fn forbidden_eku_reason(oid: &ObjectIdentifier) -> Option<&'static str> {
    let reason = if *oid == oids::ANY_EKU {
        "anyExtendedKeyUsage makes the certificate valid for every purpose (ESC2)"
    } else if *oid == oids::KP_SERVER_AUTH {
        "serverAuth is always allowed and must not be listed"
    } else if *oid == oids::KP_CODE_SIGNING {
        "code signing is not proven by DNS control"
    } else if *oid == oids::KP_EMAIL_PROTECTION {
        "e-mail protection is not proven by DNS control"
    } else if *oid == oids::KP_TIME_STAMPING || *oid == oids::KP_OCSP_SIGNING {
        "time-stamping and OCSP signing are authority duties"
    } else if oids::under(oid, &oids::PKINIT_ARC) {
        "Kerberos PKINIT usages allow domain logon"
    } else if *oid == oids::MS_KP_ENROLLMENT_AGENT {
        "the enrollment agent usage allows requesting certificates on behalf of other users (ESC3)"
    } else if *oid == oids::MS_KP_SMARTCARD_LOGON {
        "smartcard logon allows domain logon"
    } else if oids::under(oid, &oids::MICROSOFT_ARC) {
        "Microsoft application policies are never issued through ACME (ESC15)"
    } else {
        return None;
    };
    Some(reason)
}

impl FromStr for ExtraEku {
    type Err = PolicyError;

    /// Accepts `clientAuth`, `ipsecIKE` or a dotted OID. Refuses, whatever
    /// the configuration, the usages listed in [`forbidden_eku_reason`]
    /// (also by their names `anyExtendedKeyUsage`, `serverAuth`,
    /// `codeSigning`, `emailProtection`, `timeStamping`, `OCSPSigning`,
    /// `smartcardLogon`, `enrollmentAgent`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let oid = match s {
            "clientAuth" => oids::KP_CLIENT_AUTH,
            "ipsecIKE" => oids::KP_IPSEC_IKE,
            "anyExtendedKeyUsage" => oids::ANY_EKU,
            "serverAuth" => oids::KP_SERVER_AUTH,
            "codeSigning" => oids::KP_CODE_SIGNING,
            "emailProtection" => oids::KP_EMAIL_PROTECTION,
            "timeStamping" => oids::KP_TIME_STAMPING,
            "OCSPSigning" => oids::KP_OCSP_SIGNING,
            "smartcardLogon" => oids::MS_KP_SMARTCARD_LOGON,
            "enrollmentAgent" => oids::MS_KP_ENROLLMENT_AGENT,
            _ if s.starts_with(|c: char| c.is_ascii_digit()) => {
                ObjectIdentifier::new(s).map_err(|_| PolicyError::UnknownEku(s.to_owned()))?
            }
            _ => return Err(PolicyError::UnknownEku(s.to_owned())),
        };
        if let Some(why) = forbidden_eku_reason(&oid) {
            return Err(PolicyError::ForbiddenEku {
                eku: s.to_owned(),
                what: oids::describe(&oid),
                why,
            });
        }
        Ok(if oid == oids::KP_CLIENT_AUTH {
            ExtraEku::ClientAuth
        } else if oid == oids::KP_IPSEC_IKE {
            ExtraEku::IpsecIke
        } else {
            ExtraEku::Other(oid)
        })
    }
}

/// Everything [`crate::check_csr`] and [`crate::check_issued`] need from an
/// issuance policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsrPolicy {
    /// Key and signature rules.
    pub key: KeyPolicy,
    /// EKUs accepted in addition to serverAuth.
    pub allowed_extra_eku: Vec<ExtraEku>,
}

impl CsrPolicy {
    /// Is this EKU OID acceptable (serverAuth or an allowed extra that is
    /// not forbidden)?
    pub fn allows_eku(&self, oid: &ObjectIdentifier) -> bool {
        *oid == oids::KP_SERVER_AUTH
            || (forbidden_eku_reason(oid).is_none()
                && self.allowed_extra_eku.iter().any(|e| e.oid() == *oid))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn algorithms_parse_and_display() {
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(alg.name().parse::<SignatureAlgorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.name());
            assert_eq!(SignatureAlgorithm::from_oid(&alg.oid()), Some(alg));
        }
        assert_eq!(
            "rsa-sha256".parse::<SignatureAlgorithm>().unwrap(),
            SignatureAlgorithm::RsaSha256
        );
        assert_eq!(
            "Ed25519".parse::<SignatureAlgorithm>().unwrap(),
            SignatureAlgorithm::Ed25519
        );
        let err = "RSA-SHA1"
            .parse::<SignatureAlgorithm>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RSA-SHA1") && err.contains("ECDSA-SHA384"),
            "{err}"
        );
        assert_eq!(SignatureAlgorithm::from_oid(&oids::SHA1_WITH_RSA), None);
    }

    #[test]
    fn curves_parse() {
        assert_eq!("P-256".parse::<EcCurve>().unwrap(), EcCurve::P256);
        assert_eq!("p-384".parse::<EcCurve>().unwrap(), EcCurve::P384);
        assert_eq!("P-521".parse::<EcCurve>().unwrap(), EcCurve::P521);
        assert!("P-224"
            .parse::<EcCurve>()
            .unwrap_err()
            .to_string()
            .contains("P-224"));
        for c in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            assert_eq!(EcCurve::from_oid(&c.oid()), Some(c));
            assert_eq!(c.to_string().parse::<EcCurve>().unwrap(), c);
        }
    }

    #[test]
    fn defaults() {
        let p = KeyPolicy::default();
        assert_eq!(p.min_rsa_bits, 3072);
        assert_eq!(p.allowed_ec_curves, vec![EcCurve::P256, EcCurve::P384]);
        assert!(p.allowed_algorithms.is_empty());
        assert!(p.allows_algorithm(SignatureAlgorithm::Ed25519));
        let only = KeyPolicy {
            allowed_algorithms: vec![SignatureAlgorithm::EcdsaSha256],
            ..KeyPolicy::default()
        };
        assert!(only.allows_algorithm(SignatureAlgorithm::EcdsaSha256));
        assert!(!only.allows_algorithm(SignatureAlgorithm::RsaSha256));
    }

    #[test]
    fn extra_eku_parse() {
        assert_eq!(
            "clientAuth".parse::<ExtraEku>().unwrap(),
            ExtraEku::ClientAuth
        );
        assert_eq!(
            "1.3.6.1.5.5.7.3.2".parse::<ExtraEku>().unwrap(),
            ExtraEku::ClientAuth
        );
        assert_eq!("ipsecIKE".parse::<ExtraEku>().unwrap(), ExtraEku::IpsecIke);
        let other: ExtraEku = "1.2.3.4.5".parse().unwrap();
        assert_eq!(other.to_string(), "1.2.3.4.5");
        assert!(matches!(
            "bogus".parse::<ExtraEku>(),
            Err(PolicyError::UnknownEku(_))
        ));
        assert!(matches!(
            "1..2".parse::<ExtraEku>(),
            Err(PolicyError::UnknownEku(_))
        ));
    }

    #[test]
    fn forbidden_ekus_never_parse() {
        let cases = [
            ("anyExtendedKeyUsage", "ESC2"),
            ("2.5.29.37.0", "ESC2"),
            ("serverAuth", "always allowed"),
            ("codeSigning", "code signing"),
            ("1.3.6.1.5.5.7.3.3", "code signing"),
            ("emailProtection", "e-mail"),
            ("timeStamping", "authority"),
            ("OCSPSigning", "authority"),
            ("smartcardLogon", "smartcard"),
            ("1.3.6.1.4.1.311.20.2.2", "smartcard"),
            ("enrollmentAgent", "ESC3"),
            ("1.3.6.1.4.1.311.20.2.1", "ESC3"),
            ("1.3.6.1.4.1.311.10.3.4", "ESC15"),
            ("1.3.6.1.4.1.311.21.10", "ESC15"),
            ("1.3.6.1.4.1.311", "ESC15"),
            ("1.3.6.1.5.2.3.4", "PKINIT"),
            ("1.3.6.1.5.2.3.5", "PKINIT"),
        ];
        for (s, needle) in cases {
            let err = s.parse::<ExtraEku>().unwrap_err();
            assert!(matches!(err, PolicyError::ForbiddenEku { .. }), "{s}");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{s}: {msg}");
            assert!(msg.contains("can never be allowed"), "{s}: {msg}");
        }
        // A sibling arc of Microsoft's is not caught by the prefix rule.
        assert!("1.3.6.1.4.1.3110.1".parse::<ExtraEku>().is_ok());
    }

    #[test]
    fn allows_eku() {
        let p = CsrPolicy {
            allowed_extra_eku: vec![ExtraEku::ClientAuth, ExtraEku::Other(oids::ANY_EKU)],
            ..CsrPolicy::default()
        };
        assert!(p.allows_eku(&oids::KP_SERVER_AUTH));
        assert!(p.allows_eku(&oids::KP_CLIENT_AUTH));
        // Even smuggled in through the struct, a forbidden EKU stays refused.
        assert!(!p.allows_eku(&oids::ANY_EKU));
        assert!(!CsrPolicy::default().allows_eku(&oids::KP_CLIENT_AUTH));
    }
}
