//! The wizard's questions as plain functions: the default of each answer
//! (which may depend on earlier ones), the check of each answer (which
//! normalises it or says what is wrong), and the order they are asked in.
//! No terminal I/O here: [`super::Prompter`] asks, this module decides.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// One question of the wizard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// Stable identifier, used in `--script` error messages and docs.
    pub key: &'static str,
    /// Text shown at the prompt.
    pub prompt: &'static str,
}

macro_rules! questions {
    ($($name:ident = $key:literal, $prompt:literal;)*) => {
        $(
            #[doc = concat!("`", $key, "`: ", $prompt)]
            pub const $name: Question = Question { key: $key, prompt: $prompt };
        )*
    };
}

questions! {
    LISTEN = "listen", "Listen address (ip:port)";
    URL = "url", "Public URL of the server (https://host[:port])";
    WORKDIR = "workdir", "Working directory (absolute, or %CONFIGDIR%/…)";
    DATABASE = "database", "SQLite database file (absolute, or %WORKDIR%/…)";
    AUTHORITY = "authority", "Certificate authority (builtin/adcs)";
    CA_COMMON_NAME = "ca-common-name", "Built-in CA common name";
    CA_KEY_TYPE = "ca-key-type", "Built-in CA key type (ecdsa-p256/ecdsa-p384/rsa)";
    CA_PASSWORD = "ca-password", "Password encrypting the CA keys (empty: generate one)";
    ADCS_CA_NAME = "adcs-ca-name", "ADCS CA name (HOST\\CA Common Name, as certutil prints it)";
    ADCS_TEMPLATE = "adcs-template", "ADCS certificate template";
    ADCS_METHOD = "adcs-auth-method", "ADCS authentication (ntlm/negotiate/kerberos)";
    ADCS_DOMAIN = "adcs-domain", "Service account's domain (NetBIOS or DNS)";
    ADCS_REALM = "adcs-realm", "Kerberos realm (the AD DNS domain in upper case)";
    ADCS_USERNAME = "adcs-username", "Service account's user name";
    ADCS_KEYTAB = "adcs-keytab", "Keytab of the service account (absolute path; empty: use a password)";
    ADCS_PASSWORD = "adcs-password", "Service account's password";
    ADCS_EPM_PORT = "adcs-endpoint-mapper-port", "CA's RPC endpoint mapper port";
    ZONES = "zones", "DNS zones certificates may be issued in (comma-separated)";
    DEPTH = "depth", "Labels allowed in front of a zone (1-10)";
    WILDCARDS = "wildcards", "Allow wildcard certificates (yes/no)";
    ALLOW_CIDRS = "allow-cidrs", "Networks the server may connect to for http-01/tls-alpn-01 (comma-separated CIDRs)";
    TLS_MODE = "tls-mode", "HTTPS certificate of the listener: pki (issued by the authority), acme (from an external ACME CA) or files";
    TLS_ACME_DIRECTORY = "tls-acme-directory", "Directory URL of the external ACME CA (https://…)";
    TLS_ACME_CONTACT = "tls-acme-contact", "Contact e-mail for the account at that CA (empty: none)";
    TLS_ACME_CA_ROOT = "tls-acme-ca-root", "CA certificates (PEM file) to trust for that CA's HTTPS (empty: the system's)";
    TLS_CERT_FILE = "tls-cert-file", "Listener certificate chain (PEM, absolute path)";
    TLS_KEY_FILE = "tls-key-file", "Listener private key (PEM, absolute path)";
    ADCS_CHECK = "adcs-check", "Run `certeasy adcs check` now (yes/no)";
}

/// Result of checking one answer: the normalised answer, or why it is wrong.
pub type Checked = Result<String, String>;

/// `listen`: an `ip:port` socket address.
pub fn check_listen(s: &str) -> Checked {
    let s = s.trim();
    let addr: SocketAddr = s.parse().map_err(|_| {
        format!("{s:?} is not ip:port, e.g. 0.0.0.0:8443, 127.0.0.1:8443 or [::]:8443")
    })?;
    if addr.port() == 0 {
        return Err("port 0 is not allowed: clients need a fixed port".into());
    }
    Ok(addr.to_string())
}

/// Default of `url`: `https://HOST[:port]`, HOST being `localhost` for a
/// loopback listener and this machine's name otherwise.
pub fn default_url(listen: &str, hostname: &str) -> String {
    let Ok(addr) = listen.parse::<SocketAddr>() else {
        return "https://localhost:8443".into();
    };
    let host = if addr.ip().is_loopback() || hostname.is_empty() {
        "localhost"
    } else {
        hostname
    };
    if addr.port() == 443 {
        format!("https://{host}")
    } else {
        format!("https://{host}:{}", addr.port())
    }
}

