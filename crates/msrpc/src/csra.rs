//! MS-CSRA `ICertAdminD` / `ICertAdminD2` and MS-WCCE `ICertRequestD` /
//! `ICertRequestD2` marshalling (both directions), for the DCOM paths to a CA.
//!
//! ```text
//! ICertAdminD::ResubmitRequest (5)  ([in,string,unique] authority, [in] DWORD id, [out] DWORD* disposition)
//! ICertAdminD::DenyRequest (6)      ([in,string,unique] authority, [in] DWORD id)
//! ICertAdminD::RevokeCertificate (10) ([in,string,unique] authority, [in,string,unique] serial,
//!                                     [in] DWORD reason, [in] FILETIME when)
//! ICertAdminD2::GetCAProperty (32)  ([in,string,unique] authority, LONG id, LONG index, LONG type,
//!                                     [out,ref] CERTTRANSBLOB* value)
//! ICertRequestD::Request (3)        (DWORD flags, authority, [in,out,ref] DWORD* id, [out] DWORD* disp,
//!                                     [in,string,unique] attributes, [in,ref] CERTTRANSBLOB* request,
//!                                     [out] chain, [out] encoded cert, [out] message)
//! ICertRequestD2::Request2 (6)      (authority, DWORD flags, [in,string,unique] serial, id, disp,
//!                                     attributes, request, [out] full response, cert, message)
//! ```
//! Every method returns an HRESULT after its out-parameters, and every stub
//! starts with `ORPCTHIS` / `ORPCTHAT`.

use crate::dcom::orpc::{OrpcThat, OrpcThis};
use crate::icpr::{MAX_AUTHORITY, MAX_BLOB};
use crate::ndr::{NdrError, NdrReader, NdrWriter};
use crate::uuid::Uuid;

/// `CLSID_CCertAdminD`.
pub const CLSID_CCERTADMIND: Uuid = Uuid::from_u128(0xd99e6e73_fc88_11d0_b498_00a0c90312f3);
/// `CLSID_CCertRequestD`.
pub const CLSID_CCERTREQUESTD: Uuid = Uuid::from_u128(0xd99e6e74_fc88_11d0_b498_00a0c90312f3);
/// `IID_ICertAdminD`.
pub const IID_ICERTADMIND: Uuid = Uuid::from_u128(0xd99e6e71_fc88_11d0_b498_00a0c90312f3);
/// `IID_ICertAdminD2`.
pub const IID_ICERTADMIND2: Uuid = Uuid::from_u128(0x7fe0d935_dda6_443f_85d0_1cfb58fe41dd);
/// `IID_ICertRequestD`.
pub const IID_ICERTREQUESTD: Uuid = Uuid::from_u128(0xd99e6e70_fc88_11d0_b498_00a0c90312f3);
/// `IID_ICertRequestD2`.
pub const IID_ICERTREQUESTD2: Uuid = Uuid::from_u128(0x5422fd3a_d4b8_4cef_a12e_e87d4ca22e90);

/// `ICertAdminD::ResubmitRequest`.
pub const OPNUM_RESUBMIT_REQUEST: u16 = 5;
/// `ICertAdminD::DenyRequest`.
pub const OPNUM_DENY_REQUEST: u16 = 6;
/// `ICertAdminD::RevokeCertificate`.
pub const OPNUM_REVOKE_CERTIFICATE: u16 = 10;
/// `ICertAdminD2::GetCAProperty`.
pub const OPNUM_ADMIN2_GET_CA_PROPERTY: u16 = 32;
/// `ICertRequestD::Request`.
pub const OPNUM_REQUEST: u16 = 3;
/// `ICertRequestD2::Request2`.
pub const OPNUM_REQUEST2: u16 = 6;
/// `ICertRequestD2::GetCAProperty`.
pub const OPNUM_REQUEST2_GET_CA_PROPERTY: u16 = 7;

