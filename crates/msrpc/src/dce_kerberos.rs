//! The acceptor's side of DCE-style Kerberos (MS-KILE 3.4.5.1, RFC 4121
//! 4.2 "DCE style"): the third leg, in which the initiator answers the
//! acceptor's AP-REP with an AP-REP of its own, carried in a SPNEGO
//! negTokenResp in alter_context (or auth3).
//!
//! sspi's acceptor verifies that third leg itself, but reads only what
//! Windows and sspi's own client send. impacket (Certipy) differs in three
//! ways: its `EncAPRepPart` lacks the `[APPLICATION 27]` tag (it rebuilds
//! the part with pyasn1's `clone()`, which drops it); its negTokenResp has
//! no negState, which picky (sspi's ASN.1 layer) then misreads; and it has
//! no mechListMIC, which sspi demands in DCE style. Windows accepts all
//! three. So before sspi sees the third leg, [`ThirdLeg::verify`] decodes
//! the negTokenResp itself ([`NegTokenResp`]), decrypts the AP-REP with the
//! session key of the client's ticket (key usage 12: the HMAC proves the
//! initiator holds that key, i.e. is the client the KDC issued the ticket
//! to), checks that the plaintext is an `EncAPRepPart` in either encoding,
//! and hands sspi the same content in the encoding it reads (the tag
//! restored and re-encrypted under the same key, a negState added), so
//! that sspi's own check (the sequence number) runs unchanged.
//!
//! The session key comes from [`SessionKey::from_ap_req`]: the ticket of
//! the client's first-leg AP-REQ decrypted with the service's keytab key
//! (key usage 2).
//!
//! RFC 4178 section 5 makes the MIC optional when the accepted mechanism
//! is the initiator's first choice, which [`first_mech_is_kerberos`] tells;
//! [`ACCEPT_COMPLETED`] is the reply then. A MIC that is sent is verified
//! by sspi.
//!
//! Every input here is attacker-controlled. picky panics on some malformed
//! DER (an `unwrap` in its GSS-API framing decoder, an unchecked length
//! addition), so every peer DER value that picky decodes, here or inside
//! sspi, is first walked by [`der_well_formed`] or
//! [`decode_neg_token_init`]. The decoders allocate nothing from a length
//! the peer wrote and fail with a precise [`AuthError`], never a panic.

use picky_asn1::wrapper::{
    ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2, ExplicitContextTag3,
    IntegerAsn1, OctetStringAsn1, Optional,
};
use picky_asn1_der::Asn1RawDer;
use picky_krb::constants::key_usages::{AP_REP_ENC, AP_REQ_AUTHENTICATOR, TICKET_REP};
use picky_krb::crypto::CipherSuite;
use picky_krb::data_types::{
    EncApRepPart, EncApRepPartInner, EncTicketPart, EncryptedData, PrincipalName,
};
use picky_krb::gss_api::{GssApiNegInit, NegTokenTarg, NegTokenTarg1};
use picky_krb::messages::{ApRep, ApReq};
use sspi::Secret;

use crate::auth_error::AuthError;
use crate::keytab::Keytab;

/// The SPNEGO negTokenResp `{ negState accept-completed }` (RFC 4178 4.2.2):
/// the reply to a third leg that completes the context without a MIC.
pub const ACCEPT_COMPLETED: [u8; 9] = [0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00];

/// DER tag of `[APPLICATION 27]` (EncAPRepPart), constructed.
const TAG_ENC_AP_REP_PART: u8 = 0x7b;
/// DER tag of a universal SEQUENCE.
const TAG_SEQUENCE: u8 = 0x30;

/// Kerberos OIDs as they appear in a SPNEGO mechTypes list (DER content).
const KRB5_OIDS: [&str; 2] = ["1.2.840.113554.1.2.2", "1.2.840.48018.1.2.2"];