/// `url`: an `https://` URL without query or fragment.
pub fn check_url(s: &str) -> Checked {
    let s = s.trim();
    let u = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!(
            "{s:?} must start with https:// (ACME requires HTTPS)"
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host name"));
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(format!(
            "{s:?} must be a base URL, without user, query or fragment"
        ));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// Default of `workdir`: `/var/lib/certeasy` for a configuration in
/// `/etc/certeasy`, a directory beside the configuration otherwise.
pub fn default_workdir(config_dir: &Path) -> String {
    if config_dir == Path::new("/etc/certeasy") {
        "/var/lib/certeasy".into()
    } else {
        "%CONFIGDIR%/certeasy-workdir".into()
    }
}

/// `workdir`: absolute, or starting with `%CONFIGDIR%`.
pub fn check_workdir(s: &str) -> Checked {
    let s = s.trim();
    if s.starts_with("%CONFIGDIR%") || Path::new(s).is_absolute() {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is relative: write an absolute path or start it with %CONFIGDIR%"
        ))
    }
}

/// Default of `database`.
pub const DEFAULT_DATABASE: &str = "%WORKDIR%/db.sqlite";

/// `database`: absolute, or starting with `%WORKDIR%`, naming a file.
pub fn check_database(s: &str) -> Checked {
    let s = s.trim();
    if !(s.starts_with("%WORKDIR%") || Path::new(s).is_absolute()) {
        return Err(format!(
            "{s:?} is relative: write an absolute path or start it with %WORKDIR%"
        ));
    }
    if s.ends_with('/') || s == "%WORKDIR%" {
        return Err(format!("{s:?} is a directory: name the database file"));
    }
    Ok(s.to_string())
}

/// `authority`, `adcs-auth-method`, `ca-key-type`, `tls-mode`: one of `choices`.
pub fn check_choice(s: &str, choices: &[&str]) -> Checked {
    let v = s.trim().to_ascii_lowercase();
    if choices.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!(
            "{:?}: answer one of {}",
            s.trim(),
            choices.join(", ")
        ))
    }
}

/// Choices of `authority`.
pub const AUTHORITIES: &[&str] = &["builtin", "adcs"];
/// Choices of `ca-key-type`.
pub const KEY_TYPES: &[&str] = &["ecdsa-p256", "ecdsa-p384", "rsa"];
/// Choices of `adcs-auth-method` (the KDC of kerberos and negotiate is
/// found by DNS SRV from the realm).
pub const ADCS_METHODS: &[&str] = &["ntlm", "negotiate", "kerberos"];

/// Default of `adcs-realm`: the domain in upper case when it is a DNS
/// name, else the DNS domain of the CA host (`ca01.corp.example\CA` →
/// `CORP.EXAMPLE`), else nothing.
pub fn default_realm(domain: &str, ca_name: &str) -> String {
    let domain = domain.trim();
    if domain.contains('.') {
        return domain.to_ascii_uppercase();
    }
    let host = ca_name.split('\\').next().unwrap_or("");
    if host.parse::<IpAddr>().is_ok() {
        return String::new();
    }
    match host.split_once('.') {
        Some((_, d)) if !d.is_empty() => d.to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// `adcs-realm`: a DNS-like name, upper-cased; required for kerberos,
/// optional for negotiate (without one it cannot discover the KDC).
pub fn check_realm(s: &str, required: bool) -> Checked {
    let s = s.trim();
    if s.is_empty() {
        return if required {
            Err("a realm is required for kerberos, e.g. CORP.EXAMPLE".into())
        } else {
            Ok(String::new())
        };
    }
    let valid = s
        .split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if valid {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(format!("{s:?} is not a realm name, e.g. CORP.EXAMPLE"))
    }
}
/// Choices of `tls-mode`.
pub const TLS_MODES: &[&str] = &["pki", "acme", "files"];

/// A yes/no answer.
pub fn check_yes_no(s: &str) -> Checked {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok("yes".into()),
        "n" | "no" => Ok("no".into()),
        other => Err(format!("{other:?}: answer yes or no")),
    }
}

/// A non-empty single-line text (common name, template, user name).
pub fn check_text(s: &str) -> Checked {
    let s = s.trim();
    if s.is_empty() {
        Err("an answer is required".into())
    } else if s.chars().any(char::is_control) {
        Err("control characters are not allowed".into())
    } else {
        Ok(s.to_string())
    }
}

/// `adcs-domain`: may be empty (a UPN user name carries it).
pub fn check_optional_text(s: &str) -> Checked {
    let s = s.trim();
    if s.chars().any(char::is_control) {
        Err("control characters are not allowed".into())
    } else {
        Ok(s.to_string())
    }
}

/// `adcs-ca-name`: `HOST\CA Common Name`.
pub fn check_adcs_ca_name(s: &str) -> Checked {
    let s = s.trim();
    match s.split_once('\\') {
        Some((h, c)) if !h.trim().is_empty() && !c.trim().is_empty() => check_text(s),
        _ => Err(format!(
            "{s:?} must be HOST\\CA Common Name, e.g. ca01.corp.example\\Corp Issuing CA (certutil -config - -ping prints it)"
        )),
    }
}

/// A TCP port, 1-65535.
pub fn check_port(s: &str) -> Checked {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p.to_string()),
        _ => Err(format!("{:?} is not a port (1-65535)", s.trim())),
    }
}

