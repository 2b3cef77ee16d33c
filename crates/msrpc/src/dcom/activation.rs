//! Activation properties (MS-DCOM 2.2.22): the `OBJREF_CUSTOM` blobs that
//! `IRemoteSCMActivator::RemoteCreateInstance` carries in and out.
//!
//! ```text
//! OBJREF_CUSTOM(iid = IActivationProperties{In,Out}, clsid = ActivationProperties{In,Out})
//!   ACTIVATION_BLOB: dwSize | dwReserved | CustomHeader | properties…
//!     CustomHeader (type serialization v1): totalSize, headerSize, dwReserved,
//!       destCtx, cIfs, classInfoClsid, [unique] pclsid[cIfs], [unique] pSizes[cIfs], pdwReserved
//!     each property: type serialization v1, padded to 8, size in pSizes
//! In:  InstantiationInfoData (class id, requested IIDs), ActivationContextInfoData,
//!      LocationInfoData, ScmRequestInfoData (requested protocol sequences)
//! Out: PropsOutInfo (per IID: HRESULT, MInterfacePointer), ScmReplyInfoData
//!      (OXID, exporter bindings, IPID of IRemUnknown, authentication hint)
//! ```
//!
//! NDR type serialization version 1 (MS-RPCE 2.2.6): an 8-octet common
//! header (version 1, little endian 0x10, length 8, filler 0xcccccccc) and
//! an 8-octet private header (object buffer length including the padding,
//! filler 0) before the NDR body, which is padded to 8.

use super::objref::{DualStringArray, ObjRef};
use super::{
    CLSID_ACTIVATIONCONTEXTINFO, CLSID_ACTIVATIONPROPERTIESIN, CLSID_ACTIVATIONPROPERTIESOUT,
    CLSID_INSTANTIATIONINFO, CLSID_PROPSOUTINFO, CLSID_SCMREPLYINFO, CLSID_SCMREQUESTINFO,
    CLSID_SERVERLOCATIONINFO, IID_IACTIVATIONPROPERTIESIN, IID_IACTIVATIONPROPERTIESOUT, MAX_IIDS,
    MAX_OBJREF, MAX_PROPERTIES, MAX_PROTSEQS, TOWERID_NCACN_IP_TCP,
};
use crate::ndr::{NdrError, NdrReader, NdrWriter};
use crate::uuid::Uuid;

/// `CLSCTX_REMOTE_SERVER`.
pub const CLSCTX_REMOTE_SERVER: u32 = 0x10;
/// `MSHCTX_DIFFERENTMACHINE`.
pub const MSHCTX_DIFFERENTMACHINE: u32 = 2;

fn ts1_wrap(body: &[u8]) -> Vec<u8> {
    let padded = (body.len() + 7) & !7;
    let mut out = Vec::with_capacity(16 + padded);
    out.extend_from_slice(&[1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc]);
    // ObjectBufferLength includes the padding (MS-RPCE 2.2.6.2; impacket
    // sends it unpadded, which the decoder accepts); the filler is 0.
    out.extend_from_slice(&u32::try_from(padded).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(body);
    out.resize(16 + padded, 0);
    out
}

/// Returns the NDR body of a type-serialized object and its total length.
fn ts1_unwrap(b: &[u8]) -> Result<(&[u8], usize), NdrError> {
    let h = b.get(..16).ok_or(NdrError::Truncated(b.len()))?;
    if h[0] != 1 || h[1] != 0x10 || u16::from_le_bytes([h[2], h[3]]) != 8 {
        return Err(NdrError::Invalid(
            "type serialization header: not version 1, little endian",
        ));
    }
    let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
    let body = b
        .get(16..16usize.saturating_add(len))
        .ok_or(NdrError::Truncated(16))?;
    Ok((body, 16 + len))
}

fn blob(properties: &[(Uuid, Vec<u8>)]) -> Vec<u8> {
    // Custom header body.
    let n = properties.len();
    let header_body = |total: u32, header: u32| {
        let mut w = NdrWriter::new();
        w.u32(total);
        w.u32(header);
        w.u32(0);
        w.u32(MSHCTX_DIFFERENTMACHINE);
        w.u32(u32::try_from(n).unwrap_or(u32::MAX));
        w.uuid(&Uuid::NIL);
        let p1 = w.referent_id();
        w.u32(p1);
        let p2 = w.referent_id();
        w.u32(p2);
        w.u32(0);
        w.u32(u32::try_from(n).unwrap_or(u32::MAX));
        for (c, _) in properties {
            w.uuid(c);
        }
        w.u32(u32::try_from(n).unwrap_or(u32::MAX));
        for (_, p) in properties {
            w.u32(u32::try_from(p.len()).unwrap_or(u32::MAX));
        }
        w.into_bytes()
    };
    let header_len = ts1_wrap(&header_body(0, 0)).len();
    let props_len: usize = properties.iter().map(|(_, p)| p.len()).sum();
    let total = u32::try_from(header_len + props_len).unwrap_or(u32::MAX);
    let header = ts1_wrap(&header_body(
        total,
        u32::try_from(header_len).unwrap_or(u32::MAX),
    ));
    let mut out = Vec::with_capacity(8 + header_len + props_len);
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&header);
    for (_, p) in properties {
        out.extend_from_slice(p);
    }
    out
}

