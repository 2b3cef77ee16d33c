//! Endpoint mapper (`ept_map`, interface e1af8308-5d1f-11c9-91a4-08002b14a0fa
//! v3.0, opnum 3) and protocol towers (DCE 1.1 appendix L, MS-RPCE 2.2.1.1.7).
//!
//! An `ncacn_ip_tcp` tower has five floors, each `lhs_len u16, lhs, rhs_len
//! u16, rhs` (little-endian lengths):
//! 1. `0x0d` + interface UUID + major version | minor version;
//! 2. `0x0d` + transfer syntax UUID + major | minor;
//! 3. `0x0b` (RPC connection-oriented) | minor version 0;
//! 4. `0x07` (TCP) | port, big-endian;
//! 5. `0x09` (IP) | IPv4 address, big-endian.

use std::net::Ipv4Addr;

use crate::ndr::{NdrError, NdrReader, NdrWriter, Referent};
use crate::uuid::{SyntaxId, Uuid, NDR20};

/// The endpoint mapper interface, v3.0.
pub const EPM_INTERFACE: SyntaxId = SyntaxId::new(
    Uuid::from_u128(0xe1af8308_5d1f_11c9_91a4_08002b14a0fa),
    3,
    0,
);
/// `ept_map` operation number.
pub const OPNUM_EPT_MAP: u16 = 3;
/// `EPT_S_NOT_REGISTERED`: no endpoint for the interface.
pub const EPT_S_NOT_REGISTERED: u32 = 0x16c9_a0d6;

const FLOOR_UUID: u8 = 0x0d;
const FLOOR_RPC_CO: u8 = 0x0b;
const FLOOR_TCP: u8 = 0x07;
const FLOOR_IP: u8 = 0x09;
const MAX_TOWER: usize = 4096;

/// Tower errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TowerError {
    /// Truncated tower.
    #[error("tower truncated")]
    Truncated,
    /// A floor has an unexpected protocol identifier or size.
    #[error("unexpected tower floor {floor}: {detail}")]
    Floor {
        /// 1-based floor number.
        floor: usize,
        /// What was wrong.
        detail: &'static str,
    },
    /// NDR error in the surrounding call.
    #[error(transparent)]
    Ndr(#[from] NdrError),
}

/// An `ncacn_ip_tcp` tower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTower {
    /// Interface and version (floor 1).
    pub interface: SyntaxId,
    /// Transfer syntax (floor 2).
    pub transfer: SyntaxId,
    /// TCP port (0 in a lookup).
    pub port: u16,
    /// IPv4 address (0.0.0.0 in a lookup).
    pub ip: Ipv4Addr,
}

fn floor(out: &mut Vec<u8>, lhs: &[u8], rhs: &[u8]) {
    // Floor parts are at most 19 octets.
    out.extend_from_slice(&(lhs.len() as u16).to_le_bytes());
    out.extend_from_slice(lhs);
    out.extend_from_slice(&(rhs.len() as u16).to_le_bytes());
    out.extend_from_slice(rhs);
}

fn uuid_floor(out: &mut Vec<u8>, s: &SyntaxId) {
    let mut lhs = vec![FLOOR_UUID];
    lhs.extend_from_slice(&s.uuid.to_wire());
    lhs.extend_from_slice(&s.major.to_le_bytes());
    floor(out, &lhs, &s.minor.to_le_bytes());
}

