//! `certeasy audit verify`: walks the segments in order and reports the
//! first break — file, line, reason.
//!
//! Each line must verify under the installation's key, continue the chain
//! (`prev_mac` = the previous line's `mac`, the first line's = the genesis
//! MAC of its node) and carry the next `seq`. The kind of break is told
//! from what is seen: a `seq` jump is removed lines, a `seq` going back is
//! a reordered or duplicated line, a MAC that does not verify is a modified
//! or forged line (or the key of another installation, when not even the
//! first line verifies), a number missing between segments is a missing
//! segment. The only line allowed not to parse is one torn by a crash and
//! followed by the writer's signed `audit.recover` event naming its offset.
//! The database's record of the chain's end ([`check_end`]) then catches
//! lines or segments removed at the end.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::chain::{parse_line, ChainKey, LineError};
use super::segments;
use crate::store::ChainRow;

/// The first break found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The segment.
    pub file: PathBuf,
    /// The line (1-based; 0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
        }
    }
}

/// What a walk found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The node whose chain this is (from its lines).
    pub server_id: Option<String>,
    /// Segments read.
    pub segments: usize,
    /// Lines that verified.
    pub lines: u64,
    /// `seq` of the last line that verified (0: none).
    pub last_seq: i64,
    /// Where the last file ends with an incomplete line: (file, line).
    pub torn_tail: Option<(PathBuf, usize)>,
    /// Lines torn by a crash and recovered by the writer: (file, line).
    pub recovered: Vec<(PathBuf, usize)>,
    /// The first break, if any.
    pub first_break: Option<Break>,
}

impl Report {
    fn stop(&mut self, file: &Path, line: usize, reason: impl Into<String>) {
        self.first_break = Some(Break {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        });
    }
}

/// A line that did not parse, waiting for the recovery event that may
/// explain it.
struct Torn {
    file: PathBuf,
    line: usize,
    offset: u64,
    why: String,
}

