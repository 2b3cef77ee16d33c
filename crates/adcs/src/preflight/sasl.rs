//! LDAP bind with SASL GSSAPI (RFC 4752) using certeasy's own Kerberos
//! client, and the SASL security layer (signing and sealing) after it.
//!
//! The bind exchange runs here on the TCP stream (hand-framed LDAP
//! messages); afterwards [`spawn_pump`] carries every LDAP PDU between one
//! end of an anonymous socket pair, handed to `ldap3` as an `ldapi://`
//! connection, and the domain controller, wrapping each outgoing PDU and
//! unwrapping each incoming buffer (4-octet length + RFC 4121 Wrap token,
//! RFC 4752 §3.3, RFC 4422 §3.7). The search code above sees plain LDAP.

use std::time::Duration;

use bytes::BytesMut;
use lber::common::TagClass;
use lber::structures::ASNTag;
use lber::structures::{Integer, OctetString, Sequence, Tag};
use msrpc::auth::{AuthError, ClientContext};
use msrpc::gss::GssWrap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Security layer bit: no security layer.
pub const LAYER_NONE: u8 = 0x01;
/// Security layer bit: integrity protection.
pub const LAYER_INTEGRITY: u8 = 0x02;
/// Security layer bit: confidentiality protection.
pub const LAYER_CONFIDENTIALITY: u8 = 0x04;
/// The largest buffer this client accepts from the server (and advertises).
pub const MAX_RECEIVE: u32 = 4 << 20;
/// The largest LDAP message accepted during the bind.
const MAX_BIND_MESSAGE: usize = 64 << 10;
/// The largest plain LDAP PDU forwarded to the server.
const MAX_REQUEST_PDU: usize = 1 << 20;
/// Octets a sealed Wrap token adds to its data (AES: 16 + 16 + 16 + 12).
const WRAP_OVERHEAD: usize = 60;

/// Why a SASL bind failed: the line text and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindFailure {
    /// What happened.
    pub what: String,
    /// What to do.
    pub fix: String,
}

fn fail(what: impl Into<String>, fix: impl Into<String>) -> BindFailure {
    BindFailure {
        what: what.into(),
        fix: fix.into(),
    }
}

/// `LDAPMessage { messageID, BindRequest { version 3, name "", sasl {
/// mechanism "GSSAPI", credentials } } }`.
pub fn bind_request(message_id: i32, credentials: Option<&[u8]>) -> Vec<u8> {
    let mut sasl = vec![Tag::OctetString(OctetString {
        inner: b"GSSAPI".to_vec(),
        ..Default::default()
    })];
    if let Some(c) = credentials {
        sasl.push(Tag::OctetString(OctetString {
            inner: c.to_vec(),
            ..Default::default()
        }));
    }
    let msg = Tag::Sequence(Sequence {
        inner: vec![
            Tag::Integer(Integer {
                inner: i64::from(message_id),
                ..Default::default()
            }),
            Tag::Sequence(Sequence {
                id: 0,
                class: TagClass::Application,
                inner: vec![
                    Tag::Integer(Integer {
                        inner: 3,
                        ..Default::default()
                    }),
                    Tag::OctetString(OctetString {
                        inner: Vec::new(),
                        ..Default::default()
                    }),
                    Tag::Sequence(Sequence {
                        id: 3,
                        class: TagClass::Context,
                        inner: sasl,
                    }),
                ],
            }),
        ],
        ..Default::default()
    });
    let mut buf = BytesMut::new();
    // Encoding into memory cannot fail.
    let _ = lber::write::encode_into(&mut buf, msg.into_structure());
    buf.to_vec()
}

/// A parsed BindResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindResponse {
    /// messageID.
    pub message_id: i64,
    /// resultCode.
    pub rc: u32,
    /// diagnosticMessage.
    pub text: String,
    /// serverSaslCreds, when present.
    pub server_creds: Option<Vec<u8>>,
}

