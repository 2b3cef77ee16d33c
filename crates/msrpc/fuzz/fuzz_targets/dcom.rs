//! Fuzz the DCOM and MS-CSRA / MS-WCCE decoders: ORPC headers, OBJREFs,
//! activation property blobs, IRemUnknown and ICertAdminD / ICertRequestD
//! stubs. Each decoder sees the raw input, and also valid encodings edited
//! by the input (triples of offset, offset, value) and truncated by its
//! first byte, which reaches the nested structures a random input cannot.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrpc::csra;
use msrpc::dcom::activation::{ActivationIn, ActivationOut, InterfaceResult};
use msrpc::dcom::client;
use msrpc::dcom::objref::{DualStringArray, ObjRef, StdObjRef, StringBinding};
use msrpc::dcom::orpc::{OrpcThat, OrpcThis};
use msrpc::ndr::NdrReader;
use msrpc::uuid::Uuid;

fn decode_all(b: &[u8]) {
    let _ = OrpcThis::read(&mut NdrReader::new(b));
    let _ = OrpcThat::read(&mut NdrReader::new(b));
    let _ = ObjRef::decode(b);
    let _ = DualStringArray::read(&mut NdrReader::new(b));
    let _ = ActivationIn::decode(b);
    let _ = ActivationOut::decode(b);
    let _ = client::decode_create_instance_reply(b);
    let _ = client::decode_rem_query_interface(b);
    let _ = client::decode_rem_query_interface_reply(b);
    let _ = client::decode_rem_release(b);
    let _ = csra::decode_request_ref(b);
    let _ = csra::decode_resubmit_reply(b);
    let _ = csra::decode_property_reply(b);
    let _ = csra::Revoke::decode(b);
    let _ = csra::GetCaProperty::decode(b);
    let _ = csra::EnrollRequest::decode(b, false);
    let _ = csra::EnrollRequest::decode(b, true);
    let _ = csra::EnrollReply::decode(b);
    let _ = csra::parse_templates(b);
}

fn valid() -> Vec<Vec<u8>> {
    let std = StdObjRef {
        flags: 0x1000,
        public_refs: 5,
        oxid: 1,
        oid: 2,
        ipid: Uuid::from_u128(3),
    };
    let bindings = DualStringArray {
        string_bindings: vec![StringBinding::tcp("CA01", 49674)],
        security_bindings: vec![],
    };
    let out = ActivationOut {
        oxid: 1,
        bindings: bindings.clone(),
        ipid_rem_unknown: Uuid::from_u128(4),
        authn_hint: 6,
        server_version: (5, 7),
        interfaces: vec![InterfaceResult {
            iid: csra::IID_ICERTADMIND,
            hresult: 0,
            objref: Some(ObjRef::Standard {
                iid: csra::IID_ICERTADMIND,
                std,
                resolver: bindings,
            }),
        }],
    };
    let this = OrpcThis::new();
    vec![
        ActivationIn::new(csra::CLSID_CCERTADMIND, csra::IID_ICERTADMIND).encode(),
        out.encode(),
        client::encode_create_instance(&this, &out.encode()),
        client::encode_rem_query_interface_reply(&[(0, std)], 0),
        client::encode_rem_release(&this, &[(Uuid::from_u128(3), 5, 0)]),
        csra::EnrollRequest::submit("CA", "WebServer", &[0x30, 0]).encode(&this, true),
        csra::Revoke {
            authority: Some("CA".into()),
            serial: Some("01ab".into()),
            reason: 1,
            filetime: 0,
        }
        .encode(&this),
    ]
}

fuzz_target!(|data: &[u8]| {
    decode_all(data);
    let Some((&cut, edits)) = data.split_first() else {
        return;
    };
    for mut v in valid() {
        for e in edits.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % v.len().max(1);
            if let Some(b) = v.get_mut(at) {
                *b = e[2];
            }
        }
        if cut != 0 {
            v.truncate(v.len() * usize::from(cut) / 255);
        }
        decode_all(&v);
    }
});
