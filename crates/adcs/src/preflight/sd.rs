//! Windows security descriptors as Active Directory stores them in
//! `nTSecurityDescriptor` (self-relative form, MS-DTYP §2.4.6), parsed by
//! hand, and the access check `adcs check` needs: may a set of SIDs enroll,
//! and may it write the object (ESC4)?
//!
//! Only what decides those questions is modelled: access-allowed and
//! access-denied ACEs, plain (0x00 / 0x01) and object (0x05 / 0x06). Other
//! ACE types (audit, callback, …) are skipped; inherit-only ACEs do not apply
//! to the object itself and are skipped too. ACEs are evaluated in order, per
//! access bit, as Windows does: the first ACE that names one of the caller's
//! SIDs and covers the bit decides it.

use std::fmt;

/// The `Certificate-Enrollment` extended right (Enroll), rightsGuid
/// `0e10c968-78fb-11d2-90d4-00c04f79dc55`.
pub const CERTIFICATE_ENROLLMENT: Guid = Guid([
    0x68, 0xc9, 0x10, 0x0e, 0xfb, 0x78, 0xd2, 0x11, 0x90, 0xd4, 0x00, 0xc0, 0x4f, 0x79, 0xdc, 0x55,
]);

/// ADS_RIGHT_DS_SELF (validated write).
pub const DS_SELF: u32 = 0x0000_0008;
/// ADS_RIGHT_DS_READ_PROP.
pub const DS_READ_PROP: u32 = 0x0000_0010;
/// ADS_RIGHT_DS_WRITE_PROP.
pub const DS_WRITE_PROP: u32 = 0x0000_0020;
/// ADS_RIGHT_DS_CONTROL_ACCESS (extended rights such as Enroll).
pub const DS_CONTROL_ACCESS: u32 = 0x0000_0100;
/// READ_CONTROL.
pub const READ_CONTROL: u32 = 0x0002_0000;
/// WRITE_DAC.
pub const WRITE_DAC: u32 = 0x0004_0000;
/// WRITE_OWNER.
pub const WRITE_OWNER: u32 = 0x0008_0000;
/// GENERIC_ALL.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// GENERIC_EXECUTE.
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
/// GENERIC_WRITE.
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// GENERIC_READ.
pub const GENERIC_READ: u32 = 0x8000_0000;

/// What GENERIC_ALL means on a directory object (standard rights + every
/// DS right): the mask AD stores for "Full Control".
const DS_ALL: u32 = 0x000F_01FF;
/// ADS_RIGHT_ACTRL_DS_LIST.
const DS_LIST: u32 = 0x0000_0004;
/// ADS_RIGHT_DS_LIST_OBJECT.
const DS_LIST_OBJECT: u32 = 0x0000_0080;

const SE_DACL_PRESENT: u16 = 0x0004;
const INHERIT_ONLY_ACE: u8 = 0x08;
const ACE_OBJECT_TYPE_PRESENT: u32 = 0x1;
const ACE_INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

/// Why a security descriptor could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdError(pub String);

impl fmt::Display for SdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SdError {}

fn err(msg: impl Into<String>) -> SdError {
    SdError(msg.into())
}

fn u16_at(b: &[u8], at: usize, what: &str) -> Result<u16, SdError> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| {
            err(format!(
                "{what} at offset {at} lies past the end ({} bytes)",
                b.len()
            ))
        })
}

fn u32_at(b: &[u8], at: usize, what: &str) -> Result<u32, SdError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| {
            err(format!(
                "{what} at offset {at} lies past the end ({} bytes)",
                b.len()
            ))
        })
}