/// Default of `zones`: the parent domain of the URL's host (`ca.corp.example`
/// gives `corp.example`), or the host itself when it has fewer than three
/// labels.
pub fn default_zones(url: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        return "localhost".into();
    }
    match host.split_once('.') {
        Some((_, parent)) if parent.contains('.') => parent.to_string(),
        _ => host,
    }
}

/// One DNS name: LDH labels of 1-63 characters, at most 253 in all.
fn check_dns_name(raw: &str) -> Checked {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err("an empty zone name".into());
    }
    if name.starts_with('*') {
        return Err(format!(
            "{raw:?}: write the zone without `*.`; wildcards are the next questions"
        ));
    }
    if name.len() > 253 {
        return Err(format!("{raw:?} is longer than 253 characters"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!(
                "{raw:?} is not a DNS name (letters, digits and inner hyphens, dot-separated)"
            ));
        }
    }
    Ok(name)
}

/// Splits a comma- (or space-) separated list.
fn split_list(s: &str) -> Vec<&str> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

/// `zones`: DNS names, comma-separated; normalised to `a, b`.
pub fn check_zones(s: &str) -> Checked {
    let items = split_list(s);
    if items.is_empty() {
        return Err("name at least one zone, e.g. corp.example".into());
    }
    let mut out: Vec<String> = Vec::new();
    for z in items {
        let n = check_dns_name(z)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out.join(", "))
}

/// Parses a normalised `zones` answer.
pub fn zone_list(s: &str) -> Vec<String> {
    split_list(s).into_iter().map(str::to_string).collect()
}

/// Default of `depth`.
pub const DEFAULT_DEPTH: &str = "3";

/// `depth`: 1-10 labels.
pub fn check_depth(s: &str) -> Checked {
    match s.trim().parse::<u8>() {
        Ok(d @ 1..=10) => Ok(d.to_string()),
        _ => Err(format!("{:?}: answer a number from 1 to 10", s.trim())),
    }
}

/// Default of `allow-cidrs`: loopback for a loopback listener (a trial on
/// one machine), the private ranges otherwise.
pub fn default_allow_cidrs(listen: &str) -> String {
    let loopback = listen
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if loopback {
        "127.0.0.0/8, ::1/128".into()
    } else {
        "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7".into()
    }
}

/// `allow-cidrs`: CIDRs or single addresses, comma-separated.
pub fn check_cidrs(s: &str) -> Checked {
    let items = split_list(s);
    if items.is_empty() {
        return Err("name at least one network, e.g. 10.0.0.0/8".into());
    }
    let mut out = Vec::new();
    for c in items {
        let ok = c.parse::<ipnet::IpNet>().is_ok() || c.parse::<IpAddr>().is_ok();
        if !ok {
            return Err(format!(
                "{c:?} is not a CIDR or an IP address, e.g. 10.0.0.0/8"
            ));
        }
        out.push(c.to_string());
    }
    Ok(out.join(", "))
}

/// `tls-cert-file`, `tls-key-file`: an absolute path (or `%WORKDIR%/…`).
/// The file need not exist yet; the listener loads it at startup.
pub fn check_file_path(s: &str) -> Checked {
    let s = s.trim();
    if s.is_empty() {
        return Err("a path is required".into());
    }
    if s.starts_with("%WORKDIR%") || Path::new(s).is_absolute() {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is relative: write an absolute path or start it with %WORKDIR%"
        ))
    }
}

/// `tls-acme-contact`: empty, or an e-mail address (written as `mailto:`).
pub fn check_optional_email(s: &str) -> Checked {
    let s = s.trim().trim_start_matches("mailto:");
    if s.is_empty() {
        return Ok(String::new());
    }
    let valid = s.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',');
    if valid {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an e-mail address, e.g. pki-team@corp.example"
        ))
    }
}