/// The session key of an accepted ticket, with its encryption type.
pub struct SessionKey {
    key: Secret<Vec<u8>>,
    suite: CipherSuite,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("suite", &self.suite)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn invalid(what: &str) -> AuthError {
    AuthError::InvalidToken(what.to_owned())
}

/// An `Int32` of the Kerberos ASN.1 (etype, kvno) as a small non-negative
/// number, or None when it is negative or larger than 32 bits.
fn small_int(i: &IntegerAsn1) -> Option<u32> {
    let b = i.as_signed_bytes_be();
    if b.is_empty() || b.len() > 5 || b[0] & 0x80 != 0 {
        return None;
    }
    let mut v: u64 = 0;
    for &x in b {
        v = (v << 8) | u64::from(x);
    }
    u32::try_from(v).ok()
}

/// The AES suites the acceptor speaks (what `kerberos encryption types =
/// strong` domains and sspi use); DES3 and RC4 are refused.
fn suite(etype: u32) -> Result<CipherSuite, AuthError> {
    match etype {
        18 => Ok(CipherSuite::Aes256CtsHmacSha196),
        17 => Ok(CipherSuite::Aes128CtsHmacSha196),
        other => Err(AuthError::Unsupported(format!(
            "Kerberos encryption type {other} (only AES-256 and AES-128 are accepted)"
        ))),
    }
}

fn sname_components(p: &PrincipalName) -> Vec<String> {
    p.name_string.0 .0.iter().map(|s| s.0.to_string()).collect()
}

impl SessionKey {
    /// Decrypts the ticket of `ap_req` (a bare DER AP-REQ, as sspi takes it
    /// in DCE style) with the keytab key of the service it names and
    /// returns the session key it carries. Call it after sspi accepted the
    /// AP-REQ (which checked the authenticator, the times and the replay
    /// cache): this only recovers the key sspi keeps to itself.
    pub fn from_ap_req(ap_req: &[u8], kt: &Keytab) -> Result<SessionKey, AuthError> {
        let req: ApReq = decode(ap_req, "AP-REQ")?;
        let ticket = &req.0.ticket.0 .0;
        let enc = &ticket.enc_part.0;
        let etype = small_int(&enc.etype.0)
            .ok_or_else(|| invalid("AP-REQ: ticket encryption type out of range"))?;
        let ticket_suite = suite(etype)?;
        let kvno = match &enc.kvno.0 {
            Some(k) => {
                Some(small_int(&k.0).ok_or_else(|| invalid("AP-REQ: ticket kvno out of range"))?)
            }
            None => None,
        };
        let sname = sname_components(&ticket.sname.0);
        let mut keys: Vec<_> = kt
            .entries
            .iter()
            .filter(|e| u32::from(e.enctype) == etype)
            .filter(|e| {
                e.components.len() == sname.len()
                    && e.components
                        .iter()
                        .zip(&sname)
                        .all(|(a, b)| a.eq_ignore_ascii_case(b))
            })
            .collect();
        // The ticket's kvno first, then the newest.
        keys.sort_by_key(|e| (Some(e.kvno) != kvno, std::cmp::Reverse(e.kvno)));
        if keys.is_empty() {
            return Err(AuthError::Kerberos(format!(
                "the keytab has no key of encryption type {etype} for {}",
                sname.join("/")
            )));
        }
        let cipher = ticket_suite.cipher();
        for e in keys {
            let Ok(plain) = cipher.decrypt(&e.key, TICKET_REP, &enc.cipher.0 .0) else {
                continue;
            };
            let part: EncTicketPart = decode(&plain, "EncTicketPart")?;
            let key = &part.0.key.0;
            let key_etype = small_int(&key.key_type.0)
                .ok_or_else(|| invalid("EncTicketPart: session key type out of range"))?;
            let key_suite = suite(key_etype)?;
            let value = key.key_value.0 .0.clone();
            if value.len() != key_suite.cipher().key_size() {
                return Err(invalid("EncTicketPart: session key of the wrong length"));
            }
            // The authenticator is decoded by sspi next: its plaintext
            // must be well-formed DER first (see `der_well_formed`).
            let auth = &req.0.authenticator.0;
            let auth_plain = key_suite
                .cipher()
                .decrypt(&value, AP_REQ_AUTHENTICATOR, &auth.cipher.0 .0)
                .map_err(|e| {
                    AuthError::LogonDenied(format!(
                        "the authenticator does not decrypt with the ticket's session key ({e})"
                    ))
                })?;
            if !der_well_formed(&auth_plain) {
                return Err(invalid("Authenticator: malformed DER"));
            }
            return Ok(SessionKey {
                key: Secret::new(value),
                suite: key_suite,
            });
        }
        Err(AuthError::Kerberos(format!(
            "no key of the keytab decrypts the ticket for {} (is the keytab current? compare its kvno with the account's msDS-KeyVersionNumber)",
            sname.join("/")
        )))
    }

