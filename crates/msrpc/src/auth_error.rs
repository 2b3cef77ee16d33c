//! The error of authentication and message protection, in a module of its
//! own: both the security-context code (`auth`) and the DCE-style Kerberos
//! acceptor (`dce_kerberos`) that `auth` calls produce it, and neither may
//! import the other back (tests/layers.rs forbids module circles).

/// Authentication errors.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credentials were refused (wrong user, domain or password).
    #[error("logon denied: {0}")]
    LogonDenied(String),
    /// A signature did not verify or a sealed PDU did not decrypt.
    #[error("message integrity check failed: {0}")]
    Integrity(String),
    /// Malformed security token.
    #[error("invalid security token: {0}")]
    InvalidToken(String),
    /// Unsupported authentication type or level.
    #[error("unsupported authentication: {0}")]
    Unsupported(String),
    /// Any other failure inside the security provider.
    #[error("security provider error: {0}")]
    Provider(String),
    /// A Kerberos failure with what to do about it.
    #[error("Kerberos: {0}")]
    Kerberos(String),
}