/// `tls-acme-ca-root`: empty (the system's CAs), or a path as for
/// [`check_file_path`].
pub fn check_optional_file_path(s: &str) -> Checked {
    if s.trim().is_empty() {
        Ok(String::new())
    } else {
        check_file_path(s)
    }
}

/// A password typed for the ADCS account: required, one line.
pub fn check_password(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("a password is required".into())
    } else if s.contains(['\n', '\r']) {
        Err("a password cannot contain a line break".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_parsed_and_bad_ones_explained() {
        assert_eq!(check_listen(" 0.0.0.0:8443 ").unwrap(), "0.0.0.0:8443");
        assert_eq!(check_listen("[::]:443").unwrap(), "[::]:443");
        let e = check_listen("localhost:8443").unwrap_err();
        assert!(e.contains("not ip:port"), "{e}");
        assert!(check_listen("0.0.0.0").is_err());
        assert!(check_listen("0.0.0.0:0").unwrap_err().contains("port 0"));
    }

    #[test]
    fn the_default_url_follows_the_listener() {
        assert_eq!(
            default_url("127.0.0.1:8443", "srv"),
            "https://localhost:8443"
        );
        assert_eq!(
            default_url("0.0.0.0:443", "ca.corp.example"),
            "https://ca.corp.example"
        );
        assert_eq!(default_url("0.0.0.0:8443", "ca"), "https://ca:8443");
    }

    #[test]
    fn urls_must_be_https_base_urls() {
        assert_eq!(
            check_url("https://ca.example/").unwrap(),
            "https://ca.example"
        );
        assert!(check_url("http://ca.example")
            .unwrap_err()
            .contains("https://"));
        assert!(check_url("https://ca.example/?x=1").is_err());
        assert!(check_url("ca.example").is_err());
    }

    #[test]
    fn paths_must_be_anchored() {
        assert!(check_workdir("/var/lib/certeasy").is_ok());
        assert!(check_workdir("%CONFIGDIR%/w").is_ok());
        assert!(check_workdir("w").unwrap_err().contains("relative"));
        assert_eq!(
            default_workdir(Path::new("/etc/certeasy")),
            "/var/lib/certeasy"
        );
        assert!(check_database("%WORKDIR%/db.sqlite").is_ok());
        assert!(check_database("db.sqlite").is_err());
        assert!(check_database("/var/lib/")
            .unwrap_err()
            .contains("directory"));
        assert!(check_file_path("cert.pem").is_err());
    }

    #[test]
    fn choices_and_yes_no() {
        assert_eq!(check_choice(" ADCS ", AUTHORITIES).unwrap(), "adcs");
        let e = check_choice("vault", AUTHORITIES).unwrap_err();
        assert!(e.contains("builtin, adcs"), "{e}");
        assert_eq!(check_yes_no("Y").unwrap(), "yes");
        assert!(check_yes_no("maybe").is_err());
    }

    #[test]
    fn adcs_fields() {
        assert!(check_adcs_ca_name("ca01\\Corp CA").is_ok());
        assert!(check_adcs_ca_name("Corp CA")
            .unwrap_err()
            .contains("HOST\\CA"));
        assert!(check_port("0").is_err());
        assert_eq!(check_port("10135").unwrap(), "10135");
        assert!(check_password("").is_err());
    }

    #[test]
    fn zones_are_dns_names_and_default_to_the_urls_parent_domain() {
        assert_eq!(
            default_zones("https://ca.corp.example:8443"),
            "corp.example"
        );
        assert_eq!(default_zones("https://localhost:8443"), "localhost");
        assert_eq!(default_zones("https://corp.example"), "corp.example");
        assert_eq!(
            check_zones("Corp.Example., lab.test corp.example").unwrap(),
            "corp.example, lab.test"
        );
        assert!(check_zones("*.corp.example")
            .unwrap_err()
            .contains("wildcards"));
        assert!(check_zones("bad_name.example").is_err());
        assert!(check_zones(" , ").is_err());
        assert_eq!(zone_list("a.b, c"), vec!["a.b", "c"]);
        assert!(check_depth("0").is_err());
        assert!(check_depth("11").is_err());
        assert_eq!(check_depth(" 2 ").unwrap(), "2");
    }

    #[test]
    fn cidrs() {
        assert_eq!(
            default_allow_cidrs("127.0.0.1:8443"),
            "127.0.0.0/8, ::1/128"
        );
        assert!(default_allow_cidrs("0.0.0.0:8443").contains("10.0.0.0/8"));
        assert_eq!(
            check_cidrs("10.0.0.0/8,192.0.2.1").unwrap(),
            "10.0.0.0/8, 192.0.2.1"
        );
        assert!(check_cidrs("10.0.0.0/33").is_err());
    }
}
