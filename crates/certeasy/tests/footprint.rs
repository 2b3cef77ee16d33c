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
        order.poll_certificate(&RetryPolicy::new()).await.unwrap();
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
