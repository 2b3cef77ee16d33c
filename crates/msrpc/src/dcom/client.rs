//! DCOM client: activation through the SCM and calls on interface pointers.
//!
//! 1. connect to the SCM port (135), bind `IRemoteSCMActivator` with the
//!    caller's authentication, `RemoteCreateInstance(clsid, iid)`;
//! 2. pick the object exporter's `ncacn_ip_tcp` string binding and connect
//!    to its port *on the host we were given* (the exporter announces its
//!    NetBIOS name and addresses, which need not resolve or be reachable from
//!    here; the port is what matters), bind the interface, authenticate;
//! 3. every call starts with `ORPCTHIS`, carries the interface's IPID as the
//!    request's object UUID, and its reply starts with `ORPCTHAT`;
//! 4. `RemRelease` through `IRemUnknown2` when done.
//!
//! The objects are short-lived (seconds), so no ping set is maintained; the
//! server marks its references `SORF_NOPING` or collects them after minutes.

use std::net::SocketAddr;

use super::activation::{ActivationIn, ActivationOut};
use super::objref::{read_interface_pointer, write_interface_pointer, ObjRef, StdObjRef};
use super::orpc::{OrpcThat, OrpcThis};
use super::{
    iface, IREMOTESCMACTIVATOR, IREMUNKNOWN2, MAX_IIDS, OPNUM_REMOTE_CREATE_INSTANCE,
    OPNUM_REM_QUERY_INTERFACE, OPNUM_REM_RELEASE,
};
use crate::auth::ClientAuth;
use crate::client::{ClientOptions, RpcClient};
use crate::error::RpcError;
use crate::ndr::{NdrError, NdrReader, NdrWriter};
use crate::uuid::Uuid;

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, RpcError> {
    let mut it = tokio::net::lookup_host((host, port)).await?;
    it.next()
        .ok_or_else(|| RpcError::Protocol(format!("{host} did not resolve")))
}

/// Encodes a `RemoteCreateInstance` request stub.
pub fn encode_create_instance(this: &OrpcThis, props: &[u8]) -> Vec<u8> {
    let mut w = NdrWriter::new();
    this.write(&mut w);
    write_interface_pointer(&mut w, None);
    write_interface_pointer(&mut w, Some(props));
    w.into_bytes()
}

/// Decodes a `RemoteCreateInstance` reply stub: `ORPCTHAT`, the activation
/// properties (when present) and the HRESULT.
pub fn decode_create_instance_reply(
    stub: &[u8],
) -> Result<(OrpcThat, Option<Vec<u8>>, u32), NdrError> {
    let mut r = NdrReader::new(stub);
    let that = OrpcThat::read(&mut r)?;
    let props = read_interface_pointer(&mut r)?;
    let hr = r.u32()?;
    Ok((that, props, hr))
}

/// Chooses the exporter port from its string bindings: a `ncacn_ip_tcp`
/// binding whose host is `host` (case-insensitive; the first label of a DNS
/// name also matches a NetBIOS name), otherwise the first `ncacn_ip_tcp` one.
pub fn exporter_port(out: &ActivationOut, host: &str) -> Option<u16> {
    let tcp: Vec<(&str, u16)> = out
        .bindings
        .string_bindings
        .iter()
        .filter_map(|b| b.tcp_host_port())
        .collect();
    let first_label = host.split('.').next().unwrap_or(host);
    tcp.iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(first_label))
        .or_else(|| tcp.first())
        .map(|(_, p)| *p)
}

/// An interface pointer on a remote object, with a connection bound to it.
#[derive(Debug)]
pub struct DcomObject {
    rpc: RpcClient,
    iid: Uuid,
    std: StdObjRef,
    ipid_rem_unknown: Uuid,
    exporter: SocketAddr,
    auth: ClientAuth,
    opts: ClientOptions,
    rem_unknown: Option<RpcClient>,
}