/// Splits an activation blob into (property class, property octets).
fn unblob(b: &[u8]) -> Result<Vec<(Uuid, &[u8])>, NdrError> {
    if b.len() > MAX_OBJREF {
        return Err(NdrError::Invalid("activation blob larger than allowed"));
    }
    let rest = b.get(8..).ok_or(NdrError::Truncated(b.len()))?;
    let (body, header_len) = ts1_unwrap(rest)?;
    let mut r = NdrReader::new(body);
    let _total = r.u32()?;
    let _header = r.u32()?;
    let _reserved = r.u32()?;
    let _dest = r.u32()?;
    let n = r.u32()? as usize;
    let _class_info = r.uuid()?;
    let pclsid = r.pointer()?;
    let psizes = r.pointer()?;
    let _pdw = r.pointer()?;
    if n > MAX_PROPERTIES || pclsid == 0 || psizes == 0 {
        return Err(NdrError::Bounds {
            offset: 8,
            detail: "activation property count",
        });
    }
    if r.u32()? as usize != n {
        return Err(NdrError::Invalid("pclsid array size differs from cIfs"));
    }
    let mut clsids = Vec::with_capacity(n);
    for _ in 0..n {
        clsids.push(r.uuid()?);
    }
    if r.u32()? as usize != n {
        return Err(NdrError::Invalid("pSizes array size differs from cIfs"));
    }
    let mut sizes = Vec::with_capacity(n);
    for _ in 0..n {
        sizes.push(r.u32()? as usize);
    }
    let mut props = rest.get(header_len..).ok_or(NdrError::Truncated(8))?;
    let mut out = Vec::with_capacity(n);
    for (c, s) in clsids.into_iter().zip(sizes) {
        if s > props.len() {
            return Err(NdrError::Invalid("activation property beyond the blob"));
        }
        let (p, tail) = props.split_at(s);
        out.push((c, p));
        props = tail;
    }
    Ok(out)
}

fn property<'a>(props: &[(Uuid, &'a [u8])], clsid: Uuid) -> Option<&'a [u8]> {
    props.iter().find(|(c, _)| *c == clsid).map(|(_, p)| *p)
}

/// What a client asks the SCM for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationIn {
    /// Class to instantiate.
    pub clsid: Uuid,
    /// Interfaces wanted (at least one).
    pub iids: Vec<Uuid>,
    /// Protocol sequences the client can use (7 = `ncacn_ip_tcp`).
    pub protseqs: Vec<u16>,
    /// COM version of the client.
    pub client_version: (u16, u16),
}

impl ActivationIn {
    /// A request for `clsid` / `iid` over `ncacn_ip_tcp`.
    pub fn new(clsid: Uuid, iid: Uuid) -> Self {
        ActivationIn {
            clsid,
            iids: vec![iid],
            protseqs: vec![TOWERID_NCACN_IP_TCP],
            client_version: super::orpc::COM_VERSION,
        }
    }

