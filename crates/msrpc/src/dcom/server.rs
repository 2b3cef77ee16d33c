//! DCOM server side for a process exporting a fixed set of classes: the
//! SCM's `IRemoteSCMActivator` (on the endpoint mapper's port), the object
//! exporter's `IRemUnknown` / `IRemUnknown2`, and `IObjectExporter`'s ping
//! and alive calls.
//!
//! Objects are stateless here: each (class, interface) pair has one IPID
//! derived from a per-process secret, and the interface implementations are
//! ordinary [`RpcService`]s bound on the exporter's listener (the
//! presentation context selects the interface; the IPID in the request is
//! not needed to dispatch). References are marked `SORF_NOPING`, so clients
//! need not ping; release is accepted and has nothing to free.

use std::sync::Arc;

use super::activation::{ActivationIn, ActivationOut, InterfaceResult};
use super::client::{
    decode_rem_query_interface, decode_rem_release, encode_rem_query_interface_reply,
};
use super::objref::{
    read_interface_pointer, write_interface_pointer, DualStringArray, ObjRef, SecurityBinding,
    StdObjRef, StringBinding, SORF_NOPING,
};
use super::orpc::{OrpcThat, OrpcThis, COM_VERSION};
use super::{
    E_NOINTERFACE, E_NOTIMPL, IOBJECTEXPORTER, IREMOTESCMACTIVATOR, IREMUNKNOWN, IREMUNKNOWN2,
    OPNUM_COMPLEX_PING, OPNUM_REMOTE_CREATE_INSTANCE, OPNUM_REMOTE_GET_CLASS_OBJECT,
    OPNUM_REM_ADD_REF, OPNUM_REM_QUERY_INTERFACE, OPNUM_REM_RELEASE, OPNUM_SERVER_ALIVE,
    OPNUM_SERVER_ALIVE2, OPNUM_SIMPLE_PING, REGDB_E_CLASSNOTREG, RPC_E_INVALID_OBJECT,
};
use crate::auth::{AuthLevel, RPC_C_AUTHN_GSS_NEGOTIATE, RPC_C_AUTHN_WINNT};
use crate::icpr::{NCA_S_OP_RNG_ERROR, RPC_X_BAD_STUB_DATA};
use crate::ndr::{NdrReader, NdrWriter};
use crate::server::{CallContext, RpcService};
use crate::uuid::{SyntaxId, Uuid};

/// A class the exporter can instantiate and the interfaces it implements.
#[derive(Clone, Debug)]
pub struct DcomClass {
    /// Class id.
    pub clsid: Uuid,
    /// Interface ids (each must also be served as an [`RpcService`] on the
    /// exporter's listener).
    pub interfaces: Vec<Uuid>,
}

/// The exported objects, their identifiers and where they are reachable.
#[derive(Debug)]
pub struct Exporter {
    oxid: u64,
    classes: Vec<DcomClass>,
    bindings: DualStringArray,
    ipid_rem_unknown: Uuid,
    secret: [u8; 16],
    level: AuthLevel,
}

impl Exporter {
    /// An exporter for `classes` listening at `hosts` (names or addresses) on
    /// `port`, requiring `level` (announced to clients as the authentication hint).
    pub fn new(classes: Vec<DcomClass>, hosts: &[String], port: u16, level: AuthLevel) -> Self {
        let s = super::fresh_uuid().to_wire();
        let oxid = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        Exporter {
            oxid,
            classes,
            bindings: DualStringArray {
                string_bindings: hosts.iter().map(|h| StringBinding::tcp(h, port)).collect(),
                security_bindings: [RPC_C_AUTHN_WINNT, RPC_C_AUTHN_GSS_NEGOTIATE]
                    .into_iter()
                    .map(|a| SecurityBinding {
                        authn_svc: u16::from(a),
                        reserved: 0xffff,
                        princ_name: String::new(),
                    })
                    .collect(),
            },
            ipid_rem_unknown: super::fresh_uuid(),
            secret: super::fresh_uuid().to_wire(),
            level,
        }
    }

    /// Object exporter id.
    pub fn oxid(&self) -> u64 {
        self.oxid
    }

    /// IPID of the exporter's `IRemUnknown`.
    pub fn ipid_rem_unknown(&self) -> Uuid {
        self.ipid_rem_unknown
    }

    /// The string and security bindings announced to clients.
    pub fn bindings(&self) -> &DualStringArray {
        &self.bindings
    }

