//! The LDAP part of the preflight: reads the certificate template,
//! the CA's enrollment service and the service account's rights from Active
//! Directory (a domain controller over LDAPS or StartTLS, simple bind with
//! the authority's own credentials) and says, per line, what is wrong and
//! how to fix it.
//!
//! The decisions live in [`super::template`] (template attributes) and [`super::sd`]
//! (security descriptors); this module does the I/O and orders the lines.
//! A line whose input could not be read is skipped, not failed, unless
//! reading it is itself the check.

use std::sync::Arc;
use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchResult};

use super::entry::{decode_entry, filter_escape_bytes, rc_name, Entry};
use super::sasl;
use super::sd::{self, Dacl, Decision, Sid};
use super::template::{self, names_list, Expectations, Template};
use super::{CheckLine, Verdict};
use crate::{AdcsTarget, LdapBind, LdapTarget};

/// LDAP_SERVER_SD_FLAGS_OID: which parts of `nTSecurityDescriptor` to return.
const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
/// `SEQUENCE { INTEGER 4 }`: DACL_SECURITY_INFORMATION only, which a reader
/// with READ_CONTROL gets (the SACL would need a privilege).
const SD_FLAGS_DACL: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x04];

/// The name the simple bind uses: `ldap.bind-name` when set; the username
/// as written when it already is `user@suffix` or `DOMAIN\user`;
/// `user@domain` for a DNS domain; `DOMAIN\user` for a NetBIOS domain
/// (Active Directory accepts both forms, and `user@NETBIOS` is not a UPN).
pub fn bind_name(s: &AdcsTarget) -> String {
    if let Some(n) = s.ldap.as_ref().and_then(|l| l.bind_name.clone()) {
        return n;
    }
    let (user, domain) = (s.username.as_str(), s.domain.trim());
    if user.contains('@') || user.contains('\\') || domain.is_empty() {
        user.to_string()
    } else if domain.contains('.') {
        format!("{user}@{domain}")
    } else {
        format!("{domain}\\{user}")
    }
}

/// The `sAMAccountName` part of a username (`DOMAIN\user`, `user@suffix`).
fn sam_account_name(username: &str) -> &str {
    let user = username.rsplit('\\').next().unwrap_or(username);
    user.split('@').next().unwrap_or(user)
}

/// Explains the `data NNN` sub-code Active Directory puts in the diagnostic
/// message of a failed bind (`80090308: LdapErr: …, data 52e, v4563`).
fn ad_bind_reason(text: &str) -> Option<&'static str> {
    let code = text.split("data ").nth(1)?.split([',', ' ']).next()?;
    Some(match code.to_ascii_lowercase().as_str() {
        "525" => "no such user",
        "52e" => "wrong password",
        "530" => "logon not permitted at this time",
        "531" => "logon not permitted from this workstation",
        "532" => "password expired",
        "533" => "account disabled",
        "701" => "account expired",
        "773" => "password must be changed before first logon",
        "775" => "account locked out",
        _ => return None,
    })
}

/// `CN=<template>,CN=Certificate Templates,CN=Public Key Services,CN=Services,<configuration>`.
pub fn templates_container(configuration_dn: &str) -> String {
    format!("CN=Certificate Templates,CN=Public Key Services,CN=Services,{configuration_dn}")
}

/// `CN=Enrollment Services,CN=Public Key Services,CN=Services,<configuration>`.
pub fn enrollment_services_container(configuration_dn: &str) -> String {
    format!("CN=Enrollment Services,CN=Public Key Services,CN=Services,{configuration_dn}")
}

/// The forest root domain below `CN=Configuration,…` (fallback when the
/// rootDSE names no default naming context).
fn domain_of_configuration(configuration_dn: &str) -> Option<String> {
    let (first, rest) = configuration_dn.split_once(',')?;
    first
        .trim()
        .eq_ignore_ascii_case("CN=Configuration")
        .then(|| rest.trim().to_string())
}

/// One search's outcome.
struct Found {
    rc: u32,
    text: String,
    entries: Vec<Entry>,
}

/// A bound LDAP session.
struct Session {
    ldap: Ldap,
    timeout: Duration,
}

impl Session {
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        with_dacl: bool,
    ) -> Result<Found, String> {
        let mut ldap = self.ldap.clone();
        if with_dacl {
            ldap.with_controls(RawControl {
                ctype: SD_FLAGS_OID.to_string(),
                crit: false,
                val: Some(SD_FLAGS_DACL.to_vec()),
            });
        }
        let attrs: Vec<&str> = attrs.to_vec();
        match tokio::time::timeout(self.timeout, ldap.search(base, scope, filter, attrs)).await {
            Err(_) => Err(format!(
                "search of {base:?} got no answer within {}",
                template::days(self.timeout)
            )),
            Ok(Err(e)) => Err(format!("search of {base:?} failed: {e}")),
            Ok(Ok(SearchResult(items, res))) => Ok(Found {
                rc: res.rc,
                text: res.text,
                entries: items
                    .iter()
                    .filter(|i| !i.is_ref() && !i.is_intermediate())
                    .filter_map(|i| decode_entry(&i.0))
                    .collect(),
            }),
        }
    }

    /// Reads one object; Ok(None) when it does not exist.
    async fn read(
        &mut self,
        dn: &str,
        filter: &str,
        attrs: &[&str],
        with_dacl: bool,
    ) -> Result<Option<Entry>, String> {
        let found = self
            .search(dn, Scope::Base, filter, attrs, with_dacl)
            .await?;
        match found.rc {
            0 => Ok(found.entries.into_iter().next()),
            32 => Ok(None),
            rc => Err(format!(
                "reading {dn:?} failed: {}{}",
                rc_name(rc),
                if found.text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", found.text)
                }
            )),
        }
    }
}