/// Activates `clsid` on `host` through the SCM at `scm_port` and returns the
/// `iid` interface pointer, connected and authenticated.
pub async fn activate(
    host: &str,
    scm_port: u16,
    clsid: Uuid,
    iid: Uuid,
    auth: &ClientAuth,
    opts: &ClientOptions,
) -> Result<DcomObject, RpcError> {
    let scm = resolve(host, scm_port).await?;
    let mut c = RpcClient::connect(scm, IREMOTESCMACTIVATOR, Some(auth), opts).await?;
    let stub = encode_create_instance(&OrpcThis::new(), &ActivationIn::new(clsid, iid).encode());
    let reply = c.call(OPNUM_REMOTE_CREATE_INSTANCE, &stub).await?;
    let (_that, props, hr) = decode_create_instance_reply(&reply)?;
    if hr != 0 {
        return Err(RpcError::Hresult {
            op: "RemoteCreateInstance",
            status: hr,
        });
    }
    let props = props
        .ok_or_else(|| RpcError::Protocol("activation succeeded without properties".into()))?;
    let out = ActivationOut::decode(&props)?;
    let res = out
        .interfaces
        .iter()
        .find(|i| i.iid == iid)
        .ok_or_else(|| {
            RpcError::Protocol("activation reply lacks the requested interface".into())
        })?;
    if res.hresult != 0 {
        return Err(RpcError::Hresult {
            op: "RemoteCreateInstance (interface)",
            status: res.hresult,
        });
    }
    let Some(ObjRef::Standard { std, .. }) = &res.objref else {
        return Err(RpcError::Protocol(
            "activation returned no standard interface pointer".into(),
        ));
    };
    let port = exporter_port(&out, host).ok_or_else(|| {
        RpcError::Protocol("the object exporter announced no ncacn_ip_tcp binding".into())
    })?;
    let exporter = resolve(host, port).await?;
    tracing::debug!(%exporter, oxid = out.oxid, ipid = %std.ipid, "DCOM object activated");
    let rpc = RpcClient::connect(exporter, iface(iid), Some(auth), opts).await?;
    Ok(DcomObject {
        rpc,
        iid,
        std: *std,
        ipid_rem_unknown: out.ipid_rem_unknown,
        exporter,
        auth: auth.clone(),
        opts: opts.clone(),
        rem_unknown: None,
    })
}

impl DcomObject {
    /// Interface id of this pointer.
    pub fn iid(&self) -> Uuid {
        self.iid
    }

    /// The standard object reference (OXID, OID, IPID).
    pub fn objref(&self) -> &StdObjRef {
        &self.std
    }

    /// Address of the object exporter.
    pub fn exporter(&self) -> SocketAddr {
        self.exporter
    }

    /// A writer with `ORPCTHIS` already in place: append the parameters.
    pub fn request(&self) -> NdrWriter {
        let mut w = NdrWriter::new();
        OrpcThis::new().write(&mut w);
        w
    }

    /// Calls `opnum` with a stub from [`request`](Self::request); returns
    /// the reply stub (starting with `ORPCTHAT`, see [`reply`]).
    pub async fn call(&mut self, opnum: u16, w: NdrWriter) -> Result<Vec<u8>, RpcError> {
        self.rpc
            .call_object(opnum, Some(self.std.ipid), &w.into_bytes())
            .await
    }

    async fn rem_unknown(&mut self) -> Result<&mut RpcClient, RpcError> {
        if self.rem_unknown.is_none() {
            let c = RpcClient::connect(self.exporter, IREMUNKNOWN2, Some(&self.auth), &self.opts)
                .await?;
            self.rem_unknown = Some(c);
        }
        self.rem_unknown
            .as_mut()
            .ok_or_else(|| RpcError::Protocol("IRemUnknown2 connection".into()))
    }

    /// `IRemUnknown::RemQueryInterface` for `iid` on the same object; returns
    /// a new pointer with its own connection.
    pub async fn query_interface(&mut self, iid: Uuid) -> Result<DcomObject, RpcError> {
        let ipid = self.std.ipid;
        let rem = self.ipid_rem_unknown;
        let stub = encode_rem_query_interface(&OrpcThis::new(), ipid, 1, &[iid]);
        let c = self.rem_unknown().await?;
        let reply = c
            .call_object(OPNUM_REM_QUERY_INTERFACE, Some(rem), &stub)
            .await?;
        let (_, results, hr) = decode_rem_query_interface_reply(&reply)?;
        if hr != 0 {
            return Err(RpcError::Hresult {
                op: "RemQueryInterface",
                status: hr,
            });
        }
        let (qhr, std) = results
            .into_iter()
            .next()
            .ok_or_else(|| RpcError::Protocol("RemQueryInterface returned no result".into()))?;
        if qhr != 0 {
            return Err(RpcError::Hresult {
                op: "RemQueryInterface (interface)",
                status: qhr,
            });
        }
        let rpc =
            RpcClient::connect(self.exporter, iface(iid), Some(&self.auth), &self.opts).await?;
        Ok(DcomObject {
            rpc,
            iid,
            std,
            ipid_rem_unknown: self.ipid_rem_unknown,
            exporter: self.exporter,
            auth: self.auth.clone(),
            opts: self.opts.clone(),
            rem_unknown: None,
        })
    }

