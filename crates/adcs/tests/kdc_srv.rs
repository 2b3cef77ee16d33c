//! KDC discovery by DNS SRV: against an in-process authoritative zone, and
//! (with `LAB_DOMAIN_DIR`, set by scripts/interop-kerberos.sh) against the
//! lab domain's own DNS on 127.0.0.2, which publishes
//! `_kerberos._tcp.corp.test`, up to a Kerberos LDAP bind whose KDC was
//! found that way.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use certeasy_adcs::kdc::{discovery_url, lookup_kdcs, Nameservers, SrvKdc};
use certeasy_va::testing::TestDns;
use msrpc::auth::KdcTransport;

#[tokio::test]
async fn srv_targets_in_priority_order_with_their_addresses() {
    let dns = TestDns::start("corp.example").await.unwrap();
    dns.set_srv(
        "_kerberos._tcp.corp.example",
        0,
        &[
            (10, 0, 88, "kdc2.corp.example"),
            (0, 0, 1088, "kdc1.corp.example"),
        ],
    );
    dns.set_a("kdc1.corp.example", "127.0.0.1".parse().unwrap());
    dns.set_a("kdc2.corp.example", "127.0.0.3".parse().unwrap());
    let (addrs, _) = lookup_kdcs("CORP.EXAMPLE", Nameservers::At(dns.addr()))
        .await
        .unwrap();
    assert_eq!(
        addrs,
        [
            "127.0.0.1:1088".parse::<SocketAddr>().unwrap(),
            "127.0.0.3:88".parse().unwrap()
        ]
    );
}

#[tokio::test]
async fn no_srv_record_says_what_to_set() {
    let dns = TestDns::start("corp.example").await.unwrap();
    let e = lookup_kdcs("CORP.EXAMPLE", Nameservers::At(dns.addr()))
        .await
        .unwrap_err();
    assert!(
        e.contains("no SRV record _kerberos._tcp.corp.example")
            && e.contains("set auth.kdc")
            && e.contains("publish _kerberos._tcp.corp.example"),
        "{e}"
    );
    // "." : decidedly not available.
    dns.set_srv("_kerberos._tcp.corp.example", 0, &[(0, 0, 88, ".")]);
    let e = lookup_kdcs("CORP.EXAMPLE", Nameservers::At(dns.addr()))
        .await
        .unwrap_err();
    assert!(
        e.contains("not available") && e.contains("set auth.kdc"),
        "{e}"
    );
    // A target without an address.
    dns.set_srv(
        "_kerberos._tcp.corp.example",
        0,
        &[(0, 0, 88, "ghost.corp.example")],
    );
    let e = lookup_kdcs("CORP.EXAMPLE", Nameservers::At(dns.addr()))
        .await
        .unwrap_err();
    assert!(
        e.contains("ghost.corp.example") && e.contains("no address"),
        "{e}"
    );
}