/// One BER element: (tag octet, content, rest). Single-octet tags only
/// (all LDAP needs); definite lengths of at most 4 octets.
fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &o| (a << 8) | usize::from(o));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn integer(c: &[u8]) -> Option<i64> {
    if c.is_empty() || c.len() > 8 {
        return None;
    }
    let neg = c[0] & 0x80 != 0;
    Some(
        c.iter()
            .fold(if neg { -1i64 } else { 0 }, |a, &o| (a << 8) | i64::from(o)),
    )
}

/// Parses one LDAPMessage holding a BindResponse (flat, bounded: no
/// recursion on the server's nesting).
pub fn parse_bind_response(msg: &[u8]) -> Result<BindResponse, String> {
    let bad = |w: &str| format!("malformed BindResponse from the server: {w}");
    let (tag, body, _) = element(msg).ok_or_else(|| bad("no LDAPMessage"))?;
    if tag != 0x30 {
        return Err(bad("not a SEQUENCE"));
    }
    let (tag, id, rest) = element(body).ok_or_else(|| bad("no messageID"))?;
    if tag != 0x02 {
        return Err(bad("messageID is not an INTEGER"));
    }
    let message_id = integer(id).ok_or_else(|| bad("messageID out of range"))?;
    let (tag, op, _) = element(rest).ok_or_else(|| bad("no protocolOp"))?;
    if tag == 0x78 {
        // ExtendedResponse: the notice of disconnection (RFC 4511 §4.4.1).
        let text = element(op)
            .and_then(|(_, _, r)| element(r))
            .and_then(|(_, _, r)| element(r))
            .map(|(_, t, _)| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default();
        return Err(format!("the server ended the session: {text}"));
    }
    if tag != 0x61 {
        return Err(bad(&format!("protocolOp tag {tag:#04x}, not BindResponse")));
    }
    let (tag, rc, rest) = element(op).ok_or_else(|| bad("no resultCode"))?;
    if tag != 0x0a {
        return Err(bad("resultCode is not an ENUMERATED"));
    }
    let rc = integer(rc)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| bad("resultCode out of range"))?;
    let (_, _dn, rest) = element(rest).ok_or_else(|| bad("no matchedDN"))?;
    let (_, text, mut rest) = element(rest).ok_or_else(|| bad("no diagnosticMessage"))?;
    let mut server_creds = None;
    while !rest.is_empty() {
        let (tag, c, r) = element(rest).ok_or_else(|| bad("trailing garbage"))?;
        if tag == 0x87 {
            server_creds = Some(c.to_vec());
        }
        rest = r;
    }
    Ok(BindResponse {
        message_id,
        rc,
        text: String::from_utf8_lossy(text).into_owned(),
        server_creds,
    })
}

/// Reads one complete BER element (an LDAPMessage) of at most `max` octets.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await?;
    let mut out = head.to_vec();
    let len = if head[1] < 0x80 {
        usize::from(head[1])
    } else {
        let n = usize::from(head[1] & 0x7f);
        if n == 0 || n > 4 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("LDAP message with a length of {n} octets refused"),
            ));
        }
        let mut l = [0u8; 4];
        r.read_exact(&mut l[4 - n..]).await?;
        out.extend_from_slice(&l[4 - n..]);
        u32::from_be_bytes(l) as usize
    };
    if head[0] != 0x30 || len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "LDAP message (tag {:#04x}) of {len} octets refused (limit {max})",
                head[0]
            ),
        ));
    }
    let start = out.len();
    out.resize(start + len, 0);
    r.read_exact(&mut out[start..]).await?;
    Ok(out)
}