/// `CR_PROP_TEMPLATES`: the templates the CA issues (`name\noid\n…`).
pub const CR_PROP_TEMPLATES: i32 = 0x1d;
/// `CR_PROP_CANAME`.
pub const CR_PROP_CANAME: i32 = 0x06;
/// `PROPTYPE_LONG`.
pub const PROPTYPE_LONG: i32 = 1;
/// `PROPTYPE_BINARY`.
pub const PROPTYPE_BINARY: i32 = 3;
/// `PROPTYPE_STRING`.
pub const PROPTYPE_STRING: i32 = 4;

/// Largest serial number string accepted (characters).
pub const MAX_SERIAL: usize = 128;
/// Largest attribute string accepted (characters).
pub const MAX_ATTRIBUTES: usize = 64 << 10;

/// Request id / authority pair of `ResubmitRequest` and `DenyRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRef {
    /// CA name (`pwszAuthority`).
    pub authority: Option<String>,
    /// Request id.
    pub request_id: u32,
}

fn head(this: &OrpcThis, authority: Option<&str>) -> NdrWriter {
    let mut w = NdrWriter::new();
    this.write(&mut w);
    w.unique_wstring(authority);
    w
}

fn read_head<'a>(stub: &'a [u8]) -> Result<(NdrReader<'a>, Option<String>), NdrError> {
    let mut r = NdrReader::new(stub);
    OrpcThis::read(&mut r)?;
    let authority = r.unique_wstring(MAX_AUTHORITY)?;
    Ok((r, authority))
}

/// Encodes `ResubmitRequest` / `DenyRequest` (same in-parameters).
pub fn encode_request_ref(this: &OrpcThis, authority: &str, request_id: u32) -> Vec<u8> {
    let mut w = head(this, Some(authority));
    w.u32(request_id);
    w.into_bytes()
}

/// Decodes `ResubmitRequest` / `DenyRequest` in-parameters (trailing
/// parameters some clients add are ignored).
pub fn decode_request_ref(stub: &[u8]) -> Result<RequestRef, NdrError> {
    let (mut r, authority) = read_head(stub)?;
    Ok(RequestRef {
        authority,
        request_id: r.u32()?,
    })
}

/// Encodes the `ResubmitRequest` reply.
pub fn encode_resubmit_reply(disposition: u32, hr: u32) -> Vec<u8> {
    let mut w = NdrWriter::new();
    OrpcThat::default().write(&mut w);
    w.u32(disposition);
    w.u32(hr);
    w.into_bytes()
}

/// Decodes the `ResubmitRequest` reply: (disposition, HRESULT).
pub fn decode_resubmit_reply(stub: &[u8]) -> Result<(u32, u32), NdrError> {
    let mut r = NdrReader::new(stub);
    OrpcThat::read(&mut r)?;
    Ok((r.u32()?, r.u32()?))
}

/// Decodes a reply that is `ORPCTHAT` and an HRESULT.
pub fn decode_hresult_reply(stub: &[u8]) -> Result<u32, NdrError> {
    let mut r = NdrReader::new(stub);
    OrpcThat::read(&mut r)?;
    r.u32()
}

/// `RevokeCertificate` in-parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoke {
    /// CA name.
    pub authority: Option<String>,
    /// Serial number, hexadecimal digits without `0x`.
    pub serial: Option<String>,
    /// CRL reason code (RFC 5280 5.3.1) or 0xffffffff (release from hold).
    pub reason: u32,
    /// Revocation date as a Windows FILETIME (100 ns since 1601); 0 = now.
    pub filetime: u64,
}

