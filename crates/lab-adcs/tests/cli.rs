//! The `lab-adcs` binary end to end: `serve` on ephemeral ports, then the
//! `request`, `approve`, `deny` and `list` subcommands against it.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

const BIN: &str = env!("CARGO_BIN_EXE_lab-adcs");

struct Server {
    child: Child,
    epm_port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "-f"])
        .arg(config)
        .args(["--epm-port", "0", "--icpr-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("lab-adcs ready:"), "{line}");
    let epm = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("epm="))
        .unwrap();
    let epm_port = epm.rsplit(':').next().unwrap().parse().unwrap();
    Server { child, epm_port }
}

fn request(dir: &Path, epm_port: u16, extra: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args([
            "request",
            "--host",
            "127.0.0.1",
            "--epm-port",
            &epm_port.to_string(),
        ])
        .args(["--domain", "CORP", "--user", "alice", "--ca", "LAB-CA"])
        .arg("--password-file")
        .arg(dir.join("password"))
        .arg("--out")
        .arg(dir.join("out.pem"))
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or("")
        .trim()
}

#[test]
fn serve_request_approve_deny() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/lab-adcs.yml"
    ))
    .unwrap();
    let cfg: String = example
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("state-dir:") {
                "  state-dir: state".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = dir.path().join("lab.yml");
    std::fs::write(&config, cfg).unwrap();
    std::fs::write(dir.path().join("password"), "Passw0rd!\n").unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = CertificateParams::new(vec!["cli.example.test".to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    std::fs::write(dir.path().join("req.pem"), csr.pem().unwrap()).unwrap();
    let csr_path = dir.path().join("req.pem").display().to_string();

    let srv = serve(&config);
    assert!(
        dir.path().join("state/ca-cert.pem").exists(),
        "CA root written for tests to trust"
    );

    // issued (privacy), certificate written
    let (code, out) = request(
        dir.path(),
        srv.epm_port,
        &["--template", "WebServer", "--csr", &csr_path],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(field(&out, "Disposition:"), "issued");
    assert!(std::fs::read_to_string(dir.path().join("out.pem"))
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    std::fs::remove_file(dir.path().join("out.pem")).unwrap();

    // integrity is refused by a privacy-only CA
    let (code, out) = request(
        dir.path(),
        srv.epm_port,
        &[
            "--template",
            "WebServer",
            "--csr",
            &csr_path,
            "--auth-level",
            "integrity",
        ],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("E_ACCESSDENIED"), "{out}");

    // pending → approve → retrieve
    let (code, out) = request(
        dir.path(),
        srv.epm_port,
        &["--template", "PendingWebServer", "--csr", &csr_path],
    );
    assert_eq!(code, 2, "{out}");
    let id = field(&out, "Request ID:").to_owned();
    assert!(!dir.path().join("out.pem").exists());
    let st = Command::new(BIN)
        .args(["approve", "-f"])
        .arg(&config)
        .arg(&id)
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let (code, out) = request(dir.path(), srv.epm_port, &["--retrieve", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("out.pem").exists());

    // pending → deny → retrieve says denied
    let (_, out) = request(
        dir.path(),
        srv.epm_port,
        &["--template", "PendingWebServer", "--csr", &csr_path],
    );
    let id2 = field(&out, "Request ID:").to_owned();
    let st = Command::new(BIN)
        .args(["deny", "-f"])
        .arg(&config)
        .arg(&id2)
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let (code, out) = request(dir.path(), srv.epm_port, &["--retrieve", &id2]);
    assert_eq!(code, 3, "{out}");
    assert!(
        field(&out, "Disposition:").contains("E_ACCESSDENIED"),
        "{out}"
    );

    // denied template
    let (code, out) = request(
        dir.path(),
        srv.epm_port,
        &["--template", "DeniedTemplate", "--csr", &csr_path],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        field(&out, "Disposition:").contains("CERTSRV_E_TEMPLATE_DENIED"),
        "{out}"
    );

    // wrong password
    std::fs::write(dir.path().join("password"), "nope\n").unwrap();
    let (code, out) = request(
        dir.path(),
        srv.epm_port,
        &["--template", "WebServer", "--csr", &csr_path],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("authentication to the CA failed"), "{out}");

    let list = Command::new(BIN)
        .args(["list", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
}
