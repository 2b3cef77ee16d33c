//! `certeasy init`: a wizard that writes a first configuration.
//!
//! [`questions`] holds the questions, their defaults and checks;
//! [`wizard`] asks them in order through a [`Prompter`] (the terminal with
//! dialoguer, or `--script` lines from standard input); [`render`] turns
//! the [`Answers`] into YAML; [`write`] writes it (and the password files,
//! mode 0600, beside it) and loads it back with [`crate::config::load`]
//! before saying it is done. Nothing is written before the last answer.
//! See `docs/init.md`.

pub mod questions;

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use questions as q;
use questions::{Checked, Question};

/// `certeasy init` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Configuration file to write.
    #[arg(short = 'f', long = "file", default_value = "config.yml")]
    pub file: PathBuf,
    /// Replace an existing configuration (and its password files).
    #[arg(long)]
    pub force: bool,
    /// Read the answers from standard input, one per line in the order of
    /// the prompts (docs/init.md); an empty line takes the default.
    #[arg(long)]
    pub script: bool,
}

/// Why the wizard stopped.
#[derive(Debug)]
pub enum InitError {
    /// A `--script` answer was refused (exit 2).
    Invalid {
        /// 1-based line of standard input.
        line: usize,
        /// The question.
        question: Question,
        /// Why.
        message: String,
    },
    /// Standard input ended before the question (exit 2).
    Eof {
        /// The question left unanswered.
        question: Question,
    },
    /// The terminal failed or the user interrupted (exit 1).
    Io(std::io::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Invalid {
                line,
                question,
                message,
            } => write!(
                f,
                "standard input line {line}: {} ({}): {message}",
                question.key, question.prompt
            ),
            InitError::Eof { question } => write!(
                f,
                "standard input ended before the answer to {} ({}); see docs/init.md for the order of the answers",
                question.key, question.prompt
            ),
            InitError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Where the answers come from.
pub trait Prompter {
    /// Asks `question`, offering `default` (taken on an empty answer), and
    /// returns the answer as normalised by `check`. An answer that `check`
    /// refuses is asked again on a terminal, and ends a script.
    fn ask(
        &mut self,
        question: Question,
        default: &str,
        check: &dyn Fn(&str) -> Checked,
    ) -> Result<String, InitError>;

    /// Asks for a password without echoing it. With `allow_empty`, an empty
    /// answer is returned as is; otherwise `check` applies.
    fn password(
        &mut self,
        question: Question,
        allow_empty: bool,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, InitError>;
}

/// A password, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The authority chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityAnswers {
    /// The built-in CA.
    Builtin {
        /// `common-name`.
        common_name: String,
        /// `key-type`.
        key_type: String,
        /// The key password (generated when left empty).
        password: Secret,
    },
    /// Microsoft ADCS over the native bridge.
    Adcs {
        /// `ca-name`.
        ca_name: String,
        /// `certificate-template`.
        template: String,
        /// `auth.method`.
        method: String,
        /// `auth.domain`.
        domain: String,
        /// `auth.realm` (empty: none; kerberos and negotiate only).
        realm: String,
        /// `auth.username`.
        username: String,
        /// `auth.keytab` (empty: the password is used).
        keytab: String,
        /// The service account's password (empty with a keytab).
        password: Secret,
        /// `endpoint-mapper-port`.
        epm_port: u16,
        /// Run `certeasy adcs check` after writing.
        check: bool,
    },
}

/// The listener's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsAnswers {
    /// Issued by the authority.
    Pki,
    /// From an external ACME CA (tls-alpn-01 on the listener).
    Acme {
        /// `directory-url`.
        directory: String,
        /// E-mail for `contact` (empty: none).
        contact: String,
        /// `ca-root` (empty: the system's CAs).
        ca_root: String,
    },
    /// Files managed elsewhere.
    Files {
        /// `local-cert-file`.
        cert: String,
        /// `local-key-file`.
        key: String,
    },
}

/// Every answer of the wizard, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// `server.listen`.
    pub listen: String,
    /// `server.url[0]`.
    pub url: String,
    /// `workdir`.
    pub workdir: String,
    /// `database.path`.
    pub database: String,
    /// `authorities[0]`.
    pub authority: AuthorityAnswers,
    /// Zones of the issuance policy.
    pub zones: Vec<String>,
    /// Labels allowed in front of a zone.
    pub depth: u8,
    /// Wildcards allowed.
    pub wildcards: bool,
    /// `resolved-ip-policy.allow-cidrs`.
    pub allow_cidrs: Vec<String>,
    /// `tls-certificate-manager`.
    pub tls: TlsAnswers,
}