    /// The `OBJREF_CUSTOM` octets (`pActProperties.abData`).
    pub fn encode(&self) -> Vec<u8> {
        // InstantiationInfoData; thisSize patched once the size is known.
        let inst = |this_size: u32| {
            let mut w = NdrWriter::new();
            w.uuid(&self.clsid);
            w.u32(CLSCTX_REMOTE_SERVER);
            w.u32(0);
            w.u32(0);
            w.u32(u32::try_from(self.iids.len()).unwrap_or(u32::MAX));
            w.u32(0);
            let p = w.referent_id();
            w.u32(p);
            w.u32(this_size);
            w.u16(self.client_version.0);
            w.u16(self.client_version.1);
            w.u32(u32::try_from(self.iids.len()).unwrap_or(u32::MAX));
            for i in &self.iids {
                w.uuid(i);
            }
            w.into_bytes()
        };
        let size = ts1_wrap(&inst(0)).len();
        let inst = ts1_wrap(&inst(u32::try_from(size).unwrap_or(u32::MAX)));
        let mut w = NdrWriter::new();
        for _ in 0..4 {
            w.u32(0);
        }
        w.u32(0);
        w.u32(0);
        let ctx = ts1_wrap(&w.into_bytes());
        let mut w = NdrWriter::new();
        for _ in 0..4 {
            w.u32(0);
        }
        let loc = ts1_wrap(&w.into_bytes());
        let mut w = NdrWriter::new();
        w.u32(0);
        let p = w.referent_id();
        w.u32(p);
        w.u32(0); // ClientImpLevel
        w.u16(u16::try_from(self.protseqs.len()).unwrap_or(u16::MAX));
        let p = w.referent_id();
        w.u32(p);
        w.u32(u32::try_from(self.protseqs.len()).unwrap_or(u32::MAX));
        for s in &self.protseqs {
            w.u16(*s);
        }
        let scm = ts1_wrap(&w.into_bytes());
        let data = blob(&[
            (CLSID_INSTANTIATIONINFO, inst),
            (CLSID_ACTIVATIONCONTEXTINFO, ctx),
            (CLSID_SERVERLOCATIONINFO, loc),
            (CLSID_SCMREQUESTINFO, scm),
        ]);
        ObjRef::Custom {
            iid: IID_IACTIVATIONPROPERTIESIN,
            clsid: CLSID_ACTIVATIONPROPERTIESIN,
            data,
        }
        .encode()
    }

    /// Parses `pActProperties.abData` (server side).
    pub fn decode(objref: &[u8]) -> Result<Self, NdrError> {
        let ObjRef::Custom { clsid, data, .. } = ObjRef::decode(objref)? else {
            return Err(NdrError::Invalid(
                "activation properties are not a custom OBJREF",
            ));
        };
        if clsid != CLSID_ACTIVATIONPROPERTIESIN {
            return Err(NdrError::Invalid("not ActivationPropertiesIn"));
        }
        let props = unblob(&data)?;
        let inst = property(&props, CLSID_INSTANTIATIONINFO)
            .ok_or(NdrError::Invalid("activation without InstantiationInfo"))?;
        let (body, _) = ts1_unwrap(inst)?;
        let mut r = NdrReader::new(body);
        let class = r.uuid()?;
        let _ctx = r.u32()?;
        let _flags = r.u32()?;
        let _surrogate = r.u32()?;
        let n = r.u32()? as usize;
        let _inst_flag = r.u32()?;
        let piid = r.pointer()?;
        let _this_size = r.u32()?;
        let major = r.u16()?;
        let minor = r.u16()?;
        if n == 0 || n > MAX_IIDS || piid == 0 {
            return Err(NdrError::Invalid("InstantiationInfo: interface count"));
        }
        if r.u32()? as usize != n {
            return Err(NdrError::Invalid("InstantiationInfo: pIID size"));
        }
        let mut iids = Vec::with_capacity(n);
        for _ in 0..n {
            iids.push(r.uuid()?);
        }
        let mut protseqs = Vec::new();
        if let Some(scm) = property(&props, CLSID_SCMREQUESTINFO) {
            let (body, _) = ts1_unwrap(scm)?;
            let mut r = NdrReader::new(body);
            let _reserved = r.pointer()?;
            if r.pointer()? != 0 {
                let _imp = r.u32()?;
                let n = usize::from(r.u16()?);
                let p = r.pointer()?;
                if n > MAX_PROTSEQS {
                    return Err(NdrError::Invalid(
                        "ScmRequestInfo: too many protocol sequences",
                    ));
                }
                if p != 0 {
                    if r.u32()? as usize != n {
                        return Err(NdrError::Invalid("ScmRequestInfo: array size"));
                    }
                    for _ in 0..n {
                        protseqs.push(r.u16()?);
                    }
                }
            }
        }
        Ok(ActivationIn {
            clsid: class,
            iids,
            protseqs,
            client_version: (major, minor),
        })
    }
}

