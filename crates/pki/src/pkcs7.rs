//! Certificates out of a PKCS #7 / CMS SignedData (what ADCS returns as the
//! "encoded certificate" chain), and ordering them into a chain.

use crate::certs::{parse_cert, CertError};

/// One DER TLV: (tag, value) and the rest of the input.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let err = |m: &str| CertError(format!("PKCS #7: {m}"));
    let (&tag, rest) = input.split_first().ok_or_else(|| err("truncated tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(err("high tag numbers are not used in SignedData"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| err("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(err("unsupported or truncated length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(err("value runs past the end of the input"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// OID 1.2.840.113549.1.7.2 (signedData), DER content bytes.
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

/// The certificates of a DER ContentInfo wrapping SignedData, in the order
/// they appear. Each is checked to parse as an X.509 certificate.
///
/// # Errors
/// [`CertError`] when the structure is not a SignedData or a certificate
/// does not parse.
pub fn certs_from_pkcs7(der: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let err = |m: &str| CertError(format!("PKCS #7: {m}"));
    let (tag, content_info, trailing) = tlv(der)?;
    if tag != 0x30 || !trailing.is_empty() {
        return Err(err("expected one ContentInfo SEQUENCE"));
    }
    let (tag, oid, rest) = tlv(content_info)?;
    if tag != 0x06 || oid != SIGNED_DATA {
        return Err(err("content type is not signedData"));
    }
    let (tag, explicit, _) = tlv(rest)?;
    if tag != 0xa0 {
        return Err(err("missing [0] content"));
    }
    let (tag, signed_data, _) = tlv(explicit)?;
    if tag != 0x30 {
        return Err(err("SignedData is not a SEQUENCE"));
    }
    // version, digestAlgorithms, encapContentInfo, then optional [0] certificates.
    let mut rest = signed_data;
    for expected in [0x02u8, 0x31, 0x30] {
        let (tag, _, r) = tlv(rest)?;
        if tag != expected {
            return Err(err("malformed SignedData header"));
        }
        rest = r;
    }
    let mut out = Vec::new();
    if let Ok((0xa0, mut certs, _)) = tlv(rest) {
        while !certs.is_empty() {
            let (tag, _, r) = tlv(certs)?;
            let whole = &certs[..certs.len() - r.len()];
            if tag == 0x30 {
                parse_cert(whole)?;
                out.push(whole.to_vec());
            }
            certs = r;
        }
    }
    Ok(out)
}

/// Orders `pool` into the chain above `leaf_der`: issuer first, following
/// subject/issuer names, without the leaf itself. Certificates that are not
/// on the path are dropped.
///
/// # Errors
/// [`CertError`] when a certificate does not parse.
pub fn chain_above(leaf_der: &[u8], pool: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CertError> {
    let names = |der: &[u8]| -> Result<(Vec<u8>, Vec<u8>), CertError> {
        use der::Encode;
        let c = parse_cert(der)?;
        let tbs = c.tbs_certificate();
        let subject = tbs
            .subject()
            .to_der()
            .map_err(|e| CertError(e.to_string()))?;
        let issuer = tbs
            .issuer()
            .to_der()
            .map_err(|e| CertError(e.to_string()))?;
        Ok((subject, issuer))
    };
    let mut parsed = Vec::new();
    for der in pool {
        if der.as_slice() != leaf_der {
            parsed.push((names(der)?, der.clone()));
        }
    }
    let mut chain = Vec::new();
    let (_, mut issuer) = names(leaf_der)?;
    while let Some(pos) = parsed
        .iter()
        .position(|((subject, _), _)| *subject == issuer)
    {
        let ((subject, next_issuer), der) = parsed.remove(pos);
        chain.push(der);
        if next_issuer == subject {
            break;
        }
        issuer = next_issuer;
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::der_w;

    fn signed_data(certs: &[&[u8]]) -> Vec<u8> {
        let certs: Vec<u8> = certs.iter().flat_map(|c| c.to_vec()).collect();
        let sd = der_w::seq(&[
            &der_w::int(1),
            &der_w::set(&[]),
            &der_w::seq(&[&der_w::oid("1.2.840.113549.1.7.1")]),
            &der_w::ctx(0, true, &certs),
            &der_w::set(&[]),
        ]);
        der_w::seq(&[
            &der_w::oid("1.2.840.113549.1.7.2"),
            &der_w::ctx(0, true, &sd),
        ])
    }

    #[test]
    fn extracts_and_orders_a_chain() {
        let files =
            crate::generate_ca("chain test", crate::CaKeyType::EcdsaP256, true, b"pw").unwrap();
        let ca = crate::BuiltinCa::load(&files, b"pw").unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let names = [crate::DnsName::parse("a.example").unwrap()];
        let now = time::OffsetDateTime::now_utc();
        let issued = ca
            .issue(&spki, &names, now, now + time::Duration::days(1))
            .unwrap();
        let root = ca.root_cert_der().to_vec();
        let inter = issued.chain_der[0].clone();
        // Unordered, with the leaf inside, as CAs often send it.
        let p7 = signed_data(&[&root, &issued.leaf_der, &inter]);
        let certs = certs_from_pkcs7(&p7).unwrap();
        assert_eq!(certs.len(), 3);
        let chain = chain_above(&issued.leaf_der, &certs).unwrap();
        assert_eq!(chain, vec![inter, root]);
    }

    #[test]
    fn refuses_what_is_not_signed_data() {
        assert!(certs_from_pkcs7(&[]).is_err());
        assert!(certs_from_pkcs7(&der_w::seq(&[&der_w::oid("1.2.840.113549.1.7.1")])).is_err());
        let mut p7 = signed_data(&[]);
        p7.push(0);
        assert!(certs_from_pkcs7(&p7).is_err(), "trailing bytes");
        assert_eq!(
            certs_from_pkcs7(&signed_data(&[])).unwrap(),
            Vec::<Vec<u8>>::new()
        );
    }
}