/// Facts about the machine the defaults depend on.
#[derive(Debug, Clone)]
pub struct Context {
    /// This machine's host name.
    pub hostname: String,
    /// Absolute directory of the configuration file.
    pub config_dir: PathBuf,
}

impl Context {
    /// The context of a configuration written to `file`.
    pub fn for_file(file: &Path) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        Context {
            hostname,
            config_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }
}

/// Asks every question, in the documented order.
pub fn wizard(p: &mut dyn Prompter, ctx: &Context) -> Result<Answers, InitError> {
    let listen = p.ask(q::LISTEN, "0.0.0.0:8443", &q::check_listen)?;
    let url = p.ask(
        q::URL,
        &q::default_url(&listen, &ctx.hostname),
        &q::check_url,
    )?;
    let workdir = p.ask(
        q::WORKDIR,
        &q::default_workdir(&ctx.config_dir),
        &q::check_workdir,
    )?;
    let database = p.ask(q::DATABASE, q::DEFAULT_DATABASE, &q::check_database)?;
    let kind = p.ask(q::AUTHORITY, "builtin", &|s| {
        q::check_choice(s, q::AUTHORITIES)
    })?;
    let authority = if kind == "adcs" {
        let ca_name = p.ask(q::ADCS_CA_NAME, "", &q::check_adcs_ca_name)?;
        let template = p.ask(q::ADCS_TEMPLATE, "WebServer", &q::check_text)?;
        let method = p.ask(q::ADCS_METHOD, "ntlm", &|s| {
            q::check_choice(s, q::ADCS_METHODS)
        })?;
        let domain = p.ask(q::ADCS_DOMAIN, "", &q::check_optional_text)?;
        let realm = if method == "ntlm" {
            String::new()
        } else {
            let required = method == "kerberos";
            p.ask(q::ADCS_REALM, &q::default_realm(&domain, &ca_name), &|s| {
                q::check_realm(s, required)
            })?
        };
        let username = p.ask(q::ADCS_USERNAME, "", &q::check_text)?;
        let keytab = if method == "kerberos" {
            p.ask(q::ADCS_KEYTAB, "", &q::check_optional_file_path)?
        } else {
            String::new()
        };
        // With a keytab no password is needed at all.
        let password = if keytab.is_empty() {
            Secret(p.password(q::ADCS_PASSWORD, false, &q::check_password)?)
        } else {
            Secret(String::new())
        };
        let epm = p.ask(q::ADCS_EPM_PORT, "135", &q::check_port)?;
        AuthorityAnswers::Adcs {
            ca_name,
            template,
            method,
            domain,
            realm,
            username,
            keytab,
            password,
            epm_port: epm.parse().unwrap_or(135),
            check: false,
        }
    } else {
        let common_name = p.ask(q::CA_COMMON_NAME, "certeasy built-in CA", &q::check_text)?;
        let key_type = p.ask(q::CA_KEY_TYPE, "ecdsa-p256", &|s| {
            q::check_choice(s, q::KEY_TYPES)
        })?;
        let typed = p.password(q::CA_PASSWORD, true, &q::check_password)?;
        let password = Secret(if typed.is_empty() {
            generate_password()?
        } else {
            typed
        });
        AuthorityAnswers::Builtin {
            common_name,
            key_type,
            password,
        }
    };
    let zones = p.ask(q::ZONES, &q::default_zones(&url), &q::check_zones)?;
    let depth = p.ask(q::DEPTH, q::DEFAULT_DEPTH, &q::check_depth)?;
    let wildcards = p.ask(q::WILDCARDS, "no", &q::check_yes_no)?;
    let cidrs = p.ask(
        q::ALLOW_CIDRS,
        &q::default_allow_cidrs(&listen),
        &q::check_cidrs,
    )?;
    let tls_mode = p.ask(q::TLS_MODE, "pki", &|s| q::check_choice(s, q::TLS_MODES))?;
    let tls = match tls_mode.as_str() {
        "files" => {
            let cert = p.ask(q::TLS_CERT_FILE, "", &q::check_file_path)?;
            let key = p.ask(q::TLS_KEY_FILE, "", &q::check_file_path)?;
            TlsAnswers::Files { cert, key }
        }
        "acme" => {
            let directory = p.ask(q::TLS_ACME_DIRECTORY, "", &q::check_url)?;
            let contact = p.ask(q::TLS_ACME_CONTACT, "", &q::check_optional_email)?;
            let ca_root = p.ask(q::TLS_ACME_CA_ROOT, "", &q::check_optional_file_path)?;
            TlsAnswers::Acme {
                directory,
                contact,
                ca_root,
            }
        }
        _ => TlsAnswers::Pki,
    };
    let mut authority = authority;
    if let AuthorityAnswers::Adcs { check, .. } = &mut authority {
        *check = p.ask(q::ADCS_CHECK, "yes", &q::check_yes_no)? == "yes";
    }
    Ok(Answers {
        listen,
        url,
        workdir,
        database,
        authority,
        zones: q::zone_list(&zones),
        depth: depth.parse().unwrap_or(3),
        wildcards: wildcards == "yes",
        allow_cidrs: cidrs.split(", ").map(str::to_string).collect(),
        tls,
    })
}