    /// `IRemUnknown::RemRelease` of this pointer's public references.
    pub async fn release(mut self) -> Result<(), RpcError> {
        let refs = self.std.public_refs.max(1);
        let ipid = self.std.ipid;
        let rem = self.ipid_rem_unknown;
        let stub = encode_rem_release(&OrpcThis::new(), &[(ipid, refs, 0)]);
        let c = self.rem_unknown().await?;
        let reply = c.call_object(OPNUM_REM_RELEASE, Some(rem), &stub).await?;
        let mut r = NdrReader::new(&reply);
        OrpcThat::read(&mut r)?;
        let hr = r.u32()?;
        if hr != 0 {
            return Err(RpcError::Hresult {
                op: "RemRelease",
                status: hr,
            });
        }
        Ok(())
    }
}

/// Reads the `ORPCTHAT` of a reply and returns the reader positioned on the
/// out-parameters.
pub fn reply(stub: &[u8]) -> Result<NdrReader<'_>, NdrError> {
    let mut r = NdrReader::new(stub);
    OrpcThat::read(&mut r)?;
    Ok(r)
}

/// Encodes `RemQueryInterface(ripid, cRefs, cIids, iids)`.
pub fn encode_rem_query_interface(
    this: &OrpcThis,
    ipid: Uuid,
    refs: u32,
    iids: &[Uuid],
) -> Vec<u8> {
    let mut w = NdrWriter::new();
    this.write(&mut w);
    w.uuid(&ipid);
    w.u32(refs);
    w.u16(u16::try_from(iids.len()).unwrap_or(u16::MAX));
    w.u32(u32::try_from(iids.len()).unwrap_or(u32::MAX));
    for i in iids {
        w.uuid(i);
    }
    w.into_bytes()
}

/// Decodes `RemQueryInterface` in-parameters (server side): ORPCTHIS, IPID, refs, IIDs.
pub fn decode_rem_query_interface(
    stub: &[u8],
) -> Result<(OrpcThis, Uuid, u32, Vec<Uuid>), NdrError> {
    let mut r = NdrReader::new(stub);
    let this = OrpcThis::read(&mut r)?;
    let ipid = r.uuid()?;
    let refs = r.u32()?;
    let n = usize::from(r.u16()?);
    let max = r.u32()? as usize;
    if n > MAX_IIDS || max != n {
        return Err(NdrError::Bounds {
            offset: r.position(),
            detail: "RemQueryInterface IID count",
        });
    }
    let mut iids = Vec::with_capacity(n);
    for _ in 0..n {
        iids.push(r.uuid()?);
    }
    Ok((this, ipid, refs, iids))
}

/// Encodes the `RemQueryInterface` reply: `ORPCTHAT`, `REMQIRESULT` array, HRESULT.
pub fn encode_rem_query_interface_reply(results: &[(u32, StdObjRef)], hr: u32) -> Vec<u8> {
    let mut w = NdrWriter::new();
    OrpcThat::default().write(&mut w);
    if results.is_empty() {
        w.u32(0);
    } else {
        let p = w.referent_id();
        w.u32(p);
        w.u32(u32::try_from(results.len()).unwrap_or(u32::MAX));
        for (h, std) in results {
            w.align(8);
            w.u32(*h);
            std.write(&mut w);
        }
    }
    w.u32(hr);
    w.into_bytes()
}

