//! dns-01 (RFC 8555 §8.4).
//!
//! The TXT records at `_acme-challenge.{domain}` are looked up through the
//! zone's resolver (CNAMEs followed hop by hop, each target inside the
//! profile). Each record's character-strings are concatenated (long values
//! are split into 255-byte strings); the validation succeeds when any record
//! equals the expected value exactly.

use crate::error::{excerpt, FailureKind, ValidationFailure};
use crate::net::Deadline;
use crate::profile::normalise;
use crate::record::ValidationRecord;
use crate::validator::Validator;

/// At most this many found values are quoted in a failure.
const MAX_VALUES_SHOWN: usize = 5;
/// Each quoted value is cut after this many characters.
const MAX_VALUE_CHARS: usize = 64;

impl Validator {
    /// Validates a dns-01 challenge: a TXT record at
    /// `_acme-challenge.{domain}` equal to `expected_txt` (the base64url
    /// SHA-256 of the key authorization). `domain` is the base name, without
    /// `*.`.
    pub async fn dns01(
        &self,
        domain: &str,
        expected_txt: &str,
    ) -> Result<ValidationRecord, ValidationFailure> {
        validate(self, domain, expected_txt).await
    }
}

pub(crate) async fn validate(
    va: &Validator,
    domain: &str,
    expected: &str,
) -> Result<ValidationRecord, ValidationFailure> {
    let domain = normalise(domain);
    if domain.starts_with("*.") {
        return Err(ValidationFailure::internal(format!(
            "dns-01 takes the base name, not the wildcard {domain}"
        )));
    }
    va.resolvers.check_in_profile(&domain)?;
    let name = format!("_acme-challenge.{domain}");
    let deadline = Deadline::after(va.profile().timeout);
    let (queried, values) = deadline
        .run(
            FailureKind::Dns,
            || format!("looking up TXT records at {name}"),
            va.resolvers.txt(&name),
        )
        .await?;
    if values.iter().any(|v| v == expected) {
        return Ok(ValidationRecord {
            hostname: domain,
            port: None,
            addresses_resolved: Vec::new(),
            address_used: None,
            url: None,
        });
    }
    let shown: Vec<String> = values
        .iter()
        .take(MAX_VALUES_SHOWN)
        .map(|v| format!("\"{}\"", excerpt(v, MAX_VALUE_CHARS)))
        .collect();
    let more = values.len().saturating_sub(MAX_VALUES_SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let via = if queried == name {
        String::new()
    } else {
        format!(" (via CNAME {queried})")
    };
    Err(ValidationFailure::incorrect(format!(
        "no TXT record at {name}{via} matches the expected value; found {}{tail}",
        shown.join(", ")
    )))
}
