//! The line format and the HMAC chain, without I/O.
//!
//! A line is one JSON object whose members come in a fixed order — `ts`,
//! `schema`, `seq`, `server_id`, `prev_mac`, `event`, then the optional
//! `account_id`, `source_ip`, `user_agent`, `decision`, `reason`,
//! `details` — and last `mac`. The MAC is HMAC-SHA-256 under the
//! installation's audit key over the exact bytes of the line without its
//! `,"mac":"…"` member (the object closed right after the last other
//! member). Verifying bytes, not a re-serialisation, means no JSON
//! canonicalisation question arises: any change to a byte breaks the MAC.
//! Each line's `prev_mac` is the previous line's `mac`; the first line's
//! is the genesis MAC, derived from the key and the installation id, so a
//! chain cannot be moved to another installation or node unnoticed.

use std::fmt::Write as _;

use ring::hmac;
use serde_json::Value;

use crate::store::AuditRow;

/// Version of the line format (`schema` member).
pub const SCHEMA: u64 = 1;

/// Length of the `,"mac":"<64 hex>"}` tail of every line.
const MAC_TAIL: usize = 8 + 64 + 2;

/// The chain's key: HMAC-SHA-256 with the installation's secret.
#[derive(Clone)]
pub struct ChainKey(hmac::Key);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    /// The key from the installation's secret bytes.
    pub fn new(secret: &[u8]) -> ChainKey {
        ChainKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The key from the secret as stored (hex).
    pub fn from_hex(secret: &str) -> Option<ChainKey> {
        hex::decode(secret).ok().map(|b| ChainKey::new(&b))
    }

    fn mac(&self, bytes: &[u8]) -> String {
        hex::encode(hmac::sign(&self.0, bytes).as_ref())
    }

    fn mac_ok(&self, bytes: &[u8], mac_hex: &str) -> bool {
        hex::decode(mac_hex).is_ok_and(|m| hmac::verify(&self.0, bytes, &m).is_ok())
    }

    /// The `prev_mac` of a node's first line.
    pub fn genesis(&self, server_id: &str) -> String {
        let mut input = b"certeasy audit genesis\0".to_vec();
        input.extend_from_slice(server_id.as_bytes());
        self.mac(&input)
    }
}

/// A fresh audit secret, hex (32 random bytes).
pub fn new_secret() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    // Like every secret the server mints: no fallback without an RNG.
    #[allow(clippy::expect_used)]
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the operating system random number generator failed");
    hex::encode(b)
}

/// Appends `,"name":<json string>` to `out`.
fn member(out: &mut String, name: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    out.push_str(&Value::from(value).to_string());
}

/// Formats one event as a line (with its `\n`) continuing the chain after
/// `prev_mac`; returns the line and its MAC.
pub fn format_line(
    key: &ChainKey,
    seq: i64,
    server_id: &str,
    prev_mac: &str,
    e: &AuditRow,
) -> (String, String) {
    let mut out = String::with_capacity(256);
    // An RFC 3339 time has no character JSON escapes.
    out.push_str("{\"ts\":\"");
    out.push_str(&rfc3339(e.ts));
    let _ = write!(out, "\",\"schema\":{SCHEMA},\"seq\":{seq}");
    member(&mut out, "server_id", server_id);
    member(&mut out, "prev_mac", prev_mac);
    member(&mut out, "event", &e.event);
    for (name, v) in [
        ("account_id", &e.account_id),
        ("source_ip", &e.source_ip),
        ("user_agent", &e.user_agent),
        ("decision", &e.decision),
        ("reason", &e.reason),
    ] {
        if let Some(v) = v {
            member(&mut out, name, v);
        }
    }
    if let Some(d) = &e.details {
        // Stored by `audit::Event` as a serialised object, copied as it is
        // once checked to be one JSON object (no tree is built: this runs
        // for every event); anything else (a row written by hand) is kept
        // as a string, never as raw JSON.
        out.push_str(",\"details\":");
        match serde_json::from_str::<&serde_json::value::RawValue>(d) {
            Ok(raw) if raw.get().starts_with('{') => out.push_str(raw.get()),
            _ => out.push_str(&Value::from(d.as_str()).to_string()),
        }
    }
    out.push('}');
    let mac = key.mac(out.as_bytes());
    out.pop();
    out.push_str(",\"mac\":\"");
    out.push_str(&mac);
    out.push_str("\"}\n");
    (out, mac)
}

/// A line whose MAC verified, with the members the verifier needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `seq`.
    pub seq: i64,
    /// `server_id`.
    pub server_id: String,
    /// `prev_mac`.
    pub prev_mac: String,
    /// `event`.
    pub event: String,
    /// `details`, if any.
    pub details: Option<Value>,
    /// `mac`.
    pub mac: String,
}

