//! One authentication per association: a burst of issuances through the
//! `adcs` crate's [`Enrollment`] authenticates a bounded number of times —
//! the concurrency, not the number of requests — also when lab-adcs (the
//! real binary, so its connections really die) restarts mid-burst. The
//! server's log is the second witness: it counts the NTLM logons it saw.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use certeasy_adcs::pool::POOL_SIZE;
use certeasy_adcs::{AdcsTarget, AuthLevel, AuthMethod, Enrollment};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Lab {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the lab-adcs binary on fixed ports and waits for its ready line.
fn start(dir: &std::path::Path, epm: u16, icpr: u16, n: u32) -> Lab {
    let example = include_str!("../../../examples/lab-adcs.yml");
    let cfg = dir.join("lab-adcs.yml");
    let text: String = example
        .lines()
        .map(|l| {
            if l.starts_with("  state-dir:") {
                format!("  state-dir: {}", dir.join("state").display())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join(format!("serve-{n}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab-adcs"))
        .args(["serve", "-f"])
        .arg(&cfg)
        .args(["--address", "127.0.0.1", "--epm-port"])
        .arg(epm.to_string())
        .arg("--icpr-port")
        .arg(icpr.to_string())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("lab-adcs ready:"), "{line}");
    Lab { child, log }
}

fn logons(lab: &Lab) -> usize {
    std::fs::read_to_string(&lab.log)
        .unwrap()
        .matches("NTLM authenticated")
        .count()
}

fn target(icpr: u16) -> AdcsTarget {
    AdcsTarget {
        host: "127.0.0.1".into(),
        ca: "LAB-CA".into(),
        ca_name: "127.0.0.1\\LAB-CA".into(),
        template: "WebServer".into(),
        method: AuthMethod::Ntlm,
        domain: "CORP".into(),
        username: "alice".into(),
        password: "Passw0rd!".into(),
        realm: None,
        keytab: None,
        kdc: None,
        spn: None,
        port: Some(icpr),
        endpoint_mapper_port: 135,
        auth_level: AuthLevel::Privacy,
        default_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(20),
        ca_chain: Vec::new(),
        disable_ca_revocation: false,
        transport: Default::default(),
        ldap: None,
    }
}

fn csr(name: &str) -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// `workers` tasks, each submitting `each` CSRs one after the other.
async fn burst(e: &Arc<Enrollment>, workers: usize, each: usize) {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let e = e.clone();
        set.spawn(async move {
            for i in 0..each {
                let r = e.submit(&csr(&format!("w{w}-{i}.example.test"))).await;
                assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_authenticates_once_per_association_also_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (epm, icpr) = (free_port(), free_port());
    let e = Arc::new(Enrollment::new(&target(icpr)));

    let lab = start(dir.path(), epm, icpr, 1);
    // 4 workers × 6 issuances: at most one association per worker
    burst(&e, 4, 6).await;
    let first = e.authentications();
    assert!(
        (1..=4).contains(&first),
        "24 issuances with 4 workers authenticated {first} times"
    );
    assert_eq!(logons(&lab) as u64, first, "the server saw as many logons");

    // restart mid-burst: the pooled associations are dead; each worker that
    // finds one re-authenticates once and carries on
    drop(lab);
    let lab = start(dir.path(), epm, icpr, 2);
    burst(&e, 4, 4).await;
    let after = e.authentications() - first;
    assert!(
        (1..=POOL_SIZE as u64).contains(&after),
        "16 issuances after a restart authenticated {after} times"
    );
    assert_eq!(logons(&lab) as u64, after);

    // what every issuance cost before the pool: one authentication each
    let before = e.authentications();
    for i in 0..3 {
        e.submit_unpooled(&csr(&format!("u{i}.example.test")))
            .await
            .unwrap();
    }
    assert_eq!(e.authentications() - before, 3);
}
