//! The OCSP request parser never panics, whatever the bytes, and what it
//! accepts stays within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = pki::ocsp::parse_request(data) {
        assert!(!q.cert_ids.is_empty() && q.cert_ids.len() <= pki::ocsp::MAX_REQUESTS);
        for id in &q.cert_ids {
            let _ = id.serial_hex();
        }
    }
});