/// A security identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    /// SID revision (always 1).
    pub revision: u8,
    /// Identifier authority (48 bits, e.g. 5 for NT AUTHORITY).
    pub authority: u64,
    /// Sub-authorities; the last one of an account is its RID.
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// Parses the binary form at the start of `b`; returns the SID and its
    /// length in bytes.
    pub fn parse_prefix(b: &[u8]) -> Result<(Sid, usize), SdError> {
        let (&revision, rest) = b.split_first().ok_or_else(|| err("empty SID"))?;
        if revision != 1 {
            return Err(err(format!("SID revision {revision} (expected 1)")));
        }
        let count = usize::from(
            *rest
                .first()
                .ok_or_else(|| err("SID without a sub-authority count"))?,
        );
        let len = 8 + 4 * count;
        let body = b.get(..len).ok_or_else(|| {
            err(format!(
                "SID of {count} sub-authorities needs {len} bytes, {} left",
                b.len()
            ))
        })?;
        let authority = body[2..8]
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        let sub_authorities = body[8..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((
            Sid {
                revision,
                authority,
                sub_authorities,
            },
            len,
        ))
    }

    /// Parses a whole binary SID (e.g. an `objectSid` value); trailing bytes
    /// are an error.
    pub fn from_bytes(b: &[u8]) -> Result<Sid, SdError> {
        let (sid, len) = Sid::parse_prefix(b)?;
        if len != b.len() {
            return Err(err(format!("{} bytes after the SID", b.len() - len)));
        }
        Ok(sid)
    }

    /// Parses the string form `S-1-5-21-…`.
    pub fn parse_str(s: &str) -> Option<Sid> {
        let mut parts = s.strip_prefix("S-")?.split('-');
        let revision = parts.next()?.parse().ok()?;
        let authority = parts.next()?.parse().ok()?;
        let sub_authorities = parts
            .map(|p| p.parse().ok())
            .collect::<Option<Vec<u32>>>()?;
        Some(Sid {
            revision,
            authority,
            sub_authorities,
        })
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.revision, self.sub_authorities.len() as u8];
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// The name Windows gives this SID when it is a well-known one (fixed,
    /// or a well-known RID of a domain).
    pub fn well_known_name(&self) -> Option<&'static str> {
        let subs = self.sub_authorities.as_slice();
        match (self.authority, subs) {
            (1, [0]) => Some("Everyone"),
            (5, [11]) => Some("Authenticated Users"),
            (5, [18]) => Some("SYSTEM"),
            (5, [9]) => Some("Enterprise Domain Controllers"),
            (5, [32, 544]) => Some("BUILTIN\\Administrators"),
            (5, [32, 545]) => Some("BUILTIN\\Users"),
            (5, [21, _, _, _, rid]) => match rid {
                500 => Some("Administrator"),
                512 => Some("Domain Admins"),
                513 => Some("Domain Users"),
                515 => Some("Domain Computers"),
                516 => Some("Domain Controllers"),
                518 => Some("Schema Admins"),
                519 => Some("Enterprise Admins"),
                _ => None,
            },
            _ => None,
        }
    }

    /// Everyone (S-1-1-0).
    pub fn everyone() -> Sid {
        Sid {
            revision: 1,
            authority: 1,
            sub_authorities: vec![0],
        }
    }

    /// Authenticated Users (S-1-5-11).
    pub fn authenticated_users() -> Sid {
        Sid {
            revision: 1,
            authority: 5,
            sub_authorities: vec![11],
        }
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-{}", self.revision, self.authority)?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

/// A GUID in its binary (mixed-endian) form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `0e10c968-78fb-11d2-90d4-00c04f79dc55`.
    pub fn parse_str(s: &str) -> Option<Guid> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || s.len() != 36 {
            return None;
        }
        let raw = (0..16)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let mut b = [0u8; 16];
        // Data1 (4), Data2 (2), Data3 (2) are little-endian; Data4 as is.
        b[0..4].copy_from_slice(&[raw[3], raw[2], raw[1], raw[0]]);
        b[4..6].copy_from_slice(&[raw[5], raw[4]]);
        b[6..8].copy_from_slice(&[raw[7], raw[6]]);
        b[8..16].copy_from_slice(&raw[8..16]);
        Some(Guid(b))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for x in &b[10..16] {
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AceKind {
    /// ACCESS_ALLOWED_ACE / ACCESS_ALLOWED_OBJECT_ACE.
    Allow,
    /// ACCESS_DENIED_ACE / ACCESS_DENIED_OBJECT_ACE.
    Deny,
}

/// One access-control entry that matters for the access check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// Allow or deny.
    pub kind: AceKind,
    /// ACE flags (inheritance).
    pub flags: u8,
    /// Access mask as stored.
    pub mask: u32,
    /// Object type (property, property set or extended right), when the
    /// ACE is limited to one.
    pub object_type: Option<Guid>,
    /// Trustee.
    pub sid: Sid,
}

impl Ace {
    /// Does this ACE apply to the object itself (not only to children)?
    pub fn applies_to_object(&self) -> bool {
        self.flags & INHERIT_ONLY_ACE == 0
    }
}

/// The DACL of a security descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dacl {
    /// No DACL: every access is granted to everyone.
    Null,
    /// The access-allowed and access-denied ACEs, in order.
    Aces(Vec<Ace>),
}

