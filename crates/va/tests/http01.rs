//! http-01 against loopback responders and the in-process test zone.

mod common;

use certeasy_va::testing::{RecordType, TestDns};
use certeasy_va::{FailureKind, Validator};
use common::*;

const TOKEN: &str = "tok_EN-123";
const KEY_AUTH: &str = "tok_EN-123.thumbprint";

fn challenge_path() -> String {
    format!("/.well-known/acme-challenge/{TOKEN}")
}

async fn zone_with(names: &[&str]) -> TestDns {
    let dns = TestDns::start("test").await.expect("dns");
    for name in names {
        dns.set_a(name, LOCALHOST);
    }
    dns
}

#[tokio::test]
async fn success_records_what_was_contacted() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|path| {
        if path == challenge_path() {
            (200, vec![], format!("{KEY_AUTH}\r\n \n"))
        } else {
            (404, vec![], String::new())
        }
    })
    .await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let record = va
        .http01("WWW.test.", TOKEN, KEY_AUTH)
        .await
        .expect("valid");
    assert_eq!(record.hostname, "www.test");
    assert_eq!(record.port, Some(http.addr.port()));
    assert_eq!(record.addresses_resolved, vec![LOCALHOST]);
    assert_eq!(record.address_used, Some(LOCALHOST));
    assert_eq!(
        record.url.as_deref(),
        Some(format!("http://www.test:{}{}", http.addr.port(), challenge_path()).as_str())
    );
    assert_eq!(http.seen(), vec![("www.test".to_owned(), challenge_path())]);

    let json = serde_json::to_value(&record).expect("json");
    assert_eq!(json["addressesResolved"][0], "127.0.0.1");
    assert_eq!(json["addressUsed"], "127.0.0.1");
}

#[tokio::test]
async fn wrong_body_is_incorrect_response() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|_| (200, vec![], "something.else".into())).await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("mismatch");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert_eq!(
        err.detail,
        format!(
            "the response at http://www.test:{}{} did not match the key authorization (14 bytes)",
            http.addr.port(),
            challenge_path()
        )
    );
    assert!(!err.detail.contains("something"), "no body bytes: {err}");
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|_| (200, vec![], "x".repeat(9000))).await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("too big");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert!(err.detail.contains("exceeds 8192 bytes"), "{err}");
}

#[tokio::test]
async fn not_found_is_incorrect_response() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|_| (404, vec![], "nope".into())).await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("404");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert!(err.detail.contains("answered HTTP 404 Not Found"), "{err}");
}

#[tokio::test]
async fn connection_refused_names_the_address() {
    let dns = zone_with(&["www.test"]).await;
    let port = closed_port();
    let va = Validator::new(profile(&dns, port, 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("refused");
    assert_eq!(err.kind, FailureKind::Connection);
    assert_eq!(
        err.detail,
        format!("connection refused at 127.0.0.1:{port}")
    );
}

#[tokio::test]
async fn redirect_chain_across_hosts_is_followed() {
    let dns = zone_with(&["www.test", "other.test"]).await;
    let http = HttpResponder::start(move |path| {
        if path == challenge_path() {
            (301, vec![("location", "/hop/1".into())], String::new())
        } else if path == "/hop/1" {
            // Absolute URL to another name of the zone, port by default.
            (
                302,
                vec![("location", "http://other.test/hop/2?x=1".into())],
                String::new(),
            )
        } else if path == "/hop/2?x=1" {
            (200, vec![], KEY_AUTH.into())
        } else {
            (404, vec![], String::new())
        }
    })
    .await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let record = va.http01("www.test", TOKEN, KEY_AUTH).await.expect("valid");
    assert_eq!(record.hostname, "other.test");
    assert_eq!(
        record.url.as_deref(),
        Some("http://other.test/hop/2?x=1"),
        "the default port stands for the profile's http-01 port"
    );
    let seen = http.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2], ("other.test".to_owned(), "/hop/2?x=1".to_owned()));
}

fn redirect_chain(hops: usize) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |path: &str| {
        let n = if path == challenge_path() {
            0
        } else {
            path.strip_prefix("/r/")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        };
        if n < hops {
            (
                302,
                vec![("location", format!("/r/{}", n + 1))],
                String::new(),
            )
        } else if n == hops {
            (200, vec![], KEY_AUTH.into())
        } else {
            (404, vec![], String::new())
        }
    }
}

