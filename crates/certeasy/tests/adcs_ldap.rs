//! The LDAP part of `certeasy adcs check` against a real LDAP server: an
//! OpenLDAP slapd holding the Active Directory objects that matter (rootDSE
//! naming contexts, certificate templates, the CA's enrollment service, the
//! service account with its SID and tokenGroups, security descriptors) over
//! LDAPS. One template per case; every case asserts its lines exactly.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use certeasy::config::{AuthorityKind, ExpectationsExt};
use certeasy_adcs::preflight::{check_ldap, CheckLine, Expectations, Verdict};
use common::slapd::{
    allow, b64, domain_sid, period, security_descriptor, sid, Slapd, CONFIG_DN, DOMAIN_DN, ENROLL,
};

const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
const ANY_PURPOSE: &str = "2.5.29.37.0";
const ALICE_DN: &str = "CN=alice,CN=Users,DC=corp,DC=example";
const PASSWORD: &str = "Passw0rd!";

/// Access masks as AD stores them.
const READ: u32 = 0x0002_0094;
const FULL_CONTROL: u32 = 0x000F_01FF;
const CONTROL_ACCESS: u32 = 0x0000_0100;
const WRITE_DACL: u32 = 0x0004_0000;

/// Account RIDs.
const ALICE: u32 = 1104;
const PKI_ENROLLERS: u32 = 1200;
const OTHER_GROUP: u32 = 1300;

struct T {
    name: &'static str,
    display: &'static str,
    version: u32,
    name_flag: i64,
    enrollment_flag: i64,
    ra: u32,
    min_key: u32,
    ekus: &'static [&'static str],
    algorithm: Option<&'static str>,
    days: i64,
    enroll_for: u32,
    alice_extra: Option<u32>,
    published: bool,
}

const GOOD: T = T {
    name: "WebServer",
    display: "Certeasy Web Server",
    version: 2,
    name_flag: 1,
    enrollment_flag: 0,
    ra: 0,
    min_key: 2048,
    ekus: &[SERVER_AUTH],
    algorithm: None,
    days: 365,
    enroll_for: PKI_ENROLLERS,
    alice_extra: None,
    published: true,
};

fn templates() -> Vec<T> {
    vec![
        GOOD,
        T {
            name: "Unpublished",
            display: "Unpublished",
            published: false,
            ..GOOD
        },
        // The Computer template's flags: subject and DNS SAN from AD.
        T {
            name: "FromDirectory",
            display: "From Directory",
            name_flag: 0x1800_0000,
            ..GOOD
        },
        T {
            name: "ClientAuthWeb",
            display: "Client Auth Web",
            ekus: &[SERVER_AUTH, CLIENT_AUTH],
            ..GOOD
        },
        T {
            name: "AnyPurpose",
            display: "Any Purpose",
            ekus: &[ANY_PURPOSE],
            ..GOOD
        },
        T {
            name: "CoSigned",
            display: "Co-signed",
            ra: 1,
            ..GOOD
        },
        T {
            name: "Approval",
            display: "Approval",
            enrollment_flag: 0x29 | 0x2,
            ..GOOD
        },
        T {
            name: "NoEnroll",
            display: "No Enroll",
            enroll_for: OTHER_GROUP,
            ..GOOD
        },
        T {
            name: "Writable",
            display: "Writable",
            alice_extra: Some(WRITE_DACL | READ),
            ..GOOD
        },
        T {
            name: "EcdsaWeb",
            display: "ECDSA Web",
            version: 4,
            min_key: 256,
            algorithm: Some("ECDSA_P256"),
            ..GOOD
        },
        T {
            name: "LongLived",
            display: "Long Lived",
            days: 730,
            ..GOOD
        },
    ]
}

fn container(dn: &str, cn: &str) -> String {
    format!("dn: {dn}\nobjectClass: container\ncn: {cn}\n\n")
}

