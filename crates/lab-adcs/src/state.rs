//! Request database: a JSON snapshot (`state.json` in the state directory)
//! and a journal of JSON lines beside it (`journal-<generation>.jsonl`, one
//! full request record per change).
//!
//! Chosen over SQLite for a lab tool: human-readable, no extra dependency.
//! A change appends one line to the journal (it used to rewrite the whole
//! file, which made every request cost O(requests)); the state is kept in
//! memory and brought up to date by reading only what other processes
//! appended since (`lab-adcs approve|deny` and the running server see each
//! other's changes). When the journal passes [`COMPACT_AFTER`] records the
//! snapshot is rewritten atomically (temporary file, rename) with the next
//! generation and the old journal removed; a process whose journal has
//! disappeared reloads the snapshot. Concurrent writers in two processes in
//! the same instant could lose an update; this is a lab tool.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Status of a request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting for approve/deny.
    Pending,
    /// Certificate issued.
    Issued,
    /// Denied (see `hresult`).
    Denied,
}

/// One request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct RequestRecord {
    /// Request id.
    pub id: u32,
    /// Template requested.
    pub template: String,
    /// `DOMAIN\user` of the requester.
    pub requester: String,
    /// Status.
    pub status: Status,
    /// CSR (base64 DER).
    pub csr: String,
    /// Certificate (base64 DER) once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// HRESULT when denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hresult: Option<u32>,
    /// Disposition message.
    pub message: String,
    /// Set once the issued certificate was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
}

/// A revocation recorded by `ICertAdminD::RevokeCertificate`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Revocation {
    /// CRL reason code (RFC 5280 5.3.1).
    pub reason: u32,
    /// Effective date, seconds since the Unix epoch.
    pub effective: i64,
    /// `DOMAIN\user` who revoked.
    pub by: String,
}

/// RFC 5280 name of a CRL reason code.
pub fn reason_name(code: u32) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown",
    }
}

/// Normalises a hexadecimal serial number for comparison: lower case, no
/// separators, no leading zeros.
pub fn normalize_serial(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_ascii_lowercase();
    let t = t.trim_start_matches("0x");
    let t = t.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

impl RequestRecord {
    /// CSR DER.
    pub fn csr_der(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.csr)
            .unwrap_or_default()
    }
    /// Serial number of the issued certificate, lower-case hex without leading zeros.
    pub fn serial_hex(&self) -> Option<String> {
        use der::Decode;
        let der = self.cert_der()?;
        let c = x509_cert::Certificate::from_der(&der).ok()?;
        let hex: String = c
            .tbs_certificate()
            .serial_number()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(normalize_serial(&hex))
    }

    /// Certificate DER.
    pub fn cert_der(&self) -> Option<Vec<u8>> {
        self.cert
            .as_ref()
            .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
    }
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    /// Generation of the snapshot: its journal is `journal-<generation>.jsonl`.
    #[serde(default)]
    pub generation: u64,
    /// Last id handed out.
    pub last_id: u32,
    /// Requests by id.
    pub requests: BTreeMap<u32, RequestRecord>,
}

/// State file errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Corrupt JSON.
    #[error("{path}: corrupt state file: {source}")]
    Json {
        /// File.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

/// Journal records after which the snapshot is rewritten.
pub const COMPACT_AFTER: usize = 1000;

/// Handle on the state directory's snapshot and journal. Clones share one
/// in-memory copy.
#[derive(Debug, Clone)]
pub struct StateFile {
    dir: PathBuf,
    path: PathBuf,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Debug, Default)]
struct Cache {
    loaded: bool,
    state: State,
    /// Octets of the journal already applied.
    offset: u64,
    /// Records in the journal.
    journal_records: usize,
    /// Length and modification time of the snapshot when it was loaded.
    snapshot: Option<(u64, std::time::SystemTime)>,
}

impl StateFile {
    /// `dir/state.json` and its journal.
    pub fn new(dir: &Path) -> Self {
        StateFile {
            dir: dir.to_path_buf(),
            path: dir.join("state.json"),
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    /// Path of the snapshot.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn journal(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("journal-{generation}.jsonl"))
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
        move |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Brings `c` up to date: the snapshot when not loaded yet (or when the
    /// journal was compacted away by another process), then the journal
    /// lines appended since the last look.
    fn refresh(&self, c: &mut Cache) -> Result<(), StateError> {
        let stamp = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        };
        // the snapshot changes only at a compaction (ours or another
        // process's): then reload it
        if c.loaded && stamp(&self.path) != c.snapshot {
            c.loaded = false;
        }
        if !c.loaded {
            c.snapshot = stamp(&self.path);
            c.state = match std::fs::read(&self.path) {
                Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::Json {
                    path: self.path.clone(),
                    source,
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
                Err(e) => return Err(Self::io(&self.path)(e)),
            };
            c.offset = 0;
            c.journal_records = 0;
            c.loaded = true;
        }
        let journal = self.journal(c.state.generation);
        let mut f = match std::fs::File::open(&journal) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Self::io(&journal)(e)),
        };
        f.seek(std::io::SeekFrom::Start(c.offset))
            .map_err(Self::io(&journal))?;
        let mut new = Vec::new();
        f.read_to_end(&mut new).map_err(Self::io(&journal))?;
        // only whole lines: a writer may be half-way through one
        let whole = new.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        for line in new[..whole]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let rec: RequestRecord =
                serde_json::from_slice(line).map_err(|source| StateError::Json {
                    path: journal.clone(),
                    source,
                })?;
            c.state.last_id = c.state.last_id.max(rec.id);
            c.state.requests.insert(rec.id, rec);
            c.journal_records += 1;
        }
        c.offset += whole as u64;
        Ok(())
    }