impl Revoke {
    /// Stub data.
    pub fn encode(&self, this: &OrpcThis) -> Vec<u8> {
        let mut w = head(this, self.authority.as_deref());
        w.unique_wstring(self.serial.as_deref());
        w.u32(self.reason);
        w.u32(self.filetime as u32);
        w.u32((self.filetime >> 32) as u32);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, NdrError> {
        let (mut r, authority) = read_head(stub)?;
        let serial = r.unique_wstring(MAX_SERIAL)?;
        let reason = r.u32()?;
        let lo = u64::from(r.u32()?);
        let hi = u64::from(r.u32()?);
        Ok(Revoke {
            authority,
            serial,
            reason,
            filetime: (hi << 32) | lo,
        })
    }
}

/// Converts a time to a Windows FILETIME (100 ns intervals since 1601-01-01).
pub fn filetime(t: std::time::SystemTime) -> u64 {
    const EPOCH_DIFF_100NS: u64 = 116_444_736_000_000_000;
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => EPOCH_DIFF_100NS.saturating_add(
            u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX - EPOCH_DIFF_100NS),
        ),
        Err(e) => EPOCH_DIFF_100NS
            .saturating_sub(u64::try_from(e.duration().as_nanos() / 100).unwrap_or(u64::MAX)),
    }
}

/// Converts a FILETIME back (`None` for 0, which means "now" to the CA).
pub fn from_filetime(ft: u64) -> Option<std::time::SystemTime> {
    const EPOCH_DIFF_100NS: u64 = 116_444_736_000_000_000;
    if ft == 0 {
        return None;
    }
    let base = std::time::UNIX_EPOCH;
    if ft >= EPOCH_DIFF_100NS {
        base.checked_add(std::time::Duration::from_nanos(
            (ft - EPOCH_DIFF_100NS).saturating_mul(100),
        ))
    } else {
        base.checked_sub(std::time::Duration::from_nanos(
            (EPOCH_DIFF_100NS - ft).saturating_mul(100),
        ))
    }
}

/// `GetCAProperty` in-parameters (ICertAdminD2 and ICertRequestD2 alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetCaProperty {
    /// CA name.
    pub authority: Option<String>,
    /// `CR_PROP_*`.
    pub prop_id: i32,
    /// Index for indexed properties.
    pub prop_index: i32,
    /// `PROPTYPE_*`.
    pub prop_type: i32,
}

impl GetCaProperty {
    /// Stub data.
    pub fn encode(&self, this: &OrpcThis) -> Vec<u8> {
        let mut w = head(this, self.authority.as_deref());
        w.u32(self.prop_id as u32);
        w.u32(self.prop_index as u32);
        w.u32(self.prop_type as u32);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, NdrError> {
        let (mut r, authority) = read_head(stub)?;
        Ok(GetCaProperty {
            authority,
            prop_id: r.u32()? as i32,
            prop_index: r.u32()? as i32,
            prop_type: r.u32()? as i32,
        })
    }
}

/// Encodes the `GetCAProperty` reply.
pub fn encode_property_reply(value: &[u8], hr: u32) -> Vec<u8> {
    let mut w = NdrWriter::new();
    OrpcThat::default().write(&mut w);
    w.cert_trans_blob(value);
    w.u32(hr);
    w.into_bytes()
}

/// Decodes the `GetCAProperty` reply: (value, HRESULT).
pub fn decode_property_reply(stub: &[u8]) -> Result<(Vec<u8>, u32), NdrError> {
    let mut r = NdrReader::new(stub);
    OrpcThat::read(&mut r)?;
    let v = r.cert_trans_blob(MAX_BLOB)?;
    Ok((v, r.u32()?))
}

/// Parses the `CR_PROP_TEMPLATES` string (UTF-16LE `name\noid\n…`) into
/// (name, OID) pairs; a trailing unpaired entry is dropped.
pub fn parse_templates(value: &[u8]) -> Vec<(String, String)> {
    let text = crate::icpr::utf16le_to_string(value);
    let parts: Vec<&str> = text.split('\n').collect();
    parts
        .chunks_exact(2)
        .filter(|c| !c[0].is_empty())
        .map(|c| (c[0].to_owned(), c[1].to_owned()))
        .collect()
}

/// Formats (name, OID) pairs as the `CR_PROP_TEMPLATES` string (UTF-16LE,
/// `name\noid\n…`, NUL-terminated), as Windows returns it.
pub fn format_templates(t: &[(String, String)]) -> Vec<u8> {
    let mut s = String::new();
    for (n, o) in t {
        s.push_str(n);
        s.push('\n');
        s.push_str(o);
        s.push('\n');
    }
    crate::icpr::string_to_utf16le(&s)
}

/// An enrollment through `ICertRequestD::Request` (v1) or `ICertRequestD2::Request2` (v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollRequest {
    /// `CR_IN_*` flags.
    pub flags: u32,
    /// CA name.
    pub authority: Option<String>,
    /// `pwszSerialNumber` (v2 only; retrieval by serial).
    pub serial: Option<String>,
    /// Request id (0 for a new request).
    pub request_id: u32,
    /// `Name:Value` lines separated by `\n`.
    pub attributes: Option<String>,
    /// DER request (empty for a retrieval).
    pub request: Vec<u8>,
}