fn directory() -> String {
    let mut l = String::new();
    l.push_str(&format!(
        "dn: {DOMAIN_DN}\nobjectClass: domainDNS\ndc: corp\n"
    ));
    l.push_str(&b64("objectSid", &sid(common::slapd::DOMAIN_SID)));
    l.push('\n');
    l.push_str(&container(&format!("CN=Users,{DOMAIN_DN}"), "Users"));
    for (cn, rid) in [
        ("Domain Users", 513),
        ("PKI Enrollers", PKI_ENROLLERS),
        ("Other Group", OTHER_GROUP),
    ] {
        l.push_str(&format!("dn: CN={cn},CN=Users,{DOMAIN_DN}\nobjectClass: group\ncn: {cn}\nsAMAccountName: {cn}\n"));
        l.push_str(&b64("objectSid", &sid(&domain_sid(rid))));
        l.push('\n');
    }
    l.push_str(&format!(
        "dn: {ALICE_DN}\nobjectClass: user\ncn: alice\nsAMAccountName: alice\nuserPrincipalName: alice@corp.example\nuserPassword: {PASSWORD}\n"
    ));
    l.push_str(&b64("objectSid", &sid(&domain_sid(ALICE))));
    l.push_str(&b64("tokenGroups", &sid(&domain_sid(513))));
    l.push_str(&b64("tokenGroups", &sid(&domain_sid(PKI_ENROLLERS))));
    l.push('\n');
    l.push_str(&format!(
        "dn: {CONFIG_DN}\nobjectClass: configuration\ncn: Configuration\n\n"
    ));
    let services = format!("CN=Services,{CONFIG_DN}");
    let pks = format!("CN=Public Key Services,{services}");
    let tpl = format!("CN=Certificate Templates,{pks}");
    let es = format!("CN=Enrollment Services,{pks}");
    l.push_str(&container(&services, "Services"));
    l.push_str(&container(&pks, "Public Key Services"));
    l.push_str(&container(&tpl, "Certificate Templates"));
    l.push_str(&container(&es, "Enrollment Services"));
    let all = templates();
    for t in &all {
        l.push_str(&format!(
            "dn: CN={},{tpl}\nobjectClass: pKICertificateTemplate\ncn: {}\ndisplayName: {}\n",
            t.name, t.name, t.display
        ));
        l.push_str(&format!("msPKI-Template-Schema-Version: {}\n", t.version));
        l.push_str(&format!("msPKI-Certificate-Name-Flag: {}\n", t.name_flag));
        l.push_str(&format!("msPKI-Enrollment-Flag: {}\n", t.enrollment_flag));
        l.push_str(&format!("msPKI-RA-Signature: {}\n", t.ra));
        l.push_str(&format!("msPKI-Minimal-Key-Size: {}\n", t.min_key));
        for e in t.ekus {
            l.push_str(&format!(
                "pKIExtendedKeyUsage: {e}\nmsPKI-Certificate-Application-Policy: {e}\n"
            ));
        }
        if let Some(alg) = t.algorithm {
            l.push_str(&format!(
                "msPKI-RA-Application-Policies: msPKI-Asymmetric-Algorithm`PZPWSTR`{alg}`msPKI-Hash-Algorithm`PZPWSTR`SHA256`msPKI-Key-Usage`DWORD`16777215`msPKI-Symmetric-Algorithm`PZPWSTR`3DES`msPKI-Symmetric-Key-Length`DWORD`168`\n"
            ));
        }
        l.push_str(&b64("pKIExpirationPeriod", &period(t.days)));
        let mut aces = vec![
            allow(READ, None, "S-1-5-11".to_string()),
            allow(CONTROL_ACCESS, Some(ENROLL), domain_sid(t.enroll_for)),
            allow(FULL_CONTROL, None, domain_sid(512)),
            allow(FULL_CONTROL, None, domain_sid(519)),
        ];
        if let Some(mask) = t.alice_extra {
            aces.push(allow(mask, None, domain_sid(ALICE)));
        }
        l.push_str(&b64("nTSecurityDescriptor", &security_descriptor(&aces)));
        l.push('\n');
    }
    l.push_str(&format!(
        "dn: CN=LAB-CA,{es}\nobjectClass: pKIEnrollmentService\ncn: LAB-CA\ndNSHostName: ca01.corp.example\n"
    ));
    for t in all.iter().filter(|t| t.published) {
        l.push_str(&format!("certificateTemplates: {}\n", t.name));
    }
    let ca_sd = security_descriptor(&[
        allow(READ, None, "S-1-5-11".to_string()),
        allow(CONTROL_ACCESS, Some(ENROLL), "S-1-5-11".to_string()),
        allow(FULL_CONTROL, None, domain_sid(519)),
    ]);
    l.push_str(&b64("nTSecurityDescriptor", &ca_sd));
    l.push('\n');
    // A CA whose name has characters AD "sanitizes" in the object's cn.
    l.push_str(&format!(
        "dn: CN=Corp CA !00282!0029,{es}\nobjectClass: pKIEnrollmentService\ncn: Corp CA !00282!0029\ndisplayName: Corp CA (2)\ncertificateTemplates: WebServer\n"
    ));
    l.push_str(&b64("nTSecurityDescriptor", &ca_sd));
    l.push('\n');
    l
}

