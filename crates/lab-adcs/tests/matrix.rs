//! certeasy's msrpc client against lab-adcs, in process, on 127.0.0.1 with
//! ephemeral ports: the issue's matrix.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use lab_adcs::config::Config;
use lab_adcs::service::{start, Lab, Running};
use msrpc::auth::{AuthLevel, AuthMethod, ClientAuth, Credentials};
use msrpc::client::ClientOptions;
use msrpc::icpr::{self, Disposition};
use msrpc::{EndpointSelection, IcprClient, IcprError};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

const CONFIG: &str = r#"
ca: { name: LAB-CA, state-dir: STATE }
listen: { address: 127.0.0.1, epm-port: 0, icpr-port: 0 }
auth-level: LEVEL
users:
  - { domain: CORP, name: alice, password: "Passw0rd!" }
templates:
  - { name: WebServer, disposition: issue, eku: [serverAuth] }
  - { name: PendingWebServer, disposition: pend, eku: [serverAuth] }
  - { name: DeniedTemplate, disposition: deny, deny-hresult: 0x80094012 }
  - { name: RsaOnly, disposition: issue, allow-ecdsa: false }
"#;

struct Env {
    _dir: tempfile::TempDir,
    lab: Arc<Lab>,
    running: Running,
}

async fn env(level: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let text = CONFIG
        .replace("STATE", &dir.path().join("state").display().to_string())
        .replace("LEVEL", level);
    let cfg = Config::parse(&text).unwrap();
    let lab = Arc::new(Lab::open(cfg).unwrap());
    let running = start(lab.clone(), Ipv4Addr::LOCALHOST, 0, 0).await.unwrap();
    Env {
        _dir: dir,
        lab,
        running,
    }
}

fn auth(level: AuthLevel, password: &str) -> ClientAuth {
    ClientAuth {
        method: AuthMethod::Ntlm,
        level,
        credentials: Credentials {
            domain: "CORP".into(),
            username: "alice".into(),
            password: password.into(),
        },
        spn: None,
        kdc: None,
        keytab: None,
    }
}

fn csr(name: &str) -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

async fn client(e: &Env, level: AuthLevel, password: &str) -> Result<IcprClient, IcprError> {
    IcprClient::connect(
        "127.0.0.1",
        EndpointSelection::EndpointMapper {
            port: e.running.epm_addr.port(),
        },
        &auth(level, password),
        &ClientOptions::default(),
    )
    .await
}

fn check_issued(e: &Env, r: &msrpc::IcprReply, name: &str) {
    assert_eq!(r.disposition, Disposition::Issued);
    let der = r.cert_der.as_ref().unwrap();
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let issuer = cert.tbs_certificate().issuer().to_string();
    assert!(issuer.contains("LAB-CA"), "{issuer}");
    let chain = r.chain_cms.as_ref().unwrap();
    // the CMS chain carries the leaf and the root
    assert!(chain.windows(der.len()).any(|w| w == der.as_slice()));
    assert!(chain
        .windows(e.lab.ca().cert_der().len())
        .any(|w| w == e.lab.ca().cert_der()));
    let text = format!("{:?}", cert.tbs_certificate().extensions());
    assert!(!text.is_empty());
    assert!(
        der.windows(name.len()).any(|w| w == name.as_bytes()),
        "SAN {name} present"
    );
}

#[tokio::test]
async fn issued_at_privacy_via_endpoint_mapper() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    let r = c
        .submit("LAB-CA", "WebServer", &csr("www.example.test"))
        .await
        .unwrap();
    assert_eq!(r.message, "Issued");
    check_issued(&e, &r, "www.example.test");
    // a second call on the same connection
    let r2 = c
        .submit("LAB-CA", "WebServer", &csr("api.example.test"))
        .await
        .unwrap();
    assert_eq!(r2.request_id, r.request_id + 1);
}

#[tokio::test]
async fn issued_at_integrity_fixed_port() {
    let e = env("integrity").await;
    let mut c = IcprClient::connect(
        "127.0.0.1",
        EndpointSelection::Fixed(e.running.icpr_addr.port()),
        &auth(AuthLevel::Integrity, "Passw0rd!"),
        &ClientOptions::default(),
    )
    .await
    .unwrap();
    let r = c
        .submit("LAB-CA", "WebServer", &csr("int.example.test"))
        .await
        .unwrap();
    check_issued(&e, &r, "int.example.test");
}

#[tokio::test]
async fn integrity_refused_when_privacy_required() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Integrity, "Passw0rd!").await.unwrap();
    match c
        .submit("LAB-CA", "WebServer", &csr("x.example.test"))
        .await
    {
        // As ADCS with IF_ENFORCEENCRYPTICERTREQUEST: the call's HRESULT.
        Err(IcprError::Denied { hresult, .. }) => assert_eq!(hresult, icpr::E_ACCESSDENIED),
        other => panic!("expected E_ACCESSDENIED, got {other:?}"),
    }
}

#[tokio::test]
async fn pending_then_approve_then_retrieve() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    let r = c
        .submit("LAB-CA", "PendingWebServer", &csr("pend.example.test"))
        .await
        .unwrap();
    assert_eq!(r.disposition, Disposition::UnderSubmission);
    assert_eq!(r.message, "Taken Under Submission");
    assert!(r.cert_der.is_none());
    let again = c.retrieve("LAB-CA", r.request_id).await.unwrap();
    assert_eq!(again.disposition, Disposition::UnderSubmission);
    e.lab.approve(r.request_id).unwrap();
    let done = c.retrieve("LAB-CA", r.request_id).await.unwrap();
    assert_eq!(done.request_id, r.request_id);
    check_issued(&e, &done, "pend.example.test");
}