/// Walks the log at `base` (all its segments) with `key`.
pub fn verify(base: &Path, key: &ChainKey) -> std::io::Result<Report> {
    let mut r = Report::default();
    let present = segments::list(base)?;
    let mut prev_mac: Option<String> = None;
    let mut next_seq = 1i64;
    let mut torn: Option<Torn> = None;
    let last_segment = present.last().map(|s| s.0);
    for (expected, (n, path)) in (1i64..).zip(present.iter()) {
        if *n != expected {
            let missing = if *n == expected + 1 {
                format!("segment {expected} is missing")
            } else {
                format!("segments {expected} to {} are missing", n - 1)
            };
            r.stop(
                path,
                0,
                format!(
                    "{missing} ({} is missing before this one)",
                    segments::path(base, expected).display()
                ),
            );
            return Ok(r);
        }
        r.segments += 1;
        let bytes = std::fs::read(path)?;
        let is_last_file = Some(*n) == last_segment;
        let pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let mut offset = 0u64;
        for (index, raw) in pieces.iter().enumerate() {
            let at = offset;
            offset += raw.len() as u64 + 1;
            let final_piece = index + 1 == pieces.len();
            if final_piece && raw.is_empty() {
                break; // the file ends with a newline
            }
            let line_no = index + 1;
            let text = String::from_utf8_lossy(raw);
            let parsed = parse_line(key, &text);
            let line = match parsed {
                Err(LineError::Malformed(why)) => {
                    if let Some(t) = torn.take() {
                        r.stop(
                            &t.file,
                            t.line,
                            format!(
                                "not a complete audit line ({}): modified or truncated",
                                t.why
                            ),
                        );
                        return Ok(r);
                    }
                    if final_piece && is_last_file {
                        // No newline after it: the log's last line is
                        // incomplete (check_end tells a cut from a write
                        // in progress).
                        r.torn_tail = Some((path.clone(), line_no));
                        return Ok(r);
                    }
                    torn = Some(Torn {
                        file: path.clone(),
                        line: line_no,
                        offset: at,
                        why,
                    });
                    continue;
                }
                Err(LineError::BadMac) => {
                    let reason = if r.lines == 0 && torn.is_none() {
                        "the first line's MAC does not verify: this is not the key of the installation that wrote the log (another database?), or the line was modified"
                    } else {
                        "the line's MAC does not verify: the line was modified, or inserted by someone without the key"
                    };
                    r.stop(path, line_no, reason);
                    return Ok(r);
                }
                Ok(l) => l,
            };
            let server_id = r
                .server_id
                .get_or_insert_with(|| line.server_id.clone())
                .clone();
            if line.server_id != server_id {
                r.stop(path, line_no, format!("written by server_id {} inside the chain of {server_id}: lines of another node's log were inserted", line.server_id));
                return Ok(r);
            }
            let expected_prev = prev_mac.clone().unwrap_or_else(|| key.genesis(&server_id));
            if let Some(t) = torn.take() {
                let explains = line.event == "audit.recover"
                    && detail(&line.details, "kind") == Some(Value::from("torn-line"))
                    && detail(&line.details, "offset") == Some(Value::from(t.offset))
                    && detail(&line.details, "segment")
                        == t.file
                            .file_name()
                            .map(|f| Value::from(f.to_string_lossy().into_owned()));
                if !explains {
                    r.stop(
                        &t.file,
                        t.line,
                        format!(
                            "not a complete audit line ({}): modified or truncated",
                            t.why
                        ),
                    );
                    return Ok(r);
                }
                r.recovered.push((t.file, t.line));
            }
            if line.prev_mac != expected_prev {
                let reason = if let (true, Some(later)) = (
                    line.seq > next_seq,
                    find_seq(&pieces[index + 1..], next_seq),
                ) {
                    format!("seq {} comes before seq {next_seq}, which is at line {}: lines were reordered", line.seq, line_no + 1 + later)
                } else if line.seq > next_seq {
                    if line_no == 1 && r.lines > 0 {
                        format!("lines with seq {next_seq} to {} are missing at the start of this segment (removed lines, or a segment replaced)", line.seq - 1)
                    } else {
                        format!("lines with seq {next_seq} to {} were removed", line.seq - 1)
                    }
                } else if line.seq < next_seq {
                    format!(
                        "seq {} comes after seq {}: lines were reordered or a line was duplicated",
                        line.seq,
                        next_seq - 1
                    )
                } else if r.lines == 0 {
                    "the first line does not start the chain: earlier lines or segments were removed".to_string()
                } else {
                    "the chain is broken here: the previous line was replaced".to_string()
                };
                r.stop(path, line_no, reason);
                return Ok(r);
            }
            if line.seq != next_seq {
                r.stop(
                    path,
                    line_no,
                    format!("seq {} where {next_seq} was expected", line.seq),
                );
                return Ok(r);
            }
            if line.event == "audit.recover"
                && detail(&line.details, "kind") == Some(Value::from("lines-missing"))
            {
                let range = |k| {
                    detail(&line.details, k)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                r.stop(path, line_no, format!("the server found lines with seq {} to {} missing from the log when it started (recorded here)", range("from_seq"), range("to_seq")));
                return Ok(r);
            }
            prev_mac = Some(line.mac);
            next_seq += 1;
            r.lines += 1;
            r.last_seq = line.seq;
        }
    }
    if let Some(t) = torn {
        r.stop(
            &t.file,
            t.line,
            format!(
                "not a complete audit line ({}): modified or truncated",
                t.why
            ),
        );
    }
    Ok(r)
}

/// Index in `lines` of the first one whose `seq` is `seq` (read without
/// checking its MAC: only to name a reordering).
fn find_seq(lines: &[&[u8]], seq: i64) -> Option<usize> {
    lines.iter().position(|l| {
        serde_json::from_slice::<Value>(l)
            .ok()
            .and_then(|v| v.get("seq").and_then(Value::as_i64))
            == Some(seq)
    })
}

fn detail(details: &Option<Value>, name: &str) -> Option<Value> {
    details.as_ref().and_then(|d| d.get(name)).cloned()
}

/// Compares the walk with the chain's end that the database records for
/// the node: a log that stops short of it lost lines or segments at the
/// end; an incomplete last line is a cut unless it is being written.
pub fn check_end(r: &mut Report, base: &Path, recorded: Option<&ChainRow>) {
    if r.first_break.is_some() {
        return;
    }
    let recorded_seq = recorded.map_or(0, |c| c.seq);
    if let Some((file, line)) = r.torn_tail.clone() {
        if recorded_seq > r.last_seq {
            r.stop(&file, line, "the last line is truncated");
            return;
        }
    }
    if recorded_seq > r.last_seq {
        let file = segments::list(base)
            .ok()
            .and_then(|s| s.last().map(|s| s.1.clone()))
            .unwrap_or_else(|| base.to_path_buf());
        r.stop(&file, 0, format!(
            "the log ends at seq {} but the database records seq {recorded_seq} as written: lines or whole segments were removed at the end",
            r.last_seq
        ));
    }
}