/// Parses a self-relative security descriptor and returns its DACL.
pub fn parse_dacl(sd: &[u8]) -> Result<Dacl, SdError> {
    let revision = *sd.first().ok_or_else(|| err("empty security descriptor"))?;
    if revision != 1 {
        return Err(err(format!(
            "security descriptor revision {revision} (expected 1)"
        )));
    }
    let control = u16_at(sd, 2, "control")?;
    let dacl_offset = u32_at(sd, 16, "DACL offset")? as usize;
    if control & SE_DACL_PRESENT == 0 || dacl_offset == 0 {
        return Ok(Dacl::Null);
    }
    let acl = sd.get(dacl_offset..).ok_or_else(|| {
        err(format!(
            "DACL offset {dacl_offset} lies past the end ({} bytes)",
            sd.len()
        ))
    })?;
    let acl_revision = *acl.first().ok_or_else(|| err("empty DACL"))?;
    if !(2..=4).contains(&acl_revision) {
        return Err(err(format!(
            "ACL revision {acl_revision} (expected 2 or 4)"
        )));
    }
    let acl_size = usize::from(u16_at(acl, 2, "ACL size")?);
    let count = usize::from(u16_at(acl, 4, "ACE count")?);
    let acl = acl
        .get(..acl_size)
        .ok_or_else(|| err(format!("ACL of {acl_size} bytes runs past the end")))?;
    let mut aces = Vec::with_capacity(count);
    let mut at = 8usize;
    for i in 0..count {
        let ace_type = *acl
            .get(at)
            .ok_or_else(|| err(format!("ACE {i} lies past the end of the ACL")))?;
        let flags = *acl
            .get(at + 1)
            .ok_or_else(|| err(format!("ACE {i} is truncated")))?;
        let size = usize::from(u16_at(acl, at + 2, "ACE size")?);
        if size < 8 {
            return Err(err(format!("ACE {i} claims {size} bytes")));
        }
        let body = acl.get(at..at + size).ok_or_else(|| {
            err(format!(
                "ACE {i} of {size} bytes runs past the end of the ACL"
            ))
        })?;
        let kind = match ace_type {
            0x00 | 0x05 => Some(AceKind::Allow),
            0x01 | 0x06 => Some(AceKind::Deny),
            _ => None,
        };
        if let Some(kind) = kind {
            let mask = u32_at(body, 4, "access mask")?;
            let (object_type, sid_at) = if ace_type >= 0x05 {
                let oflags = u32_at(body, 8, "object ACE flags")?;
                let mut p = 12;
                let mut object_type = None;
                if oflags & ACE_OBJECT_TYPE_PRESENT != 0 {
                    let g: [u8; 16] = body
                        .get(p..p + 16)
                        .and_then(|s| s.try_into().ok())
                        .ok_or_else(|| err(format!("ACE {i}: object type GUID is truncated")))?;
                    object_type = Some(Guid(g));
                    p += 16;
                }
                if oflags & ACE_INHERITED_OBJECT_TYPE_PRESENT != 0 {
                    p += 16;
                }
                (object_type, p)
            } else {
                (None, 8)
            };
            let sid_bytes = body
                .get(sid_at..)
                .ok_or_else(|| err(format!("ACE {i}: SID lies past the end of the ACE")))?;
            let (sid, _) =
                Sid::parse_prefix(sid_bytes).map_err(|e| err(format!("ACE {i}: {e}")))?;
            aces.push(Ace {
                kind,
                flags,
                mask,
                object_type,
                sid,
            });
        }
        at += size;
    }
    Ok(Dacl::Aces(aces))
}

/// Maps generic rights to what they mean on a directory object.
pub fn map_generic(mask: u32) -> u32 {
    let mut m = mask & !(GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ);
    if mask & GENERIC_ALL != 0 {
        m |= DS_ALL;
    }
    if mask & GENERIC_WRITE != 0 {
        m |= READ_CONTROL | DS_WRITE_PROP | DS_SELF;
    }
    if mask & GENERIC_READ != 0 {
        m |= READ_CONTROL | DS_LIST | DS_READ_PROP | DS_LIST_OBJECT;
    }
    if mask & GENERIC_EXECUTE != 0 {
        m |= READ_CONTROL | DS_LIST;
    }
    m
}