#[tokio::test]
async fn ten_redirects_are_allowed_eleven_are_not() {
    let dns = zone_with(&["www.test"]).await;
    let ten = HttpResponder::start(redirect_chain(10)).await;
    let va = Validator::new(profile(&dns, ten.addr.port(), 1)).expect("validator");
    va.http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect("10 redirects");
    assert_eq!(ten.seen().len(), 11);

    let eleven = HttpResponder::start(redirect_chain(11)).await;
    let va = Validator::new(profile(&dns, eleven.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("11");
    // The 11th redirect comes from a redirect target: reported like any
    // other redirect target that did not serve the key authorization.
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert_eq!(err.detail, REDIRECT_TARGET_FAILED);
    assert_eq!(eleven.seen().len(), 11, "the 11th redirect is not followed");
}

#[tokio::test]
async fn redirect_to_a_disallowed_port_is_refused() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|_| {
        (
            302,
            vec![("location", "http://www.test:8080/x".into())],
            String::new(),
        )
    })
    .await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("port");
    assert_eq!(err.kind, FailureKind::Connection);
    assert_eq!(
        err.detail,
        "redirect to http://www.test:8080/x refused: only ports 80 and 443 are allowed"
    );
}

#[tokio::test]
async fn redirect_to_another_scheme_is_refused() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|_| {
        (
            302,
            vec![("location", "ftp://www.test/x".into())],
            String::new(),
        )
    })
    .await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("scheme");
    assert!(
        err.detail.contains("scheme ftp is not http or https"),
        "{err}"
    );
}

#[tokio::test]
async fn redirect_to_an_ip_literal_is_refused_without_contact() {
    let dns = zone_with(&["www.test"]).await;
    // A trap listener on an address the policy allows; its port is made an
    // allowed port by using it as the profile's tls-alpn-01 ("443") port.
    let trap = std::net::TcpListener::bind(("127.0.0.2", 0)).expect("bind 127.0.0.2");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_port = trap.local_addr().expect("addr").port();
    for literal in ["127.0.0.2".to_owned(), "[::ffff:127.0.0.2]".to_owned()] {
        let location = format!("http://{literal}:{trap_port}/x");
        let http = HttpResponder::start({
            let location = location.clone();
            move |_| (302, vec![("location", location.clone())], String::new())
        })
        .await;
        let va = Validator::new(profile(&dns, http.addr.port(), trap_port)).expect("validator");
        let err = va
            .http01("www.test", TOKEN, KEY_AUTH)
            .await
            .expect_err("IP literal");
        assert_eq!(err.kind, FailureKind::Connection);
        assert_eq!(
            err.detail,
            format!(
                "redirect to {} refused: redirect targets must be DNS names, not IP addresses",
                url::Url::parse(&location).expect("url")
            )
        );
        assert_eq!(http.seen().len(), 1);
    }
    assert_eq!(
        trap.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "the IP literal must not be contacted"
    );
}

/// A redirect target on `internal.test` that must never be read back: it
/// serves [`SECRET`] under every path, with the status the path names.
async fn internal_server(tls: bool) -> HttpResponder {
    let route = |path: &str| -> Reply {
        match path {
            "/forbidden" => (403, vec![], SECRET.into()),
            "/error" => (500, vec![("x-secret", SECRET.into())], SECRET.into()),
            "/onwards" => (
                302,
                vec![("location", format!("ftp://{SECRET}.test/"))],
                SECRET.into(),
            ),
            "/literal" => (
                302,
                vec![("location", "http://127.0.0.3/admin".into())],
                SECRET.into(),
            ),
            "/big" => (200, vec![], SECRET.repeat(1000)),
            _ => (200, vec![], SECRET.into()),
        }
    };
    if tls {
        HttpResponder::start_tls(route).await
    } else {
        HttpResponder::start(route).await
    }
}

const SECRET: &str = "internal-secret-d41d8cd9";
const REDIRECT_TARGET_FAILED: &str =
    "the redirect target did not answer with the key authorization";

