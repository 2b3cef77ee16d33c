//! Search result entries decoded without panicking, every value kept as
//! bytes (SIDs, security descriptors and periods are binary, and a binary
//! value may happen to be valid UTF-8, so no guessing by content).

use std::collections::BTreeMap;

use ldap3::asn1::{StructureTag, PL};

/// One directory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// Distinguished name as the server returned it.
    pub dn: String,
    /// Values by lower-case attribute name (options such as `;binary`
    /// removed).
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The values of `name` (case-insensitive); empty when absent.
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The values of `name` as text (invalid UTF-8 replaced).
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .collect()
    }

    /// The first value of `name` as text.
    pub fn first_str(&self, name: &str) -> Option<String> {
        self.strings(name).into_iter().next()
    }

    /// The first value of `name` as an integer; an error names the
    /// attribute and the value when it is not one.
    pub fn first_int(&self, name: &str) -> Result<Option<i64>, String> {
        match self.first_str(name) {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("{name} is {s:?}, not an integer")),
        }
    }
}

fn primitive(t: &StructureTag) -> Option<&[u8]> {
    match &t.payload {
        PL::P(b) => Some(b),
        PL::C(_) => None,
    }
}

fn constructed(t: &StructureTag) -> Option<&[StructureTag]> {
    match &t.payload {
        PL::C(c) => Some(c),
        PL::P(_) => None,
    }
}

/// Decodes a SearchResultEntry (`[APPLICATION 4] SEQUENCE { objectName,
/// attributes }`); None when the structure is not one.
pub fn decode_entry(tag: &StructureTag) -> Option<Entry> {
    if tag.id != 4 {
        return None;
    }
    let [name, attributes] = constructed(tag)? else {
        return None;
    };
    let dn = String::from_utf8(primitive(name)?.to_vec()).ok()?;
    let mut attrs: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for partial in constructed(attributes)? {
        let [ty, vals] = constructed(partial)? else {
            return None;
        };
        let ty = String::from_utf8(primitive(ty)?.to_vec()).ok()?;
        let ty = ty
            .split(';')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let values = constructed(vals)?
            .iter()
            .map(|v| primitive(v).map(<[u8]>::to_vec))
            .collect::<Option<Vec<Vec<u8>>>>()?;
        attrs.entry(ty).or_default().extend(values);
    }
    Some(Entry { dn, attrs })
}

/// Escapes a value for an LDAP filter (RFC 4515), byte by byte for binary
/// values such as SIDs.
pub fn filter_escape_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

/// LDAP result code names (RFC 4511) for messages.
pub(super) fn rc_name(rc: u32) -> String {
    let name = match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        8 => "strongerAuthRequired",
        10 => "referral",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => return format!("result code {rc}"),
    };
    format!("{name} ({rc})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::TagClass;

    fn prim(id: u64, b: &[u8]) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::P(b.to_vec()),
        }
    }

    fn cons(class: TagClass, id: u64, c: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class,
            id,
            payload: PL::C(c),
        }
    }

    fn attr(name: &str, vals: &[&[u8]]) -> StructureTag {
        cons(
            TagClass::Universal,
            16,
            vec![
                prim(4, name.as_bytes()),
                cons(
                    TagClass::Universal,
                    17,
                    vals.iter().map(|v| prim(4, v)).collect(),
                ),
            ],
        )
    }

    fn entry(dn: &str, attrs: Vec<StructureTag>) -> StructureTag {
        cons(
            TagClass::Application,
            4,
            vec![prim(4, dn.as_bytes()), cons(TagClass::Universal, 16, attrs)],
        )
    }

    #[test]
    fn decodes_text_and_binary_values_by_lower_case_name() {
        // A SID whose bytes are valid UTF-8 stays bytes.
        let sid: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0];
        let e = decode_entry(&entry(
            "CN=WebServer,CN=Certificate Templates",
            vec![
                attr("cn", &[b"WebServer"]),
                attr("objectSid;binary", &[sid]),
                attr("msPKI-Minimal-Key-Size", &[b"2048"]),
                attr(
                    "pKIExtendedKeyUsage",
                    &[b"1.3.6.1.5.5.7.3.1", b"1.3.6.1.5.5.7.3.2"],
                ),
                attr("nTSecurityDescriptor", &[&[0xff, 0xfe, 0x00]]),
            ],
        ))
        .expect("entry");
        assert_eq!(e.dn, "CN=WebServer,CN=Certificate Templates");
        assert_eq!(e.values("OBJECTSID"), &[sid.to_vec()]);
        assert_eq!(e.first_int("msPKI-Minimal-Key-Size"), Ok(Some(2048)));
        assert_eq!(e.strings("pkiextendedkeyusage").len(), 2);
        assert_eq!(e.values("ntsecuritydescriptor"), &[vec![0xff, 0xfe, 0x00]]);
        assert!(e.values("displayName").is_empty());
        assert_eq!(e.first_int("displayName"), Ok(None));
        assert!(e.first_int("cn").unwrap_err().contains("not an integer"));
    }

    #[test]
    fn malformed_entries_are_none() {
        assert_eq!(decode_entry(&prim(4, b"x")), None);
        assert_eq!(
            decode_entry(&cons(TagClass::Application, 4, vec![prim(4, b"dn")])),
            None
        );
        let bad_attr = cons(TagClass::Universal, 16, vec![prim(4, b"cn")]);
        assert_eq!(decode_entry(&entry("dn", vec![bad_attr])), None);
        let bad_value = cons(
            TagClass::Universal,
            16,
            vec![
                prim(4, b"cn"),
                cons(
                    TagClass::Universal,
                    17,
                    vec![cons(TagClass::Universal, 16, vec![])],
                ),
            ],
        );
        assert_eq!(decode_entry(&entry("dn", vec![bad_value])), None);
        assert_eq!(decode_entry(&cons(TagClass::Application, 19, vec![])), None);
    }

    #[test]
    fn binary_filter_values_are_escaped_per_byte() {
        assert_eq!(filter_escape_bytes(&[1, 0x2a, 0xff]), "\\01\\2a\\ff");
    }
}