/// The outcome of the access check for one right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Granted by an allow ACE for this SID (None: null DACL).
    Granted(Option<Sid>),
    /// Denied by a deny ACE for this SID.
    Denied(Sid),
    /// No ACE grants it.
    NotGranted,
}

/// Decides one access bit for a caller holding `sids`. With `object_type`
/// the right is object-specific (e.g. Enroll): ACEs for that object type or
/// for no object type count. Without it only ACEs for no object type count.
pub fn decide(dacl: &Dacl, sids: &[Sid], bit: u32, object_type: Option<Guid>) -> Decision {
    let aces = match dacl {
        Dacl::Null => return Decision::Granted(None),
        Dacl::Aces(a) => a,
    };
    for ace in aces {
        if !ace.applies_to_object() || !sids.contains(&ace.sid) {
            continue;
        }
        if map_generic(ace.mask) & bit == 0 {
            continue;
        }
        if ace.object_type.is_some() && ace.object_type != object_type {
            continue;
        }
        return match ace.kind {
            AceKind::Allow => Decision::Granted(Some(ace.sid.clone())),
            AceKind::Deny => Decision::Denied(ace.sid.clone()),
        };
    }
    Decision::NotGranted
}

/// May `sids` enroll (Certificate-Enrollment extended right)?
pub fn enroll(dacl: &Dacl, sids: &[Sid]) -> Decision {
    decide(dacl, sids, DS_CONTROL_ACCESS, Some(CERTIFICATE_ENROLLMENT))
}

/// The write rights that let a holder rewrite an object (ESC4 on a
/// template), each with its Windows name.
pub const WRITE_RIGHTS: [(u32, &str); 3] = [
    (WRITE_DAC, "WriteDacl"),
    (WRITE_OWNER, "WriteOwner"),
    (DS_WRITE_PROP, "WriteProperty (all properties)"),
];