/// Reads one SASL buffer: a 4-octet big-endian length and that many octets,
/// refusing lengths above `max` before allocating.
pub async fn read_sasl_buffer<R: AsyncRead + Unpin>(
    r: &mut R,
    max: u32,
) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len);
    if n > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("SASL buffer of {n} octets refused (limit {max})"),
        ));
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// `len(token) || token`.
pub fn sasl_frame(token: &[u8]) -> Result<Vec<u8>, String> {
    let n = u32::try_from(token.len()).map_err(|_| "SASL buffer too large".to_string())?;
    let mut out = n.to_be_bytes().to_vec();
    out.extend_from_slice(token);
    Ok(out)
}

/// The server's security-layer offer (RFC 4752 §3.1): layers bitmask and
/// the largest buffer it accepts.
pub fn parse_offer(octets: &[u8]) -> Result<(u8, u32), String> {
    match octets {
        [layers, a, b, c] => Ok((*layers, u32::from_be_bytes([0, *a, *b, *c]))),
        other => Err(format!(
            "the server's security-layer offer has {} octets, not 4",
            other.len()
        )),
    }
}

/// Chooses the layer: confidentiality when offered; over TLS, no layer
/// when offered (Active Directory refuses a SASL layer inside TLS).
pub fn choose_layer(offered: u8, over_tls: bool) -> Option<u8> {
    if over_tls && offered & LAYER_NONE != 0 {
        return Some(LAYER_NONE);
    }
    if offered & LAYER_CONFIDENTIALITY != 0 {
        return Some(LAYER_CONFIDENTIALITY);
    }
    None
}

/// The client's answer: the chosen layer and our receive limit (no
/// authorization identity: act as the authenticated principal).
pub fn layer_reply(layer: u8, max_receive: u32) -> [u8; 4] {
    let m = max_receive.min(0x00ff_ffff).to_be_bytes();
    [layer, m[1], m[2], m[3]]
}

