//! `external-account-binding`: whether new accounts need an external
//! account binding (RFC 8555 §7.3.4). The keys themselves are managed with
//! `certeasy eab add|list|revoke` and live in the database.

use serde::Deserialize;

/// `external-account-binding` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct EabSection {
    /// New accounts must present a binding (`meta.externalAccountRequired`).
    required: bool,
}

/// `external-account-binding` after validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EabSettings {
    /// New accounts must present a binding.
    pub required: bool,
}

impl From<EabSection> for EabSettings {
    fn from(s: EabSection) -> Self {
        EabSettings {
            required: s.required,
        }
    }
}
