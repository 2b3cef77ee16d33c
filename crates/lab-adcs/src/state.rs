//! Request database: one JSON file (`state.json` in the state directory).
//!
//! Chosen over SQLite for a lab tool: human-readable, no extra dependency.
//! Every change re-reads the file and replaces it atomically (write to a
//! temporary file, rename), so `lab-adcs approve|deny` from another process
//! and the running server see each other's changes. Concurrent writers in
//! the same instant could lose an update; this is a lab tool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

impl RequestRecord {
    /// CSR DER.
    pub fn csr_der(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.csr)
            .unwrap_or_default()
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

/// Handle on `state.json`.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// `dir/state.json`.
    pub fn new(dir: &Path) -> Self {
        StateFile {
            path: dir.join("state.json"),
        }
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state (empty when the file does not exist).
    pub fn read(&self) -> Result<State, StateError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::Json {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(StateError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Read-modify-write with atomic replacement.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        let mut s = self.read()?;
        let out = f(&mut s);
        let tmp = self.path.with_extension("json.tmp");
        let io = |source| StateError::Io {
            path: tmp.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(&s).map_err(|source| StateError::Json {
            path: self.path.clone(),
            source,
        })?;
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(|source| StateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(out)
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
            .update(|s| {
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
                    },
                );
                id
            })
            .unwrap();
        let s = f.read().unwrap();
        assert_eq!(s.requests[&id].csr_der(), vec![1, 2]);
        assert_eq!(s.requests[&id].status, Status::Pending);
    }
}
