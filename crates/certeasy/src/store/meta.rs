//! Installation metadata (server id, secrets).

use super::Store;

impl Store {
    delegate! {
        /// Reads a metadata value.
        pub async fn meta(&self, key: &str) -> Result<Option<String>>;

        /// Returns the value of `key`, storing `make()` first if it is absent.
        /// Concurrent callers (also on other nodes) all get the first value
        /// stored.
        pub async fn meta_get_or_init(
            &self,
            key: &str,
            make: impl FnOnce() -> String,
        ) -> Result<String>;
    }
}