    /// A session key from its parts (tests and fuzzing).
    pub fn new(key: Vec<u8>, etype: u32) -> Result<SessionKey, AuthError> {
        let suite = suite(etype)?;
        if key.len() != suite.cipher().key_size() {
            return Err(invalid("session key of the wrong length"));
        }
        Ok(SessionKey {
            key: Secret::new(key),
            suite,
        })
    }
}

/// The initiator's third leg, verified.
#[derive(Debug)]
pub struct ThirdLeg {
    /// The token to give sspi: the same negTokenResp re-encoded with a
    /// negState (picky, sspi's ASN.1 layer, misreads a negTokenResp
    /// without one, which is what impacket sends) and, when impacket sent
    /// its EncAPRepPart bare, the AP-REP re-encrypted with the tag
    /// restored.
    pub token: Vec<u8>,
    /// True when the negTokenResp carried a `mechListMIC`.
    pub has_mic: bool,
}

/// The fields of a SPNEGO negTokenResp (RFC 4178 4.2.2), borrowed from
/// the received token.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NegTokenResp<'a> {
    /// negState, the ENUMERATED's content octet.
    pub neg_state: Option<u8>,
    /// supportedMech, the OBJECT IDENTIFIER's content.
    pub supported_mech: Option<&'a [u8]>,
    /// responseToken.
    pub response_token: Option<&'a [u8]>,
    /// mechListMIC.
    pub mech_list_mic: Option<&'a [u8]>,
}

