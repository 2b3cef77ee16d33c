//! The node's writer: drains the outbox into the chained segment files.
//!
//! Order of a batch: read the next events, format and MAC them, and append
//! them to the active segment (the page cache: a log shipper sees them at
//! once). At most once a second — and before a rotation, a flush and the
//! end — the writer syncs: fdatasync, then in one transaction it deletes
//! the events written so far from the outbox and records the chain's new
//! end. Until then their rows stay, so a power loss loses no event; and a
//! crash between a write and the next sync leaves lines in the file whose
//! events are still in the outbox: at the next start (or after any
//! failure) the writer reads the file's last complete line and trims
//! exactly those events, so every event reaches the file once. One fsync
//! and one transaction a second, whatever the load, is what keeps the log
//! within its cost budget (docs/performance.md). A line torn by a crash is
//! ended with a newline and followed by an `audit.recover` event naming it
//! (its event is still in the outbox and is written again in full); lines
//! the database records as written but the file lacks are reported the
//! same way, as a break the verifier shows.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::chain::{self, ChainKey, LineError};
use super::{segments, Audit, Event, Shared, KEY_META};
use crate::config::AuditSettings;
use crate::store::{AuditRow, ChainRow, Store};

/// Events drained per batch (one write, one fsync, one transaction).
const BATCH: i64 = 4096;

/// How often the writer looks at the outbox without being woken (events
/// recorded just before a commit are seen at the next look).
const TICK: Duration = Duration::from_millis(500);

/// How long the writer lets events gather after a wake-up: under load one
/// batch (one format pass, one write) then carries the events of many
/// requests instead of one each.
const COALESCE: Duration = Duration::from_millis(250);

/// Longest time between a line's write and its fsync (and the deletion of
/// its event from the outbox).
const SYNC: Duration = Duration::from_secs(1);

/// The writer's task, owned by the server: stopped last, after the
/// workers, so that every event of the run reaches the file.
#[derive(Debug)]
pub struct AuditWriter {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl AuditWriter {
    /// Writes what is left in the outbox, then stops.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Opens the log (recovering from a crash if needed) and starts its
/// writer; a disabled log gives [`Audit::disabled`] and no writer.
/// Refuses to start when the active segment was last written by another
/// node, or by another installation.
pub async fn start(
    store: Store,
    settings: &AuditSettings,
    server_id: &str,
) -> anyhow::Result<(Audit, Option<AuditWriter>)> {
    if !settings.enabled {
        return Ok((Audit::disabled(), None));
    }
    let secret = store
        .meta_get_or_init(KEY_META, chain::new_secret)
        .await
        .context("cannot read the audit key")?;
    let key = ChainKey::from_hex(&secret)
        .with_context(|| format!("meta.{KEY_META} in the database is not hex"))?;
    if let Some(dir) = settings.path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the audit directory {}", dir.display()))?;
    }
    let (flush_tx, flush_rx) = mpsc::channel(16);
    let shared = Arc::new(Shared {
        server_id: server_id.to_string(),
        wake: Notify::new(),
        flush: flush_tx,
    });
    let mut w = Writer {
        store,
        key,
        server_id: server_id.to_string(),
        base: settings.path.clone(),
        max: settings.max_segment_bytes,
        file: None,
        size: 0,
        end: ChainRow {
            seq: 0,
            mac: String::new(),
            segment: 1,
        },
        dirty: true,
        unsynced: None,
        shared: shared.clone(),
    };
    w.recover().await?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(w.run(flush_rx, stop.clone()));
    Ok((
        Audit {
            inner: Some(shared),
        },
        Some(AuditWriter { stop, task }),
    ))
}

struct Writer {
    store: Store,
    key: ChainKey,
    server_id: String,
    base: PathBuf,
    max: u64,
    file: Option<Arc<File>>,
    size: u64,
    /// The last line in the file (as far as this writer knows).
    end: ChainRow,
    /// Whether the file and the database must be reconciled before the
    /// next batch (at start, and after any failure).
    dirty: bool,
    /// Lines written but not yet synced: the outbox position of the last
    /// one's event, and when the first was written.
    unsynced: Option<(i64, std::time::Instant)>,
    shared: Arc<Shared>,
}

/// What the end of a segment holds.
struct Tail {
    /// The last complete line, verified.
    last: Option<chain::Line>,
    /// A final fragment without its newline: (offset, length).
    torn: Option<(u64, u64)>,
    /// The file's size.
    size: u64,
}

impl Writer {
    async fn run(
        mut self,
        mut flush: mpsc::Receiver<oneshot::Sender<bool>>,
        stop: CancellationToken,
    ) {
        let mut pause = TICK;
        loop {
            // Lines waiting for their sync shorten the wait to its due time.
            let wait = match self.unsynced {
                Some((_, since)) => pause.min(SYNC.saturating_sub(since.elapsed())),
                None => pause,
            };
            let reply = tokio::select! {
                _ = self.shared.wake.notified() => {
                    tokio::select! {
                        _ = tokio::time::sleep(COALESCE) => None,
                        r = flush.recv() => r,
                    }
                }
                r = flush.recv() => r,
                _ = tokio::time::sleep(wait) => None,
                _ = stop.cancelled() => {
                    let _ = self.drain(true).await;
                    return;
                }
            };
            let ok = self.drain(reply.is_some()).await;
            pause = if ok {
                TICK
            } else {
                (pause * 2).min(Duration::from_secs(30))
            };
            if let Some(reply) = reply {
                let _ = reply.send(ok);
            }
        }
    }

