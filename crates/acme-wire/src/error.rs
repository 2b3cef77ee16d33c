//! The crate's single error type.

/// Everything that can go wrong while decoding or verifying ACME wire data.
///
/// Each variant maps onto one ACME problem type (see
/// [`Problem`](crate::Problem)'s `From<WireError>` implementation). The
/// carried strings are precise, human-readable explanations meant for the
/// `detail` member of a problem document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The request is syntactically wrong (bad JSON, bad base64url, missing or
    /// forbidden members, ...). Maps to `malformed`.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The JWS uses an algorithm that is not supported or does not match the
    /// key. The message names the supported algorithms. Maps to
    /// `badSignatureAlgorithm`.
    #[error("bad signature algorithm: {0}")]
    BadSignatureAlgorithm(String),
    /// The JWS signature does not verify. Maps to `malformed` with the detail
    /// "JWS signature invalid".
    #[error("JWS signature invalid")]
    BadSignature,
    /// The public key is of an unsupported type, too weak or invalid. Maps to
    /// `badPublicKey`.
    #[error("bad public key: {0}")]
    BadPublicKey(String),
}

impl WireError {
    /// The explanation without the category prefix of `Display`, as used for
    /// a problem document's `detail`.
    pub fn detail(&self) -> String {
        match self {
            Self::Malformed(s) | Self::BadSignatureAlgorithm(s) | Self::BadPublicKey(s) => {
                s.clone()
            }
            Self::BadSignature => "JWS signature invalid".to_owned(),
        }
    }

    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        Self::Malformed(msg.into())
    }

    pub(crate) fn bad_key(msg: impl Into<String>) -> Self {
        Self::BadPublicKey(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_detail() {
        let cases = [
            (
                WireError::Malformed("x".into()),
                "malformed request: x",
                "x",
            ),
            (
                WireError::BadSignatureAlgorithm("y".into()),
                "bad signature algorithm: y",
                "y",
            ),
            (
                WireError::BadSignature,
                "JWS signature invalid",
                "JWS signature invalid",
            ),
            (
                WireError::BadPublicKey("z".into()),
                "bad public key: z",
                "z",
            ),
        ];
        for (err, display, detail) in cases {
            assert_eq!(err.to_string(), display);
            assert_eq!(err.detail(), detail);
        }
    }
}
