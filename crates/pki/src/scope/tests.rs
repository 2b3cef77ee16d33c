#![allow(clippy::unwrap_used)]

use super::*;

fn name(s: &str) -> DnsName {
    DnsName::parse(s).unwrap()
}

fn rule(s: &str) -> ScopeRule {
    s.parse().unwrap()
}

/// (rule, name, matches?)
const MATCH_TABLE: &[(&str, &str, bool)] = &[
    // --- .zone/N: apex excluded, depth boundaries, label boundaries.
    (".example.com/1", "example.com", false),
    (".example.com/1", "www.example.com", true),
    (".example.com/1", "WWW.EXAMPLE.COM.", true),
    (".example.com/1", "a.b.example.com", false),
    (".example.com/2", "a.b.example.com", true),
    (".example.com/2", "a.b.c.example.com", false),
    (".example.com/3", "a.b.c.example.com", true),
    (".example.com/3", "a.b.c.d.example.com", false),
    (".example.com/2", "evilexample.com", false),
    (".example.com/2", "www.evilexample.com", false),
    (".example.com/2", "example.com.evil.net", false),
    (".example.com/2", "www.example.com.evil.net", false),
    (".example.com/2", "example.org", false),
    (".example.com/2", "com", false),
    (".example.com/2", "xexample.com", false),
    (".example.com/2", "x-example.com", false),
    (".example.com/2", "www.example.co", false),
    (".example.com/2", "*.example.com", false),
    (".example.com/2", "*.a.example.com", false),
    (".example.com/127", "*.a.example.com", false),
    (".example.com/127", "a.b.c.d.e.f.g.example.com", true),
    (".com/1", "example.com", true),
    (".com/1", "com", false),
    (".com/1", "www.example.com", false),
    (".Example.COM./1", "www.example.com", true),
    (".a.example.com/1", "b.a.example.com", true),
    (".a.example.com/1", "a.example.com", false),
    (".a.example.com/1", "b.example.com", false),
    (".a.example.com/1", "ba.example.com", false),
    (
        ".xn--bcher-kva.example/1",
        "www.xn--bcher-kva.example",
        true,
    ),
    // --- *.zone: exactly the wildcard.
    ("*.example.com", "*.example.com", true),
    ("*.example.com", "*.EXAMPLE.com.", true),
    ("*.example.com", "example.com", false),
    ("*.example.com", "www.example.com", false),
    ("*.example.com", "*.a.example.com", false),
    ("*.example.com", "*.evilexample.com", false),
    ("*.example.com", "*.com", false),
    ("*.a.example.com", "*.a.example.com", true),
    ("*.a.example.com", "*.example.com", false),
    ("*.a.example.com", "b.a.example.com", false),
    // --- *..zone/N: wildcards strictly inside subzones.
    ("*..example.com/1", "*.example.com", false),
    ("*..example.com/1", "*.a.example.com", true),
    ("*..example.com/1", "*.a.b.example.com", false),
    ("*..example.com/2", "*.a.b.example.com", true),
    ("*..example.com/2", "*.a.b.c.example.com", false),
    ("*..example.com/1", "a.example.com", false),
    ("*..example.com/1", "x.a.example.com", false),
    ("*..example.com/1", "example.com", false),
    ("*..example.com/1", "*.aexample.com", false),
    ("*..example.com/1", "*.a.evilexample.com", false),
    ("*..example.com/1", "*.example.com.evil.net", false),
    ("*..example.com/127", "*.a.b.c.d.example.com", true),
    // --- =name.
    ("=example.com", "example.com", true),
    ("=example.com", "EXAMPLE.com.", true),
    ("=example.com", "www.example.com", false),
    ("=example.com", "*.example.com", false),
    ("=www.example.com", "www.example.com", true),
    ("=www.example.com", "example.com", false),
    ("=*.a.example.com", "*.a.example.com", true),
    ("=*.a.example.com", "b.a.example.com", false),
    ("=*.a.example.com", "*.example.com", false),
    ("=Example.COM.", "example.com", true),
];

#[test]
fn match_table() {
    for (r, n, want) in MATCH_TABLE {
        assert_eq!(rule(r).matches(&name(n)), *want, "rule {r} name {n}");
    }
}

