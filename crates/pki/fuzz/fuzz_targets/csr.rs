//! The CSR parser and security model never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki::{check_csr, CsrPolicy, DnsName};

fuzz_target!(|data: &[u8]| {
    let names: Vec<DnsName> = ["example.com", "www.example.com"].iter().filter_map(|n| DnsName::parse(n).ok()).collect();
    let _ = check_csr(data, &names, &CsrPolicy::default());
    let _ = pki::check_issued(data, &names, &CsrPolicy::default(), std::time::Duration::from_secs(86400 * 90));
    let _ = pki::ari_cert_id(data);
});
