//! msrpc's SPNEGO acceptor against an initiator that behaves as impacket
//! (Certipy) does in DCE-style Kerberos: a framed AP-REQ in the
//! negTokenInit, then a third leg whose EncAPRepPart is untagged and whose
//! negTokenResp has neither negState nor mechListMIC, then wrap tokens
//! over the stub only (no header signing). The ticket is made here with a
//! service key the acceptor's keytab holds (no KDC); the lab-domain
//! equivalent with Certipy itself is in scripts/interop-kerberos.sh.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use msrpc::auth::{AuthError, AuthLevel, CredentialStore, Credentials, ServerNegotiate};
use msrpc::keytab::{Keytab, KeytabEntry, ETYPE_AES256};
use msrpc::pdu::{auth_pad, AuthVerifier, Body, Pdu, Request};
use picky_asn1::date::GeneralizedTime;
use picky_asn1::restricted_string::IA5String;
use picky_asn1::wrapper::{
    Asn1SequenceOf, BitStringAsn1, ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2,
    ExplicitContextTag3, ExplicitContextTag4, ExplicitContextTag5, ExplicitContextTag6,
    ExplicitContextTag7, GeneralizedTimeAsn1, IntegerAsn1, OctetStringAsn1, Optional,
};
use picky_krb::crypto::CipherSuite;
use picky_krb::data_types::{
    Authenticator, AuthenticatorInner, EncApRepPart, EncApRepPartInner, EncTicketPart,
    EncTicketPartInner, EncryptedData, EncryptionKey, KerberosStringAsn1, PrincipalName, Ticket,
    TicketInner, TransitedEncoding,
};
use picky_krb::messages::{ApRep, ApReq, ApReqInner};

const SERVICE_KEY: [u8; 32] = [3; 32];
const SESSION_KEY: [u8; 32] = [5; 32];
const CLIENT_SEQ: u32 = 0x1234;

struct Store {
    users: Vec<&'static str>,
}

impl CredentialStore for Store {
    fn password(&self, _: &str, _: &str) -> Option<String> {
        None
    }
    fn accounts(&self) -> Vec<Credentials> {
        self.users
            .iter()
            .map(|u| Credentials {
                domain: "CORP".into(),
                username: (*u).into(),
                password: String::new(),
            })
            .collect()
    }
    fn kerberos_keys(&self) -> Option<Arc<Keytab>> {
        Some(Arc::new(Keytab {
            entries: vec![KeytabEntry {
                realm: "CORP.TEST".into(),
                components: vec!["HOST".into(), "ca.corp.test".into()],
                kvno: 2,
                enctype: ETYPE_AES256,
                key: SERVICE_KEY.to_vec(),
            }],
        }))
    }
}

fn aes() -> Box<dyn picky_krb::crypto::Cipher> {
    CipherSuite::Aes256CtsHmacSha196.cipher()
}

fn kstr(s: &str) -> KerberosStringAsn1 {
    KerberosStringAsn1::from(IA5String::from_string(s.to_owned()).unwrap())
}

fn principal(kind: u8, parts: &[&str]) -> PrincipalName {
    PrincipalName {
        name_type: ExplicitContextTag0::from(IntegerAsn1::from(vec![kind])),
        name_string: ExplicitContextTag1::from(Asn1SequenceOf::from(
            parts.iter().map(|p| kstr(p)).collect::<Vec<_>>(),
        )),
    }
}

/// Now + `offset_secs` as a KerberosTime (UTC; days to civil date after
/// H. Hinnant's algorithm).
fn time(offset_secs: i64) -> GeneralizedTimeAsn1 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + offset_secs;
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    GeneralizedTimeAsn1::from(
        GeneralizedTime::new(
            year as u16,
            month as u8,
            day as u8,
            (secs / 3600) as u8,
            (secs / 60 % 60) as u8,
            (secs % 60) as u8,
        )
        .unwrap(),
    )
}

