//! What a successful validation saw.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The evidence of a successful validation, stored by the server as JSON
/// (camelCase keys, like Boulder's validation records).
///
/// For http-01 the record describes the hop that served the key
/// authorization (after redirects, if any); `url` is that hop's URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationRecord {
    /// The DNS name (or IP literal of a redirect target) that was validated.
    pub hostname: String,
    /// The TCP port contacted (none for dns-01).
    pub port: Option<u16>,
    /// Every address the name resolved to (before the IP policy filter).
    pub addresses_resolved: Vec<IpAddr>,
    /// The address actually contacted (none for dns-01).
    pub address_used: Option<IpAddr>,
    /// The URL fetched (http-01 only).
    pub url: Option<String>,
}
