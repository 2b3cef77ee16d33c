//! A throwaway OpenLDAP slapd playing an Active Directory domain controller
//! for the LDAP part of `certeasy adcs check`: started as a child of the
//! test on a free loopback port, LDAPS with a certificate made here, the AD
//! schema subset from `tests/fixtures/ad-pki.schema`, an mdb database
//! filled with `slapadd`, killed when dropped.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";

/// Forest root domain of the fake directory.
pub const DOMAIN_DN: &str = "DC=corp,DC=example";
/// Its configuration naming context.
pub const CONFIG_DN: &str = "CN=Configuration,DC=corp,DC=example";
/// SID of the domain; accounts are `DOMAIN_SID-RID`.
pub const DOMAIN_SID: &str = "S-1-5-21-3623811015-3361044348-30300820";

pub struct Slapd {
    pub dir: tempfile::TempDir,
    child: Child,
    /// LDAPS port.
    pub port: u16,
    /// Plain LDAP port (for StartTLS).
    pub plain_port: u16,
    /// PEM of the CA that issued slapd's certificate.
    pub ca_pem: PathBuf,
    /// PEM of a CA that did not.
    pub other_ca_pem: PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn need(bin: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: the LDAP tests of `adcs check` need OpenLDAP's slapd \
         (Debian package slapd; scripts/test.sh installs it)"
    );
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl Slapd {
    /// Starts slapd serving `ldif` (which must create `DOMAIN_DN` and
    /// below); `rootdse` holds the extra rootDSE attributes.
    pub async fn start(ldif: &str, rootdse: &str) -> Slapd {
        need(SLAPD);
        need(SLAPADD);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // TLS: a root and a server certificate for 127.0.0.1.
        let (root_params, root_key, root_pem) = ca("certeasy test DC root");
        let issuer = Issuer::new(root_params, &root_key);
        let server_key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server
            .subject_alt_names
            .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        server
            .distinguished_name
            .push(DnType::CommonName, "dc01.corp.example");
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();
        std::fs::write(d.join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(d.join("server.key"), server_key.serialize_pem()).unwrap();
        let ca_pem = d.join("dc-root.pem");
        std::fs::write(&ca_pem, root_pem).unwrap();
        let other_ca_pem = d.join("other-root.pem");
        std::fs::write(&other_ca_pem, ca("some other root").2).unwrap();

        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ad-pki.schema");
        std::fs::write(d.join("rootdse.ldif"), rootdse).unwrap();
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = d.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"include /etc/ldap/schema/core.schema
include {schema}
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
rootDSE {d}/rootdse.ldif
database mdb
suffix "{DOMAIN_DN}"
rootdn "CN=admin,{DOMAIN_DN}"
directory {d}/db
maxsize 16777216
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"#,
                schema = schema.display(),
                d = d.display(),
            ),
        )
        .unwrap();
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A free port can be taken between probing and slapd's bind: retry.
        let mut last_log = String::new();
        for _ in 0..3 {
            let free = || {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            };
            let (port, plain_port) = (free(), free());
            let log = std::fs::File::create(d.join("slapd.log")).unwrap();
            let mut child = Command::new(SLAPD)
                .arg("-h")
                .arg(format!(
                    "ldaps://127.0.0.1:{port}/ ldap://127.0.0.1:{plain_port}/"
                ))
                .arg("-f")
                .arg(&conf)
                .arg("-d")
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            if wait_ready(&mut child, port).await && wait_ready(&mut child, plain_port).await {
                return Slapd {
                    dir,
                    child,
                    port,
                    plain_port,
                    ca_pem,
                    other_ca_pem,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(d.join("slapd.log")).unwrap_or_default();
        }
        panic!("slapd did not start:\n{last_log}");
    }

    pub fn url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.port)
    }

    /// The plain LDAP URL (to use with StartTLS).
    pub fn plain_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.plain_port)
    }
}

