//! The `adcs` crate's DCOM paths against lab-adcs in process (127.0.0.1,
//! ephemeral ports): enrollment over `ICertRequestD2::Request2`, MS-CSRA
//! revoke / resubmit / deny / templates, the rights check, and the
//! automatic switch to DCOM when the CA refuses ICertPassage.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use certeasy_adcs::admin::{CaAdmin, ManageVerdict, ERROR_FILE_NOT_FOUND_HR};
use certeasy_adcs::{AdcsTarget, AuthLevel, AuthMethod, Enrolled, Enrollment, Error, Transport};
use lab_adcs::config::Config;
use lab_adcs::service::{start, Lab, Running};
use lab_adcs::state::Status;
use msrpc::icpr::{self, E_ACCESSDENIED};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

const CONFIG: &str = r#"
ca: { name: LAB-CA, state-dir: STATE }
listen: { address: 127.0.0.1, epm-port: 0, icpr-port: 0 }
icpr-enabled: ICPR
users:
  - { domain: CORP, name: alice, password: "Passw0rd!" }
  - { domain: CORP, name: bob, password: "Passw0rd!", manager: false }
templates:
  - { name: WebServer, disposition: issue, eku: [serverAuth] }
  - { name: PendingWebServer, disposition: pend, eku: [serverAuth] }
"#;

struct Env {
    _dir: tempfile::TempDir,
    lab: Arc<Lab>,
    running: Running,
}

async fn env(icpr_enabled: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let text = CONFIG
        .replace("STATE", &dir.path().join("state").display().to_string())
        .replace("ICPR", if icpr_enabled { "true" } else { "false" });
    let lab = Arc::new(Lab::open(Config::parse(&text).unwrap()).unwrap());
    let running = start(lab.clone(), Ipv4Addr::LOCALHOST, 0, 0).await.unwrap();
    Env {
        _dir: dir,
        lab,
        running,
    }
}

fn target(e: &Env, user: &str, template: &str, transport: Transport) -> AdcsTarget {
    AdcsTarget {
        host: "127.0.0.1".into(),
        ca: "LAB-CA".into(),
        ca_name: "127.0.0.1\\LAB-CA".into(),
        template: template.into(),
        method: AuthMethod::Ntlm,
        domain: "CORP".into(),
        username: user.into(),
        password: "Passw0rd!".into(),
        realm: None,
        keytab: None,
        kdc: None,
        spn: None,
        port: None,
        endpoint_mapper_port: e.running.epm_addr.port(),
        auth_level: AuthLevel::Privacy,
        default_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(10),
        ca_chain: Vec::new(),
        disable_ca_revocation: false,
        transport,
        ldap: None,
    }
}

