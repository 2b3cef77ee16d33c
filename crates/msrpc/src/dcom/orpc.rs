//! `ORPCTHIS` (first in-parameter of every DCOM call) and `ORPCTHAT` (first
//! out-parameter), MS-DCOM 2.2.13.
//!
//! ```text
//! typedef struct tagORPC_EXTENT { GUID id; unsigned long size;
//!     [size_is((size+7)&~7)] byte data[]; } ORPC_EXTENT;
//! typedef struct tagORPC_EXTENT_ARRAY { unsigned long size; unsigned long reserved;
//!     [size_is((size+1)&~1,), unique] ORPC_EXTENT** extent; } ORPC_EXTENT_ARRAY;
//! typedef struct tagORPCTHIS { COMVERSION version; unsigned long flags;
//!     unsigned long reserved1; CID cid; [unique] ORPC_EXTENT_ARRAY* extensions; } ORPCTHIS;
//! typedef struct tagORPCTHAT { unsigned long flags;
//!     [unique] ORPC_EXTENT_ARRAY* extensions; } ORPCTHAT;
//! ```
//!
//! Both structures are the first parameter, so the referents of their
//! embedded pointers follow them directly; callers continue with the same
//! reader / writer so that NDR alignment stays relative to the stub start.

use super::{MAX_EXTENTS, MAX_EXTENT_DATA};
use crate::ndr::{NdrError, NdrReader, NdrWriter};
use crate::uuid::Uuid;

/// COM version sent by this implementation (5.7, as Windows Server 2008+).
pub const COM_VERSION: (u16, u16) = (5, 7);

/// One ORPC extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Extension id.
    pub id: Uuid,
    /// Payload (`size` octets; the wire array is padded to 8).
    pub data: Vec<u8>,
}

/// `ORPCTHIS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrpcThis {
    /// COM version of the caller.
    pub version: (u16, u16),
    /// `ORPCF_*` flags.
    pub flags: u32,
    /// Causality id.
    pub cid: Uuid,
    /// Extensions (Windows sends e.g. the causality/context extension).
    pub extensions: Vec<Extent>,
}

impl OrpcThis {
    /// A header for a new logical call (fresh causality id, no extensions).
    pub fn new() -> Self {
        OrpcThis {
            version: COM_VERSION,
            flags: 0,
            cid: super::fresh_uuid(),
            extensions: Vec::new(),
        }
    }

    /// Writes the structure and its extensions.
    pub fn write(&self, w: &mut NdrWriter) {
        w.u16(self.version.0);
        w.u16(self.version.1);
        w.u32(self.flags);
        w.u32(0);
        w.uuid(&self.cid);
        write_extensions(w, &self.extensions);
    }

    /// Reads the structure and its extensions.
    pub fn read(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let major = r.u16()?;
        let minor = r.u16()?;
        let flags = r.u32()?;
        let _reserved = r.u32()?;
        let cid = r.uuid()?;
        let extensions = read_extensions(r)?;
        if major != 5 {
            return Err(NdrError::Invalid("ORPCTHIS: unsupported COM major version"));
        }
        Ok(OrpcThis {
            version: (major, minor),
            flags,
            cid,
            extensions,
        })
    }
}

impl Default for OrpcThis {
    fn default() -> Self {
        Self::new()
    }
}

/// `ORPCTHAT`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OrpcThat {
    /// Flags (0).
    pub flags: u32,
    /// Extensions (Windows may return error information here).
    pub extensions: Vec<Extent>,
}

impl OrpcThat {
    /// Writes the structure and its extensions.
    pub fn write(&self, w: &mut NdrWriter) {
        w.u32(self.flags);
        write_extensions(w, &self.extensions);
    }

    /// Reads the structure and its extensions.
    pub fn read(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let flags = r.u32()?;
        let extensions = read_extensions(r)?;
        Ok(OrpcThat { flags, extensions })
    }
}