/// Names of the layers in a bitmask, for messages.
fn layer_names(mask: u8) -> String {
    let mut v = Vec::new();
    if mask & LAYER_NONE != 0 {
        v.push("none");
    }
    if mask & LAYER_INTEGRITY != 0 {
        v.push("integrity");
    }
    if mask & LAYER_CONFIDENTIALITY != 0 {
        v.push("confidentiality");
    }
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// The security layer in force after a successful bind.
pub struct Established {
    /// The wrap/unwrap context (None when no layer was chosen).
    pub wrap: Option<GssWrap>,
    /// Largest wrapped buffer the server accepts.
    pub server_max: u32,
    /// The chosen layer bit.
    pub layer: u8,
}

/// Turns a Kerberos error into a line and a fix, with the LDAP SPN in mind
/// (msrpc's hints speak of the CA's SPN; here the service is the DC).
pub fn kerberos_failure(e: &AuthError, spn: &str) -> BindFailure {
    let text = e.to_string();
    let said = text
        .split_once("(KDC said: ")
        .map(|(_, r)| r.trim_end_matches(')').to_string());
    let lower = text.to_ascii_lowercase();
    let fix = if lower.contains("server not found in kerberos database") {
        format!("the KDC knows no service principal {spn}: write the domain controller's DNS name in ldap.url (a DC registers ldap/<its FQDN>; setspn -L <dc>), or set ldap.spn")
    } else if lower.contains("kdc is unreachable") || lower.contains("needs a reachable kdc") {
        "the KDC did not answer: check auth.kdc (tcp://dc01.corp.example:88) or the realm's _kerberos._tcp SRV records, and that TCP port 88 is reachable".into()
    } else if lower.contains("the ticket isn't for us")
        || lower.contains("integrity check on decrypted field failed")
    {
        format!("the domain controller could not use the ticket for {spn}: check ldap.spn names this DC")
    } else {
        msrpc::auth::kerberos_hint(&text)
            .map(str::to_string)
            .unwrap_or_else(|| {
                "check auth.realm, auth.username and the keytab or password of the authority".into()
            })
    };
    if let Some(i) = text.find("no KDC for realm") {
        // KDC discovery by DNS SRV failed: its own words, without msrpc's
        // generic "check auth.kdc and port 88" tail.
        let t = text[i..]
            .split("; check auth.kdc and that TCP port 88")
            .next()
            .unwrap_or(&text[i..]);
        return fail(
            format!("Kerberos for {spn}: {t}"),
            "set auth.kdc (tcp://<dc>:88), or make the realm's _kerberos._tcp SRV records resolvable through this host's DNS configuration (/etc/resolv.conf)",
        );
    }
    let what = match said {
        Some(kdc) => format!("Kerberos ticket for {spn} refused by the KDC: {kdc}"),
        None => format!("Kerberos for {spn} failed: {text}"),
    };
    fail(what, fix)
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, b: &[u8]) -> Result<(), BindFailure> {
    s.write_all(b).await.map_err(|e| {
        fail(
            format!("sending the bind failed: {e}"),
            "check that the domain controller is reachable on this port",
        )
    })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    id: &mut i32,
    creds: Option<&[u8]>,
    timeout: Duration,
) -> Result<BindResponse, BindFailure> {
    *id += 1;
    send(s, &bind_request(*id, creds)).await?;
    let msg =
        match tokio::time::timeout(timeout, read_message(s, MAX_BIND_MESSAGE)).await {
            Err(_) => return Err(fail(
                "the SASL bind got no answer in time",
                "the domain controller is overloaded or a middlebox drops LDAP; raise ldap.timeout",
            )),
            Ok(Err(e)) => {
                return Err(fail(
                    format!("reading the bind response failed: {e}"),
                    "check ldap.url (an LDAP port of a domain controller)",
                ))
            }
            Ok(Ok(m)) => m,
        };
    let r = parse_bind_response(&msg)
        .map_err(|e| fail(e, "check ldap.url (an LDAP port of a domain controller)"))?;
    if r.message_id != i64::from(*id) {
        return Err(fail(
            format!(
                "bind response for message {}, expected {}",
                r.message_id, id
            ),
            "check ldap.url (an LDAP port of a domain controller)",
        ));
    }
    Ok(r)
}

fn refused(r: &BindResponse, step: &str) -> BindFailure {
    let fix = match r.rc {
        7 => "the domain controller does not offer SASL GSSAPI: check ldap.url names a domain controller, or use ldap.bind: simple over LDAPS",
        49 => "the domain controller refused the Kerberos ticket: check that ldap.url names the DC by its DNS name (the SPN ldap/<host>) and that the clocks agree",
        _ => "see the message; check ldap.url and the account",
    };
    fail(
        format!(
            "SASL GSSAPI bind refused at {step}: {}{}",
            super::entry::rc_name(r.rc),
            if r.text.is_empty() {
                String::new()
            } else {
                format!(": {}", r.text)
            }
        ),
        fix,
    )
}

/// Runs the SASL GSSAPI bind on `s` with `ctx` (a context from
/// [`ClientContext::new_gss_api`]) and negotiates the security layer.
pub async fn bind<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    ctx: ClientContext,
    spn: &str,
    over_tls: bool,
    timeout: Duration,
) -> Result<Established, BindFailure> {
    // The first step talks to the KDC (blocking I/O): off the runtime.
    let (ctx, first) = tokio::task::spawn_blocking(move || {
        let mut ctx = ctx;
        let r = ctx.step(None);
        (ctx, r)
    })
    .await
    .map_err(|e| fail(format!("Kerberos task failed: {e}"), "report this as a bug"))?;
    let mut ctx = ctx;
    let first = first.map_err(|e| kerberos_failure(&e, spn))?;
    let mut id = 0;
    let mut resp = exchange(s, &mut id, Some(&first.token), timeout).await?;
    // AP-REP in, then (context established) the empty response of
    // RFC 4752 §3.1 out; the answer to that carries the layer offer.
    let mut legs = 0;
    while !ctx.is_complete() {
        if resp.rc != 14 {
            return Err(refused(&resp, "the Kerberos exchange"));
        }
        legs += 1;
        if legs > 4 {
            return Err(fail(
                "the Kerberos exchange did not complete in 4 legs",
                "report this with the domain controller's version",
            ));
        }
        let input = resp.server_creds.clone().unwrap_or_default();
        let step = ctx
            .step(Some(&input))
            .map_err(|e| kerberos_failure(&e, spn))?;
        resp = exchange(s, &mut id, Some(&step.token), timeout).await?;
    }
    if resp.rc != 14 {
        return Err(refused(&resp, "the security-layer negotiation"));
    }
    let mut wrap = GssWrap::new(ctx).map_err(|e| kerberos_failure(&e, spn))?;
    let offer = resp.server_creds.clone().unwrap_or_default();
    let plain = wrap.unwrap(&offer).map_err(|e| {
        fail(
            format!("the server's security-layer offer does not verify: {e}"),
            "the session keys disagree: check the domain controller's keys and the clocks",
        )
    })?;
    let (offered, server_max) = parse_offer(&plain)
        .map_err(|e| fail(e, "report this with the domain controller's version"))?;
    tracing::debug!(
        offered = %layer_names(offered),
        server_max,
        "LDAP SASL GSSAPI: security layers offered"
    );
    let layer = choose_layer(offered, over_tls).ok_or_else(|| {
        fail(
            format!(
                "no common SASL security layer: the server offers {}, certeasy needs confidentiality on plain LDAP",
                layer_names(offered)
            ),
            "allow LDAP signing and sealing on the domain controller, or use ldaps:// with ldap.bind: simple",
        )
    })?;
    let reply = wrap
        .wrap(&layer_reply(layer, MAX_RECEIVE))
        .map_err(|e| kerberos_failure(&e, spn))?;
    let done = exchange(s, &mut id, Some(&reply), timeout).await?;
    if done.rc != 0 {
        return Err(refused(&done, "the security-layer choice"));
    }
    Ok(Established {
        wrap: (layer != LAYER_NONE).then_some(wrap),
        server_max,
        layer,
    })
}

