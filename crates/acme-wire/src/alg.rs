//! JWS signature algorithms accepted for ACME requests.

use std::fmt;

/// A JWS `alg` supported for ACME request signatures (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// EdDSA with Ed25519.
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm, in the order they are advertised.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Rs256,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es512,
        Algorithm::EdDsa,
    ];

    /// The registered JWS name: "RS256", "ES256", "ES384", "ES512", "EdDSA".
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses a JWS `alg` value (exact, case-sensitive as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// "RS256, ES256, ES384, ES512, EdDSA", for error messages.
    pub fn supported_list() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert_eq!(a.to_string(), a.name());
        }
    }

    #[test]
    fn unknown_names() {
        for n in [
            "none", "HS256", "PS256", "RS384", "RS512", "rs256", "EDDSA", "Ed25519", "",
        ] {
            assert_eq!(Algorithm::from_name(n), None, "{n}");
        }
    }

    #[test]
    fn list() {
        assert_eq!(
            Algorithm::supported_list(),
            "RS256, ES256, ES384, ES512, EdDSA"
        );
    }
}
