//! `type: adcs`: Microsoft ADCS over the native RPC bridge (MS-ICPR), the
//! default ADCS connector. Everything the bridge needs is checked here,
//! without contacting the CA, so that a misspelt CA name or a password
//! written in the YAML stops `validate`; `certeasy adcs check` then tests
//! the CA itself against [`ExpectationsExt`].
//!
//! The `ldap` section that `adcs check` reads Active Directory through is
//! in `ldap.rs`.

use certeasy_adcs::preflight::{AcceptedKeys, Expectations};
use certeasy_adcs::AdcsTarget;
use serde::Deserialize;

use super::ldap::AdcsLdap;
use super::{adcs_max_validity, AuthorityKind, AuthoritySettings};
use crate::config::checker::Checker;
use crate::config::duration::{secs, ConfDuration};
use crate::config::{Config, PolicySettings};

/// `configuration` of an `adcs` authority (native bridge, MS-ICPR over RPC).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct AdcsAuthority {
    /// `HOST\CA Common Name`, as in `certreq -config`.
    ca_name: String,
    /// RPC target when it differs from the HOST part of `ca-name`.
    #[serde(default)]
    host: Option<String>,
    /// Certificate template to request.
    certificate_template: String,
    /// Credentials of the service account.
    auth: AdcsAuth,
    /// RPC transport.
    #[serde(default = "default_transport")]
    transport: AdcsTransport,
    /// Enrollment interface: `auto` (ICertPassage, DCOM `ICertRequestD2`
    /// once the CA refuses ICertPassage), `icpr` or `dcom`.
    #[serde(default)]
    enrollment_interface: EnrollmentInterface,
    /// Fixed ICertPassage port (skips the endpoint mapper).
    #[serde(default)]
    port: Option<u16>,
    /// Endpoint mapper port.
    #[serde(default = "default_epm_port")]
    endpoint_mapper_port: u16,
    /// RPC authentication level.
    #[serde(default = "default_auth_level")]
    auth_level: AdcsAuthLevel,
    /// How long a request may stay pending at the CA.
    #[serde(default = "secs::<240>")]
    default_timeout: ConfDuration,
    /// Budget of one RPC exchange (connect, bind, call).
    #[serde(default = "secs::<30>")]
    request_timeout: ConfDuration,
    /// PEM chain to serve when the CA's reply carries none.
    #[serde(default)]
    ca_chain_file: Option<String>,
    /// Do not propagate revocations to the CA.
    #[serde(default)]
    disable_ca_revocation: bool,
    /// Refuse certificates living longer than this.
    #[serde(default)]
    max_validity: Option<ConfDuration>,
    /// Health probe interval.
    #[serde(default = "secs::<60>")]
    health_check_interval: ConfDuration,
    /// Authenticated associations kept idle (0: authenticate every request).
    #[serde(default = "default_pool_size")]
    pool_size: u32,
    /// How long an idle association is kept.
    #[serde(default = "secs::<60>")]
    pool_idle_timeout: ConfDuration,
    /// Domain controller that `certeasy adcs check` reads the template, the
    /// enrollment service and the service account's rights from.
    #[serde(default)]
    ldap: Option<AdcsLdap>,
}

fn default_transport() -> AdcsTransport {
    AdcsTransport::Tcp
}
fn default_epm_port() -> u16 {
    135
}
fn default_auth_level() -> AdcsAuthLevel {
    AdcsAuthLevel::Privacy
}

/// `auth` of an `adcs` authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AdcsAuth {
    /// `ntlm`, `kerberos` or `negotiate`.
    method: AdcsAuthMethod,
    /// NetBIOS or DNS domain.
    #[serde(default)]
    domain: String,
    /// Service account.
    username: String,
    /// File holding the password.
    #[serde(default)]
    password_file: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    password_env: Option<String>,
    /// Accepted only to refuse it with a hint: no plain passwords in YAML.
    #[serde(default)]
    password: Option<String>,
    /// Kerberos keytab holding the service account's keys (no password).
    #[serde(default)]
    keytab: Option<String>,
    /// Kerberos realm of the service account (default: `domain` in upper
    /// case when it is a DNS name).
    #[serde(default)]
    realm: Option<String>,
    /// Kerberos: KDC URL, e.g. `tcp://dc01.corp.example:88` (default: found
    /// by DNS SRV, `_kerberos._tcp.<realm in lower case>`).
    #[serde(default)]
    kdc: Option<String>,
    /// Kerberos: service principal of the CA (default `host/<host>`).
    #[serde(default)]
    spn: Option<String>,
}

/// The largest `pool-size` accepted.
const MAX_POOL_SIZE: usize = 64;

fn default_pool_size() -> u32 {
    // The library's default, as the documentation states it.
    u32::try_from(certeasy_adcs::pool::POOL_SIZE).unwrap_or(4)
}

