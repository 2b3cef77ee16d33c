//! A certificate template (`pKICertificateTemplate`) read from Active
//! Directory, and the verdicts about it that need no I/O: subject source,
//! EKUs, issuance requirements, keys and validity (MS-CRTD attributes).

use std::time::Duration;

use pki::EcCurve;

use super::entry::Entry;
use super::Verdict;

/// CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT (`msPKI-Certificate-Name-Flag`).
pub const CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT: u32 = 0x0000_0001;
/// CT_FLAG_PEND_ALL_REQUESTS (`msPKI-Enrollment-Flag`).
pub const CT_FLAG_PEND_ALL_REQUESTS: u32 = 0x0000_0002;

/// serverAuth.
pub const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";

/// EKUs that make a template with an enrollee-supplied subject an
/// escalation path: OID, name, ESC class.
const DANGEROUS_EKUS: [(&str, &str, &str); 5] = [
    ("2.5.29.37.0", "Any Purpose", "ESC2"),
    ("1.3.6.1.5.5.7.3.2", "Client Authentication", "ESC1"),
    ("1.3.6.1.4.1.311.20.2.2", "Smart Card Logon", "ESC1"),
    ("1.3.6.1.5.2.3.4", "PKINIT Client Authentication", "ESC1"),
    (
        "1.3.6.1.4.1.311.20.2.1",
        "Certificate Request Agent",
        "ESC3",
    ),
];

/// The attributes `adcs check` reads from a template.
pub const ATTRIBUTES: [&str; 12] = [
    "cn",
    "displayName",
    "msPKI-Template-Schema-Version",
    "msPKI-Certificate-Name-Flag",
    "msPKI-Enrollment-Flag",
    "msPKI-RA-Signature",
    "msPKI-Minimal-Key-Size",
    "pKIExtendedKeyUsage",
    "msPKI-Certificate-Application-Policy",
    "msPKI-RA-Application-Policies",
    "pKIExpirationPeriod",
    "nTSecurityDescriptor",
];

/// A certificate template as `adcs check` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Template name (`cn`), what `certificate-template` must hold.
    pub name: String,
    /// Display name shown by certtmpl.msc.
    pub display_name: Option<String>,
    /// `msPKI-Template-Schema-Version` (1 when absent).
    pub schema_version: u32,
    /// `msPKI-Certificate-Name-Flag`.
    pub name_flag: u32,
    /// `msPKI-Enrollment-Flag`.
    pub enrollment_flag: u32,
    /// `msPKI-RA-Signature`: authorized signatures required.
    pub ra_signatures: u32,
    /// `msPKI-Minimal-Key-Size` (0 when absent).
    pub min_key_size: u32,
    /// `pKIExtendedKeyUsage`.
    pub ekus: Vec<String>,
    /// `msPKI-Certificate-Application-Policy`.
    pub application_policies: Vec<String>,
    /// `msPKI-RA-Application-Policies`.
    pub ra_application_policies: Vec<String>,
    /// `pKIExpirationPeriod`, decoded; None when absent.
    pub validity: Option<Result<Duration, String>>,
}

/// Reads a 32-bit flag or count that AD may return as a negative number.
fn as_u32(v: i64) -> Option<u32> {
    u32::try_from(v)
        .ok()
        .or_else(|| i32::try_from(v).ok().map(|x| x as u32))
}

fn int_attr(e: &Entry, name: &str, default: u32) -> Result<u32, String> {
    match e.first_int(name)? {
        None => Ok(default),
        Some(v) => as_u32(v).ok_or_else(|| format!("{name} is {v}, outside 32 bits")),
    }
}

/// Decodes `pKIExpirationPeriod`: a negative count of 100-ns intervals,
/// 8 bytes little-endian.
pub fn decode_period(b: &[u8]) -> Result<Duration, String> {
    let raw: [u8; 8] = b
        .try_into()
        .map_err(|_| format!("pKIExpirationPeriod has {} bytes, expected 8", b.len()))?;
    let v = i64::from_le_bytes(raw);
    if v >= 0 {
        return Err(format!(
            "pKIExpirationPeriod is {v}, expected a negative interval"
        ));
    }
    let ticks = v.unsigned_abs();
    Ok(Duration::new(
        ticks / 10_000_000,
        ((ticks % 10_000_000) * 100) as u32,
    ))
}