/// Collects the lines of one authority.
struct Lines {
    authority: String,
    out: Vec<CheckLine>,
}

impl Lines {
    fn push(&mut self, what: impl Into<String>, verdict: Verdict) {
        self.out.push(CheckLine {
            authority: self.authority.clone(),
            what: what.into(),
            verdict,
        });
    }

    fn line(&mut self, (what, verdict): (String, Verdict)) {
        self.push(what, verdict);
    }
}

fn tls_config(l: &LdapTarget) -> Result<Arc<rustls::ClientConfig>, (String, String)> {
    let mut roots = rustls::RootCertStore::empty();
    if l.ca_certs.is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err((
                "this system has no trusted root certificates to verify the domain controller".into(),
                "set ldap.ca-file to the PEM of the CA that issued the domain controller's certificate (your enterprise root CA)".into(),
            ));
        }
    } else {
        for (i, der) in l.ca_certs.iter().enumerate() {
            roots
                .add(rustls_pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| {
                    (
                        format!("certificate {} of ldap.ca-file is not a usable trust anchor: {e}", i + 1),
                        "put the PEM of the root CA that issued the domain controller's certificate in ldap.ca-file".to_string(),
                    )
                })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            (
                format!("TLS setup failed: {e}"),
                "report this as a bug".to_string(),
            )
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn tls_fix(e: &rustls::Error, l: &LdapTarget) -> String {
    use rustls::CertificateError as C;
    let anchors = match &l.ca_file {
        Some(f) => format!(
            "the domain controller's certificate does not chain to {}: put the PEM of the CA that issued it (your enterprise root CA, certutil -ca.cert) in ldap.ca-file",
            f.display()
        ),
        None => "the domain controller's certificate is not trusted by this system: set ldap.ca-file to the PEM of the CA that issued it (your enterprise root CA, certutil -ca.cert)".into(),
    };
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature | C::BadEncoding => anchors,
            C::NotValidForName | C::NotValidForNameContext { .. } => "write the domain controller's DNS name as its certificate carries it (e.g. dc01.corp.example) in ldap.url, not an address or an alias".into(),
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => "the domain controller's certificate is expired or not yet valid: renew it on the DC (certlm.msc, Kerberos Authentication template) and check both clocks".into(),
            _ => anchors,
        },
        _ => "check that ldap.url names the LDAPS port (636) of a domain controller that has a certificate, or use ldap:// with start-tls: true on 389".into(),
    }
}

/// `host:port` and host of an `ldap://host[:port]` URL (port 389 by default).
fn ldap_host_port(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("ldap://")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.is_empty() {
        return None;
    }
    let (host, has_port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h.to_string(), after.starts_with(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, _)) => (h.to_string(), true),
            None => (hostport.to_string(), false),
        }
    };
    let addr = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:389")
    };
    Some((addr, host))
}

/// The SPN of the domain controller's LDAP service: `ldap.spn`, else
/// `ldap/<host of ldap.url>`.
pub fn ldap_spn(l: &LdapTarget) -> String {
    l.spn.clone().unwrap_or_else(|| {
        let host = ldap_host_port(&l.url).map(|(_, h)| h).unwrap_or_default();
        format!("ldap/{host}")
    })
}