async fn slapd() -> Slapd {
    let rootdse = format!(
        "dn:\nconfigurationNamingContext: {CONFIG_DN}\ndefaultNamingContext: {DOMAIN_DN}\n"
    );
    Slapd::start(&directory(), &rootdse).await
}

/// A case: which template, credentials and trust anchor, and the policy's
/// `signature` keys.
struct Case<'a> {
    template: &'a str,
    ca: &'a str,
    password: &'a str,
    ca_file: Option<&'a Path>,
    start_tls: bool,
    signature: &'a str,
    max_validity: &'a str,
}

const RSA_ONLY: &str = "      allowed-algorithms: [RSA-SHA256, RSA-SHA384, RSA-SHA512]\n";

impl Default for Case<'_> {
    fn default() -> Self {
        Case {
            template: "WebServer",
            ca: "LAB-CA",
            password: PASSWORD,
            ca_file: None,
            start_tls: false,
            signature: RSA_ONLY,
            max_validity: "398d",
        }
    }
}

/// Writes the configuration of an `adcs` authority `corp` using `ldap`.
fn config(dir: &Path, s: &Slapd, c: &Case<'_>) -> PathBuf {
    let pw = dir.join("corp.pw");
    common::write_secret(&pw, c.password);
    let authority = format!(
        "  - name: corp\n    type: adcs\n    configuration:\n      ca-name: '127.0.0.1\\{ca}'\n      certificate-template: {template}\n      max-validity: {max}\n      auth:\n        method: ntlm\n        domain: CORP\n        username: alice\n        password-file: {pw}\n      ldap:\n        url: {url}\n        ca-file: {ca_file}\n        bind-name: {ALICE_DN}\n        timeout: 5s\n",
        template = c.template,
        ca = c.ca,
        max = c.max_validity,
        pw = pw.display(),
        url = if c.start_tls {
            format!("{}\n        start-tls: true", s.plain_url())
        } else {
            s.url()
        },
        ca_file = c.ca_file.unwrap_or(&s.ca_pem).display(),
    );
    let opts = common::Options {
        authority_extra: authority,
        policy_extra: c.signature.to_string(),
        extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [corp]\n".into(),
        ..common::Options::default()
    };
    let dns: std::net::SocketAddr = "127.0.0.1:53".parse().unwrap();
    let path = dir.join("config.yml");
    std::fs::write(&path, common::config_text(dir, 8443, dns, 80, 443, &opts)).unwrap();
    path
}

/// Runs the LDAP checks of `corp` as `adcs check` does.
async fn check(s: &Slapd, c: Case<'_>) -> Vec<CheckLine> {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), s, &c);
    let config = certeasy::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let AuthorityKind::Adcs(settings) = &config.authority("corp").unwrap().kind else {
        panic!("not adcs")
    };
    let expect = Expectations::for_authority(&config, "corp").unwrap();
    check_ldap("corp", settings, &expect).await
}

