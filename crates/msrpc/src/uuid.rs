//! DCE UUIDs and presentation syntax identifiers as they travel in NDR.
//!
//! A DCE UUID is written in "mixed endian" on a little-endian (NDR `drep`
//! 0x10) wire: the three leading integer fields (`time_low`, `time_mid`,
//! `time_hi_and_version`) are little-endian, the last eight octets are copied
//! as they appear in the string form.

use std::fmt;

/// A DCE/RPC UUID (RFC 4122 layout), kept in its canonical string order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// The nil UUID.
    pub const NIL: Uuid = Uuid([0; 16]);

    /// Builds a UUID from its 128-bit value as written in string form,
    /// e.g. `Uuid::from_u128(0x91ae6020_9e3c_11cf_8d7c_00aa00c091be)`.
    pub const fn from_u128(v: u128) -> Self {
        Uuid(v.to_be_bytes())
    }

    /// Reads the 16-octet little-endian NDR encoding.
    pub fn from_wire(b: &[u8; 16]) -> Self {
        Uuid(swap_fields(b))
    }

    /// The 16-octet little-endian NDR encoding.
    pub fn to_wire(&self) -> [u8; 16] {
        swap_fields(&self.0)
    }

    /// True for the nil UUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A presentation syntax: interface (or transfer syntax) UUID and version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SyntaxId {
    /// Interface or transfer syntax UUID.
    pub uuid: Uuid,
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl SyntaxId {
    /// Size of the wire encoding (`p_syntax_id_t`).
    pub const WIRE_LEN: usize = 20;

    /// Creates a syntax id.
    pub const fn new(uuid: Uuid, major: u16, minor: u16) -> Self {
        SyntaxId { uuid, major, minor }
    }

    /// Appends the 20-octet wire encoding (UUID, then `u16` major, `u16` minor).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uuid.to_wire());
        out.extend_from_slice(&self.major.to_le_bytes());
        out.extend_from_slice(&self.minor.to_le_bytes());
    }

    /// Parses the 20-octet wire encoding.
    pub fn read(b: &[u8; 20]) -> Self {
        let mut u = [0u8; 16];
        u.copy_from_slice(&b[..16]);
        SyntaxId {
            uuid: Uuid::from_wire(&u),
            major: u16::from_le_bytes([b[16], b[17]]),
            minor: u16::from_le_bytes([b[18], b[19]]),
        }
    }
}

/// NDR 2.0 transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.0.
pub const NDR20: SyntaxId = SyntaxId::new(
    Uuid::from_u128(0x8a885d04_1ceb_11c9_9fe8_08002b104860),
    2,
    0,
);

/// NDR64 transfer syntax 71710533-beba-4937-8319-b5dbef9ccc36 v1.0 (recognised, never accepted).
pub const NDR64: SyntaxId = SyntaxId::new(
    Uuid::from_u128(0x71710533_beba_4937_8319_b5dbef9ccc36),
    1,
    0,
);

/// Swaps the byte order of the first three fields (u32, u16, u16) between
/// the RFC 4122 big-endian form and NDR's little-endian one; the operation is
/// its own inverse.
fn swap_fields(b: &[u8; 16]) -> [u8; 16] {
    let mut out = *b;
    out[..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndr20_wire_bytes() {
        let mut v = Vec::new();
        NDR20.write(&mut v);
        assert_eq!(
            v,
            [
                0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10,
                0x48, 0x60, 0x02, 0x00, 0x00, 0x00
            ]
        );
        let mut a = [0u8; 20];
        a.copy_from_slice(&v);
        assert_eq!(SyntaxId::read(&a), NDR20);
    }

    #[test]
    fn display() {
        assert_eq!(
            Uuid::from_u128(0x91ae6020_9e3c_11cf_8d7c_00aa00c091be).to_string(),
            "91ae6020-9e3c-11cf-8d7c-00aa00c091be"
        );
    }
}