/// Connects over plain LDAP and binds with Kerberos (SASL GSSAPI), sealing
/// the session; the line for that step.
async fn connect_kerberos(s: &AdcsTarget, l: &LdapTarget) -> (Option<Ldap>, String, Verdict) {
    let how = format!("LDAP {}", l.url);
    let spn = ldap_spn(l);
    let mut auth = s.client_auth();
    auth.spn = Some(spn.clone());
    // Without auth.kdc the KDC is found by DNS SRV (also for negotiate,
    // whose RPC side would rather fall back to NTLM than look for a KDC).
    let mut transport = s.kdc_transport();
    if auth.kdc.is_none() {
        if let Some(realm) = s.realm.as_deref() {
            auth.kdc = Some(crate::kdc::discovery_url(realm));
            transport = Some(std::sync::Arc::new(crate::kdc::SrvKdc::new(
                realm,
                crate::kdc::Nameservers::System,
            )));
        }
    }
    let who = format!("{}@{}", auth.credentials.username, auth.credentials.domain);
    let reach_fix = "check ldap.url (the domain controller's name, port 389) and that a firewall lets this host reach it";
    let Some((addr, _)) = ldap_host_port(&l.url) else {
        return (
            None,
            format!("{how}: not an ldap://host[:port] URL"),
            Verdict::Fail(
                "a Kerberos bind uses plain ldap://dc01.corp.example:389 (the session is sealed)"
                    .into(),
            ),
        );
    };
    let ctx = match msrpc::auth::ClientContext::new_gss_api(&auth, transport) {
        Ok(c) => c,
        Err(e) => {
            let f = sasl::kerberos_failure(&e, &spn);
            return (None, format!("{how}: {}", f.what), Verdict::Fail(f.fix));
        }
    };
    let mut tcp = match tokio::time::timeout(l.timeout, tokio::net::TcpStream::connect(&addr)).await
    {
        Err(_) => {
            return (
                None,
                format!("{how}: no answer within {}", template::days(l.timeout)),
                Verdict::Fail(format!("{reach_fix}; raise ldap.timeout on a slow link")),
            )
        }
        Ok(Err(e)) => {
            return (
                None,
                format!("{how}: cannot connect: {e}"),
                Verdict::Fail(reach_fix.into()),
            )
        }
        Ok(Ok(t)) => t,
    };
    let est = match sasl::bind(&mut tcp, ctx, &spn, false, l.timeout).await {
        Ok(e) => e,
        Err(f) => return (None, format!("{how}: {}", f.what), Verdict::Fail(f.fix)),
    };
    let pair = std::os::unix::net::UnixStream::pair().and_then(|(a, b)| {
        b.set_nonblocking(true)?;
        Ok((a, tokio::net::UnixStream::from_std(b)?))
    });
    let (mine, theirs) = match pair {
        Ok(p) => p,
        Err(e) => {
            return (
                None,
                format!("{how}: cannot create the local socket pair for the sealed session: {e}"),
                Verdict::Fail("report this as a bug".into()),
            )
        }
    };
    sasl::spawn_pump(theirs, tcp, est);
    let settings = LdapConnSettings::new()
        .set_conn_timeout(l.timeout)
        .set_std_stream(ldap3::StdStream::Unix(mine));
    match LdapConnAsync::with_settings(settings, "ldapi:///").await {
        Ok((conn, ldap)) => {
            ldap3::drive!(conn);
            (
                Some(ldap),
                format!("{how}: bound with Kerberos (SASL GSSAPI, {spn}) as {who}, session signed and sealed"),
                Verdict::Pass,
            )
        }
        Err(e) => (
            None,
            format!("{how}: the sealed session could not start: {e}"),
            Verdict::Fail("report this as a bug".into()),
        ),
    }
}

/// Connects (TCP, TLS or StartTLS) and binds; the line for that step.
async fn connect(s: &AdcsTarget, l: &LdapTarget) -> (Option<Ldap>, String, Verdict) {
    if l.bind == LdapBind::Kerberos {
        return connect_kerberos(s, l).await;
    }
    let how = if l.start_tls {
        format!("LDAP {} with StartTLS", l.url)
    } else {
        format!("LDAP {}", l.url)
    };
    let who = bind_name(s);
    let reach_fix = "check ldap.url (the domain controller's name; port 636 for ldaps://, 389 for StartTLS) and that a firewall lets this host reach it";
    let config = match tls_config(l) {
        Ok(c) => c,
        Err((what, fix)) => return (None, format!("{how}: {what}"), Verdict::Fail(fix)),
    };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(l.timeout)
        .set_config(config)
        .set_starttls(l.start_tls);
    let (conn, mut ldap) = match LdapConnAsync::with_settings(settings, &l.url).await {
        Ok(pair) => pair,
        Err(e) => {
            let (what, fix) = match &e {
                LdapError::Io { source } => {
                    match source.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(tls) => (format!("TLS handshake failed: {tls}"), tls_fix(tls, l)),
                        None => (format!("cannot connect: {source}"), reach_fix.to_string()),
                    }
                }
                LdapError::Rustls { source } => {
                    (format!("TLS handshake failed: {source}"), tls_fix(source, l))
                }
                LdapError::Timeout { .. } => (
                    format!("no answer within {}", template::days(l.timeout)),
                    format!("{reach_fix}; raise ldap.timeout on a slow link"),
                ),
                LdapError::LdapResult { result } => (
                    format!("StartTLS refused: {}: {}", rc_name(result.rc), result.text),
                    "the domain controller has no certificate for LDAP: enroll one (Kerberos Authentication or Domain Controller Authentication template), or use ldaps:// if it listens on 636".into(),
                ),
                other => (format!("connection failed: {other}"), reach_fix.to_string()),
            };
            return (None, format!("{how}: {what}"), Verdict::Fail(fix));
        }
    };
    ldap3::drive!(conn);
    if s.password.is_empty() {
        return (
            None,
            format!("{how}: the password of {who} is empty (an LDAP bind with an empty password is anonymous)"),
            Verdict::Fail("put the service account's password in auth.password-file or auth.password-env".into()),
        );
    }
    let bind = tokio::time::timeout(l.timeout, ldap.simple_bind(&who, &s.password)).await;
    let res = match bind {
        Err(_) => {
            return (
                None,
                format!("{how}: bind as {who} got no answer within {}", template::days(l.timeout)),
                Verdict::Fail("the domain controller is overloaded or a middlebox drops LDAP; raise ldap.timeout or use another DC".into()),
            )
        }
        Ok(Err(e)) => {
            return (
                None,
                format!("{how}: bind as {who} failed: {e}"),
                Verdict::Fail(reach_fix.into()),
            )
        }
        Ok(Ok(r)) => r,
    };
    match res.rc {
        0 => (
            Some(ldap),
            format!("{how}: TLS certificate trusted, bound as {who}"),
            Verdict::Pass,
        ),
        49 => {
            let reason = ad_bind_reason(&res.text)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            (
                None,
                format!("{how}: bind as {who} refused: {}{reason}", rc_name(49)),
                Verdict::Fail("check auth.username, auth.domain (or ldap.bind-name) and the password; the account must be enabled, unlocked and allowed to log on".into()),
            )
        }
        8 | 13 => (
            None,
            format!("{how}: bind as {who} refused: {}: {}", rc_name(res.rc), res.text),
            Verdict::Fail("the domain controller refuses simple binds on this connection: use ldaps:// (636) or start-tls: true, and check its LDAP signing and channel binding policy".into()),
        ),
        rc => (
            None,
            format!("{how}: bind as {who} refused: {}: {}", rc_name(rc), res.text),
            Verdict::Fail("check ldap.url (a domain controller) and the account; see the message".into()),
        ),
    }
}

