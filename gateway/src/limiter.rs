//! Per-team rate limits over a sliding one-minute window — requests per
//! minute and tokens per minute — kept in memory (per process; fleet-wide
//! limits across replicas come with the shared limiter).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct RateLimiter {
    per_team: Mutex<HashMap<String, VecDeque<Instant>>>,
    tokens: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
}

impl RateLimiter {
    /// Admits one request of `team` if fewer than `limit` were admitted in
    /// the last minute; otherwise returns how long until a slot frees.
    pub fn admit(&self, team: &str, limit: u32, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.per_team.lock() else {
            return Ok(());
        };
        let window = map.entry(team.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() < limit as usize {
            window.push_back(now);
            Ok(())
        } else {
            let oldest = window.front().copied().unwrap_or(now);
            Err(WINDOW.saturating_sub(now.duration_since(oldest)))
        }
    }
}

impl RateLimiter {
    /// Checks that `team` used fewer than `limit` tokens in the last minute;
    /// otherwise returns how long until enough of them age out.
    pub fn check_tokens(&self, team: &str, limit: u32, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.tokens.lock() else {
            return Ok(());
        };
        let Some(window) = map.get_mut(team) else {
            return Ok(());
        };
        while window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        let mut used: u64 = window.iter().map(|(_, n)| n).sum();
        if used < u64::from(limit) {
            return Ok(());
        }
        // Wait until enough old entries expire to get under the limit.
        for (t, n) in window.iter() {
            used -= n;
            if used < u64::from(limit) {
                return Err(WINDOW.saturating_sub(now.duration_since(*t)));
            }
        }
        Err(WINDOW)
    }

    /// Counts the tokens of a finished request.
    pub fn record_tokens(&self, team: &str, tokens: u64, now: Instant) {
        if tokens == 0 {
            return;
        }
        if let Ok(mut map) = self.tokens.lock() {
            map.entry(team.to_owned())
                .or_default()
                .push_back((now, tokens));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_per_team_then_frees_after_a_minute() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert!(limiter.admit("a", 2, t0).is_ok());
        assert!(limiter.admit("a", 2, t0 + Duration::from_secs(10)).is_ok());
        let wait = limiter
            .admit("a", 2, t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(limiter.admit("b", 2, t0 + Duration::from_secs(20)).is_ok());
        assert!(limiter.admit("a", 2, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn tokens_per_minute_block_until_old_usage_ages_out() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert!(limiter.check_tokens("a", 100, t0).is_ok());
        limiter.record_tokens("a", 60, t0);
        limiter.record_tokens("a", 50, t0 + Duration::from_secs(30));
        let wait = limiter
            .check_tokens("a", 100, t0 + Duration::from_secs(40))
            .unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(20),
            "free once the first 60 tokens age out"
        );
        assert!(
            limiter
                .check_tokens("b", 100, t0 + Duration::from_secs(40))
                .is_ok()
        );
        assert!(
            limiter
                .check_tokens("a", 100, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }
}