/// A TCP peer answering each length-prefixed message with a fixed reply
/// (the transport's failover and framing are under test, not Kerberos).
async fn one_reply_peer(reply: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).await.is_err() {
                continue;
            }
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            let _ = s.read_exact(&mut body).await;
            let mut out = u32::try_from(reply.len()).unwrap().to_be_bytes().to_vec();
            out.extend_from_slice(reply);
            let _ = s.write_all(&out).await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_does_not_answer_is_skipped_and_the_answer_cached_for_its_ttl() {
    let dns = TestDns::start("corp.example").await.unwrap();
    // kdc1 first (priority 0) but nothing listens there; kdc2 answers.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let live = one_reply_peer(b"krb-reply").await;
    dns.set_srv(
        "_kerberos._tcp.corp.example",
        300,
        &[
            (0, 0, dead, "kdc1.corp.example"),
            (1, 0, live.port(), "kdc2.corp.example"),
        ],
    );
    dns.set_a("kdc1.corp.example", "127.0.0.1".parse().unwrap());
    dns.set_a("kdc2.corp.example", "127.0.0.1".parse().unwrap());
    let kdc = Arc::new(SrvKdc::new("CORP.EXAMPLE", Nameservers::At(dns.addr())));
    let url = discovery_url("CORP.EXAMPLE");
    let (k, u) = (kdc.clone(), url.clone());
    let reply = tokio::task::spawn_blocking(move || k.send(&u, &[0, 0, 0, 1, 0x6a]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"\0\0\0\x09krb-reply");
    let queries = dns.udp_queries() + dns.tcp_queries();
    // Within the SRV TTL (300 s) the second exchange asks DNS nothing.
    let k = kdc.clone();
    let reply = tokio::task::spawn_blocking(move || k.send(&url, &[0, 0, 0, 1, 0x6a]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"\0\0\0\x09krb-reply");
    assert_eq!(
        dns.udp_queries() + dns.tcp_queries(),
        queries,
        "served from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ttl_zero_every_exchange_asks_dns_again() {
    let dns = TestDns::start("corp.example").await.unwrap();
    let live = one_reply_peer(b"r").await;
    dns.set_srv(
        "_kerberos._tcp.corp.example",
        0,
        &[(0, 0, live.port(), "kdc.corp.example")],
    );
    dns.set_a("kdc.corp.example", "127.0.0.1".parse().unwrap());
    let kdc = Arc::new(SrvKdc::new("CORP.EXAMPLE", Nameservers::At(dns.addr())));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let k = kdc.clone();
        tokio::task::spawn_blocking(move || k.send(&discovery_url("CORP.EXAMPLE"), &[0, 0, 0, 0]))
            .await
            .unwrap()
            .unwrap();
        seen.push(dns.udp_queries() + dns.tcp_queries());
    }
    assert!(
        seen[1] > seen[0],
        "the second exchange asked DNS again: {seen:?}"
    );
}

fn lab() -> Option<std::path::PathBuf> {
    std::env::var_os("LAB_DOMAIN_DIR").map(Into::into)
}

const SAMBA_DNS: &str = "127.0.0.2:53";

#[tokio::test]
async fn the_lab_domain_publishes_its_kdc() {
    if lab().is_none() {
        return;
    }
    let (addrs, _) = lookup_kdcs("CORP.TEST", Nameservers::At(SAMBA_DNS.parse().unwrap()))
        .await
        .unwrap();
    assert!(
        addrs.contains(&"127.0.0.2:88".parse().unwrap()),
        "{addrs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_ldap_bind_with_the_kdc_found_by_srv() {
    let Some(dir) = lab() else {
        return;
    };
    let kt =
        msrpc::keytab::Keytab::parse(&std::fs::read(dir.join("alice.keytab")).unwrap()).unwrap();
    let auth = msrpc::ClientAuth {
        method: msrpc::AuthMethod::Kerberos,
        level: msrpc::AuthLevel::Privacy,
        credentials: msrpc::Credentials {
            domain: "CORP.TEST".into(),
            username: "alice".into(),
            password: String::new(),
        },
        spn: Some("ldap/dc1.corp.test".into()),
        kdc: Some(discovery_url("CORP.TEST")),
        keytab: Some(Arc::new(kt)),
    };
    let transport: Arc<dyn KdcTransport> = Arc::new(SrvKdc::new(
        "CORP.TEST",
        Nameservers::At(SAMBA_DNS.parse().unwrap()),
    ));
    let ctx = msrpc::auth::ClientContext::new_gss_api(&auth, Some(transport)).unwrap();
    let mut tcp = tokio::net::TcpStream::connect("127.0.0.2:389")
        .await
        .unwrap();
    let est = certeasy_adcs::preflight::sasl::bind(
        &mut tcp,
        ctx,
        "ldap/dc1.corp.test",
        false,
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|f| panic!("{}: {}", f.what, f.fix));
    assert_eq!(
        est.layer,
        certeasy_adcs::preflight::sasl::LAYER_CONFIDENTIALITY
    );
    assert!(est.wrap.is_some());
}
