//! `ldap` of an `adcs` authority: read-only access to Active Directory for
//! `certeasy adcs check`, bound with the authority's own `auth`. A simple
//! bind sends the service account's password, so plaintext LDAP is refused
//! for it unless upgraded with StartTLS; a Kerberos bind (SASL GSSAPI)
//! runs on plain `ldap://` and seals the session.

use certeasy_adcs::{LdapBind, LdapTarget};
use serde::Deserialize;

use crate::config::checker::Checker;
use crate::config::duration::{secs, ConfDuration};

/// `ldap` of an `adcs` authority: read-only LDAP access to Active Directory
/// for `certeasy adcs check`, bound with the authority's own `auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct AdcsLdap {
    /// `ldaps://dc:636`, or `ldap://dc:389` with `start-tls: true`.
    url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    start_tls: bool,
    /// PEM trust anchors for the domain controller's certificate (default:
    /// the system's roots).
    #[serde(default)]
    ca_file: Option<String>,
    /// DN of the configuration naming context (default: the rootDSE's
    /// `configurationNamingContext`).
    #[serde(default)]
    configuration_dn: Option<String>,
    /// Name for the simple bind (default: `username@domain`, or
    /// `DOMAIN\username` for a NetBIOS domain, or `username` as written when
    /// it contains `@` or `\`).
    #[serde(default)]
    bind_name: Option<String>,
    /// `simple` or `kerberos` (default: `kerberos` when the authority
    /// authenticates with Kerberos and either has no password (a keytab) or
    /// `url` is plain `ldap://` without StartTLS; else `simple`).
    #[serde(default)]
    bind: Option<AdcsLdapBind>,
    /// Kerberos SPN of the domain controller (default `ldap/<host of url>`).
    #[serde(default)]
    spn: Option<String>,
    /// Budget of the connection and of each LDAP operation.
    #[serde(default = "secs::<10>")]
    timeout: ConfDuration,
}

/// `ldap.bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum AdcsLdapBind {
    /// Simple bind with the password, over LDAPS or StartTLS.
    Simple,
    /// SASL GSSAPI with Kerberos; the session sealed on plain LDAP.
    Kerberos,
}

/// What the `auth` section offers the LDAP bind.
#[derive(Debug, Clone, Copy)]
pub(super) struct LdapAuth {
    /// The method is kerberos or negotiate.
    pub(super) kerberos: bool,
    /// A password is configured (not only a keytab).
    pub(super) password: bool,
    /// A Kerberos realm is known (`auth.realm` or a DNS `auth.domain`).
    pub(super) realm: bool,
}

impl Checker<'_> {
    /// Validates the `ldap` section of an `adcs` authority; `key` is its path.
    pub(super) fn check_adcs_ldap(
        &mut self,
        key: &str,
        l: &AdcsLdap,
        auth: LdapAuth,
    ) -> Option<LdapTarget> {
        let mut ok = true;
        let plain = l.url.starts_with("ldap://") && !l.start_tls;
        let bind = match l.bind {
            Some(AdcsLdapBind::Simple) => LdapBind::Simple,
            Some(AdcsLdapBind::Kerberos) => LdapBind::Kerberos,
            None if auth.kerberos && auth.realm && (!auth.password || plain) => LdapBind::Kerberos,
            None => LdapBind::Simple,
        };
        if bind == LdapBind::Kerberos {
            if !auth.kerberos {
                self.issue(
                    format!("{key}.bind"),
                    "a Kerberos bind needs auth.method kerberos or negotiate (with auth.realm and a password or keytab); use bind: simple with NTLM",
                );
                return None;
            }
            if !auth.realm {
                self.issue(
                    format!("{key}.bind"),
                    "a Kerberos bind needs the realm: set auth.realm (e.g. CORP.EXAMPLE), or write auth.domain as the DNS domain",
                );
                return None;
            }
            if !plain {
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?}: the Kerberos bind (SASL GSSAPI) runs on plain ldap://HOST:389 and seals the session itself; write ldap://HOST:389 without start-tls, or set bind: simple for LDAPS/StartTLS with the password",
                        l.url
                    ),
                );
                return None;
            }
            if l.bind_name.is_some() {
                self.issue(
                    format!("{key}.bind-name"),
                    "applies to simple binds only; the Kerberos bind authenticates as auth.username@auth.realm (remove it)",
                );
                return None;
            }
            if let Some(spn) = &l.spn {
                if !spn.contains('/') || spn.trim().is_empty() {
                    self.issue(
                        format!("{key}.spn"),
                        format!("{spn:?} is not an SPN; write ldap/dc01.corp.example"),
                    );
                    return None;
                }
            }
        } else if l.spn.is_some() {
            self.issue(
                format!("{key}.spn"),
                "applies to the Kerberos bind only (bind: kerberos); remove it",
            );
            return None;
        }
        match url::Url::parse(&l.url) {
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} has no host; write ldaps://dc01.corp.example:636",
                        l.url
                    ),
                );
            }
            Ok(u) if !matches!(u.path(), "" | "/") || u.query().is_some() => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} carries a DN or query; write only ldaps://host[:port] (the configuration DN goes in configuration-dn)",
                        l.url
                    ),
                );
            }
            Ok(u) if u.scheme() == "ldaps" && l.start_tls => {
                ok = false;
                self.issue(
                    format!("{key}.start-tls"),
                    "an ldaps:// URL is TLS from the first byte; start-tls applies only to ldap:// (remove it)",
                );
            }
            Ok(u) if u.scheme() == "ldap" && !l.start_tls && bind == LdapBind::Simple => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} is plaintext LDAP: the simple bind would send the service account's password in clear; use ldaps://HOST:636 (domain controllers of a forest with an enterprise CA get an LDAPS certificate automatically) or add start-tls: true",
                        l.url
                    ),
                );
            }
            Ok(u) if u.scheme() != "ldap" && u.scheme() != "ldaps" => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} must start with ldaps:// (or ldap:// with start-tls: true)",
                        l.url
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} is not a URL ({e}); write ldaps://dc01.corp.example:636",
                        l.url
                    ),
                );
            }
        }
        let mut ca_certs = Vec::new();
        let mut ca_file = None;
        if let Some(f) = &l.ca_file {
            match self.pem_certs_file(
                &format!("{key}.ca-file"),
                f,
                "; give the PEM of the CA that issued the domain controller's certificate",
            ) {
                Some((path, certs)) => {
                    ca_file = Some(path);
                    ca_certs = certs;
                }
                None => ok = false,
            }
        }
        if let Some(dn) = &l.configuration_dn {
            if !dn.contains('=') {
                ok = false;
                self.issue(
                    format!("{key}.configuration-dn"),
                    format!("{dn:?} is not a DN; write e.g. CN=Configuration,DC=corp,DC=example, or omit it to read it from the rootDSE"),
                );
            }
        }
        if l.bind_name.as_deref().is_some_and(|b| b.trim().is_empty()) {
            ok = false;
            self.issue(
                format!("{key}.bind-name"),
                "must not be empty (an empty name is an anonymous bind); omit it for username@domain",
            );
        }
        ok.then(|| LdapTarget {
            url: l.url.clone(),
            start_tls: l.start_tls,
            ca_certs,
            ca_file,
            configuration_dn: l.configuration_dn.clone(),
            bind_name: l.bind_name.clone(),
            bind,
            spn: l.spn.clone(),
            timeout: l.timeout.get(),
        })
    }
}
