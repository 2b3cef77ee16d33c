//! DNS name normalisation.
//!
//! Every DNS identifier that enters certeasy (ACME order identifiers, CSR
//! SANs and CNs, issued-certificate SANs) goes through [`DnsName::parse`]
//! before it is compared with anything. The normal form is:
//!
//! * lower-case ASCII,
//! * without the trailing dot (exactly one trailing dot is dropped),
//! * labels of letters, digits and hyphens (LDH), 1 to 63 octets each,
//!   not starting or ending with a hyphen,
//! * at most 253 octets in total,
//! * optionally a wildcard: `*` as the whole leftmost label, never alone.
//!
//! Refused: empty input, whitespace anywhere, empty labels (`a..b`),
//! non-LDH characters (including `_`), `*` anywhere else (`f*o.example`,
//! `a.*.example`), a bare `*`, an all-numeric last label (which also refuses
//! IPv4 literals such as `192.0.2.1`; IPv6 literals fail the LDH rule), and
//! U-labels (non-ASCII): the client must send the IDNA A-label
//! (`xn--…`), which is accepted as-is without Punycode validation.

use std::fmt;

/// Maximum length of a DNS name in its textual form without trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// Maximum length of one label.
pub const MAX_LABEL_LEN: usize = 63;

/// A normalised DNS name (see the module documentation for the rules).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DnsName(String);

/// Why a string is not an acceptable DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The input is empty (or only a dot).
    #[error("DNS name is empty")]
    Empty,
    /// The input contains a whitespace character.
    #[error("DNS name {input:?} contains whitespace")]
    Whitespace {
        /// The offending input.
        input: String,
    },
    /// The input contains non-ASCII characters (a U-label).
    #[error(
        "DNS name {input:?} contains non-ASCII characters; send the IDNA A-label form (\"xn--...\") instead of the Unicode U-label"
    )]
    NonAscii {
        /// The offending input.
        input: String,
    },
    /// The name is longer than 253 octets.
    #[error("DNS name is {len} characters long; the maximum is 253")]
    TooLong {
        /// Length of the name without the trailing dot.
        len: usize,
    },
    /// Two consecutive dots, a leading dot, or more than one trailing dot.
    #[error("DNS name {name:?} contains an empty label")]
    EmptyLabel {
        /// The offending name (lower-cased).
        name: String,
    },
    /// A label is longer than 63 octets.
    #[error("label {label:?} is {len} characters long; the maximum is 63")]
    LabelTooLong {
        /// The offending label.
        label: String,
        /// Its length.
        len: usize,
    },
    /// A label contains a character outside letters, digits and hyphen.
    #[error(
        "label {label:?} contains the character {ch:?}; only letters, digits and '-' are allowed"
    )]
    InvalidChar {
        /// The offending label.
        label: String,
        /// The first offending character.
        ch: char,
    },
    /// A label starts or ends with a hyphen.
    #[error("label {label:?} starts or ends with '-'")]
    HyphenEdge {
        /// The offending label.
        label: String,
    },
    /// `*` used anywhere but as the whole leftmost label.
    #[error("label {label:?} misuses '*'; a wildcard must be the whole leftmost label (\"*.example.com\")")]
    MisplacedWildcard {
        /// The offending label.
        label: String,
    },
    /// The name is just `*`.
    #[error("a bare \"*\" is not a DNS name; a wildcard needs a base name (\"*.example.com\")")]
    BareWildcard,
    /// The last label is all-numeric (an IP address literal or a bogus TLD).
    #[error("DNS name {name:?} ends with the all-numeric label {label:?}; IP addresses are not DNS identifiers")]
    NumericLastLabel {
        /// The offending name.
        name: String,
        /// Its last label.
        label: String,
    },
}

impl DnsName {
    /// Parses and normalises a DNS name.
    ///
    /// # Errors
    /// A [`NameError`] naming the offending label.
    pub fn parse(input: &str) -> Result<DnsName, NameError> {
        if input.chars().any(char::is_whitespace) {
            return Err(NameError::Whitespace {
                input: input.to_owned(),
            });
        }
        if !input.is_ascii() {
            return Err(NameError::NonAscii {
                input: input.to_owned(),
            });
        }
        let lower = input.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: name.len() });
        }
        if name == "*" {
            return Err(NameError::BareWildcard);
        }
        let mut last = "";
        for (i, label) in name.split('.').enumerate() {
            check_label(name, label, i == 0)?;
            last = label;
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::NumericLastLabel {
                name: name.to_owned(),
                label: last.to_owned(),
            });
        }
        Ok(DnsName(name.to_owned()))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `*.base` names.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name without its `*.` wildcard prefix (the name itself when it is
    /// not a wildcard).
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }

    /// The labels, leftmost first (a wildcard yields `*` first).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// Number of labels (a wildcard's `*` counts).
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }
}

