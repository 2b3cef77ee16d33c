//! certeasy's X.509 layer, without I/O: DNS name normalisation and the
//! issuance scope grammar, the strict CSR parser and certificate security
//! model (SPEC §5), the issued-certificate check, the built-in CA (key
//! generation, encrypted PKCS#8 at rest, leaf issuance, CRL and OCSP
//! signing), OCSP on the wire and ARI CertIDs.
//!
//! Nothing here touches the network, the file system or an async runtime;
//! the server passes bytes in and gets bytes or verdicts out.
#![forbid(unsafe_code)]

pub mod ari;
pub mod builtin_ca;
pub mod certs;
pub mod csr;
pub mod dnsname;
mod ext;
pub mod issued;
pub mod ocsp;
pub mod oids;
pub mod pkcs7;
pub mod policy;
pub mod scope;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod verify;

pub use ari::{aki_key_id_of, ari_cert_id, ari_serial_hex, parse_ari_cert_id, AriError};
pub use builtin_ca::{
    generate_ca, BuiltinCa, CaError, CaFiles, CaKeyType, CrlEntry, IssuedCert, RevocationUrls,
};
pub use certs::{
    leaf_expiry_and_names, pem_chain, pem_encode, pem_to_der_certs, serial_hex_of_cert,
    spki_of_cert, CertError, PemError,
};
/// Object identifiers (EKUs, extensions) as the checks and the CA use them.
pub use const_oid::ObjectIdentifier;
pub use csr::{check_csr, recheck_stored_csr, ApprovedCsr, CsrRefusal, RefusalKind};
pub use dnsname::{DnsName, NameError};
pub use issued::{chain_links, check_issued, check_issued_for_csr, IssuedInfo, IssuedRefusal};
pub use pkcs7::{certs_from_pkcs7, chain_above};
pub use policy::{CsrPolicy, EcCurve, ExtraEku, KeyPolicy, PolicyError, SignatureAlgorithm};
pub use scope::{Scope, ScopeDecision, ScopeError, ScopeRule};
pub use verify::PublicKeyKind;