/// What the template lookup found.
enum TemplateLookup {
    Found(Box<Template>, Option<Dacl>),
    Missing,
}

/// The rights-related facts about the service account.
struct Account {
    sids: Vec<Sid>,
    own: Sid,
    names: Vec<(Sid, String)>,
}

impl Account {
    fn describe(&self, sid: &Option<Sid>) -> String {
        match sid {
            None => "everyone (the object has no DACL)".into(),
            Some(s) if *s == self.own => format!("the service account itself ({s})"),
            Some(s) => match self.names.iter().find(|(x, _)| x == s) {
                Some((_, n)) => format!("{n} ({s})"),
                None => match s.well_known_name() {
                    Some(n) => format!("{n} ({s})"),
                    None => s.to_string(),
                },
            },
        }
    }
}

/// Runs the LDAP checks of one `adcs` authority. Without an `ldap` section
/// the result is one skipped line saying how to enable them.
pub async fn check_ldap(name: &str, s: &AdcsTarget, expect: &Expectations) -> Vec<CheckLine> {
    let mut lines = Lines {
        authority: name.to_string(),
        out: Vec::new(),
    };
    let Some(l) = &s.ldap else {
        lines.push(
            "template publication and key/EKU/subject requirements (LDAP) not checked: add an ldap section to this authority (docs/adcs.md)",
            Verdict::Skipped,
        );
        return lines.out;
    };
    let (ldap, what, verdict) = connect(s, l).await;
    lines.push(what, verdict);
    let Some(ldap) = ldap else {
        lines.push(
            "template, publication, subject, EKU, issuance, key, validity and rights checks skipped: no LDAP session",
            Verdict::Skipped,
        );
        return lines.out;
    };
    let mut session = Session {
        ldap,
        timeout: l.timeout,
    };
    run(&mut lines, &mut session, s, l, expect).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), session.ldap.unbind()).await;
    lines.out
}