impl EnrollRequest {
    /// A new PKCS #10 submission for `template`.
    pub fn submit(ca: &str, template: &str, csr_der: &[u8]) -> Self {
        EnrollRequest {
            flags: crate::icpr::CR_IN_PKCS10 | crate::icpr::CR_IN_BINARY,
            authority: Some(ca.to_owned()),
            serial: None,
            request_id: 0,
            attributes: Some(format!("CertificateTemplate:{template}")),
            request: csr_der.to_vec(),
        }
    }

    /// A retrieval of request `id`.
    pub fn retrieve(ca: &str, id: u32) -> Self {
        EnrollRequest {
            flags: 0,
            authority: Some(ca.to_owned()),
            serial: None,
            request_id: id,
            attributes: None,
            request: Vec::new(),
        }
    }

    /// Stub data for `Request` (`v2 = false`) or `Request2`.
    pub fn encode(&self, this: &OrpcThis, v2: bool) -> Vec<u8> {
        let mut w = NdrWriter::new();
        this.write(&mut w);
        if v2 {
            w.unique_wstring(self.authority.as_deref());
            w.u32(self.flags);
            w.unique_wstring(self.serial.as_deref());
        } else {
            w.u32(self.flags);
            w.unique_wstring(self.authority.as_deref());
        }
        w.u32(self.request_id);
        w.unique_wstring(self.attributes.as_deref());
        w.cert_trans_blob(&self.request);
        w.into_bytes()
    }

    /// Parses stub data of `Request` or `Request2`.
    pub fn decode(stub: &[u8], v2: bool) -> Result<Self, NdrError> {
        let mut r = NdrReader::new(stub);
        OrpcThis::read(&mut r)?;
        let (flags, authority, serial) = if v2 {
            let a = r.unique_wstring(MAX_AUTHORITY)?;
            let f = r.u32()?;
            let s = r.unique_wstring(MAX_SERIAL)?;
            (f, a, s)
        } else {
            let f = r.u32()?;
            (f, r.unique_wstring(MAX_AUTHORITY)?, None)
        };
        let request_id = r.u32()?;
        let attributes = r.unique_wstring(MAX_ATTRIBUTES)?;
        let request = r.cert_trans_blob(MAX_BLOB)?;
        Ok(EnrollRequest {
            flags,
            authority,
            serial,
            request_id,
            attributes,
            request,
        })
    }

    /// The attributes as (name, value) pairs.
    pub fn attribute_pairs(&self) -> Vec<(String, String)> {
        self.attributes
            .as_deref()
            .unwrap_or("")
            .split('\n')
            .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    }
}

/// The reply of `Request` / `Request2`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EnrollReply {
    /// Request id.
    pub request_id: u32,
    /// `CR_DISP_*` or a failure HRESULT.
    pub disposition: u32,
    /// PKCS #7 chain (v1) / full response or chain (v2).
    pub chain: Vec<u8>,
    /// Issued certificate (DER).
    pub encoded_cert: Vec<u8>,
    /// Disposition message, UTF-16LE.
    pub message: Vec<u8>,
    /// Return HRESULT.
    pub status: u32,
}