/// Carries LDAP between `local` (ldap3's end) and `remote` (the domain
/// controller) until either side closes, wrapping and unwrapping each
/// buffer with `est` (or copying when no layer is in force).
pub fn spawn_pump<L, R>(local: L, remote: R, est: Established)
where
    L: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(wrap) = est.wrap else {
        tokio::spawn(async move {
            let (mut l, mut r) = (local, remote);
            let _ = tokio::io::copy_bidirectional(&mut l, &mut r).await;
        });
        return;
    };
    let wrap = std::sync::Arc::new(std::sync::Mutex::new(wrap));
    let (mut lr, mut lw) = tokio::io::split(local);
    let (mut rr, mut rw) = tokio::io::split(remote);
    // Wrapped chunk size: the server's limit less the Wrap token's overhead
    // (16-octet header, 16-octet confounder, encrypted header copy,
    // 12-octet checksum); 0 means no limit.
    let chunk = match est.server_max as usize {
        0 => MAX_REQUEST_PDU,
        m => m.saturating_sub(WRAP_OVERHEAD).max(1),
    };
    let w = wrap.clone();
    tokio::spawn(async move {
        while let Ok(pdu) = read_message(&mut lr, MAX_REQUEST_PDU).await {
            for part in pdu.chunks(chunk) {
                let framed = w
                    .lock()
                    .map_err(|_| ())
                    .and_then(|mut g| g.wrap(part).map_err(|_| ()))
                    .and_then(|t| sasl_frame(&t).map_err(|_| ()));
                let Ok(framed) = framed else { return };
                if rw.write_all(&framed).await.is_err() {
                    return;
                }
            }
        }
        let _ = rw.shutdown().await;
    });
    tokio::spawn(async move {
        while let Ok(buf) = read_sasl_buffer(&mut rr, MAX_RECEIVE).await {
            let plain = wrap
                .lock()
                .map_err(|_| ())
                .and_then(|mut g| g.unwrap(&buf).map_err(|e| {
                    tracing::warn!(error = %e, "LDAP: a sealed buffer from the domain controller did not verify; closing");
                }));
            let Ok(plain) = plain else { break };
            if lw.write_all(&plain).await.is_err() {
                break;
            }
        }
        let _ = lw.shutdown().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_request_encodes_as_rfc4511() {
        let b = bind_request(1, Some(b"\x60\x01"));
        assert_eq!(
            b,
            [
                0x30, 0x18, 0x02, 0x01, 0x01, // LDAPMessage, messageID 1
                0x60, 0x13, 0x02, 0x01, 0x03, 0x04, 0x00, // BindRequest v3, name ""
                0xa3, 0x0c, 0x04, 0x06, b'G', b'S', b'S', b'A', b'P', b'I', 0x04, 0x02, 0x60, 0x01
            ]
        );
        let empty = bind_request(2, None);
        assert_eq!(
            &empty[empty.len() - 10..],
            &[0xa3, 0x08, 0x04, 0x06, b'G', b'S', b'S', b'A', b'P', b'I']
        );
    }

    #[test]
    fn bind_response_is_parsed_with_server_creds() {
        // messageID 2, saslBindInProgress (14), "", "", serverSaslCreds 01 02
        let m = [
            0x30, 0x10, 0x02, 0x01, 0x02, 0x61, 0x0b, 0x0a, 0x01, 0x0e, 0x04, 0x00, 0x04, 0x00,
            0x87, 0x02, 0x01, 0x02,
        ];
        let r = parse_bind_response(&m).unwrap();
        assert_eq!(r.message_id, 2);
        assert_eq!(r.rc, 14);
        assert_eq!(r.server_creds.as_deref(), Some(&[1u8, 2][..]));
        // invalidCredentials with a diagnostic, no creds.
        let m = [
            0x30, 0x0e, 0x02, 0x01, 0x01, 0x61, 0x09, 0x0a, 0x01, 0x31, 0x04, 0x00, 0x04, 0x02,
            b'n', b'o',
        ];
        let r = parse_bind_response(&m).unwrap();
        assert_eq!((r.rc, r.text.as_str(), r.server_creds), (49, "no", None));
    }

    #[test]
    fn hostile_bind_responses_are_refused_not_panicking() {
        for m in [
            &[][..],
            &[0x30][..],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x85, 1, 1, 1, 1, 1][..],
            &[0x30, 0x03, 0x02, 0x01, 0x01][..],
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x7f][..],
            &[0x31, 0x00][..],
            &[0x30, 0x07, 0x02, 0x09, 1, 2, 3, 4, 5, 6, 7][..],
        ] {
            assert!(parse_bind_response(m).is_err(), "{m:02x?}");
        }
        // A notice of disconnection is reported as such.
        let m = [
            0x30, 0x0c, 0x02, 0x01, 0x00, 0x78, 0x07, 0x0a, 0x01, 0x34, 0x04, 0x00, 0x04, 0x00,
        ];
        assert!(parse_bind_response(&m)
            .unwrap_err()
            .contains("ended the session"));
    }

    #[tokio::test]
    async fn framing_refuses_hostile_lengths_before_allocating() {
        let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0, 0];
        let e = read_sasl_buffer(&mut r, MAX_RECEIVE).await.unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        let mut r: &[u8] = &[0, 0, 0, 2, 7, 8];
        assert_eq!(read_sasl_buffer(&mut r, MAX_RECEIVE).await.unwrap(), [7, 8]);
        let mut r: &[u8] = &[0, 0, 0, 9, 7, 8];
        assert!(
            read_sasl_buffer(&mut r, MAX_RECEIVE).await.is_err(),
            "short read"
        );
        let mut r: &[u8] = &[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff];
        assert!(read_message(&mut r, MAX_REQUEST_PDU).await.is_err());
        let mut r: &[u8] = &[0x30, 0x88, 1, 1, 1, 1, 1, 1, 1, 1];
        assert!(read_message(&mut r, MAX_REQUEST_PDU).await.is_err());
        let mut r: &[u8] = &[0x04, 0x01, 0x00];
        assert!(
            read_message(&mut r, MAX_REQUEST_PDU).await.is_err(),
            "not a SEQUENCE"
        );
        let mut r: &[u8] = &[0x30, 0x81, 0x02, 0x05, 0x00, 0xaa];
        assert_eq!(
            read_message(&mut r, MAX_REQUEST_PDU).await.unwrap(),
            [0x30, 0x81, 0x02, 0x05, 0x00]
        );
        assert_eq!(sasl_frame(b"ab").unwrap(), [0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn kerberos_failures_name_the_ldap_spn_and_the_fix() {
        let e = AuthError::Kerberos("the KDC has no service principal for the CA's SPN: check auth.spn (KDC said: Server not found in Kerberos database)".into());
        let f = kerberos_failure(&e, "ldap/dc9.corp.test");
        assert_eq!(
            f.what,
            "Kerberos ticket for ldap/dc9.corp.test refused by the KDC: Server not found in Kerberos database"
        );
        assert!(f.fix.contains("ldap.spn"), "{}", f.fix);
        assert!(!f.fix.contains("CA"), "{}", f.fix);
        let e = AuthError::Kerberos(
            "the KDC is unreachable: connection refused; check auth.kdc".into(),
        );
        assert!(kerberos_failure(&e, "ldap/x")
            .fix
            .contains("_kerberos._tcp"));
    }

    #[test]
    fn a_failed_kdc_discovery_says_what_to_set() {
        let e = AuthError::Kerberos("the KDC is unreachable: no KDC for realm CORP.TEST: no SRV record _kerberos._tcp.corp.test; set auth.kdc (tcp://dc01.corp.test:88) or publish _kerberos._tcp.corp.test SRV records in DNS; check auth.kdc and that TCP port 88 of the domain controller is open".into());
        let f = kerberos_failure(&e, "ldap/dc1.corp.test");
        assert_eq!(f.what, "Kerberos for ldap/dc1.corp.test: no KDC for realm CORP.TEST: no SRV record _kerberos._tcp.corp.test; set auth.kdc (tcp://dc01.corp.test:88) or publish _kerberos._tcp.corp.test SRV records in DNS");
        assert!(f.fix.contains("set auth.kdc"), "{}", f.fix);
    }

    #[test]
    fn security_layer_octets() {
        assert_eq!(parse_offer(&[0x07, 0x00, 0x10, 0x00]).unwrap(), (7, 0x1000));
        assert!(parse_offer(&[0x07, 0, 0]).is_err());
        assert!(parse_offer(&[0x07, 0, 0, 0, 0]).is_err());
        assert_eq!(choose_layer(0x07, false), Some(LAYER_CONFIDENTIALITY));
        assert_eq!(choose_layer(0x07, true), Some(LAYER_NONE));
        assert_eq!(choose_layer(0x04, true), Some(LAYER_CONFIDENTIALITY));
        assert_eq!(
            choose_layer(0x03, false),
            None,
            "integrity alone is not enough on plain LDAP"
        );
        assert_eq!(choose_layer(0x01, false), None);
        assert_eq!(
            layer_reply(LAYER_CONFIDENTIALITY, MAX_RECEIVE),
            [0x04, 0x40, 0x00, 0x00]
        );
        assert_eq!(layer_reply(LAYER_NONE, u32::MAX), [0x01, 0xff, 0xff, 0xff]);
        assert_eq!(layer_names(0x06), "integrity, confidentiality");
    }
}
