//! `OBJREF` (MS-DCOM 2.2.18), `STDOBJREF`, `DUALSTRINGARRAY` (2.2.19) and
//! the NDR `MInterfacePointer` (2.2.14) that carries an `OBJREF`.
//!
//! An `OBJREF` is a little-endian octet string inside `MInterfacePointer.abData`:
//!
//! ```text
//! signature 'MEOW' | flags | iid
//!   standard: STDOBJREF (flags, cPublicRefs, oxid, oid, ipid) | DUALSTRINGARRAY (packed)
//!   custom:   clsid | cbExtension | ObjectReferenceSize | pObjectData
//! ```

use super::{MAX_OBJREF, MAX_STRING_ARRAY, TOWERID_NCACN_IP_TCP};
use crate::ndr::{NdrError, NdrReader, NdrWriter};
use crate::uuid::Uuid;

/// `OBJREF.signature` ("MEOW").
pub const OBJREF_SIGNATURE: u32 = 0x574f_454d;
/// `FLAGS_OBJREF_STANDARD`.
pub const FLAGS_OBJREF_STANDARD: u32 = 1;
/// `FLAGS_OBJREF_HANDLER`.
pub const FLAGS_OBJREF_HANDLER: u32 = 2;
/// `FLAGS_OBJREF_CUSTOM`.
pub const FLAGS_OBJREF_CUSTOM: u32 = 4;
/// `SORF_NOPING`: the client need not ping the object (no garbage collection).
pub const SORF_NOPING: u32 = 0x1000;

/// `STDOBJREF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StdObjRef {
    /// `SORF_*` flags.
    pub flags: u32,
    /// Public references granted.
    pub public_refs: u32,
    /// Object exporter id.
    pub oxid: u64,
    /// Object id.
    pub oid: u64,
    /// Interface pointer id (the object UUID of calls on it).
    pub ipid: Uuid,
}

impl StdObjRef {
    /// Packed size (no NDR padding): 40 octets.
    pub const PACKED_LEN: usize = 40;

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.public_refs.to_le_bytes());
        out.extend_from_slice(&self.oxid.to_le_bytes());
        out.extend_from_slice(&self.oid.to_le_bytes());
        out.extend_from_slice(&self.ipid.to_wire());
    }

    fn get(b: &[u8]) -> Result<Self, NdrError> {
        let b = b
            .get(..Self::PACKED_LEN)
            .ok_or(NdrError::Truncated(b.len()))?;
        let mut ipid = [0u8; 16];
        ipid.copy_from_slice(&b[24..40]);
        Ok(StdObjRef {
            flags: le32(&b[0..4]),
            public_refs: le32(&b[4..8]),
            oxid: le64(&b[8..16]),
            oid: le64(&b[16..24]),
            ipid: Uuid::from_wire(&ipid),
        })
    }

    /// Writes the NDR form (aligned to 8: it holds hypers).
    pub fn write(&self, w: &mut NdrWriter) {
        w.align(8);
        w.u32(self.flags);
        w.u32(self.public_refs);
        w.u64(self.oxid);
        w.u64(self.oid);
        w.uuid(&self.ipid);
    }

    /// Reads the NDR form.
    pub fn read(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        r.align(8)?;
        Ok(StdObjRef {
            flags: r.u32()?,
            public_refs: r.u32()?,
            oxid: r.u64()?,
            oid: r.u64()?,
            ipid: r.uuid()?,
        })
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn uuid_at(b: &[u8], at: usize) -> Result<Uuid, NdrError> {
    let s = b.get(at..at + 16).ok_or(NdrError::Truncated(at))?;
    let mut a = [0u8; 16];
    a.copy_from_slice(s);
    Ok(Uuid::from_wire(&a))
}

/// A string binding: protocol tower id and network address (`host[port]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringBinding {
    /// Tower id (7 = `ncacn_ip_tcp`).
    pub tower_id: u16,
    /// Network address, e.g. `CA01[49674]` or `10.0.0.5[49674]`.
    pub network_addr: String,
}

impl StringBinding {
    /// A `ncacn_ip_tcp` binding `host[port]`.
    pub fn tcp(host: &str, port: u16) -> Self {
        StringBinding {
            tower_id: TOWERID_NCACN_IP_TCP,
            network_addr: format!("{host}[{port}]"),
        }
    }

