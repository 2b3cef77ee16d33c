//! TLS client configurations for validation.
//!
//! Validation never verifies the server's certificate chain (the name is
//! what is being proven; Let's Encrypt does the same for HTTPS redirects and
//! tls-alpn-01 uses a self-signed certificate by design). An unverified
//! HTTPS redirect target reads nothing back to the client: nothing of a
//! redirect target appears in a failure detail (see the `http01` module). The handshake
//! signature *is* verified against the leaf's public key, so the peer must
//! hold the certificate's private key. The signature check does not go
//! through webpki's certificate parser, which refuses certificates with
//! unknown critical extensions — and the tls-alpn-01 certificate carries the
//! critical acmeIdentifier extension by design.

use std::sync::Arc;

use der::Decode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, PeerMisbehaved, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_cert::Certificate;

/// Accepts any certificate chain, but checks the handshake signature.
#[derive(Debug)]
struct AcceptAnyChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(
            message,
            cert,
            dss.scheme,
            dss.signature(),
            &self.algorithms,
            false,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(
            message,
            cert,
            dss.scheme,
            dss.signature(),
            &self.algorithms,
            true,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Verifies `signature` over `message` with the public key of the leaf
/// `cert`, trying each algorithm the provider maps `scheme` to (TLS 1.2 maps
/// a scheme to several; TLS 1.3 allows only its own schemes, and only the
/// first mapping, like rustls).
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    scheme: SignatureScheme,
    signature: &[u8],
    algorithms: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if tls13 && !tls13_scheme(scheme) {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, algs)| *algs)
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let parsed = Certificate::from_der(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let public_key = parsed
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
    let candidates = if tls13 {
        &candidates[..1.min(candidates.len())]
    } else {
        candidates
    };
    if candidates
        .iter()
        .any(|alg| alg.verify_signature(public_key, message, signature).is_ok())
    {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ))
    }
}

/// The signature schemes TLS 1.3 allows in CertificateVerify (RFC 8446 §4.2.3).
fn tls13_scheme(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::ECDSA_NISTP256_SHA256
            | SignatureScheme::ECDSA_NISTP384_SHA384
            | SignatureScheme::ECDSA_NISTP521_SHA512
            | SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
            | SignatureScheme::ED25519
            | SignatureScheme::ED448
    )
}

/// A client configuration that accepts any chain and offers `alpn`.
pub(crate) fn client_config(alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyChain {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config =
        ClientConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_sni = true;
    Ok(Arc::new(config))
}

/// The SNI / verification name for `host` (DNS name or IP literal).
pub(crate) fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_offers_exactly_the_given_alpn() {
        let config = client_config(&[b"acme-tls/1"]).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"acme-tls/1".to_vec()]);
    }

    fn signed(message: &[u8]) -> (CertificateDer<'static>, Vec<u8>) {
        use rcgen::SigningKey;
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["x.test".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.der().clone(), key.sign(message).expect("sign"))
    }

    fn algorithms() -> WebPkiSupportedAlgorithms {
        rustls::crypto::ring::default_provider().signature_verification_algorithms
    }

    #[test]
    fn handshake_signature_is_checked_against_the_leaf_key() {
        let (cert, sig) = signed(b"handshake transcript");
        let scheme = SignatureScheme::ECDSA_NISTP256_SHA256;
        for tls13 in [false, true] {
            assert!(verify_signature(
                b"handshake transcript",
                &cert,
                scheme,
                &sig,
                &algorithms(),
                tls13
            )
            .is_ok());
            assert!(verify_signature(
                b"another transcript",
                &cert,
                scheme,
                &sig,
                &algorithms(),
                tls13
            )
            .is_err());
        }
        let (other_cert, _) = signed(b"x");
        assert!(verify_signature(
            b"handshake transcript",
            &other_cert,
            scheme,
            &sig,
            &algorithms(),
            true
        )
        .is_err());
        assert!(verify_signature(
            b"handshake transcript",
            &cert,
            SignatureScheme::RSA_PKCS1_SHA256,
            &sig,
            &algorithms(),
            true
        )
        .is_err());
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("x.test"),
            Some(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad name").is_none());
    }
}
