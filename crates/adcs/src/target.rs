//! The CA to talk to, as plain data: built by the caller (certeasy maps its
//! validated configuration to it), read by every part of this crate.

use std::path::PathBuf;
use std::time::Duration;

use msrpc::{AuthLevel, AuthMethod};

/// A CA reached over the native bridge (MS-ICPR over DCE/RPC).
#[derive(Clone)]
pub struct AdcsTarget {
    /// RPC target host.
    pub host: String,
    /// CA common name (the part after the backslash of `ca-name`).
    pub ca: String,
    /// `ca-name` as written (`HOST\CA`), for messages.
    pub ca_name: String,
    /// Template requested.
    pub template: String,
    /// Authentication mechanism.
    pub method: AuthMethod,
    /// Domain of the service account.
    pub domain: String,
    /// Service account.
    pub username: String,
    /// Its password (empty when `keytab` is set).
    pub password: String,
    /// Kerberos realm of the service account (e.g. `CORP.EXAMPLE`); for
    /// `kerberos` and `negotiate` it is used instead of `domain`.
    pub realm: Option<String>,
    /// Kerberos keys of the service account, read from a keytab at start:
    /// no password needed at all.
    pub keytab: Option<std::sync::Arc<msrpc::keytab::Keytab>>,
    /// Kerberos KDC.
    pub kdc: Option<String>,
    /// Kerberos SPN of the CA (default `host/<host>`).
    pub spn: Option<String>,
    /// Fixed ICertPassage port, or None for the endpoint mapper.
    pub port: Option<u16>,
    /// Endpoint mapper port.
    pub endpoint_mapper_port: u16,
    /// RPC authentication level.
    pub auth_level: AuthLevel,
    /// Longest a request may stay pending.
    pub default_timeout: Duration,
    /// Budget of one RPC exchange (connect, bind, call).
    pub request_timeout: Duration,
    /// Chain to complete the CA's reply with (DER, issuer first), possibly
    /// empty.
    pub ca_chain: Vec<Vec<u8>>,
    /// Do not revoke at the CA.
    pub disable_ca_revocation: bool,
    /// How certificates are requested: MS-ICPR, DCOM (MS-WCCE
    /// `ICertRequestD2`), or ICPR with an automatic switch to DCOM when the
    /// CA refuses ICertPassage.
    pub transport: Transport,
    /// LDAP access to Active Directory for the preflight checks.
    pub ldap: Option<LdapTarget>,
}

/// Request id retrieved by health probes and `adcs check` (and denied by
/// the rights check): non-zero (so it is a retrieval, never a submission)
/// and far beyond any real CA's counter.
pub const PROBE_REQUEST_ID: u32 = 0x7fff_ffff;

impl AdcsTarget {
    /// The RPC authentication of every exchange with this CA (ICPR and DCOM alike).
    pub fn client_auth(&self) -> msrpc::ClientAuth {
        msrpc::ClientAuth {
            method: self.method,
            level: self.auth_level,
            credentials: msrpc::Credentials {
                domain: match (&self.realm, self.method) {
                    (Some(r), m) if m != AuthMethod::Ntlm => r.clone(),
                    _ => self.domain.clone(),
                },
                username: self.username.clone(),
                password: self.password.clone(),
            },
            spn: self
                .spn
                .clone()
                .or_else(|| Some(format!("host/{}", self.host))),
            kdc: self.kdc.clone().or_else(|| {
                self.discovers_kdc()
                    .then(|| crate::kdc::discovery_url(self.realm.as_deref().unwrap_or_default()))
            }),
            keytab: self.keytab.clone(),
        }
    }

    /// True when the KDC is found by DNS SRV: Kerberos or Negotiate with a
    /// realm and no `auth.kdc`. Negotiate then uses Kerberos when a KDC is
    /// found and answers, NTLM otherwise (sspi falls back when the KDC
    /// transport fails), and sspi never looks for a KDC itself (it would
    /// read krb5.conf).
    pub fn discovers_kdc(&self) -> bool {
        matches!(self.method, AuthMethod::Kerberos | AuthMethod::Negotiate)
            && self.kdc.is_none()
            && self.realm.is_some()
    }