/// 32 random bytes, base64url: the built-in CA key password when none is typed.
fn generate_password() -> Result<String, InitError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| InitError::Io(std::io::Error::other("no system randomness")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Paths of the files `init` writes for the configuration `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// The configuration.
    pub config: PathBuf,
    /// The password file (mode 0600) beside it.
    pub secret: PathBuf,
}

impl Outputs {
    /// `FILE` and `FILE-STEM.ca-password` / `.adcs-password` beside it;
    /// `file` is made absolute (the configuration names the password file
    /// by its absolute path).
    pub fn new(file: &Path, adcs: bool) -> std::io::Result<Self> {
        let config = std::path::absolute(file)?;
        let stem = config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into());
        let secret = config.with_file_name(format!(
            "{stem}.{}-password",
            if adcs { "adcs" } else { "ca" }
        ));
        Ok(Outputs { config, secret })
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn y(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A YAML flow sequence of quoted scalars.
fn ylist<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| y(s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// Name rules of the issuance policy: names under each zone with 1..depth
/// labels in front and, with wildcards, `*.zone` and wildcards in subzones.
pub fn name_rules(zones: &[String], depth: u8, wildcards: bool) -> Vec<String> {
    let mut rules = Vec::new();
    for z in zones {
        rules.push(format!(".{z}/{depth}"));
        if wildcards {
            rules.push(format!("*.{z}"));
            if depth > 1 {
                rules.push(format!("*..{z}/{}", depth - 1));
            }
        }
    }
    rules
}

/// The configuration for `answers`, the password file being `secret`.
pub fn render(a: &Answers, secret: &Path) -> String {
    let secret = secret.display().to_string();
    let (authority_name, authority) = match &a.authority {
        AuthorityAnswers::Builtin {
            common_name,
            key_type,
            ..
        } => (
            "builtin",
            format!(
                "  - name: builtin\n    type: builtin\n    configuration:\n      common-name: {}\n      key-type: {key_type}\n      # Encrypts the CA keys; mode 0600, readable by certeasy only.\n      password-file: {}\n",
                y(common_name),
                y(&secret)
            ),
        ),
        AuthorityAnswers::Adcs {
            ca_name,
            template,
            method,
            domain,
            realm,
            username,
            keytab,
            epm_port,
            ..
        } => {
            let mut auth = format!(
                "        method: {method}\n        domain: {}\n        username: {}\n",
                y(domain),
                y(username)
            );
            if !realm.is_empty() {
                auth.push_str(&format!(
                    "        # The KDCs are found by DNS: _kerberos._tcp.<realm> SRV records.\n        realm: {}\n",
                    y(realm)
                ));
            }
            if keytab.is_empty() {
                auth.push_str(&format!(
                    "        # The service account's password; mode 0600, readable by certeasy only.\n        password-file: {}\n",
                    y(&secret)
                ));
            } else {
                auth.push_str(&format!(
                    "        # No password: the service account's keys (readable by certeasy only).\n        keytab: {}\n",
                    y(keytab)
                ));
            }
            (
                "adcs",
                format!(
                    "  - name: adcs\n    type: adcs\n    configuration:\n      ca-name: {}\n      certificate-template: {}\n      endpoint-mapper-port: {epm_port}\n      auth:\n{auth}",
                    y(ca_name),
                    y(template),
                ),
            )
        }
    };
    let tls = match &a.tls {
        TlsAnswers::Pki => format!(
            "      mode: pki            # issued by the authority below, renewed by certeasy\n      authority: {authority_name}\n"
        ),
        TlsAnswers::Files { cert, key } => format!(
            "      mode: files          # reloaded when the files change\n      local-cert-file: {}\n      local-key-file: {}\n",
            y(cert),
            y(key)
        ),
        TlsAnswers::Acme {
            directory,
            contact,
            ca_root,
        } => {
            let mut t = format!(
                "      mode: acme           # from an external ACME CA, validated over tls-alpn-01 on this listener\n      directory-url: {}\n",
                y(directory)
            );
            if !contact.is_empty() {
                t.push_str(&format!("      contact: [{}]\n", y(&format!("mailto:{contact}"))));
            }
            if !ca_root.is_empty() {
                t.push_str(&format!("      ca-root: {}\n", y(ca_root)));
            }
            t
        }
    };
    format!(
        "# certeasy configuration written by `certeasy init`.\n\
         # Reference: docs/configuration.md. Check it with `certeasy validate -f FILE`.\n\
         \n\
         workdir: {workdir}\n\
         \n\
         server:\n  url: [{url}]\n  listen: {listen}\n\
         \n\
         database:\n  type: sqlite\n  path: {database}\n\
         \n\
         tls-certificate-manager:\n  bundles:\n    - name: listener\n{tls}\
         \n\
         dns-validation-profiles:\n  - name: default\n    timeout: 10s\n    zones:\n      # This machine's resolver (/etc/resolv.conf).\n      - suffixes: [\".\"]\n        system: true\n    resolved-ip-policy:\n      # Only these networks are contacted for http-01 and tls-alpn-01.\n      allow-cidrs: {cidrs}\n\
         \n\
         authorities:\n{authority}\
         \n\
         issuance-policies:\n  - name: default\n    dns:\n      allow: {rules}\n",
        workdir = y(&a.workdir),
        url = y(&a.url),
        listen = y(&a.listen),
        database = y(&a.database),
        cidrs = ylist(&a.allow_cidrs),
        rules = ylist(&name_rules(&a.zones, a.depth, a.wildcards)),
    )
}

/// Why writing failed.
#[derive(Debug)]
pub enum WriteError {
    /// A file exists and `--force` was not given (exit 2).
    Exists(PathBuf),
    /// The file system refused (exit 1).
    Io(PathBuf, std::io::Error),
    /// What was written does not load (exit 2): a bug of the wizard.
    Invalid(crate::config::ConfigError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Exists(p) => write!(
                f,
                "{} exists; nothing was written (use --force to replace it)",
                p.display()
            ),
            WriteError::Io(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            WriteError::Invalid(e) => write!(f, "the configuration written does not load:\n{e}"),
        }
    }
}

/// Refuses files that exist, unless `force`.
pub fn check_free(out: &Outputs, force: bool) -> Result<(), WriteError> {
    if force {
        return Ok(());
    }
    for p in [&out.config, &out.secret] {
        if p.exists() {
            return Err(WriteError::Exists(p.clone()));
        }
    }
    Ok(())
}

/// Writes `content` to `path`: a new file unless `force`, with `mode`.
fn write_file(path: &Path, content: &[u8], mode: u32, force: bool) -> Result<(), WriteError> {
    let io = |e| WriteError::Io(path.to_path_buf(), e);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            WriteError::Exists(path.to_path_buf())
        } else {
            io(e)
        }
    })?;
    // An existing file (--force) keeps its mode through open(): set it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    f.write_all(content).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes the password file (0600) and the configuration, then loads the
/// configuration exactly as `validate` does.
pub fn write(a: &Answers, out: &Outputs, force: bool) -> Result<crate::config::Config, WriteError> {
    check_free(out, force)?;
    let password = match &a.authority {
        AuthorityAnswers::Builtin { password, .. } | AuthorityAnswers::Adcs { password, .. } => {
            password
        }
    };
    // No password file for an account authenticated by its keytab.
    let with_secret =
        !matches!(&a.authority, AuthorityAnswers::Adcs { keytab, .. } if !keytab.is_empty());
    if with_secret {
        write_file(
            &out.secret,
            format!("{}\n", password.0).as_bytes(),
            0o600,
            force,
        )?;
    }
    let yaml = render(a, &out.secret);
    if let Err(e) = write_file(&out.config, yaml.as_bytes(), 0o644, force) {
        if !force && with_secret {
            let _ = std::fs::remove_file(&out.secret);
        }
        return Err(e);
    }
    crate::config::load(&out.config).map_err(WriteError::Invalid)
}

/// The commands to run next.
pub fn next_steps(a: &Answers, out: &Outputs, workdir: &Path) -> String {
    let f = out.config.display();
    let mut s = format!("Configuration written to {f} (validated).\n");
    match &a.authority {
        AuthorityAnswers::Adcs { keytab, .. } if !keytab.is_empty() => s.push_str(&format!(
            "Keytab: {keytab} (make it readable by the certeasy user only).\n"
        )),
        _ => s.push_str(&format!(
            "Password file: {} (mode 0600; make it readable by the certeasy user only).\n",
            out.secret.display()
        )),
    }
    s.push_str(&format!("\nNext:\n  certeasy validate -f {f}\n"));
    if matches!(a.authority, AuthorityAnswers::Adcs { .. }) {
        s.push_str(&format!("  certeasy adcs check -f {f}\n"));
    }
    s.push_str(&format!(
        "  certeasy serve -f {f}\n\nACME directory for clients: {}/acme/directory\n",
        a.url
    ));
    if matches!(a.authority, AuthorityAnswers::Builtin { .. }) {
        s.push_str(&format!(
            "Clients must trust the built-in CA root, written at first start to {}:\n  sudo cp {} /usr/local/share/ca-certificates/certeasy-root.crt && sudo update-ca-certificates\n",
            workdir.join("ca/root.pem").display(),
            workdir.join("ca/root.pem").display()
        ));
    }
    s
}

/// `--script`: answers read from a reader, one per line.
pub struct ScriptPrompter<R> {
    input: R,
    line: usize,
}

impl<R: BufRead> ScriptPrompter<R> {
    /// Answers from `input`.
    pub fn new(input: R) -> Self {
        ScriptPrompter { input, line: 0 }
    }

    fn next_line(&mut self, question: Question) -> Result<String, InitError> {
        let mut s = String::new();
        let n = self.input.read_line(&mut s).map_err(InitError::Io)?;
        if n == 0 {
            return Err(InitError::Eof { question });
        }
        self.line += 1;
        while s.ends_with(['\n', '\r']) {
            s.pop();
        }
        Ok(s)
    }
}

impl<R: BufRead> Prompter for ScriptPrompter<R> {
    fn ask(
        &mut self,
        question: Question,
        default: &str,
        check: &dyn Fn(&str) -> Checked,
    ) -> Result<String, InitError> {
        let raw = self.next_line(question)?;
        let answer = if raw.trim().is_empty() { default } else { &raw };
        check(answer).map_err(|message| InitError::Invalid {
            line: self.line,
            question,
            message: if raw.trim().is_empty() && default.is_empty() {
                "no default: an answer is required".into()
            } else {
                message
            },
        })
    }

    fn password(
        &mut self,
        question: Question,
        allow_empty: bool,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, InitError> {
        let raw = self.next_line(question)?;
        if raw.is_empty() && allow_empty {
            return Ok(raw);
        }
        check(&raw).map_err(|message| InitError::Invalid {
            line: self.line,
            question,
            message,
        })?;
        Ok(raw)
    }
}

/// Interactive prompts on the terminal (dialoguer, on standard error).
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(
        &mut self,
        question: Question,
        default: &str,
        check: &dyn Fn(&str) -> Checked,
    ) -> Result<String, InitError> {
        let mut input = dialoguer::Input::<String>::new()
            .with_prompt(question.prompt)
            .allow_empty(true)
            .validate_with(|s: &String| -> Result<(), String> {
                if s.trim().is_empty() && default.is_empty() {
                    return Err("an answer is required".into());
                }
                let answer = if s.trim().is_empty() { default } else { s };
                check(answer).map(|_| ())
            });
        if !default.is_empty() {
            input = input.default(default.to_string());
        }
        let raw = input.interact_text().map_err(dialoguer_io)?;
        let answer = if raw.trim().is_empty() { default } else { &raw };
        check(answer).map_err(|m| InitError::Io(std::io::Error::other(m)))
    }

    fn password(
        &mut self,
        question: Question,
        allow_empty: bool,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, InitError> {
        loop {
            let pw = dialoguer::Password::new()
                .with_prompt(question.prompt)
                .allow_empty_password(allow_empty)
                .with_confirmation("Repeat it", "the two passwords differ; again")
                .interact()
                .map_err(dialoguer_io)?;
            if pw.is_empty() && allow_empty {
                return Ok(pw);
            }
            match check(&pw) {
                Ok(()) => return Ok(pw),
                Err(m) => eprintln!("error: {m}"),
            }
        }
    }
}

fn dialoguer_io(e: dialoguer::Error) -> InitError {
    match e {
        dialoguer::Error::IO(e) => InitError::Io(e),
    }
}

/// `certeasy init` with the answers from `prompter`; messages go to `out`.
/// Returns the exit code: 0 done, 1 I/O failure or a failed `adcs check`,
/// 2 a refused answer in a script, an existing file, or a bug.
pub fn run_with(args: &InitArgs, prompter: &mut dyn Prompter, out: &mut dyn Write) -> u8 {
    let probe = match Outputs::new(&args.file, false) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(out, "certeasy init: {}: {e}", args.file.display());
            return 2;
        }
    };
    // Refuse before asking anything, and again when writing.
    if !args.force && probe.config.exists() {
        let _ = writeln!(out, "certeasy init: {}", WriteError::Exists(probe.config));
        return 2;
    }
    let ctx = Context::for_file(&probe.config);
    let answers = match wizard(prompter, &ctx) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(out, "certeasy init: {e}; nothing was written");
            return match e {
                InitError::Io(_) => 1,
                _ => 2,
            };
        }
    };
    let adcs = matches!(answers.authority, AuthorityAnswers::Adcs { .. });
    let outputs = match Outputs::new(&args.file, adcs) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(out, "certeasy init: {}: {e}", args.file.display());
            return 2;
        }
    };
    let config = match write(&answers, &outputs, args.force) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "certeasy init: {e}");
            return match e {
                WriteError::Io(..) => 1,
                _ => 2,
            };
        }
    };
    for w in &config.warnings {
        let _ = writeln!(out, "warning: {}", w.in_file(&outputs.config));
    }
    let _ = write!(out, "{}", next_steps(&answers, &outputs, &config.workdir));
    if let AuthorityAnswers::Adcs { check: true, .. } = answers.authority {
        let _ = writeln!(
            out,
            "\nRunning certeasy adcs check -f {} …",
            outputs.config.display()
        );
        let _ = out.flush();
        if super::adcs::check(&outputs.config, None, false) != ExitCode::SUCCESS {
            let _ = writeln!(
                out,
                "certeasy init: the configuration is written and valid, but adcs check failed (above); fix the CA side or the answers, then run certeasy adcs check -f {}",
                outputs.config.display()
            );
            return 1;
        }
    }
    0
}

/// `certeasy init`.
pub fn run(args: &InitArgs) -> ExitCode {
    let mut stdout = std::io::stdout();
    let code = if args.script {
        let stdin = std::io::stdin();
        run_with(args, &mut ScriptPrompter::new(stdin.lock()), &mut stdout)
    } else if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        eprintln!(
            "certeasy init: standard input is not a terminal; use --script to read the answers from it (docs/init.md)"
        );
        2
    } else {
        run_with(args, &mut TerminalPrompter, &mut stdout)
    };
    ExitCode::from(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answers(authority: AuthorityAnswers, tls: TlsAnswers) -> Answers {
        Answers {
            listen: "127.0.0.1:8443".into(),
            url: "https://localhost:8443".into(),
            workdir: "%CONFIGDIR%/w".into(),
            database: "%WORKDIR%/db.sqlite".into(),
            authority,
            zones: vec!["corp.example".into(), "localhost".into()],
            depth: 3,
            wildcards: true,
            allow_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            tls,
        }
    }

    fn builtin() -> AuthorityAnswers {
        AuthorityAnswers::Builtin {
            common_name: "Corp \"test\" CA".into(),
            key_type: "ecdsa-p384".into(),
            password: Secret("pw: with # yaml".into()),
        }
    }

    #[test]
    fn name_rules_follow_depth_and_wildcards() {
        let z = vec!["corp.example".to_string()];
        assert_eq!(name_rules(&z, 3, false), vec![".corp.example/3"]);
        assert_eq!(
            name_rules(&z, 3, true),
            vec![".corp.example/3", "*.corp.example", "*..corp.example/2"]
        );
        assert_eq!(
            name_rules(&z, 1, true),
            vec![".corp.example/1", "*.corp.example"]
        );
    }

    #[test]
    fn the_rendered_configuration_loads_and_holds_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let out = Outputs::new(&dir.path().join("c.yml"), false).unwrap();
        assert_eq!(out.secret, dir.path().join("c.ca-password"));
        let a = answers(
            builtin(),
            TlsAnswers::Files {
                cert: "/etc/ssl/c.pem".into(),
                key: "/etc/ssl/k.pem".into(),
            },
        );
        let config = write(&a, &out, false).unwrap();
        assert_eq!(config.workdir, dir.path().join("w"));
        let yaml = std::fs::read_to_string(&out.config).unwrap();
        assert!(!yaml.contains("pw: with"), "{yaml}");
        assert!(yaml.contains("\"Corp \\\"test\\\" CA\""), "{yaml}");
        assert_eq!(
            std::fs::read_to_string(&out.secret).unwrap(),
            "pw: with # yaml\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out.secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second run refuses, and leaves both files alone.
        let e = write(&a, &out, false).unwrap_err();
        assert!(matches!(e, WriteError::Exists(_)), "{e}");
        assert!(e.to_string().contains("--force"));
        assert_eq!(std::fs::read_to_string(&out.config).unwrap(), yaml);
        // --force replaces them.
        let mut b = a.clone();
        b.listen = "127.0.0.1:9443".into();
        write(&b, &out, true).unwrap();
        assert!(std::fs::read_to_string(&out.config)
            .unwrap()
            .contains("127.0.0.1:9443"));
    }

    #[test]
    fn an_adcs_configuration_loads() {
        let dir = tempfile::tempdir().unwrap();
        let out = Outputs::new(&dir.path().join("c.yml"), true).unwrap();
        let a = answers(
            AuthorityAnswers::Adcs {
                ca_name: "ca01.corp.example\\Corp CA".into(),
                template: "WebServer".into(),
                method: "negotiate".into(),
                domain: "CORP".into(),
                realm: String::new(),
                username: "svc-acme".into(),
                keytab: String::new(),
                password: Secret("S3cret!".into()),
                epm_port: 135,
                check: false,
            },
            TlsAnswers::Pki,
        );
        let config = write(&a, &out, false).unwrap();
        assert_eq!(config.authorities.len(), 1);
        let yaml = std::fs::read_to_string(&out.config).unwrap();
        assert!(!yaml.contains("S3cret"), "{yaml}");
        assert!(yaml.contains("password-file"), "{yaml}");
    }

    #[test]
    fn an_acme_listener_configuration_loads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme-root.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["acme.corp.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&root, ca.pem()).unwrap();
        let out = Outputs::new(&dir.path().join("c.yml"), false).unwrap();
        let mut a = answers(
            builtin(),
            TlsAnswers::Acme {
                directory: "https://acme.corp.example/directory".into(),
                contact: "pki@corp.example".into(),
                ca_root: root.display().to_string(),
            },
        );
        a.url = "https://certeasy.corp.example".into();
        let config = write(&a, &out, false).unwrap();
        let yaml = std::fs::read_to_string(&out.config).unwrap();
        assert!(yaml.contains("mode: acme"), "{yaml}");
        assert!(yaml.contains("mailto:pki@corp.example"), "{yaml}");
        assert!(matches!(
            &config.tls_bundles[0].source,
            crate::config::TlsSource::Acme(src) if src.directory_url.as_str() == "https://acme.corp.example/directory"
        ));
    }

    #[test]
    fn a_script_chooses_acme_and_its_answers_are_checked() {
        let ctx = Context {
            hostname: "srv.corp.example".into(),
            config_dir: "/etc/certeasy".into(),
        };
        let head = "\n\n\n\n\n\n\ntyped\n\n\n\n\nacme\n";
        let input = format!("{head}https://acme.corp.example/dir\nmailto:pki@corp.example\n\n");
        let a = wizard(&mut ScriptPrompter::new(input.as_bytes()), &ctx).unwrap();
        assert_eq!(
            a.tls,
            TlsAnswers::Acme {
                directory: "https://acme.corp.example/dir".into(),
                contact: "pki@corp.example".into(),
                ca_root: String::new(),
            }
        );
        let input = format!("{head}https://acme.corp.example/dir\nnot an address\n\n");
        let e = wizard(&mut ScriptPrompter::new(input.as_bytes()), &ctx).unwrap_err();
        assert!(e.to_string().contains("tls-acme-contact"), "{e}");
        let input = format!("{head}http://acme.corp.example/dir\n\n\n");
        let e = wizard(&mut ScriptPrompter::new(input.as_bytes()), &ctx).unwrap_err();
        assert!(e.to_string().contains("tls-acme-directory"), "{e}");
    }

    #[test]
    fn a_kerberos_account_with_a_keytab_needs_no_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let keytab = crate::config::tests::keytab_file(dir.path());
        let out = Outputs::new(&dir.path().join("c.yml"), false).unwrap();
        let a = answers(
            AuthorityAnswers::Adcs {
                ca_name: "ca.corp.test\\LAB-CA".into(),
                template: "WebServer".into(),
                method: "kerberos".into(),
                domain: "CORP".into(),
                realm: "CORP.TEST".into(),
                username: "alice".into(),
                keytab: keytab.display().to_string(),
                password: Secret(String::new()),
                epm_port: 135,
                check: false,
            },
            TlsAnswers::Pki,
        );
        let config = write(&a, &out, false).unwrap();
        assert!(!out.secret.exists(), "no password file");
        let yaml = std::fs::read_to_string(&out.config).unwrap();
        assert!(
            yaml.contains("realm: \"CORP.TEST\"") && yaml.contains("keytab:"),
            "{yaml}"
        );
        assert!(!yaml.contains("password-file"), "{yaml}");
        let crate::config::AuthorityKind::Adcs(s) = &config.authorities[0].kind else {
            panic!("not adcs")
        };
        assert!(s.discovers_kdc(), "the KDC comes from DNS SRV");
        assert!(next_steps(&a, &out, dir.path()).contains("Keytab: "));
    }

    #[test]
    fn kerberos_answers_realm_and_keytab_in_a_script() {
        let ctx = Context {
            hostname: "srv".into(),
            config_dir: "/etc/certeasy".into(),
        };
        let head = "\n\n\n\nadcs\nca01.corp.example\\Corp CA\n\nkerberos\nCORP\n";
        // The realm defaults to the CA host's DNS domain; a keytab skips
        // the password.
        let input = format!("{head}\nsvc\n/etc/certeasy/svc.keytab\n\n\n\n\n\n\nno\n");
        let a = wizard(&mut ScriptPrompter::new(input.as_bytes()), &ctx).unwrap();
        let AuthorityAnswers::Adcs {
            realm,
            keytab,
            password,
            ..
        } = &a.authority
        else {
            panic!("not adcs")
        };
        assert_eq!(realm, "CORP.EXAMPLE");
        assert_eq!(keytab, "/etc/certeasy/svc.keytab");
        assert!(password.0.is_empty());
        let e = wizard(
            &mut ScriptPrompter::new(format!("{head}not a realm!\n").as_bytes()),
            &ctx,
        )
        .unwrap_err();
        assert!(e.to_string().contains("adcs-realm"), "{e}");
        assert_eq!(q::default_realm("corp.test", "x\\CA"), "CORP.TEST");
        assert_eq!(q::default_realm("CORP", "10.0.0.5\\CA"), "");
        assert_eq!(q::default_realm("CORP", "ca01\\CA"), "");
    }

    #[test]
    fn a_script_takes_defaults_on_empty_lines_and_stops_on_a_bad_answer() {
        let ctx = Context {
            hostname: "srv".into(),
            config_dir: "/etc/certeasy".into(),
        };
        // Every default, and "typed" CA password.
        let input = "\n\n\n\n\n\n\ntyped\n\n\n\n\n\n";
        let a = wizard(&mut ScriptPrompter::new(input.as_bytes()), &ctx).unwrap();
        assert_eq!(a.listen, "0.0.0.0:8443");
        assert_eq!(a.url, "https://srv:8443");
        assert_eq!(a.workdir, "/var/lib/certeasy");
        assert_eq!(a.zones, vec!["srv".to_string()]);
        assert!(!a.wildcards);
        assert_eq!(a.tls, TlsAnswers::Pki);
        assert!(matches!(
            &a.authority,
            AuthorityAnswers::Builtin { password, .. } if password.0 == "typed"
        ));
        // An empty password is generated.
        let input = "\n\n\n\n\n\n\n\n\n\n\n\n\n";
        let a = wizard(&mut ScriptPrompter::new(input.as_bytes()), &ctx).unwrap();
        assert!(matches!(
            &a.authority,
            AuthorityAnswers::Builtin { password, .. } if password.0.len() >= 40
        ));
        // A bad answer names its line and question.
        let e = wizard(&mut ScriptPrompter::new("\nftp://x\n".as_bytes()), &ctx).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("line 2: url") && msg.contains("https://"),
            "{msg}"
        );
        // Too few lines.
        let e = wizard(&mut ScriptPrompter::new("\n\n".as_bytes()), &ctx).unwrap_err();
        assert!(e.to_string().contains("workdir"), "{e}");
        // The secret never shows in Debug.
        assert!(!format!("{a:?}").contains("password: Secret(\""));
    }
}
