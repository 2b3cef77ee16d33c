//! Kerberos against a real KDC and a real DCE/RPC server: the Samba AD DC of
//! `scripts/lab-domain.sh` (KDC and RPC endpoint mapper on 127.0.0.2). Run by
//! scripts/interop-kerberos.sh, which sets `LAB_DOMAIN_DIR`; without it every
//! test here returns early (there is no KDC to talk to).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use msrpc::auth::{AuthLevel, AuthMethod, ClientAuth, Credentials};
use msrpc::client::{ClientOptions, RpcClient};
use msrpc::epm::{EptMapRequest, EptMapResponse, TcpTower, EPM_INTERFACE as EPM, OPNUM_EPT_MAP};
use msrpc::keytab::Keytab;

const DC: &str = "127.0.0.2:135";
const KDC: &str = "tcp://127.0.0.2:88";

fn lab() -> Option<std::path::PathBuf> {
    std::env::var_os("LAB_DOMAIN_DIR").map(Into::into)
}

fn alice(method: AuthMethod, level: AuthLevel, password: &str, spn: &str) -> ClientAuth {
    ClientAuth {
        method,
        level,
        credentials: Credentials {
            domain: "CORP.TEST".into(),
            username: "alice".into(),
            password: password.into(),
        },
        spn: Some(spn.into()),
        kdc: Some(KDC.into()),
        keytab: None,
    }
}

async fn epm_lookup(c: &mut RpcClient) -> EptMapResponse {
    let req = EptMapRequest {
        object: None,
        tower: TcpTower::lookup(EPM).encode(),
        entry_handle: [0; 20],
        max_towers: 4,
    };
    let stub = c.call(OPNUM_EPT_MAP, &req.encode()).await.unwrap();
    EptMapResponse::decode(&stub).unwrap()
}

async fn connect(auth: &ClientAuth) -> Result<RpcClient, msrpc::RpcError> {
    RpcClient::connect(
        DC.parse().unwrap(),
        EPM,
        Some(auth),
        &ClientOptions::default(),
    )
    .await
}

/// Password → AS-REQ/TGS-REQ to the Samba KDC → AP-REQ in SPNEGO at bind →
/// an endpoint-mapper call sealed with the Kerberos session key, answered
/// by Samba's RPC server.
#[tokio::test]
async fn kerberos_password_privacy_against_samba_rpc() {
    if lab().is_none() {
        return;
    }
    let auth = alice(
        AuthMethod::Kerberos,
        AuthLevel::Privacy,
        "Passw0rd!",
        "host/dc1.corp.test",
    );
    let mut c = connect(&auth).await.unwrap();
    assert_eq!(c.auth_level(), AuthLevel::Privacy);
    assert_eq!(epm_lookup(&mut c).await.status, 0);
    // several calls on the one association: sequence numbers advance
    assert_eq!(epm_lookup(&mut c).await.status, 0);
}

/// The same with alice's keys from the keytab the lab exported: no password.
#[tokio::test]
async fn kerberos_keytab_privacy_against_samba_rpc() {
    let Some(dir) = lab() else { return };
    let kt = Keytab::parse(&std::fs::read(dir.join("alice.keytab")).unwrap()).unwrap();
    let mut auth = alice(
        AuthMethod::Kerberos,
        AuthLevel::Privacy,
        "",
        "host/dc1.corp.test",
    );
    auth.keytab = Some(Arc::new(kt));
    let mut c = connect(&auth).await.unwrap();
    assert_eq!(epm_lookup(&mut c).await.status, 0);
    // negotiate prefers Kerberos
    auth.method = AuthMethod::Negotiate;
    let mut c = connect(&auth).await.unwrap();
    assert_eq!(epm_lookup(&mut c).await.status, 0);
}

fn err(r: Result<RpcClient, msrpc::RpcError>) -> String {
    match r {
        Ok(_) => panic!("authentication succeeded"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn kerberos_failures_name_their_cause() {
    if lab().is_none() {
        return;
    }
    let m = err(connect(&alice(
        AuthMethod::Kerberos,
        AuthLevel::Privacy,
        "wrong",
        "host/dc1.corp.test",
    ))
    .await);
    eprintln!("wrong password: {m}");
    assert!(
        m.contains("pre-authentication failed") && m.contains("password file"),
        "{m}"
    );
    let mut a = alice(
        AuthMethod::Kerberos,
        AuthLevel::Privacy,
        "Passw0rd!",
        "host/nowhere.corp.test",
    );
    let m = err(connect(&a).await);
    eprintln!("unknown SPN: {m}");
    assert!(
        m.contains("no service principal") && m.contains("auth.spn"),
        "{m}"
    );
    a.credentials.username = "mallory".into();
    a.spn = Some("host/dc1.corp.test".into());
    let m = err(connect(&a).await);
    eprintln!("unknown user: {m}");
    assert!(
        m.contains("unknown to the KDC") && m.contains("auth.username"),
        "{m}"
    );
    let mut a = alice(
        AuthMethod::Kerberos,
        AuthLevel::Privacy,
        "Passw0rd!",
        "host/dc1.corp.test",
    );
    a.kdc = Some("tcp://127.0.0.2:1".into());
    let m = err(connect(&a).await);
    eprintln!("KDC down: {m}");
    assert!(m.contains("KDC") && m.contains("unreachable"), "{m}");
    let a = alice(
        AuthMethod::Kerberos,
        AuthLevel::Integrity,
        "Passw0rd!",
        "host/dc1.corp.test",
    );
    let m = err(connect(&a).await);
    assert!(m.contains("packet privacy only"), "{m}");
}