/// Waits until slapd accepts connections (bounded), or has exited.
async fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Binary SID from `S-1-…`.
pub fn sid(s: &str) -> Vec<u8> {
    let parts: Vec<u64> = s
        .strip_prefix("S-")
        .unwrap()
        .split('-')
        .map(|p| p.parse().unwrap())
        .collect();
    let mut out = vec![parts[0] as u8, (parts.len() - 2) as u8];
    out.extend_from_slice(&parts[1].to_be_bytes()[2..]);
    for sub in &parts[2..] {
        out.extend_from_slice(&(*sub as u32).to_le_bytes());
    }
    out
}

/// `DOMAIN_SID-rid`.
pub fn domain_sid(rid: u32) -> String {
    format!("{DOMAIN_SID}-{rid}")
}

/// Binary GUID from its text form.
pub fn guid(s: &str) -> [u8; 16] {
    let h: Vec<u8> = (0..16)
        .map(|i| {
            let hex = s.replace('-', "");
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    [
        h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6], h[8], h[9], h[10], h[11], h[12], h[13],
        h[14], h[15],
    ]
}

/// The Enroll extended right.
pub const ENROLL: &str = "0e10c968-78fb-11d2-90d4-00c04f79dc55";

/// An ACE: allowed (0x00/0x05) or denied (0x01/0x06), mask, object type, SID.
pub struct Ace<'a> {
    pub deny: bool,
    pub mask: u32,
    pub object_type: Option<&'a str>,
    pub sid: String,
}

pub fn allow(mask: u32, object_type: Option<&str>, sid: String) -> Ace<'_> {
    Ace {
        deny: false,
        mask,
        object_type,
        sid,
    }
}

/// A self-relative security descriptor (owner and group Domain Admins, a
/// DACL with `aces`), the way AD stores nTSecurityDescriptor.
pub fn security_descriptor(aces: &[Ace<'_>]) -> Vec<u8> {
    let mut acl_body = Vec::new();
    for a in aces {
        let mut body = a.mask.to_le_bytes().to_vec();
        let object = a.object_type.is_some();
        if object {
            body.extend_from_slice(&1u32.to_le_bytes());
            body.extend_from_slice(&guid(a.object_type.unwrap()));
        }
        body.extend_from_slice(&sid(&a.sid));
        let ty = match (a.deny, object) {
            (false, false) => 0x00u8,
            (true, false) => 0x01,
            (false, true) => 0x05,
            (true, true) => 0x06,
        };
        acl_body.extend_from_slice(&[ty, 0]);
        acl_body.extend_from_slice(&((4 + body.len()) as u16).to_le_bytes());
        acl_body.extend_from_slice(&body);
    }
    let owner = sid(&domain_sid(512));
    let mut sd = vec![1, 0];
    sd.extend_from_slice(&0x8004u16.to_le_bytes()); // self-relative, DACL present
    let owner_at = 20u32;
    let group_at = owner_at + owner.len() as u32;
    let dacl_at = group_at + owner.len() as u32;
    sd.extend_from_slice(&owner_at.to_le_bytes());
    sd.extend_from_slice(&group_at.to_le_bytes());
    sd.extend_from_slice(&0u32.to_le_bytes());
    sd.extend_from_slice(&dacl_at.to_le_bytes());
    sd.extend_from_slice(&owner);
    sd.extend_from_slice(&owner);
    sd.extend_from_slice(&[4, 0]);
    sd.extend_from_slice(&((8 + acl_body.len()) as u16).to_le_bytes());
    sd.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    sd.extend_from_slice(&[0, 0]);
    sd.extend_from_slice(&acl_body);
    sd
}

/// `pKIExpirationPeriod` for `days`.
pub fn period(days: i64) -> Vec<u8> {
    (-days * 86400 * 10_000_000).to_le_bytes().to_vec()
}

/// An LDIF line holding a binary value.
pub fn b64(attr: &str, value: &[u8]) -> String {
    format!(
        "{attr}:: {}\n",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}
