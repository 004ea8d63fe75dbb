//! The event spool: request handlers hand finished events to a channel
//! without waiting; one writer task batches them into the database (events
//! and rollups in one transaction). When the database is unreachable the
//! writer keeps the batch and retries with back-off, so no event is lost
//! while the process lives.

use std::time::Duration;

use store::Db;
use store::events::EventRow;
use tokio::sync::mpsc;

/// Most events written in one transaction.
const BATCH_MAX: usize = 256;
/// Longest wait between a request finishing and its event being written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Events buffered in memory before new ones are dropped (and counted).
const CAPACITY: usize = 100_000;
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Spool {
    tx: mpsc::Sender<EventRow>,
}

impl Spool {
    /// Starts the writer task; it ends (after a final flush) once every
    /// `Spool` clone is dropped. Await the handle to be sure all is written.
    pub fn start(db: Db) -> (Spool, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let handle = tokio::spawn(writer(db, rx));
        (Spool { tx }, handle)
    }

    /// Queues an event; never blocks the request path.
    pub fn record(&self, event: EventRow) {
        if let Err(err) = self.tx.try_send(event) {
            tracing::error!(error = %err, "event spool full or closed: an event was dropped");
        }
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<EventRow>) {
    let mut batch: Vec<EventRow> = Vec::with_capacity(BATCH_MAX);
    let mut backoff = Duration::from_millis(200);
    loop {
        if batch.is_empty() {
            match rx.recv().await {
                Some(event) => batch.push(event),
                None => return,
            }
            // Give concurrent requests a moment to join this batch.
            let deadline = tokio::time::sleep(FLUSH_EVERY);
            tokio::pin!(deadline);
            while batch.len() < BATCH_MAX {
                tokio::select! {
                    event = rx.recv() => match event {
                        Some(event) => batch.push(event),
                        None => break,
                    },
                    _ = &mut deadline => break,
                }
            }
        }
        match store::events::insert_batch(&db, &batch).await {
            Ok(()) => {
                batch.clear();
                backoff = Duration::from_millis(200);
            }
            Err(err) => {
                tracing::warn!(error = %err, pending = batch.len(), retry_in = ?backoff, "writing events failed; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
                // Keep accepting events meanwhile (up to the batch limit).
                while batch.len() < BATCH_MAX {
                    match rx.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                if rx.is_closed() && rx.is_empty() && backoff >= RETRY_MAX {
                    tracing::error!(lost = batch.len(), "shutting down with unwritten events");
                    return;
                }
            }
        }
    }
}