    /// The KDC transport of this authority: KDC discovery by DNS SRV through
    /// the system's resolver configuration when [`discovers_kdc`](Self::discovers_kdc),
    /// else None (msrpc then talks TCP to `auth.kdc`).
    pub fn kdc_transport(&self) -> Option<std::sync::Arc<dyn msrpc::auth::KdcTransport>> {
        let realm = self.realm.as_deref().filter(|_| self.discovers_kdc())?;
        Some(std::sync::Arc::new(crate::kdc::SrvKdc::new(
            realm,
            crate::kdc::Nameservers::System,
        )))
    }

    /// RPC options of every exchange with this CA: `request-timeout` for each phase.
    pub fn client_options(&self) -> msrpc::ClientOptions {
        let d = self.request_timeout;
        msrpc::ClientOptions {
            timeouts: msrpc::Timeouts {
                connect: d,
                bind: d,
                call: d,
            },
            kdc: self.kdc_transport(),
            ..msrpc::ClientOptions::default()
        }
    }
}

impl std::fmt::Debug for AdcsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdcsTarget")
            .field("host", &self.host)
            .field("ca", &self.ca)
            .field("template", &self.template)
            .field("method", &self.method)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("port", &self.port)
            .field("endpoint_mapper_port", &self.endpoint_mapper_port)
            .field("ldap", &self.ldap)
            .finish()
    }
}

/// Enrollment transport of an [`AdcsTarget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    /// ICertPassage first; DCOM once the CA refuses ICertPassage (endpoint
    /// mapper without it, or `E_ACCESSDENIED` before a request id is given,
    /// as a CA with ICPR disabled answers).
    #[default]
    Auto,
    /// MS-ICPR `ICertPassage` only.
    Icpr,
    /// MS-WCCE `ICertRequestD2::Request2` over DCOM only (activation through
    /// the endpoint mapper port, then the CA's dynamic DCOM port).
    Dcom,
}

/// A domain controller to read templates, the enrollment service and the
/// service account's rights from (simple bind over TLS with the target's
/// credentials).
#[derive(Debug, Clone)]
pub struct LdapTarget {
    /// `ldaps://…` or `ldap://…` (the latter always with StartTLS).
    pub url: String,
    /// Upgrade with StartTLS before binding.
    pub start_tls: bool,
    /// Trust anchors (DER); empty means the system's roots.
    pub ca_certs: Vec<Vec<u8>>,
    /// Where the trust anchors came from, for messages.
    pub ca_file: Option<PathBuf>,
    /// Configuration naming context, if given (else read from the rootDSE).
    pub configuration_dn: Option<String>,
    /// Name for the simple bind, if given (else derived from the username).
    pub bind_name: Option<String>,
    /// How to bind: simple (password, over TLS) or Kerberos (SASL GSSAPI).
    pub bind: LdapBind,
    /// Kerberos SPN of the domain controller (default `ldap/<host of url>`).
    pub spn: Option<String>,
    /// Budget of the connection and of each operation.
    pub timeout: Duration,
}

/// How `adcs check` binds to the domain controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapBind {
    /// Simple bind with the service account's password, over LDAPS or
    /// StartTLS.
    Simple,
    /// SASL GSSAPI with certeasy's Kerberos client (RFC 4752); on plain
    /// `ldap://` the session is sealed (SASL confidentiality layer).
    Kerberos,
}

/// A CA reached through `certreq.exe` (the fallback).
#[derive(Debug, Clone)]
pub struct CertreqTarget {
    /// `HOST\CA Common Name`, given to `certreq -config`.
    pub ca_name: String,
    /// Template.
    pub template: String,
    /// Path of certreq.
    pub certreq_path: PathBuf,
    /// Budget of one certreq run; also how long a request may stay pending.
    pub default_timeout: Duration,
    /// Existing private directory for the per-exchange scratch directories
    /// (the caller creates it with the permissions it wants).
    pub scratch_dir: PathBuf,
    /// Chain to complete certreq's output with (DER, issuer first).
    pub ca_chain: Vec<Vec<u8>>,
}
