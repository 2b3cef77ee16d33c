//! Revocation as a durable job: revoke-cert (and `certeasy cert revoke`)
//! records the revocation and queues a `revoke` job in one transaction;
//! the job takes it to the CA, retrying with backoff across restarts
//! while the CA is down; a refusal is final; `disable-ca-revocation`
//! keeps it local.
//!
//! The built-in CA's `simulate-failure` (test-only configuration) stands
//! for a CA that is down or refuses: it is the only authority in this
//! build whose revocation can succeed (ADCS revocation over MS-CSRA comes
//! with the other half of issue 15; its end-to-end test against lab-adcs
//! is at the end, ignored until then).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::Duration;

use certeasy::store::jobs::JobKind;
use certeasy::store::{CaRevocation, CertRow};
use common::lab::lab;
use common::{binding, csr, pem_certs, Harness, Options};
use instant_acme::{ChallengeType, RevocationReason, RevocationRequest};
use rustls::pki_types::CertificateDer;

fn authority(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    type: builtin\n    configuration:\n      common-name: \"{name} CA\"\n      password: \"pw\"\n      health-check-interval: 100ms\n{extra}")
}

const DOWN: &str = "      simulate-failure: transient\n";

/// Issues a certificate for `name` and returns its stored row.
async fn issue(h: &Harness, account: &instant_acme::Account, name: &str) -> (CertRow, Vec<u8>) {
    let (der, _) = csr(&[name], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(account, &[name], ChallengeType::Http01, &der)
        .await
        .unwrap();
    let leaf = pem_certs(&pem).remove(0);
    let serial = pki::serial_hex_of_cert(&leaf).unwrap();
    let row = h
        .server()
        .ra
        .store
        .cert_by_serial(&serial)
        .await
        .unwrap()
        .remove(0);
    (row, leaf)
}

async fn revoke(account: &instant_acme::Account, leaf: &[u8], reason: RevocationReason) {
    account
        .revoke(&RevocationRequest {
            certificate: &CertificateDer::from(leaf.to_vec()),
            reason: Some(reason),
        })
        .await
        .unwrap();
}

/// Waits (bounded) until the revocation of `id` leaves `pending`.
async fn wait_settled(h: &Harness, id: &str) -> CaRevocation {
    for _ in 0..400 {
        let r = h.server().ra.store.revocation(id).await.unwrap().unwrap();
        if r.ca != CaRevocation::Pending {
            return r.ca;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the revocation of {id} stayed pending at the CA");
}

fn set_down(h: &Harness, down: bool) {
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    let up = authority("ca2", "");
    let dn = authority("ca2", DOWN);
    let text = if down {
        text.replace(&up, &dn)
    } else {
        text.replace(&dn, &up)
    };
    std::fs::write(&h.config_path, text).unwrap();
}

/// `certeasy cert show` (it runs a runtime of its own).
async fn show(h: &Harness, serial: &str) -> String {
    let (file, serial) = (h.config_path.clone(), serial.to_string());
    tokio::task::spawn_blocking(move || certeasy::cli::cert::show(&file, &serial))
        .await
        .unwrap()
        .map_err(|f| f.message)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_waits_for_a_ca_that_is_down_and_reaches_it_after_a_restart() {
    let opts = Options {
        authority_extra: authority("ca2", ""),
        extra_sections: binding("ca2", "first_available") + "metrics:\n  listen: \"127.0.0.1:0\"\n",
        ..Options::default()
    };
    let mut h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (cert, leaf) = issue(&h, &account, "down.test").await;

    // The CA goes down; the revocation is recorded and answered at once.
    set_down(&h, true);
    h.restart().await;
    revoke(&account, &leaf, RevocationReason::KeyCompromise).await;
    let store = &h.server().ra.store;
    let r = store.revocation(&cert.id).await.unwrap().unwrap();
    assert_eq!(r.ca, CaRevocation::Pending);
    assert_eq!(r.reason, 1);
    // The first attempt ran within the request and failed transiently.
    let job = store
        .job_info(JobKind::Revoke, &cert.id)
        .await
        .unwrap()
        .expect("a revoke job is queued");
    assert!(job.attempts >= 1);
    let err = job.last_error.unwrap_or_default();
    assert!(err.contains("simulated outage"), "{err}");
    let shown = show(&h, &cert.serial).await;
    assert!(shown.contains("revocation pending at the CA"), "{shown}");
    assert!(shown.contains("simulated outage"), "{shown}");
    // Metrics: one pending revocation, failed attempts counted.
    let scrape = common::plain::get(h.server().metrics_addr.unwrap(), "/metrics").await;
    let text = String::from_utf8(scrape.body).unwrap();
    assert!(
        text.lines().any(|l| l == "certeasy_revocations_pending 1"),
        "{text}"
    );
    let failed = text
        .lines()
        .find(|l| {
            l.starts_with("certeasy_revocations_total{")
                && l.contains("authority=\"ca2\"")
                && l.contains("outcome=\"failed\"")
        })
        .unwrap_or_else(|| panic!("no failed attempt counted:\n{text}"));
    assert!(!failed.ends_with(" 0"), "{failed}");
    // certeasy already refuses it: a second revocation is alreadyRevoked.
    let again = account
        .revoke(&RevocationRequest {
            certificate: &CertificateDer::from(leaf.clone()),
            reason: None,
        })
        .await
        .unwrap_err();
    assert!(format!("{again:?}").contains("alreadyRevoked"), "{again:?}");

    // certeasy restarts while the CA is still down: the job survives.
    h.restart().await;
    assert_eq!(
        h.server()
            .ra
            .store
            .revocation(&cert.id)
            .await
            .unwrap()
            .unwrap()
            .ca,
        CaRevocation::Pending
    );
    // The CA comes back (and certeasy restarts with it): the job reaches it.
    set_down(&h, false);
    h.restart().await;
    assert_eq!(wait_settled(&h, &cert.id).await, CaRevocation::Confirmed);
    let store = &h.server().ra.store;
    assert!(store
        .job_info(JobKind::Revoke, &cert.id)
        .await
        .unwrap()
        .is_none());
    let r = store.revocation(&cert.id).await.unwrap().unwrap();
    assert!(r.ca_at.is_some());
    assert_eq!(r.reason, 1, "the reason given at revoke-cert is kept");
    let shown = show(&h, &cert.serial).await;
    assert!(shown.contains("revoked at the CA"), "{shown}");
    h.stop().await;
    // The revocation was audited exactly once.
    let log = common::audit_lines(&h.dir.path().join("work/audit.log"));
    let revokes: Vec<_> = log
        .iter()
        .filter(|l| l["event"] == "certificate.revoke")
        .collect();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0]["details"]["ca"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_the_ca_is_final_and_recorded() {
    let opts = Options {
        authority_extra: authority("ca2", ""),
        extra_sections: binding("ca2", "first_available"),
        ..Options::default()
    };
    let mut h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (cert, leaf) = issue(&h, &account, "refused.test").await;
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(
        &h.config_path,
        text.replace(
            &authority("ca2", ""),
            &authority("ca2", "      simulate-failure: refused\n"),
        ),
    )
    .unwrap();
    h.restart().await;
    revoke(&account, &leaf, RevocationReason::Superseded).await;
    assert_eq!(wait_settled(&h, &cert.id).await, CaRevocation::Refused);
    let store = &h.server().ra.store;
    let r = store.revocation(&cert.id).await.unwrap().unwrap();
    assert!(
        r.detail.as_deref().unwrap_or("").contains("refused"),
        "{r:?}"
    );
    assert!(store
        .job_info(JobKind::Revoke, &cert.id)
        .await
        .unwrap()
        .is_none());
    let shown = show(&h, &cert.serial).await;
    assert!(shown.contains("the CA refused the revocation"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_revokes_with_the_cli_and_a_running_server_takes_it_to_the_ca() {
    let h = Harness::start().await;
    let account = h.account().await;
    let (cert, _) = issue(&h, &account, "operator.test").await;
    let (file, serial) = (h.config_path.clone(), cert.serial.clone());
    let out = tokio::task::spawn_blocking(move || {
        certeasy::cli::cert::revoke(&file, &serial, "keyCompromise", None)
    })
    .await
    .unwrap()
    .map_err(|f| f.message)
    .unwrap();
    assert!(out.contains("revoked at"), "{out}");
    assert!(out.contains("reason 1"), "{out}");
    // The server's worker claims the job the command queued.
    assert_eq!(wait_settled(&h, &cert.id).await, CaRevocation::Confirmed);
    // Bad input: a precise error, nothing changed.
    let file = h.config_path.clone();
    let err = tokio::task::spawn_blocking(move || {
        certeasy::cli::cert::revoke(&file, "zz", "keyCompromise", None)
    })
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.code, 2);
    assert!(
        err.message.contains("not a hexadecimal serial"),
        "{}",
        err.message
    );
    let (file, serial) = (h.config_path.clone(), cert.serial.clone());
    let err =
        tokio::task::spawn_blocking(move || certeasy::cli::cert::revoke(&file, &serial, "7", None))
            .await
            .unwrap()
            .unwrap_err();
    assert!(err.message.contains("is not accepted"), "{}", err.message);
    let (file, serial) = (h.config_path.clone(), cert.serial.clone());
    let err = tokio::task::spawn_blocking(move || {
        certeasy::cli::cert::revoke(&file, &serial, "superseded", None)
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.message.contains("already revoked"), "{}", err.message);
    let r = h
        .server()
        .ra
        .store
        .revocation(&cert.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.reason, 1, "the second attempt changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_ca_revocation_keeps_the_revocation_local() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!")
            + "      disable-ca-revocation: true\n",
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (cert, leaf) = issue(&h, &account, "local.test").await;
    assert_eq!(cert.authority, "lab");
    revoke(&account, &leaf, RevocationReason::CessationOfOperation).await;
    let store = &h.server().ra.store;
    let r = store.revocation(&cert.id).await.unwrap().unwrap();
    assert_eq!(r.ca, CaRevocation::Local);
    assert!(store
        .job_info(JobKind::Revoke, &cert.id)
        .await
        .unwrap()
        .is_none());
    let shown = show(&h, &cert.serial).await;
    assert!(shown.contains("revoked in certeasy only"), "{shown}");
}

/// The end-to-end path through lab-adcs: the CA is down while the
/// revocation is made, certeasy restarts, the CA comes back and revokes
/// (MS-CSRA `ICertAdminD::RevokeCertificate` over DCOM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_lab_adcs_after_it_was_down_across_a_restart() {
    let mut l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let mut h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (cert, leaf) = issue(&h, &account, "labrevoke.test").await;
    // The CA goes down (its listeners stop).
    let (epm, icpr) = (l.running.epm_addr.port(), l.running.icpr_addr.port());
    let lab_state = l.lab.clone();
    drop(std::mem::replace(
        &mut l.running,
        // A placeholder bound elsewhere, dropped at once below.
        lab_adcs::service::start(lab_state.clone(), std::net::Ipv4Addr::LOCALHOST, 0, 0)
            .await
            .unwrap(),
    ));
    revoke(&account, &leaf, RevocationReason::KeyCompromise).await;
    assert_eq!(
        h.server()
            .ra
            .store
            .revocation(&cert.id)
            .await
            .unwrap()
            .unwrap()
            .ca,
        CaRevocation::Pending
    );
    h.restart().await;
    // The CA comes back on its ports.
    l.running = lab_adcs::service::start(lab_state, std::net::Ipv4Addr::LOCALHOST, epm, icpr)
        .await
        .unwrap();
    assert_eq!(wait_settled(&h, &cert.id).await, CaRevocation::Confirmed);
    // The CA itself holds the revocation, with the subscriber's reason.
    let serial = lab_adcs::state::normalize_serial(&cert.serial);
    let state = lab_adcs::state::StateFile::new(&l.dir.path().join("state"))
        .read()
        .unwrap();
    let at_ca = state
        .requests
        .values()
        .find(|r| r.serial_hex().as_deref() == Some(serial.as_str()))
        .expect("lab-adcs holds the request of the certificate");
    assert_eq!(
        at_ca.revocation.as_ref().map(|r| r.reason),
        Some(1),
        "lab-adcs records keyCompromise"
    );
}
