//! The lab CA's YAML configuration.
//!
//! ```yaml
//! ca:
//!   name: LAB-CA              # the CA name clients pass (`-ca LAB-CA`)
//!   state-dir: lab-adcs-state # CA key/certificate + request state (relative to this file)
//! listen:
//!   address: 127.0.0.1
//!   epm-port: 135             # endpoint mapper
//!   icpr-port: 0              # ICertPassage (0 = any free port, announced by the endpoint mapper)
//! auth-level: privacy         # minimum: privacy | integrity
//! users:
//!   - { domain: CORP, name: alice, password: "Passw0rd!" }
//! kerberos:                   # optional: accept Kerberos (SPNEGO) beside NTLM
//!   keytab: ca.keytab         # the CA's SPN keys (relative to this file)
//! templates:
//!   - name: WebServer
//!     disposition: issue      # issue | pend | deny
//!     validity-days: 90
//!     eku: [serverAuth]
//!     min-rsa-bits: 2048
//!   - { name: DeniedTemplate, disposition: deny, deny-hresult: 0x80094012 }
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// YAML error (with line and key).
    #[error("{path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: serde_norway::Error,
    },
    /// Semantic error.
    #[error("{0}")]
    Invalid(String),
}

/// Whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// CA section.
    pub ca: CaConfig,
    /// Listeners.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Minimum authentication level for ICertPassage and the DCOM interfaces.
    #[serde(default)]
    pub auth_level: Level,
    /// Whether ICertPassage (MS-ICPR) answers requests (default true). With
    /// `false` the CA behaves like a Windows CA whose `InterfaceFlags` carry
    /// `IF_NORPCICERTREQUEST`: every `CertServerRequest` gets
    /// `E_ACCESSDENIED`, and only the DCOM interfaces enroll.
    #[serde(default = "default_true")]
    pub icpr_enabled: bool,
    /// Accounts.
    pub users: Vec<User>,
    /// Templates.
    pub templates: Vec<Template>,
    /// Kerberos acceptance (optional).
    #[serde(default)]
    pub kerberos: Option<KerberosSection>,
    /// The keys of `kerberos.keytab`, read by [`Config::load`].
    #[serde(skip)]
    pub keytab: Option<std::sync::Arc<msrpc::keytab::Keytab>>,
    /// Directory of the configuration file (set by [`Config::load`]).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `kerberos:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KerberosSection {
    /// Keytab with the keys of the CA's service principals
    /// (`HOST/ca.example`, `RPCSS/ca.example`), relative to the file.
    pub keytab: PathBuf,
}

/// CA identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CaConfig {
    /// CA common name.
    pub name: String,
    /// State directory (CA key and certificate, `state.json`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("lab-adcs-state")
}

/// Listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ListenConfig {
    /// Address (default 127.0.0.1).
    #[serde(default = "default_addr")]
    pub address: Ipv4Addr,
    /// Endpoint mapper port (default 135).
    #[serde(default = "default_epm")]
    pub epm_port: u16,
    /// ICertPassage port (default 0: any).
    #[serde(default)]
    pub icpr_port: u16,
    /// DCOM object exporter port (ICertAdminD, ICertRequestD…; default 0:
    /// any, announced through activation on the endpoint mapper's port).
    #[serde(default)]
    pub dcom_port: u16,
}

fn default_addr() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}

fn default_epm() -> u16 {
    135
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            address: default_addr(),
            epm_port: default_epm(),
            icpr_port: 0,
            dcom_port: 0,
        }
    }
}

/// Minimum level.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Packet privacy (sign + seal).
    #[default]
    Privacy,
    /// Packet integrity (sign).
    Integrity,
}

/// An account.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct User {
    /// NetBIOS domain (a DNS domain whose first label matches also works).
    pub domain: String,
    /// Account name.
    pub name: String,
    /// Password (lab only).
    pub password: String,
    /// Holds "Issue and Manage Certificates" (ICertAdminD: revoke, resubmit,
    /// deny) and "Manage CA" (ICertAdminD2 properties); default true.
    #[serde(default = "default_true")]
    pub manager: bool,
}

/// What a template does with a request.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Issue at once.
    Issue,
    /// Take under submission until `lab-adcs approve|deny`.
    Pend,
    /// Deny with `deny-hresult`.
    Deny,
}