    fn derive(&self, tag: u8, clsid: &Uuid, iid: Option<&Uuid>) -> [u8; 16] {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        h.update(self.secret);
        h.update([tag]);
        h.update(clsid.to_wire());
        if let Some(i) = iid {
            h.update(i.to_wire());
        }
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d);
        b
    }

    /// The IPID of `iid` on an instance of `clsid`.
    pub fn ipid(&self, clsid: &Uuid, iid: &Uuid) -> Uuid {
        Uuid::from_wire(&self.derive(1, clsid, Some(iid)))
    }

    fn oid(&self, clsid: &Uuid) -> u64 {
        let d = self.derive(2, clsid, None);
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn std(&self, clsid: &Uuid, iid: &Uuid) -> StdObjRef {
        StdObjRef {
            flags: SORF_NOPING,
            public_refs: 5,
            oxid: self.oxid,
            oid: self.oid(clsid),
            ipid: self.ipid(clsid, iid),
        }
    }

    /// The class behind an IPID.
    pub fn class_of(&self, ipid: &Uuid) -> Option<&DcomClass> {
        self.classes
            .iter()
            .find(|c| c.interfaces.iter().any(|i| self.ipid(&c.clsid, i) == *ipid))
    }

    /// Answers an activation request.
    pub fn activate(&self, req: &ActivationIn) -> Result<ActivationOut, u32> {
        let class = self
            .classes
            .iter()
            .find(|c| c.clsid == req.clsid)
            .ok_or(REGDB_E_CLASSNOTREG)?;
        let interfaces: Vec<InterfaceResult> = req
            .iids
            .iter()
            .map(|iid| {
                if class.interfaces.contains(iid) {
                    InterfaceResult {
                        iid: *iid,
                        hresult: 0,
                        objref: Some(ObjRef::Standard {
                            iid: *iid,
                            std: self.std(&class.clsid, iid),
                            resolver: DualStringArray::default(),
                        }),
                    }
                } else {
                    InterfaceResult {
                        iid: *iid,
                        hresult: E_NOINTERFACE,
                        objref: None,
                    }
                }
            })
            .collect();
        if interfaces.iter().all(|i| i.hresult != 0) {
            return Err(E_NOINTERFACE);
        }
        Ok(ActivationOut {
            oxid: self.oxid,
            bindings: self.bindings.clone(),
            ipid_rem_unknown: self.ipid_rem_unknown,
            authn_hint: u32::from(self.level.to_wire()),
            server_version: COM_VERSION,
            interfaces,
        })
    }
}

/// Writes a reply that is only `ORPCTHAT` and an HRESULT.
pub fn hresult_reply(hr: u32) -> Vec<u8> {
    let mut w = NdrWriter::new();
    OrpcThat::default().write(&mut w);
    w.u32(hr);
    w.into_bytes()
}

/// `IRemoteSCMActivator` on the endpoint mapper's port.
#[derive(Debug, Clone)]
pub struct ScmActivator(pub Arc<Exporter>);

impl RpcService for ScmActivator {
    fn interface(&self) -> SyntaxId {
        IREMOTESCMACTIVATOR
    }

    fn required_level(&self) -> AuthLevel {
        self.0.level
    }

    fn call(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        if opnum != OPNUM_REMOTE_CREATE_INSTANCE && opnum != OPNUM_REMOTE_GET_CLASS_OBJECT {
            return Err(NCA_S_OP_RNG_ERROR);
        }
        let mut r = NdrReader::new(stub);
        OrpcThis::read(&mut r).map_err(|_| RPC_X_BAD_STUB_DATA)?;
        let props = if opnum == OPNUM_REMOTE_CREATE_INSTANCE {
            let _outer = read_interface_pointer(&mut r).map_err(|_| RPC_X_BAD_STUB_DATA)?;
            read_interface_pointer(&mut r).map_err(|_| RPC_X_BAD_STUB_DATA)?
        } else {
            read_interface_pointer(&mut r).map_err(|_| RPC_X_BAD_STUB_DATA)?
        };
        let mut w = NdrWriter::new();
        OrpcThat::default().write(&mut w);
        if opnum == OPNUM_REMOTE_GET_CLASS_OBJECT {
            write_interface_pointer(&mut w, None);
            w.u32(E_NOTIMPL);
            return Ok(w.into_bytes());
        }
        let Some(props) = props else {
            write_interface_pointer(&mut w, None);
            w.u32(super::E_INVALIDARG);
            return Ok(w.into_bytes());
        };
        let req = ActivationIn::decode(&props).map_err(|e| {
            tracing::info!(peer = %ctx.peer, error = %e, "malformed activation properties");
            RPC_X_BAD_STUB_DATA
        })?;
        match self.0.activate(&req) {
            Ok(out) => {
                tracing::debug!(peer = %ctx.peer, clsid = %req.clsid, "DCOM activation");
                write_interface_pointer(&mut w, Some(&out.encode()));
                w.u32(0);
            }
            Err(hr) => {
                tracing::info!(peer = %ctx.peer, clsid = %req.clsid, hr = format!("0x{hr:08x}"), "DCOM activation refused");
                write_interface_pointer(&mut w, None);
                w.u32(hr);
            }
        }
        Ok(w.into_bytes())
    }
}

/// `IRemUnknown` or `IRemUnknown2` on the exporter's port.
#[derive(Debug, Clone)]
pub struct RemUnknown {
    exporter: Arc<Exporter>,
    version2: bool,
}

impl RemUnknown {
    /// `IRemUnknown2` (`version2`) or `IRemUnknown`.
    pub fn new(exporter: Arc<Exporter>, version2: bool) -> Self {
        RemUnknown { exporter, version2 }
    }
}

