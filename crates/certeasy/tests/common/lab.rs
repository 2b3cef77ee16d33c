//! lab-adcs in process, for the ADCS tests.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use lab_adcs::config::Config as LabConfig;
use lab_adcs::service::{start, Lab, Running};

use super::pem_certs;

const LAB: &str = r#"
ca: { name: LAB-CA, state-dir: STATE }
listen: { address: 127.0.0.1, epm-port: 0, icpr-port: 0 }
auth-level: privacy
users:
  - { domain: CORP, name: alice, password: "Passw0rd!" }
templates:
  - { name: WebServer, disposition: issue, eku: [serverAuth] }
  - { name: PendingWebServer, disposition: pend, eku: [serverAuth] }
  - { name: DeniedTemplate, disposition: deny, deny-hresult: 0x80094012 }
  - { name: WrongKey, disposition: issue, eku: [serverAuth], substitute-key: true }
  - { name: ClientAuthToo, disposition: issue, eku: [serverAuth, clientAuth] }
"#;

pub struct LabEnv {
    pub dir: tempfile::TempDir,
    pub lab: Arc<Lab>,
    pub running: Running,
}

pub async fn lab() -> LabEnv {
    lab_with_keytab(None).await
}

/// The lab CA, accepting Kerberos with the service keys of `keytab` (the
/// lab domain's `ca.keytab`) beside NTLM when given.
pub async fn lab_with_keytab(keytab: Option<&std::path::Path>) -> LabEnv {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        LabConfig::parse(&LAB.replace("STATE", &dir.path().join("state").display().to_string()))
            .unwrap();
    if let Some(k) = keytab {
        let kt = msrpc::keytab::Keytab::parse(&std::fs::read(k).unwrap()).unwrap();
        cfg.keytab = Some(Arc::new(kt));
    }
    let lab = Arc::new(Lab::open(cfg).unwrap());
    let running = start(lab.clone(), Ipv4Addr::LOCALHOST, 0, 0).await.unwrap();
    LabEnv { dir, lab, running }
}

impl LabEnv {
    /// Writes the test configuration whose only ADCS authority is
    /// `authority_yaml`, bound to the `test` policy (for the CLI: ports
    /// and DNS are never used).
    pub fn config_file(&self, authority_yaml: &str) -> std::path::PathBuf {
        let opts = super::Options {
            authority_extra: authority_yaml.to_string(),
            extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [lab]\n".into(),
            ..super::Options::default()
        };
        let dns: std::net::SocketAddr = "127.0.0.1:53".parse().unwrap();
        let path = self.dir.path().join("config.yml");
        std::fs::write(
            &path,
            super::config_text(self.dir.path(), 8443, dns, 80, 443, &opts),
        )
        .unwrap();
        path
    }

    /// YAML of an `adcs` authority pointing at this lab CA.
    pub fn authority(&self, name: &str, template: &str, password: &str) -> String {
        let pw = self.dir.path().join(format!("{name}.pw"));
        super::write_secret(&pw, password);
        format!(
            "  - name: {name}\n    type: adcs\n    configuration:\n      ca-name: '127.0.0.1\\LAB-CA'\n      certificate-template: {template}\n      endpoint-mapper-port: {epm}\n      request-timeout: 10s\n      default-timeout: 1m\n      health-check-interval: 100ms\n      auth:\n        method: ntlm\n        domain: CORP\n        username: alice\n        password-file: {pw}\n",
            epm = self.running.epm_addr.port(),
            pw = pw.display(),
        )
    }

    /// YAML of an `adcs` authority authenticating to this lab CA with
    /// Kerberos from the lab domain: alice's keys from `keytab`, the KDC at
    /// 127.0.0.2, the SPN HOST/ca.corp.test.
    pub fn kerberos_authority(
        &self,
        name: &str,
        template: &str,
        keytab: &std::path::Path,
    ) -> String {
        let kt = self.dir.path().join(format!("{name}.keytab"));
        std::fs::copy(keytab, &kt).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&kt, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        format!(
            "  - name: {name}\n    type: adcs\n    configuration:\n      ca-name: '127.0.0.1\\LAB-CA'\n      certificate-template: {template}\n      endpoint-mapper-port: {epm}\n      request-timeout: 10s\n      default-timeout: 1m\n      health-check-interval: 100ms\n      auth:\n        method: kerberos\n        realm: CORP.TEST\n        username: alice\n        keytab: {kt}\n        kdc: tcp://127.0.0.2:88\n        spn: HOST/ca.corp.test\n",
            epm = self.running.epm_addr.port(),
            kt = kt.display(),
        )
    }

    pub fn root_der(&self) -> Vec<u8> {
        let pem = std::fs::read_to_string(self.dir.path().join("state/ca-cert.pem")).unwrap();
        pem_certs(&pem).remove(0)
    }
}