/// Formats a lifetime in days when whole, as the configuration writes it.
pub fn days(d: Duration) -> String {
    if d.as_secs() % 86400 == 0 && d.subsec_nanos() == 0 && d.as_secs() > 0 {
        format!("{}d", d.as_secs() / 86400)
    } else {
        format_duration(d)
    }
}

/// A duration as the configuration writes it (`12h`, `90m`, `30s`, `250ms`).
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Template {
    /// Builds the template from its entry; an error names the attribute
    /// that is malformed.
    pub fn from_entry(e: &Entry, fallback_name: &str) -> Result<Template, String> {
        Ok(Template {
            name: e
                .first_str("cn")
                .unwrap_or_else(|| fallback_name.to_string()),
            display_name: e.first_str("displayName"),
            schema_version: int_attr(e, "msPKI-Template-Schema-Version", 1)?,
            name_flag: int_attr(e, "msPKI-Certificate-Name-Flag", 0)?,
            enrollment_flag: int_attr(e, "msPKI-Enrollment-Flag", 0)?,
            ra_signatures: int_attr(e, "msPKI-RA-Signature", 0)?,
            min_key_size: int_attr(e, "msPKI-Minimal-Key-Size", 0)?,
            ekus: e.strings("pKIExtendedKeyUsage"),
            application_policies: e.strings("msPKI-Certificate-Application-Policy"),
            ra_application_policies: e.strings("msPKI-RA-Application-Policies"),
            validity: e
                .values("pKIExpirationPeriod")
                .first()
                .map(|b| decode_period(b)),
        })
    }

    /// The EKUs the CA puts in certificates: `pKIExtendedKeyUsage`, plus the
    /// application policies of schema v2+ templates, without duplicates.
    pub fn effective_ekus(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let extra = if self.schema_version >= 2 {
            self.application_policies.as_slice()
        } else {
            &[]
        };
        for e in self.ekus.iter().chain(extra) {
            if !e.is_empty() && !out.contains(e) {
                out.push(e.clone());
            }
        }
        out
    }

    /// The key algorithm a schema v3+ template declares in
    /// `msPKI-RA-Application-Policies`
    /// (``msPKI-Asymmetric-Algorithm`PZPWSTR`ECDSA_P256`…``).
    pub fn declared_algorithm(&self) -> Option<String> {
        self.ra_application_policies.iter().find_map(|v| {
            let parts: Vec<&str> = v.split('`').collect();
            parts
                .chunks(3)
                .find(|c| c.len() == 3 && c[0].eq_ignore_ascii_case("msPKI-Asymmetric-Algorithm"))
                .map(|c| c[2].trim().to_string())
        })
    }
}

/// The keys a template accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateKeys {
    /// RSA of at least this many bits.
    Rsa(u32),
    /// ECDSA (or ECDH) keys on this curve.
    Ec(EcCurve),
    /// An algorithm certeasy does not know.
    Other(String),
}

impl Template {
    /// What keys the template accepts, and how that was determined.
    pub fn keys(&self) -> (TemplateKeys, String) {
        let v = self.schema_version;
        if v < 3 {
            return (
                TemplateKeys::Rsa(self.min_key_size),
                format!("schema v{v}: legacy CSP, RSA only"),
            );
        }
        match self.declared_algorithm() {
            None => (
                TemplateKeys::Rsa(self.min_key_size),
                format!("schema v{v}, no algorithm declared: RSA"),
            ),
            Some(alg) => {
                let curve = match alg.to_ascii_uppercase().as_str() {
                    "RSA" => None,
                    "ECDSA_P256" | "ECDH_P256" => Some(EcCurve::P256),
                    "ECDSA_P384" | "ECDH_P384" => Some(EcCurve::P384),
                    "ECDSA_P521" | "ECDH_P521" => Some(EcCurve::P521),
                    _ => {
                        return (
                            TemplateKeys::Other(alg.clone()),
                            format!("schema v{v}, algorithm {alg}"),
                        )
                    }
                };
                let keys = match curve {
                    None => TemplateKeys::Rsa(self.min_key_size),
                    Some(c) => TemplateKeys::Ec(c),
                };
                (keys, format!("schema v{v}, algorithm {alg}"))
            }
        }
    }
}

