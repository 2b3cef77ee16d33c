//! `lab-adcs status (ID | --serial HEX)`: the one-word state of a request or
//! certificate as another process (the server) recorded it.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use lab_adcs::config::Config;
use lab_adcs::service::Lab;
use msrpc::icpr::CertServerRequest;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

const BIN: &str = env!("CARGO_BIN_EXE_lab-adcs");

fn status(cfg: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["status", "-f"])
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text.trim().to_owned())
}

#[test]
fn status_by_id_and_serial() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lab.yml");
    std::fs::write(
        &cfg,
        "ca: { name: LAB-CA, state-dir: state }\nusers:\n  - { domain: CORP, name: alice, password: x }\ntemplates:\n  - { name: WebServer, disposition: issue }\n  - { name: Pend, disposition: pend }\n",
    )
    .unwrap();
    let lab = Lab::open(Config::load(&cfg).unwrap()).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = CertificateParams::new(vec!["s.test".to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    let issued = lab.handle(
        &CertServerRequest::submit("LAB-CA", "WebServer", &csr),
        "CORP\\alice",
    );
    let pending = lab.handle(
        &CertServerRequest::submit("LAB-CA", "Pend", &csr),
        "CORP\\alice",
    );
    let denied = lab.handle(
        &CertServerRequest::submit("LAB-CA", "Pend", &csr),
        "CORP\\alice",
    );
    lab.deny(denied.request_id, 0x8007_0005).unwrap();

    assert_eq!(
        status(&cfg, &[&issued.request_id.to_string()]),
        (0, "issued".into())
    );
    assert_eq!(
        status(&cfg, &[&pending.request_id.to_string()]),
        (0, "pending".into())
    );
    assert_eq!(
        status(&cfg, &[&denied.request_id.to_string()]),
        (0, "denied".into())
    );

    let rec = lab
        .state()
        .view(|s| s.requests[&issued.request_id].clone())
        .unwrap();
    let serial = rec.serial_hex().unwrap();
    // colons and upper case are accepted
    let pretty: String = serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(status(&cfg, &["--serial", &pretty]), (0, "issued".into()));
    lab.revoke(&serial, 1, None, "CORP\\alice").unwrap();
    assert_eq!(
        status(&cfg, &["--serial", &serial]),
        (0, "revoked keyCompromise".into())
    );
    assert_eq!(
        status(&cfg, &[&issued.request_id.to_string()]),
        (0, "revoked keyCompromise".into())
    );
    let (code, out) = status(&cfg, &["--serial", "0badc0de"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no certificate with serial number"), "{out}");
    let (code, out) = status(&cfg, &["999"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no request 999"), "{out}");
}
