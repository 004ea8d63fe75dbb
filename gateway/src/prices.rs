//! Model prices from the database catalog, kept in memory and refreshed in
//! the background, so pricing a request costs a prefix lookup. A model the
//! catalog does not price is charged at a large model's price (never $0)
//! and flagged as unpriced.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use store::Db;

use crate::usage::Usage;

pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Price {
    model: String,
    input: f64,
    output: f64,
    cached_input: Option<f64>,
}

#[derive(Debug)]
pub struct Prices {
    db: Db,
    /// Longest model prefix first, so `gpt-4o-mini` wins over `gpt-4o`.
    table: RwLock<Vec<Price>>,
}

impl Prices {
    pub async fn load(db: Db) -> store::Result<Self> {
        let prices = Prices {
            db,
            table: RwLock::default(),
        };
        prices.refresh().await?;
        Ok(prices)
    }

    pub async fn refresh(&self) -> store::Result<()> {
        let mut table: Vec<Price> = store::prices::current(&self.db, store::now_ms())
            .await?
            .into_iter()
            .map(|p| Price {
                model: p.model,
                input: p.input_usd_per_mtok,
                output: p.output_usd_per_mtok,
                cached_input: p.cached_input_usd_per_mtok,
            })
            .collect();
        table.sort_by_key(|p| std::cmp::Reverse(p.model.len()));
        if let Ok(mut t) = self.table.write() {
            *t = table;
        }
        Ok(())
    }

    /// Cost in micro-USD (rounded up) and whether the model was unpriced.
    /// Cached input tokens are charged at the cached-input price when the
    /// catalog has one.
    pub fn cost(&self, model: &str, usage: Usage) -> (i64, bool) {
        let found = self.table.read().ok().and_then(|t| {
            t.iter()
                .find(|p| model.starts_with(&p.model))
                .map(|p| (p.input, p.output, p.cached_input))
        });
        let Some((input, output, cached_input)) = found else {
            let cost = policy::pricing::cost_micros(model, usage.input_tokens, usage.output_tokens);
            return (cost, true);
        };
        let cached = usage
            .cached_input_tokens
            .clamp(0, usage.input_tokens.max(0));
        let uncached = usage.input_tokens.max(0) - cached;
        // $/Mtok equals micro-USD per token.
        let micros = input * uncached as f64
            + cached_input.unwrap_or(input) * cached as f64
            + output * usage.output_tokens.max(0) as f64;
        (micros.ceil() as i64, false)
    }

    pub async fn refresh_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tick.tick().await;
            if let Err(err) = self.refresh().await {
                tracing::warn!(error = %err, "refreshing prices failed; using the cached ones");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn longest_prefix_wins_and_unknown_models_are_flagged_not_free() {
        let tdb = store::testing::sqlite().await;
        let prices = Prices::load(tdb.db.clone()).await.unwrap();
        let usage = |input, output, cached| Usage {
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cached,
        };
        // gpt-4o-mini: 0.15 / 0.60 (not gpt-4o's 2.50 / 10.00).
        assert_eq!(
            prices.cost("gpt-4o-mini-2024-07-18", usage(1000, 1000, 0)),
            (750, false)
        );
        assert_eq!(prices.cost("gpt-4o", usage(1000, 500, 0)), (7_500, false));
        // 600 cached at $1.25 + 400 at $2.50 + 500 out at $10.
        assert_eq!(prices.cost("gpt-4o", usage(1000, 500, 600)), (6_750, false));
        let (cost, unpriced) = prices.cost("some-new-model", usage(1000, 0, 0));
        assert!(unpriced && cost > 0, "{cost}");
        tdb.cleanup().await;
    }
}