fn csr(name: &str) -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn serial_of(der: &[u8]) -> String {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(der).unwrap();
    c.tbs_certificate()
        .serial_number()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn issue(e: &Env, transport: Transport) -> (Enrollment, Vec<u8>) {
    let en = Enrollment::new(&target(e, "alice", "WebServer", transport));
    match en.submit(&csr("www.example.test")).await.unwrap() {
        Enrolled::Issued {
            leaf_der,
            chain_der,
        } => {
            assert_eq!(
                chain_der.len(),
                1,
                "the lab CA's certificate completes the chain"
            );
            (en, leaf_der)
        }
        other => panic!("expected issued, got {other:?}"),
    }
}

fn status(e: &Env, id: u32) -> String {
    let rec = e
        .lab
        .state()
        .view(|s| s.requests.get(&id).cloned())
        .unwrap()
        .unwrap();
    Lab::status_line(&rec)
}

#[tokio::test]
async fn issue_over_dcom_then_revoke_by_serial() {
    let e = env(true).await;
    let (en, leaf) = issue(&e, Transport::Dcom).await;
    assert!(en.uses_dcom());
    let serial = serial_of(&leaf);
    let rec = e.lab.find_by_serial(&serial).unwrap().unwrap();
    assert_eq!(status(&e, rec.id), "issued");

    let admin = CaAdmin::new(&target(&e, "alice", "WebServer", Transport::Auto));
    admin.revoke(&serial, 1, SystemTime::now()).await.unwrap();
    assert_eq!(status(&e, rec.id), "revoked keyCompromise");
    // a second revocation may change the reason, as on Windows
    admin.revoke(&serial, 4, SystemTime::now()).await.unwrap();
    assert_eq!(status(&e, rec.id), "revoked superseded");

    match admin.revoke("0badc0de", 1, SystemTime::now()).await {
        Err(Error::AdminRefused { hresult, .. }) => assert_eq!(hresult, ERROR_FILE_NOT_FOUND_HR),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        admin.revoke("not-hex", 1, SystemTime::now()).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn resubmit_and_deny_pending_requests() {
    let e = env(true).await;
    let en = Enrollment::new(&target(&e, "alice", "PendingWebServer", Transport::Auto));
    let mut ids = Vec::new();
    for n in 0..2 {
        match en
            .submit(&csr(&format!("p{n}.example.test")))
            .await
            .unwrap()
        {
            Enrolled::Pending { request_id, .. } => ids.push(request_id),
            other => panic!("expected pending, got {other:?}"),
        }
    }
    let admin = CaAdmin::new(&target(&e, "alice", "WebServer", Transport::Auto));
    assert_eq!(admin.resubmit(ids[0]).await.unwrap(), icpr::CR_DISP_ISSUED);
    assert_eq!(status(&e, ids[0]), "issued");
    assert!(matches!(
        en.retrieve(ids[0]).await.unwrap(),
        Enrolled::Issued { .. }
    ));
    admin.deny(ids[1]).await.unwrap();
    assert_eq!(status(&e, ids[1]), "denied");
    // denying again: the request is no longer pending
    match admin.deny(ids[1]).await {
        Err(Error::AdminRefused {
            hresult,
            explanation,
            ..
        }) => {
            assert_eq!(hresult, icpr::CERTSRV_E_BAD_REQUESTSTATUS);
            assert!(explanation.contains("pending"), "{explanation}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match admin.resubmit(999).await {
        Err(Error::AdminRefused { hresult, .. }) => assert_eq!(hresult, icpr::CERTSRV_E_NO_REQUEST),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn rights_and_templates() {
    let e = env(true).await;
    let alice = CaAdmin::new(&target(&e, "alice", "WebServer", Transport::Auto));
    let bob = CaAdmin::new(&target(&e, "bob", "WebServer", Transport::Auto));
    assert!(matches!(
        alice.management_check().await.unwrap(),
        ManageVerdict::CanManage(icpr::CERTSRV_E_NO_REQUEST)
    ));
    assert_eq!(bob.management_check().await.unwrap(), ManageVerdict::Denied);
    let names: Vec<String> = alice
        .templates()
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["WebServer", "PendingWebServer"]);

    // bob may enroll but not revoke: the message names the permission
    let (_, leaf) = issue(&e, Transport::Dcom).await;
    let err = bob
        .revoke(&serial_of(&leaf), 1, SystemTime::now())
        .await
        .unwrap_err();
    assert!(err.is_refusal());
    let msg = err.to_string();
    assert!(msg.contains("Issue and Manage Certificates"), "{msg}");
    assert!(msg.contains(&format!("0x{E_ACCESSDENIED:08x}")), "{msg}");
    let rec = e.lab.find_by_serial(&serial_of(&leaf)).unwrap().unwrap();
    assert_eq!(rec.status, Status::Issued);
    assert!(rec.revocation.is_none());
}

#[tokio::test]
async fn icpr_disabled_falls_back_to_dcom() {
    let e = env(false).await;
    // ICPR only: the CA's refusal, final
    let icpr_only = Enrollment::new(&target(&e, "alice", "WebServer", Transport::Icpr));
    let err = icpr_only.submit(&csr("a.example.test")).await.unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(err.to_string().contains("E_ACCESSDENIED"), "{err}");
    // auto: the health probe already switches to DCOM (an authority whose
    // probe failed would never get the request that could switch it)
    let probed = Enrollment::new(&target(&e, "alice", "WebServer", Transport::Auto));
    assert!(!probed.uses_dcom());
    probed.probe().await.unwrap();
    assert!(probed.uses_dcom());
    // auto: a submission switches to DCOM and stays there
    let (en, _) = issue(&e, Transport::Auto).await;
    assert!(en.uses_dcom());
    assert!(matches!(
        en.submit(&csr("b.example.test")).await.unwrap(),
        Enrolled::Issued { .. }
    ));
    en.probe().await.unwrap();
    let issued = e
        .lab
        .state()
        .view(|s| {
            s.requests
                .values()
                .filter(|r| r.status == Status::Issued)
                .count()
        })
        .unwrap();
    assert_eq!(issued, 2);
}

/// Kerberos over DCOM against the lab domain's real KDC
/// (`scripts/lab-domain.sh`; `LAB_DOMAIN_DIR` names its directory, without
/// it this test returns early): alice's keytab on the client, the CA's
/// service keys in lab-adcs, activation and the admin call both
/// authenticated with Kerberos at packet privacy.
#[tokio::test]
async fn kerberos_over_dcom_with_the_lab_domain() {
    let Some(dir) = std::env::var_os("LAB_DOMAIN_DIR").map(std::path::PathBuf::from) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let text = CONFIG
        .replace("STATE", &state.path().join("state").display().to_string())
        .replace("ICPR", "false");
    let mut cfg = Config::parse(&text).unwrap();
    let ca_keys =
        msrpc::keytab::Keytab::parse(&std::fs::read(dir.join("ca.keytab")).unwrap()).unwrap();
    cfg.keytab = Some(Arc::new(ca_keys));
    let lab = Arc::new(Lab::open(cfg).unwrap());
    let running = start(lab.clone(), Ipv4Addr::LOCALHOST, 0, 0).await.unwrap();
    let e = Env {
        _dir: state,
        lab,
        running,
    };
    let alice =
        msrpc::keytab::Keytab::parse(&std::fs::read(dir.join("alice.keytab")).unwrap()).unwrap();
    let mut t = target(&e, "alice", "WebServer", Transport::Auto);
    t.method = AuthMethod::Kerberos;
    t.realm = Some("CORP.TEST".into());
    t.password = String::new();
    t.keytab = Some(Arc::new(alice));
    t.kdc = Some("tcp://127.0.0.2:88".into());
    t.spn = Some("HOST/ca.corp.test".into());
    // ICPR is off: the submission switches to DCOM, with Kerberos
    let en = Enrollment::new(&t);
    let leaf = match en.submit(&csr("krb.example.test")).await.unwrap() {
        Enrolled::Issued { leaf_der, .. } => leaf_der,
        other => panic!("expected issued, got {other:?}"),
    };
    assert!(en.uses_dcom());
    let admin = CaAdmin::new(&t);
    admin
        .revoke(&serial_of(&leaf), 1, SystemTime::now())
        .await
        .unwrap();
    let rec = e.lab.find_by_serial(&serial_of(&leaf)).unwrap().unwrap();
    assert_eq!(Lab::status_line(&rec), "revoked keyCompromise");
    assert!(rec
        .revocation
        .unwrap()
        .by
        .to_ascii_lowercase()
        .contains("alice"));
}