/// A certificate template.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Template {
    /// Template name (`CertificateTemplate:` attribute), compared case-insensitively.
    pub name: String,
    /// Disposition policy.
    pub disposition: Policy,
    /// HRESULT for `deny` (default CERTSRV_E_TEMPLATE_DENIED 0x80094012).
    #[serde(default)]
    pub deny_hresult: Option<u32>,
    /// Validity of issued certificates in days (default 90).
    #[serde(default = "default_validity")]
    pub validity_days: u32,
    /// EKUs added: `serverAuth`, `clientAuth` or dotted OIDs.
    #[serde(default)]
    pub eku: Vec<String>,
    /// Minimum RSA modulus size (default 2048).
    #[serde(default = "default_rsa")]
    pub min_rsa_bits: u32,
    /// Whether ECDSA keys are accepted (default true).
    #[serde(default = "default_true")]
    pub allow_ecdsa: bool,
    /// Lab misbehaviour for tests of the client's checks: issue the
    /// certificate for a fresh key of the CA's own instead of the request's
    /// key (default false).
    #[serde(default)]
    pub substitute_key: bool,
}

fn default_validity() -> u32 {
    90
}
fn default_rsa() -> u32 {
    2048
}
fn default_true() -> bool {
    true
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut cfg = Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.into(),
                source,
            },
            other => other,
        })?;
        cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if cfg.base_dir.as_os_str().is_empty() {
            cfg.base_dir = PathBuf::from(".");
        }
        if let Some(k) = &cfg.kerberos {
            let p = cfg.base_dir.join(&k.keytab);
            let bytes = std::fs::read(&p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            let kt = msrpc::keytab::Keytab::parse(&bytes).map_err(|e| {
                ConfigError::Invalid(format!("kerberos.keytab {}: {e}", p.display()))
            })?;
            cfg.keytab = Some(std::sync::Arc::new(kt));
        }
        Ok(cfg)
    }

    /// Parses and validates YAML text (relative paths resolve against the current directory).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = serde_norway::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("<yaml>"),
            source,
        })?;
        if cfg.ca.name.trim().is_empty() {
            return Err(ConfigError::Invalid("ca.name must not be empty".into()));
        }
        if cfg.users.is_empty() {
            return Err(ConfigError::Invalid(
                "users: at least one account is required".into(),
            ));
        }
        for t in &cfg.templates {
            for e in &t.eku {
                if eku_oid(e).is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "template {}: unknown EKU {e:?}",
                        t.name
                    )));
                }
            }
            if t.validity_days == 0 {
                return Err(ConfigError::Invalid(format!(
                    "template {}: validity-days must be > 0",
                    t.name
                )));
            }
        }
        Ok(Config {
            base_dir: PathBuf::from("."),
            ..cfg
        })
    }

    /// The state directory, resolved against the configuration's directory.
    pub fn state_dir(&self) -> PathBuf {
        if self.ca.state_dir.is_absolute() {
            self.ca.state_dir.clone()
        } else {
            self.base_dir.join(&self.ca.state_dir)
        }
    }

    /// Finds a template by name (case-insensitive).
    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

/// OID arcs for an EKU name or dotted OID.
pub fn eku_oid(name: &str) -> Option<Vec<u64>> {
    match name {
        "serverAuth" => Some(vec![1, 3, 6, 1, 5, 5, 7, 3, 1]),
        "clientAuth" => Some(vec![1, 3, 6, 1, 5, 5, 7, 3, 2]),
        other => {
            let arcs: Result<Vec<u64>, _> = other.split('.').map(str::parse).collect();
            arcs.ok().filter(|a| a.len() >= 2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../../examples/lab-adcs.yml");
        let cfg = Config::parse(text).unwrap();
        assert_eq!(cfg.ca.name, "LAB-CA");
        assert_eq!(cfg.listen.epm_port, 135);
        assert_eq!(
            cfg.template("webserver").unwrap().disposition,
            Policy::Issue
        );
        assert_eq!(
            cfg.template("PendingWebServer").unwrap().disposition,
            Policy::Pend
        );
        assert_eq!(
            cfg.template("DeniedTemplate").unwrap().deny_hresult,
            Some(0x8009_4012)
        );
    }

    #[test]
    fn unknown_keys_refused() {
        let e = Config::parse("ca: {name: X, bogus: 1}\nusers: []\ntemplates: []\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
