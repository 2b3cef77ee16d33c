//! Fuzz the acceptor's DCE-style Kerberos decoders (`msrpc::dce_kerberos`):
//! the third leg's negTokenResp, its AP-REP under a session key, the
//! first-leg negTokenInit's mechanism list and AP-REQ (whose ticket is
//! looked up in a keytab). Each sees the raw input, and also impacket's
//! captured third leg edited by the input (triples of offset, offset,
//! value) and truncated by its first byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrpc::dce_kerberos::{first_mech_is_kerberos, mech_token, NegTokenResp, SessionKey, ThirdLeg};
use msrpc::keytab::{Keytab, KeytabEntry, ETYPE_AES256};

/// impacket 0.13's third leg (Certipy 5.1 against lab-adcs).
const IMPACKET_LEG: &str = "a1633061a25f045d6f5b3059a003020105a10302010fa24d304ba003020112a2440442b95b930acdb92bc7e67aa90290fc2a579939b8fe42242e306ed0a04614f5f40382cd043f9493ecc7e30b12edd2db085a9710b4ea023a542c108e8691452d51cd0743";

fn hex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn decode_all(b: &[u8], sk: &SessionKey, kt: &Keytab) {
    let _ = NegTokenResp::decode(b);
    let _ = ThirdLeg::verify(b, sk);
    let _ = first_mech_is_kerberos(b);
    let _ = mech_token(b);
    let _ = SessionKey::from_ap_req(b, kt);
}

fuzz_target!(|data: &[u8]| {
    let Ok(sk) = SessionKey::new(vec![7; 32], 18) else {
        return;
    };
    let kt = Keytab {
        entries: vec![KeytabEntry {
            realm: "CORP.TEST".into(),
            components: vec!["HOST".into(), "ca.corp.test".into()],
            kvno: 2,
            enctype: ETYPE_AES256,
            key: vec![9; 32],
        }],
    };
    decode_all(data, &sk, &kt);
    let Some((&cut, edits)) = data.split_first() else {
        return;
    };
    let mut v = hex(IMPACKET_LEG);
    for e in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % v.len().max(1);
        if let Some(b) = v.get_mut(at) {
            *b = e[2];
        }
    }
    if cut != 0 {
        v.truncate(v.len() * usize::from(cut) / 255);
    }
    decode_all(&v, &sk, &kt);
});