fn text(lines: &[CheckLine]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

fn marks(lines: &[CheckLine]) -> String {
    lines
        .iter()
        .map(|l| match l.verdict {
            Verdict::Pass => '✓',
            Verdict::Fail(_) => '✗',
            Verdict::Skipped => '–',
        })
        .collect()
}

fn sid_of(rid: u32) -> String {
    domain_sid(rid)
}

fn bound(url: &str) -> String {
    format!("✓ [corp] LDAP {url}: TLS certificate trusted, bound as {ALICE_DN}")
}

/// The 13 lines of a template that passes every check.
fn good_lines(s: &Slapd, t: &str, display: &str, keys: &str) -> Vec<String> {
    vec![
        bound(&s.url()),
        format!("✓ [corp] configuration naming context {CONFIG_DN} (rootDSE configurationNamingContext)"),
        format!("✓ [corp] template {t:?} found, display name {display:?} (schema version {})", if t == "EcdsaWeb" { 4 } else { 2 }),
        format!("✓ [corp] template {t:?} is published on CA \"LAB-CA\""),
        format!("✓ [corp] template {t:?}: the subject is supplied in the request (CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT)"),
        format!("✓ [corp] template {t:?} EKU: serverAuth"),
        format!("✓ [corp] template {t:?} issues without manager approval or authorized signatures"),
        format!("✓ [corp] template {t:?} takes {keys}"),
        format!("✓ [corp] template {t:?} validity 365d is within max-validity 398d"),
        format!("✓ [corp] service account cn=alice,cn=Users,dc=corp,dc=example ({}; 2 group(s) from tokenGroups)", sid_of(ALICE)),
        format!("✓ [corp] service account may enroll on template {t:?} (Enroll granted to PKI Enrollers ({}))", sid_of(PKI_ENROLLERS)),
        format!("✓ [corp] service account cannot modify template {t:?} (no WriteDacl, WriteOwner or WriteProperty: not ESC4)"),
        "✓ [corp] service account may enroll on CA \"LAB-CA\" (Enroll granted to Authenticated Users (S-1-5-11))".to_string(),
    ]
}

#[tokio::test]
async fn good_template_passes_every_line() {
    let s = slapd().await;
    let lines = check(&s, Case::default()).await;
    assert_eq!(
        text(&lines),
        good_lines(
            &s,
            "WebServer",
            "Certeasy Web Server",
            "RSA ≥ 2048 bits (schema v2: legacy CSP, RSA only); policies bound to this authority (test) accept RSA ≥ 3072 bits"
        )
    );
}

#[tokio::test]
async fn start_tls_on_the_plain_port_works_the_same() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            start_tls: true,
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[0].to_string(),
        format!(
            "✓ [corp] LDAP {} with StartTLS: TLS certificate trusted, bound as {ALICE_DN}",
            s.plain_url()
        )
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✓✓✓✓✓✓✓✓");
}

#[tokio::test]
async fn good_ecdsa_template_passes_with_an_ecdsa_policy() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "EcdsaWeb",
            signature:
                "      allowed-algorithms: [ECDSA-SHA256]\n      allowed-ec-curves: [P-256]\n",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        text(&lines),
        good_lines(
            &s,
            "EcdsaWeb",
            "ECDSA Web",
            "ECDSA P-256 (schema v4, algorithm ECDSA_P256); policies bound to this authority (test) accept ECDSA P-256"
        )
    );
}

#[tokio::test]
async fn missing_template_skips_the_template_checks() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "NoSuchTemplate",
            ..Case::default()
        },
    )
    .await;
    let container =
        format!("CN=Certificate Templates,CN=Public Key Services,CN=Services,{CONFIG_DN}");
    assert_eq!(
        text(&lines)[2..5],
        [
            format!("✗ [corp] template \"NoSuchTemplate\" not found under {container} — fix: check certificate-template (the template name as certutil -CATemplates lists it, not the display name), or create the template in certtmpl.msc (duplicate Web Server)"),
            "✗ [corp] template \"NoSuchTemplate\" is not published on CA \"LAB-CA\" (it publishes \"WebServer\", \"FromDirectory\", \"ClientAuthWeb\", \"AnyPurpose\", \"CoSigned\", \"Approval\", \"NoEnroll\", \"Writable\", \"EcdsaWeb\", \"LongLived\") — fix: on the CA run certutil -SetCAtemplates +NoSuchTemplate, or in certsrv.msc → Certificate Templates → New → Certificate Template to Issue".to_string(),
            "– [corp] subject, EKU, issuance, key and validity checks of template \"NoSuchTemplate\" skipped: template not read".to_string(),
        ]
    );
    // The account and the CA's rights are still checked.
    assert_eq!(marks(&lines), "✓✓✗✗–✓–✓");
    assert_eq!(
        lines[6].to_string(),
        "– [corp] rights on template \"NoSuchTemplate\" not checked: template not read"
    );
}