impl EnrollReply {
    /// Stub data (same layout for v1 and v2).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = NdrWriter::new();
        OrpcThat::default().write(&mut w);
        w.u32(self.request_id);
        w.u32(self.disposition);
        w.cert_trans_blob(&self.chain);
        w.cert_trans_blob(&self.encoded_cert);
        w.cert_trans_blob(&self.message);
        w.u32(self.status);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, NdrError> {
        let mut r = NdrReader::new(stub);
        OrpcThat::read(&mut r)?;
        Ok(EnrollReply {
            request_id: r.u32()?,
            disposition: r.u32()?,
            chain: r.cert_trans_blob(MAX_BLOB)?,
            encoded_cert: r.cert_trans_blob(MAX_BLOB)?,
            message: r.cert_trans_blob(MAX_BLOB)?,
            status: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_roundtrip() {
        let this = OrpcThis::new();
        let b = encode_request_ref(&this, "lab-CA", 42);
        assert_eq!(
            decode_request_ref(&b).unwrap(),
            RequestRef {
                authority: Some("lab-CA".into()),
                request_id: 42
            }
        );
        let rv = Revoke {
            authority: Some("lab-CA".into()),
            serial: Some("01ab".into()),
            reason: 1,
            filetime: 0x01d9_0000_1234_5678,
        };
        assert_eq!(Revoke::decode(&rv.encode(&this)).unwrap(), rv);
        let g = GetCaProperty {
            authority: Some("lab-CA".into()),
            prop_id: CR_PROP_TEMPLATES,
            prop_index: 0,
            prop_type: PROPTYPE_STRING,
        };
        assert_eq!(GetCaProperty::decode(&g.encode(&this)).unwrap(), g);
        let t = vec![
            ("WebServer".to_owned(), "1.3.6.1.4.1.311.21.8.1".to_owned()),
            ("User".to_owned(), "1.3.6.1.4.1.311.21.8.2".to_owned()),
        ];
        let (v, hr) =
            decode_property_reply(&encode_property_reply(&format_templates(&t), 0)).unwrap();
        assert_eq!((parse_templates(&v), hr), (t, 0));
        for v2 in [false, true] {
            let e = EnrollRequest::submit("lab-CA", "WebServer", &[0x30, 0x03, 1, 2, 3]);
            let d = EnrollRequest::decode(&e.encode(&this, v2), v2).unwrap();
            assert_eq!(d, e);
            assert_eq!(
                d.attribute_pairs(),
                vec![("CertificateTemplate".to_owned(), "WebServer".to_owned())]
            );
        }
        let rep = EnrollReply {
            request_id: 7,
            disposition: 3,
            chain: vec![1],
            encoded_cert: vec![2, 3],
            message: vec![0x41, 0, 0, 0],
            status: 0,
        };
        assert_eq!(EnrollReply::decode(&rep.encode()).unwrap(), rep);
        assert_eq!(
            decode_resubmit_reply(&encode_resubmit_reply(3, 0)).unwrap(),
            (3, 0)
        );
    }

    #[test]
    fn filetime_conversion() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let ft = filetime(t);
        assert_eq!(ft, 116_444_736_000_000_000 + 17_000_000_000_000_000);
        assert_eq!(from_filetime(ft), Some(t));
        assert_eq!(from_filetime(0), None);
    }

    #[test]
    fn truncated_stubs_are_errors() {
        let this = OrpcThis::new();
        let b = EnrollRequest::submit("CA", "T", &[1, 2, 3]).encode(&this, true);
        for n in 0..b.len() {
            assert!(EnrollRequest::decode(&b[..n], true).is_err(), "{n}");
        }
    }
}