async fn run(
    lines: &mut Lines,
    session: &mut Session,
    s: &AdcsTarget,
    l: &LdapTarget,
    expect: &Expectations,
) {
    // Naming contexts.
    let root = session
        .read(
            "",
            "(objectClass=*)",
            &["configurationNamingContext", "defaultNamingContext"],
            false,
        )
        .await;
    let (root_config, root_default) = match &root {
        Ok(Some(e)) => (
            e.first_str("configurationNamingContext"),
            e.first_str("defaultNamingContext"),
        ),
        _ => (None, None),
    };
    let config_dn = match &l.configuration_dn {
        Some(dn) => match session.read(dn, "(objectClass=*)", &["1.1"], false).await {
            Ok(Some(_)) => {
                lines.push(
                    format!("configuration naming context {dn} (ldap.configuration-dn) exists"),
                    Verdict::Pass,
                );
                Some(dn.clone())
            }
            Ok(None) => {
                lines.push(
                    format!("configuration naming context {dn} (ldap.configuration-dn) does not exist"),
                    Verdict::Fail(format!(
                        "set ldap.configuration-dn to CN=Configuration,<forest root domain DN>{}, or remove it to read it from the rootDSE",
                        root_config.as_deref().map(|c| format!(" (this DC says {c})")).unwrap_or_default()
                    )),
                );
                None
            }
            Err(e) => {
                lines.push(
                    format!("configuration naming context {dn}: {e}"),
                    Verdict::Fail("the service account needs read access to the configuration partition (Authenticated Users have it by default)".into()),
                );
                None
            }
        },
        None => match (&root, root_config) {
            (_, Some(c)) => {
                lines.push(
                    format!(
                        "configuration naming context {c} (rootDSE configurationNamingContext)"
                    ),
                    Verdict::Pass,
                );
                Some(c)
            }
            (Err(e), None) => {
                lines.push(
                    format!("rootDSE unreadable: {e}"),
                    Verdict::Fail("set ldap.configuration-dn (CN=Configuration,DC=…), or point ldap.url at a domain controller".into()),
                );
                None
            }
            (Ok(_), None) => {
                lines.push(
                    "rootDSE has no configurationNamingContext",
                    Verdict::Fail("point ldap.url at a domain controller of the CA's forest, or set ldap.configuration-dn (CN=Configuration,DC=…)".into()),
                );
                None
            }
        },
    };
    let Some(config_dn) = config_dn else {
        lines.push(
            "template, publication, subject, EKU, issuance, key, validity and rights checks skipped: no configuration naming context",
            Verdict::Skipped,
        );
        return;
    };
    let domain_dn = root_default.or_else(|| domain_of_configuration(&config_dn));

    let lookup = check_template(lines, session, s, &config_dn).await;
    let ca_dacl = check_published(lines, session, s, &config_dn).await;

    match &lookup {
        Some(TemplateLookup::Found(t, _)) => {
            lines.line(template::subject(t));
            lines.line(template::ekus(t, &expect.extra_ekus));
            lines.line(template::issuance(t, expect.default_timeout));
            lines.line(template::keys(t, expect.keys.as_ref()));
            lines.line(template::validity(t, expect.max_validity));
        }
        _ => lines.push(
            format!(
                "subject, EKU, issuance, key and validity checks of template {:?} skipped: template not read",
                s.template
            ),
            Verdict::Skipped,
        ),
    }

    // Rights.
    let account = match &domain_dn {
        Some(d) => find_account(lines, session, s, d).await,
        None => {
            lines.push(
                "service account not looked up: the rootDSE names no defaultNamingContext",
                Verdict::Skipped,
            );
            None
        }
    };
    let Some(account) = account else {
        lines.push(
            "Enroll and write rights on the template and the CA not checked: service account not found",
            Verdict::Skipped,
        );
        return;
    };
    match &lookup {
        Some(TemplateLookup::Found(t, Some(dacl))) => {
            template_rights(lines, &account, &t.name, dacl);
        }
        Some(TemplateLookup::Found(t, None)) => {
            lines.push(
                format!("rights on template {:?}: its security descriptor (nTSecurityDescriptor) was not returned", t.name),
                Verdict::Fail("the service account needs Read on the template (certtmpl.msc → Security; Authenticated Users have it by default)".into()),
            );
        }
        _ => lines.push(
            format!(
                "rights on template {:?} not checked: template not read",
                s.template
            ),
            Verdict::Skipped,
        ),
    }
    match ca_dacl {
        Some(Some(dacl)) => {
            let (what, verdict) = match sd::enroll(&dacl, &account.sids) {
                Decision::Granted(by) => (
                    format!("service account may enroll on CA {:?} (Enroll granted to {})", s.ca, account.describe(&by)),
                    Verdict::Pass,
                ),
                Decision::Denied(by) => (
                    format!("service account is denied Enroll on CA {:?} (denied for {})", s.ca, account.describe(&Some(by))),
                    Verdict::Fail("in certsrv.msc open the CA's Properties → Security and remove the Deny of Request Certificates that applies to the service account".into()),
                ),
                Decision::NotGranted => (
                    format!("service account has no Enroll permission on CA {:?}", s.ca),
                    Verdict::Fail("in certsrv.msc open the CA's Properties → Security and allow Request Certificates for the service account or a group it belongs to (Authenticated Users have it by default)".into()),
                ),
            };
            lines.push(what, verdict);
        }
        Some(None) => lines.push(
            format!("Enroll on CA {:?} not checked: its enrollment service object returned no security descriptor", s.ca),
            Verdict::Skipped,
        ),
        None => lines.push(
            format!("Enroll on CA {:?} not checked: enrollment service not read", s.ca),
            Verdict::Skipped,
        ),
    }
}

/// Template exists (with the display-name hint); returns what was read.
async fn check_template(
    lines: &mut Lines,
    session: &mut Session,
    s: &AdcsTarget,
    config_dn: &str,
) -> Option<TemplateLookup> {
    let container = templates_container(config_dn);
    let dn = format!("CN={},{container}", ldap3::dn_escape(&s.template));
    let entry = match session
        .read(
            &dn,
            "(objectClass=pKICertificateTemplate)",
            &template::ATTRIBUTES,
            true,
        )
        .await
    {
        Ok(e) => e,
        Err(e) => {
            lines.push(
                format!("template {:?}: {e}", s.template),
                Verdict::Fail("the service account needs read access to CN=Public Key Services in the configuration partition (Authenticated Users have it by default)".into()),
            );
            return None;
        }
    };
    let Some(entry) = entry else {
        let by_display = session
            .search(
                &container,
                Scope::OneLevel,
                &format!(
                    "(&(objectClass=pKICertificateTemplate)(displayName={}))",
                    ldap3::ldap_escape(&s.template)
                ),
                &["cn"],
                false,
            )
            .await
            .ok()
            .and_then(|f| f.entries.into_iter().next())
            .and_then(|e| e.first_str("cn"));
        match by_display {
            Some(cn) => lines.push(
                format!("template {:?} not found: that is the display name of template {cn:?}", s.template),
                Verdict::Fail(format!(
                    "certificate-template takes the template name (cn), not the display name: set certificate-template: {cn}"
                )),
            ),
            None => lines.push(
                format!("template {:?} not found under {container}", s.template),
                Verdict::Fail("check certificate-template (the template name as certutil -CATemplates lists it, not the display name), or create the template in certtmpl.msc (duplicate Web Server)".into()),
            ),
        }
        return Some(TemplateLookup::Missing);
    };
    let template = match Template::from_entry(&entry, &s.template) {
        Ok(t) => t,
        Err(e) => {
            lines.push(
                format!("template {:?} is unreadable: {e}", s.template),
                Verdict::Fail("open the template in certtmpl.msc and save it again".into()),
            );
            return None;
        }
    };
    let dacl = match entry.values("nTSecurityDescriptor").first() {
        None => None,
        Some(b) => match sd::parse_dacl(b) {
            Ok(d) => Some(d),
            Err(e) => {
                lines.push(
                    format!(
                        "template {:?}: security descriptor unreadable: {e}",
                        template.name
                    ),
                    Verdict::Fail("report this with the output of dsacls on the template".into()),
                );
                None
            }
        },
    };
    lines.push(
        format!(
            "template {:?} found{} (schema version {})",
            template.name,
            template
                .display_name
                .as_deref()
                .map(|d| format!(", display name {d:?}"))
                .unwrap_or_default(),
            template.schema_version
        ),
        Verdict::Pass,
    );
    Some(TemplateLookup::Found(Box::new(template), dacl))
}