#[tokio::test]
async fn display_name_instead_of_template_name_gets_a_hint() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "Certeasy Web Server",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[2].to_string(),
        "✗ [corp] template \"Certeasy Web Server\" not found: that is the display name of template \"WebServer\" — fix: certificate-template takes the template name (cn), not the display name: set certificate-template: WebServer"
    );
}

#[tokio::test]
async fn unpublished_template() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "Unpublished",
            ..Case::default()
        },
    )
    .await;
    let l = &lines[3];
    assert!(
        l.to_string().starts_with("✗ [corp] template \"Unpublished\" is not published on CA \"LAB-CA\" (it publishes \"WebServer\", "),
        "{l}"
    );
    assert_eq!(
        l.verdict,
        Verdict::Fail("on the CA run certutil -SetCAtemplates +Unpublished, or in certsrv.msc → Certificate Templates → New → Certificate Template to Issue".into())
    );
    assert_eq!(marks(&lines), "✓✓✓✗✓✓✓✓✓✓✓✓✓");
}

#[tokio::test]
async fn ca_is_found_by_display_name_when_its_cn_is_sanitized() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            ca: "Corp CA (2)",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[3].to_string(),
        "✓ [corp] template \"WebServer\" is published on CA \"Corp CA (2)\""
    );
    assert_eq!(
        lines[12].to_string(),
        "✓ [corp] service account may enroll on CA \"Corp CA (2)\" (Enroll granted to Authenticated Users (S-1-5-11))"
    );
}

#[tokio::test]
async fn unknown_ca_lists_the_enterprise_cas() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            ca: "Nope CA",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[3].to_string(),
        format!("✗ [corp] CA \"Nope CA\" has no enrollment service object under CN=Enrollment Services,CN=Public Key Services,CN=Services,{CONFIG_DN} (enterprise CAs there: \"Corp CA (2)\", \"LAB-CA\") — fix: the part of ca-name after the backslash must be the common name of an enterprise CA of this forest (certutil -config - -ping shows it)")
    );
    assert_eq!(
        lines[12].to_string(),
        "– [corp] Enroll on CA \"Nope CA\" not checked: enrollment service not read"
    );
    assert_eq!(marks(&lines), "✓✓✓✗✓✓✓✓✓✓✓✓–");
}

#[tokio::test]
async fn subject_built_from_the_directory() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "FromDirectory",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[4].to_string(),
        "✗ [corp] template \"FromDirectory\" builds the subject from the requester's AD object (msPKI-Certificate-Name-Flag 0x18000000 lacks CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT): the CA would ignore the names of ACME orders — fix: in certtmpl.msc open \"FromDirectory\" → Subject Name and select \"Supply in the request\" (keep the EKU Server Authentication only, see docs/security-model.md)"
    );
    assert_eq!(marks(&lines), "✓✓✓✓✗✓✓✓✓✓✓✓✓");
}

const EKU_FIX: &str = "in certtmpl.msc open {} → Extensions → Application Policies and keep only Server Authentication (docs/security-model.md, ESC1–ESC3)";

#[tokio::test]
async fn client_auth_eku_is_esc1() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "ClientAuthWeb",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[5].to_string(),
        format!(
            "✗ [corp] template \"ClientAuthWeb\" EKU: serverAuth, Client Authentication (1.3.6.1.5.5.7.3.2) — Client Authentication (1.3.6.1.5.5.7.3.2): ESC1 with an enrollee-supplied subject — fix: {}",
            EKU_FIX.replace("{}", "\"ClientAuthWeb\"")
        )
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✗✓✓✓✓✓✓✓");
}