    /// Host and port of a `ncacn_ip_tcp` binding (`None` for other towers or
    /// a binding without a port).
    pub fn tcp_host_port(&self) -> Option<(&str, u16)> {
        if self.tower_id != TOWERID_NCACN_IP_TCP {
            return None;
        }
        let (host, rest) = self.network_addr.split_once('[')?;
        let port = rest.strip_suffix(']')?.parse().ok()?;
        Some((host, port))
    }
}

/// A security binding: authentication service and principal name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityBinding {
    /// `RPC_C_AUTHN_*`.
    pub authn_svc: u16,
    /// Reserved (0xffff when no authorization service).
    pub reserved: u16,
    /// Principal name (may be empty).
    pub princ_name: String,
}

/// `DUALSTRINGARRAY`: the exporter's string and security bindings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DualStringArray {
    /// Network addresses of the object exporter.
    pub string_bindings: Vec<StringBinding>,
    /// Accepted authentication services.
    pub security_bindings: Vec<SecurityBinding>,
}

impl DualStringArray {
    /// The `aStringArray` units and `wSecurityOffset`.
    pub fn to_words(&self) -> (Vec<u16>, u16) {
        let mut v: Vec<u16> = Vec::new();
        for b in &self.string_bindings {
            v.push(b.tower_id);
            v.extend(b.network_addr.encode_utf16());
            v.push(0);
        }
        if self.string_bindings.is_empty() {
            v.push(0);
        }
        v.push(0);
        let sec = u16::try_from(v.len()).unwrap_or(u16::MAX);
        for s in &self.security_bindings {
            v.push(s.authn_svc);
            v.push(s.reserved);
            v.extend(s.princ_name.encode_utf16());
            v.push(0);
        }
        if self.security_bindings.is_empty() {
            v.push(0);
        }
        v.push(0);
        (v, sec)
    }

    /// Parses `aStringArray` with its security offset.
    pub fn from_words(w: &[u16], security_offset: u16) -> Result<Self, NdrError> {
        let sec = usize::from(security_offset);
        if sec > w.len() {
            return Err(NdrError::Invalid("wSecurityOffset beyond the array"));
        }
        let strings = &w[..sec];
        let mut string_bindings = Vec::new();
        let mut i = 0;
        while let Some(&tower) = strings.get(i) {
            if tower == 0 {
                break;
            }
            i += 1;
            let (s, next) = wstr_at(strings, i)?;
            string_bindings.push(StringBinding {
                tower_id: tower,
                network_addr: s,
            });
            i = next;
        }
        let secs = &w[sec..];
        let mut security_bindings = Vec::new();
        let mut i = 0;
        while let Some(&svc) = secs.get(i) {
            if svc == 0 {
                break;
            }
            let reserved = *secs
                .get(i + 1)
                .ok_or(NdrError::Invalid("truncated security binding"))?;
            let (s, next) = wstr_at(secs, i + 2)?;
            security_bindings.push(SecurityBinding {
                authn_svc: svc,
                reserved,
                princ_name: s,
            });
            i = next;
        }
        Ok(DualStringArray {
            string_bindings,
            security_bindings,
        })
    }

    /// Writes the NDR conformant structure (`max_count`, `wNumEntries`,
    /// `wSecurityOffset`, units).
    pub fn write(&self, w: &mut NdrWriter) {
        let (words, sec) = self.to_words();
        let n = u16::try_from(words.len()).unwrap_or(u16::MAX);
        w.u32(u32::from(n));
        w.u16(n);
        w.u16(sec);
        for x in words.iter().take(usize::from(n)) {
            w.u16(*x);
        }
    }

    /// Reads the NDR conformant structure.
    pub fn read(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let off = r.position();
        let max = r.u32()? as usize;
        let num = usize::from(r.u16()?);
        let sec = r.u16()?;
        if max > MAX_STRING_ARRAY || num != max {
            return Err(NdrError::Bounds {
                offset: off,
                detail: "DUALSTRINGARRAY size",
            });
        }
        let raw = r.take(num * 2)?;
        let words: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Self::from_words(&words, sec)
    }