/// The template is published by the CA's enrollment service; returns the
/// service's DACL (None when the service was not read; Some(None) when it
/// came without a security descriptor).
async fn check_published(
    lines: &mut Lines,
    session: &mut Session,
    s: &AdcsTarget,
    config_dn: &str,
) -> Option<Option<Dacl>> {
    let container = enrollment_services_container(config_dn);
    // The object's cn is the CA name "sanitized" (MS-WCCE 3.1.1.4.1.1:
    // some characters become !xxxx, long names are cut and hashed); its
    // displayName keeps the name as configured. Match either.
    let ca = ldap3::ldap_escape(&s.ca);
    let found = session
        .search(
            &container,
            Scope::OneLevel,
            &format!("(&(objectClass=pKIEnrollmentService)(|(cn={ca})(displayName={ca})))"),
            &[
                "cn",
                "certificateTemplates",
                "dNSHostName",
                "nTSecurityDescriptor",
            ],
            true,
        )
        .await;
    let entry = match found {
        Ok(f) if f.rc == 0 => f.entries.into_iter().next(),
        Ok(f) if f.rc == 32 => None,
        Ok(f) => {
            lines.push(
                format!(
                    "enrollment service of CA {:?} unreadable: {}: {}",
                    s.ca,
                    rc_name(f.rc),
                    f.text
                ),
                Verdict::Fail("the service account needs read access to CN=Enrollment Services (Authenticated Users have it by default)".into()),
            );
            return None;
        }
        Err(e) => {
            lines.push(
                format!("enrollment service of CA {:?}: {e}", s.ca),
                Verdict::Fail("check ldap.url and ldap.timeout".into()),
            );
            return None;
        }
    };
    let Some(entry) = entry else {
        let mut cas: Vec<String> = session
            .search(
                &container,
                Scope::OneLevel,
                "(objectClass=pKIEnrollmentService)",
                &["cn", "displayName"],
                false,
            )
            .await
            .map(|f| {
                f.entries
                    .iter()
                    .filter_map(|e| e.first_str("displayName").or_else(|| e.first_str("cn")))
                    .collect()
            })
            .unwrap_or_default();
        cas.sort();
        lines.push(
            format!(
                "CA {:?} has no enrollment service object under {container} (enterprise CAs there: {})",
                s.ca,
                names_list(&cas)
            ),
            Verdict::Fail("the part of ca-name after the backslash must be the common name of an enterprise CA of this forest (certutil -config - -ping shows it)".into()),
        );
        return None;
    };
    let published = entry.strings("certificateTemplates");
    if published
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&s.template))
    {
        lines.push(
            format!("template {:?} is published on CA {:?}", s.template, s.ca),
            Verdict::Pass,
        );
    } else {
        lines.push(
            format!(
                "template {:?} is not published on CA {:?} (it publishes {})",
                s.template,
                s.ca,
                names_list(&published)
            ),
            Verdict::Fail(format!(
                "on the CA run certutil -SetCAtemplates +{}, or in certsrv.msc → Certificate Templates → New → Certificate Template to Issue",
                s.template
            )),
        );
    }
    Some(
        entry
            .values("nTSecurityDescriptor")
            .first()
            .and_then(|b| sd::parse_dacl(b).ok()),
    )
}