    /// Reads the state (empty when nothing was recorded yet).
    pub fn read(&self) -> Result<State, StateError> {
        self.view(State::clone)
    }

    /// Runs `f` on the current state without copying it.
    pub fn view<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T, StateError> {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh(&mut c)?;
        Ok(f(&c.state))
    }

    /// Changes one request: `f` gets the current state and returns the
    /// record it inserted or changed (or an error, which records nothing),
    /// and that record is appended to the journal.
    pub fn update<E>(
        &self,
        f: impl FnOnce(&mut State) -> Result<RequestRecord, E>,
    ) -> Result<Result<RequestRecord, E>, StateError> {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh(&mut c)?;
        let last_id = c.state.last_id;
        let rec = match f(&mut c.state) {
            Ok(rec) => rec,
            Err(e) => {
                // an id `f` may have taken before failing is not used
                c.state.last_id = last_id;
                return Ok(Err(e));
            }
        };
        let journal = self.journal(c.state.generation);
        let mut line = serde_json::to_vec(&rec).map_err(|source| StateError::Json {
            path: journal.clone(),
            source,
        })?;
        line.push(b'\n');
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal)
            .map_err(Self::io(&journal))?;
        // one write of the whole line: appends of other processes do not
        // interleave with it
        f.write_all(&line).map_err(Self::io(&journal))?;
        // The line is read back (and applied again, idempotently) at the
        // next refresh, so lines other processes appended meanwhile are not
        // skipped.
        if c.journal_records + 1 >= COMPACT_AFTER {
            self.compact(&mut c)?;
        }
        Ok(Ok(rec))
    }

    /// Rewrites the snapshot with the next generation and drops the journal.
    fn compact(&self, c: &mut Cache) -> Result<(), StateError> {
        self.refresh(c)?;
        let old = self.journal(c.state.generation);
        c.state.generation += 1;
        let tmp = self.path.with_extension("json.tmp");
        let json = serde_json::to_vec(&c.state).map_err(|source| StateError::Json {
            path: self.path.clone(),
            source,
        })?;
        std::fs::write(&tmp, json).map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(Self::io(&self.path))?;
        let _ = std::fs::remove_file(&old);
        c.offset = 0;
        c.journal_records = 0;
        c.snapshot = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        Ok(())
    }
}

/// base64 of DER, for records.
pub fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path());
        assert_eq!(f.read().unwrap(), State::default());
        let id = f
            .update(|s| -> Result<RequestRecord, ()> {
                s.last_id += 1;
                let id = s.last_id;
                s.requests.insert(
                    id,
                    RequestRecord {
                        id,
                        template: "T".into(),
                        requester: "CORP\\alice".into(),
                        status: Status::Pending,
                        csr: b64(&[1, 2]),
                        cert: None,
                        hresult: None,
                        message: "Taken Under Submission".into(),
                        revocation: None,
                    },
                );
                Ok(s.requests[&id].clone())
            })
            .unwrap()
            .unwrap()
            .id;
        let s = f.read().unwrap();
        assert_eq!(s.requests[&id].csr_der(), vec![1, 2]);
        assert_eq!(s.requests[&id].status, Status::Pending);
    }

    fn record(id: u32, status: Status) -> RequestRecord {
        RequestRecord {
            id,
            template: "T".into(),
            requester: "CORP\\alice".into(),
            status,
            csr: b64(&[id as u8]),
            cert: None,
            hresult: None,
            message: String::new(),
            revocation: None,
        }
    }

    fn add(f: &StateFile) -> u32 {
        f.update(|s| -> Result<RequestRecord, ()> {
            s.last_id += 1;
            let r = record(s.last_id, Status::Pending);
            s.requests.insert(r.id, r.clone());
            Ok(r)
        })
        .unwrap()
        .unwrap()
        .id
    }

    #[test]
    fn two_handles_see_each_others_changes_as_two_processes_would() {
        let dir = tempfile::tempdir().unwrap();
        let server = StateFile::new(dir.path());
        let cli = StateFile::new(dir.path()); // its own cache, like another process
        let a = add(&server);
        let b = add(&cli);
        assert_ne!(a, b, "ids come from the shared journal");
        cli.update(|s| -> Result<RequestRecord, ()> {
            let r = s.requests.get_mut(&a).unwrap();
            r.status = Status::Issued;
            Ok(r.clone())
        })
        .unwrap()
        .unwrap();
        let s = server.read().unwrap();
        assert_eq!(s.requests[&a].status, Status::Issued);
        assert_eq!(s.requests.len(), 2);
        // a failed change records nothing
        let e = server
            .update(|s| -> Result<RequestRecord, &str> {
                s.last_id += 1;
                Err("refused")
            })
            .unwrap();
        assert!(e.is_err());
        assert_eq!(add(&server), b + 1);
    }

    #[test]
    fn the_journal_is_compacted_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path());
        let other = StateFile::new(dir.path());
        assert_eq!(add(&other), 1);
        for _ in 0..COMPACT_AFTER + 5 {
            add(&f);
        }
        let snap: State =
            serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
        assert_eq!(snap.generation, 1);
        assert!(!dir.path().join("journal-0.jsonl").exists());
        let lines = std::fs::read_to_string(dir.path().join("journal-1.jsonl")).unwrap();
        assert!(
            lines.lines().count() < 10,
            "journal restarted after compaction"
        );
        // the other handle notices the compaction and reloads
        let s = other.read().unwrap();
        assert_eq!(s.requests.len(), COMPACT_AFTER + 6);
        assert_eq!(s.last_id as usize, COMPACT_AFTER + 6);
    }
}
