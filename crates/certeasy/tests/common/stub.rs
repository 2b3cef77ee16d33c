//! The certreq stub (tests/fixtures/certreq-stub.sh) with its own CA, for
//! tests of the `adcs-cli` authority.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

pub struct StubCa {
    pub dir: tempfile::TempDir,
}

impl StubCa {
    /// A stub state directory with a fresh CA, and a wrapper `certreq`
    /// script that points the stub at it.
    pub fn new() -> StubCa {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Stub ADCS CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("ca.key"), key.serialize_pem()).unwrap();
        std::fs::write(
            dir.path().join("leaf.cnf"),
            "[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certreq-stub.sh");
        let wrapper = dir.path().join("certreq");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nCERTREQ_STUB_STATE='{}' exec '{}' \"$@\"\n",
                dir.path().display(),
                stub.display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        StubCa { dir }
    }

    pub fn certreq(&self) -> PathBuf {
        self.dir.path().join("certreq")
    }

    /// YAML of an `adcs-cli` authority using this stub.
    pub fn authority(&self, name: &str, template: &str) -> String {
        format!(
            "  - name: {name}\n    type: adcs-cli\n    configuration:\n      ca-name: 'stubhost\\Stub ADCS CA'\n      certificate-template: {template}\n      certreq-path: {}\n      default-timeout: 1m\n",
            self.certreq().display()
        )
    }

    /// Approves pending request `id` (what a CA officer would do).
    pub fn approve(&self, id: i64) {
        std::fs::write(self.dir.path().join(format!("approved-{id}")), "").unwrap();
    }

    pub fn root_der(&self) -> Vec<u8> {
        super::pem_certs(&std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap())
            .remove(0)
    }
}