fn int(v: u32) -> IntegerAsn1 {
    IntegerAsn1::from_bytes_be_unsigned(v.to_be_bytes().to_vec())
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

const SPNEGO_OID: &[u8] = &[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
const MS_KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02,
];
const NTLM_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a,
];
const NEGOEX_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x1e,
];
const KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];

/// impacket's first leg: negTokenInit { mechTypes, mechToken = GSS-framed
/// AP-REQ (mutual-required) for HOST/ca.corp.test, from `client` }.
fn first_leg(client: &str, mechs: &[&[u8]]) -> Vec<u8> {
    first_leg_with(client, mechs, None)
}

/// [`first_leg`] with the authenticator's plaintext replaced.
fn first_leg_with(client: &str, mechs: &[&[u8]], auth_plain: Option<&[u8]>) -> Vec<u8> {
    let enc_ticket = EncTicketPart::from(EncTicketPartInner {
        flags: ExplicitContextTag0::from(BitStringAsn1::from(
            picky_asn1::bit_string::BitString::with_len(32),
        )),
        key: ExplicitContextTag1::from(EncryptionKey {
            key_type: ExplicitContextTag0::from(IntegerAsn1::from(vec![18])),
            key_value: ExplicitContextTag1::from(OctetStringAsn1::from(SESSION_KEY.to_vec())),
        }),
        crealm: ExplicitContextTag2::from(kstr("CORP.TEST")),
        cname: ExplicitContextTag3::from(principal(1, &[client])),
        transited: ExplicitContextTag4::from(TransitedEncoding {
            tr_type: ExplicitContextTag0::from(IntegerAsn1::from(vec![1])),
            contents: ExplicitContextTag1::from(OctetStringAsn1::from(Vec::new())),
        }),
        auth_time: ExplicitContextTag5::from(time(-60)),
        starttime: Optional::from(Some(ExplicitContextTag6::from(time(-60)))),
        endtime: ExplicitContextTag7::from(time(3600)),
        renew_till: Optional::from(None),
        caddr: Optional::from(None),
        authorization_data: Optional::from(None),
    });
    let ticket = Ticket::from(TicketInner {
        tkt_vno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
        realm: ExplicitContextTag1::from(kstr("CORP.TEST")),
        sname: ExplicitContextTag2::from(principal(2, &["HOST", "ca.corp.test"])),
        enc_part: ExplicitContextTag3::from(EncryptedData {
            etype: ExplicitContextTag0::from(IntegerAsn1::from(vec![18])),
            kvno: Optional::from(Some(ExplicitContextTag1::from(IntegerAsn1::from(vec![2])))),
            cipher: ExplicitContextTag2::from(OctetStringAsn1::from(
                aes()
                    .encrypt(
                        &SERVICE_KEY,
                        2,
                        &picky_asn1_der::to_vec(&enc_ticket).unwrap(),
                    )
                    .unwrap(),
            )),
        }),
    });
    let auth = Authenticator::from(AuthenticatorInner {
        authenticator_vno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
        crealm: ExplicitContextTag1::from(kstr("CORP.TEST")),
        cname: ExplicitContextTag2::from(principal(1, &[client])),
        cksum: Optional::from(None),
        cusec: ExplicitContextTag4::from(int(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_micros())),
        ctime: ExplicitContextTag5::from(time(0)),
        subkey: Optional::from(None),
        seq_number: Optional::from(Some(ExplicitContextTag7::from(int(CLIENT_SEQ)))),
        authorization_data: Optional::from(None),
    });
    let mut opts = picky_asn1::bit_string::BitString::with_len(32);
    opts.set(2, true); // mutual-required
    let ap_req = ApReq::from(ApReqInner {
        pvno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
        msg_type: ExplicitContextTag1::from(IntegerAsn1::from(vec![14])),
        ap_options: ExplicitContextTag2::from(BitStringAsn1::from(opts)),
        ticket: ExplicitContextTag3::from(ticket),
        authenticator: ExplicitContextTag4::from(EncryptedData {
            etype: ExplicitContextTag0::from(IntegerAsn1::from(vec![18])),
            kvno: Optional::from(None),
            cipher: ExplicitContextTag2::from(OctetStringAsn1::from(
                aes()
                    .encrypt(
                        &SESSION_KEY,
                        11,
                        &auth_plain
                            .map(<[u8]>::to_vec)
                            .unwrap_or_else(|| picky_asn1_der::to_vec(&auth).unwrap()),
                    )
                    .unwrap(),
            )),
        }),
    });
    let mut framed = KRB5_OID.to_vec();
    framed.extend_from_slice(&[0x01, 0x00]);
    framed.extend(picky_asn1_der::to_vec(&ap_req).unwrap());
    let framed = tlv(0x60, &framed);
    let mech_list: Vec<u8> = mechs.concat();
    let init = [
        tlv(0xa0, &tlv(0x30, &mech_list)),
        tlv(0xa2, &tlv(0x04, &framed)),
    ]
    .concat();
    let mut body = SPNEGO_OID.to_vec();
    body.extend(tlv(0xa0, &tlv(0x30, &init)));
    tlv(0x60, &body)
}

