//! Model prices from the database catalog, kept in memory and refreshed in
//! the background, so pricing a request costs a prefix lookup. A model the
//! catalog does not price is charged at a large model's price (never $0)
//! and flagged as unpriced.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use store::Db;

pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Price {
    model: String,
    input: f64,
    output: f64,
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
            })
            .collect();
        table.sort_by_key(|p| std::cmp::Reverse(p.model.len()));
        if let Ok(mut t) = self.table.write() {
            *t = table;
        }
        Ok(())
    }

    /// Cost in micro-USD (rounded up) and whether the model was unpriced.
    pub fn cost(&self, model: &str, input_tokens: i64, output_tokens: i64) -> (i64, bool) {
        let found = self.table.read().ok().and_then(|t| {
            t.iter()
                .find(|p| model.starts_with(&p.model))
                .map(|p| (p.input, p.output))
        });
        match found {
            // $/Mtok equals micro-USD per token.
            Some((input, output)) => {
                let micros =
                    input * input_tokens.max(0) as f64 + output * output_tokens.max(0) as f64;
                (micros.ceil() as i64, false)
            }
            None => (
                policy::pricing::cost_micros(model, input_tokens, output_tokens),
                true,
            ),
        }
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
        // gpt-4o-mini: 0.15 / 0.60 (not gpt-4o's 2.50 / 10.00).
        assert_eq!(
            prices.cost("gpt-4o-mini-2024-07-18", 1000, 1000),
            (750, false)
        );
        assert_eq!(prices.cost("gpt-4o", 1000, 500), (7_500, false));
        let (cost, unpriced) = prices.cost("some-new-model", 1000, 0);
        assert!(unpriced && cost > 0, "{cost}");
        tdb.cleanup().await;
    }
}
