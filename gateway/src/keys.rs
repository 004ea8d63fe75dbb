//! The gateway-key cache: every gateway key's digest in memory, refreshed
//! from the database in the background, so authenticating a request costs a
//! hash and a map lookup. A key created after the last refresh triggers one
//! early refresh (at most once per [`MISS_REFRESH_MIN`]); a revoked key stops
//! working within one [`REFRESH_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use store::Db;
use tokio::sync::Mutex;

pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
const MISS_REFRESH_MIN: Duration = Duration::from_secs(1);

/// What a valid key tells the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub token_id: String,
    pub team_id: String,
}

#[derive(Debug)]
pub enum Lookup {
    Valid(KeyInfo),
    Revoked,
    Unknown,
}

#[derive(Debug, Default)]
struct Entry {
    info: Option<KeyInfo>,
    revoked: bool,
}

#[derive(Clone, Debug)]
pub struct KeyCache {
    db: Db,
    keys: Arc<RwLock<HashMap<String, Entry>>>,
    last_refresh: Arc<Mutex<Instant>>,
}

impl KeyCache {
    /// Loads every key once; fails when the database cannot be read.
    pub async fn load(db: Db) -> store::Result<Self> {
        let cache = KeyCache {
            db,
            keys: Arc::default(),
            last_refresh: Arc::new(Mutex::new(Instant::now())),
        };
        cache.refresh().await?;
        Ok(cache)
    }

    pub async fn refresh(&self) -> store::Result<()> {
        let rows = store::tokens::gateway_keys(&self.db).await?;
        let fresh: HashMap<String, Entry> = rows
            .into_iter()
            .map(|k| {
                let revoked = k.revoked_at.is_some();
                let info = k.team_id.map(|team_id| KeyInfo {
                    token_id: k.token_id,
                    team_id,
                });
                (k.token_hash, Entry { info, revoked })
            })
            .collect();
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        Ok(())
    }

    fn lookup_cached(&self, hash: &str) -> Option<Lookup> {
        let keys = self.keys.read().ok()?;
        let entry = keys.get(hash)?;
        Some(match (&entry.info, entry.revoked) {
            (_, true) | (None, _) => Lookup::Revoked,
            (Some(info), false) => Lookup::Valid(info.clone()),
        })
    }

    pub async fn lookup(&self, secret: &str) -> Lookup {
        let hash = store::crypto::hash_token(secret);
        if let Some(found) = self.lookup_cached(&hash) {
            return found;
        }
        // Unknown: maybe created since the last refresh. Refresh early, but
        // not more than once per MISS_REFRESH_MIN however many bad keys come.
        {
            let mut last = self.last_refresh.lock().await;
            if last.elapsed() >= MISS_REFRESH_MIN {
                *last = Instant::now();
                if let Err(err) = self.refresh().await {
                    tracing::warn!(error = %err, "refreshing gateway keys failed");
                }
            }
        }
        self.lookup_cached(&hash).unwrap_or(Lookup::Unknown)
    }

    /// Refreshes every [`REFRESH_EVERY`] until the task is aborted.
    pub async fn refresh_forever(self) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tick.tick().await;
            match self.refresh().await {
                Ok(()) => *self.last_refresh.lock().await = Instant::now(),
                Err(err) => {
                    tracing::warn!(error = %err, "refreshing gateway keys failed; using the cached keys")
                }
            }
        }
    }
}