/// What the caller's configuration expects from the template (certeasy
/// builds it from the authority and the issuance policies bound to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The authority's `max-validity`.
    pub max_validity: Duration,
    /// The authority's `default-timeout` (how long a pending request waits).
    pub default_timeout: Duration,
    /// Keys the issuance policies bound to the authority accept; None when
    /// no policy is bound to it.
    pub keys: Option<AcceptedKeys>,
    /// EKU OIDs the bound policies allow besides serverAuth.
    pub extra_ekus: Vec<String>,
}

/// The CSR keys that the policies bound to an authority accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedKeys {
    /// Names of those policies.
    pub policies: Vec<String>,
    /// Smallest RSA modulus accepted, or None when no policy accepts RSA.
    pub rsa_min_bits: Option<u32>,
    /// EC curves accepted (P-256/P-384: the only ones the CSR model takes).
    pub ec_curves: Vec<EcCurve>,
}

impl AcceptedKeys {
    /// Merges the key policies of several issuance policies.
    pub fn from_policies<'a>(
        list: impl IntoIterator<Item = (&'a str, &'a pki::KeyPolicy)>,
    ) -> Option<AcceptedKeys> {
        use pki::SignatureAlgorithm as A;
        let mut out = AcceptedKeys {
            policies: Vec::new(),
            rsa_min_bits: None,
            ec_curves: Vec::new(),
        };
        for (name, k) in list {
            out.policies.push(name.to_string());
            if [A::RsaSha256, A::RsaSha384, A::RsaSha512]
                .into_iter()
                .any(|a| k.allows_algorithm(a))
            {
                let bits = k.min_rsa_bits.max(2048);
                out.rsa_min_bits = Some(out.rsa_min_bits.map_or(bits, |b| b.min(bits)));
            }
            if [A::EcdsaSha256, A::EcdsaSha384]
                .into_iter()
                .any(|a| k.allows_algorithm(a))
            {
                for c in &k.allowed_ec_curves {
                    if matches!(c, EcCurve::P256 | EcCurve::P384) && !out.ec_curves.contains(c) {
                        out.ec_curves.push(*c);
                    }
                }
            }
        }
        out.ec_curves.sort_by_key(|c| c.name());
        (!out.policies.is_empty()).then_some(out)
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.rsa_min_bits {
            parts.push(format!("RSA ≥ {b} bits"));
        }
        if !self.ec_curves.is_empty() {
            parts.push(format!("ECDSA {}", curves(&self.ec_curves)));
        }
        if parts.is_empty() {
            parts.push("no RSA or ECDSA key".into());
        }
        parts.join(", ")
    }
}