/// The acceptor's AP-REP from its negTokenResp: (subkey, seq-number).
fn read_ap_rep(reply: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let targ: picky_krb::gss_api::NegTokenTarg1 = picky_asn1_der::from_bytes(reply).unwrap();
    let rep: ApRep = picky_asn1_der::from_bytes(&targ.0.response_token.0.unwrap().0 .0).unwrap();
    let plain = aes()
        .decrypt(&SESSION_KEY, 12, &rep.0.enc_part.0.cipher.0 .0)
        .unwrap();
    let part: EncApRepPart = picky_asn1_der::from_bytes(&plain).unwrap();
    let subkey = part.0.subkey.0.unwrap().0.key_value.0 .0;
    let seq = part.0.seq_number.0.unwrap().0 .0;
    (subkey, seq)
}

/// impacket's third leg: negTokenResp { responseToken = AP-REP whose
/// EncAPRepPart (ctime, cusec, the acceptor's seq-number) is a bare
/// SEQUENCE }, encrypted with `key`.
fn third_leg(seq: &[u8], key: &[u8]) -> Vec<u8> {
    let inner = EncApRepPartInner {
        ctime: ExplicitContextTag0::from(time(0)),
        cusec: ExplicitContextTag1::from(int(7)),
        subkey: Optional::from(None),
        seq_number: Optional::from(Some(ExplicitContextTag3::from(
            IntegerAsn1::from_bytes_be_signed(seq.to_vec()),
        ))),
    };
    let plain = picky_asn1_der::to_vec(&inner).unwrap();
    assert_eq!(plain[0], 0x30, "untagged, as impacket sends it");
    let rep = ApRep::from(picky_krb::messages::ApRepInner {
        pvno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
        msg_type: ExplicitContextTag1::from(IntegerAsn1::from(vec![15])),
        enc_part: ExplicitContextTag2::from(EncryptedData {
            etype: ExplicitContextTag0::from(IntegerAsn1::from(vec![18])),
            kvno: Optional::from(None),
            cipher: ExplicitContextTag2::from(OctetStringAsn1::from(
                aes().encrypt(key, 12, &plain).unwrap(),
            )),
        }),
    });
    let rep = picky_asn1_der::to_vec(&rep).unwrap();
    tlv(0xa1, &tlv(0x30, &tlv(0xa2, &tlv(0x04, &rep))))
}