fn check_label(name: &str, label: &str, leftmost: bool) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel {
            name: name.to_owned(),
        });
    }
    if label.contains('*') {
        if label == "*" && leftmost {
            return Ok(());
        }
        return Err(NameError::MisplacedWildcard {
            label: label.to_owned(),
        });
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong {
            label: label.to_owned(),
            len: label.len(),
        });
    }
    if let Some(ch) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::InvalidChar {
            label: label.to_owned(),
            ch,
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::HyphenEdge {
            label: label.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DnsName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DnsName::parse(s)
    }
}

impl AsRef<str> for DnsName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises() {
        let cases = [
            ("example.com", "example.com"),
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("WWW.Example.Com.", "www.example.com"),
            ("*.example.com", "*.example.com"),
            ("*.EXAMPLE.com.", "*.example.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("a-b.c-d.example", "a-b.c-d.example"),
            ("1.2.3.example", "1.2.3.example"),
            ("123abc", "123abc"),
            ("localhost", "localhost"),
            ("a.b1", "a.b1"),
            ("*.com", "*.com"),
        ];
        for (input, want) in cases {
            assert_eq!(DnsName::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn refusals_name_the_label() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "empty"),
            ("a..b", "empty label"),
            (".a.b", "empty label"),
            ("a.b..", "empty label"),
            (" a.b", "whitespace"),
            ("a.b ", "whitespace"),
            ("a\t.b", "whitespace"),
            ("a\n.b", "whitespace"),
            ("a b.c", "whitespace"),
            ("bücher.example", "xn--"),
            ("bücher.example", "A-label"),
            ("a_b.example", "\"a_b\""),
            ("a_b.example", "'_'"),
            ("a!.example", "'!'"),
            ("a/b.example", "'/'"),
            ("[::1]", "'['"),
            ("::1", "':'"),
            ("-a.example", "\"-a\""),
            ("a-.example", "\"a-\""),
            ("a.-", "\"-\""),
            ("*", "bare"),
            ("*.", "bare"),
            ("**.example", "\"**\""),
            ("f*o.example", "\"f*o\""),
            ("a.*.example", "\"*\""),
            ("*a.example", "\"*a\""),
            ("a.example.*", "\"*\""),
            ("192.0.2.1", "\"1\""),
            ("10.0.0.1.", "IP addresses"),
            ("example.123", "\"123\""),
            ("123", "\"123\""),
        ];
        for (input, needle) in cases {
            let err = DnsName::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn length_limits() {
        let l63 = "a".repeat(63);
        let l64 = "a".repeat(64);
        assert!(DnsName::parse(&format!("{l63}.example")).is_ok());
        let err = DnsName::parse(&format!("{l64}.example")).unwrap_err();
        assert!(matches!(err, NameError::LabelTooLong { len: 64, .. }));
        // 4 * 63 + 3 dots = 255; build exactly 253.
        let name253 = format!("{l63}.{l63}.{l63}.{}", "a".repeat(61));
        assert_eq!(name253.len(), 253);
        assert!(DnsName::parse(&name253).is_ok());
        assert!(DnsName::parse(&format!("{name253}.")).is_ok());
        let name254 = format!("{l63}.{l63}.{l63}.{}", "a".repeat(62));
        assert!(matches!(
            DnsName::parse(&name254),
            Err(NameError::TooLong { len: 254 })
        ));
    }

    #[test]
    fn accessors() {
        let w = DnsName::parse("*.A.Example.com").unwrap();
        assert!(w.is_wildcard());
        assert_eq!(w.base(), "a.example.com");
        assert_eq!(w.labels().collect::<Vec<_>>(), ["*", "a", "example", "com"]);
        assert_eq!(w.label_count(), 4);
        assert_eq!(w.to_string(), "*.a.example.com");
        let n = DnsName::parse("example.com").unwrap();
        assert!(!n.is_wildcard());
        assert_eq!(n.base(), "example.com");
        assert_eq!("Example.com".parse::<DnsName>().unwrap(), n);
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(input in "[a-zA-Z0-9*._ -]{0,40}\\.?") {
            if let Ok(name) = DnsName::parse(&input) {
                let again = DnsName::parse(name.as_str()).unwrap();
                prop_assert_eq!(&again, &name);
                // And the normal form is stable under re-adding a trailing dot
                // and changing the case.
                let upper = format!("{}.", name.as_str().to_ascii_uppercase());
                prop_assert_eq!(DnsName::parse(&upper).unwrap(), name);
            }
        }

        #[test]
        fn valid_names_round_trip(labels in proptest::collection::vec("[a-z][a-z0-9-]{0,10}[a-z0-9]", 1..5)) {
            let input = labels.join(".");
            let name = DnsName::parse(&input).unwrap();
            prop_assert_eq!(name.as_str(), input.as_str());
        }
    }
}