/// The outcome for one requested interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceResult {
    /// Interface id.
    pub iid: Uuid,
    /// `S_OK` or the failure.
    pub hresult: u32,
    /// The marshaled interface pointer when it succeeded.
    pub objref: Option<ObjRef>,
}

/// What the SCM answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationOut {
    /// Object exporter id.
    pub oxid: u64,
    /// Where the object exporter listens, and with which authentication.
    pub bindings: DualStringArray,
    /// IPID of the exporter's `IRemUnknown`.
    pub ipid_rem_unknown: Uuid,
    /// Lowest authentication level the server will accept (`RPC_C_AUTHN_LEVEL_*`).
    pub authn_hint: u32,
    /// COM version of the server.
    pub server_version: (u16, u16),
    /// One entry per requested interface.
    pub interfaces: Vec<InterfaceResult>,
}

impl ActivationOut {
    /// The `OBJREF_CUSTOM` octets (`ppActProperties.abData`). Properties go
    /// in the order Windows uses and impacket expects: PropsOutInfo, ScmReplyInfo.
    pub fn encode(&self) -> Vec<u8> {
        let n = u32::try_from(self.interfaces.len()).unwrap_or(u32::MAX);
        let mut w = NdrWriter::new();
        w.u32(n);
        for _ in 0..3 {
            let p = w.referent_id();
            w.u32(p);
        }
        w.u32(n);
        for i in &self.interfaces {
            w.uuid(&i.iid);
        }
        w.u32(n);
        for i in &self.interfaces {
            w.u32(i.hresult);
        }
        w.u32(n);
        let objrefs: Vec<Option<Vec<u8>>> = self
            .interfaces
            .iter()
            .map(|i| i.objref.as_ref().map(ObjRef::encode))
            .collect();
        for o in &objrefs {
            if o.is_some() {
                let p = w.referent_id();
                w.u32(p);
            } else {
                w.u32(0);
            }
        }
        for o in objrefs.iter().flatten() {
            super::objref::write_interface_data(&mut w, o);
        }
        let props_out = ts1_wrap(&w.into_bytes());
        let mut w = NdrWriter::new();
        w.u32(0);
        let p = w.referent_id();
        w.u32(p);
        w.u64(self.oxid);
        let p = w.referent_id();
        w.u32(p);
        w.uuid(&self.ipid_rem_unknown);
        w.u32(self.authn_hint);
        w.u16(self.server_version.0);
        w.u16(self.server_version.1);
        self.bindings.write(&mut w);
        let scm = ts1_wrap(&w.into_bytes());
        ObjRef::Custom {
            iid: IID_IACTIVATIONPROPERTIESOUT,
            clsid: CLSID_ACTIVATIONPROPERTIESOUT,
            data: blob(&[(CLSID_PROPSOUTINFO, props_out), (CLSID_SCMREPLYINFO, scm)]),
        }
        .encode()
    }