    fn put_packed(&self, out: &mut Vec<u8>) {
        let (words, sec) = self.to_words();
        let n = u16::try_from(words.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&sec.to_le_bytes());
        for x in words.iter().take(usize::from(n)) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn get_packed(b: &[u8]) -> Result<Self, NdrError> {
        let h = b.get(..4).ok_or(NdrError::Truncated(0))?;
        let num = usize::from(u16::from_le_bytes([h[0], h[1]]));
        let sec = u16::from_le_bytes([h[2], h[3]]);
        if num > MAX_STRING_ARRAY {
            return Err(NdrError::Invalid("DUALSTRINGARRAY too large"));
        }
        let raw = b.get(4..4 + num * 2).ok_or(NdrError::Truncated(4))?;
        let words: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Self::from_words(&words, sec)
    }
}

fn wstr_at(w: &[u16], start: usize) -> Result<(String, usize), NdrError> {
    let rest = w
        .get(start..)
        .ok_or(NdrError::Invalid("truncated binding"))?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or(NdrError::Invalid("binding string without terminator"))?;
    let s = String::from_utf16(&rest[..end])
        .map_err(|_| NdrError::Invalid("binding string is not UTF-16"))?;
    Ok((s, start + end + 1))
}

/// An `OBJREF`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjRef {
    /// `OBJREF_STANDARD`: a marshaled interface pointer.
    Standard {
        /// Interface id.
        iid: Uuid,
        /// Standard object reference.
        std: StdObjRef,
        /// Resolver address (may be empty).
        resolver: DualStringArray,
    },
    /// `OBJREF_CUSTOM`: custom-marshaled data (activation properties).
    Custom {
        /// Interface id.
        iid: Uuid,
        /// Unmarshaler class.
        clsid: Uuid,
        /// `pObjectData`.
        data: Vec<u8>,
    },
}

impl ObjRef {
    /// Octets of the `OBJREF`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&OBJREF_SIGNATURE.to_le_bytes());
        match self {
            ObjRef::Standard { iid, std, resolver } => {
                out.extend_from_slice(&FLAGS_OBJREF_STANDARD.to_le_bytes());
                out.extend_from_slice(&iid.to_wire());
                std.put(&mut out);
                resolver.put_packed(&mut out);
            }
            ObjRef::Custom { iid, clsid, data } => {
                out.extend_from_slice(&FLAGS_OBJREF_CUSTOM.to_le_bytes());
                out.extend_from_slice(&iid.to_wire());
                out.extend_from_slice(&clsid.to_wire());
                out.extend_from_slice(&0u32.to_le_bytes());
                // As Windows and impacket: the data size plus 8.
                let size = u32::try_from(data.len() + 8).unwrap_or(u32::MAX);
                out.extend_from_slice(&size.to_le_bytes());
                out.extend_from_slice(data);
            }
        }
        out
    }

    /// Parses an `OBJREF` (standard, handler — treated as standard — or custom).
    pub fn decode(b: &[u8]) -> Result<Self, NdrError> {
        if b.len() > MAX_OBJREF {
            return Err(NdrError::Invalid("OBJREF larger than allowed"));
        }
        let h = b.get(..24).ok_or(NdrError::Truncated(b.len()))?;
        if le32(&h[0..4]) != OBJREF_SIGNATURE {
            return Err(NdrError::Invalid("OBJREF without the MEOW signature"));
        }
        let flags = le32(&h[4..8]);
        let iid = uuid_at(b, 8)?;
        match flags {
            FLAGS_OBJREF_STANDARD | FLAGS_OBJREF_HANDLER => {
                let std = StdObjRef::get(&b[24..])?;
                let mut at = 24 + StdObjRef::PACKED_LEN;
                if flags == FLAGS_OBJREF_HANDLER {
                    at += 16;
                }
                let resolver = match b.get(at..) {
                    Some(rest) if rest.len() >= 4 => DualStringArray::get_packed(rest)?,
                    _ => DualStringArray::default(),
                };
                Ok(ObjRef::Standard { iid, std, resolver })
            }
            FLAGS_OBJREF_CUSTOM => {
                let clsid = uuid_at(b, 24)?;
                let rest = b.get(48..).ok_or(NdrError::Truncated(b.len()))?;
                Ok(ObjRef::Custom {
                    iid,
                    clsid,
                    data: rest.to_vec(),
                })
            }
            _ => Err(NdrError::Invalid("unsupported OBJREF type")),
        }
    }
}