#[tokio::test]
async fn any_purpose_eku_is_esc2() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "AnyPurpose",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[5].to_string(),
        format!(
            "✗ [corp] template \"AnyPurpose\" EKU: Any Purpose (2.5.29.37.0) — Any Purpose (2.5.29.37.0): ESC2 with an enrollee-supplied subject; Server Authentication (1.3.6.1.5.5.7.3.1) is missing — fix: {}",
            EKU_FIX.replace("{}", "\"AnyPurpose\"")
        )
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✗✓✓✓✓✓✓✓");
}

#[tokio::test]
async fn authorized_signatures_cannot_be_provided() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "CoSigned",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[6].to_string(),
        "✗ [corp] template \"CoSigned\" requires 1 authorized signature(s) (msPKI-RA-Signature): certeasy cannot co-sign requests, so the CA would deny them — fix: in certtmpl.msc open \"CoSigned\" → Issuance Requirements and set \"This number of authorized signatures\" to 0 (tick \"CA certificate manager approval\" instead if a person must approve)"
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✓✗✓✓✓✓✓✓");
}

#[tokio::test]
async fn manager_approval_passes_with_a_note() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "Approval",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[6].to_string(),
        "✓ [corp] template \"Approval\" requires CA certificate manager approval (CT_FLAG_PEND_ALL_REQUESTS): requests wait until an officer issues them (certsrv.msc → Pending Requests); ACME orders stay processing, at most default-timeout 4m"
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✓✓✓✓✓✓✓✓");
}

#[tokio::test]
async fn legacy_template_refuses_the_ecdsa_keys_the_policy_accepts() {
    let s = slapd().await;
    // The harness policy accepts every algorithm: RSA ≥ 3072 and ECDSA.
    let lines = check(
        &s,
        Case {
            signature: "",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[7].to_string(),
        "✗ [corp] template \"WebServer\" takes RSA ≥ 2048 bits (schema v2: legacy CSP, RSA only); policies bound to this authority (test) accept RSA ≥ 3072 bits, ECDSA P-256/P-384 — ECDSA P-256/P-384 keys would be denied — fix: restrict signature.allowed-algorithms of those policies to RSA-SHA256, RSA-SHA384, RSA-SHA512, or for ECDSA duplicate the template in certtmpl.msc with compatibility Windows Server 2008 or later (schema v4), a Key Storage Provider and algorithm ECDSA_P256 or ECDSA_P384, used by its own authority and an ECDSA-only policy"
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✓✓✗✓✓✓✓✓");
}

#[tokio::test]
async fn template_longer_than_max_validity() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "LongLived",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[8].to_string(),
        "✗ [corp] template \"LongLived\" issues certificates valid for 730d, longer than max-validity 398d: certeasy would refuse them after issuance — fix: in certtmpl.msc open \"LongLived\" → General and set the validity period to at most 398d (or raise max-validity of this authority)"
    );
    // Within a larger max-validity it passes.
    let lines = check(
        &s,
        Case {
            template: "LongLived",
            max_validity: "800d",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[8].to_string(),
        "✓ [corp] template \"LongLived\" validity 730d is within max-validity 800d"
    );
}

#[tokio::test]
async fn service_account_without_enroll() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "NoEnroll",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[10].to_string(),
        "✗ [corp] service account has no Enroll permission on template \"NoEnroll\" — fix: in certtmpl.msc open \"NoEnroll\" → Security and allow Enroll (not Autoenroll) for the service account or a group it belongs to"
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✓✓✓✓✓✗✓✓");
}

#[tokio::test]
async fn service_account_with_write_dacl_is_esc4() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            template: "Writable",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        lines[11].to_string(),
        format!(
            "✗ [corp] service account can modify template \"Writable\": WriteDacl via the service account itself ({}) — ESC4: whoever holds its password can turn the template into ESC1 (docs/security-model.md) — fix: in certtmpl.msc open \"Writable\" → Security and remove Full Control, Write and Modify permissions/owner for the service account and its groups; leave Read and Enroll",
            sid_of(ALICE)
        )
    );
    assert_eq!(marks(&lines), "✓✓✓✓✓✓✓✓✓✓✓✗✓");
}

