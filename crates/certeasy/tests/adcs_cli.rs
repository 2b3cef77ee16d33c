//! `certeasy adcs check` and `certeasy adcs request` against lab-adcs: every
//! failure mode reported on its own line with a fix, exit codes as
//! documented.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::Path;

use common::lab::lab;

fn run(args: &[&str], config: &Path) -> (i32, String) {
    common::certeasy_cli(args, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_every_step_and_submits() {
    let l = lab().await;
    let cfg = l.config_file(&l.authority("lab", "WebServer", "Passw0rd!"));
    let (code, out) =
        tokio::task::spawn_blocking(move || run(&["adcs", "check", "--submit"], &cfg))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}");
    for needle in [
        "✓ [lab] host 127.0.0.1 resolves",
        "✓ [lab] endpoint mapper",
        "✓ [lab] TCP",
        "✓ [lab] authenticated as CORP\\alice",
        "✓ [lab] test submission to template \"WebServer\" issued",
        "– [lab] template publication",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_wrong_credentials_with_the_fix() {
    let l = lab().await;
    let cfg = l.config_file(&l.authority("lab", "WebServer", "not-the-password"));
    let (code, out) = tokio::task::spawn_blocking(move || run(&["adcs", "check"], &cfg))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ [lab]")
            && out.contains("fix: check auth.domain, auth.username and the password"),
        "{out}"
    );
    assert!(out.contains("1 check(s) failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_an_unreachable_endpoint_mapper() {
    let l = lab().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = l.authority("lab", "WebServer", "Passw0rd!").replace(
        &format!("endpoint-mapper-port: {}", l.running.epm_addr.port()),
        &format!("endpoint-mapper-port: {closed}"),
    );
    let cfg = l.config_file(&yaml);
    let (code, out) = tokio::task::spawn_blocking(move || run(&["adcs", "check"], &cfg))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ [lab] endpoint mapper") && out.contains("allow TCP 135"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_denied_test_submission() {
    let l = lab().await;
    let cfg = l.config_file(&l.authority("lab", "DeniedTemplate", "Passw0rd!"));
    let (code, out) =
        tokio::task::spawn_blocking(move || run(&["adcs", "check", "--submit"], &cfg))
            .await
            .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ [lab] test submission") && out.contains("CERTSRV_E_TEMPLATE_DENIED"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_writes_the_certificate_or_reports_pending() {
    let l = lab().await;
    let (csr, _) = common::csr(&["byhand.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let csr_path = l.dir.path().join("req.der");
    std::fs::write(&csr_path, &csr).unwrap();
    let out_path = l.dir.path().join("cert.pem");
    let cfg = l.config_file(&l.authority("lab", "WebServer", "Passw0rd!"));
    let (c, p, o) = (cfg.clone(), csr_path.clone(), out_path.clone());
    let (code, out) = tokio::task::spawn_blocking(move || {
        run(
            &[
                "adcs",
                "request",
                "--authority",
                "lab",
                "--csr",
                p.to_str().unwrap(),
                "--out",
                o.to_str().unwrap(),
            ],
            &c,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    let certs = pki::pem_to_der_certs(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    assert_eq!(certs.last().unwrap(), &l.root_der());

    let cfg = l.config_file(&l.authority("lab", "PendingWebServer", "Passw0rd!"));
    let (code, out) = tokio::task::spawn_blocking(move || {
        run(
            &[
                "adcs",
                "request",
                "--authority",
                "lab",
                "--csr",
                csr_path.to_str().unwrap(),
            ],
            &cfg,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("pending: request id") && out.contains("--retrieve"),
        "{out}"
    );
}
