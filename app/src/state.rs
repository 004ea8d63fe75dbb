//! What server functions reach through Leptos context (server side only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leptos::prelude::LeptosOptions;

/// The console's server-side state, provided to every page render and server
/// function. Cloning is cheap (pools are reference-counted).
#[derive(Clone, Debug)]
pub struct ConsoleState {
    pub db: store::Db,
    pub leptos_options: LeptosOptions,
    pub throttle: Arc<LoginThrottle>,
    /// Seals provider secrets stored from Settings.
    pub master_key: store::crypto::MasterKey,
    /// Links and syncs Git repositories (shared with the API).
    pub git: Arc<gitsync::Syncer>,
    /// Onboarding: approvals run the provisioning pipeline.
    pub provision: Arc<provision::Provisioner>,
    /// The control-plane API's OpenAPI document (the API reference page).
    pub openapi: Arc<serde_json::Value>,
}

/// Sign-in throttling per account: after [`LoginThrottle::MAX_FAILURES`]
/// failed attempts within [`LoginThrottle::WINDOW`], the account cannot sign
/// in until the window has passed (whatever the password), which stops
/// online guessing without revealing whether the account exists. Per process:
/// with several console replicas an attacker gets that many windows.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    pub const MAX_FAILURES: u32 = 5;
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Accounts tracked at most; the oldest entries go first beyond it.
    const CAPACITY: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `account` must still wait, if it is locked.
    pub fn locked(&self, account: &str) -> Option<Duration> {
        let map = self.lock();
        let (count, since) = map.get(account)?;
        let elapsed = since.elapsed();
        (*count >= Self::MAX_FAILURES && elapsed < Self::WINDOW).then(|| Self::WINDOW - elapsed)
    }

    pub fn failed(&self, account: &str) {
        let mut map = self.lock();
        if map.len() >= Self::CAPACITY && !map.contains_key(account) {
            map.retain(|_, (_, since)| since.elapsed() < Self::WINDOW);
            if map.len() >= Self::CAPACITY
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (_, s))| *s)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(account.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= Self::WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, account: &str) {
        self.lock().remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_repeated_failures_only() {
        let t = LoginThrottle::default();
        for _ in 0..LoginThrottle::MAX_FAILURES - 1 {
            t.failed("a@example.com");
        }
        assert_eq!(t.locked("a@example.com"), None);
        t.failed("a@example.com");
        let wait = t.locked("a@example.com").expect("locked");
        assert!(wait > Duration::from_secs(14 * 60));
        assert_eq!(t.locked("b@example.com"), None, "other accounts unaffected");
        t.succeeded("a@example.com");
        assert_eq!(t.locked("a@example.com"), None);
    }
}
