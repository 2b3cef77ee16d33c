//! Fuzz the NDR decoders of ICertPassage and the endpoint mapper.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = msrpc::icpr::CertServerRequest::decode(data);
    let _ = msrpc::icpr::CertServerResponse::decode(data);
    let _ = msrpc::icpr::decode_attributes(data);
    let _ = msrpc::epm::EptMapRequest::decode(data);
    let _ = msrpc::epm::EptMapResponse::decode(data);
    let _ = msrpc::epm::TcpTower::decode(data);
    let mut r = msrpc::ndr::NdrReader::new(data);
    let _ = r.conformant_varying_wstring(1 << 16);
    let _ = r.cert_trans_blob(1 << 20);
});
