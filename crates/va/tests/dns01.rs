//! dns-01 and the profile's resolvers against the in-process test zone.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certeasy_va::testing::{RecordType, TestDns};
use certeasy_va::{DnsProtocol, FailureKind, ValidationProfile, Validator};
use common::*;

const EXPECTED: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";

#[tokio::test]
async fn success() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_txt("_acme-challenge.www.test", &["unrelated", EXPECTED]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let record = va.dns01("www.test", EXPECTED).await.expect("valid");
    assert_eq!(record.hostname, "www.test");
    assert_eq!(record.port, None);
    assert_eq!(record.address_used, None);
    assert!(dns.udp_queries() > 0);
}

#[tokio::test]
async fn wrong_value_lists_what_was_found() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_txt("_acme-challenge.www.test", &["stale-value"]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("www.test", EXPECTED).await.expect_err("mismatch");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert_eq!(
        err.detail,
        "no TXT record at _acme-challenge.www.test matches the expected value; found \"stale-value\""
    );
}

#[tokio::test]
async fn updates_are_seen_at_once_no_stale_cache() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_txt("_acme-challenge.www.test", &["old"]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    va.dns01("www.test", EXPECTED).await.expect_err("old value");
    dns.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    va.dns01("www.test", EXPECTED)
        .await
        .expect("retry sees the new value");
    dns.remove("_acme-challenge.www.test");
    let err = va.dns01("www.test", EXPECTED).await.expect_err("removed");
    assert_eq!(err.detail, "NXDOMAIN for _acme-challenge.www.test");
}

#[tokio::test]
async fn nxdomain() {
    let dns = TestDns::start("test").await.expect("dns");
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("x.test", EXPECTED).await.expect_err("nxdomain");
    assert_eq!(err.kind, FailureKind::Dns);
    assert_eq!(err.detail, "NXDOMAIN for _acme-challenge.x.test");
}

#[tokio::test]
async fn name_without_txt_is_no_records() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_a("_acme-challenge.x.test", LOCALHOST);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("x.test", EXPECTED).await.expect_err("no txt");
    assert_eq!(err.kind, FailureKind::Dns);
    assert_eq!(
        err.detail,
        "no TXT records found for _acme-challenge.x.test"
    );
}

#[tokio::test]
async fn servfail_is_reported() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_servfail("_acme-challenge.x.test");
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("x.test", EXPECTED).await.expect_err("servfail");
    assert_eq!(err.kind, FailureKind::Dns);
    assert!(
        err.detail
            .starts_with("SERVFAIL for _acme-challenge.x.test"),
        "{err}"
    );
}

#[tokio::test]
async fn over_tcp_only() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    let mut p = profile(&dns, 1, 1);
    p.zones = vec![zone(&dns, DnsProtocol::Tcp)];
    let va = Validator::new(p).expect("validator");
    va.dns01("www.test", EXPECTED)
        .await
        .expect("valid over TCP");
    assert!(dns.tcp_queries() > 0);
    assert_eq!(dns.udp_queries(), 0, "a TCP zone never uses UDP");
}

#[tokio::test]
async fn cname_inside_the_profile_is_followed() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_cname("_acme-challenge.www.test", "www.validation.test");
    dns.set_txt("www.validation.test", &[EXPECTED]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    va.dns01("www.test", EXPECTED)
        .await
        .expect("valid through CNAME");

    dns.set_txt("www.validation.test", &["nope"]);
    let err = va.dns01("www.test", EXPECTED).await.expect_err("mismatch");
    assert!(
        err.detail.contains("(via CNAME www.validation.test)"),
        "{err}"
    );
}

#[tokio::test]
async fn cname_to_a_label_holding_a_dot_is_refused() {
    // Found by the dns fuzz target: `elsewhere\.test.` is ONE label under
    // the root, whose text form ends in ".test"; it must not count as a name
    // inside zone `test`.
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_cname("_acme-challenge.www.test", "elsewhere\\.test");
    dns.set_txt("elsewhere\\.test", &[EXPECTED]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("www.test", EXPECTED).await.expect_err("outside");
    assert_eq!(err.kind, FailureKind::Dns, "{err}");
    assert!(err.detail.contains("leaves the zones"), "{err}");
}

#[tokio::test]
async fn cname_leaving_the_profile_is_refused() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_cname("_acme-challenge.www.test", "delegated.example");
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("www.test", EXPECTED).await.expect_err("outside");
    assert_eq!(err.kind, FailureKind::Dns);
    assert_eq!(
        err.detail,
        "CNAME _acme-challenge.www.test -> delegated.example leaves the zones of validation profile P"
    );
}

#[tokio::test]
async fn cname_loop_is_refused() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_cname("_acme-challenge.a.test", "b.test");
    dns.set_cname("b.test", "_acme-challenge.a.test");
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va.dns01("a.test", EXPECTED).await.expect_err("loop");
    assert!(err.detail.starts_with("CNAME loop"), "{err}");
}

