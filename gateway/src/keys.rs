//! The gateway-key cache: every gateway key's digest in memory, refreshed
//! from the database in the background, so authenticating a request costs a
//! hash and a map lookup. A key created after the last refresh triggers one
//! early refresh (at most once per [`MISS_REFRESH_MIN`]); a revoked key stops
//! working within one [`REFRESH_EVERY`].

use std::collections::{HashMap, HashSet};
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
    /// Unix ms after which the key no longer works.
    expires_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct KeyCache {
    db: Db,
    keys: Arc<RwLock<HashMap<String, Entry>>>,
    last_refresh: Arc<Mutex<Instant>>,
    /// Keys used since the last refresh (reported then, in one batch).
    used: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl KeyCache {
    /// Loads every key once; fails when the database cannot be read.
    pub async fn load(db: Db) -> store::Result<Self> {
        let cache = KeyCache {
            db,
            keys: Arc::default(),
            last_refresh: Arc::new(Mutex::new(Instant::now())),
            used: Arc::default(),
        };
        cache.refresh().await?;
        Ok(cache)
    }

    pub async fn refresh(&self) -> store::Result<()> {
        let used: Vec<String> = self
            .used
            .lock()
            .map(|mut u| u.drain().collect())
            .unwrap_or_default();
        if !used.is_empty()
            && let Err(err) = store::tokens::touch(&self.db, &used, store::now_ms()).await
        {
            tracing::warn!(error = %err, "recording gateway keys' last use failed");
        }
        let rows = store::tokens::gateway_keys(&self.db).await?;
        let fresh: HashMap<String, Entry> = rows
            .into_iter()
            .map(|k| {
                let revoked = k.revoked_at.is_some();
                let info = k.team_id.map(|team_id| KeyInfo {
                    token_id: k.token_id,
                    team_id,
                });
                let entry = Entry {
                    info,
                    revoked,
                    expires_at: k.expires_at,
                };
                (k.token_hash, entry)
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
        let expired = entry.expires_at.is_some_and(|at| at <= store::now_ms());
        Some(match (&entry.info, entry.revoked || expired) {
            (_, true) | (None, _) => Lookup::Revoked,
            (Some(info), false) => {
                if let Ok(mut used) = self.used.lock()
                    && !used.contains(&info.token_id)
                {
                    used.insert(info.token_id.clone());
                }
                Lookup::Valid(info.clone())
            }
        })
    }

    pub async fn lookup(&self, secret: &str) -> Lookup {
        let hash = store::crypto::hash_token(secret);
        if let Some(found) = self.lookup_cached(&hash) {
            return found;
        }
        // Unknown: maybe created since the last refresh. Refresh, unless a
        // refresh finished after this lookup began; refreshes for misses are
        // spaced MISS_REFRESH_MIN apart however many bad keys come (a miss
        // waits for its turn rather than failing a key created a moment ago).
        let began = Instant::now();
        {
            let mut last = self.last_refresh.lock().await;
            if *last < began {
                let next = *last + MISS_REFRESH_MIN;
                if next > Instant::now() {
                    tokio::time::sleep_until(next.into()).await;
                }
                if let Err(err) = self.refresh().await {
                    tracing::warn!(error = %err, "refreshing gateway keys failed");
                }
                *last = Instant::now();
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
