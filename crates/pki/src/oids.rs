//! Object identifiers used by the security model, with their names for
//! refusal messages.

use const_oid::ObjectIdentifier as Oid;

macro_rules! oids {
    ($($(#[$doc:meta])* $name:ident = $dotted:literal, $label:literal;)*) => {
        $( $(#[$doc])* pub const $name: Oid = Oid::new_unwrap($dotted); )*
        /// A human-readable name for a known OID.
        pub fn name_of(oid: &Oid) -> Option<&'static str> {
            $( if *oid == $name { return Some($label); } )*
            None
        }
    };
}

oids! {
    // --- CSR attributes.
    /// PKCS#9 extensionRequest.
    EXTENSION_REQUEST = "1.2.840.113549.1.9.14", "extensionRequest";
    /// PKCS#9 challengePassword.
    CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7", "challengePassword";
    /// PKCS#9 unstructuredName.
    UNSTRUCTURED_NAME = "1.2.840.113549.1.9.2", "unstructuredName";
    /// Microsoft enrollment name-value pair (certificate template etc.).
    MS_ENROLLMENT_NAME_VALUE_PAIR = "1.3.6.1.4.1.311.13.2.1", "Microsoft enrollment name-value pair";
    /// Microsoft enrollment CSP provider.
    MS_ENROLLMENT_CSP_PROVIDER = "1.3.6.1.4.1.311.13.2.2", "Microsoft enrollment CSP provider";
    /// Microsoft OS version.
    MS_OS_VERSION = "1.3.6.1.4.1.311.13.2.3", "Microsoft OS version";
    /// Microsoft request client info.
    MS_REQUEST_CLIENT_INFO = "1.3.6.1.4.1.311.21.20", "Microsoft request client info";

    // --- Subject attribute types.
    /// commonName.
    CN = "2.5.4.3", "CN";
    /// surname.
    SURNAME = "2.5.4.4", "SN";
    /// serialNumber.
    SERIAL_NUMBER = "2.5.4.5", "serialNumber";
    /// countryName.
    C = "2.5.4.6", "C";
    /// localityName.
    L = "2.5.4.7", "L";
    /// stateOrProvinceName.
    ST = "2.5.4.8", "ST";
    /// streetAddress.
    STREET = "2.5.4.9", "street";
    /// organizationName.
    O = "2.5.4.10", "O";
    /// organizationalUnitName.
    OU = "2.5.4.11", "OU";
    /// title.
    TITLE = "2.5.4.12", "title";
    /// domainComponent.
    DC = "0.9.2342.19200300.100.1.25", "DC";
    /// userId.
    UID = "0.9.2342.19200300.100.1.1", "UID";
    /// emailAddress (PKCS#9).
    EMAIL_ADDRESS = "1.2.840.113549.1.9.1", "emailAddress";

    // --- Extensions.
    /// subjectAltName.
    SUBJECT_ALT_NAME = "2.5.29.17", "subjectAltName";
    /// issuerAltName.
    ISSUER_ALT_NAME = "2.5.29.18", "issuerAltName";
    /// extKeyUsage.
    EXT_KEY_USAGE = "2.5.29.37", "extKeyUsage";
    /// keyUsage.
    KEY_USAGE = "2.5.29.15", "keyUsage";
    /// basicConstraints.
    BASIC_CONSTRAINTS = "2.5.29.19", "basicConstraints";
    /// nameConstraints.
    NAME_CONSTRAINTS = "2.5.29.30", "nameConstraints";
    /// subjectKeyIdentifier.
    SUBJECT_KEY_IDENTIFIER = "2.5.29.14", "subjectKeyIdentifier";
    /// authorityKeyIdentifier.
    AUTHORITY_KEY_IDENTIFIER = "2.5.29.35", "authorityKeyIdentifier";
    /// cRLDistributionPoints.
    CRL_DISTRIBUTION_POINTS = "2.5.29.31", "cRLDistributionPoints";
    /// certificatePolicies.
    CERTIFICATE_POLICIES = "2.5.29.32", "certificatePolicies";
    /// policyMappings.
    POLICY_MAPPINGS = "2.5.29.33", "policyMappings";
    /// policyConstraints.
    POLICY_CONSTRAINTS = "2.5.29.36", "policyConstraints";
    /// inhibitAnyPolicy.
    INHIBIT_ANY_POLICY = "2.5.29.54", "inhibitAnyPolicy";
    /// subjectDirectoryAttributes.
    SUBJECT_DIRECTORY_ATTRIBUTES = "2.5.29.9", "subjectDirectoryAttributes";
    /// authorityInfoAccess.
    AUTHORITY_INFO_ACCESS = "1.3.6.1.5.5.7.1.1", "authorityInfoAccess";
    /// subjectInfoAccess.
    SUBJECT_INFO_ACCESS = "1.3.6.1.5.5.7.1.11", "subjectInfoAccess";
    /// TLS feature (OCSP must-staple).
    TLS_FEATURE = "1.3.6.1.5.5.7.1.24", "TLS feature (must-staple)";
    /// ACME identifier (RFC 8737), only for TLS-ALPN-01 challenge certificates.
    ACME_IDENTIFIER = "1.3.6.1.5.5.7.1.31", "acmeIdentifier";
    /// Certificate Transparency precertificate poison.
    CT_POISON = "1.3.6.1.4.1.11129.2.4.3", "CT precertificate poison";
    /// Certificate Transparency SCT list.
    CT_SCT_LIST = "1.3.6.1.4.1.11129.2.4.2", "CT SCT list";
    /// Microsoft certificate template name (v1 templates).
    MS_CERTIFICATE_TEMPLATE_NAME = "1.3.6.1.4.1.311.20.2", "Microsoft certificate template name";
    /// Microsoft certificate template information (v2 templates).
    MS_CERTIFICATE_TEMPLATE_INFO = "1.3.6.1.4.1.311.21.7", "Microsoft certificate template information";
    /// Microsoft application policies (the ESC15 vector).
    MS_APPLICATION_POLICIES = "1.3.6.1.4.1.311.21.10", "Microsoft application policies (ESC15)";
    /// Microsoft application policy mappings.
    MS_APPLICATION_POLICY_MAPPINGS = "1.3.6.1.4.1.311.21.11", "Microsoft application policy mappings";
    /// Microsoft application policy constraints.
    MS_APPLICATION_POLICY_CONSTRAINTS = "1.3.6.1.4.1.311.21.12", "Microsoft application policy constraints";
    /// Microsoft NTDS CA security extension (SID, KB5014754).
    MS_NTDS_CA_SECURITY_EXT = "1.3.6.1.4.1.311.25.2", "Microsoft SID security extension";
    /// Microsoft CA version.
    MS_CA_VERSION = "1.3.6.1.4.1.311.21.1", "Microsoft CA version";
    /// Microsoft previous CA certificate hash.
    MS_PREVIOUS_CA_HASH = "1.3.6.1.4.1.311.21.2", "Microsoft previous CA certificate hash";
    /// Microsoft SMIME capabilities.
    SMIME_CAPABILITIES = "1.2.840.113549.1.9.15", "S/MIME capabilities";

    // --- Extended key usages.
    /// anyExtendedKeyUsage.
    ANY_EKU = "2.5.29.37.0", "anyExtendedKeyUsage";
    /// serverAuth.
    KP_SERVER_AUTH = "1.3.6.1.5.5.7.3.1", "serverAuth";
    /// clientAuth.
    KP_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2", "clientAuth";
    /// codeSigning.
    KP_CODE_SIGNING = "1.3.6.1.5.5.7.3.3", "codeSigning";
    /// emailProtection.
    KP_EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4", "emailProtection";
    /// timeStamping.
    KP_TIME_STAMPING = "1.3.6.1.5.5.7.3.8", "timeStamping";
    /// OCSPSigning.
    KP_OCSP_SIGNING = "1.3.6.1.5.5.7.3.9", "OCSPSigning";
    /// ipsecIKE.
    KP_IPSEC_IKE = "1.3.6.1.5.5.7.3.17", "ipsecIKE";
    /// PKINIT client authentication.
    KP_PKINIT_CLIENT_AUTH = "1.3.6.1.5.2.3.4", "PKINIT client authentication";
    /// PKINIT KDC.
    KP_PKINIT_KDC = "1.3.6.1.5.2.3.5", "PKINIT KDC";
    /// Microsoft certificate request agent (enrollment agent, ESC3).
    MS_KP_ENROLLMENT_AGENT = "1.3.6.1.4.1.311.20.2.1", "Microsoft certificate request agent (enrollment agent)";
    /// Microsoft smartcard logon.
    MS_KP_SMARTCARD_LOGON = "1.3.6.1.4.1.311.20.2.2", "Microsoft smartcard logon";
    /// Microsoft UPN (an otherName type, not an EKU; listed for messages).
    MS_UPN = "1.3.6.1.4.1.311.20.2.3", "Microsoft UPN";
    /// Microsoft encrypting file system.
    MS_KP_EFS = "1.3.6.1.4.1.311.10.3.4", "Microsoft encrypting file system";
    /// Microsoft EFS recovery.
    MS_KP_EFS_RECOVERY = "1.3.6.1.4.1.311.10.3.4.1", "Microsoft EFS recovery";
    /// Microsoft document signing.
    MS_KP_DOCUMENT_SIGNING = "1.3.6.1.4.1.311.10.3.12", "Microsoft document signing";
    /// Microsoft certificate trust list signing.
    MS_KP_CTL_SIGNING = "1.3.6.1.4.1.311.10.3.1", "Microsoft trust list signing";
    /// Microsoft key recovery agent.
    MS_KP_KEY_RECOVERY_AGENT = "1.3.6.1.4.1.311.21.6", "Microsoft key recovery agent";
    /// Microsoft private key archival.
    MS_KP_KEY_ARCHIVAL = "1.3.6.1.4.1.311.21.5", "Microsoft private key archival";

    // --- Algorithms.
    /// rsaEncryption.
    RSA_ENCRYPTION = "1.2.840.113549.1.1.1", "rsaEncryption";
    /// md2WithRSAEncryption.
    MD2_WITH_RSA = "1.2.840.113549.1.1.2", "md2WithRSAEncryption";
    /// md5WithRSAEncryption.
    MD5_WITH_RSA = "1.2.840.113549.1.1.4", "md5WithRSAEncryption";
    /// sha1WithRSAEncryption.
    SHA1_WITH_RSA = "1.2.840.113549.1.1.5", "sha1WithRSAEncryption";
    /// RSASSA-PSS.
    RSASSA_PSS = "1.2.840.113549.1.1.10", "RSASSA-PSS";
    /// sha256WithRSAEncryption.
    SHA256_WITH_RSA = "1.2.840.113549.1.1.11", "sha256WithRSAEncryption";
    /// sha384WithRSAEncryption.
    SHA384_WITH_RSA = "1.2.840.113549.1.1.12", "sha384WithRSAEncryption";
    /// sha512WithRSAEncryption.
    SHA512_WITH_RSA = "1.2.840.113549.1.1.13", "sha512WithRSAEncryption";
    /// sha224WithRSAEncryption.
    SHA224_WITH_RSA = "1.2.840.113549.1.1.14", "sha224WithRSAEncryption";
    /// id-ecPublicKey.
    EC_PUBLIC_KEY = "1.2.840.10045.2.1", "id-ecPublicKey";
    /// ecdsa-with-SHA1.
    ECDSA_WITH_SHA1 = "1.2.840.10045.4.1", "ecdsa-with-SHA1";
    /// ecdsa-with-SHA224.
    ECDSA_WITH_SHA224 = "1.2.840.10045.4.3.1", "ecdsa-with-SHA224";
    /// ecdsa-with-SHA256.
    ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2", "ecdsa-with-SHA256";
    /// ecdsa-with-SHA384.
    ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3", "ecdsa-with-SHA384";
    /// ecdsa-with-SHA512.
    ECDSA_WITH_SHA512 = "1.2.840.10045.4.3.4", "ecdsa-with-SHA512";
    /// Ed25519.
    ED25519 = "1.3.101.112", "Ed25519";
    /// Ed448.
    ED448 = "1.3.101.113", "Ed448";
    /// DSA.
    DSA = "1.2.840.10040.4.1", "DSA";
    /// NIST P-256 (prime256v1).
    SECP256R1 = "1.2.840.10045.3.1.7", "P-256";
    /// NIST P-384.
    SECP384R1 = "1.3.132.0.34", "P-384";
    /// NIST P-521.
    SECP521R1 = "1.3.132.0.35", "P-521";
    /// secp256k1.
    SECP256K1 = "1.3.132.0.10", "secp256k1";
}

/// The Microsoft private arc 1.3.6.1.4.1.311.
pub const MICROSOFT_ARC: Oid = Oid::new_unwrap("1.3.6.1.4.1.311");
/// The Kerberos PKINIT arc 1.3.6.1.5.2.3.
pub const PKINIT_ARC: Oid = Oid::new_unwrap("1.3.6.1.5.2.3");

/// "name (dotted)" for known OIDs, else the dotted form.
pub fn describe(oid: &Oid) -> String {
    match name_of(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

/// Is `oid` equal to or below `arc`?
pub fn under(oid: &Oid, arc: &Oid) -> bool {
    oid.as_bytes().starts_with(arc.as_bytes())
}
