//! DCOM (MS-DCOM) over `ncacn_ip_tcp`: what a client needs to activate a
//! remote COM object and call it, and what a server needs to offer one.
//!
//! * [`orpc`]: `ORPCTHIS` / `ORPCTHAT` (with bounded `ORPC_EXTENT` arrays);
//! * [`objref`]: `OBJREF` (standard, custom), `STDOBJREF`, `DUALSTRINGARRAY`,
//!   `MInterfacePointer`;
//! * [`activation`]: activation property blobs (`IActivationPropertiesIn` /
//!   `Out`: `InstantiationInfoData`, `ScmRequestInfoData`, `PropsOutInfo`,
//!   `ScmReplyInfoData`), NDR type serialization version 1;
//! * [`client`]: `IRemoteSCMActivator::RemoteCreateInstance` through the
//!   SCM port (135), the object exporter's string bindings, calls on an
//!   interface pointer (IPID as the request's object UUID), `IRemUnknown2`
//!   `RemQueryInterface` / `RemRelease`;
//! * [`server`]: the activator, `IRemUnknown(2)` and a minimal
//!   `IObjectExporter` for a process that exports a fixed set of classes.
//!
//! Every count and length read from the wire is checked against a constant
//! below before anything is allocated from it.

pub mod activation;
pub mod client;
pub mod objref;
pub mod orpc;
pub mod server;

use crate::uuid::{SyntaxId, Uuid};

/// `IRemoteSCMActivator` (000001A0-0000-0000-C000-000000000046 v0.0).
pub const IREMOTESCMACTIVATOR: SyntaxId = com_iface(0x000001a0);
/// `IRemUnknown` (00000131-0000-0000-C000-000000000046 v0.0).
pub const IREMUNKNOWN: SyntaxId = com_iface(0x00000131);
/// `IRemUnknown2` (00000143-0000-0000-C000-000000000046 v0.0).
pub const IREMUNKNOWN2: SyntaxId = com_iface(0x00000143);
/// `IObjectExporter` (99fcfec4-5260-101b-bbcb-00aa0021347a v0.0).
pub const IOBJECTEXPORTER: SyntaxId = SyntaxId::new(
    Uuid::from_u128(0x99fcfec4_5260_101b_bbcb_00aa0021347a),
    0,
    0,
);
/// `IActivationPropertiesIn`.
pub const IID_IACTIVATIONPROPERTIESIN: Uuid = com_uuid(0x000001a2);
/// `IActivationPropertiesOut`.
pub const IID_IACTIVATIONPROPERTIESOUT: Uuid = com_uuid(0x000001a3);
/// `CLSID_ActivationPropertiesIn`.
pub const CLSID_ACTIVATIONPROPERTIESIN: Uuid = com_uuid(0x00000338);
/// `CLSID_ActivationPropertiesOut` (also `CLSID_PropsOutInfo`).
pub const CLSID_ACTIVATIONPROPERTIESOUT: Uuid = com_uuid(0x00000339);
/// `CLSID_InstantiationInfo`.
pub const CLSID_INSTANTIATIONINFO: Uuid = com_uuid(0x000001ab);
/// `CLSID_ActivationContextInfo`.
pub const CLSID_ACTIVATIONCONTEXTINFO: Uuid = com_uuid(0x000001a5);
/// `CLSID_ServerLocationInfo`.
pub const CLSID_SERVERLOCATIONINFO: Uuid = com_uuid(0x000001a4);
/// `CLSID_ScmRequestInfo`.
pub const CLSID_SCMREQUESTINFO: Uuid = com_uuid(0x000001aa);
/// `CLSID_ScmReplyInfo`.
pub const CLSID_SCMREPLYINFO: Uuid = com_uuid(0x000001b6);
/// `CLSID_PropsOutInfo`.
pub const CLSID_PROPSOUTINFO: Uuid = com_uuid(0x00000339);