    /// Writes every event in the outbox, and syncs when one is due (or
    /// `force`); false after a failure (logged and counted; the events
    /// stay for the next attempt).
    async fn drain(&mut self, force: bool) -> bool {
        let result = async {
            while self.batch().await? {}
            match self.unsynced {
                Some((_, since)) if force || since.elapsed() >= SYNC => self.sync().await,
                _ => Ok(()),
            }
        }
        .await;
        match result {
            Ok(()) => true,
            Err(e) => {
                self.dirty = true;
                self.unsynced = None;
                crate::telemetry::metrics::audit_write_failed();
                tracing::error!(target: "audit", error = format!("{e:#}"), path = %self.base.display(), "audit log write failed; events are kept in the database and retried");
                false
            }
        }
    }

    /// One batch, written but not synced; false when no event was left.
    async fn batch(&mut self) -> anyhow::Result<bool> {
        if self.dirty {
            self.recover().await?;
        }
        let after = self.unsynced.map_or(0, |(through, _)| through);
        let rows = self
            .store
            .audit_pending(&self.server_id, after, BATCH)
            .await?;
        let Some(through) = rows.last().map(|r| r.id) else {
            return Ok(false);
        };
        if self.size >= self.max {
            // A segment is complete on disk before the next begins.
            self.sync().await?;
            self.rotate()?;
        }
        self.append(&rows)?;
        let since = self
            .unsynced
            .map_or_else(std::time::Instant::now, |(_, t)| t);
        self.unsynced = Some((through, since));
        Ok(true)
    }

    /// Forces the written lines to disk, then deletes their events from
    /// the outbox and records the chain's end.
    async fn sync(&mut self) -> anyhow::Result<()> {
        let Some((through, _)) = self.unsynced else {
            return Ok(());
        };
        self.sync_file().await?;
        let mut tx = self.store.begin().await?;
        Store::audit_advance(&mut tx, &self.server_id, through, &self.end).await?;
        tx.commit().await?;
        self.unsynced = None;
        Ok(())
    }

    async fn sync_file(&self) -> anyhow::Result<()> {
        let file = self.file.clone().context("no active audit segment")?;
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .context("audit sync task")?
            .with_context(|| format!("cannot sync {}", self.active_path().display()))
    }

    /// Formats `rows` after the current end and appends them (one write
    /// of a few hundred KiB at most, to the page cache: done in place
    /// rather than handed to a thread).
    fn append(&mut self, rows: &[AuditRow]) -> anyhow::Result<()> {
        let mut buf = String::with_capacity(rows.len() * 320);
        let mut end = self.end.clone();
        for r in rows {
            end.seq += 1;
            let (line, mac) = chain::format_line(&self.key, end.seq, &self.server_id, &end.mac, r);
            buf.push_str(&line);
            end.mac = mac;
        }
        let file = self.file.as_deref().context("no active audit segment")?;
        let mut out: &File = file;
        out.write_all(buf.as_bytes())
            .with_context(|| format!("cannot append to {}", self.active_path().display()))?;
        self.size += buf.len() as u64;
        self.end = end;
        Ok(())
    }