/// Why a line could not be read as a chain line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not a complete line of this format (torn, cut, or not ours).
    Malformed(String),
    /// Well-formed, but its MAC does not verify: modified, forged, or
    /// checked with another installation's key.
    BadMac,
}

/// Reads one line (without its `\n`) and checks its MAC.
pub fn parse_line(key: &ChainKey, line: &str) -> Result<Line, LineError> {
    let malformed = |why: &str| LineError::Malformed(why.to_string());
    if line.len() < MAC_TAIL + 2 || !line.is_char_boundary(line.len() - MAC_TAIL) {
        return Err(malformed("too short to carry a mac"));
    }
    let (body, tail) = line.split_at(line.len() - MAC_TAIL);
    let mac = tail
        .strip_prefix(",\"mac\":\"")
        .and_then(|t| t.strip_suffix("\"}"))
        .filter(|m| m.len() == 64 && m.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| malformed("does not end with the mac member"))?;
    let mut signed = String::with_capacity(body.len() + 1);
    signed.push_str(body);
    signed.push('}');
    let v: Value = serde_json::from_str(&signed)
        .map_err(|e| LineError::Malformed(format!("not a JSON object: {e}")))?;
    let str_of = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let (Some(seq), Some(server_id), Some(prev_mac), Some(event)) = (
        v.get("seq").and_then(Value::as_i64),
        str_of("server_id"),
        str_of("prev_mac"),
        str_of("event"),
    ) else {
        return Err(malformed("lacks seq, server_id, prev_mac or event"));
    };
    if !key.mac_ok(signed.as_bytes(), mac) {
        return Err(LineError::BadMac);
    }
    Ok(Line {
        seq,
        server_id,
        prev_mac,
        event,
        details: v.get("details").cloned(),
        mac: mac.to_string(),
    })
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(event: &str) -> AuditRow {
        AuditRow {
            ts: 1_700_000_000_123,
            event: event.into(),
            account_id: Some("acct1".into()),
            source_ip: Some("192.0.2.7".into()),
            user_agent: Some("certbot/\"5\"\n".into()),
            details: Some(r#"{"names":["a.example"],"order":"o1"}"#.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_line_verifies_and_carries_its_members_in_order() {
        let key = ChainKey::new(b"secret");
        let g = key.genesis("node-a");
        let (line, mac) = format_line(&key, 1, "node-a", &g, &row("order.create"));
        assert!(line.ends_with("\"}\n") && line.matches('\n').count() == 1);
        let l = parse_line(&key, line.trim_end_matches('\n')).unwrap();
        assert_eq!(
            (l.seq, l.prev_mac.as_str(), l.mac.as_str()),
            (1, g.as_str(), mac.as_str())
        );
        assert_eq!(l.event, "order.create");
        let order: Vec<usize> = [
            "\"ts\"",
            "\"schema\"",
            "\"seq\"",
            "\"server_id\"",
            "\"prev_mac\"",
            "\"event\"",
            "\"account_id\"",
            "\"source_ip\"",
            "\"user_agent\"",
            "\"details\"",
            "\"mac\"",
        ]
        .iter()
        .map(|m| line.find(m).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(
            line.starts_with("{\"ts\":\"2023-11-14T22:13:20.123Z\""),
            "{line}"
        );
    }

    #[test]
    fn any_changed_byte_or_another_key_breaks_the_mac() {
        let key = ChainKey::new(b"secret");
        let (line, _) = format_line(&key, 7, "n", "00", &row("x"));
        let line = line.trim_end_matches('\n');
        assert_eq!(
            parse_line(&ChainKey::new(b"other"), line),
            Err(LineError::BadMac)
        );
        let changed = line.replace("a.example", "b.example");
        assert_eq!(parse_line(&key, &changed), Err(LineError::BadMac));
        let reseq = line.replace("\"seq\":7", "\"seq\":8");
        assert_eq!(parse_line(&key, &reseq), Err(LineError::BadMac));
        for cut in [1, 10, line.len() / 2, line.len() - 1] {
            assert!(
                matches!(
                    parse_line(&key, &line[..line.len() - cut]),
                    Err(LineError::Malformed(_))
                ),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn genesis_depends_on_key_and_node() {
        let k = ChainKey::new(b"k");
        assert_ne!(k.genesis("a"), k.genesis("b"));
        assert_ne!(k.genesis("a"), ChainKey::new(b"j").genesis("a"));
        assert_eq!(k.genesis("a"), k.genesis("a"));
    }

    #[test]
    fn details_that_are_not_an_object_stay_a_string() {
        let key = ChainKey::new(b"k");
        let mut r = row("x");
        r.details = Some("},\"seq\":1,{".into());
        let (line, _) = format_line(&key, 1, "n", "00", &r);
        let l = parse_line(&key, line.trim_end()).unwrap();
        assert_eq!(l.seq, 1);
        assert_eq!(l.details, Some(Value::from("},\"seq\":1,{")));
    }
}
