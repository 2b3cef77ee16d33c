//! NDR 2.0 (DCE 1.1 chapter 14, little-endian) for the constructs that
//! ICertPassage and the endpoint mapper need: primitive alignment, `[ref]`
//! and `[unique]` pointers with deferred referents, conformant(-varying)
//! arrays, `wchar_t*` strings and `CERTTRANSBLOB`.
//!
//! Pointer referents are *deferred*: the pointer (a non-zero referent id)
//! is written in place and its pointee after the enclosing top-level
//! construct. [`NdrWriter::defer`] queues a pointee, [`NdrWriter::flush`]
//! writes the queue; the reader mirrors this with the ids it returns.

/// Errors decoding NDR data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NdrError {
    /// Input ended before a field.
    #[error("NDR data truncated at offset {0}")]
    Truncated(usize),
    /// A conformance / variance value is impossible or above the allowed maximum.
    #[error("NDR array bounds invalid at offset {offset}: {detail}")]
    Bounds {
        /// Offset of the array header.
        offset: usize,
        /// What was wrong.
        detail: &'static str,
    },
    /// A string was not valid UTF-16 or lacked its terminator.
    #[error("invalid NDR string at offset {0}")]
    String(usize),
    /// A `[ref]` pointer was null or a value was otherwise invalid.
    #[error("invalid NDR value: {0}")]
    Invalid(&'static str),
}

/// A pointee queued for deferred marshalling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Referent {
    /// Conformant byte array (`[size_is(n)] byte*`): max_count, octets.
    Bytes(Vec<u8>),
    /// Conformant varying string (`[string] wchar_t*`) with terminating NUL.
    WString(String),
    /// A `twr_t` (endpoint mapper tower): max_count, tower_length, octets.
    Tower(Vec<u8>),
    /// A 16-octet UUID.
    Uuid([u8; 16]),
}

/// First referent id Windows uses; following ids step by 4.
pub const FIRST_REFERENT_ID: u32 = 0x0002_0000;

/// NDR encoder.
#[derive(Debug)]
pub struct NdrWriter {
    buf: Vec<u8>,
    deferred: Vec<Referent>,
    next_ref: u32,
}

impl Default for NdrWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl NdrWriter {
    /// Empty writer.
    pub fn new() -> Self {
        NdrWriter {
            buf: Vec::new(),
            deferred: Vec::new(),
            next_ref: FIRST_REFERENT_ID,
        }
    }

    /// Pads with zeros to a multiple of `n` (relative to the stub start).
    pub fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }

    /// Writes an aligned `u16`.
    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes an aligned `u32` (DWORD, ULONG, error_status_t, HRESULT).
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes an aligned `u64` (hyper: OXID, OID, SETID).
    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a UUID / GUID (aligned to 4, mixed-endian wire form).
    pub fn uuid(&mut self, u: &crate::uuid::Uuid) {
        self.align(4);
        self.buf.extend_from_slice(&u.to_wire());
    }

    /// Octets written so far (deferred pointees excluded).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes a `[string, unique] wchar_t*` in place: referent id and the
    /// conformant varying string right after it (top-level parameter), or 0.
    pub fn unique_wstring(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                let id = self.next_ref;
                self.next_ref = self.next_ref.wrapping_add(4);
                self.u32(id);
                self.referent(&Referent::WString(s.to_owned()));
            }
            None => self.u32(0),
        }
    }

    /// Allocates a fresh referent id (for pointers whose pointee the caller writes itself).
    pub fn referent_id(&mut self) -> u32 {
        let id = self.next_ref;
        self.next_ref = self.next_ref.wrapping_add(4);
        id
    }

    /// Writes raw octets (no alignment).
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Writes a `[unique]`/`[ptr]` pointer: a fresh referent id and queues the
    /// pointee, or 0 for `None`.
    pub fn pointer(&mut self, referent: Option<Referent>) {
        match referent {
            Some(r) => {
                let id = self.next_ref;
                self.next_ref = self.next_ref.wrapping_add(4);
                self.u32(id);
                self.deferred.push(r);
            }
            None => self.u32(0),
        }
    }

    /// Writes every queued pointee in order.
    pub fn flush(&mut self) {
        let q = std::mem::take(&mut self.deferred);
        for r in q {
            self.referent(&r);
        }
    }

    /// Writes a pointee in place (used for top-level `[ref]` data and by [`flush`](Self::flush)).
    pub fn referent(&mut self, r: &Referent) {
        match r {
            Referent::Bytes(b) => {
                self.u32(len32(b.len()));
                self.raw(b);
            }
            Referent::WString(s) => {
                let mut w: Vec<u16> = s.encode_utf16().collect();
                w.push(0);
                let n = len32(w.len());
                self.u32(n);
                self.u32(0);
                self.u32(n);
                for c in w {
                    self.buf.extend_from_slice(&c.to_le_bytes());
                }
            }
            Referent::Tower(t) => {
                let n = len32(t.len());
                self.u32(n);
                self.u32(n);
                self.raw(t);
            }
            Referent::Uuid(u) => {
                self.align(4);
                self.raw(u);
            }
        }
    }

    /// Writes a `CERTTRANSBLOB` (`cb`, unique pointer `pb`) and its deferred
    /// conformant byte array; an empty blob is `cb = 0, pb = NULL`.
    pub fn cert_trans_blob(&mut self, data: &[u8]) {
        self.u32(len32(data.len()));
        if data.is_empty() {
            self.pointer(None);
        } else {
            self.pointer(Some(Referent::Bytes(data.to_vec())));
        }
        self.flush();
    }

    /// The encoded octets.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.flush();
        self.buf
    }
}

