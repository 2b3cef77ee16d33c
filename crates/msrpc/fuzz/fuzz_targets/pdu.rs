//! Fuzz the PDU layer: header, layout and full decode must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = msrpc::pdu::Header::parse(data);
    let _ = msrpc::pdu::layout(data);
    if let Ok(p) = msrpc::pdu::Pdu::decode(data) {
        // whatever decodes must re-encode
        let _ = p.encode();
    }
    let _ = msrpc::auth::parse_authenticate(data);
});
