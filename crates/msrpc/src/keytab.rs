//! MIT keytab files (format version 0x0502, what `ktutil`, `ktpass` and
//! `samba-tool domain exportkeytab` write): parsed from bytes the caller
//! read, so that no file is touched at authentication time.

use sspi::{KeytabIdentity, Secret, Username};

/// `aes256-cts-hmac-sha1-96`.
pub const ETYPE_AES256: u16 = 18;
/// `aes128-cts-hmac-sha1-96`.
pub const ETYPE_AES128: u16 = 17;

/// One key of a keytab.
#[derive(Clone, PartialEq, Eq)]
pub struct KeytabEntry {
    /// Realm, e.g. `CORP.TEST`.
    pub realm: String,
    /// Name components, e.g. `["HOST", "ca.corp.test"]` or `["alice"]`.
    pub components: Vec<String>,
    /// Key version number.
    pub kvno: u32,
    /// Encryption type (RFC 3961 number).
    pub enctype: u16,
    /// The long-term key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for KeytabEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeytabEntry")
            .field("principal", &self.principal())
            .field("kvno", &self.kvno)
            .field("enctype", &self.enctype)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl KeytabEntry {
    /// `comp1/comp2@REALM`.
    pub fn principal(&self) -> String {
        format!("{}@{}", self.components.join("/"), self.realm)
    }

    /// True when this entry's principal is `name` (`a/b` or `a/b@REALM`,
    /// compared case-insensitively as AD does).
    pub fn is(&self, name: &str) -> bool {
        let (n, realm) = match name.rsplit_once('@') {
            Some((n, r)) => (n, Some(r)),
            None => (name, None),
        };
        n.eq_ignore_ascii_case(&self.components.join("/"))
            && realm.is_none_or(|r| r.eq_ignore_ascii_case(&self.realm))
    }
}

/// A parsed keytab.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keytab {
    /// Entries in file order (deleted entries left out).
    pub entries: Vec<KeytabEntry>,
}

/// Why a keytab did not parse.
#[derive(Debug, thiserror::Error)]
pub enum KeytabError {
    /// Not a version 0x0502 keytab.
    #[error("not a keytab (expected the MIT keytab format version 0x0502)")]
    Format,
    /// Cut short or inconsistent.
    #[error("keytab truncated or corrupt at octet {0}")]
    Corrupt(usize),
    /// A name is not UTF-8.
    #[error("keytab principal name is not UTF-8")]
    Name,
}

struct Rd<'a> {
    b: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KeytabError> {
        let e = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.end)
            .ok_or(KeytabError::Corrupt(self.at))?;
        let s = &self.b[self.at..e];
        self.at = e;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, KeytabError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, KeytabError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, KeytabError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn string(&mut self) -> Result<String, KeytabError> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| KeytabError::Name)
    }
}

impl Keytab {
    /// Parses a keytab file's content.
    pub fn parse(b: &[u8]) -> Result<Keytab, KeytabError> {
        if b.len() < 2 || b[0] != 5 || b[1] != 2 {
            return Err(KeytabError::Format);
        }
        let mut entries = Vec::new();
        let mut at = 2usize;
        while at < b.len() {
            let mut r = Rd {
                b,
                at,
                end: b.len(),
            };
            let size = r.u32()? as i32;
            let len = size.unsigned_abs() as usize;
            let start = r.at;
            let end = start.checked_add(len).filter(|e| *e <= b.len());
            let end = end.ok_or(KeytabError::Corrupt(at))?;
            at = end;
            if size <= 0 {
                continue; // a hole left by a deleted entry
            }
            let mut r = Rd { b, at: start, end };
            let n = r.u16()?;
            let realm = r.string()?;
            let components = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
            let _name_type = r.u32()?;
            let _timestamp = r.u32()?;
            let vno8 = r.u8()?;
            let enctype = r.u16()?;
            let klen = usize::from(r.u16()?);
            let key = r.take(klen)?.to_vec();
            // A 32-bit kvno follows when the entry has room for it.
            let kvno = if end - r.at >= 4 {
                r.u32()?
            } else {
                u32::from(vno8)
            };
            entries.push(KeytabEntry {
                realm,
                components,
                kvno,
                enctype,
                key,
            });
        }
        Ok(Keytab { entries })
    }