/// An impacket GSS_Wrap (RFC 4121 with DCE-style rotation by RRC + EC,
/// over the stub only) of a request PDU: returns the PDU and its layout.
fn wrapped_request(subkey: &[u8], stub: &[u8], seq: u64) -> (Vec<u8>, msrpc::pdu::Layout) {
    let pad = auth_pad(stub.len());
    let mut data = stub.to_vec();
    data.extend(std::iter::repeat_n(0u8, usize::from(pad)));
    let ec = (16 - data.len() % 16) % 16;
    data.extend(std::iter::repeat_n(0xffu8, ec));
    let header = |rrc: u16| {
        let mut h = vec![0x05, 0x04, 0x06, 0xff];
        h.extend((ec as u16).to_be_bytes());
        h.extend(rrc.to_be_bytes());
        h.extend(seq.to_be_bytes());
        h
    };
    let mut plain = data.clone();
    plain.extend(header(0));
    let mut c = aes().encrypt(subkey, 24, &plain).unwrap();
    let rot = 28 + ec;
    let n = c.len();
    c.rotate_right(rot % n);
    let split = 16 + 28 + ec;
    let mut token = header(28);
    token.extend_from_slice(&c[..split]);
    let sealed_stub = c[split..].to_vec();
    assert_eq!(sealed_stub.len(), stub.len() + usize::from(pad));
    let (pdu, lay) = Pdu {
        flags: 3,
        call_id: 2,
        body: Body::Request(Request {
            alloc_hint: 0,
            context_id: 0,
            opnum: 0,
            object: None,
            stub: sealed_stub[..stub.len()].to_vec(),
        }),
        auth: Some(AuthVerifier {
            auth_type: 9,
            auth_level: AuthLevel::Privacy.to_wire(),
            pad_len: pad,
            context_id: 79231,
            value: token.clone(),
        }),
    }
    .encode_with_layout()
    .unwrap();
    // the auth padding is sealed too
    let mut pdu = pdu;
    pdu[lay.stub_start..lay.trailer_start].copy_from_slice(&sealed_stub);
    (pdu, lay)
}

fn alice() -> Store {
    Store {
        users: vec!["alice"],
    }
}

#[test]
fn impacket_style_dce_kerberos_completes_and_unseals() {
    let store = alice();
    let (neg, reply) = ServerNegotiate::accept_init(
        &first_leg("alice", &[MS_KRB5_OID]),
        AuthLevel::Privacy,
        79231,
        &store,
    )
    .unwrap();
    assert!(neg.is_kerberos());
    let (subkey, seq) = read_ap_rep(&reply);
    let (out, done) = neg
        .accept_continue(&third_leg(&seq, &SESSION_KEY), &store, false)
        .unwrap();
    assert_eq!(out, msrpc::dce_kerberos::ACCEPT_COMPLETED);
    let (user, mut prot) = done.map_err(|_| "not complete").unwrap();
    assert_eq!(
        (user.domain.as_str(), user.user.as_str()),
        ("corp.test", "alice")
    );
    let stub = b"a request stub of some length".to_vec();
    let (mut pdu, lay) = wrapped_request(&subkey, &stub, 0);
    prot.unprotect(&mut pdu, lay).unwrap();
    assert_eq!(&pdu[lay.stub_start..lay.stub_start + stub.len()], &stub[..]);
    // the next one, tampered: refused
    let (mut pdu, lay) = wrapped_request(&subkey, &stub, 1);
    pdu[lay.stub_start] ^= 1;
    assert!(prot.unprotect(&mut pdu, lay).is_err());
}

#[test]
fn third_leg_under_another_key_is_a_logon_failure() {
    let store = alice();
    let (neg, reply) = ServerNegotiate::accept_init(
        &first_leg("alice", &[MS_KRB5_OID]),
        AuthLevel::Privacy,
        1,
        &store,
    )
    .unwrap();
    let (_, seq) = read_ap_rep(&reply);
    let e = neg
        .accept_continue(&third_leg(&seq, &[6; 32]), &store, false)
        .unwrap_err();
    assert!(
        matches!(e, AuthError::LogonDenied(ref m) if m.contains("does not decrypt")),
        "{e}"
    );
}

#[test]
fn third_leg_with_a_wrong_sequence_number_is_refused() {
    let store = alice();
    let (neg, reply) = ServerNegotiate::accept_init(
        &first_leg("alice", &[MS_KRB5_OID]),
        AuthLevel::Privacy,
        1,
        &store,
    )
    .unwrap();
    let (_, mut seq) = read_ap_rep(&reply);
    if let Some(last) = seq.last_mut() {
        *last ^= 1;
    }
    assert!(neg
        .accept_continue(&third_leg(&seq, &SESSION_KEY), &store, false)
        .is_err());
}

