//! Challenge helpers: key authorizations (RFC 8555 §8.1), the dns-01 TXT
//! value (§8.4), the tls-alpn-01 digest (RFC 8737 §3) and token generation.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use crate::b64u_encode;

/// The key authorization: `token "." thumbprint`.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The dns-01 TXT record value: base64url(SHA-256(key authorization)).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64u_encode(&tls_alpn01_digest(key_authorization))
}

/// The tls-alpn-01 `acmeIdentifier` extension value: SHA-256(key
/// authorization).
pub fn tls_alpn01_digest(key_authorization: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key_authorization.as_bytes()).as_ref());
    out
}

/// A fresh challenge token: 32 random bytes from the OS RNG, base64url (43
/// characters, RFC 8555 §8.3 asks for at least 128 bits of entropy).
///
/// # Panics
///
/// Panics only if the operating system's random number generator fails,
/// in which case no secure token can be produced at all.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system random number generator failed");
    b64u_encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64u_decode;

    #[test]
    fn rfc8555_key_authorization() {
        assert_eq!(
            key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "tp"),
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.tp"
        );
    }

    #[test]
    fn dns01_value_known_answer() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(
            dns01_txt_value("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        let d = tls_alpn01_digest("abc");
        assert_eq!(d[0], 0xba);
        assert_eq!(d[31], 0xad);
        assert_eq!(b64u_decode(&dns01_txt_value("abc")).unwrap(), d);
    }

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(b64u_decode(&a).unwrap().len(), 32);
    }
}