/// Decodes the `RemQueryInterface` reply.
#[allow(clippy::type_complexity)]
pub fn decode_rem_query_interface_reply(
    stub: &[u8],
) -> Result<(OrpcThat, Vec<(u32, StdObjRef)>, u32), NdrError> {
    let mut r = NdrReader::new(stub);
    let that = OrpcThat::read(&mut r)?;
    let mut results = Vec::new();
    if r.pointer()? != 0 {
        let n = r.u32()? as usize;
        if n > MAX_IIDS {
            return Err(NdrError::Bounds {
                offset: r.position(),
                detail: "REMQIRESULT count",
            });
        }
        for _ in 0..n {
            r.align(8)?;
            let h = r.u32()?;
            results.push((h, StdObjRef::read(&mut r)?));
        }
    }
    let hr = r.u32()?;
    Ok((that, results, hr))
}

/// Encodes `RemRelease(cInterfaceRefs, InterfaceRefs)`; each entry is
/// (IPID, public references, private references).
pub fn encode_rem_release(this: &OrpcThis, refs: &[(Uuid, u32, u32)]) -> Vec<u8> {
    let mut w = NdrWriter::new();
    this.write(&mut w);
    w.u16(u16::try_from(refs.len()).unwrap_or(u16::MAX));
    w.u32(u32::try_from(refs.len()).unwrap_or(u32::MAX));
    for (ipid, public, private) in refs {
        w.uuid(ipid);
        w.u32(*public);
        w.u32(*private);
    }
    w.into_bytes()
}

/// Decodes `RemRelease` / `RemAddRef` in-parameters (server side).
#[allow(clippy::type_complexity)]
pub fn decode_rem_release(stub: &[u8]) -> Result<(OrpcThis, Vec<(Uuid, u32, u32)>), NdrError> {
    let mut r = NdrReader::new(stub);
    let this = OrpcThis::read(&mut r)?;
    let n = usize::from(r.u16()?);
    let max = r.u32()? as usize;
    if n > super::MAX_INTERFACE_REFS || max != n {
        return Err(NdrError::Bounds {
            offset: r.position(),
            detail: "REMINTERFACEREF count",
        });
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push((r.uuid()?, r.u32()?, r.u32()?));
    }
    Ok((this, v))
}

#[cfg(test)]
mod tests {
    use super::super::objref::{DualStringArray, StringBinding};
    use super::*;

    #[test]
    fn exporter_port_prefers_the_matching_host() {
        let out = ActivationOut {
            oxid: 1,
            bindings: DualStringArray {
                string_bindings: vec![
                    StringBinding::tcp("CA01", 50001),
                    StringBinding::tcp("10.1.1.1", 50002),
                ],
                security_bindings: vec![],
            },
            ipid_rem_unknown: Uuid::NIL,
            authn_hint: 6,
            server_version: (5, 7),
            interfaces: vec![],
        };
        assert_eq!(exporter_port(&out, "10.1.1.1"), Some(50002));
        assert_eq!(exporter_port(&out, "ca01.corp.example"), Some(50001));
        assert_eq!(exporter_port(&out, "elsewhere"), Some(50001));
    }

    #[test]
    fn rem_unknown_stubs_roundtrip() {
        let this = OrpcThis::new();
        let iids = [Uuid::from_u128(1), Uuid::from_u128(2)];
        let b = encode_rem_query_interface(&this, Uuid::from_u128(3), 5, &iids);
        let (t, ipid, refs, got) = decode_rem_query_interface(&b).unwrap();
        assert_eq!(
            (t, ipid, refs, got.as_slice()),
            (this.clone(), Uuid::from_u128(3), 5, &iids[..])
        );
        let std = StdObjRef {
            flags: 0,
            public_refs: 5,
            oxid: 7,
            oid: 8,
            ipid: Uuid::from_u128(9),
        };
        let b = encode_rem_query_interface_reply(&[(0, std), (0x8000_4002, std)], 0);
        let (_, res, hr) = decode_rem_query_interface_reply(&b).unwrap();
        assert_eq!((res, hr), (vec![(0, std), (0x8000_4002, std)], 0));
        let b = encode_rem_release(&this, &[(Uuid::from_u128(9), 5, 0)]);
        assert_eq!(
            decode_rem_release(&b).unwrap().1,
            vec![(Uuid::from_u128(9), 5, 0)]
        );
        let b = encode_create_instance(&this, &[1, 2, 3]);
        let mut r = NdrReader::new(&b);
        OrpcThis::read(&mut r).unwrap();
        assert_eq!(read_interface_pointer(&mut r).unwrap(), None);
        assert_eq!(read_interface_pointer(&mut r).unwrap(), Some(vec![1, 2, 3]));
    }
}