    /// The entry to authenticate `principal` with as a client: the highest
    /// kvno, AES-256 before AES-128 (the enctypes the Kerberos client here
    /// speaks); `principal` None takes the first principal of the file.
    pub fn client_key(&self, principal: Option<&str>) -> Option<&KeytabEntry> {
        let first = self.entries.first()?;
        let want = |e: &&KeytabEntry| match principal {
            Some(p) => e.is(p),
            None => e.components == first.components && e.realm == first.realm,
        };
        self.entries
            .iter()
            .filter(want)
            .filter(|e| e.enctype == ETYPE_AES256 || e.enctype == ETYPE_AES128)
            .max_by_key(|e| (e.kvno, e.enctype))
    }

    /// Client credentials for sspi from [`client_key`](Self::client_key).
    pub(crate) fn identity(&self, principal: Option<&str>) -> Option<KeytabIdentity> {
        let e = self.client_key(principal)?;
        let username = Username::new(&e.components.join("/"), Some(&e.realm)).ok()?;
        let key_enctype = match e.enctype {
            ETYPE_AES256 => picky_krb::crypto::CipherSuite::Aes256CtsHmacSha196,
            _ => picky_krb::crypto::CipherSuite::Aes128CtsHmacSha196,
        };
        Some(KeytabIdentity {
            principal: username,
            key: Secret::new(e.key.clone()),
            key_enctype,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(realm: &str, comps: &[&str], kvno: u32, et: u16, key: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&(comps.len() as u16).to_be_bytes());
        e.extend_from_slice(&(realm.len() as u16).to_be_bytes());
        e.extend_from_slice(realm.as_bytes());
        for c in comps {
            e.extend_from_slice(&(c.len() as u16).to_be_bytes());
            e.extend_from_slice(c.as_bytes());
        }
        e.extend_from_slice(&1u32.to_be_bytes());
        e.extend_from_slice(&0u32.to_be_bytes());
        e.push(kvno as u8);
        e.extend_from_slice(&et.to_be_bytes());
        e.extend_from_slice(&(key.len() as u16).to_be_bytes());
        e.extend_from_slice(key);
        e.extend_from_slice(&kvno.to_be_bytes());
        let mut out = (e.len() as u32).to_be_bytes().to_vec();
        out.extend(e);
        out
    }

    #[test]
    fn parses_entries_skips_holes_and_picks_the_newest_aes256() {
        let mut f = vec![5, 2];
        f.extend(entry("CORP.TEST", &["alice"], 1, ETYPE_AES256, &[1; 32]));
        f.extend_from_slice(&(-8i32).to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend(entry("CORP.TEST", &["alice"], 2, ETYPE_AES128, &[2; 16]));
        f.extend(entry("CORP.TEST", &["alice"], 2, ETYPE_AES256, &[3; 32]));
        f.extend(entry(
            "CORP.TEST",
            &["HOST", "ca.corp.test"],
            2,
            23,
            &[4; 16],
        ));
        let k = Keytab::parse(&f).unwrap();
        assert_eq!(k.entries.len(), 4);
        assert_eq!(k.entries[3].principal(), "HOST/ca.corp.test@CORP.TEST");
        let c = k.client_key(Some("ALICE@corp.test")).unwrap();
        assert_eq!((c.kvno, c.enctype, c.key[0]), (2, ETYPE_AES256, 3));
        assert_eq!(k.client_key(None).unwrap().key[0], 3);
        assert!(
            k.client_key(Some("HOST/ca.corp.test")).is_none(),
            "RC4 only: no usable key"
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            Keytab::parse(b"\x05\x01"),
            Err(KeytabError::Format)
        ));
        let mut f = vec![5, 2];
        f.extend(entry("R", &["a"], 1, ETYPE_AES128, &[0; 16]));
        f.truncate(f.len() - 3);
        assert!(matches!(Keytab::parse(&f), Err(KeytabError::Corrupt(_))));
    }
}
