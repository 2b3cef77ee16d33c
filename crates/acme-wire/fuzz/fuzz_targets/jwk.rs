//! The JWK parser and SPKI import never panic; every key they accept has a
//! canonical form that parses back to the same key and thumbprint.
#![no_main]

use acme_wire::Jwk;
use libfuzzer_sys::fuzz_target;

fn check(key: &Jwk) {
    let again = Jwk::from_json(&key.to_json()).expect("the canonical JWK parses");
    assert_eq!(&again, key);
    assert_eq!(again.thumbprint(), key.thumbprint());
    let _ = key.describe();
    let _ = key.algorithm();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(key) = Jwk::from_json(&value) {
            check(&key);
        }
    }
    if let Ok(key) = Jwk::from_spki_der(data) {
        check(&key);
    }
});