#[tokio::test]
async fn nothing_of_a_redirect_target_is_echoed() {
    let dns = zone_with(&["www.test", "internal.test"]).await;
    for tls in [false, true] {
        let internal = internal_server(tls).await;
        let port = internal.addr.port();
        let scheme = if tls { "https" } else { "http" };
        for path in [
            "/mismatch",
            "/forbidden",
            "/error",
            "/onwards",
            "/literal",
            "/big",
        ] {
            let location = format!("{scheme}://internal.test:{port}{path}");
            let front = HttpResponder::start(move |_| {
                (302, vec![("location", location.clone())], String::new())
            })
            .await;
            // The internal port stands in for 443, so the redirect is allowed.
            let va = Validator::new(profile(&dns, front.addr.port(), port)).expect("validator");
            let err = va
                .http01("www.test", TOKEN, KEY_AUTH)
                .await
                .expect_err("no key authorization");
            assert_eq!(err.kind, FailureKind::IncorrectResponse, "{path}: {err}");
            assert_eq!(err.detail, REDIRECT_TARGET_FAILED, "{scheme} {path}");
            for leak in [SECRET, "403", "Forbidden", "500", "127.0.0.1", "127.0.0.3"] {
                assert!(!err.detail.contains(leak), "{path}: {leak} in {err}");
            }
            assert!(
                internal.seen().iter().any(|(_, p)| p == path),
                "{path}: the redirect target was contacted"
            );
        }
    }
}