fn write_extensions(w: &mut NdrWriter, ext: &[Extent]) {
    if ext.is_empty() {
        w.u32(0);
        return;
    }
    let id = w.referent_id();
    w.u32(id);
    let n = u32::try_from(ext.len()).unwrap_or(u32::MAX);
    w.u32(n);
    w.u32(0);
    let arr = w.referent_id();
    w.u32(arr);
    // Conformant array of unique pointers, size rounded up to even.
    let cap = (ext.len() + 1) & !1;
    w.u32(u32::try_from(cap).unwrap_or(u32::MAX));
    for i in 0..cap {
        if i < ext.len() {
            let id = w.referent_id();
            w.u32(id);
        } else {
            w.u32(0);
        }
    }
    for e in ext {
        let padded = (e.data.len() + 7) & !7;
        w.u32(u32::try_from(padded).unwrap_or(u32::MAX));
        w.uuid(&e.id);
        w.u32(u32::try_from(e.data.len()).unwrap_or(u32::MAX));
        w.raw(&e.data);
        w.raw(&vec![0; padded - e.data.len()]);
    }
}

fn read_extensions(r: &mut NdrReader<'_>) -> Result<Vec<Extent>, NdrError> {
    if r.pointer()? == 0 {
        return Ok(Vec::new());
    }
    let off = r.position();
    let size = r.u32()? as usize;
    let _reserved = r.u32()?;
    let arr = r.pointer()?;
    if size > MAX_EXTENTS {
        return Err(NdrError::Bounds {
            offset: off,
            detail: "too many ORPC extents",
        });
    }
    if arr == 0 {
        return if size == 0 {
            Ok(Vec::new())
        } else {
            Err(NdrError::Invalid("ORPC extents counted but absent"))
        };
    }
    let off = r.position();
    let max = r.u32()? as usize;
    if max < size || max > MAX_EXTENTS + 1 {
        return Err(NdrError::Bounds {
            offset: off,
            detail: "ORPC extent array bounds",
        });
    }
    let mut present = Vec::with_capacity(max);
    for _ in 0..max {
        present.push(r.pointer()? != 0);
    }
    let mut out = Vec::new();
    for p in present {
        if !p {
            continue;
        }
        let off = r.position();
        let max = r.u32()? as usize;
        let id = r.uuid()?;
        let size = r.u32()? as usize;
        if max > MAX_EXTENT_DATA || size > max {
            return Err(NdrError::Bounds {
                offset: off,
                detail: "ORPC extent size",
            });
        }
        let data = r.take(max)?;
        out.push(Extent {
            id,
            data: data[..size].to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orpcthis_without_extensions_is_32_octets() {
        let t = OrpcThis {
            version: (5, 7),
            flags: 0,
            cid: Uuid::from_u128(1),
            extensions: vec![],
        };
        let mut w = NdrWriter::new();
        t.write(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), 32);
        assert_eq!(&b[..4], &[5, 0, 7, 0]);
        let mut r = NdrReader::new(&b);
        assert_eq!(OrpcThis::read(&mut r).unwrap(), t);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn extensions_roundtrip_and_following_parameter() {
        let t = OrpcThis {
            version: (5, 7),
            flags: 1,
            cid: Uuid::from_u128(7),
            extensions: vec![
                Extent {
                    id: Uuid::from_u128(9),
                    data: vec![1, 2, 3],
                },
                Extent {
                    id: Uuid::from_u128(10),
                    data: vec![],
                },
                Extent {
                    id: Uuid::from_u128(11),
                    data: vec![5; 9],
                },
            ],
        };
        let mut w = NdrWriter::new();
        t.write(&mut w);
        w.u32(0xdead_beef);
        let b = w.into_bytes();
        let mut r = NdrReader::new(&b);
        assert_eq!(OrpcThis::read(&mut r).unwrap(), t);
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        let that = OrpcThat {
            flags: 0,
            extensions: t.extensions.clone(),
        };
        let mut w = NdrWriter::new();
        that.write(&mut w);
        let b = w.into_bytes();
        assert_eq!(OrpcThat::read(&mut NdrReader::new(&b)).unwrap(), that);
    }

    #[test]
    fn hostile_counts_are_refused() {
        // extensions pointer, size = 0xffffffff
        let mut b = vec![5, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 0, 2, 0]);
        assert!(OrpcThis::read(&mut NdrReader::new(&b)).is_err());
        // one extent with a 4 GiB payload
        let mut w = NdrWriter::new();
        w.u32(0);
        w.u32(0x20000);
        w.u32(1);
        w.u32(0);
        w.u32(0x20004);
        w.u32(2);
        w.u32(0x20008);
        w.u32(0);
        w.u32(0xffff_fff8);
        let b = w.into_bytes();
        assert!(OrpcThat::read(&mut NdrReader::new(&b)).is_err());
    }
}