impl RpcService for RemUnknown {
    fn interface(&self) -> SyntaxId {
        if self.version2 {
            IREMUNKNOWN2
        } else {
            IREMUNKNOWN
        }
    }

    fn required_level(&self) -> AuthLevel {
        self.exporter.level
    }

    fn call(&self, _ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        match opnum {
            OPNUM_REM_QUERY_INTERFACE => {
                let (_, ipid, _, iids) =
                    decode_rem_query_interface(stub).map_err(|_| RPC_X_BAD_STUB_DATA)?;
                let Some(class) = self.exporter.class_of(&ipid) else {
                    return Ok(encode_rem_query_interface_reply(&[], RPC_E_INVALID_OBJECT));
                };
                let results: Vec<(u32, StdObjRef)> = iids
                    .iter()
                    .map(|iid| {
                        let std = self.exporter.std(&class.clsid, iid);
                        if class.interfaces.contains(iid) {
                            (0, std)
                        } else {
                            (
                                E_NOINTERFACE,
                                StdObjRef {
                                    flags: 0,
                                    public_refs: 0,
                                    oxid: 0,
                                    oid: 0,
                                    ipid: Uuid::NIL,
                                },
                            )
                        }
                    })
                    .collect();
                let hr = if results.iter().any(|(h, _)| *h == 0) {
                    0
                } else {
                    E_NOINTERFACE
                };
                Ok(encode_rem_query_interface_reply(&results, hr))
            }
            OPNUM_REM_RELEASE => {
                let (_, refs) = decode_rem_release(stub).map_err(|_| RPC_X_BAD_STUB_DATA)?;
                let unknown = refs
                    .iter()
                    .any(|(ipid, _, _)| self.exporter.class_of(ipid).is_none());
                Ok(hresult_reply(if unknown {
                    RPC_E_INVALID_OBJECT
                } else {
                    0
                }))
            }
            OPNUM_REM_ADD_REF => {
                let (_, refs) = decode_rem_release(stub).map_err(|_| RPC_X_BAD_STUB_DATA)?;
                let mut w = NdrWriter::new();
                OrpcThat::default().write(&mut w);
                let p = w.referent_id();
                w.u32(p);
                w.u32(u32::try_from(refs.len()).unwrap_or(u32::MAX));
                for (ipid, _, _) in &refs {
                    w.u32(if self.exporter.class_of(ipid).is_some() {
                        0
                    } else {
                        RPC_E_INVALID_OBJECT
                    });
                }
                w.u32(0);
                Ok(w.into_bytes())
            }
            _ => Ok(hresult_reply(E_NOTIMPL)),
        }
    }
}

/// `IObjectExporter` (OXID resolver) on the endpoint mapper's port:
/// `SimplePing`, `ComplexPing`, `ServerAlive`, `ServerAlive2`. Anonymous,
/// as on Windows.
#[derive(Debug, Clone)]
pub struct OxidResolver(pub Arc<Exporter>);

impl RpcService for OxidResolver {
    fn interface(&self) -> SyntaxId {
        IOBJECTEXPORTER
    }

    fn required_level(&self) -> AuthLevel {
        AuthLevel::None
    }

    fn call(&self, _ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        let mut w = NdrWriter::new();
        match opnum {
            OPNUM_SIMPLE_PING | OPNUM_SERVER_ALIVE => w.u32(0),
            OPNUM_COMPLEX_PING => {
                let mut r = NdrReader::new(stub);
                let set = r.u64().map_err(|_| RPC_X_BAD_STUB_DATA)?;
                w.u64(if set == 0 { 1 } else { set });
                w.u16(0);
                w.u32(0);
            }
            OPNUM_SERVER_ALIVE2 => {
                w.u16(COM_VERSION.0);
                w.u16(COM_VERSION.1);
                let p = w.referent_id();
                w.u32(p);
                self.0.bindings.write(&mut w);
                w.u32(0);
                w.u32(0);
            }
            _ => return Err(NCA_S_OP_RNG_ERROR),
        }
        Ok(w.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_answers_known_interfaces_only() {
        let clsid = Uuid::from_u128(0x10);
        let iid = Uuid::from_u128(0x11);
        let e = Exporter::new(
            vec![DcomClass {
                clsid,
                interfaces: vec![iid],
            }],
            &["127.0.0.1".into()],
            5000,
            AuthLevel::Privacy,
        );
        let out = e.activate(&ActivationIn::new(clsid, iid)).unwrap();
        assert_eq!(out.interfaces[0].hresult, 0);
        assert_eq!(e.class_of(&e.ipid(&clsid, &iid)).unwrap().clsid, clsid);
        assert_eq!(
            e.activate(&ActivationIn::new(Uuid::from_u128(1), iid)),
            Err(REGDB_E_CLASSNOTREG)
        );
        assert_eq!(
            e.activate(&ActivationIn::new(clsid, Uuid::from_u128(2))),
            Err(E_NOINTERFACE)
        );
    }
}
