//! DCOM client ↔ DCOM server over loopback: activation through the SCM
//! port, the exporter's string binding, ORPC calls on the IPID,
//! RemQueryInterface, RemRelease, with NTLM at packet privacy.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use msrpc::auth::{AuthLevel, AuthMethod, ClientAuth, CredentialStore, Credentials};
use msrpc::client::ClientOptions;
use msrpc::dcom::client::{activate, reply};
use msrpc::dcom::orpc::{OrpcThat, OrpcThis};
use msrpc::dcom::server::{DcomClass, Exporter, OxidResolver, RemUnknown, ScmActivator};
use msrpc::dcom::{iface, E_NOINTERFACE, REGDB_E_CLASSNOTREG};
use msrpc::ndr::{NdrReader, NdrWriter};
use msrpc::server::{serve, CallContext, RpcService, ServerConfig};
use msrpc::uuid::{SyntaxId, Uuid};
use msrpc::RpcError;
use tokio::net::TcpListener;

const CLSID: Uuid = Uuid::from_u128(0x11111111_2222_3333_4444_555555555555);
const IID_A: Uuid = Uuid::from_u128(0xaaaaaaaa_2222_3333_4444_555555555555);
const IID_B: Uuid = Uuid::from_u128(0xbbbbbbbb_2222_3333_4444_555555555555);

/// Interface A, opnum 3: returns the caller's name and the u32 argument + 1.
/// Interface B, opnum 3: returns 0xb.
struct Iface(Uuid);

impl RpcService for Iface {
    fn interface(&self) -> SyntaxId {
        iface(self.0)
    }
    fn required_level(&self) -> AuthLevel {
        AuthLevel::Privacy
    }
    fn call(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        if opnum != 3 {
            return Err(0x1c01_0002);
        }
        let mut r = NdrReader::new(stub);
        OrpcThis::read(&mut r).map_err(|_| 0x6f7u32)?;
        let mut w = NdrWriter::new();
        OrpcThat::default().write(&mut w);
        if self.0 == IID_A {
            let v = r.u32().map_err(|_| 0x6f7u32)?;
            let who = ctx
                .user
                .as_ref()
                .map(|u| u.user.clone())
                .unwrap_or_default();
            w.unique_wstring(Some(&who));
            w.u32(v + 1);
        } else {
            w.u32(0xb);
        }
        w.u32(0);
        Ok(w.into_bytes())
    }
}

struct Users;

impl CredentialStore for Users {
    fn password(&self, domain: &str, user: &str) -> Option<String> {
        (domain.eq_ignore_ascii_case("CORP") && user.eq_ignore_ascii_case("alice"))
            .then(|| "Passw0rd!".to_owned())
    }
    fn accounts(&self) -> Vec<Credentials> {
        vec![Credentials {
            domain: "CORP".into(),
            username: "alice".into(),
            password: "Passw0rd!".into(),
        }]
    }
}

/// Starts the SCM listener and the exporter listener; returns the SCM port.
async fn start() -> u16 {
    let scm = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exp_port = exp.local_addr().unwrap().port();
    let scm_port = scm.local_addr().unwrap().port();
    let exporter = Arc::new(Exporter::new(
        vec![DcomClass {
            clsid: CLSID,
            interfaces: vec![IID_A, IID_B],
        }],
        // A name that does not resolve first, as Windows announces its
        // NetBIOS name: the client must still use the port on its own host.
        &["CA-NETBIOS".into(), "127.0.0.1".into()],
        exp_port,
        AuthLevel::Privacy,
    ));
    let scm_cfg = ServerConfig::new(
        vec![
            Arc::new(ScmActivator(exporter.clone())),
            Arc::new(OxidResolver(exporter.clone())),
        ],
        Some(Arc::new(Users)),
    );
    let exp_cfg = ServerConfig::new(
        vec![
            Arc::new(Iface(IID_A)),
            Arc::new(Iface(IID_B)),
            Arc::new(RemUnknown::new(exporter.clone(), true)),
            Arc::new(RemUnknown::new(exporter, false)),
        ],
        Some(Arc::new(Users)),
    );
    tokio::spawn(serve(scm, Arc::new(scm_cfg)));
    tokio::spawn(serve(exp, Arc::new(exp_cfg)));
    scm_port
}

fn auth(password: &str) -> ClientAuth {
    ClientAuth {
        method: AuthMethod::Ntlm,
        level: AuthLevel::Privacy,
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

#[tokio::test]
async fn activate_call_query_release() {
    let port = start().await;
    let opts = ClientOptions::default();
    let mut a = activate("127.0.0.1", port, CLSID, IID_A, &auth("Passw0rd!"), &opts)
        .await
        .unwrap();
    assert_eq!(a.iid(), IID_A);
    let mut w = a.request();
    w.u32(41);
    let stub = a.call(3, w).await.unwrap();
    let mut r = reply(&stub).unwrap();
    assert_eq!(r.unique_wstring(64).unwrap().as_deref(), Some("alice"));
    assert_eq!(r.u32().unwrap(), 42);
    assert_eq!(r.u32().unwrap(), 0);

    let mut b = a.query_interface(IID_B).await.unwrap();
    assert_eq!(b.objref().oxid, a.objref().oxid);
    assert_ne!(b.objref().ipid, a.objref().ipid);
    let stub = b.call(3, b.request()).await.unwrap();
    assert_eq!(reply(&stub).unwrap().u32().unwrap(), 0xb);

    match a.query_interface(Uuid::from_u128(9)).await {
        Err(RpcError::Hresult { status, .. }) => assert_eq!(status, E_NOINTERFACE),
        other => panic!("expected E_NOINTERFACE, got {other:?}"),
    }
    b.release().await.unwrap();
    a.release().await.unwrap();
}

#[tokio::test]
async fn activation_failures_are_precise() {
    let port = start().await;
    let opts = ClientOptions::default();
    match activate(
        "127.0.0.1",
        port,
        Uuid::from_u128(1),
        IID_A,
        &auth("Passw0rd!"),
        &opts,
    )
    .await
    {
        Err(RpcError::Hresult { status, .. }) => assert_eq!(status, REGDB_E_CLASSNOTREG),
        other => panic!("expected REGDB_E_CLASSNOTREG, got {other:?}"),
    }
    match activate(
        "127.0.0.1",
        port,
        CLSID,
        Uuid::from_u128(2),
        &auth("Passw0rd!"),
        &opts,
    )
    .await
    {
        Err(RpcError::Hresult { status, .. }) => assert_eq!(status, E_NOINTERFACE),
        other => panic!("expected E_NOINTERFACE, got {other:?}"),
    }
    let e = activate("127.0.0.1", port, CLSID, IID_A, &auth("wrong"), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Fault { status: 5 } | RpcError::Auth(_) | RpcError::ConnectionClosed(_)
        ),
        "{e:?}"
    );
}