impl TcpTower {
    /// Tower octets (`tower_octet_string`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(75);
        out.extend_from_slice(&5u16.to_le_bytes());
        uuid_floor(&mut out, &self.interface);
        uuid_floor(&mut out, &self.transfer);
        floor(&mut out, &[FLOOR_RPC_CO], &[0, 0]);
        floor(&mut out, &[FLOOR_TCP], &self.port.to_be_bytes());
        floor(&mut out, &[FLOOR_IP], &self.ip.octets());
        out
    }

    /// Parses tower octets; extra floors after the fifth are ignored.
    pub fn decode(b: &[u8]) -> Result<TcpTower, TowerError> {
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8], TowerError> {
            let s = b.get(pos..pos + n).ok_or(TowerError::Truncated)?;
            pos += n;
            Ok(s)
        };
        let count = {
            let s = take(2)?;
            u16::from_le_bytes([s[0], s[1]])
        };
        if count < 5 {
            return Err(TowerError::Floor {
                floor: usize::from(count),
                detail: "fewer than 5 floors",
            });
        }
        let mut floors: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(5);
        for _ in 0..5 {
            let l = take(2)?;
            let ll = usize::from(u16::from_le_bytes([l[0], l[1]]));
            let lhs = take(ll)?.to_vec();
            let r = take(2)?;
            let rl = usize::from(u16::from_le_bytes([r[0], r[1]]));
            let rhs = take(rl)?.to_vec();
            floors.push((lhs, rhs));
        }
        let syntax = |i: usize| -> Result<SyntaxId, TowerError> {
            let (lhs, rhs) = &floors[i];
            if lhs.len() != 19 || lhs[0] != FLOOR_UUID || rhs.len() != 2 {
                return Err(TowerError::Floor {
                    floor: i + 1,
                    detail: "expected a UUID floor",
                });
            }
            let mut u = [0u8; 16];
            u.copy_from_slice(&lhs[1..17]);
            Ok(SyntaxId {
                uuid: Uuid::from_wire(&u),
                major: u16::from_le_bytes([lhs[17], lhs[18]]),
                minor: u16::from_le_bytes([rhs[0], rhs[1]]),
            })
        };
        let interface = syntax(0)?;
        let transfer = syntax(1)?;
        if floors[2].0 != [FLOOR_RPC_CO] {
            return Err(TowerError::Floor {
                floor: 3,
                detail: "expected RPC connection-oriented (0x0b)",
            });
        }
        let (l4, r4) = &floors[3];
        if l4 != &[FLOOR_TCP] || r4.len() != 2 {
            return Err(TowerError::Floor {
                floor: 4,
                detail: "expected TCP port (0x07)",
            });
        }
        let (l5, r5) = &floors[4];
        if l5 != &[FLOOR_IP] || r5.len() != 4 {
            return Err(TowerError::Floor {
                floor: 5,
                detail: "expected IPv4 address (0x09)",
            });
        }
        Ok(TcpTower {
            interface,
            transfer,
            port: u16::from_be_bytes([r4[0], r4[1]]),
            ip: Ipv4Addr::new(r5[0], r5[1], r5[2], r5[3]),
        })
    }

    /// A lookup tower for `interface` over NDR20 (port 0, address 0.0.0.0).
    pub fn lookup(interface: SyntaxId) -> TcpTower {
        TcpTower {
            interface,
            transfer: NDR20,
            port: 0,
            ip: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// Decoded `ept_map` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptMapRequest {
    /// Object UUID (NULL pointer → `None`).
    pub object: Option<Uuid>,
    /// The tower to match (raw octets; decode with [`TcpTower::decode`]).
    pub tower: Vec<u8>,
    /// Context handle (20 octets).
    pub entry_handle: [u8; 20],
    /// Maximum number of towers to return.
    pub max_towers: u32,
}

impl EptMapRequest {
    /// Stub data for this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = NdrWriter::new();
        w.pointer(self.object.map(|u| Referent::Uuid(u.to_wire())));
        w.flush();
        w.pointer(Some(Referent::Tower(self.tower.clone())));
        w.flush();
        w.align(4);
        w.raw(&self.entry_handle);
        w.u32(self.max_towers);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, TowerError> {
        let mut r = NdrReader::new(stub);
        let object = if r.pointer()? != 0 {
            let s = r.take(16)?;
            let mut u = [0u8; 16];
            u.copy_from_slice(s);
            Some(Uuid::from_wire(&u))
        } else {
            None
        };
        if r.pointer()? == 0 {
            return Err(NdrError::Invalid("NULL map_tower").into());
        }
        let tower = r.tower(MAX_TOWER)?;
        r.align(4)?;
        let mut entry_handle = [0u8; 20];
        entry_handle.copy_from_slice(r.take(20)?);
        let max_towers = r.u32()?;
        Ok(EptMapRequest {
            object,
            tower,
            entry_handle,
            max_towers,
        })
    }
}

/// Decoded `ept_map` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptMapResponse {
    /// Context handle returned (all zero when the lookup is complete).
    pub entry_handle: [u8; 20],
    /// Tower octets found.
    pub towers: Vec<Vec<u8>>,
    /// Status (0 success, [`EPT_S_NOT_REGISTERED`]).
    pub status: u32,
}