#[tokio::test]
async fn outside_every_zone_is_rejected() {
    let dns = TestDns::start("test").await.expect("dns");
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va
        .dns01("www.example", EXPECTED)
        .await
        .expect_err("outside");
    assert_eq!(err.kind, FailureKind::RejectedIdentifier);
    assert_eq!(
        err.detail,
        "www.example is outside every zone of validation profile P"
    );
}

#[tokio::test]
async fn longest_suffix_selects_the_resolver() {
    // "test" is served by `outer`, "inner.test" by `inner`: the value is
    // only right on `inner`.
    let outer = TestDns::start("test").await.expect("dns");
    let inner = TestDns::start("inner.test").await.expect("dns");
    outer.set_txt("_acme-challenge.a.inner.test", &["wrong server"]);
    inner.set_txt("_acme-challenge.a.inner.test", &[EXPECTED]);
    let mut p = profile(&outer, 1, 1);
    let mut inner_zone = zone(&inner, DnsProtocol::Udp);
    inner_zone.suffixes = vec!["inner.test".into()];
    p.zones.push(inner_zone);
    let va = Validator::new(p).expect("validator");
    va.dns01("a.inner.test", EXPECTED).await.expect("valid");
    assert_eq!(outer.udp_queries(), 0);
}

#[tokio::test]
async fn authoritative_zone_queries_the_ns_addresses() {
    // The configured server (127.0.0.1) is only used to find the NS; the NS
    // name resolves to 127.0.0.2 (same port), which holds the real answer.
    let recursor = TestDns::start("test").await.expect("dns");
    let port = recursor.addr().port();
    let authority = TestDns::start_at("test", SocketAddr::from(([127, 0, 0, 2], port)))
        .await
        .expect("127.0.0.2 listens on the same port");
    recursor.set_a("ns1.test", "127.0.0.2".parse().expect("ip"));
    recursor.set_txt("_acme-challenge.www.test", &["recursor answer"]);
    authority.set_txt("_acme-challenge.www.test", &[EXPECTED]);

    let mut p = profile(&recursor, 1, 1);
    p.zones[0].authoritative = true;
    let va = Validator::new(p).expect("validator");
    va.dns01("www.test", EXPECTED)
        .await
        .expect("authoritative answer");
    assert!(authority.udp_queries() > 0);
}

#[tokio::test]
async fn dnssec_zone_refuses_unsigned_answers() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    let mut p = profile(&dns, 1, 1);
    p.timeout = Duration::from_secs(3);
    p.zones[0].dnssec = true;
    let va = Validator::new(p).expect("validator");
    let err = va.dns01("www.test", EXPECTED).await.expect_err("unsigned");
    assert_eq!(err.kind, FailureKind::Dns);
    assert!(err.detail.contains("DNSSEC"), "{err}");
}

#[tokio::test]
async fn resolve_addresses_filters_by_policy() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.set_a("www.test", LOCALHOST);
    dns.set_a("www.test", "::1".parse().expect("ip"));
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    assert_eq!(
        va.resolve_addresses("www.test").await.expect("resolved"),
        vec!["::1".parse::<std::net::IpAddr>().expect("ip"), LOCALHOST],
        "IPv6 first"
    );
    let mut p = profile(&dns, 1, 1);
    p.ip_policy = policy(&[], &["::1"]);
    let va = Validator::new(p).expect("validator");
    assert_eq!(
        va.resolve_addresses("www.test").await.expect("resolved"),
        vec![LOCALHOST]
    );
    let err = va
        .resolve_addresses("nothing.test")
        .await
        .expect_err("nxdomain");
    assert_eq!(err.detail, "NXDOMAIN for nothing.test");
}

#[tokio::test]
async fn a_server_that_refuses_cname_and_aaaa_queries_still_validates() {
    let dns = TestDns::start("test").await.expect("dns");
    dns.refuse_types(&[RecordType::CNAME, RecordType::AAAA]);
    dns.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    va.dns01("www.test", EXPECTED)
        .await
        .expect("the TXT answer is all that matters");

    // A CNAME arrives in the TXT answer, with the TXT of its target.
    dns.set_cname("_acme-challenge.alias.test", "_acme-challenge.www.test");
    va.dns01("alias.test", EXPECTED)
        .await
        .expect("valid through the CNAME in the TXT answer");
}

#[tokio::test]
async fn a_cname_into_another_zone_is_asked_of_that_zones_server() {
    // "test" is served by `outer`, "inner.test" by `inner`; `outer` knows
    // only the CNAME, and answers a wrong TXT for the target if asked.
    let outer = TestDns::start("test").await.expect("dns");
    let inner = TestDns::start("inner.test").await.expect("dns");
    outer.set_cname("_acme-challenge.www.test", "v.inner.test");
    outer.set_txt("v.inner.test", &["outer must not be asked"]);
    inner.set_txt("v.inner.test", &[EXPECTED]);
    let mut p = profile(&outer, 1, 1);
    let mut inner_zone = zone(&inner, DnsProtocol::Udp);
    inner_zone.suffixes = vec!["inner.test".into()];
    p.zones.push(inner_zone);
    let va = Validator::new(p).expect("validator");
    va.dns01("www.test", EXPECTED)
        .await
        .expect("the target is resolved by its own zone's server");
}

