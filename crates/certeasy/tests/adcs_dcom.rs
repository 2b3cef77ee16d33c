//! The DCOM side of `certeasy adcs`: `adcs check` reports enrollment over
//! DCOM, the CA's templates and the right to revoke; `adcs approve|deny`
//! decide requests pending at lab-adcs over MS-CSRA.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};

use common::lab::{lab, LabEnv};

async fn run(args: Vec<String>, config: PathBuf) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::certeasy_cli(&args, &config)
    })
    .await
    .unwrap()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn status(l: &LabEnv, id: u32) -> String {
    let rec = l
        .lab
        .state()
        .view(|s| s.requests.get(&id).cloned())
        .unwrap()
        .unwrap();
    lab_adcs::service::Lab::status_line(&rec)
}

async fn pending(l: &LabEnv, csr_path: &Path) -> u32 {
    let cfg = l.config_file(&l.authority("lab", "PendingWebServer", "Passw0rd!"));
    let (code, out) = run(
        args(&[
            "adcs",
            "request",
            "--authority",
            "lab",
            "--csr",
            csr_path.to_str().unwrap(),
        ]),
        cfg,
    )
    .await;
    assert_eq!(code, 3, "{out}");
    out.split("pending: request id ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request id in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_dcom_templates_and_revocation_rights() {
    let l = lab().await;
    let cfg = l.config_file(&l.authority("lab", "WebServer", "Passw0rd!"));
    let (code, out) = run(args(&["adcs", "check"]), cfg).await;
    assert_eq!(code, 0, "{out}");
    for needle in [
        "✓ [lab] enrollment over DCOM (ICertRequestD2",
        "✓ [lab] the CA publishes 5 template(s) (ICertAdminD2::GetCAProperty): WebServer, PendingWebServer, DeniedTemplate, WrongKey, ClientAuthToo",
        "✓ [lab] template WebServer is published on the CA",
        "✓ [lab] the service account may revoke, approve and deny",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // a template the CA does not publish fails with the fix
    let cfg = l.config_file(&l.authority("lab", "NotPublished", "Passw0rd!"));
    let (code, out) = run(args(&["adcs", "check"]), cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ [lab] template NotPublished is not among the CA's templates")
            && out.contains("publish it on the CA"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_and_deny_pending_requests() {
    let l = lab().await;
    let (csr, _) = common::csr(&["pending.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let csr_path = l.dir.path().join("req.der");
    std::fs::write(&csr_path, &csr).unwrap();
    let first = pending(&l, &csr_path).await;
    let second = pending(&l, &csr_path).await;
    assert_eq!(status(&l, first), "pending");

    let cfg = l.config_file(&l.authority("lab", "WebServer", "Passw0rd!"));
    let (code, out) = run(
        args(&["adcs", "approve", "--authority", "lab", &first.to_string()]),
        cfg.clone(),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("request {first} issued")), "{out}");
    assert_eq!(status(&l, first), "issued");

    let (code, out) = run(
        args(&["adcs", "deny", "--authority", "lab", &second.to_string()]),
        cfg.clone(),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(status(&l, second), "denied");

    // denying an issued request: the CA's refusal, explained
    let (code, out) = run(
        args(&["adcs", "deny", "--authority", "lab", &first.to_string()]),
        cfg.clone(),
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CERTSRV_E_BAD_REQUESTSTATUS") && out.contains("only pending requests"),
        "{out}"
    );
    assert_eq!(status(&l, first), "issued");

    // an unknown authority is a usage error
    let (code, out) = run(args(&["adcs", "approve", "--authority", "nope", "1"]), cfg).await;
    assert_eq!(code, 2, "{out}");
}