impl EptMapResponse {
    /// Stub data; `max_towers` is the request's (array conformance).
    pub fn encode(&self, max_towers: u32) -> Vec<u8> {
        let mut w = NdrWriter::new();
        w.raw(&self.entry_handle);
        let n = u32::try_from(self.towers.len()).unwrap_or(u32::MAX);
        w.u32(n);
        w.u32(max_towers.max(n));
        w.u32(0);
        w.u32(n);
        for t in &self.towers {
            w.pointer(Some(Referent::Tower(t.clone())));
        }
        w.flush();
        w.u32(self.status);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, TowerError> {
        let mut r = NdrReader::new(stub);
        let mut entry_handle = [0u8; 20];
        entry_handle.copy_from_slice(r.take(20)?);
        let num = r.u32()? as usize;
        let max = r.u32()? as usize;
        let offset = r.u32()? as usize;
        let actual = r.u32()? as usize;
        if offset != 0 || actual > max || actual != num || actual > 64 {
            return Err(NdrError::Invalid("tower array bounds").into());
        }
        let mut ids = Vec::with_capacity(actual);
        for _ in 0..actual {
            ids.push(r.pointer()?);
        }
        let mut towers = Vec::new();
        for id in ids {
            if id != 0 {
                towers.push(r.tower(MAX_TOWER)?);
                r.align(4)?;
            }
        }
        let status = r.u32()?;
        Ok(EptMapResponse {
            entry_handle,
            towers,
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icpr::ICPR_INTERFACE;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    const ICPR_TOWER: &str = "0500
        1300 0d 2060ae91 3c9e cf11 8d7c00aa00c091be 0000 0200 0000
        1300 0d 045d888a eb1c c911 9fe808002b104860 0200 0200 0000
        0100 0b 0200 0000
        0100 07 0200 c203
        0100 09 0400 7f000001";

    #[test]
    fn tower_exact_bytes() {
        let t = TcpTower {
            interface: ICPR_INTERFACE,
            transfer: NDR20,
            port: 49667,
            ip: Ipv4Addr::LOCALHOST,
        };
        let b = t.encode();
        assert_eq!(b, hex(ICPR_TOWER));
        assert_eq!(b.len(), 75);
        assert_eq!(TcpTower::decode(&b).unwrap(), t);
    }

    #[test]
    fn tower_malformed() {
        let b = hex(ICPR_TOWER);
        for n in 0..b.len() {
            assert!(TcpTower::decode(&b[..n]).is_err());
        }
        let mut bad = b.clone();
        bad[2 + 25 + 25 + 2] = 0x0a; // floor 3 not CO
        assert!(matches!(
            TcpTower::decode(&bad),
            Err(TowerError::Floor { floor: 3, .. })
        ));
    }

    #[test]
    fn ept_map_request_roundtrip() {
        let req = EptMapRequest {
            object: None,
            tower: TcpTower::lookup(ICPR_INTERFACE).encode(),
            entry_handle: [0; 20],
            max_towers: 4,
        };
        let b = req.encode();
        // NULL obj, tower ptr, max_count 75, length 75, 75 octets, 1 pad, handle, max_towers
        assert_eq!(&b[..12], &hex("00000000 00000200 4b000000")[..]);
        assert_eq!(b.len(), 4 + 4 + 8 + 75 + 1 + 20 + 4);
        assert_eq!(EptMapRequest::decode(&b).unwrap(), req);
        let with_obj = EptMapRequest {
            object: Some(Uuid::NIL),
            ..req
        };
        assert_eq!(EptMapRequest::decode(&with_obj.encode()).unwrap(), with_obj);
    }

    #[test]
    fn ept_map_response_roundtrip() {
        let t = TcpTower {
            interface: ICPR_INTERFACE,
            transfer: NDR20,
            port: 49667,
            ip: Ipv4Addr::LOCALHOST,
        }
        .encode();
        let resp = EptMapResponse {
            entry_handle: [0; 20],
            towers: vec![t],
            status: 0,
        };
        let b = resp.encode(4);
        assert_eq!(&b[20..36], &hex("01000000 04000000 00000000 01000000")[..]);
        assert_eq!(EptMapResponse::decode(&b).unwrap(), resp);
        let none = EptMapResponse {
            entry_handle: [0; 20],
            towers: vec![],
            status: EPT_S_NOT_REGISTERED,
        };
        assert_eq!(EptMapResponse::decode(&none.encode(4)).unwrap(), none);
        for n in 0..b.len() {
            assert!(EptMapResponse::decode(&b[..n]).is_err());
        }
    }
}
