//! GSS-API per-message protection of an established Kerberos client
//! context, for protocols that frame RFC 4121 Wrap tokens themselves (SASL
//! GSSAPI, RFC 4752: the LDAP security layer).
//!
//! sspi produces and consumes Wrap tokens in the Windows DCE layout: the
//! encrypted part is right-rotated by a fixed `RRC` of 28 (plus `EC`), and
//! incoming tokens are expected rotated the same way. Peers outside DCE/RPC
//! (MIT, Heimdal, Samba's LDAP server) send `RRC` 0 and accept any `RRC`.
//! [`GssWrap`] therefore normalises: tokens it sends carry `RRC` 0 (the
//! rotation undone), and sealed tokens it receives are re-rotated to sspi's
//! layout before decryption. Everything else (keys, sequence numbers,
//! checksums) is sspi's.

use sspi::credssp::SspiContext;
use sspi::{EncryptionFlags, SecurityBufferRef, Sspi};

use crate::auth::{AuthError, ClientContext};

/// Length of an RFC 4121 Wrap token header.
pub const WRAP_HEADER_LEN: usize = 16;
/// sspi's fixed RRC for sealed tokens.
const SSPI_RRC: u16 = 28;
/// Flag bit: sent by the context acceptor.
const FLAG_SENT_BY_ACCEPTOR: u8 = 0x01;
/// Flag bit: sealed (confidentiality).
const FLAG_SEALED: u8 = 0x02;

/// Wraps and unwraps messages with an established Kerberos client context.
pub struct GssWrap {
    ctx: Box<SspiContext>,
}

impl std::fmt::Debug for GssWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GssWrap").finish_non_exhaustive()
    }
}

/// The fields of a Wrap token header this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapHeader {
    /// Flags octet (bit 0 sent-by-acceptor, bit 1 sealed, bit 2 acceptor subkey).
    pub flags: u8,
    /// Extra count.
    pub ec: u16,
    /// Right rotation count.
    pub rrc: u16,
}

/// Parses the 16-octet header of a Wrap token (RFC 4121 §4.2.6.2).
pub fn wrap_header(token: &[u8]) -> Result<WrapHeader, AuthError> {
    if token.len() < WRAP_HEADER_LEN {
        return Err(AuthError::InvalidToken(format!(
            "Wrap token of {} octets, shorter than its 16-octet header",
            token.len()
        )));
    }
    if token[0..2] != [0x05, 0x04] || token[3] != 0xff {
        return Err(AuthError::InvalidToken(format!(
            "not an RFC 4121 Wrap token (starts {:02x} {:02x} {:02x} {:02x})",
            token[0], token[1], token[2], token[3]
        )));
    }
    Ok(WrapHeader {
        flags: token[2],
        ec: u16::from_be_bytes([token[4], token[5]]),
        rrc: u16::from_be_bytes([token[6], token[7]]),
    })
}

/// Rewrites a sealed Wrap token's rotation: undoes `from` octets of right
/// rotation of the part after the header, applies `to`, and writes
/// `rrc_field` into the header. An empty body is left alone.
fn rerotate(token: &mut [u8], from: usize, to: usize, rrc_field: u16) {
    let body = &mut token[WRAP_HEADER_LEN..];
    if !body.is_empty() {
        let n = body.len();
        body.rotate_left(from % n);
        body.rotate_right(to % n);
    }
    token[6..8].copy_from_slice(&rrc_field.to_be_bytes());
}

/// Brings a sealed token sent by sspi (rotated by RRC + EC, the MS-KILE
/// DCE convention) to RRC 0, which every RFC 4121 peer reads.
pub fn outgoing_to_rrc0(token: &mut [u8]) -> Result<(), AuthError> {
    let h = wrap_header(token)?;
    if h.flags & FLAG_SEALED != 0 {
        rerotate(token, usize::from(h.rrc) + usize::from(h.ec), 0, 0);
    }
    Ok(())
}

/// Brings a sealed token from an RFC 4121 peer (rotated by RRC) to the
/// layout sspi decrypts (rotated by 28 + EC, RRC field 28).
pub fn incoming_to_sspi(token: &mut [u8]) -> Result<(), AuthError> {
    let h = wrap_header(token)?;
    if h.flags & FLAG_SEALED != 0 {
        rerotate(
            token,
            usize::from(h.rrc),
            usize::from(SSPI_RRC) + usize::from(h.ec),
            SSPI_RRC,
        );
    }
    Ok(())
}

impl GssWrap {
    /// The wrap/unwrap half of an established GSS-API context (from
    /// [`ClientContext::new_gss_api`], stepped to completion).
    pub fn new(ctx: ClientContext) -> Result<Self, AuthError> {
        Ok(GssWrap {
            ctx: ctx.into_established()?,
        })
    }

