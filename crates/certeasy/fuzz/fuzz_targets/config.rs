//! The configuration loader (`certeasy validate` and `serve` call it on the
//! file's text) never panics, whatever the YAML, and every problem it
//! reports names a line inside the file.
//!
//! `load_str` is the loader minus the read of the file itself. The path is
//! one that does not exist, so `%CONFIGDIR%` names nothing; files a
//! configuration names (password files, CA chains) are read as the loader
//! reads them.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `load` reads the file with read_to_string: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/certeasy-fuzz/certeasy.yml");
    match certeasy::config::load_str(text, path) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            assert!(!e.issues.is_empty(), "an error without an issue");
            // YAML breaks lines at \n, \r\n and a lone \r; an error may
            // point just past the last line (end of input).
            let breaks = text.bytes().filter(|b| *b == b'\n' || *b == b'\r').count();
            for issue in &e.issues {
                if let Some(line) = issue.line {
                    assert!(
                        (1..=breaks + 2).contains(&line),
                        "issue {issue:?} names line {line} of a text with {breaks} line breaks"
                    );
                }
            }
            let _ = e.to_string();
        }
    }
});
