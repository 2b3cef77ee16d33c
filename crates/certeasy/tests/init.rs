//! `certeasy init --script`, in process (the shared target directory's
//! binary may be rebuilt by others while a test runs): the answers of
//! docs/init.md on a reader, the configuration written loaded back with
//! `certeasy::config::load`. The terminal mode is driven through a
//! pseudo-terminal by scripts/init-pty.py.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::Path;

use certeasy::cli::init::{run_with, InitArgs, ScriptPrompter};

fn args(file: &Path, force: bool) -> InitArgs {
    InitArgs {
        file: file.to_path_buf(),
        force,
        script: true,
    }
}

/// Runs `init --script` with `answers` (one per line); exit code and output.
fn init(file: &Path, force: bool, answers: &[&str]) -> (u8, String) {
    let input = answers.iter().map(|a| format!("{a}\n")).collect::<String>();
    let mut out = Vec::new();
    let code = run_with(
        &args(file, force),
        &mut ScriptPrompter::new(input.as_bytes()),
        &mut out,
    );
    (code, String::from_utf8(out).unwrap())
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn script_with_the_builtin_ca_writes_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certeasy.yml");
    let (code, out) = init(
        &file,
        false,
        &[
            "127.0.0.1:9443",          // listen
            "",                        // url: https://localhost:9443
            "",                        // workdir: %CONFIGDIR%/certeasy-workdir
            "",                        // database
            "builtin",                 // authority
            "Example Lab CA",          // ca-common-name
            "ecdsa-p384",              // ca-key-type
            "",                        // ca-password: generated
            "corp.example, localhost", // zones
            "2",                       // depth
            "yes",                     // wildcards
            "",                        // allow-cidrs: loopback
            "",                        // tls-mode: pki
        ],
    );
    assert_eq!(code, 0, "{out}");
    for cmd in ["certeasy validate -f", "certeasy serve -f", "ca/root.pem"] {
        assert!(out.contains(cmd), "{cmd} missing from: {out}");
    }
    let config = certeasy::config::load(&file).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9443");
    assert_eq!(config.server.urls[0].as_str(), "https://localhost:9443/");
    assert_eq!(config.workdir, dir.path().join("certeasy-workdir"));
    assert_eq!(config.authorities.len(), 1);
    let yaml = std::fs::read_to_string(&file).unwrap();
    for rule in [
        ".corp.example/2",
        "*.corp.example",
        "*..corp.example/1",
        ".localhost/2",
    ] {
        assert!(yaml.contains(rule), "{rule} missing from:\n{yaml}");
    }
    // The generated password is in the 0600 file, not in the YAML.
    let secret = dir.path().join("certeasy.ca-password");
    assert_eq!(mode(&secret), 0o600);
    let pw = std::fs::read_to_string(&secret).unwrap();
    assert!(pw.trim().len() >= 40);
    assert!(!yaml.contains(pw.trim()) && !out.contains(pw.trim()));
    assert!(yaml.contains(&secret.display().to_string()));

    // A second run refuses before asking anything and changes nothing.
    let (code, out) = init(&file, false, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("exists") && out.contains("--force"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml);
}

#[test]
fn script_refuses_a_bad_answer_with_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yml");
    let (code, out) = init(&file, false, &["localhost:8443"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("standard input line 1: listen") && out.contains("not ip:port"),
        "{out}"
    );
    assert!(out.contains("nothing was written"), "{out}");
    // Too few answers: exit 2, naming the question left unanswered.
    let (code, out) = init(&file, false, &["", "", ""]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("database"), "{out}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn script_with_adcs_writes_a_valid_configuration_and_runs_adcs_check() {
    // The lab CA runs on its own runtime; `adcs check` (run by init) starts
    // another one, so init is called outside of it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lab = rt.block_on(common::lab::lab());
    let epm = lab.running.epm_addr.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adcs.yml");
    let cert = dir.path().join("listener.pem").display().to_string();
    let key = dir.path().join("listener.key").display().to_string();
    let (code, out) = init(
        &file,
        false,
        &[
            "127.0.0.1:9444",
            "https://acme.corp.example:9444",
            "",
            "",
            "adcs",
            "127.0.0.1\\LAB-CA", // adcs-ca-name
            "",                  // adcs-template: WebServer
            "",                  // adcs-auth-method: ntlm
            "CORP",              // adcs-domain
            "alice",             // adcs-username
            "Passw0rd!",         // adcs-password
            &epm,                // adcs-endpoint-mapper-port
            "",                  // zones: corp.example
            "",                  // depth
            "no",                // wildcards
            "10.0.0.0/8",        // allow-cidrs
            "files",             // tls-mode
            &cert,
            &key,
            "yes", // adcs-check
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("certeasy adcs check -f"), "{out}");
    assert!(
        out.contains("https://acme.corp.example:9444/acme/directory"),
        "{out}"
    );
    let config = certeasy::config::load(&file).unwrap();
    assert_eq!(config.authorities.len(), 1);
    assert_eq!(config.authorities[0].name, "adcs");
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(!yaml.contains("Passw0rd!"), "{yaml}");
    assert!(
        yaml.contains(".corp.example/3") && !yaml.contains("*."),
        "{yaml}"
    );
    assert!(yaml.contains(&cert), "{yaml}");
    let secret = dir.path().join("adcs.adcs-password");
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "Passw0rd!\n");

    // A wrong password: written and valid, but adcs check fails (exit 1).
    let (code, out) = init(
        &file,
        true,
        &[
            "127.0.0.1:9444",
            "https://acme.corp.example:9444",
            "",
            "",
            "adcs",
            "127.0.0.1\\LAB-CA",
            "",
            "",
            "CORP",
            "alice",
            "wrong",
            &epm,
            "",
            "",
            "no",
            "10.0.0.0/8",
            "pki",
            "yes",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("adcs check failed"), "{out}");
    certeasy::config::load(&file).unwrap();
    drop(lab);
}