/// Writes a `[unique] MInterfacePointer*` parameter with its pointee in
/// place (`ulCntData` conformance, `ulCntData`, octets), or NULL.
pub fn write_interface_pointer(w: &mut NdrWriter, data: Option<&[u8]>) {
    match data {
        None => w.u32(0),
        Some(d) => {
            let id = w.referent_id();
            w.u32(id);
            write_interface_data(w, d);
        }
    }
}

/// Writes an `MInterfacePointer` pointee (conformant structure).
pub fn write_interface_data(w: &mut NdrWriter, d: &[u8]) {
    let n = u32::try_from(d.len()).unwrap_or(u32::MAX);
    w.u32(n);
    w.u32(n);
    w.raw(d);
}

/// Reads a `[unique] MInterfacePointer*` parameter; `None` for NULL.
pub fn read_interface_pointer(r: &mut NdrReader<'_>) -> Result<Option<Vec<u8>>, NdrError> {
    if r.pointer()? == 0 {
        return Ok(None);
    }
    read_interface_data(r).map(Some)
}

/// Reads an `MInterfacePointer` pointee, at most [`MAX_OBJREF`] octets.
pub fn read_interface_data(r: &mut NdrReader<'_>) -> Result<Vec<u8>, NdrError> {
    let off = r.position();
    let max = r.u32()? as usize;
    let cnt = r.u32()? as usize;
    if max > MAX_OBJREF || cnt != max {
        return Err(NdrError::Bounds {
            offset: off,
            detail: "MInterfacePointer size",
        });
    }
    Ok(r.take(cnt)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsa() -> DualStringArray {
        DualStringArray {
            string_bindings: vec![
                StringBinding::tcp("CA01", 49674),
                StringBinding::tcp("10.0.0.5", 49674),
            ],
            security_bindings: vec![SecurityBinding {
                authn_svc: 10,
                reserved: 0xffff,
                princ_name: String::new(),
            }],
        }
    }

    #[test]
    fn standard_objref_roundtrip() {
        let o = ObjRef::Standard {
            iid: Uuid::from_u128(0xd99e6e71_fc88_11d0_b498_00a0c90312f3),
            std: StdObjRef {
                flags: SORF_NOPING,
                public_refs: 5,
                oxid: 0x1122_3344_5566_7788,
                oid: 42,
                ipid: Uuid::from_u128(0xabcdef),
            },
            resolver: dsa(),
        };
        let b = o.encode();
        assert_eq!(&b[..4], b"MEOW");
        assert_eq!(ObjRef::decode(&b).unwrap(), o);
        let ObjRef::Standard { resolver, .. } = o else {
            unreachable!()
        };
        assert_eq!(
            resolver.string_bindings[1].tcp_host_port(),
            Some(("10.0.0.5", 49674))
        );
    }

    #[test]
    fn dualstringarray_words_and_ndr() {
        let d = dsa();
        let (w, sec) = d.to_words();
        // "CA01[49674]": 11 units + tower + NUL = 13; "10.0.0.5[49674]": 17; terminator.
        assert_eq!(sec, 13 + 17 + 1);
        assert_eq!(DualStringArray::from_words(&w, sec).unwrap(), d);
        let mut nw = NdrWriter::new();
        d.write(&mut nw);
        let b = nw.into_bytes();
        assert_eq!(DualStringArray::read(&mut NdrReader::new(&b)).unwrap(), d);
        let empty = DualStringArray::default();
        let (w, sec) = empty.to_words();
        assert_eq!((w.as_slice(), sec), (&[0u16, 0, 0, 0][..], 2));
        assert_eq!(DualStringArray::from_words(&w, sec).unwrap(), empty);
    }

    #[test]
    fn malformed_objrefs_are_errors() {
        assert!(ObjRef::decode(b"MEOW").is_err());
        let mut b = ObjRef::Custom {
            iid: Uuid::NIL,
            clsid: Uuid::NIL,
            data: vec![1, 2],
        }
        .encode();
        b[4] = 8; // extended: unsupported
        assert!(ObjRef::decode(&b).is_err());
        // unterminated binding string
        assert!(DualStringArray::from_words(&[7, b'a' as u16], 2).is_err());
        // security offset beyond the array
        assert!(DualStringArray::from_words(&[0, 0], 9).is_err());
        // MInterfacePointer with a huge count does not allocate
        let mut r = NdrReader::new(&[0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f]);
        assert!(read_interface_data(&mut r).is_err());
    }
}