/// ADCS authentication mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AdcsAuthMethod {
    /// NTLMv2.
    Ntlm,
    /// Kerberos.
    Kerberos,
    /// SPNEGO: Kerberos when possible, NTLM otherwise.
    Negotiate,
}

/// RPC transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AdcsTransport {
    /// `ncacn_ip_tcp`.
    Tcp,
    /// `ncacn_np` (`\pipe\cert` over SMB).
    Np,
}

/// `enrollment-interface` of an `adcs` authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum EnrollmentInterface {
    /// MS-ICPR, switching to DCOM when the CA refuses it.
    #[default]
    Auto,
    /// MS-ICPR only.
    Icpr,
    /// MS-WCCE `ICertRequestD2` over DCOM only.
    Dcom,
}

/// RPC authentication level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AdcsAuthLevel {
    /// Sign and seal every PDU (what hardened CAs require).
    Privacy,
    /// Sign every PDU.
    Integrity,
}

impl Checker<'_> {
    /// Checks the `configuration` of the ADCS authority `name` (`base` is
    /// the authority's key path) and reads its service account's password.
    pub(super) fn check_adcs(
        &mut self,
        base: &str,
        name: &str,
        cfg: AdcsAuthority,
    ) -> Option<AuthoritySettings> {
        let ck = format!("{base}.configuration");
        let mut ok = true;
        let (host_part, ca) = match cfg.ca_name.split_once('\\') {
            Some((h, c)) if !h.trim().is_empty() && !c.trim().is_empty() => {
                (h.trim().to_string(), c.trim().to_string())
            }
            _ => {
                self.issue(
                    format!("{ck}.ca-name"),
                    format!(
                        "{:?} must be HOST\\CA Common Name, as printed by certutil -config - -ping",
                        cfg.ca_name
                    ),
                );
                return None;
            }
        };
        let host = cfg.host.clone().unwrap_or(host_part);
        if cfg.transport == AdcsTransport::Np {
            ok = false;
            self.issue(
                format!("{ck}.transport"),
                "np (named pipes over SMB) is not available in this build yet; use tcp",
            );
        }
        if cfg.port == Some(0) {
            ok = false;
            self.issue(
                format!("{ck}.port"),
                "an explicit zero is not allowed; omit the key to use the endpoint mapper",
            );
        }
        if cfg.endpoint_mapper_port == 0 {
            ok = false;
            self.issue(
                format!("{ck}.endpoint-mapper-port"),
                "an explicit zero is not allowed; omit the key for 135",
            );
        }
        let a = &cfg.auth;
        if a.password.is_some() {
            ok = false;
            self.issue(
                format!("{ck}.auth.password"),
                "a password is never written in the configuration; put it in a file readable only by certeasy (password-file) or in an environment variable (password-env)",
            );
        }
        let keytab = match &a.keytab {
            Some(_) if a.method == AdcsAuthMethod::Ntlm => {
                ok = false;
                self.issue(
                    format!("{ck}.auth.keytab"),
                    "a keytab holds Kerberos keys; use method kerberos (or negotiate), or password-file for NTLM",
                );
                None
            }
            Some(f) => {
                let key = format!("{ck}.auth.keytab");
                let path = self.work_path(&key, f);
                match crate::fsutil::check_secret_file(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        std::fs::read(&path)
                            .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    })
                    .and_then(|b| {
                        certeasy_adcs::Keytab::parse(&b)
                            .map_err(|e| format!("{}: {e}", path.display()))
                    }) {
                    Ok(kt) => Some(std::sync::Arc::new(kt)),
                    Err(e) => {
                        ok = false;
                        self.issue(key, e);
                        None
                    }
                }
            }
            None => None,
        };
        let realm = a.realm.clone().or_else(|| {
            a.domain
                .contains('.')
                .then(|| a.domain.to_ascii_uppercase())
        });
        if a.method == AdcsAuthMethod::Kerberos && realm.is_none() {
            ok = false;
            self.issue(
                format!("{ck}.auth.realm"),
                "method kerberos needs the realm (e.g. CORP.EXAMPLE), or domain as a DNS name",
            );
        }
        if a.method == AdcsAuthMethod::Kerberos && cfg.auth_level == AdcsAuthLevel::Integrity {
            ok = false;
            self.issue(
                format!("{ck}.auth-level"),
                "Kerberos is supported at packet privacy only; set auth-level: privacy",
            );
        }
        let password = match (&a.password_file, &a.password_env) {
            (None, None) if keytab.is_some() => Some(String::new()),
            (Some(f), None) => {
                let key = format!("{ck}.auth.password-file");
                self.secret_file(&key, f)
                    .and_then(|bytes| match String::from_utf8(bytes) {
                        Ok(p) => Some(p),
                        Err(_) => {
                            self.issue(key, "the password file is not UTF-8 text");
                            None
                        }
                    })
            }
            (None, Some(var)) => self.secret_env(&format!("{ck}.auth.password-env"), var),
            (Some(_), Some(_)) => {
                self.issue(
                    format!("{ck}.auth"),
                    "set password-file or password-env, not both",
                );
                None
            }
            (None, None) => {
                if a.password.is_none() {
                    self.issue(
                        format!("{ck}.auth"),
                        "set password-file or password-env for the service account",
                    );
                }
                None
            }
        };
        let mut ca_chain = Vec::new();
        if let Some(f) = &cfg.ca_chain_file {
            match self.pem_certs_file(&format!("{ck}.ca-chain-file"), f, "") {
                Some((_, certs)) => ca_chain = certs,
                None => ok = false,
            }
        }
        let ldap = match &cfg.ldap {
            Some(l) => match self.check_adcs_ldap(
                &format!("{ck}.ldap"),
                l,
                super::ldap::LdapAuth {
                    kerberos: a.method != AdcsAuthMethod::Ntlm,
                    password: a.password_file.is_some() || a.password_env.is_some(),
                    realm: realm.is_some(),
                },
            ) {
                Some(v) => Some(v),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let pool_size = match usize::try_from(cfg.pool_size) {
            Ok(n) if n <= MAX_POOL_SIZE => n,
            _ => {
                ok = false;
                self.issue(
                    format!("{ck}.pool-size"),
                    format!("{} is too many idle associations; at most {MAX_POOL_SIZE} (default 4; 0 authenticates every request)", cfg.pool_size),
                );
                0
            }
        };
        if !ok {
            return None;
        }
        Some(AuthoritySettings {
            name: name.to_string(),
            max_validity: adcs_max_validity(cfg.max_validity),
            health_check_interval: cfg.health_check_interval.get(),
            pool: certeasy_adcs::pool::PoolSettings {
                size: pool_size,
                idle_timeout: cfg.pool_idle_timeout.get(),
            },
            kind: AuthorityKind::Adcs(Box::new(AdcsTarget {
                host,
                ca,
                ca_name: cfg.ca_name.clone(),
                template: cfg.certificate_template.clone(),
                method: match a.method {
                    AdcsAuthMethod::Ntlm => certeasy_adcs::AuthMethod::Ntlm,
                    AdcsAuthMethod::Kerberos => certeasy_adcs::AuthMethod::Kerberos,
                    AdcsAuthMethod::Negotiate => certeasy_adcs::AuthMethod::Negotiate,
                },
                domain: a.domain.clone(),
                username: a.username.clone(),
                password: password?,
                realm,
                keytab,
                kdc: a.kdc.clone(),
                spn: a.spn.clone(),
                port: cfg.port,
                endpoint_mapper_port: cfg.endpoint_mapper_port,
                auth_level: match cfg.auth_level {
                    AdcsAuthLevel::Privacy => certeasy_adcs::AuthLevel::Privacy,
                    AdcsAuthLevel::Integrity => certeasy_adcs::AuthLevel::Integrity,
                },
                default_timeout: cfg.default_timeout.get(),
                request_timeout: cfg.request_timeout.get(),
                ca_chain,
                disable_ca_revocation: cfg.disable_ca_revocation,
                transport: match cfg.enrollment_interface {
                    EnrollmentInterface::Auto => certeasy_adcs::Transport::Auto,
                    EnrollmentInterface::Icpr => certeasy_adcs::Transport::Icpr,
                    EnrollmentInterface::Dcom => certeasy_adcs::Transport::Dcom,
                },
                ldap,
            })),
        })
    }
}