fn curves(c: &[EcCurve]) -> String {
    c.iter().map(|c| c.name()).collect::<Vec<_>>().join("/")
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Subject: the CA must take the subject (and SAN) from the request.
pub fn subject(t: &Template) -> (String, Verdict) {
    if t.name_flag & CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT != 0 {
        (
            format!("template {:?}: the subject is supplied in the request (CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT)", t.name),
            Verdict::Pass,
        )
    } else {
        (
            format!(
                "template {:?} builds the subject from the requester's AD object (msPKI-Certificate-Name-Flag {:#010x} lacks CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT): the CA would ignore the names of ACME orders",
                t.name, t.name_flag
            ),
            Verdict::Fail(format!(
                "in certtmpl.msc open {:?} → Subject Name and select \"Supply in the request\" (keep the EKU Server Authentication only, see docs/security-model.md)",
                t.name
            )),
        )
    }
}

fn eku_name(oid: &str) -> String {
    if oid == SERVER_AUTH {
        return "serverAuth".into();
    }
    DANGEROUS_EKUS
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map(|(_, n, _)| format!("{n} ({oid})"))
        .unwrap_or_else(|| oid.to_string())
}

/// EKUs: serverAuth, nothing that grants logon or enrollment powers, and
/// nothing certeasy would refuse in the issued certificate.
pub fn ekus(t: &Template, extra_allowed: &[String]) -> (String, Verdict) {
    let ekus = t.effective_ekus();
    let fix = format!(
        "in certtmpl.msc open {:?} → Extensions → Application Policies and keep only Server Authentication (docs/security-model.md, ESC1–ESC3)",
        t.name
    );
    if ekus.is_empty() {
        return (
            format!("template {:?} has no EKU, so its certificates are valid for any purpose (ESC2 with an enrollee-supplied subject)", t.name),
            Verdict::Fail(fix),
        );
    }
    let mut problems = Vec::new();
    for oid in &ekus {
        if let Some((_, name, esc)) = DANGEROUS_EKUS.iter().find(|(o, _, _)| o == oid) {
            problems.push(format!(
                "{name} ({oid}): {esc} with an enrollee-supplied subject"
            ));
        } else if oid != SERVER_AUTH && !extra_allowed.contains(oid) {
            problems.push(format!(
                "{oid}: not allowed by the bound policies' csr.allowed-extra-eku, so certeasy refuses the issued certificate"
            ));
        }
    }
    if !ekus.iter().any(|e| e == SERVER_AUTH) {
        problems.push("Server Authentication (1.3.6.1.5.5.7.3.1) is missing".into());
    }
    let listed = ekus
        .iter()
        .map(|e| eku_name(e))
        .collect::<Vec<_>>()
        .join(", ");
    if problems.is_empty() {
        (
            format!("template {:?} EKU: {listed}", t.name),
            Verdict::Pass,
        )
    } else {
        (
            format!(
                "template {:?} EKU: {listed} — {}",
                t.name,
                problems.join("; ")
            ),
            Verdict::Fail(fix),
        )
    }
}

/// Issuance requirements: authorized signatures cannot be provided;
/// manager approval works (the order waits while the request is pending).
pub fn issuance(t: &Template, default_timeout: Duration) -> (String, Verdict) {
    if t.ra_signatures > 0 {
        return (
            format!(
                "template {:?} requires {} authorized signature(s) (msPKI-RA-Signature): certeasy cannot co-sign requests, so the CA would deny them",
                t.name, t.ra_signatures
            ),
            Verdict::Fail(format!(
                "in certtmpl.msc open {:?} → Issuance Requirements and set \"This number of authorized signatures\" to 0 (tick \"CA certificate manager approval\" instead if a person must approve)",
                t.name
            )),
        );
    }
    if t.enrollment_flag & CT_FLAG_PEND_ALL_REQUESTS != 0 {
        return (
            format!(
                "template {:?} requires CA certificate manager approval (CT_FLAG_PEND_ALL_REQUESTS): requests wait until an officer issues them (certsrv.msc → Pending Requests); ACME orders stay processing, at most default-timeout {}",
                t.name,
                days(default_timeout)
            ),
            Verdict::Pass,
        );
    }
    (
        format!(
            "template {:?} issues without manager approval or authorized signatures",
            t.name
        ),
        Verdict::Pass,
    )
}

/// Keys: every key a bound policy accepts must be one the template takes.
pub fn keys(t: &Template, accepted: Option<&AcceptedKeys>) -> (String, Verdict) {
    let Some(acc) = accepted else {
        return (
            format!("template {:?} key requirements not compared: no issuance policy is bound to this authority", t.name),
            Verdict::Skipped,
        );
    };
    let (tk, how) = t.keys();
    let template_desc = match &tk {
        TemplateKeys::Rsa(0) => format!("RSA keys ({how})"),
        TemplateKeys::Rsa(m) => format!("RSA ≥ {m} bits ({how})"),
        TemplateKeys::Ec(c) => format!("ECDSA {} ({how})", c.name()),
        TemplateKeys::Other(a) => format!("{a} keys ({how})"),
    };
    let policies = acc.policies.join(", ");
    let what = format!(
        "template {:?} takes {template_desc}; policies bound to this authority ({policies}) accept {}",
        t.name,
        acc.describe()
    );
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let rsa_only = "restrict signature.allowed-algorithms of those policies to RSA-SHA256, RSA-SHA384, RSA-SHA512";
    match &tk {
        TemplateKeys::Rsa(min) => {
            if let Some(bits) = acc.rsa_min_bits.filter(|b| b < min) {
                problems.push(format!(
                    "RSA keys of {bits}..{} bits would be denied (CERTSRV_E_KEY_LENGTH)",
                    min - 1
                ));
                fixes.push(format!(
                    "raise signature.min-rsa-bits to {min} or lower \"Minimum key size\" on the template's Cryptography tab"
                ));
            }
            if !acc.ec_curves.is_empty() {
                problems.push(format!(
                    "ECDSA {} keys would be denied",
                    curves(&acc.ec_curves)
                ));
                if t.schema_version < 3 {
                    fixes.push(format!(
                        "{rsa_only}, or for ECDSA duplicate the template in certtmpl.msc with compatibility Windows Server 2008 or later (schema v4), a Key Storage Provider and algorithm ECDSA_P256 or ECDSA_P384, used by its own authority and an ECDSA-only policy"
                    ));
                } else {
                    fixes.push(format!(
                        "{rsa_only}, or set the template's algorithm to ECDSA_P256/ECDSA_P384 (Cryptography tab) for an ECDSA-only policy"
                    ));
                }
            }
        }
        TemplateKeys::Ec(c) => {
            if acc.rsa_min_bits.is_some() {
                problems.push("RSA keys do not match the template's algorithm".into());
                fixes.push(
                    "restrict signature.allowed-algorithms of those policies to ECDSA-SHA256, ECDSA-SHA384 (or use an RSA template for RSA keys)"
                        .to_string(),
                );
            }
            let others: Vec<EcCurve> = acc.ec_curves.iter().copied().filter(|x| x != c).collect();
            if !others.is_empty() {
                problems.push(format!(
                    "ECDSA {} keys do not match the template's curve",
                    curves(&others)
                ));
                fixes.push(format!("set signature.allowed-ec-curves to [{}]", c.name()));
            }
            if !acc.ec_curves.contains(c) && acc.rsa_min_bits.is_none() && others.is_empty() {
                problems.push("no accepted key fits the template".into());
            }
        }
        TemplateKeys::Other(alg) => {
            problems.push(format!(
                "certeasy cannot produce requests for algorithm {alg}"
            ));
            fixes.push(
                "set the template's algorithm to RSA, ECDSA_P256 or ECDSA_P384 (Cryptography tab)"
                    .into(),
            );
        }
    }
    if problems.is_empty() {
        (what, Verdict::Pass)
    } else {
        (
            format!("{what} — {}", problems.join("; ")),
            Verdict::Fail(fixes.join("; ")),
        )
    }
}

/// Validity: a certificate living longer than `max-validity` is refused by
/// certeasy after the CA issued it.
pub fn validity(t: &Template, max_validity: Duration) -> (String, Verdict) {
    match &t.validity {
        None => (
            format!("template {:?} validity not compared: the template has no pKIExpirationPeriod", t.name),
            Verdict::Skipped,
        ),
        Some(Err(e)) => (
            format!("template {:?} validity unreadable: {e}", t.name),
            Verdict::Fail(format!(
                "open {:?} in certtmpl.msc, check the validity period on the General tab and save it again",
                t.name
            )),
        ),
        Some(Ok(d)) if *d <= max_validity => (
            format!(
                "template {:?} validity {} is within max-validity {}",
                t.name,
                days(*d),
                days(max_validity)
            ),
            Verdict::Pass,
        ),
        Some(Ok(d)) => (
            format!(
                "template {:?} issues certificates valid for {}, longer than max-validity {}: certeasy would refuse them after issuance",
                t.name,
                days(*d),
                days(max_validity)
            ),
            Verdict::Fail(format!(
                "in certtmpl.msc open {:?} → General and set the validity period to at most {} (or raise max-validity of this authority)",
                t.name,
                days(max_validity)
            )),
        ),
    }
}

/// Lists template names for a message.
pub fn names_list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        quoted_list(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Template {
        Template {
            name: "WebServer".into(),
            display_name: Some("Web Server".into()),
            schema_version: 2,
            name_flag: 1,
            enrollment_flag: 0,
            ra_signatures: 0,
            min_key_size: 2048,
            ekus: vec![SERVER_AUTH.into()],
            application_policies: vec![SERVER_AUTH.into()],
            ra_application_policies: vec![],
            validity: Some(Ok(Duration::from_secs(365 * 86400))),
        }
    }

    fn rsa_only(bits: u32) -> AcceptedKeys {
        AcceptedKeys {
            policies: vec!["web".into()],
            rsa_min_bits: Some(bits),
            ec_curves: vec![],
        }
    }

    fn fails(v: &Verdict) -> &str {
        match v {
            Verdict::Fail(fix) => fix,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn period_decodes_like_certtmpl_shows_it() {
        // 1 year, 5 years and 6 weeks as AD stores them.
        let year = [0x00, 0x40, 0x39, 0x87, 0x2e, 0xe1, 0xfe, 0xff];
        assert_eq!(decode_period(&year), Ok(Duration::from_secs(365 * 86400)));
        let five_years = [0x00, 0x40, 0x1e, 0xa4, 0xe8, 0x65, 0xfa, 0xff];
        assert_eq!(
            decode_period(&five_years),
            Ok(Duration::from_secs(1825 * 86400))
        );
        let six_weeks = [0x00, 0x80, 0xa6, 0x0a, 0xff, 0xde, 0xff, 0xff];
        assert_eq!(
            decode_period(&six_weeks),
            Ok(Duration::from_secs(42 * 86400))
        );
        assert!(decode_period(&year[..7]).unwrap_err().contains("7 bytes"));
        assert!(decode_period(&[0; 8]).unwrap_err().contains("negative"));
        assert_eq!(
            decode_period(&i64::MIN.to_le_bytes()).map(|d| d.as_secs() > 0),
            Ok(true)
        );
        assert_eq!(days(Duration::from_secs(398 * 86400)), "398d");
        assert_eq!(days(Duration::from_secs(240)), "4m");
    }

    #[test]
    fn template_is_read_from_its_entry() {
        let mut e = Entry::default();
        let mut put = |k: &str, v: &[&[u8]]| {
            e.attrs.insert(
                k.to_ascii_lowercase(),
                v.iter().map(|x| x.to_vec()).collect(),
            );
        };
        put("cn", &[b"WebServer"]);
        put("msPKI-Certificate-Name-Flag", &[b"-2113929216"]);
        put("msPKI-Template-Schema-Version", &[b"2"]);
        put("pKIExtendedKeyUsage", &[b"1.3.6.1.5.5.7.3.1"]);
        put(
            "msPKI-Certificate-Application-Policy",
            &[b"1.3.6.1.5.5.7.3.1", b"1.3.6.1.5.5.7.3.2"],
        );
        put(
            "pKIExpirationPeriod",
            &[&[0x00, 0x40, 0x39, 0x87, 0x2e, 0xe1, 0xfe, 0xff]],
        );
        let t = Template::from_entry(&e, "x").expect("template");
        assert_eq!(t.name, "WebServer");
        assert_eq!(t.name_flag, 0x8200_0000);
        assert_eq!(t.min_key_size, 0);
        assert_eq!(
            t.effective_ekus(),
            vec![SERVER_AUTH.to_string(), "1.3.6.1.5.5.7.3.2".to_string()]
        );
        assert_eq!(t.validity, Some(Ok(Duration::from_secs(365 * 86400))));
        e.attrs
            .insert("mspki-ra-signature".into(), vec![b"one".to_vec()]);
        assert!(Template::from_entry(&e, "x")
            .unwrap_err()
            .contains("msPKI-RA-Signature"));
        e.attrs
            .insert("mspki-ra-signature".into(), vec![b"8589934592".to_vec()]);
        assert!(Template::from_entry(&e, "x")
            .unwrap_err()
            .contains("outside 32 bits"));
    }

    #[test]
    fn v1_templates_ignore_application_policies() {
        let t = Template {
            schema_version: 1,
            application_policies: vec!["1.3.6.1.5.5.7.3.2".into()],
            ..good()
        };
        assert_eq!(t.effective_ekus(), vec![SERVER_AUTH.to_string()]);
    }

    #[test]
    fn subject_must_come_from_the_request() {
        assert_eq!(subject(&good()).1, Verdict::Pass);
        let t = Template {
            name_flag: 0x1800_0000,
            ..good()
        };
        let (what, v) = subject(&t);
        assert!(what.contains("0x18000000"), "{what}");
        assert!(fails(&v).contains("Supply in the request"));
    }

    #[test]
    fn ekus_are_judged() {
        let (what, v) = ekus(&good(), &[]);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(what, "template \"WebServer\" EKU: serverAuth");
        for (oid, esc) in [
            ("1.3.6.1.5.5.7.3.2", "ESC1"),
            ("1.3.6.1.4.1.311.20.2.2", "ESC1"),
            ("1.3.6.1.5.2.3.4", "ESC1"),
            ("2.5.29.37.0", "ESC2"),
            ("1.3.6.1.4.1.311.20.2.1", "ESC3"),
        ] {
            let t = Template {
                application_policies: vec![SERVER_AUTH.into(), oid.into()],
                ..good()
            };
            let (what, v) = ekus(&t, &[oid.to_string()]);
            assert!(what.contains(esc) && what.contains(oid), "{what}");
            assert!(fails(&v).contains("Server Authentication"));
        }
        let empty = Template {
            ekus: vec![],
            application_policies: vec![],
            ..good()
        };
        let (what, v) = ekus(&empty, &[]);
        assert!(
            what.contains("any purpose") && what.contains("ESC2"),
            "{what}"
        );
        assert!(matches!(v, Verdict::Fail(_)));
        let no_server = Template {
            ekus: vec!["1.3.6.1.5.5.7.3.17".into()],
            application_policies: vec![],
            ..good()
        };
        let (what, _) = ekus(&no_server, &["1.3.6.1.5.5.7.3.17".into()]);
        assert!(
            what.contains("Server Authentication (1.3.6.1.5.5.7.3.1) is missing"),
            "{what}"
        );
        let code_signing = Template {
            application_policies: vec![SERVER_AUTH.into(), "1.3.6.1.5.5.7.3.3".into()],
            ..good()
        };
        let (what, _) = ekus(&code_signing, &[]);
        assert!(
            what.contains("certeasy refuses the issued certificate"),
            "{what}"
        );
        let ike = Template {
            application_policies: vec![SERVER_AUTH.into(), "1.3.6.1.5.5.7.3.17".into()],
            ..good()
        };
        assert_eq!(ekus(&ike, &["1.3.6.1.5.5.7.3.17".into()]).1, Verdict::Pass);
    }

    #[test]
    fn issuance_requirements() {
        let d = Duration::from_secs(240);
        assert_eq!(issuance(&good(), d).1, Verdict::Pass);
        let ra = Template {
            ra_signatures: 1,
            ..good()
        };
        assert!(fails(&issuance(&ra, d).1).contains("authorized signatures\" to 0"));
        let pend = Template {
            enrollment_flag: 0x29 | CT_FLAG_PEND_ALL_REQUESTS,
            ..good()
        };
        let (what, v) = issuance(&pend, d);
        assert_eq!(v, Verdict::Pass);
        assert!(
            what.contains("manager approval") && what.contains("default-timeout 4m"),
            "{what}"
        );
    }

    #[test]
    fn declared_algorithm_is_read_from_ra_application_policies() {
        let t = Template {
            schema_version: 4,
            min_key_size: 256,
            ra_application_policies: vec!["msPKI-Asymmetric-Algorithm`PZPWSTR`ECDSA_P256`msPKI-Hash-Algorithm`PZPWSTR`SHA256`msPKI-Key-Usage`DWORD`16777215`msPKI-Symmetric-Algorithm`PZPWSTR`3DES`msPKI-Symmetric-Key-Length`DWORD`168`".into()],
            ..good()
        };
        assert_eq!(t.declared_algorithm().as_deref(), Some("ECDSA_P256"));
        assert_eq!(t.keys().0, TemplateKeys::Ec(EcCurve::P256));
        let v2 = Template {
            ra_application_policies: vec!["1.3.6.1.4.1.311.20.2.1".into()],
            ..good()
        };
        assert_eq!(v2.keys().0, TemplateKeys::Rsa(2048));
        let v4_rsa = Template {
            schema_version: 4,
            ra_application_policies: vec!["msPKI-Asymmetric-Algorithm`PZPWSTR`RSA`".into()],
            ..good()
        };
        assert_eq!(v4_rsa.keys().0, TemplateKeys::Rsa(2048));
    }

    #[test]
    fn keys_are_compared_with_the_policies() {
        assert_eq!(keys(&good(), Some(&rsa_only(3072))).1, Verdict::Pass);
        assert_eq!(keys(&good(), None).1, Verdict::Skipped);
        let (what, v) = keys(
            &Template {
                min_key_size: 4096,
                ..good()
            },
            Some(&rsa_only(3072)),
        );
        assert!(
            what.contains("RSA keys of 3072..4095 bits would be denied"),
            "{what}"
        );
        assert!(fails(&v).contains("min-rsa-bits to 4096"));
        let both = AcceptedKeys {
            ec_curves: vec![EcCurve::P256, EcCurve::P384],
            ..rsa_only(3072)
        };
        let (what, v) = keys(&good(), Some(&both));
        assert!(
            what.contains("ECDSA P-256/P-384 keys would be denied"),
            "{what}"
        );
        assert!(fails(&v).contains("schema v4"));
        let ec = Template {
            schema_version: 4,
            min_key_size: 256,
            ra_application_policies: vec!["msPKI-Asymmetric-Algorithm`PZPWSTR`ECDSA_P256`".into()],
            ..good()
        };
        let p256 = AcceptedKeys {
            policies: vec!["web".into()],
            rsa_min_bits: None,
            ec_curves: vec![EcCurve::P256],
        };
        assert_eq!(keys(&ec, Some(&p256)).1, Verdict::Pass);
        let (what, v) = keys(&ec, Some(&both));
        assert!(
            what.contains("RSA keys do not match") && what.contains("P-384"),
            "{what}"
        );
        assert!(fails(&v).contains("allowed-ec-curves to [P-256]"));
    }

    #[test]
    fn accepted_keys_merge_policies() {
        let rsa = pki::KeyPolicy {
            allowed_algorithms: vec![pki::SignatureAlgorithm::RsaSha256],
            min_rsa_bits: 4096,
            allowed_ec_curves: vec![EcCurve::P256],
        };
        let ec = pki::KeyPolicy {
            allowed_algorithms: vec![pki::SignatureAlgorithm::EcdsaSha384],
            min_rsa_bits: 2048,
            allowed_ec_curves: vec![EcCurve::P384, EcCurve::P521],
        };
        let all = pki::KeyPolicy::default();
        let a = AcceptedKeys::from_policies([("rsa", &rsa), ("ec", &ec)]).expect("keys");
        assert_eq!(a.rsa_min_bits, Some(4096));
        assert_eq!(a.ec_curves, vec![EcCurve::P384]);
        let a = AcceptedKeys::from_policies([("rsa", &rsa), ("all", &all)]).expect("keys");
        assert_eq!(a.rsa_min_bits, Some(3072));
        assert_eq!(a.ec_curves, vec![EcCurve::P256, EcCurve::P384]);
        assert_eq!(AcceptedKeys::from_policies([]), None);
    }

    #[test]
    fn validity_is_compared_with_max_validity() {
        let max = Duration::from_secs(398 * 86400);
        let (what, v) = validity(&good(), max);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(
            what,
            "template \"WebServer\" validity 365d is within max-validity 398d"
        );
        let long = Template {
            validity: Some(Ok(Duration::from_secs(730 * 86400))),
            ..good()
        };
        let (what, v) = validity(&long, max);
        assert!(
            what.contains("730d, longer than max-validity 398d"),
            "{what}"
        );
        assert!(fails(&v).contains("at most 398d"));
        let none = Template {
            validity: None,
            ..good()
        };
        assert_eq!(validity(&none, max).1, Verdict::Skipped);
        let bad = Template {
            validity: Some(Err("x".into())),
            ..good()
        };
        assert!(matches!(validity(&bad, max).1, Verdict::Fail(_)));
    }
}