#[tokio::test]
async fn wrong_password_is_invalid_credentials() {
    let s = slapd().await;
    let lines = check(
        &s,
        Case {
            password: "not-the-password",
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        text(&lines),
        [
            format!(
                "✗ [corp] LDAP {}: bind as {ALICE_DN} refused: invalidCredentials (49) — fix: check auth.username, auth.domain (or ldap.bind-name) and the password; the account must be enabled, unlocked and allowed to log on",
                s.url()
            ),
            "– [corp] template, publication, subject, EKU, issuance, key, validity and rights checks skipped: no LDAP session".to_string(),
        ]
    );
}

#[tokio::test]
async fn untrusted_certificate_fails_the_tls_handshake() {
    let s = slapd().await;
    let other = s.other_ca_pem.clone();
    let lines = check(
        &s,
        Case {
            ca_file: Some(&other),
            ..Case::default()
        },
    )
    .await;
    assert_eq!(
        text(&lines),
        [
            format!(
                "✗ [corp] LDAP {}: TLS handshake failed: invalid peer certificate: UnknownIssuer — fix: the domain controller's certificate does not chain to {}: put the PEM of the CA that issued it (your enterprise root CA, certutil -ca.cert) in ldap.ca-file",
                s.url(),
                other.display()
            ),
            "– [corp] template, publication, subject, EKU, issuance, key, validity and rights checks skipped: no LDAP session".to_string(),
        ]
    );
}

/// `certeasy adcs check` end to end: lab-adcs answers the RPC checks, slapd
/// the LDAP ones; exit 0 only when every line passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adcs_check_binary_runs_rpc_and_ldap_checks() {
    let s = slapd().await;
    let lab = common::lab::lab().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |template: &str| {
        let ldap = format!(
            "      ldap:\n        url: {}\n        ca-file: {}\n        bind-name: {ALICE_DN}\n",
            s.url(),
            s.ca_pem.display()
        );
        let opts = common::Options {
            authority_extra: lab.authority("lab", template, PASSWORD) + &ldap,
            policy_extra: RSA_ONLY.to_string(),
            extra_sections: "policy-bindings:\n  - policy: test\n    authorities: [lab]\n".into(),
            ..common::Options::default()
        };
        let dns: std::net::SocketAddr = "127.0.0.1:53".parse().unwrap();
        let path = dir.path().join(format!("{template}.yml"));
        std::fs::write(
            &path,
            common::config_text(dir.path(), 8443, dns, 80, 443, &opts),
        )
        .unwrap();
        path
    };
    let run = |path: PathBuf| {
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_certeasy"))
                .args(["adcs", "check", "-f"])
                .arg(&path)
                .output()
                .unwrap();
            (
                out.status.code().unwrap_or(-1),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
    };
    let (code, out) = run(write("WebServer")).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains('✗'), "{out}");
    for needle in [
        "✓ [lab] authenticated as CORP\\alice",
        "– [lab] test submission to template \"WebServer\" not run (add --submit)",
        "✓ [lab] template \"WebServer\" is published on CA \"LAB-CA\"",
        "✓ [lab] service account may enroll on template \"WebServer\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert_eq!(
        out.lines().filter(|l| l.starts_with("✓ [lab]")).count(),
        // RPC, DCOM (enrollment, templates, template published, revoke rights), LDAP
        4 + 4 + 13,
        "{out}"
    );
    // The RPC side passes, the LDAP side finds the missing Enroll: exit 1.
    let (code, out) = run(write("NoEnroll")).await.unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✓ [lab] authenticated as CORP\\alice"),
        "{out}"
    );
    assert!(
        out.contains("✗ [lab] service account has no Enroll permission on template \"NoEnroll\""),
        "{out}"
    );
    // lab-adcs itself does not issue NoEnroll: the CA's own template list
    // (ICertAdminD2 over DCOM) says so too.
    assert!(
        out.contains("✗ [lab] template NoEnroll is not among the CA's templates"),
        "{out}"
    );
    assert!(out.contains("2 check(s) failed"), "{out}");
}
