//! Deterministic mutation testing of every decoder: truncations and random
//! byte flips of valid encodings must yield errors, never panics. (The
//! coverage-guided version lives in `fuzz/`.)
#![allow(clippy::unwrap_used, missing_docs)]

use msrpc::epm::{EptMapRequest, EptMapResponse, TcpTower};
use msrpc::icpr::{CertServerRequest, CertServerResponse, ICPR_INTERFACE};
use msrpc::pdu::{AuthVerifier, Body, Pdu, Request};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn all_decoders(b: &[u8]) {
    let _ = msrpc::pdu::Pdu::decode(b);
    let _ = msrpc::pdu::layout(b);
    let _ = CertServerRequest::decode(b);
    let _ = CertServerResponse::decode(b);
    let _ = msrpc::icpr::decode_attributes(b);
    let _ = EptMapRequest::decode(b);
    let _ = EptMapResponse::decode(b);
    let _ = TcpTower::decode(b);
    let _ = msrpc::auth::parse_authenticate(b);
}

fn samples() -> Vec<Vec<u8>> {
    let req = CertServerRequest::submit("LAB-CA", "WebServer", &[0x30, 0x82, 0x01, 0x00, 1, 2, 3]);
    let resp = CertServerResponse {
        request_id: 1,
        disposition: 3,
        cert_chain: vec![1; 40],
        encoded_cert: vec![2; 30],
        disposition_message: msrpc::icpr::string_to_utf16le("Issued"),
        status: 0,
    };
    let tower = TcpTower::lookup(ICPR_INTERFACE).encode();
    let pdu = Pdu {
        flags: 3,
        call_id: 7,
        body: Body::Request(Request {
            alloc_hint: 5,
            context_id: 0,
            opnum: 0,
            object: None,
            stub: req.encode(),
        }),
        auth: Some(AuthVerifier {
            auth_type: 10,
            auth_level: 6,
            pad_len: 8,
            context_id: 0,
            value: vec![0; 16],
        }),
    };
    let mut ntlm = b"NTLMSSP\0\x03\0\0\0".to_vec();
    ntlm.resize(120, 0);
    ntlm[60] = 1;
    ntlm[20] = 40; // nt response len
    ntlm[24] = 72; // offset
    vec![
        req.encode(),
        resp.encode(),
        tower.clone(),
        EptMapRequest {
            object: None,
            tower: tower.clone(),
            entry_handle: [0; 20],
            max_towers: 4,
        }
        .encode(),
        EptMapResponse {
            entry_handle: [0; 20],
            towers: vec![tower],
            status: 0,
        }
        .encode(4),
        pdu.encode().unwrap(),
        ntlm,
    ]
}

#[test]
fn truncations_never_panic() {
    for s in samples() {
        for n in 0..s.len() {
            all_decoders(&s[..n]);
        }
    }
}

#[test]
fn mutations_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for s in samples() {
        for _ in 0..3000 {
            let mut m = s.clone();
            let flips = 1 + (rng.next() % 4) as usize;
            for _ in 0..flips {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            all_decoders(&m);
        }
    }
}