/// `RemoteCreateInstance` operation number.
pub const OPNUM_REMOTE_CREATE_INSTANCE: u16 = 4;
/// `RemoteGetClassObject` operation number.
pub const OPNUM_REMOTE_GET_CLASS_OBJECT: u16 = 3;
/// `IRemUnknown::RemQueryInterface`.
pub const OPNUM_REM_QUERY_INTERFACE: u16 = 3;
/// `IRemUnknown::RemAddRef`.
pub const OPNUM_REM_ADD_REF: u16 = 4;
/// `IRemUnknown::RemRelease`.
pub const OPNUM_REM_RELEASE: u16 = 5;
/// `IObjectExporter::SimplePing`.
pub const OPNUM_SIMPLE_PING: u16 = 1;
/// `IObjectExporter::ComplexPing`.
pub const OPNUM_COMPLEX_PING: u16 = 2;
/// `IObjectExporter::ServerAlive`.
pub const OPNUM_SERVER_ALIVE: u16 = 3;
/// `IObjectExporter::ServerAlive2`.
pub const OPNUM_SERVER_ALIVE2: u16 = 5;

/// Tower id of `ncacn_ip_tcp` in string bindings.
pub const TOWERID_NCACN_IP_TCP: u16 = 0x07;

/// `S_OK`.
pub const S_OK: u32 = 0;
/// `E_NOINTERFACE`.
pub const E_NOINTERFACE: u32 = 0x8000_4002;
/// `E_NOTIMPL`.
pub const E_NOTIMPL: u32 = 0x8000_4001;
/// `E_INVALIDARG`.
pub const E_INVALIDARG: u32 = 0x8007_0057;
/// `REGDB_E_CLASSNOTREG`.
pub const REGDB_E_CLASSNOTREG: u32 = 0x8004_0154;
/// `RPC_E_INVALID_OXID`.
pub const RPC_E_INVALID_OXID: u32 = 0x8001_0151;
/// `CO_E_OBJNOTCONNECTED`-style failure for an unknown IPID (`RPC_E_INVALID_OBJECT`).
pub const RPC_E_INVALID_OBJECT: u32 = 0x8001_0114;

/// Largest `OBJREF` / activation blob accepted (octets).
pub const MAX_OBJREF: usize = 64 << 10;
/// Largest number of interfaces per activation or `RemQueryInterface`.
pub const MAX_IIDS: usize = 32;
/// Largest number of protocol sequences in an activation request.
pub const MAX_PROTSEQS: usize = 32;
/// Largest number of activation properties (`MAX_ACTPROP_LIMIT` is 10).
pub const MAX_PROPERTIES: usize = 10;
/// Largest `DUALSTRINGARRAY` (16-bit units).
pub const MAX_STRING_ARRAY: usize = 8192;
/// Largest number of ORPC extents.
pub const MAX_EXTENTS: usize = 16;
/// Largest ORPC extent payload (octets).
pub const MAX_EXTENT_DATA: usize = 64 << 10;
/// Largest number of interface references released in one call.
pub const MAX_INTERFACE_REFS: usize = 64;

/// COM's well-known `xxxxxxxx-0000-0000-C000-000000000046` UUIDs.
pub const fn com_uuid(first: u32) -> Uuid {
    Uuid::from_u128(((first as u128) << 96) | 0x0000_0000_c000_0000_0000_0046)
}

const fn com_iface(first: u32) -> SyntaxId {
    SyntaxId::new(com_uuid(first), 0, 0)
}

/// The presentation syntax (v0.0) of a DCOM interface id.
pub const fn iface(iid: Uuid) -> SyntaxId {
    SyntaxId::new(iid, 0, 0)
}

/// A fresh, unpredictable-enough 128-bit value for causality ids and IPIDs
/// (MD5 of the time, a process-wide counter and the process id; these are
/// identifiers, not secrets: the connection's authentication protects the calls).
pub fn fresh_uuid() -> Uuid {
    use md5::{Digest, Md5};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Md5::new();
    h.update(t.to_le_bytes());
    h.update(n.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d);
    // RFC 4122 version 4 / variant bits, so that tools display it sanely.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_u128(u128::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ids() {
        assert_eq!(
            IREMOTESCMACTIVATOR.uuid.to_string(),
            "000001a0-0000-0000-c000-000000000046"
        );
        assert_eq!(
            CLSID_SCMREPLYINFO.to_string(),
            "000001b6-0000-0000-c000-000000000046"
        );
        assert_ne!(fresh_uuid(), fresh_uuid());
    }
}
