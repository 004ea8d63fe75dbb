//! The event spool: every finished request's event is appended to a local
//! write-ahead log (JSON lines in `<data dir>/spool/<gateway name>/`) before
//! the request handler returns, and a writer copies the log into the
//! database in batches (events and rollups in one transaction), at most one
//! batch per `LINGER` (50 ms) unless a backlog fills whole batches.
//!
//! The writer runs on a thread of its own, at a lower scheduling priority,
//! with its own database connection: under load, the request path gets the
//! CPU first (a batch insert on SQLite takes milliseconds of CPU on the
//! gateway's core, which would otherwise delay the requests queued behind
//! it), and the events wait in the log meanwhile.
//!
//! Guarantees:
//! - The request path never waits on the database: it only appends a line to
//!   a file (a `write` into the OS page cache, no fsync).
//! - An event whose line was appended survives a database outage (the writer
//!   retries with back-off and catches up) and a crash or `kill -9` of the
//!   gateway (the next start replays the log). It does not survive a power
//!   loss of the host before the OS wrote the page cache out.
//! - Replays never double-count: event ids are unique and a batch insert
//!   skips ids already stored (events and rollups together).
//!
//! The log is split into segments; a segment is deleted once the writer has
//! stored all of it and a newer segment is in use.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use store::Db;
use store::events::EventRow;
use tokio::sync::mpsc;

/// Most events written in one transaction.
const BATCH_MAX: usize = 256;
/// Longest wait between a request finishing and its event being stored.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// After a wake-up, the writer waits this long for more events, so busy
/// gateways store events in batches rather than one transaction each.
const LINGER: Duration = Duration::from_millis(50);
/// A fully stored segment is replaced by a fresh one (and deleted) once it
/// is this large; a restart replays at most this much already-stored log
/// (skipped by event id).
const ROTATE_STORED_BYTES: u64 = 1 << 20;
/// A segment is closed (and a new one started) past this size.
const SEGMENT_MAX_BYTES: u64 = 8 << 20;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The open segment events are appended to.
#[derive(Debug)]
struct Segment {
    seq: u64,
    file: File,
    bytes: u64,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    current: Mutex<Segment>,
    /// Events appended but not yet stored in the database.
    depth: AtomicU64,
}

/// Told about events once they are stored in the database.
pub type OnStored = Box<dyn Fn(&[EventRow]) + Send + Sync>;

/// Resolves when the event writer has stored every event and stopped,
/// which it does once every [`Spool`] handle is dropped.
pub type WriterDone = tokio::sync::oneshot::Receiver<()>;

/// How much lower than the gateway's the event writer's scheduling priority
/// is (nice value; Unix). On a busy core the kernel then runs the request
/// path first and the writer, with its SQLite work, in the gaps, instead of
/// letting a batch insert hold a request up for milliseconds. Events wait
/// in the spool meanwhile: nothing is lost, they are stored a little later.
const WRITER_NICENESS: i32 = 10;

/// Lowers the calling thread's priority by [`WRITER_NICENESS`] (on Linux
/// the nice value is per thread, and threads started from this one inherit
/// it).
fn lower_priority() {
    #[cfg(unix)]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let current = getpriority_process(None).unwrap_or(0);
        if let Err(err) = setpriority_process(None, (current + WRITER_NICENESS).min(19)) {
            tracing::debug!(error = %err, "cannot lower the event writer's priority");
        }
    }
}

/// Handle used by request handlers; cheap to clone. The writer ends (after
/// storing everything) once every handle is dropped.
#[derive(Clone, Debug)]
pub struct Spool {
    shared: Arc<Shared>,
    wake: mpsc::Sender<()>,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("events-{seq:020}.jsonl"))
}

/// Sequence numbers of the segments in `dir`, oldest first.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("events-")?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

fn open_segment(dir: &Path, seq: u64) -> std::io::Result<Segment> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, seq))?;
    let bytes = file.metadata()?.len();
    Ok(Segment { seq, file, bytes })
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and starts the writer, which
    /// first replays whatever an earlier run left unstored.
    pub fn start(
        db: Db,
        dir: PathBuf,
        lease_holder: Option<String>,
        on_stored: OnStored,
    ) -> anyhow::Result<(Spool, WriterDone)> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the event spool {}", dir.display()))?;
        let existing = segments(&dir)?;
        let first = existing.first().copied().unwrap_or(0);
        let next = existing.last().map_or(0, |s| s + 1);
        let current = open_segment(&dir, next)
            .with_context(|| format!("cannot open the event spool in {}", dir.display()))?;
        let shared = Arc::new(Shared {
            dir,
            current: Mutex::new(current),
            depth: AtomicU64::new(0),
        });
        let (wake, wakeups) = mpsc::channel(1);
        let (done, writer_done) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the event writer's runtime")?;
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("kt-events".to_owned())
            .spawn(move || {
                lower_priority();
                runtime.block_on(async move {
                    // Its own connection, opened from this thread, so that
                    // SQLite's worker thread for it runs at this priority
                    // too (see `Db::dedicated`).
                    let db = match db.dedicated(1).await {
                        Ok(own) => own,
                        Err(err) => {
                            tracing::warn!(error = %err, "the event writer cannot open its own database connection; it shares the gateway's");
                            db
                        }
                    };
                    writer(db, writer_shared, wakeups, first, lease_holder, on_stored).await;
                });
                let _ = done.send(());
            })
            .context("cannot start the event writer thread")?;
        Ok((Spool { shared, wake }, writer_done))
    }

    /// Appends an event to the log; the writer stores it shortly after.
    /// Never waits on the database.
    pub fn record(&self, event: EventRow) {
        let mut line = match serde_json::to_vec(&event) {
            Ok(line) => line,
            Err(err) => {
                tracing::error!(error = %err, "cannot serialise an event");
                return;
            }
        };
        line.push(b'\n');
        match self.append(&line) {
            Ok(()) => {
                self.shared.depth.fetch_add(1, Ordering::Relaxed);
                // A full channel means a wake-up is already pending.
                let _ = self.wake.try_send(());
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot append to the event spool: an event was lost")
            }
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut seg = self
            .shared
            .current
            .lock()
            .map_err(|_| std::io::Error::other("spool lock poisoned"))?;
        if seg.bytes >= SEGMENT_MAX_BYTES {
            *seg = open_segment(&self.shared.dir, seg.seq + 1)?;
        }
        seg.file.write_all(line)?;
        seg.bytes += line.len() as u64;
        Ok(())
    }

    /// Events appended but not yet stored in the database.
    pub fn depth(&self) -> u64 {
        self.shared.depth.load(Ordering::Relaxed)
    }
}

