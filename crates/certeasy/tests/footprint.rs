//! SPEC §1, host footprint: the `certeasy` binary runs a batch of issuances
//! under `strace -f`; the trace must show no process created (no fork,
//! vfork, non-thread clone, or execve besides its own start) and no file
//! created outside the workdir. A control run of a shell that spawns and
//! writes proves the analysis can fail.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use instant_acme::{Account, ChallengeType, Identifier, NewAccount, NewOrder, RetryPolicy};

/// What a trace shows.
#[derive(Debug, Default)]
struct Footprint {
    execs: Vec<String>,
    processes_created: Vec<String>,
    files_created_outside: Vec<String>,
    files_created_inside: usize,
    threads_created: usize,
}

const TRACED: &str = "execve,execveat,fork,vfork,clone,clone3,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat";

/// Reads a `strace -f` log. Paths are judged absolute; relative ones are
/// resolved against `cwd`.
fn analyse(trace: &str, cwd: &Path, workdir: &Path) -> Footprint {
    let mut f = Footprint::default();
    let quoted = |line: &str, nth: usize| -> Option<String> {
        line.split('"').nth(2 * nth + 1).map(str::to_string)
    };
    for line in trace.lines() {
        let call = line
            .split_once(' ')
            .map(|(_, rest)| rest.trim_start())
            .unwrap_or("");
        let name = call.split('(').next().unwrap_or("");
        if call.starts_with("<...") || call.starts_with("+++") || call.starts_with("---") {
            continue;
        }
        match name {
            "execve" | "execveat" => f.execs.push(line.to_string()),
            "fork" | "vfork" => f.processes_created.push(line.to_string()),
            "clone" | "clone3" if !call.contains("CLONE_THREAD") => {
                f.processes_created.push(line.to_string())
            }
            "clone" | "clone3" => f.threads_created += 1,
            "open" | "openat" | "creat" | "mkdir" | "mkdirat" | "rename" | "renameat"
            | "renameat2" | "link" | "linkat" | "symlink" | "symlinkat" => {
                let creates = match name {
                    "open" | "openat" => call.contains("O_CREAT"),
                    _ => true,
                };
                // For two-path calls the created path is the last one.
                let target = match name {
                    "rename" | "renameat" | "renameat2" | "link" | "linkat" | "symlink"
                    | "symlinkat" => quoted(call, 1).or_else(|| quoted(call, 0)),
                    _ => quoted(call, 0),
                };
                if let (true, Some(p)) = (creates, target) {
                    let p = if Path::new(&p).is_absolute() {
                        PathBuf::from(&p)
                    } else {
                        cwd.join(&p)
                    };
                    if p.starts_with(workdir) {
                        f.files_created_inside += 1;
                    } else {
                        f.files_created_outside.push(line.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    f
}

fn strace(out: &Path, cwd: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("strace");
    c.args([
        "-f",
        "-qq",
        "-s",
        "256",
        "-e",
        &format!("trace={TRACED}"),
        "-o",
    ])
    .arg(out)
    .arg(program)
    .args(args)
    .current_dir(cwd);
    c
}

#[test]
fn control_a_spawning_writing_process_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = dir.path().join("trace.txt");
    let status = strace(
        &out,
        dir.path(),
        "sh",
        &[
            "-c",
            "/bin/true; echo x > outside.txt; echo y > work/inside.txt",
        ],
    )
    .status()
    .expect("strace is installed (scripts/test.sh installs it)");
    assert!(status.success());
    let f = analyse(&std::fs::read_to_string(&out).unwrap(), dir.path(), &work);
    assert!(f.execs.len() >= 2, "{f:?}");
    assert!(!f.processes_created.is_empty(), "{f:?}");
    assert_eq!(f.files_created_outside.len(), 1, "{f:?}");
    assert!(f.files_created_outside[0].contains("outside.txt"));
}

/// Runs the binary under strace with `opts`, issues five certificates with
/// instant-acme, stops it gracefully, and returns what the trace shows.
async fn traced_issuances(opts: common::Options) -> Footprint {
    traced(opts, None).await
}

/// [`traced_issuances`]; with `status` (the `revocation-status` listener's
/// address), also revokes the last certificate and fetches its OCSP
/// status and the CRL.
async fn traced(opts: common::Options, status: Option<std::net::SocketAddr>) -> Footprint {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let dns = certeasy_va::testing::TestDns::start("test").await.unwrap();
    let tokens: common::Tokens = Arc::new(Mutex::new(HashMap::new()));
    let http_port = common::spawn_http01_responder(tokens.clone()).await;
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        common::config_text(dir.path(), port, dns.addr(), http_port, 1, &opts),
    )
    .unwrap();

    let trace = dir.path().join("trace.txt");
    let mut child = strace(
        &trace,
        dir.path(),
        env!("CARGO_BIN_EXE_certeasy"),
        &["serve", "-f", config.to_str().unwrap()],
    )
    .env("APP_LOG_LEVEL", "warn")
    .stdout(Stdio::piped())
    .spawn()
    .expect("strace is installed (scripts/test.sh installs it)");
    common::wait_until_serving(child.stdout.take().unwrap()).await;

    let directory = format!("https://localhost:{port}/acme/directory");
    let (account, _) = Account::builder_with_root(work.join("ca/builtin/root.pem"))
        .unwrap()
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory,
            None,
        )
        .await
        .unwrap();
    let mut last = String::new();
    for i in 0..5 {
        let name = format!("fp{i}.test");
        dns.set_a(&name, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let ids = [Identifier::Dns(name.clone())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.unwrap();
            let mut ch = a.challenge(ChallengeType::Http01).unwrap();
            tokens.lock().unwrap().insert(
                ch.token.clone(),
                ch.key_authorization().as_str().to_string(),
            );
            ch.set_ready().await.unwrap();
        }
        order.poll_ready(&RetryPolicy::new()).await.unwrap();
        let (der, _) = common::csr(&[name.as_str()], &rcgen::PKCS_ECDSA_P256_SHA256);
        order.finalize_csr(&der).await.unwrap();
        last = order.poll_certificate(&RetryPolicy::new()).await.unwrap();
    }
    if let Some(addr) = status {
        let certs = common::pem_certs(&last);
        account
            .revoke(&instant_acme::RevocationRequest {
                certificate: &rustls::pki_types::CertificateDer::from(certs[0].clone()),
                reason: Some(instant_acme::RevocationReason::KeyCompromise),
            })
            .await
            .unwrap();
        let crl = common::plain::get(addr, "/crl/builtin.crl").await;
        assert_eq!(crl.status, 200);
        let ocsp = common::plain::request(
            addr,
            "POST",
            "/ocsp",
            Some("application/ocsp-request"),
            &ocsp_request(&certs[0], &certs[1]),
        )
        .await;
        assert_eq!(ocsp.status, 200);
        let resp = <pki::ocsp::OcspResponse as der::Decode>::from_der(&ocsp.body).unwrap();
        assert_eq!(resp.response_status, pki::ocsp::ResponseStatus::Successful);
    }

    // Graceful stop: SIGTERM to certeasy itself (the first pid in the trace).
    let text = std::fs::read_to_string(&trace).unwrap();
    let pid = text.split_whitespace().next().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());

    analyse(&std::fs::read_to_string(&trace).unwrap(), dir.path(), &work)
}

/// The server's own footprint must be empty: only its own exec, no process,
/// no file outside the workdir; and the trace must really cover it.
fn assert_clean(f: &Footprint) {
    assert_eq!(
        f.execs.len(),
        1,
        "only certeasy's own start may exec: {:#?}",
        f.execs
    );
    assert!(f.execs[0].contains("certeasy"), "{:?}", f.execs);
    assert!(
        f.processes_created.is_empty(),
        "certeasy created processes: {:#?}",
        f.processes_created
    );
    assert!(
        f.files_created_outside.is_empty(),
        "files created outside the workdir: {:#?}",
        f.files_created_outside
    );
    assert!(f.files_created_inside >= 5, "{f:?}");
    assert!(f.threads_created >= 2, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_with_the_builtin_ca_spawns_nothing_and_writes_only_the_workdir() {
    assert_clean(&traced_issuances(common::Options::default()).await);
}

/// A DER OCSP request for `leaf` issued by `issuer` (SHA-1 CertID).
fn ocsp_request(leaf: &[u8], issuer: &[u8]) -> Vec<u8> {
    use der::asn1::{Null, OctetString};
    use der::{Decode, Encode};
    use x509_cert::Certificate;
    let sha1 = |d: &[u8]| {
        OctetString::new(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, d).as_ref())
            .unwrap()
    };
    let issuer = Certificate::from_der(issuer).unwrap();
    let tbs = issuer.tbs_certificate();
    let leaf = Certificate::from_der(leaf).unwrap();
    pki::ocsp::OcspRequest {
        tbs_request: pki::ocsp::TbsRequest {
            version: None,
            requestor_name: None,
            request_list: vec![pki::ocsp::Request {
                req_cert: pki::ocsp::CertId {
                    hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                        oid: pki::ocsp::SHA1,
                        parameters: Some(der::Any::from(Null)),
                    },
                    issuer_name_hash: sha1(&tbs.subject().to_der().unwrap()),
                    issuer_key_hash: sha1(
                        tbs.subject_public_key_info().subject_public_key.raw_bytes(),
                    ),
                    serial_number: leaf.tbs_certificate().serial_number().clone(),
                },
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_status_spawns_nothing_and_writes_only_the_workdir() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let opts = common::Options {
        extra_sections: format!(
            "revocation-status:\n  listen: \"{addr}\"\n  base-url: \"http://{addr}\"\n"
        ),
        ..common::Options::default()
    };
    assert_clean(&traced(opts, Some(addr)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_through_the_native_adcs_bridge_spawns_nothing_and_writes_only_the_workdir() {
    let l = common::lab::lab().await;
    let opts = common::Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!"),
        extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [lab]\n".into(),
        ..common::Options::default()
    };
    let f = traced_issuances(opts).await;
    assert_clean(&f);
    let requests = l.lab.state().read().unwrap().requests.len();
    assert!(
        requests >= 5,
        "the certificates really came from the ADCS lab CA ({requests} requests)"
    );
}

/// Kerberos against the lab domain's KDC (scripts/interop-kerberos.sh sets
/// `LAB_DOMAIN_DIR`; without it there is no KDC and the test returns early):
/// no child process (no kinit), no credential cache or any other file
/// outside the workdir; the tickets live in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_with_kerberos_spawns_nothing_and_writes_no_ticket_cache() {
    let Some(domain) = std::env::var_os("LAB_DOMAIN_DIR").map(std::path::PathBuf::from) else {
        return;
    };
    let l = common::lab::lab_with_keytab(Some(&domain.join("ca.keytab"))).await;
    let opts = common::Options {
        authority_extra: l.kerberos_authority("lab", "WebServer", &domain.join("alice.keytab")),
        extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [lab]\n".into(),
        ..common::Options::default()
    };
    let f = traced_issuances(opts).await;
    assert_clean(&f);
    let requests = l.lab.state().read().unwrap().requests.len();
    assert!(
        requests >= 5,
        "issued by the lab CA over Kerberos ({requests} requests)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adcs_cli_fallback_shows_its_spawns() {
    let stub = common::stub::StubCa::new();
    let opts = common::Options {
        authority_extra: stub.authority("cli", "StubIssue"),
        extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [cli]\n".into(),
        ..common::Options::default()
    };
    let f = traced_issuances(opts).await;
    // What an EDR sees with the fallback: certreq started for every request.
    let certreq_execs = f.execs.iter().filter(|e| e.contains("certreq")).count();
    assert!(certreq_execs >= 5, "{:#?}", f.execs);
    assert!(!f.processes_created.is_empty());
}