    /// Parses `ppActProperties.abData` (client side).
    pub fn decode(objref: &[u8]) -> Result<Self, NdrError> {
        let ObjRef::Custom { clsid, data, .. } = ObjRef::decode(objref)? else {
            return Err(NdrError::Invalid("activation reply is not a custom OBJREF"));
        };
        if clsid != CLSID_ACTIVATIONPROPERTIESOUT {
            return Err(NdrError::Invalid("not ActivationPropertiesOut"));
        }
        let props = unblob(&data)?;
        let scm = property(&props, CLSID_SCMREPLYINFO)
            .ok_or(NdrError::Invalid("activation reply without ScmReplyInfo"))?;
        let (body, _) = ts1_unwrap(scm)?;
        let mut r = NdrReader::new(body);
        let _reserved = r.u32()?;
        if r.pointer()? == 0 {
            return Err(NdrError::Invalid("ScmReplyInfo without remoteReply"));
        }
        let oxid = r.u64()?;
        let pbind = r.pointer()?;
        let ipid_rem_unknown = r.uuid()?;
        let authn_hint = r.u32()?;
        let major = r.u16()?;
        let minor = r.u16()?;
        let bindings = if pbind != 0 {
            DualStringArray::read(&mut r)?
        } else {
            DualStringArray::default()
        };
        let po = property(&props, CLSID_PROPSOUTINFO)
            .ok_or(NdrError::Invalid("activation reply without PropsOutInfo"))?;
        let (body, _) = ts1_unwrap(po)?;
        let mut r = NdrReader::new(body);
        let n = r.u32()? as usize;
        let piid = r.pointer()?;
        let phr = r.pointer()?;
        let pdata = r.pointer()?;
        if n > MAX_IIDS || piid == 0 || phr == 0 {
            return Err(NdrError::Invalid("PropsOutInfo: interface count"));
        }
        if r.u32()? as usize != n {
            return Err(NdrError::Invalid("PropsOutInfo: piid size"));
        }
        let mut iids = Vec::with_capacity(n);
        for _ in 0..n {
            iids.push(r.uuid()?);
        }
        if r.u32()? as usize != n {
            return Err(NdrError::Invalid("PropsOutInfo: phresults size"));
        }
        let mut hrs = Vec::with_capacity(n);
        for _ in 0..n {
            hrs.push(r.u32()?);
        }
        let mut objrefs: Vec<Option<ObjRef>> = vec![None; n];
        if pdata != 0 {
            if r.u32()? as usize != n {
                return Err(NdrError::Invalid("PropsOutInfo: ppIntfData size"));
            }
            let mut present = Vec::with_capacity(n);
            for _ in 0..n {
                present.push(r.pointer()? != 0);
            }
            for (i, p) in present.into_iter().enumerate() {
                if p {
                    let d = super::objref::read_interface_data(&mut r)?;
                    objrefs[i] = Some(ObjRef::decode(&d)?);
                }
            }
        }
        let interfaces = iids
            .into_iter()
            .zip(hrs)
            .zip(objrefs)
            .map(|((iid, hresult), objref)| InterfaceResult {
                iid,
                hresult,
                objref,
            })
            .collect();
        Ok(ActivationOut {
            oxid,
            bindings,
            ipid_rem_unknown,
            authn_hint,
            server_version: (major, minor),
            interfaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::objref::{StdObjRef, StringBinding, SORF_NOPING};
    use super::*;

    const CLSID_CCERTADMIND: Uuid = Uuid::from_u128(0xd99e6e73_fc88_11d0_b498_00a0c90312f3);
    const IID_ICERTADMIND: Uuid = Uuid::from_u128(0xd99e6e71_fc88_11d0_b498_00a0c90312f3);

    #[test]
    fn activation_in_roundtrip_and_layout() {
        let a = ActivationIn::new(CLSID_CCERTADMIND, IID_ICERTADMIND);
        let b = a.encode();
        assert_eq!(&b[..4], b"MEOW");
        assert_eq!(ActivationIn::decode(&b).unwrap(), a);
        // Same layout as impacket's: InstantiationInfo is 88 octets
        // (16 header + 52 body + 4 pIID… padded), the custom header 152.
        let ObjRef::Custom { data, .. } = ObjRef::decode(&b).unwrap() else {
            unreachable!()
        };
        let props = unblob(&data).unwrap();
        let sizes: Vec<usize> = props.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(sizes, vec![88, 40, 32, 48]);
        let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert_eq!(total + 8, data.len());
    }

    /// What impacket 0.13.1 (`IRemoteSCMActivator.RemoteCreateInstance`)
    /// puts in `pActProperties` for CCertAdminD / ICertAdminD: an
    /// independent encoder (unpadded ObjectBufferLength, 0xFA padding,
    /// thisSize 0, random referent ids).
    const IMPACKET_ACTIVATION_IN: &str = "4d454f5704000000a201000000000000c0000000000000463803000000000000c0000000000000460000000078010000680100000000000001100800cccccccc88000000cccccccc680100009800000000000000020000000400000000000000000000000000000000000000cf140000180f00000000000004000000ab01000000000000c000000000000046a501000000000000c000000000000046a401000000000000c000000000000046aa01000000000000c000000000000046040000005800000028000000200000003000000001100800cccccccc44000000cccccccc736e9ed988fcd011b49800a0c90312f30000000000000000000000000100000000000000f4d80000000000000500070001000000716e9ed988fcd011b49800a0c90312f3fafafafa01100800cccccccc18000000cccccccc00000000000000000000000000000000000000000000000001100800cccccccc10000000cccccccc0000000000000000000000000000000001100800cccccccc1a000000cccccccc00000000c92f0000000000000100aaaa8fcd0000010000000700fafafafafafa";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn impacket_activation_properties_decode() {
        let b = unhex(IMPACKET_ACTIVATION_IN);
        let a = ActivationIn::decode(&b).unwrap();
        assert_eq!(a.clsid, CLSID_CCERTADMIND);
        assert_eq!(a.iids, vec![IID_ICERTADMIND]);
        assert_eq!(a.protseqs, vec![TOWERID_NCACN_IP_TCP]);
        assert_eq!(a.client_version, (5, 7));
        // Our encoding has the same shape: OBJREF header, blob sizes,
        // custom header and property sizes.
        let ours = ActivationIn::new(CLSID_CCERTADMIND, IID_ICERTADMIND).encode();
        assert_eq!(ours.len(), b.len());
        assert_eq!(ours[..48], b[..48], "OBJREF_CUSTOM header");
        let (ObjRef::Custom { data: d1, .. }, ObjRef::Custom { data: d2, .. }) =
            (ObjRef::decode(&ours).unwrap(), ObjRef::decode(&b).unwrap())
        else {
            unreachable!()
        };
        let s1: Vec<(Uuid, usize)> = unblob(&d1)
            .unwrap()
            .iter()
            .map(|(c, p)| (*c, p.len()))
            .collect();
        let s2: Vec<(Uuid, usize)> = unblob(&d2)
            .unwrap()
            .iter()
            .map(|(c, p)| (*c, p.len()))
            .collect();
        assert_eq!(s1, s2);
    }

    #[test]
    fn activation_out_roundtrip() {
        let o = ActivationOut {
            oxid: 0x0102_0304_0506_0708,
            bindings: DualStringArray {
                string_bindings: vec![StringBinding::tcp("127.0.0.1", 50000)],
                security_bindings: vec![],
            },
            ipid_rem_unknown: Uuid::from_u128(0x55),
            authn_hint: 6,
            server_version: (5, 7),
            interfaces: vec![
                InterfaceResult {
                    iid: IID_ICERTADMIND,
                    hresult: 0,
                    objref: Some(ObjRef::Standard {
                        iid: IID_ICERTADMIND,
                        std: StdObjRef {
                            flags: SORF_NOPING,
                            public_refs: 5,
                            oxid: 0x0102_0304_0506_0708,
                            oid: 9,
                            ipid: Uuid::from_u128(0x66),
                        },
                        resolver: DualStringArray::default(),
                    }),
                },
                InterfaceResult {
                    iid: Uuid::from_u128(3),
                    hresult: super::super::E_NOINTERFACE,
                    objref: None,
                },
            ],
        };
        let b = o.encode();
        assert_eq!(ActivationOut::decode(&b).unwrap(), o);
    }

    #[test]
    fn hostile_blobs_are_errors() {
        let a = ActivationIn::new(CLSID_CCERTADMIND, IID_ICERTADMIND).encode();
        // every truncation fails cleanly
        for n in 0..a.len() {
            let _ = ActivationIn::decode(&a[..n]);
        }
        // a property count beyond the limit
        let mut b = a.clone();
        // OBJREF custom header 48, blob 8, ts1 header 16, cIfs at body offset 16
        b[48 + 8 + 16 + 16] = 200;
        assert!(ActivationIn::decode(&b).is_err());
        // type serialization header that is not v1/LE
        let mut b = a;
        b[48 + 8 + 1] = 0;
        assert!(ActivationIn::decode(&b).is_err());
    }
}
