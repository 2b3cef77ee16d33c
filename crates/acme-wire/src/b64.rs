//! Strict base64url (RFC 4648 §5, no padding) as used throughout JOSE and ACME.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::WireError;

/// Encodes `data` as base64url without padding.
pub fn b64u_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes strict base64url: URL-safe alphabet only, no `=` padding, no
/// whitespace, no non-zero trailing bits (so every byte string has exactly one
/// accepted encoding).
pub fn b64u_decode(s: &str) -> Result<Vec<u8>, WireError> {
    if let Some(c) = s.chars().find(|c| !is_b64u_char(*c)) {
        let why = match c {
            '=' => "padding '=' is not allowed".to_owned(),
            '+' | '/' => format!(
                "character '{c}' belongs to the standard base64 alphabet; use base64url ('-' and '_')"
            ),
            c if c.is_whitespace() => "whitespace is not allowed".to_owned(),
            c => format!("character {c:?} is not in the base64url alphabet"),
        };
        return Err(WireError::malformed(format!("invalid base64url: {why}")));
    }
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| WireError::malformed(format!("invalid base64url: {e}")))
}

/// Decodes the base64url member `name`, naming it in the error.
pub(crate) fn decode_member(name: &str, s: &str) -> Result<Vec<u8>, WireError> {
    b64u_decode(s).map_err(|e| WireError::malformed(format!("\"{name}\": {}", e.detail())))
}

fn is_b64u_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_lengths() {
        for len in 0..64u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let enc = b64u_encode(&data);
            assert!(!enc.contains('='));
            assert_eq!(b64u_decode(&enc).unwrap(), data);
        }
    }

    #[test]
    fn url_safe_alphabet() {
        assert_eq!(b64u_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64u_decode("-_8").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn empty() {
        assert_eq!(b64u_encode(b""), "");
        assert_eq!(b64u_decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn rejects_padding() {
        let err = b64u_decode("AQ==").unwrap_err();
        assert!(
            matches!(&err, WireError::Malformed(m) if m.contains("padding")),
            "{err}"
        );
    }

    #[test]
    fn rejects_standard_alphabet() {
        for s in ["+_8", "-/8"] {
            let err = b64u_decode(s).unwrap_err();
            assert!(
                matches!(&err, WireError::Malformed(m) if m.contains("standard base64")),
                "{err}"
            );
        }
    }

    #[test]
    fn rejects_whitespace_and_junk() {
        for s in ["AQID\n", "AQ ID", " AQID", "AQ*D", "AQé"] {
            assert!(
                matches!(b64u_decode(s), Err(WireError::Malformed(_))),
                "{s:?}"
            );
        }
    }

    #[test]
    fn rejects_impossible_length_and_trailing_bits() {
        // 5 characters can never be a valid unpadded encoding.
        assert!(b64u_decode("AQIDB").is_err());
        // "AR" encodes 0x01 with non-zero trailing bits: not canonical.
        assert!(b64u_decode("AR").is_err());
        assert_eq!(b64u_decode("AQ").unwrap(), vec![1]);
    }
}