fn len32(n: usize) -> u32 {
    // Stub sizes are bounded far below 4 GiB by the PDU layer.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// NDR decoder over a complete stub.
#[derive(Debug)]
pub struct NdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> NdrReader<'a> {
    /// Reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        NdrReader { buf, pos: 0 }
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Octets left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Skips to a multiple of `n`.
    pub fn align(&mut self, n: usize) -> Result<(), NdrError> {
        let pad = (n - self.pos % n) % n;
        self.take(pad).map(|_| ())
    }

    /// Takes `n` raw octets.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], NdrError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(NdrError::Truncated(self.pos))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(NdrError::Truncated(self.pos))?;
        self.pos = end;
        Ok(s)
    }

    /// Reads an aligned `u16`.
    pub fn u16(&mut self) -> Result<u16, NdrError> {
        self.align(2)?;
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    /// Reads an aligned `u32`.
    pub fn u32(&mut self) -> Result<u32, NdrError> {
        self.align(4)?;
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads an aligned `u64`.
    pub fn u64(&mut self) -> Result<u64, NdrError> {
        self.align(8)?;
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a UUID / GUID (aligned to 4).
    pub fn uuid(&mut self) -> Result<crate::uuid::Uuid, NdrError> {
        self.align(4)?;
        let s = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(s);
        Ok(crate::uuid::Uuid::from_wire(&a))
    }

    /// Reads a `[string, unique] wchar_t*` top-level parameter (pointer and
    /// string in place); `None` for NULL.
    pub fn unique_wstring(&mut self, limit_chars: usize) -> Result<Option<String>, NdrError> {
        if self.pointer()? == 0 {
            return Ok(None);
        }
        self.conformant_varying_wstring(limit_chars).map(Some)
    }

    /// Reads a pointer's referent id (0 = NULL).
    pub fn pointer(&mut self) -> Result<u32, NdrError> {
        self.u32()
    }

    /// Reads a conformant byte array (max_count then octets), refusing more than `limit` octets.
    pub fn conformant_bytes(&mut self, limit: usize) -> Result<Vec<u8>, NdrError> {
        let off = self.pos;
        let n = self.u32()? as usize;
        if n > limit {
            return Err(NdrError::Bounds {
                offset: off,
                detail: "array larger than allowed",
            });
        }
        Ok(self.take(n)?.to_vec())
    }

    /// Reads a conformant varying `wchar_t` string; the terminating NUL is required and dropped.
    pub fn conformant_varying_wstring(&mut self, limit_chars: usize) -> Result<String, NdrError> {
        let off = self.pos;
        let max = self.u32()? as usize;
        let offset = self.u32()? as usize;
        let actual = self.u32()? as usize;
        if offset != 0 || actual > max || actual > limit_chars {
            return Err(NdrError::Bounds {
                offset: off,
                detail: "string bounds",
            });
        }
        let raw = self.take(actual.checked_mul(2).ok_or(NdrError::Truncated(self.pos))?)?;
        let w: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        match w.split_last() {
            Some((0, body)) => String::from_utf16(body).map_err(|_| NdrError::String(off)),
            _ => Err(NdrError::String(off)),
        }
    }

    /// Reads a `twr_t` pointee (max_count, tower_length, octets).
    pub fn tower(&mut self, limit: usize) -> Result<Vec<u8>, NdrError> {
        let off = self.pos;
        let max = self.u32()? as usize;
        let len = self.u32()? as usize;
        if len > max || max > limit {
            return Err(NdrError::Bounds {
                offset: off,
                detail: "tower length",
            });
        }
        let t = self.take(max)?;
        Ok(t[..len].to_vec())
    }

    /// Reads a `CERTTRANSBLOB` and its deferred array. `limit` caps `cb`.
    pub fn cert_trans_blob(&mut self, limit: usize) -> Result<Vec<u8>, NdrError> {
        let off = self.pos;
        let cb = self.u32()? as usize;
        let ptr = self.pointer()?;
        if ptr == 0 {
            return if cb == 0 {
                Ok(Vec::new())
            } else {
                Err(NdrError::Bounds {
                    offset: off,
                    detail: "cb > 0 with NULL pb",
                })
            };
        }
        let data = self.conformant_bytes(limit)?;
        if cb > data.len() {
            return Err(NdrError::Bounds {
                offset: off,
                detail: "cb exceeds the array",
            });
        }
        let mut data = data;
        data.truncate(cb);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_wstring_vector() {
        let mut w = NdrWriter::new();
        w.pointer(Some(Referent::WString("CA".into())));
        w.flush();
        w.u32(7);
        let b = w.into_bytes();
        assert_eq!(
            b,
            [
                0x00, 0x00, 0x02, 0x00, // referent id
                0x03, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, // max, offset, actual (incl. NUL)
                b'C', 0, b'A', 0, 0, 0, // UTF-16LE + NUL
                0, 0, // align 4
                7, 0, 0, 0
            ]
        );
        let mut r = NdrReader::new(&b);
        assert_eq!(r.pointer().unwrap(), 0x20000);
        assert_eq!(r.conformant_varying_wstring(100).unwrap(), "CA");
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn cert_trans_blob_vectors() {
        let mut w = NdrWriter::new();
        w.cert_trans_blob(&[0xaa, 0xbb, 0xcc]);
        w.cert_trans_blob(&[]);
        w.u32(0x11);
        let b = w.into_bytes();
        assert_eq!(
            b,
            [
                3, 0, 0, 0, 0x00, 0x00, 0x02, 0x00, 3, 0, 0, 0, 0xaa, 0xbb, 0xcc,
                0, // blob 1 + align
                0, 0, 0, 0, 0, 0, 0, 0, // empty blob
                0x11, 0, 0, 0
            ]
        );
        let mut r = NdrReader::new(&b);
        assert_eq!(r.cert_trans_blob(16).unwrap(), vec![0xaa, 0xbb, 0xcc]);
        assert_eq!(r.cert_trans_blob(16).unwrap(), Vec::<u8>::new());
        assert_eq!(r.u32().unwrap(), 0x11);
    }

    #[test]
    fn malformed_is_error() {
        // cb 5 with NULL pointer
        let mut r = NdrReader::new(&[5, 0, 0, 0, 0, 0, 0, 0]);
        assert!(r.cert_trans_blob(16).is_err());
        // array bigger than limit
        let mut r = NdrReader::new(&[5, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]);
        assert!(r.cert_trans_blob(16).is_err());
        // string without terminator
        let mut r = NdrReader::new(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'A', 0]);
        assert_eq!(r.conformant_varying_wstring(10), Err(NdrError::String(0)));
        // actual > max
        let mut r = NdrReader::new(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'A', 0, 0, 0]);
        assert!(r.conformant_varying_wstring(10).is_err());
        // huge count does not allocate or panic
        let mut r = NdrReader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(r.conformant_varying_wstring(usize::MAX).is_err());
        let mut r = NdrReader::new(&[1, 2]);
        assert_eq!(r.u32(), Err(NdrError::Truncated(0)));
    }

    #[test]
    fn tower_roundtrip() {
        let mut w = NdrWriter::new();
        w.pointer(Some(Referent::Tower(vec![1, 2, 3, 4, 5])));
        w.flush();
        let b = w.into_bytes();
        assert_eq!(b, [0, 0, 2, 0, 5, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
        let mut r = NdrReader::new(&b);
        assert_ne!(r.pointer().unwrap(), 0);
        assert_eq!(r.tower(100).unwrap(), vec![1, 2, 3, 4, 5]);
    }
}