/// Builds [`Expectations`] from a configuration.
pub trait ExpectationsExt: Sized {
    /// What the configuration expects of authority `name`: its
    /// `max-validity` and `default-timeout`, and the keys and extra EKUs of
    /// the issuance policies bound to it. None when `name` is not an `adcs`
    /// authority.
    fn for_authority(config: &Config, name: &str) -> Option<Self>;
}

impl ExpectationsExt for Expectations {
    fn for_authority(config: &Config, name: &str) -> Option<Expectations> {
        let a = config.authority(name)?;
        let AuthorityKind::Adcs(s) = &a.kind else {
            return None;
        };
        let bound: Vec<&PolicySettings> = config
            .policies
            .iter()
            .filter(|p| {
                config
                    .bindings
                    .get(&p.name)
                    .is_some_and(|b| b.authorities.iter().any(|x| x == name))
            })
            .collect();
        let mut extra_ekus: Vec<String> = Vec::new();
        for p in &bound {
            for e in &p.csr.allowed_extra_eku {
                let oid = e.oid().to_string();
                if !extra_ekus.contains(&oid) {
                    extra_ekus.push(oid);
                }
            }
        }
        Some(Expectations {
            max_validity: a.max_validity,
            default_timeout: s.default_timeout,
            keys: AcceptedKeys::from_policies(bound.iter().map(|p| (p.name.as_str(), &p.csr.key))),
            extra_ekus,
        })
    }
}
