//! `server.meta`: what the directory's `meta` object shows besides what
//! certeasy derives itself (`externalAccountRequired`, `profiles`). Each
//! key is shown only when set.

use serde::Deserialize;

use super::checker::Checker;

/// `server.meta` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct MetaSection {
    /// URL of the terms of service.
    #[serde(default)]
    terms_of_service: Option<String>,
    /// URL of a page about this ACME service.
    #[serde(default)]
    website: Option<String>,
    /// CAA issuer domain names (RFC 8659) that refer to this CA.
    #[serde(default)]
    caa_identities: Vec<String>,
}

/// `server.meta` after validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryMetaSettings {
    /// `termsOfService`.
    pub terms_of_service: Option<String>,
    /// `website`.
    pub website: Option<String>,
    /// `caaIdentities`.
    pub caa_identities: Vec<String>,
}

impl Checker<'_> {
    /// Checks `server.meta`: URLs are absolute http(s) URLs, CAA identities
    /// are lower-case domain names.
    pub(super) fn check_meta(&mut self, m: &MetaSection) -> DirectoryMetaSettings {
        let mut url = |key: &str, v: &Option<String>| -> Option<String> {
            let raw = v.as_ref()?;
            match url::Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
                    Some(raw.clone())
                }
                Ok(_) => {
                    self.issue(
                        format!("server.meta.{key}"),
                        format!("{raw:?} must be an http or https URL with a host"),
                    );
                    None
                }
                Err(e) => {
                    self.issue(
                        format!("server.meta.{key}"),
                        format!("{raw:?} is not a URL: {e}"),
                    );
                    None
                }
            }
        };
        let terms_of_service = url("terms-of-service", &m.terms_of_service);
        let website = url("website", &m.website);
        let mut caa_identities = Vec::new();
        for (i, raw) in m.caa_identities.iter().enumerate() {
            match pki::DnsName::parse(raw) {
                Ok(n) if !n.is_wildcard() && n.as_str() == raw => caa_identities.push(raw.clone()),
                _ => self.issue(
                    format!("server.meta.caa-identities[{i}]"),
                    format!("{raw:?} is not a lower-case domain name (the issuer domain name of CAA records, e.g. ca.example.com)"),
                ),
            }
        }
        DirectoryMetaSettings {
            terms_of_service,
            website,
            caa_identities,
        }
    }
}