/// Finds the service account and its group SIDs.
async fn find_account(
    lines: &mut Lines,
    session: &mut Session,
    s: &AdcsTarget,
    domain_dn: &str,
) -> Option<Account> {
    let sam = sam_account_name(&s.username);
    let bind = bind_name(s);
    let mut filter = format!("(sAMAccountName={})", ldap3::ldap_escape(sam));
    for upn in [bind.as_str(), s.username.as_str()] {
        if upn.contains('@') {
            filter.push_str(&format!("(userPrincipalName={})", ldap3::ldap_escape(upn)));
        }
    }
    let filter = format!("(|{filter})");
    let found = match session
        .search(
            domain_dn,
            Scope::Subtree,
            &filter,
            &["sAMAccountName", "objectSid"],
            false,
        )
        .await
    {
        Ok(f) if f.rc == 0 => f,
        Ok(f) => {
            lines.push(
                format!(
                    "service account lookup under {domain_dn} failed: {}: {}",
                    rc_name(f.rc),
                    f.text
                ),
                Verdict::Fail(
                    "the service account needs read access to its own user object (the default)"
                        .into(),
                ),
            );
            return None;
        }
        Err(e) => {
            lines.push(
                format!("service account lookup under {domain_dn}: {e}"),
                Verdict::Fail("check ldap.url and ldap.timeout".into()),
            );
            return None;
        }
    };
    let Some(user) = found.entries.into_iter().next() else {
        lines.push(
            format!("service account {sam:?} not found under {domain_dn} (by sAMAccountName or userPrincipalName)"),
            Verdict::Fail("check auth.username; ldap.url must reach a domain controller of the account's domain".into()),
        );
        return None;
    };
    let details = session
        .read(
            &user.dn,
            "(objectClass=*)",
            &["objectSid", "tokenGroups"],
            false,
        )
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| user.clone());
    let own = match details
        .values("objectSid")
        .first()
        .map(|b| Sid::from_bytes(b))
    {
        Some(Ok(sid)) => sid,
        Some(Err(e)) => {
            lines.push(
                format!("service account {}: objectSid unreadable: {e}", user.dn),
                Verdict::Fail("report this with the account's objectSid".into()),
            );
            return None;
        }
        None => {
            lines.push(
                format!("service account {}: no objectSid returned", user.dn),
                Verdict::Fail("the service account must be able to read its own objectSid and tokenGroups (the default)".into()),
            );
            return None;
        }
    };
    let groups: Vec<Sid> = details
        .values("tokenGroups")
        .iter()
        .filter_map(|b| Sid::from_bytes(b).ok())
        .collect();
    let mut sids = vec![own.clone()];
    for g in groups
        .iter()
        .cloned()
        .chain([Sid::everyone(), Sid::authenticated_users()])
    {
        if !sids.contains(&g) {
            sids.push(g);
        }
    }
    let names = group_names(session, domain_dn, &groups).await;
    let groups_note = if details.values("tokenGroups").is_empty() {
        "no tokenGroups returned: only grants to the account itself, Everyone and Authenticated Users count".to_string()
    } else {
        format!("{} group(s) from tokenGroups", groups.len())
    };
    lines.push(
        format!("service account {} ({own}; {groups_note})", user.dn),
        Verdict::Pass,
    );
    Some(Account { sids, own, names })
}

/// Best-effort names of group SIDs (their `cn`), for messages.
async fn group_names(session: &mut Session, domain_dn: &str, sids: &[Sid]) -> Vec<(Sid, String)> {
    if sids.is_empty() {
        return Vec::new();
    }
    let filter: String = sids
        .iter()
        .map(|s| format!("(objectSid={})", filter_escape_bytes(&s.to_bytes())))
        .collect();
    let Ok(found) = session
        .search(
            domain_dn,
            Scope::Subtree,
            &format!("(|{filter})"),
            &["cn", "objectSid"],
            false,
        )
        .await
    else {
        return Vec::new();
    };
    found
        .entries
        .iter()
        .filter_map(|e| {
            let sid = Sid::from_bytes(e.values("objectSid").first()?).ok()?;
            Some((sid, e.first_str("cn")?))
        })
        .collect()
}