#[test]
fn truncated_third_legs_are_refused() {
    let store = alice();
    for cut in [0usize, 1, 2, 5, 9, 20, 60] {
        let (neg, reply) = ServerNegotiate::accept_init(
            &first_leg("alice", &[MS_KRB5_OID]),
            AuthLevel::Privacy,
            1,
            &store,
        )
        .unwrap();
        let (_, seq) = read_ap_rep(&reply);
        let leg = third_leg(&seq, &SESSION_KEY);
        let e = neg
            .accept_continue(&leg[..cut.min(leg.len() - 1)], &store, false)
            .unwrap_err();
        assert!(matches!(e, AuthError::InvalidToken(_)), "{cut}: {e}");
    }
}

#[test]
fn account_not_in_the_store_is_refused_without_a_mic() {
    let store = alice();
    let (neg, reply) = ServerNegotiate::accept_init(
        &first_leg("mallory", &[MS_KRB5_OID]),
        AuthLevel::Privacy,
        1,
        &store,
    )
    .unwrap();
    let (_, seq) = read_ap_rep(&reply);
    let e = neg
        .accept_continue(&third_leg(&seq, &SESSION_KEY), &store, false)
        .unwrap_err();
    assert!(
        matches!(e, AuthError::LogonDenied(ref m) if m.contains("mallory")),
        "{e}"
    );
}

#[test]
fn mic_is_not_waived_when_kerberos_was_not_the_first_choice() {
    // Another mechanism listed first: sspi ignores the optimistic AP-REQ
    // (RFC 4178: it is for the first mechanism), and a MIC-less third leg
    // never completes the exchange.
    let store = alice();
    let r = ServerNegotiate::accept_init(
        &first_leg("alice", &[NEGOEX_OID, MS_KRB5_OID]),
        AuthLevel::Privacy,
        1,
        &store,
    );
    if let Ok((neg, _)) = r {
        let done = neg.accept_continue(&third_leg(&[0, 0, 0, 1], &SESSION_KEY), &store, false);
        assert!(!matches!(done, Ok((_, Ok(_)))), "completed without a MIC");
    }
}

#[test]
fn ntlm_first_is_not_taken_for_kerberos() {
    let store = alice();
    let r = ServerNegotiate::accept_init(
        &first_leg("alice", &[NTLM_OID, MS_KRB5_OID]),
        AuthLevel::Privacy,
        1,
        &store,
    );
    assert!(!matches!(r, Ok((ref n, _)) if n.is_kerberos()));
}

/// First legs on which sspi's negTokenInit decoder (picky's
/// `ApplicationTag0`) panics: refused with a precise error instead.
#[test]
fn malformed_first_legs_are_refused_not_panicked_on() {
    let store = alice();
    let leg = third_leg(&[1], &SESSION_KEY);
    for b in [
        &leg[..],
        &[0x60, 0x02, 0x05, 0x00][..],
        &[0x30, 0x00][..],
        &[][..],
    ] {
        let r = std::panic::catch_unwind(|| {
            ServerNegotiate::accept_init(b, AuthLevel::Privacy, 1, &store).map(|_| ())
        });
        let e = r.expect("no panic").unwrap_err();
        assert!(
            e.to_string().contains("not a negTokenInit"),
            "{b:02x?}: {e}"
        );
    }
}

/// An authenticator that decrypts under the session key but whose DER
/// announces a length picky would overflow on: refused, not panicked on.
#[test]
fn authenticated_but_malformed_authenticator_is_refused() {
    let store = alice();
    let hostile = [
        0x62, 0x0a, 0x30, 0x08, 0xa0, 0x86, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    let b = first_leg_with("alice", &[MS_KRB5_OID], Some(&hostile));
    let r = std::panic::catch_unwind(|| {
        ServerNegotiate::accept_init(&b, AuthLevel::Privacy, 1, &store).map(|_| ())
    });
    let e = r.expect("no panic").unwrap_err();
    assert!(
        e.to_string().contains("Authenticator: malformed DER"),
        "{e}"
    );
}
