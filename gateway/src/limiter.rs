//! Per-team request rate limit over a sliding one-minute window, kept in
//! memory (per process; fleet-wide limits across replicas come with the
//! shared limiter).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct RateLimiter {
    per_team: Mutex<HashMap<String, VecDeque<Instant>>>,
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
}