/// The write rights `sids` hold on the object, with the SID that grants
/// each (None: null DACL).
pub fn write_rights(dacl: &Dacl, sids: &[Sid]) -> Vec<(&'static str, Option<Sid>)> {
    WRITE_RIGHTS
        .iter()
        .filter_map(|(bit, name)| match decide(dacl, sids, *bit, None) {
            Decision::Granted(by) => Some((*name, by)),
            Decision::Denied(_) | Decision::NotGranted => None,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ACE for the test builder: (type, flags, mask, object type, SID).
    pub(crate) type TestAce<'a> = (u8, u8, u32, Option<Guid>, &'a Sid);

    /// Builds a self-relative security descriptor with only a DACL.
    pub(crate) fn build_sd(aces: &[TestAce<'_>]) -> Vec<u8> {
        let mut acl_body = Vec::new();
        for (ty, flags, mask, object_type, sid) in aces {
            let mut body = mask.to_le_bytes().to_vec();
            if *ty >= 0x05 {
                let oflags: u32 = if object_type.is_some() { 1 } else { 0 };
                body.extend_from_slice(&oflags.to_le_bytes());
                if let Some(g) = object_type {
                    body.extend_from_slice(&g.0);
                }
            }
            body.extend_from_slice(&sid.to_bytes());
            let size = (4 + body.len()) as u16;
            acl_body.extend_from_slice(&[*ty, *flags]);
            acl_body.extend_from_slice(&size.to_le_bytes());
            acl_body.extend_from_slice(&body);
        }
        let mut acl = vec![4, 0];
        acl.extend_from_slice(&((8 + acl_body.len()) as u16).to_le_bytes());
        acl.extend_from_slice(&(aces.len() as u16).to_le_bytes());
        acl.extend_from_slice(&[0, 0]);
        acl.extend_from_slice(&acl_body);
        let mut sd = vec![1, 0];
        sd.extend_from_slice(&(0x8000u16 | SE_DACL_PRESENT).to_le_bytes());
        sd.extend_from_slice(&[0; 12]); // owner, group, SACL: absent
        sd.extend_from_slice(&20u32.to_le_bytes());
        sd.extend_from_slice(&acl);
        sd
    }

    pub(crate) fn sid(s: &str) -> Sid {
        Sid::parse_str(s).expect("test SID")
    }

    const ACCOUNT: &str = "S-1-5-21-1-2-3-1104";
    const GROUP: &str = "S-1-5-21-1-2-3-1200";

    #[test]
    fn sid_round_trips_between_binary_and_text() {
        let s = sid("S-1-5-21-3623811015-3361044348-30300820-1013");
        let b = s.to_bytes();
        assert_eq!(b.len(), 8 + 4 * 5);
        assert_eq!(&b[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert_eq!(Sid::from_bytes(&b), Ok(s.clone()));
        assert_eq!(
            s.to_string(),
            "S-1-5-21-3623811015-3361044348-30300820-1013"
        );
        assert!(Sid::from_bytes(&b[..b.len() - 1]).is_err());
        assert!(Sid::from_bytes(&[b.as_slice(), &[0]].concat()).is_err());
        assert!(Sid::from_bytes(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Sid::from_bytes(&[]).is_err());
    }

    #[test]
    fn well_known_sids_have_names() {
        assert_eq!(Sid::everyone().well_known_name(), Some("Everyone"));
        assert_eq!(Sid::authenticated_users().to_string(), "S-1-5-11");
        assert_eq!(
            sid("S-1-5-21-1-2-3-513").well_known_name(),
            Some("Domain Users")
        );
        assert_eq!(
            sid("S-1-5-21-1-2-3-519").well_known_name(),
            Some("Enterprise Admins")
        );
        assert_eq!(sid(ACCOUNT).well_known_name(), None);
    }

    #[test]
    fn guid_text_and_binary_forms_agree() {
        let g = Guid::parse_str("0e10c968-78fb-11d2-90d4-00c04f79dc55").expect("guid");
        assert_eq!(g, CERTIFICATE_ENROLLMENT);
        assert_eq!(g.to_string(), "0e10c968-78fb-11d2-90d4-00c04f79dc55");
        assert_eq!(Guid::parse_str("0e10c968-78fb-11d2-90d4-00c04f79dc5"), None);
        assert_eq!(
            Guid::parse_str("0e10c968-78fb-11d2-90d4-00c04f79dcxx"),
            None
        );
    }

    #[test]
    fn enroll_by_object_ace_for_a_group() {
        let sd = build_sd(&[
            (0x00, 0, 0x0002_0094, None, &Sid::authenticated_users()),
            (
                0x05,
                0,
                DS_CONTROL_ACCESS,
                Some(CERTIFICATE_ENROLLMENT),
                &sid(GROUP),
            ),
        ]);
        let dacl = parse_dacl(&sd).expect("dacl");
        let sids = [sid(ACCOUNT), sid(GROUP), Sid::authenticated_users()];
        assert_eq!(enroll(&dacl, &sids), Decision::Granted(Some(sid(GROUP))));
        assert_eq!(enroll(&dacl, &sids[..1]), Decision::NotGranted);
        assert!(write_rights(&dacl, &sids).is_empty());
    }

    #[test]
    fn control_access_without_object_type_and_full_control_grant_enroll() {
        for (ty, mask) in [
            (0x00, DS_CONTROL_ACCESS),
            (0x05, DS_CONTROL_ACCESS),
            (0x00, GENERIC_ALL),
            (0x00, DS_ALL),
        ] {
            let sd = build_sd(&[(ty, 0, mask, None, &sid(ACCOUNT))]);
            let dacl = parse_dacl(&sd).expect("dacl");
            assert_eq!(
                enroll(&dacl, &[sid(ACCOUNT)]),
                Decision::Granted(Some(sid(ACCOUNT))),
                "type {ty:#x} mask {mask:#x}"
            );
        }
    }

    #[test]
    fn another_extended_right_does_not_grant_enroll() {
        let autoenroll = Guid::parse_str("a05b8cc2-17bc-4802-a710-e7c15ab866a2").expect("guid");
        let sd = build_sd(&[(0x05, 0, DS_CONTROL_ACCESS, Some(autoenroll), &sid(ACCOUNT))]);
        let dacl = parse_dacl(&sd).expect("dacl");
        assert_eq!(enroll(&dacl, &[sid(ACCOUNT)]), Decision::NotGranted);
    }

    #[test]
    fn a_deny_before_the_allow_wins_and_inherit_only_aces_are_ignored() {
        let sd = build_sd(&[
            (
                0x06,
                0,
                DS_CONTROL_ACCESS,
                Some(CERTIFICATE_ENROLLMENT),
                &sid(ACCOUNT),
            ),
            (
                0x05,
                0,
                DS_CONTROL_ACCESS,
                Some(CERTIFICATE_ENROLLMENT),
                &sid(GROUP),
            ),
        ]);
        let dacl = parse_dacl(&sd).expect("dacl");
        let sids = [sid(ACCOUNT), sid(GROUP)];
        assert_eq!(enroll(&dacl, &sids), Decision::Denied(sid(ACCOUNT)));
        let sd = build_sd(&[
            (
                0x01,
                INHERIT_ONLY_ACE,
                DS_CONTROL_ACCESS,
                None,
                &sid(ACCOUNT),
            ),
            (0x00, 0, DS_CONTROL_ACCESS, None, &sid(GROUP)),
        ]);
        let dacl = parse_dacl(&sd).expect("dacl");
        assert_eq!(enroll(&dacl, &sids), Decision::Granted(Some(sid(GROUP))));
    }

    #[test]
    fn write_rights_are_found_with_the_granting_sid() {
        let sd = build_sd(&[
            (0x00, 0, WRITE_DAC | READ_CONTROL, None, &sid(ACCOUNT)),
            (0x00, 0, GENERIC_WRITE, None, &sid(GROUP)),
            // WriteProperty limited to one attribute is not "all properties".
            (
                0x05,
                0,
                DS_WRITE_PROP,
                Guid::parse_str("ea1dddc4-60ff-416e-8cc0-17cee534bce7"),
                &sid(ACCOUNT),
            ),
        ]);
        let dacl = parse_dacl(&sd).expect("dacl");
        let w = write_rights(&dacl, &[sid(ACCOUNT), sid(GROUP)]);
        assert_eq!(
            w,
            vec![
                ("WriteDacl", Some(sid(ACCOUNT))),
                ("WriteProperty (all properties)", Some(sid(GROUP)))
            ]
        );
        let full = parse_dacl(&build_sd(&[(0x00, 0, DS_ALL, None, &sid(GROUP))])).expect("dacl");
        assert_eq!(write_rights(&full, &[sid(GROUP)]).len(), 3);
    }

    #[test]
    fn a_descriptor_without_dacl_grants_everything() {
        let mut sd = vec![1, 0, 0x00, 0x80];
        sd.extend_from_slice(&[0; 16]);
        let dacl = parse_dacl(&sd).expect("sd");
        assert_eq!(dacl, Dacl::Null);
        assert_eq!(enroll(&dacl, &[]), Decision::Granted(None));
        assert_eq!(write_rights(&dacl, &[]).len(), 3);
    }

    #[test]
    fn unknown_ace_types_are_skipped() {
        let mut sd = build_sd(&[
            (0x00, 0, READ_CONTROL, None, &sid(ACCOUNT)),
            (0x00, 0, DS_CONTROL_ACCESS, None, &sid(GROUP)),
        ]);
        // Turn the first ACE into a system-audit ACE (0x02).
        sd[20 + 8] = 0x02;
        let dacl = parse_dacl(&sd).expect("dacl");
        let Dacl::Aces(aces) = &dacl else {
            panic!("null")
        };
        assert_eq!(aces.len(), 1);
        assert_eq!(aces[0].sid, sid(GROUP));
    }

    #[test]
    fn malformed_descriptors_are_errors_not_panics() {
        let good = build_sd(&[
            (
                0x05,
                0,
                DS_CONTROL_ACCESS,
                Some(CERTIFICATE_ENROLLMENT),
                &sid(GROUP),
            ),
            (0x00, 0, WRITE_DAC, None, &sid(ACCOUNT)),
        ]);
        assert!(parse_dacl(&good).is_ok());
        for len in 0..good.len() {
            assert!(parse_dacl(&good[..len]).is_err(), "truncated at {len}");
        }
        let mut bad = good.clone();
        bad[0] = 2;
        assert!(parse_dacl(&bad).unwrap_err().0.contains("revision"));
        let mut bad = good.clone();
        bad[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_dacl(&bad).is_err());
        let mut bad = good.clone();
        bad[20 + 8 + 2..20 + 8 + 4].copy_from_slice(&4u16.to_le_bytes());
        assert!(parse_dacl(&bad).unwrap_err().0.contains("claims 4 bytes"));
        let mut bad = good;
        bad[20 + 2..20 + 4].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(parse_dacl(&bad).is_err());
    }
}