#[tokio::test]
async fn a_redirect_target_that_refuses_the_connection_is_not_described() {
    let dns = zone_with(&["www.test", "internal.test"]).await;
    let port = closed_port();
    let front = HttpResponder::start(move |_| {
        (
            302,
            vec![("location", format!("http://internal.test:{port}/x"))],
            String::new(),
        )
    })
    .await;
    let va = Validator::new(profile(&dns, front.addr.port(), port)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("refused");
    assert_eq!(err.kind, FailureKind::IncorrectResponse);
    assert_eq!(err.detail, REDIRECT_TARGET_FAILED);
}

#[tokio::test]
async fn nat64_and_6to4_addresses_embedding_a_denied_ipv4_are_refused() {
    let dns = zone_with(&[]).await;
    dns.set_a("nat64.test", "64:ff9b::7f00:1".parse().expect("ip"));
    dns.set_a("sixtofour.test", "2002:7f00:1::1".parse().expect("ip"));
    let mut p = profile(&dns, closed_port(), 1);
    p.ip_policy = policy(&[], &["127.0.0.0/8"]);
    let va = Validator::new(p).expect("validator");
    for (name, address) in [
        ("nat64.test", "64:ff9b::7f00:1"),
        ("sixtofour.test", "2002:7f00:1::1"),
    ] {
        let err = va.resolve_addresses(name).await.expect_err(name);
        assert_eq!(err.kind, FailureKind::Unauthorized);
        assert_eq!(
            err.detail,
            format!("address {address} of {name} is denied by the resolved-ip-policy of profile P")
        );
    }
}

#[tokio::test]
async fn denied_address_is_never_contacted() {
    let dns = zone_with(&["www.test"]).await;
    let trap = std::net::TcpListener::bind((LOCALHOST, 0)).expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let mut p = profile(&dns, trap.local_addr().expect("addr").port(), 1);
    p.ip_policy = policy(&[], &["127.0.0.0/8"]);
    let va = Validator::new(p).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("denied");
    assert_eq!(err.kind, FailureKind::Unauthorized);
    assert_eq!(
        err.detail,
        "address 127.0.0.1 of www.test is denied by the resolved-ip-policy of profile P"
    );
    assert_eq!(
        trap.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "nothing may have connected"
    );
    let err = va.resolve_addresses("www.test").await.expect_err("denied");
    assert_eq!(err.kind, FailureKind::Unauthorized);
}

#[tokio::test]
async fn name_outside_every_zone_is_rejected() {
    let dns = zone_with(&[]).await;
    let va = Validator::new(profile(&dns, closed_port(), 1)).expect("validator");
    let err = va
        .http01("x.example", TOKEN, KEY_AUTH)
        .await
        .expect_err("outside");
    assert_eq!(err.kind, FailureKind::RejectedIdentifier);
    assert_eq!(
        err.detail,
        "x.example is outside every zone of validation profile P"
    );
    assert_eq!(
        dns.udp_queries() + dns.tcp_queries(),
        0,
        "no DNS query was made"
    );
}

#[tokio::test]
async fn redirect_outside_every_zone_is_rejected() {
    let dns = zone_with(&["www.test"]).await;
    let http = HttpResponder::start(|_| {
        (
            302,
            vec![("location", "http://evil.example/x".into())],
            String::new(),
        )
    })
    .await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("outside");
    assert_eq!(err.kind, FailureKind::RejectedIdentifier);
    assert!(err.detail.starts_with("evil.example is outside"), "{err}");
}

#[tokio::test]
async fn https_redirect_is_followed_without_certificate_verification() {
    let dns = zone_with(&["www.test"]).await;
    let https = HttpResponder::start_tls(|path| {
        if path == "/secure" {
            (200, vec![], KEY_AUTH.into())
        } else {
            (404, vec![], String::new())
        }
    })
    .await;
    let tls_port = https.addr.port();
    let http = HttpResponder::start(move |_| {
        (
            302,
            vec![("location", format!("https://www.test:{tls_port}/secure"))],
            String::new(),
        )
    })
    .await;
    let va = Validator::new(profile(&dns, http.addr.port(), tls_port)).expect("validator");
    let record = va.http01("www.test", TOKEN, KEY_AUTH).await.expect("valid");
    assert_eq!(record.port, Some(tls_port));
    assert_eq!(
        https.seen(),
        vec![(format!("www.test:{tls_port}"), "/secure".to_owned())]
    );
}

#[tokio::test]
async fn nxdomain_is_a_dns_failure() {
    let dns = zone_with(&[]).await;
    let va = Validator::new(profile(&dns, closed_port(), 1)).expect("validator");
    let err = va
        .http01("missing.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("nxdomain");
    assert_eq!(err.kind, FailureKind::Dns);
    assert_eq!(err.detail, "NXDOMAIN for missing.test");
}

#[tokio::test]
async fn silent_server_times_out_with_a_precise_message() {
    let dns = zone_with(&["www.test"]).await;
    // Accepts connections (kernel backlog) but never answers.
    let silent = std::net::TcpListener::bind((LOCALHOST, 0)).expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let mut p = profile(&dns, port, 1);
    p.timeout = std::time::Duration::from_millis(300);
    let va = Validator::new(p).expect("validator");
    let err = va
        .http01("www.test", TOKEN, KEY_AUTH)
        .await
        .expect_err("timeout");
    assert_eq!(err.kind, FailureKind::Connection);
    assert_eq!(
        err.detail,
        format!(
            "timed out after 300ms waiting for http://www.test:{port}{} at 127.0.0.1",
            challenge_path()
        )
    );
}

fn key_authorization_server() -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    |path: &str| {
        if path == challenge_path() {
            (200, vec![], KEY_AUTH.into())
        } else {
            (404, vec![], String::new())
        }
    }
}

#[tokio::test]
async fn a_server_that_answers_only_a_records_still_validates() {
    let dns = zone_with(&["www.test"]).await;
    dns.refuse_types(&[RecordType::CNAME, RecordType::AAAA]);
    let http = HttpResponder::start(key_authorization_server()).await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let record = va.http01("www.test", TOKEN, KEY_AUTH).await.expect("valid");
    assert_eq!(record.addresses_resolved, vec![LOCALHOST]);
}

#[tokio::test]
async fn a_cname_chain_in_the_a_answer_is_followed() {
    let dns = zone_with(&["web.test"]).await;
    dns.set_cname("www.test", "alias.test");
    dns.set_cname("alias.test", "web.test");
    // No CNAME query can succeed: the chain must come from the A answer.
    dns.refuse_types(&[RecordType::CNAME, RecordType::AAAA]);
    let http = HttpResponder::start(key_authorization_server()).await;
    let va = Validator::new(profile(&dns, http.addr.port(), 1)).expect("validator");
    let record = va.http01("www.test", TOKEN, KEY_AUTH).await.expect("valid");
    assert_eq!(record.hostname, "www.test");
    assert_eq!(record.addresses_resolved, vec![LOCALHOST]);
    assert_eq!(http.seen(), vec![("www.test".to_owned(), challenge_path())]);
}

#[tokio::test]
async fn an_aaaa_answer_alone_is_enough() {
    let dns = zone_with(&[]).await;
    dns.set_a("v6only.test", "::1".parse().expect("ip"));
    dns.refuse_types(&[RecordType::A]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    assert_eq!(
        va.resolve_addresses("v6only.test").await.expect("resolved"),
        vec!["::1".parse::<std::net::IpAddr>().expect("ip")]
    );
}

#[tokio::test]
async fn a_refused_aaaa_query_is_named_when_there_is_no_a_record() {
    let dns = zone_with(&[]).await;
    dns.set_txt("txt-only.test", &["x"]);
    dns.refuse_types(&[RecordType::AAAA]);
    let va = Validator::new(profile(&dns, 1, 1)).expect("validator");
    let err = va
        .resolve_addresses("txt-only.test")
        .await
        .expect_err("no address");
    assert_eq!(err.kind, FailureKind::Dns);
    assert_eq!(
        err.detail,
        "no A records found for txt-only.test; the AAAA query failed: REFUSED for txt-only.test (AAAA)"
    );
}
