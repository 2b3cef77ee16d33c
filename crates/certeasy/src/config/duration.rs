//! Durations in the configuration: `300ms`, `30s`, `10m`, `720h`, `1h30m`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A strictly positive duration read from the configuration.
///
/// An explicit zero is refused: the spec says "omit the key for the default".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfDuration(pub Duration);

impl ConfDuration {
    /// Seconds constructor for defaults.
    pub const fn secs(s: u64) -> Self {
        ConfDuration(Duration::from_secs(s))
    }
    /// Milliseconds constructor for defaults.
    pub const fn millis(ms: u64) -> Self {
        ConfDuration(Duration::from_millis(ms))
    }
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Default of a key in seconds: `#[serde(default = "secs::<30>")]`.
pub(super) fn secs<const N: u64>() -> ConfDuration {
    ConfDuration::secs(N)
}

/// Default of a key in hours: `#[serde(default = "hours::<720>")]`.
pub(super) fn hours<const N: u64>() -> ConfDuration {
    ConfDuration::secs(N * 3600)
}

/// Default of a key in days: `#[serde(default = "days::<90>")]`.
pub(super) fn days<const N: u64>() -> ConfDuration {
    ConfDuration::secs(N * 86400)
}

/// Parses `300ms`, `30s`, `10m`, `720h`, `2d`, or concatenations (`1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration; use e.g. 30s, 10m, 720h".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {s:?}: expected a number before the unit (e.g. 30s, 10m, 720h)"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86400)),
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: missing unit (ms, s, m, h or d)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                ))
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration the way the configuration writes it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl fmt::Display for ConfDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for ConfDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 300ms, 30s, 10m or 720h")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfDuration, E> {
                let d = parse_duration(v).map_err(E::custom)?;
                if d.is_zero() {
                    return Err(E::custom(
                        "an explicit zero is not allowed; omit the key to get the default",
                    ));
                }
                Ok(ConfDuration(d))
            }
            fn visit_u64<E: de::Error>(self, _v: u64) -> Result<ConfDuration, E> {
                Err(E::custom("a duration needs a unit, e.g. 30s, 10m, 720h"))
            }
            fn visit_i64<E: de::Error>(self, _v: i64) -> Result<ConfDuration, E> {
                Err(E::custom("a duration needs a unit, e.g. 30s, 10m, 720h"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
    }

    #[test]
    fn refuses_bad_durations_with_a_hint() {
        assert!(parse_duration("30").unwrap_err().contains("missing unit"));
        assert!(parse_duration("30x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["300ms", "30s", "10m", "720h"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