/// Enroll and ESC4 lines of the template.
fn template_rights(lines: &mut Lines, account: &Account, name: &str, dacl: &Dacl) {
    let fix_enroll = format!(
        "in certtmpl.msc open {name:?} → Security and allow Enroll (not Autoenroll) for the service account or a group it belongs to"
    );
    match sd::enroll(dacl, &account.sids) {
        Decision::Granted(by) => lines.push(
            format!(
                "service account may enroll on template {name:?} (Enroll granted to {})",
                account.describe(&by)
            ),
            Verdict::Pass,
        ),
        Decision::Denied(by) => lines.push(
            format!(
                "service account is denied Enroll on template {name:?} (denied for {})",
                account.describe(&Some(by))
            ),
            Verdict::Fail(format!("{fix_enroll}, and remove the Deny entry")),
        ),
        Decision::NotGranted => lines.push(
            format!("service account has no Enroll permission on template {name:?}"),
            Verdict::Fail(fix_enroll),
        ),
    }
    let writes = sd::write_rights(dacl, &account.sids);
    if writes.is_empty() {
        lines.push(
            format!("service account cannot modify template {name:?} (no WriteDacl, WriteOwner or WriteProperty: not ESC4)"),
            Verdict::Pass,
        );
    } else {
        let list = writes
            .iter()
            .map(|(right, by)| format!("{right} via {}", account.describe(by)))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(
            format!("service account can modify template {name:?}: {list} — ESC4: whoever holds its password can turn the template into ESC1 (docs/security-model.md)"),
            Verdict::Fail(format!(
                "in certtmpl.msc open {name:?} → Security and remove Full Control, Write and Modify permissions/owner for the service account and its groups; leave Read and Enroll"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(domain: &str, username: &str, bind: Option<&str>) -> AdcsTarget {
        AdcsTarget {
            host: "ca01".into(),
            ca: "Corp CA".into(),
            ca_name: "ca01\\Corp CA".into(),
            template: "WebServer".into(),
            method: crate::AuthMethod::Ntlm,
            domain: domain.into(),
            username: username.into(),
            password: "pw".into(),
            realm: None,
            keytab: None,
            kdc: None,
            spn: None,
            port: None,
            endpoint_mapper_port: 135,
            auth_level: crate::AuthLevel::Privacy,
            default_timeout: Duration::from_secs(240),
            request_timeout: Duration::from_secs(30),
            ca_chain: Vec::new(),
            disable_ca_revocation: false,
            transport: Default::default(),
            ldap: Some(LdapTarget {
                url: "ldaps://dc01".into(),
                start_tls: false,
                ca_certs: Vec::new(),
                ca_file: None,
                configuration_dn: None,
                bind_name: bind.map(str::to_string),
                bind: crate::LdapBind::Simple,
                spn: None,
                timeout: Duration::from_secs(10),
            }),
        }
    }

    #[test]
    fn bind_name_forms() {
        assert_eq!(
            bind_name(&settings("corp.example", "svc", None)),
            "svc@corp.example"
        );
        assert_eq!(bind_name(&settings("CORP", "svc", None)), "CORP\\svc");
        assert_eq!(
            bind_name(&settings("CORP", "svc@corp.example", None)),
            "svc@corp.example"
        );
        assert_eq!(
            bind_name(&settings("CORP", "OTHER\\svc", None)),
            "OTHER\\svc"
        );
        assert_eq!(bind_name(&settings("", "svc", None)), "svc");
        assert_eq!(
            bind_name(&settings(
                "CORP",
                "svc",
                Some("CN=svc,CN=Users,DC=corp,DC=example")
            )),
            "CN=svc,CN=Users,DC=corp,DC=example"
        );
    }

    #[test]
    fn sam_account_name_strips_domain_parts() {
        assert_eq!(sam_account_name("svc"), "svc");
        assert_eq!(sam_account_name("CORP\\svc"), "svc");
        assert_eq!(sam_account_name("svc@corp.example"), "svc");
    }

    #[test]
    fn ad_bind_diagnostics_are_explained() {
        let text = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563";
        assert_eq!(ad_bind_reason(text), Some("wrong password"));
        assert_eq!(
            ad_bind_reason("... data 775, v4563"),
            Some("account locked out")
        );
        assert_eq!(ad_bind_reason("data 999,"), None);
        assert_eq!(ad_bind_reason(""), None);
        assert_eq!(rc_name(49), "invalidCredentials (49)");
        assert_eq!(rc_name(4711), "result code 4711");
    }

    #[test]
    fn well_known_containers_and_domain_fallback() {
        let cfg = "CN=Configuration,DC=corp,DC=example";
        assert_eq!(
            templates_container(cfg),
            "CN=Certificate Templates,CN=Public Key Services,CN=Services,CN=Configuration,DC=corp,DC=example"
        );
        assert_eq!(
            enrollment_services_container(cfg),
            "CN=Enrollment Services,CN=Public Key Services,CN=Services,CN=Configuration,DC=corp,DC=example"
        );
        assert_eq!(
            domain_of_configuration(cfg).as_deref(),
            Some("DC=corp,DC=example")
        );
        assert_eq!(domain_of_configuration("DC=corp,DC=example"), None);
    }

    #[test]
    fn sd_flags_control_value_is_sequence_of_integer_4() {
        assert_eq!(SD_FLAGS_DACL, [0x30, 0x03, 0x02, 0x01, 0x04]);
    }

    #[tokio::test]
    async fn without_ldap_section_one_skipped_line() {
        let mut s = settings("CORP", "svc", None);
        s.ldap = None;
        let expect = Expectations {
            max_validity: Duration::from_secs(398 * 86400),
            default_timeout: Duration::from_secs(240),
            keys: None,
            extra_ekus: Vec::new(),
        };
        let lines = check_ldap("corp", &s, &expect).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].verdict, Verdict::Skipped);
        assert!(
            lines[0].what.starts_with("template publication"),
            "{}",
            lines[0].what
        );
    }

    #[tokio::test]
    async fn unreachable_server_fails_the_first_line_and_skips_the_rest() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let mut s = settings("CORP", "svc", None);
        if let Some(l) = s.ldap.as_mut() {
            l.url = format!("ldaps://127.0.0.1:{port}");
            l.ca_certs = vec![rcgen::CertificateParams::new(vec!["x.test".to_string()])
                .and_then(|p| p.self_signed(&rcgen::KeyPair::generate()?))
                .expect("cert")
                .der()
                .to_vec()];
        }
        let expect = Expectations {
            max_validity: Duration::from_secs(398 * 86400),
            default_timeout: Duration::from_secs(240),
            keys: None,
            extra_ekus: Vec::new(),
        };
        let lines = check_ldap("corp", &s, &expect).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].what.contains("cannot connect"),
            "{}",
            lines[0].what
        );
        assert!(matches!(&lines[0].verdict, Verdict::Fail(f) if f.contains("firewall")));
        assert_eq!(lines[1].verdict, Verdict::Skipped);
    }
}
