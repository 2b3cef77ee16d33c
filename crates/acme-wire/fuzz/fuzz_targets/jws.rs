//! The flattened-JWS parser, signature verification and the external
//! account binding never panic, whatever the request body.
#![no_main]

use acme_wire::{ExternalAccountBinding, Jwk, Jws, KeyRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jws) = Jws::parse(data) {
        match &jws.protected.key {
            KeyRef::Jwk(key) => {
                // The embedded key is a valid account key: its thumbprint is
                // stable through the canonical form, and verification with it
                // (the new-account path) returns an answer.
                let again = Jwk::from_json(&key.to_json()).expect("a parsed JWK re-parses");
                assert_eq!(again.thumbprint(), key.thumbprint());
                let _ = jws.verify(key);
            }
            KeyRef::Kid(kid) => assert!(!kid.is_empty()),
        }
        let _ = jws.is_post_as_get();
        // A key change carries the inner JWS as its payload.
        if let Ok(payload) = jws.payload_value() {
            let _ = Jws::from_value(&payload);
        }
    }
    // The same bytes as an externalAccountBinding member.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(eab) = ExternalAccountBinding::parse(&value) {
            let _ = eab.verify(b"0123456789abcdef0123456789abcdef");
            let _ = eab.payload_jwk().map(|k| k.thumbprint());
        }
        let _ = Jws::from_value(&value);
    }
});