/// Where the writer is in the log.
struct Cursor {
    seq: u64,
    offset: u64,
}

/// Reads up to `BATCH_MAX` complete lines from the cursor's segment.
/// Returns the events and the offset after them.
fn read_batch(dir: &Path, cursor: &Cursor) -> std::io::Result<(Vec<EventRow>, u64)> {
    let mut file = match File::open(segment_path(dir, cursor.seq)) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), cursor.offset));
        }
        Err(err) => return Err(err),
    };
    file.seek(SeekFrom::Start(cursor.offset))?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    let mut offset = cursor.offset;
    let mut line = Vec::new();
    while events.len() < BATCH_MAX {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end, or a line still being written
        }
        offset += n as u64;
        match serde_json::from_slice::<EventRow>(&line) {
            Ok(event) => events.push(event),
            Err(err) => tracing::error!(error = %err, "skipping a corrupt spool line"),
        }
    }
    Ok((events, offset))
}

/// Starts a fresh segment when the open one is large and fully stored (so
/// the stored one can go); returns the open segment's number. The new file
/// is created before the append lock is taken: file-system work (which can
/// wait milliseconds on the journal) never holds up the request path, which
/// appends under that lock.
fn rotate_if_stored(shared: &Shared, cursor: &Cursor) -> u64 {
    let stored = |seg: &Segment| {
        seg.seq == cursor.seq && seg.bytes >= ROTATE_STORED_BYTES && seg.bytes == cursor.offset
    };
    let seq = match shared.current.lock() {
        Ok(seg) if stored(&seg) => seg.seq,
        Ok(seg) => return seg.seq,
        Err(_) => return cursor.seq,
    };
    let fresh = match open_segment(&shared.dir, seq + 1) {
        Ok(fresh) => fresh,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start a new spool segment");
            return seq;
        }
    };
    match shared.current.lock() {
        Ok(mut seg) => {
            // Unless an event was appended meanwhile: then the fresh (empty)
            // file is opened again at the next try.
            if stored(&seg) {
                *seg = fresh;
            }
            seg.seq
        }
        Err(_) => cursor.seq,
    }
}

async fn writer(
    db: Db,
    shared: Arc<Shared>,
    mut wakeups: mpsc::Receiver<()>,
    first: u64,
    lease_holder: Option<String>,
    on_stored: OnStored,
) {
    let mut cursor = Cursor {
        seq: first,
        offset: 0,
    };
    let mut backoff = RETRY_MIN;
    let mut closing = false;
    loop {
        let (events, offset) = match read_batch(&shared.dir, &cursor) {
            Ok(read) => read,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the event spool");
                (Vec::new(), cursor.offset)
            }
        };
        if !events.is_empty() {
            match store::events::insert_batch_for(&db, &events, lease_holder.as_deref()).await {
                Ok(()) => {
                    on_stored(&events);
                    cursor.offset = offset;
                    backoff = RETRY_MIN;
                    let stored = events.len() as u64;
                    let _ = shared
                        .depth
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                            Some(d.saturating_sub(stored))
                        });
                    if events.len() == BATCH_MAX {
                        // A backlog: store the next batch right away.
                        continue;
                    }
                    // The log is read to its end: wait below for the next
                    // batch to gather (LINGER) rather than storing the few
                    // events that arrived during this insert at once. Under
                    // steady load that makes one transaction per LINGER, not
                    // one per insert's duration (tens per second more, each
                    // a dozen statements and a commit on the request core).
                }
                Err(err) => {
                    tracing::warn!(error = %err, pending = shared.depth.load(Ordering::Relaxed), retry_in = ?backoff,
                        "storing events failed; they are kept in the spool and retried");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                    continue;
                }
            }
        }
        // This segment is read to its end: move on if a newer one exists;
        // if it is the open one and fully stored, start a fresh one so the
        // stored one can go (keeps the log, and replays after a crash, short).
        let current = rotate_if_stored(&shared, &cursor);
        if cursor.seq < current {
            let _ = std::fs::remove_file(segment_path(&shared.dir, cursor.seq));
            cursor = Cursor {
                seq: cursor.seq + 1,
                offset: 0,
            };
            continue;
        }
        if closing {
            return;
        }
        tokio::select! {
            woke = wakeups.recv() => match woke {
                // Every handle is gone: store what is left, then stop.
                None => closing = true,
                // Let a batch gather (unless it is already full).
                Some(()) => {
                    if shared.depth.load(Ordering::Relaxed) < BATCH_MAX as u64 {
                        tokio::time::sleep(LINGER).await;
                    }
                }
            },
            () = tokio::time::sleep(FLUSH_EVERY) => {},
        }
    }
}