/// A recursor for "test" on 127.0.0.1 whose NS `ns1.test` points at an
/// authoritative server on 127.0.0.2 (same port), returned as (recursor,
/// authority).
async fn recursor_and_authority() -> (TestDns, TestDns) {
    let recursor = TestDns::start("test").await.expect("dns");
    let port = recursor.addr().port();
    let authority = TestDns::start_at("test", SocketAddr::from(([127, 0, 0, 2], port)))
        .await
        .expect("127.0.0.2 listens on the same port");
    recursor.set_a("ns1.test", "127.0.0.2".parse().expect("ip"));
    (recursor, authority)
}

fn authoritative_profile(recursor: &TestDns) -> ValidationProfile {
    let mut p = profile(recursor, 1, 1);
    p.zones[0].authoritative = true;
    p
}

#[tokio::test]
async fn a_stalled_authoritative_lookup_does_not_delay_other_names() {
    let (recursor, authority) = recursor_and_authority().await;
    authority.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    // slow.test is a zone of its own whose server's address never arrives.
    recursor.set_ns("slow.test", &["ns1.slow.test"]);
    recursor.set_silent("ns1.slow.test");
    let va = Arc::new(Validator::new(authoritative_profile(&recursor)).expect("validator"));

    let stalled = tokio::spawn({
        let va = Arc::clone(&va);
        async move { va.dns01("x.slow.test", EXPECTED).await }
    });
    recursor.wait_for_query("ns1.slow.test").await;
    let started = Instant::now();
    va.dns01("www.test", EXPECTED)
        .await
        .expect("another zone validates meanwhile");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "waited {took:?} behind the stalled lookup"
    );
    assert!(
        !stalled.is_finished(),
        "the stalled lookup is still waiting"
    );
    stalled.abort();
}

#[tokio::test]
async fn authoritative_servers_denied_by_the_policy_are_not_contacted() {
    let (recursor, authority) = recursor_and_authority().await;
    authority.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    let mut p = authoritative_profile(&recursor);
    p.ip_policy = policy(&[], &["127.0.0.2"]);
    let va = Validator::new(p).expect("validator");
    let err = va.dns01("www.test", EXPECTED).await.expect_err("denied");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert_eq!(
        err.detail,
        "the authoritative servers of zone test are denied by the resolved-ip-policy of profile P: ns1.test (127.0.0.2)"
    );
    assert_eq!(
        authority.udp_queries() + authority.tcp_queries(),
        0,
        "a denied name server is never asked"
    );
}

#[tokio::test]
async fn only_the_permitted_authoritative_servers_are_asked() {
    let (recursor, denied) = recursor_and_authority().await;
    let port = recursor.addr().port();
    let allowed = TestDns::start_at("test", SocketAddr::from(([127, 0, 0, 3], port)))
        .await
        .expect("127.0.0.3 listens on the same port");
    recursor.set_ns("test", &["ns1.test", "ns2.test"]);
    recursor.set_a("ns2.test", "127.0.0.3".parse().expect("ip"));
    denied.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    allowed.set_txt("_acme-challenge.www.test", &[EXPECTED]);
    let mut p = authoritative_profile(&recursor);
    p.ip_policy = policy(&[], &["127.0.0.2"]);
    let va = Validator::new(p).expect("validator");
    for _ in 0..4 {
        va.dns01("www.test", EXPECTED)
            .await
            .expect("ns2.test answers");
    }
    assert!(allowed.udp_queries() > 0);
    assert_eq!(denied.udp_queries() + denied.tcp_queries(), 0);
}

#[tokio::test]
async fn authoritative_zone_follows_a_cname_into_a_child_zone() {
    // test (ns1.test = 127.0.0.2) delegates child.test to ns.child.test
    // (127.0.0.3); the challenge name is a CNAME into the child zone.
    let (recursor, authority) = recursor_and_authority().await;
    let port = recursor.addr().port();
    let child = TestDns::start_at("child.test", SocketAddr::from(([127, 0, 0, 3], port)))
        .await
        .expect("127.0.0.3 listens on the same port");
    recursor.set_ns("child.test", &["ns.child.test"]);
    recursor.set_a("ns.child.test", "127.0.0.3".parse().expect("ip"));
    for server in [&recursor, &authority] {
        server.set_cname("_acme-challenge.www.test", "v.child.test");
    }
    authority.set_txt("v.child.test", &["the parent zone must not answer"]);
    child.set_txt("v.child.test", &[EXPECTED]);
    let va = Validator::new(authoritative_profile(&recursor)).expect("validator");
    va.dns01("www.test", EXPECTED)
        .await
        .expect("the target is asked of the child zone's server");
    assert!(child.udp_queries() > 0);
}