#[tokio::test]
async fn pending_then_deny() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    let r = c
        .submit("LAB-CA", "PendingWebServer", &csr("d.example.test"))
        .await
        .unwrap();
    e.lab.deny(r.request_id, 0x8007_0005).unwrap();
    match c.retrieve("LAB-CA", r.request_id).await {
        Err(IcprError::Denied {
            request_id,
            hresult,
            symbol,
            ..
        }) => {
            assert_eq!(
                (request_id, hresult, symbol),
                (r.request_id, 0x8007_0005, "E_ACCESSDENIED")
            );
        }
        other => panic!("expected denial, got {other:?}"),
    }
}

#[tokio::test]
async fn denied_template() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    match c
        .submit("LAB-CA", "DeniedTemplate", &csr("x.example.test"))
        .await
    {
        Err(err @ IcprError::Denied { .. }) => {
            let IcprError::Denied {
                hresult,
                symbol,
                ca_message,
                ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!(*hresult, 0x8009_4012);
            assert_eq!(*symbol, "CERTSRV_E_TEMPLATE_DENIED");
            assert_eq!(ca_message, "Denied by Policy Module");
            assert!(err.to_string().contains("Enroll"), "{err}");
        }
        other => panic!("expected denial, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_template_is_mapped() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    match c
        .submit("LAB-CA", "NoSuchTemplate", &csr("x.example.test"))
        .await
    {
        Err(
            err @ IcprError::Denied {
                hresult: 0x8009_4800,
                ..
            },
        ) => {
            assert!(
                err.to_string().contains("CERTSRV_E_UNSUPPORTED_CERT_TYPE"),
                "{err}"
            );
            assert!(err.to_string().contains("publish"), "{err}");
        }
        other => panic!("expected CERTSRV_E_UNSUPPORTED_CERT_TYPE, got {other:?}"),
    }
}

#[tokio::test]
async fn key_requirements_enforced() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    match c.submit("LAB-CA", "RsaOnly", &csr("x.example.test")).await {
        Err(IcprError::Denied { hresult, .. }) => assert_eq!(hresult, 0x8009_4811),
        other => panic!("expected CERTSRV_E_KEY_LENGTH, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_password_is_a_clean_auth_error() {
    let e = env("privacy").await;
    // NTLM only learns of the failure on the first call after auth3.
    let mut c = client(&e, AuthLevel::Privacy, "wrong").await.unwrap();
    match c
        .submit("LAB-CA", "WebServer", &csr("x.example.test"))
        .await
    {
        Err(err @ IcprError::Authentication(_)) => {
            assert!(err.to_string().contains("password"), "{err}");
        }
        other => panic!("expected authentication error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_user_is_a_clean_auth_error() {
    let e = env("privacy").await;
    let mut a = auth(AuthLevel::Privacy, "Passw0rd!");
    a.credentials.username = "mallory".into();
    let mut c = IcprClient::connect(
        "127.0.0.1",
        EndpointSelection::EndpointMapper {
            port: e.running.epm_addr.port(),
        },
        &a,
        &ClientOptions::default(),
    )
    .await
    .unwrap();
    assert!(matches!(
        c.submit("LAB-CA", "WebServer", &csr("x.example.test"))
            .await,
        Err(IcprError::Authentication(_))
    ));
}

#[tokio::test]
async fn multi_fragment_response() {
    let e = env("privacy").await;
    let opts = ClientOptions {
        max_recv_frag: 1432,
        ..ClientOptions::default()
    };
    let mut c = IcprClient::connect(
        "127.0.0.1",
        EndpointSelection::EndpointMapper {
            port: e.running.epm_addr.port(),
        },
        &auth(AuthLevel::Privacy, "Passw0rd!"),
        &opts,
    )
    .await
    .unwrap();
    // A long SAN list makes the certificate + chain exceed one 1432-octet fragment.
    let names: Vec<String> = (0..40)
        .map(|i| format!("host-{i:02}.a-rather-long-subdomain.example.test"))
        .collect();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = CertificateParams::new(names.clone())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec();
    let r = c.submit("LAB-CA", "WebServer", &der).await.unwrap();
    let total = r.cert_der.as_ref().unwrap().len() + r.chain_cms.as_ref().unwrap().len();
    assert!(
        total > 3 * 1432,
        "response of {total} octets spans several fragments"
    );
    check_issued(&e, &r, &names[39]);
}

#[tokio::test]
async fn wrong_ca_name() {
    let e = env("privacy").await;
    let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
    match c
        .submit("OTHER-CA", "WebServer", &csr("x.example.test"))
        .await
    {
        Err(IcprError::Denied {
            hresult,
            ca_message,
            ..
        }) => {
            assert_eq!(hresult, 0x8007_0057);
            assert!(ca_message.contains("LAB-CA"));
        }
        other => panic!("expected E_INVALIDARG, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // bind then drop a listener to get a port nobody listens on
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    match IcprClient::connect(
        "127.0.0.1",
        EndpointSelection::Fixed(port),
        &auth(AuthLevel::Privacy, "x"),
        &ClientOptions::default(),
    )
    .await
    {
        Err(IcprError::Connect { target, .. }) => assert_eq!(target, format!("127.0.0.1:{port}")),
        other => panic!("expected connect error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_distinct_ids() {
    let e = Arc::new(env("privacy").await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = client(&e, AuthLevel::Privacy, "Passw0rd!").await.unwrap();
            let r = c
                .submit("LAB-CA", "WebServer", &csr(&format!("c{i}.example.test")))
                .await
                .unwrap();
            assert_eq!(r.disposition, Disposition::Issued);
            r.request_id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=8).collect::<Vec<u32>>());
    assert_eq!(e.lab.state().read().unwrap().requests.len(), 8);
}