/// Depth boundaries, generated: for every N in a range, names with exactly N
/// labels in front match and N+1 do not, for both subtree forms.
#[test]
fn generated_depth_boundaries() {
    let mut checked = 0;
    for zone in ["example.com", "corp.example.net", "lan"] {
        for n in 1..=12u32 {
            let subtree = rule(&format!(".{zone}/{n}"));
            let wild = rule(&format!("*..{zone}/{n}"));
            for depth in 0..=n + 1 {
                let front: Vec<String> = (0..depth).map(|i| format!("l{i}")).collect();
                let plain = if depth == 0 {
                    zone.to_owned()
                } else {
                    format!("{}.{zone}", front.join("."))
                };
                let plain_name = name(&plain);
                let want = depth >= 1 && depth <= n;
                assert_eq!(subtree.matches(&plain_name), want, "{subtree} {plain}");
                let wildcard = name(&format!("*.{plain}"));
                assert_eq!(wild.matches(&wildcard), want, "{wild} *.{plain}");
                // The two forms never cross over.
                assert!(!subtree.matches(&wildcard), "{subtree} *.{plain}");
                assert!(!wild.matches(&plain_name), "{wild} {plain}");
                // Label-boundary trap: glue the front onto the zone's first label.
                if depth >= 1 {
                    let glued = name(&format!("{}{zone}", front.join(".")));
                    assert!(!subtree.matches(&glued), "{subtree} {glued}");
                    let glued_wild = name(&format!("*.{}{zone}", front.join(".")));
                    assert!(!wild.matches(&glued_wild), "{wild} {glued_wild}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
}

#[test]
fn scope_decisions_deny_wins() {
    let allow: Vec<String> = [
        ".example.com/3",
        "*.example.com",
        "*..example.com/2",
        "=example.com",
    ]
    .map(String::from)
    .to_vec();
    let deny: Vec<String> = [
        ".secret.example.com/5",
        "=admin.example.com",
        "*..secret.example.com/5",
        "=secret.example.com",
    ]
    .map(String::from)
    .to_vec();
    let scope = Scope::new(&allow, &deny).unwrap();
    let cases: &[(&str, ScopeDecision)] = &[
        (
            "www.example.com",
            ScopeDecision::Allowed {
                rule: ".example.com/3".into(),
            },
        ),
        (
            "example.com",
            ScopeDecision::Allowed {
                rule: "=example.com".into(),
            },
        ),
        (
            "*.example.com",
            ScopeDecision::Allowed {
                rule: "*.example.com".into(),
            },
        ),
        (
            "*.a.example.com",
            ScopeDecision::Allowed {
                rule: "*..example.com/2".into(),
            },
        ),
        (
            "*.a.b.example.com",
            ScopeDecision::Allowed {
                rule: "*..example.com/2".into(),
            },
        ),
        ("*.a.b.c.example.com", ScopeDecision::NotAllowed),
        ("a.b.c.d.example.com", ScopeDecision::NotAllowed),
        (
            "admin.example.com",
            ScopeDecision::Denied {
                rule: "=admin.example.com".into(),
            },
        ),
        (
            "x.secret.example.com",
            ScopeDecision::Denied {
                rule: ".secret.example.com/5".into(),
            },
        ),
        (
            "secret.example.com",
            ScopeDecision::Denied {
                rule: "=secret.example.com".into(),
            },
        ),
        (
            "*.secret.example.com",
            ScopeDecision::Allowed {
                rule: "*..example.com/2".into(),
            },
        ),
        (
            "*.x.secret.example.com",
            ScopeDecision::Denied {
                rule: "*..secret.example.com/5".into(),
            },
        ),
        ("evilexample.com", ScopeDecision::NotAllowed),
        ("www.example.org", ScopeDecision::NotAllowed),
        ("*.com", ScopeDecision::NotAllowed),
    ];
    for (n, want) in cases {
        assert_eq!(&scope.check(&name(n)), want, "{n}");
    }
    assert!(scope.check(&name("www.example.com")).is_allowed());
    assert!(!scope.check(&name("admin.example.com")).is_allowed());
    assert_eq!(scope.allow().len(), 4);
    assert_eq!(scope.deny().len(), 4);
}

#[test]
fn deny_same_rule_as_allow_wins() {
    let rules = vec![".example.com/2".to_owned()];
    let scope = Scope::new(&rules, &rules).unwrap();
    assert_eq!(
        scope.check(&name("a.example.com")),
        ScopeDecision::Denied {
            rule: ".example.com/2".into()
        }
    );
}

#[test]
fn display_round_trips() {
    let sources = [
        ".example.com/2",
        ".com/1",
        ".example.com/127",
        "*.example.com",
        "*..example.com/1",
        "*..a.b.example.com/127",
        "=example.com",
        "=*.a.example.com",
        "=xn--bcher-kva.example",
    ];
    for src in sources {
        let r = rule(src);
        assert_eq!(r.to_string(), src);
        assert_eq!(rule(&r.to_string()), r);
    }
    // Normalisation: the display is the normal form, which parses back.
    let r = rule(".Example.COM./2");
    assert_eq!(r.to_string(), ".example.com/2");
    assert_eq!(rule("=WWW.Example.com.").to_string(), "=www.example.com");
    assert_eq!(rule("*.EXAMPLE.com").to_string(), "*.example.com");
}

#[test]
fn parsed_shapes() {
    assert_eq!(
        rule(".example.com/2"),
        ScopeRule::Subtree {
            zone: "example.com".into(),
            max_depth: 2
        }
    );
    assert_eq!(
        rule("*.example.com"),
        ScopeRule::Wildcard {
            zone: "example.com".into()
        }
    );
    assert_eq!(
        rule("*..example.com/3"),
        ScopeRule::WildcardSubtree {
            zone: "example.com".into(),
            max_depth: 3
        }
    );
    assert_eq!(
        rule("=a.example.com"),
        ScopeRule::Exact("a.example.com".into())
    );
}

/// (rule, substring of the error)
const PARSE_ERRORS: &[(&str, &str)] = &[
    ("", "empty rule"),
    ("example.com", "unknown rule form"),
    ("www.example.com/2", "unknown rule form"),
    (".example.com", "missing \"/N\""),
    (".example.com/", "not a number"),
    (".example.com/0", "out of range"),
    (".example.com/128", "out of range"),
    (".example.com/99999999999", "out of range"),
    (".example.com/-1", "not a number"),
    (".example.com/+1", "not a number"),
    (".example.com/x", "not a number"),
    (".example.com/01", "leading zero"),
    (".example.com/1/2", "zone"),
    ("..example.com/2", "empty label"),
    (". example.com/2", "whitespace"),
    (".example.com/2 ", "whitespace"),
    (".exa_mple.com/2", "'_'"),
    (".*.example.com/2", "must not be a wildcard"),
    (".192.0.2.1/1", "IP addresses"),
    ("*.example.com/2", "takes no depth"),
    ("*.", "empty"),
    ("*.*.example.com", "must not be a wildcard"),
    ("*.exa mple.com", "whitespace"),
    ("*..example.com", "missing \"/N\""),
    ("*..example.com/0", "out of range"),
    ("*..example.com/128", "out of range"),
    ("*..*.example.com/1", "must not be a wildcard"),
    ("*...example.com/1", "empty label"),
    ("=", "empty"),
    ("=*", "bare"),
    ("=a..b", "empty label"),
    ("=bücher.example", "xn--"),
    ("=10.0.0.1", "IP addresses"),
    ("**.example.com", "unknown rule form"),
    ("/2", "unknown rule form"),
];

#[test]
fn parse_errors_explain_the_grammar() {
    for (src, needle) in PARSE_ERRORS {
        let err = src.parse::<ScopeRule>().unwrap_err().to_string();
        assert!(err.contains(needle), "{src:?}: {err:?} lacks {needle:?}");
        assert!(
            err.contains("\".example.com/2\""),
            "{src:?}: no example in {err:?}"
        );
        assert!(
            err.contains(&format!("{src:?}")),
            "{src:?}: rule not named in {err:?}"
        );
    }
}

#[test]
fn scope_new_names_list_and_index() {
    let allow: Vec<String> = vec![".example.com/2".into(), "bogus".into()];
    let err = Scope::new(&allow, &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("dns.allow[1]:"), "{msg}");
    assert!(msg.contains("\"bogus\""), "{msg}");

    let deny: Vec<String> = vec![
        "=ok.example.com".into(),
        "=ok2.example.com".into(),
        ".x/0".into(),
    ];
    let msg = Scope::new(&allow[..1], &deny).unwrap_err().to_string();
    assert!(msg.starts_with("dns.deny[2]:"), "{msg}");
    assert!(msg.contains("out of range"), "{msg}");

    assert_eq!(Scope::new(&[], &[]).unwrap_err(), ScopeError::EmptyAllow);
    assert!(Scope::new(&[], &[])
        .unwrap_err()
        .to_string()
        .contains("dns.allow is empty"));
}

#[test]
fn empty_deny_list_is_fine() {
    let scope = Scope::new(&["*.example.com".to_owned()], &[]).unwrap();
    assert!(scope.check(&name("*.example.com")).is_allowed());
    assert_eq!(
        scope.check(&name("www.example.com")),
        ScopeDecision::NotAllowed
    );
}

#[test]
fn table_size() {
    // Keep the corpus honest: hundreds of cases across the tables above.
    let generated = 3 * (2..=13).sum::<usize>();
    assert!(MATCH_TABLE.len() + PARSE_ERRORS.len() + generated > 300);
}
