//! JSON helpers: parsing that refuses duplicate member names.
//!
//! RFC 7515 §5.2 lets a JWS implementation either reject duplicate header
//! parameter names or take the last one; `serde_json` silently takes the last
//! one. Two parsers disagreeing on which duplicate wins is a classic source of
//! signature-bypass bugs, so this crate rejects duplicates everywhere.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::WireError;

/// Parses `bytes` as JSON, refusing duplicate member names at any depth.
/// `what` names the document in error messages.
pub(crate) fn parse_strict(bytes: &[u8], what: &str) -> Result<Value, WireError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| WireError::malformed(format!("{what} is not valid JSON: {e}")))?;
    check_no_duplicates(bytes).map_err(|e| WireError::malformed(format!("{what}: {e}")))?;
    Ok(value)
}

/// Checks that no JSON object inside `bytes` repeats a member name.
pub(crate) fn check_no_duplicates(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDuplicates.deserialize(&mut de)?;
    de.end()
}

/// Visits a whole JSON value, failing on the first duplicate member name.
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!("duplicate member \"{key}\"")));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

/// A short name for the JSON type of `v`, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_documents() {
        let doc = br#"{"a":1,"b":[{"a":2,"b":null},true,"x",-1.5e3],"c":{"d":{}}}"#;
        let v = parse_strict(doc, "doc").unwrap();
        assert_eq!(v["b"][0]["a"], 2);
    }

    #[test]
    fn rejects_top_level_duplicate() {
        let err = parse_strict(br#"{"a":1,"a":2}"#, "doc").unwrap_err();
        assert!(matches!(&err, WireError::Malformed(m) if m.contains("duplicate member \"a\"")));
    }

    #[test]
    fn rejects_nested_duplicate() {
        assert!(parse_strict(br#"{"a":[{"x":1,"y":2,"x":3}]}"#, "doc").is_err());
        assert!(parse_strict(br#"{"a":{"b":{"c":1,"c":1}}}"#, "doc").is_err());
    }

    #[test]
    fn same_name_at_different_levels_is_fine() {
        assert!(parse_strict(br#"{"a":{"a":{"a":1}}}"#, "doc").is_ok());
    }

    #[test]
    fn rejects_invalid_json_and_trailing_garbage() {
        assert!(parse_strict(b"{", "doc").is_err());
        assert!(parse_strict(b"{} x", "doc").is_err());
        assert!(parse_strict(b"", "doc").is_err());
    }

    #[test]
    fn type_names() {
        assert_eq!(type_name(&Value::Null), "null");
        assert_eq!(type_name(&serde_json::json!([])), "an array");
    }
}