/// One DER TLV with a one-octet tag: (tag, value, rest). The length is
/// checked against the input before anything is sliced; lengths of more
/// than four octets are refused.
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8]), AuthError> {
    let short = || invalid("SPNEGO token: truncated");
    let (&tag, rest) = b.split_first().ok_or_else(short)?;
    let (&l0, rest) = rest.split_first().ok_or_else(short)?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return Err(invalid("SPNEGO token: unsupported length encoding"));
        }
        let octets = rest.get(..n).ok_or_else(short)?;
        let len = octets
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if len > rest.len() {
        return Err(short());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// How deep [`der_well_formed`] follows constructed values (Kerberos
/// messages nest about ten deep).
const MAX_DEPTH: usize = 32;

/// True when `b` is a run of well-formed DER values, checked recursively
/// into every constructed one: one-octet tags (no high tag numbers),
/// definite lengths of at most four octets, each inside what encloses it.
/// picky's decoder adds announced lengths unchecked (an overflow, which
/// panics in debug builds), so every peer-supplied DER it decodes here,
/// or sspi decodes after msrpc, passes this first.
pub fn der_well_formed(b: &[u8]) -> bool {
    fn walk(mut b: &[u8], depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        while !b.is_empty() {
            let Ok((tag, value, rest)) = tlv(b) else {
                return false;
            };
            if tag & 0x1f == 0x1f || (tag & 0x20 != 0 && !walk(value, depth + 1)) {
                return false;
            }
            b = rest;
        }
        true
    }
    walk(b, 0)
}

/// picky's decoder of `T`, after [`der_well_formed`].
fn decode<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> Result<T, AuthError> {
    if !der_well_formed(b) {
        return Err(invalid(&format!("{what}: malformed DER")));
    }
    picky_asn1_der::from_bytes(b).map_err(|e| invalid(&format!("{what}: {e}")))
}

impl<'a> NegTokenResp<'a> {
    /// Decodes `[1] SEQUENCE { negState [0] ENUMERATED, supportedMech [1]
    /// OID, responseToken [2] OCTET STRING, mechListMIC [3] OCTET STRING }`
    /// (every field optional, in that order, once), nothing after it.
    pub fn decode(token: &'a [u8]) -> Result<NegTokenResp<'a>, AuthError> {
        let (tag, body, rest) = tlv(token)?;
        if tag != 0xa1 || !rest.is_empty() {
            return Err(invalid("third leg is not a SPNEGO negTokenResp"));
        }
        let (tag, mut fields, rest) = tlv(body)?;
        if tag != TAG_SEQUENCE || !rest.is_empty() {
            return Err(invalid("negTokenResp: not a SEQUENCE"));
        }
        let mut out = NegTokenResp::default();
        let mut last = None;
        while !fields.is_empty() {
            let (tag, field, rest) = tlv(fields)?;
            fields = rest;
            let n = tag.wrapping_sub(0xa0);
            if n > 3 || last.is_some_and(|l| n <= l) {
                return Err(invalid("negTokenResp: unexpected or repeated field"));
            }
            last = Some(n);
            let (inner_tag, value, rest) = tlv(field)?;
            if !rest.is_empty() {
                return Err(invalid("negTokenResp: trailing data in a field"));
            }
            match (n, inner_tag) {
                (0, 0x0a) if value.len() == 1 => out.neg_state = Some(value[0]),
                (1, 0x06) => out.supported_mech = Some(value),
                (2, 0x04) => out.response_token = Some(value),
                (3, 0x04) => out.mech_list_mic = Some(value),
                _ => return Err(invalid("negTokenResp: field of the wrong type")),
            }
        }
        Ok(out)
    }
}

impl ThirdLeg {
    /// Verifies the initiator's third leg (a negTokenResp whose
    /// responseToken is an AP-REP) against the session key: the AP-REP's
    /// encrypted part must decrypt (and authenticate) under it with key
    /// usage 12 and hold an EncAPRepPart, tagged or bare. Any other token
    /// is refused with the reason.
    pub fn verify(token: &[u8], sk: &SessionKey) -> Result<ThirdLeg, AuthError> {
        let resp = NegTokenResp::decode(token)?;
        let ap_rep_der = resp
            .response_token
            .ok_or_else(|| invalid("third leg without the initiator's AP-REP"))?;
        let ap_rep: ApRep = decode(ap_rep_der, "third leg: AP-REP")?;
        let enc = &ap_rep.0.enc_part.0;
        let etype = small_int(&enc.etype.0)
            .ok_or_else(|| invalid("third leg: AP-REP encryption type out of range"))?;
        if suite(etype)? != sk.suite {
            return Err(invalid(
                "third leg: AP-REP encrypted with another type than the session key",
            ));
        }
        let cipher = sk.suite.cipher();
        let plain = cipher
            .decrypt(sk.key.as_ref(), AP_REP_ENC, &enc.cipher.0 .0)
            .map_err(|e| {
                AuthError::LogonDenied(format!(
                    "the initiator's AP-REP does not decrypt with the ticket's session key ({e})"
                ))
            })?;
        let ap_rep_der = match plain.first() {
            Some(&TAG_ENC_AP_REP_PART) => {
                decode::<EncApRepPart>(&plain, "third leg: EncAPRepPart")?;
                ap_rep_der.to_vec()
            }
            Some(&TAG_SEQUENCE) => {
                let inner: EncApRepPartInner = decode(&plain, "third leg: EncAPRepPart")?;
                let tagged = picky_asn1_der::to_vec(&EncApRepPart::from(inner))
                    .map_err(|e| AuthError::Provider(format!("EncAPRepPart: {e}")))?;
                let cipher_text = cipher
                    .encrypt(sk.key.as_ref(), AP_REP_ENC, &tagged)
                    .map_err(|e| AuthError::Provider(format!("AP-REP: {e}")))?;
                let etype = enc.etype.0.clone();
                let mut ap_rep = ap_rep;
                ap_rep.0.enc_part = ExplicitContextTag2::from(EncryptedData {
                    etype: ExplicitContextTag0::from(etype),
                    kvno: Optional::from(None::<ExplicitContextTag1<IntegerAsn1>>),
                    cipher: ExplicitContextTag2::from(OctetStringAsn1::from(cipher_text)),
                });
                picky_asn1_der::to_vec(&ap_rep)
                    .map_err(|e| AuthError::Provider(format!("AP-REP: {e}")))?
            }
            _ => {
                return Err(invalid(
                    "third leg: the AP-REP's encrypted part is not an EncAPRepPart",
                ))
            }
        };
        // negState accept-incomplete when the initiator sent none (RFC 4178
        // leaves it optional in the initiator's later tokens).
        let neg_state = resp.neg_state.unwrap_or(1);
        let targ = NegTokenTarg1::from(NegTokenTarg {
            neg_result: Optional::from(Some(ExplicitContextTag0::from(Asn1RawDer(vec![
                0x0a, 0x01, neg_state,
            ])))),
            supported_mech: Optional::from(None),
            response_token: Optional::from(Some(ExplicitContextTag2::from(OctetStringAsn1::from(
                ap_rep_der,
            )))),
            mech_list_mic: Optional::from(
                resp.mech_list_mic
                    .map(|m| ExplicitContextTag3::from(OctetStringAsn1::from(m.to_vec()))),
            ),
        });
        let token = picky_asn1_der::to_vec(&targ)
            .map_err(|e| AuthError::Provider(format!("negTokenResp: {e}")))?;
        Ok(ThirdLeg {
            token,
            has_mic: resp.mech_list_mic.is_some(),
        })
    }
}

/// The client's first SPNEGO token (RFC 4178 4.2.1, `[APPLICATION 0]`
/// framing) decoded, or None when it is not a negTokenInit. picky's
/// decoder of that framing (`ApplicationTag0`, which sspi's acceptor runs
/// on every first leg) panics when the framed content does not decode;
/// this runs the fallible decoder on the same bytes instead, so msrpc
/// calls it before handing a first leg to sspi.
pub fn decode_neg_token_init(token: &[u8]) -> Option<GssApiNegInit> {
    let (tag, _, rest) = tlv(token).ok()?;
    if tag != 0x60 || !rest.is_empty() || !der_well_formed(token) {
        return None;
    }
    let mut seq = token.to_vec();
    *seq.first_mut()? = TAG_SEQUENCE;
    picky_asn1_der::from_bytes::<GssApiNegInit>(&seq).ok()
}

/// True when the first mechanism of the client's negTokenInit (the one its
/// optimistic token is for) is Kerberos (RFC 4121 or Microsoft's OID).
pub fn first_mech_is_kerberos(neg_token_init: &[u8]) -> bool {
    let Some(init) = decode_neg_token_init(neg_token_init) else {
        return false;
    };
    let Some(types) = init.neg_token_init.0.mech_types.0.as_ref() else {
        return false;
    };
    types.0 .0.first().is_some_and(|oid| {
        let s: String = oid.0.clone().into();
        KRB5_OIDS.contains(&s.as_str())
    })
}

/// The mechToken of the client's negTokenInit (in DCE style the bare
/// AP-REQ), None when there is none.
pub fn mech_token(neg_token_init: &[u8]) -> Option<Vec<u8>> {
    let init = decode_neg_token_init(neg_token_init)?;
    Some(init.neg_token_init.0.mech_token.0.as_ref()?.0 .0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use picky_asn1::date::GeneralizedTime;
    use picky_asn1::wrapper::GeneralizedTimeAsn1;
    use picky_krb::data_types::{KerberosTime, Microseconds};

    const KEY: [u8; 32] = [7; 32];

    fn sk() -> SessionKey {
        SessionKey::new(KEY.to_vec(), 18).expect("key")
    }

    fn inner(seq: u32) -> EncApRepPartInner {
        EncApRepPartInner {
            ctime: ExplicitContextTag0::from(KerberosTime::from(GeneralizedTimeAsn1::from(
                GeneralizedTime::new(2026, 12, 6, 18, 0, 0).expect("time"),
            ))),
            cusec: ExplicitContextTag1::from(Microseconds::from(vec![0x01, 0x02])),
            subkey: Optional::from(None),
            seq_number: Optional::from(Some(ExplicitContextTag3::from(
                IntegerAsn1::from_bytes_be_unsigned(seq.to_be_bytes().to_vec()),
            ))),
        }
    }

    /// A third leg as impacket builds it (bare SEQUENCE, `tagged` false) or
    /// as Windows and sspi do (tagged), encrypted with `key`.
    fn leg(tagged: bool, key: &[u8], mic: bool) -> Vec<u8> {
        let plain = if tagged {
            picky_asn1_der::to_vec(&EncApRepPart::from(inner(5))).expect("der")
        } else {
            picky_asn1_der::to_vec(&inner(5)).expect("der")
        };
        assert_eq!(plain[0], if tagged { 0x7b } else { 0x30 });
        leg_of(&plain, key, mic)
    }

    /// A third leg whose AP-REP carries `plain` encrypted with `key`.
    fn leg_of(plain: &[u8], key: &[u8], mic: bool) -> Vec<u8> {
        let c = CipherSuite::Aes256CtsHmacSha196
            .cipher()
            .encrypt(key, AP_REP_ENC, plain)
            .expect("enc");
        let ap_rep = ApRep::from(picky_krb::messages::ApRepInner {
            pvno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
            msg_type: ExplicitContextTag1::from(IntegerAsn1::from(vec![15])),
            enc_part: ExplicitContextTag2::from(EncryptedData {
                etype: ExplicitContextTag0::from(IntegerAsn1::from(vec![18])),
                kvno: Optional::from(None),
                cipher: ExplicitContextTag2::from(OctetStringAsn1::from(c)),
            }),
        });
        let targ = NegTokenTarg1::from(NegTokenTarg {
            neg_result: Optional::from(None),
            supported_mech: Optional::from(None),
            response_token: Optional::from(Some(ExplicitContextTag2::from(OctetStringAsn1::from(
                picky_asn1_der::to_vec(&ap_rep).expect("der"),
            )))),
            mech_list_mic: Optional::from(
                mic.then(|| ExplicitContextTag3::from(OctetStringAsn1::from(vec![1, 2, 3]))),
            ),
        });
        picky_asn1_der::to_vec(&targ).expect("der")
    }

    /// The EncAPRepPart inside a verified leg.
    fn part_of(token: &[u8]) -> EncApRepPart {
        let targ: NegTokenTarg1 = picky_asn1_der::from_bytes(token).expect("targ");
        let rep: ApRep =
            picky_asn1_der::from_bytes(&targ.0.response_token.0.expect("token").0 .0).expect("rep");
        let plain = CipherSuite::Aes256CtsHmacSha196
            .cipher()
            .decrypt(&KEY, AP_REP_ENC, &rep.0.enc_part.0.cipher.0 .0)
            .expect("dec");
        picky_asn1_der::from_bytes(&plain).expect("EncAPRepPart")
    }

    #[test]
    fn impacket_bare_enc_part_is_verified_and_tagged() {
        let t = leg(false, &KEY, false);
        let v = ThirdLeg::verify(&t, &sk()).expect("verified");
        assert!(!v.has_mic);
        assert_ne!(v.token, t);
        assert_eq!(part_of(&v.token).0, inner(5));
        // what sspi reads: negState accept-incomplete added, no MIC
        let given = NegTokenResp::decode(&v.token).expect("given");
        assert_eq!((given.neg_state, given.mech_list_mic), (Some(1), None));
    }

    #[test]
    fn tagged_enc_part_passes_unchanged() {
        let t = leg(true, &KEY, true);
        let v = ThirdLeg::verify(&t, &sk()).expect("verified");
        assert!(v.has_mic);
        let sent = NegTokenResp::decode(&t).expect("sent");
        let given = NegTokenResp::decode(&v.token).expect("given");
        assert_eq!(given.response_token, sent.response_token);
        assert_eq!(given.mech_list_mic, Some(&[1u8, 2, 3][..]));
        assert_eq!(given.neg_state, Some(1));
    }

    /// impacket 0.13's third leg as captured from Certipy 5.1 (no negState,
    /// no MIC): the AP-REP is found where picky's decoder misses it.
    #[test]
    fn impacket_negtokenresp_decodes() {
        let h = "a1633061a25f045d6f5b3059a003020105a10302010fa24d304ba003020112a2440442b95b930acdb92bc7e67aa90290fc2a579939b8fe42242e306ed0a04614f5f40382cd043f9493ecc7e30b12edd2db085a9710b4ea023a542c108e8691452d51cd0743";
        let b: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
            .collect();
        let r = NegTokenResp::decode(&b).expect("decodes");
        assert_eq!(r.neg_state, None);
        assert_eq!(r.mech_list_mic, None);
        let token = r.response_token.expect("AP-REP");
        assert_eq!(token.len(), 0x5d);
        let rep: ApRep = picky_asn1_der::from_bytes(token).expect("AP-REP");
        assert_eq!(small_int(&rep.0.enc_part.0.etype.0), Some(18));
        // with a key that is not the session key: a logon failure, not an
        // ASN.1 error
        let e = ThirdLeg::verify(&b, &sk()).expect_err("wrong key");
        assert!(matches!(e, AuthError::LogonDenied(_)), "{e}");
    }

    #[test]
    fn negtokenresp_decoder_refuses_malformed() {
        for (b, why) in [
            (&[][..], "truncated"),
            (&[0xa1, 0x02, 0x30, 0x00, 0x00][..], "negTokenResp"),
            (&[0xa0, 0x02, 0x30, 0x00][..], "not a SPNEGO negTokenResp"),
            (&[0xa1, 0x02, 0x31, 0x00][..], "not a SEQUENCE"),
            (&[0xa1, 0x85, 1, 0, 0, 0, 0][..], "length encoding"),
            (&[0xa1, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30][..], "truncated"),
            (
                &[0xa1, 0x06, 0x30, 0x04, 0xa4, 0x02, 0x04, 0x00][..],
                "unexpected or repeated",
            ),
            (
                &[
                    0xa1, 0x0a, 0x30, 0x08, 0xa2, 0x02, 0x04, 0x00, 0xa2, 0x02, 0x04, 0x00,
                ][..],
                "unexpected or repeated",
            ),
            (
                &[0xa1, 0x06, 0x30, 0x04, 0xa2, 0x02, 0x05, 0x00][..],
                "wrong type",
            ),
            (
                &[0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01][..],
                "truncated",
            ),
        ] {
            let e = NegTokenResp::decode(b).expect_err("refused");
            assert!(e.to_string().contains(why), "{b:02x?}: {e}");
        }
        let ok = NegTokenResp::decode(&ACCEPT_COMPLETED).expect("accept-completed");
        assert_eq!(ok.neg_state, Some(0));
    }

    #[test]
    fn wrong_session_key_is_a_logon_failure() {
        let t = leg(false, &[8; 32], false);
        let e = ThirdLeg::verify(&t, &sk()).expect_err("refused");
        assert!(
            matches!(e, AuthError::LogonDenied(ref m) if m.contains("does not decrypt")),
            "{e}"
        );
    }

    #[test]
    fn tampered_cipher_text_is_refused() {
        let mut t = leg(false, &KEY, false);
        let n = t.len();
        t[n - 3] ^= 1;
        let e = ThirdLeg::verify(&t, &sk()).expect_err("refused");
        assert!(matches!(e, AuthError::LogonDenied(_)), "{e}");
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        for tagged in [false, true] {
            let t = leg(tagged, &KEY, false);
            for n in 0..t.len() {
                let e = ThirdLeg::verify(&t[..n], &sk()).expect_err("truncated");
                assert!(
                    matches!(e, AuthError::InvalidToken(_) | AuthError::LogonDenied(_)),
                    "{n}: {e}"
                );
            }
        }
    }

    #[test]
    fn leg_without_ap_rep_or_not_spnego_is_refused() {
        let e = ThirdLeg::verify(&ACCEPT_COMPLETED, &sk()).expect_err("no token");
        assert!(
            e.to_string().contains("without the initiator's AP-REP"),
            "{e}"
        );
        let e = ThirdLeg::verify(&[0x30, 0x00], &sk()).expect_err("not spnego");
        assert!(e.to_string().contains("not a SPNEGO negTokenResp"), "{e}");
        let e = ThirdLeg::verify(&[0xa1, 0x06, 0x30, 0x04, 0xa2, 0x02, 0x04, 0x00], &sk())
            .expect_err("empty AP-REP");
        assert!(e.to_string().contains("AP-REP"), "{e}");
        // a huge announced length: refused, nothing allocated from it
        let e =
            ThirdLeg::verify(&[0xa1, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30], &sk()).expect_err("huge");
        assert!(matches!(e, AuthError::InvalidToken(_)), "{e}");
    }

    #[test]
    fn enc_part_of_another_type_is_refused() {
        // a plaintext that decrypts but is an EncTicketPart-like [APPLICATION 3]
        let t = leg_of(&[0x63, 0x00], &KEY, false);
        let e = ThirdLeg::verify(&t, &sk()).expect_err("refused");
        assert!(e.to_string().contains("not an EncAPRepPart"), "{e}");
    }

    #[test]
    fn rc4_and_other_etypes_are_unsupported() {
        assert!(matches!(
            SessionKey::new(vec![0; 16], 23),
            Err(AuthError::Unsupported(_))
        ));
        assert!(SessionKey::new(vec![0; 16], 18).is_err());
        assert!(SessionKey::new(vec![0; 16], 17).is_ok());
    }

    #[test]
    fn accept_completed_is_a_negtokenresp() {
        let t: NegTokenTarg1 = picky_asn1_der::from_bytes(&ACCEPT_COMPLETED).expect("decodes");
        assert_eq!(
            t.0.neg_result.0.expect("negState").0 .0,
            vec![0x0a, 0x01, 0x00]
        );
        assert!(t.0.response_token.0.is_none() && t.0.mech_list_mic.0.is_none());
    }

    /// Tokens on which picky's `ApplicationTag0` decoder (run by sspi's
    /// acceptor on every first leg) panics are refused before it.
    #[test]
    fn first_legs_picky_would_panic_on_are_refused() {
        let leg = leg(false, &KEY, false);
        for b in [
            &leg[..],
            &[0x60, 0x00][..],
            &[0x60, 0x02, 0x05, 0x00][..],
            &[0x30, 0x00][..],
            &[0x60, 0x03, 0x06, 0x01, 0x00, 0x00][..],
            &[][..],
        ] {
            assert!(decode_neg_token_init(b).is_none(), "{b:02x?}");
            assert!(!first_mech_is_kerberos(b));
            assert!(mech_token(b).is_none());
        }
    }

    #[test]
    fn impacket_first_leg_decodes() {
        // negTokenInit { mechTypes { MS KRB5 }, mechToken 01 02 }
        let b = [
            0x60, 0x21, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02, 0xa0, 0x17, 0x30, 0x15,
            0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02,
            0x02, 0xa2, 0x04, 0x04, 0x02, 0x01, 0x02,
        ];
        assert!(decode_neg_token_init(&b).is_some());
        assert!(first_mech_is_kerberos(&b));
        assert_eq!(mech_token(&b), Some(vec![1, 2]));
        // 1.2.840.48018.1.2.3 first: not Kerberos
        let mut other_first = b.to_vec();
        other_first[28] = 0x03;
        assert!(decode_neg_token_init(&other_first).is_some());
        assert!(!first_mech_is_kerberos(&other_first));
    }

    #[test]
    fn der_walker_refuses_what_picky_would_overflow_on() {
        assert!(der_well_formed(&[0x30, 0x03, 0x02, 0x01, 0x05]));
        assert!(der_well_formed(&[]));
        for b in [
            // an 8-octet length inside a constructed value
            &[
                0x30, 0x0a, 0x6e, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..],
            // inner length past its container
            &[0x30, 0x03, 0x04, 0x05, 0x00][..],
            // indefinite length
            &[0x30, 0x80, 0x00, 0x00][..],
            // high tag number
            &[0x1f, 0x81, 0x00, 0x00][..],
            // truncated
            &[0x30][..],
        ] {
            assert!(!der_well_formed(b), "{b:02x?}");
        }
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep = tlv_enc(0x30, &deep);
        }
        assert!(!der_well_formed(&deep));
        let e = SessionKey::from_ap_req(
            &[
                0x6e, 0x0a, 0x30, 0x08, 0xa0, 0x86, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &Keytab::default(),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("malformed DER"), "{e}");
    }

    fn tlv_enc(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        match content.len() {
            n @ 0..=0x7f => v.push(n as u8),
            n => {
                v.push(0x82);
                v.extend((n as u16).to_be_bytes());
            }
        }
        v.extend_from_slice(content);
        v
    }

    #[test]
    fn ap_req_garbage_is_refused() {
        let kt = Keytab::default();
        for b in [
            &[][..],
            &[0x6e, 0x00],
            &[0x6e, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                SessionKey::from_ap_req(b, &kt),
                Err(AuthError::InvalidToken(_))
            ));
        }
    }

    #[test]
    fn small_int_bounds() {
        assert_eq!(small_int(&IntegerAsn1::from(vec![18])), Some(18));
        assert_eq!(
            small_int(&IntegerAsn1::from(vec![0x00, 0xff, 0xff, 0xff, 0xff])),
            Some(u32::MAX)
        );
        assert_eq!(small_int(&IntegerAsn1::from(vec![0x80])), None);
        assert_eq!(small_int(&IntegerAsn1::from(vec![1, 0, 0, 0, 0, 0])), None);
    }
}
