//! Name normalisation and the scope grammar never panic, and normalisation
//! is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(n) = pki::DnsName::parse(data) {
        let again = pki::DnsName::parse(n.as_str()).expect("a normalised name parses");
        assert_eq!(again.as_str(), n.as_str());
    }
    if let Ok(rule) = data.parse::<pki::ScopeRule>() {
        let _ = rule.to_string().parse::<pki::ScopeRule>().expect("a rule round-trips");
    }
});