    fn active_path(&self) -> PathBuf {
        segments::path(&self.base, self.end.segment)
    }

    /// Closes the active segment and begins the next.
    fn rotate(&mut self) -> anyhow::Result<()> {
        self.end.segment += 1;
        self.open_active()?;
        tracing::info!(target: "audit", segment = %self.active_path().display(), "audit log: new segment");
        Ok(())
    }

    fn open_active(&mut self) -> anyhow::Result<()> {
        // Closing the previous segment releases its lock (a lock belongs to
        // one open file, so this process could not take it twice).
        self.file = None;
        let path = self.active_path();
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        // Readable by the owner's group (a log shipper), by nobody else.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
        let file = options
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // One writer per file: two nodes (or two processes on one workdir)
        // appending to the same segment would interleave two chains. The
        // lock is advisory and held while the segment is active; the
        // kernel drops it with the process, so a crash leaves none behind.
        lock_segment(&file, &path)?;
        self.size = file.metadata()?.len();
        if let Some(dir) = path.parent() {
            // The new file's directory entry must survive a power loss too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.file = Some(Arc::new(file));
        Ok(())
    }

    /// Reconciles the file and the database: finds the chain's end in the
    /// file, ends a torn line, trims the outbox of events already written,
    /// and records what was found missing.
    async fn recover(&mut self) -> anyhow::Result<()> {
        let genesis = self.key.genesis(&self.server_id);
        let db = self.store.audit_register(&self.server_id, &genesis).await?;
        let present = segments::list(&self.base)
            .with_context(|| format!("cannot list the segments of {}", self.base.display()))?;
        let active = present.last().map_or(0, |s| s.0).max(db.segment).max(1);
        let mut file_end: Option<chain::Line> = None;
        let mut torn = None;
        for (n, path) in present.iter().rev() {
            let tail = read_tail(path, &self.key, &self.server_id)?;
            if *n == active {
                torn = tail.torn.map(|t| (path.clone(), t, tail.size));
            }
            if let Some(l) = tail.last {
                file_end = Some(l);
                break;
            }
        }
        let (seq, mac) = file_end.map_or((0, genesis), |l| (l.seq, l.mac));
        self.end = ChainRow {
            seq,
            mac,
            segment: active,
        };
        self.open_active()?;
        let mut events = Vec::new();
        if let Some((path, (offset, len), _)) = torn {
            let file = self.file.clone().context("no active audit segment")?;
            (&*file).write_all(b"\n")?;
            self.size += 1;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            tracing::warn!(target: "audit", segment = %path.display(), offset, bytes = len, "audit log: a line torn by a crash was ended; its event is written again");
            events.push(
                Event::new("audit.recover")
                    .reason("a line was torn by a crash; its event follows in full")
                    .detail("kind", "torn-line")
                    .detail("segment", name)
                    .detail("offset", offset)
                    .detail("bytes", len),
            );
        }
        if seq > db.seq {
            // Written before a crash, not yet trimmed: these are the oldest
            // events of the outbox, in order.
            let written = self
                .store
                .audit_pending(&self.server_id, 0, seq - db.seq)
                .await?;
            let through = written.last().map_or(0, |r| r.id);
            let mut tx = self.store.begin().await?;
            Store::audit_advance(&mut tx, &self.server_id, through, &self.end).await?;
            tx.commit().await?;
            tracing::info!(target: "audit", lines = seq - db.seq, "audit log: events written before a crash were trimmed from the outbox");
        } else if seq < db.seq || (seq == db.seq && self.end.mac != db.mac) {
            tracing::error!(target: "audit", file_seq = seq, recorded_seq = db.seq, "audit log: lines recorded as written are missing from the file; the gap is recorded in the log");
            events.push(
                Event::new("audit.recover")
                    .reason("lines the database records as written are missing from the file")
                    .detail("kind", "lines-missing")
                    .detail("from_seq", seq + 1)
                    .detail("to_seq", db.seq),
            );
        }
        if !events.is_empty() {
            let rows: Vec<AuditRow> = events.into_iter().map(Event::row).collect();
            self.append(&rows)?;
            self.sync_file().await?;
            let mut tx = self.store.begin().await?;
            Store::audit_advance(&mut tx, &self.server_id, 0, &self.end).await?;
            tx.commit().await?;
        } else if seq <= db.seq && self.end.segment != db.segment {
            let mut tx = self.store.begin().await?;
            Store::audit_advance(&mut tx, &self.server_id, 0, &self.end).await?;
            tx.commit().await?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Takes the advisory lock of an active segment (`flock`, exclusive, not
/// waiting); refused when another process holds it. A file system without
/// locks gets a warning. (`File::try_lock` would do the same but needs a
/// newer Rust than this project's minimum.)
#[cfg(unix)]
fn lock_segment(file: &File, path: &Path) -> anyhow::Result<()> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(
            "the audit log {} is being written by another certeasy process: every node needs its own audit.path (two nodes on one workdir or one shared directory?)",
            path.display()
        ),
        Err(e) => {
            tracing::warn!(target: "audit", path = %path.display(), error = %e, "cannot lock the audit log (a file system without locks?); make sure no other node writes to it");
            Ok(())
        }
    }
}

/// Elsewhere (Windows, not built or tested here) no lock is taken.
#[cfg(not(unix))]
fn lock_segment(_file: &File, _path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Reads the end of a segment: its last complete line (verified, and
/// refused when another node or installation wrote it) and a torn tail.
fn read_tail(path: &Path, key: &ChainKey, server_id: &str) -> anyhow::Result<Tail> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = f.metadata()?.len();
    // Lines are small; a window of 1 MiB holds the last one unless the
    // file is not a log of ours, in which case it is read whole.
    let mut start = size.saturating_sub(1 << 20);
    let bytes = loop {
        f.seek(SeekFrom::Start(start))?;
        let mut b = Vec::new();
        f.read_to_end(&mut b)?;
        let body = b.strip_suffix(b"\n").unwrap_or(&b);
        if start == 0 || body.iter().filter(|c| **c == b'\n').count() >= 2 {
            break b;
        }
        start = 0;
    };
    let (complete, torn) = if bytes.is_empty() || bytes.ends_with(b"\n") {
        (&bytes[..], None)
    } else {
        let cut = bytes.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
        if start > 0 && cut == 0 {
            bail!("{}: no line end in the last MiB", path.display());
        }
        (&bytes[..cut], Some(&bytes[cut..]))
    };
    let mut last_raw = complete
        .strip_suffix(b"\n")
        .and_then(|c| c.split(|b| *b == b'\n').next_back())
        .filter(|l| !l.is_empty());
    let mut torn_at = None;
    if let Some(fragment) = torn {
        let offset = size - fragment.len() as u64;
        // A line complete but for its newline is a line.
        match std::str::from_utf8(fragment).map(|s| chain::parse_line(key, s)) {
            Ok(Ok(_)) => last_raw = Some(fragment),
            _ => torn_at = Some((offset, fragment.len() as u64)),
        }
    }
    let last = match last_raw {
        None => None,
        Some(raw) => {
            let text = String::from_utf8_lossy(raw);
            match chain::parse_line(key, &text) {
                Ok(l) if l.server_id == server_id => Some(l),
                Ok(l) => bail!(
                    "the audit log {} was last written by server_id {} but this node is {server_id}: every node needs its own audit.path (two nodes on one workdir?)",
                    path.display(),
                    l.server_id
                ),
                Err(LineError::BadMac) => bail!(
                    "the last line of the audit log {} does not verify with this database's audit key: the log or the database was replaced. Keep the file as evidence, move it aside, and start again (the gap is then recorded)",
                    path.display()
                ),
                Err(LineError::Malformed(why)) => bail!(
                    "the last line of the audit log {} is not an audit line ({why}): move the file aside (keep it as evidence) and start again",
                    path.display()
                ),
            }
        }
    };
    Ok(Tail {
        last,
        torn: torn_at,
        size,
    })
}
