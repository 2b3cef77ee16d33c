//! Extension helpers shared by the CSR model and the issued-certificate
//! check: SAN entries are read tag by tag so that every refused kind can be
//! named precisely.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use const_oid::ObjectIdentifier;
use der::{Decode, Header, Reader, SliceReader, Tag};

use crate::dnsname::DnsName;
use crate::oids;

/// One GeneralName of a SAN, as far as the model cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SanEntry {
    /// A dNSName (raw ASCII, not yet normalised).
    Dns(String),
    /// Anything else, with a human-readable description.
    Other(String),
}

fn describe_other_name(value: &[u8]) -> String {
    // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }, IMPLICIT [0]:
    // the content starts directly with the OID.
    match SliceReader::new(value).and_then(|mut r| ObjectIdentifier::decode(&mut r)) {
        Ok(oid) if oid == oids::MS_UPN => format!("an otherName entry (Microsoft UPN, {oid})"),
        Ok(oid) => format!("an otherName entry ({})", oids::describe(&oid)),
        Err(_) => "a malformed otherName entry".to_owned(),
    }
}

fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads a GeneralNames SEQUENCE (the extnValue of a SAN extension).
pub(crate) fn parse_san(value: &[u8]) -> Result<Vec<SanEntry>, String> {
    let not_der = |e: der::Error| format!("subjectAltName is not valid DER: {e}");
    let mut outer = SliceReader::new(value).map_err(not_der)?;
    let entries = outer
        .sequence(|r| {
            let mut entries = Vec::new();
            while !r.is_finished() {
                let header = Header::decode(r)?;
                let body = r.read_slice(header.length())?;
                entries.push((header.tag(), body));
            }
            Ok::<_, der::Error>(entries)
        })
        .map_err(not_der)?;
    outer.finish().map_err(not_der)?;
    let mut out = Vec::with_capacity(entries.len());
    for (tag, body) in entries {
        let Tag::ContextSpecific {
            constructed,
            number,
        } = tag
        else {
            return Err(format!(
                "subjectAltName contains a non-GeneralName element ({tag})"
            ));
        };
        let entry = match number.value() {
            0 => SanEntry::Other(describe_other_name(body)),
            1 => SanEntry::Other(format!(
                "an rfc822Name (e-mail) entry {:?}",
                printable(body)
            )),
            2 if !constructed => {
                if !body.is_ascii() {
                    return Err(format!(
                        "subjectAltName dNSName {:?} is not an IA5String",
                        printable(body)
                    ));
                }
                SanEntry::Dns(printable(body))
            }
            2 => return Err("subjectAltName dNSName is constructed".to_owned()),
            3 => SanEntry::Other("an x400Address entry".to_owned()),
            4 => SanEntry::Other("a directoryName entry".to_owned()),
            5 => SanEntry::Other("an ediPartyName entry".to_owned()),
            6 => SanEntry::Other(format!("a URI entry {:?}", printable(body))),
            7 => SanEntry::Other(match body.len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(body);
                    format!("an iPAddress entry {}", Ipv4Addr::from(a))
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(body);
                    format!("an iPAddress entry {}", Ipv6Addr::from(a))
                }
                _ => "an iPAddress entry".to_owned(),
            }),
            8 => SanEntry::Other("a registeredID entry".to_owned()),
            _ => SanEntry::Other(format!("an unknown GeneralName [{}]", number.value())),
        };
        out.push(entry);
    }
    Ok(out)
}

/// Outcome of comparing a SAN with the order's names.
pub(crate) enum SanCheck {
    /// Equal as sets; the sorted, de-duplicated names.
    Equal(Vec<DnsName>),
    /// The first problem, described (`who` prefixes it: "CSR", "issued certificate").
    Refused(String),
}

/// Checks that a SAN holds only dNSNames, equal as a set to `order_names`.
pub(crate) fn check_san_names(who: &str, value: &[u8], order_names: &[DnsName]) -> SanCheck {
    let entries = match parse_san(value) {
        Ok(e) => e,
        Err(e) => return SanCheck::Refused(format!("{who} {e}")),
    };
    if entries.is_empty() {
        return SanCheck::Refused(format!("{who} subjectAltName is empty"));
    }
    let mut names = BTreeSet::new();
    for entry in entries {
        match entry {
            SanEntry::Other(what) => {
                return SanCheck::Refused(format!(
                    "{who} subjectAltName contains {what}; only dNSName entries are allowed"
                ))
            }
            SanEntry::Dns(raw) => match DnsName::parse(&raw) {
                Ok(n) => {
                    names.insert(n);
                }
                Err(e) => {
                    return SanCheck::Refused(format!(
                        "{who} subjectAltName dNSName {raw:?} is invalid: {e}"
                    ))
                }
            },
        }
    }
    let order: BTreeSet<&DnsName> = order_names.iter().collect();
    let missing: Vec<&str> = order
        .iter()
        .filter(|n| !names.contains(**n))
        .map(|n| n.as_str())
        .collect();
    if !missing.is_empty() {
        return SanCheck::Refused(format!(
            "{who} subjectAltName is missing the order's name(s) {}; the SAN must equal the order's identifiers",
            missing.join(", ")
        ));
    }
    let extra: Vec<&str> = names
        .iter()
        .filter(|n| !order.contains(n))
        .map(DnsName::as_str)
        .collect();
    if !extra.is_empty() {
        return SanCheck::Refused(format!(
            "{who} subjectAltName contains {} which is not among the order's names; the SAN must equal the order's identifiers",
            extra.join(", ")
        ));
    }
    SanCheck::Equal(names.into_iter().collect())
}