    /// GSS_Wrap with confidentiality: one Wrap token (header, sealed data
    /// and checksum) with RRC 0.
    pub fn wrap(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let trailer = usize::try_from(self.ctx.query_context_sizes()?.security_trailer)
            .map_err(|_| AuthError::Provider("security trailer size out of range".into()))?;
        let mut token = vec![0u8; trailer];
        let mut body = data.to_vec();
        let mut bufs = [
            SecurityBufferRef::token_buf(&mut token),
            SecurityBufferRef::data_buf(&mut body),
        ];
        self.ctx
            .encrypt_message(EncryptionFlags::empty(), &mut bufs)
            .map_err(|e| AuthError::Provider(e.description))?;
        let mut out = bufs[0].data().to_vec();
        out.extend_from_slice(bufs[1].data());
        outgoing_to_rrc0(&mut out)?;
        Ok(out)
    }

    /// GSS_Unwrap: verifies (and when sealed decrypts) one Wrap token from
    /// the acceptor and returns the data.
    pub fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, AuthError> {
        let h = wrap_header(token)?;
        if h.flags & FLAG_SENT_BY_ACCEPTOR == 0 {
            return Err(AuthError::Integrity(
                "Wrap token not sent by the acceptor (a reflected token)".into(),
            ));
        }
        let mut t = token.to_vec();
        incoming_to_sspi(&mut t)?;
        let (head, body) = t.split_at_mut(WRAP_HEADER_LEN);
        let mut head = head.to_vec();
        let mut bufs = [
            SecurityBufferRef::token_buf(&mut head),
            SecurityBufferRef::data_buf(body),
        ];
        self.ctx
            .decrypt_message(&mut bufs)
            .map_err(|e| AuthError::Integrity(e.description))?;
        Ok(bufs[1].data().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(flags: u8, ec: u16, rrc: u16, body: &[u8]) -> Vec<u8> {
        let mut t = vec![0x05, 0x04, flags, 0xff];
        t.extend_from_slice(&ec.to_be_bytes());
        t.extend_from_slice(&rrc.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        t.extend_from_slice(body);
        t
    }

    #[test]
    fn header_is_parsed_and_garbage_refused() {
        let t = token(0x07, 0, 28, b"abc");
        assert_eq!(
            wrap_header(&t).unwrap(),
            WrapHeader {
                flags: 7,
                ec: 0,
                rrc: 28
            }
        );
        assert!(wrap_header(&t[..15]).is_err());
        assert!(wrap_header(&[]).is_err());
        let mut bad = t.clone();
        bad[0] = 0x04; // a MIC token
        assert!(wrap_header(&bad).is_err());
        let mut bad = t;
        bad[3] = 0x00;
        assert!(wrap_header(&bad).is_err());
    }

    #[test]
    fn rotations_round_trip_between_rfc4121_and_sspi_layouts() {
        let plain: Vec<u8> = (0u8..60).collect();
        // A peer's sealed token with RRC 0 → sspi layout: body rotated right by 28.
        let mut t = token(0x07, 0, 0, &plain);
        incoming_to_sspi(&mut t).unwrap();
        assert_eq!(wrap_header(&t).unwrap().rrc, 28);
        let mut want = plain.clone();
        want.rotate_right(28);
        assert_eq!(&t[16..], &want[..]);
        // And back: RRC 0, body as before.
        outgoing_to_rrc0(&mut t).unwrap();
        assert_eq!(wrap_header(&t).unwrap().rrc, 0);
        assert_eq!(&t[16..], &plain[..]);
        // A peer's token with RRC 5 and EC 3: undo 5, apply 31.
        let mut rotated = plain.clone();
        rotated.rotate_right(5);
        let mut t = token(0x07, 3, 5, &rotated);
        incoming_to_sspi(&mut t).unwrap();
        let mut want = plain.clone();
        want.rotate_right(31);
        assert_eq!(&t[16..], &want[..]);
    }

    #[test]
    fn unsealed_and_short_tokens_are_left_alone_without_panicking() {
        let mut t = token(0x05, 12, 12, b"0123456789abcdef");
        let before = t.clone();
        incoming_to_sspi(&mut t).unwrap();
        assert_eq!(
            t, before,
            "integrity-only tokens keep their RRC (sspi undoes it)"
        );
        // A sealed token with an empty body and a huge RRC: no panic.
        let mut t = token(0x07, 0xffff, 0xffff, b"");
        incoming_to_sspi(&mut t).unwrap();
        outgoing_to_rrc0(&mut t).unwrap();
        // RRC larger than the body: taken modulo its length.
        let mut t = token(0x07, 0, 1000, b"xyz");
        incoming_to_sspi(&mut t).unwrap();
        assert_eq!(t.len(), 19);
    }
}
