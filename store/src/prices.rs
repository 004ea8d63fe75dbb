//! The price catalog: USD per million tokens by model, versioned by the time
//! each price takes effect. Gateways keep the current prices in memory and
//! refresh them; the API lists and edits them.

use serde::{Deserialize, Serialize};

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PriceRow {
    pub model_price_id: String,
    /// Model name or prefix (`gpt-4o` also prices `gpt-4o-2024-08-06`).
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub cached_input_usd_per_mtok: Option<f64>,
    /// Where the price comes from (a vendor's list price, a contract, …).
    pub source: String,
    pub effective_at: i64,
    pub created_at: i64,
}

/// A new price for a model, taking effect at `effective_at`.
#[derive(Debug, Clone)]
pub struct NewPrice {
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub cached_input_usd_per_mtok: Option<f64>,
    pub source: String,
    pub effective_at: i64,
}

const COLUMNS: &str = "model_price_id, model, input_usd_per_mtok, output_usd_per_mtok, \
    cached_input_usd_per_mtok, source, effective_at, created_at";

/// Every price version, newest first per model.
pub async fn history(db: &Db) -> Result<Vec<PriceRow>> {
    let sql = format!("select {COLUMNS} from model_price order by model, effective_at desc");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, PriceRow>(&sql).fetch_all(pool).await
    })?)
}

/// The price in effect at `at_ms` for each model.
pub async fn current(db: &Db, at_ms: i64) -> Result<Vec<PriceRow>> {
    let mut all = history(db).await?;
    all.retain(|p| p.effective_at <= at_ms);
    // `history` is ordered newest first within a model: keep the first.
    all.dedup_by(|later, first| later.model == first.model);
    Ok(all)
}

pub(crate) async fn set(tx: &mut Tx, new: &NewPrice) -> Result<PriceRow> {
    let row = PriceRow {
        model_price_id: new_id(),
        model: new.model.clone(),
        input_usd_per_mtok: new.input_usd_per_mtok,
        output_usd_per_mtok: new.output_usd_per_mtok,
        cached_input_usd_per_mtok: new.cached_input_usd_per_mtok,
        source: new.source.clone(),
        effective_at: new.effective_at,
        created_at: now_ms(),
    };
    let sql =
        format!("insert into model_price ({COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8)");
    with_tx!(tx, conn => {
        sqlx::query(&sql)
            .bind(&row.model_price_id)
            .bind(&row.model)
            .bind(row.input_usd_per_mtok)
            .bind(row.output_usd_per_mtok)
            .bind(row.cached_input_usd_per_mtok)
            .bind(&row.source)
            .bind(row.effective_at)
            .bind(row.created_at)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seeded_prices_and_new_versions() {
        for tdb in crate::testing::backends().await {
            let now = now_ms();
            let prices = current(&tdb.db, now).await.unwrap();
            let gpt4o = prices.iter().find(|p| p.model == "gpt-4o").unwrap();
            assert_eq!(
                (gpt4o.input_usd_per_mtok, gpt4o.output_usd_per_mtok),
                (2.5, 10.0)
            );
            assert_eq!(gpt4o.cached_input_usd_per_mtok, Some(1.25));

            let newer = NewPrice {
                model: "gpt-4o".into(),
                input_usd_per_mtok: 2.0,
                output_usd_per_mtok: 8.0,
                cached_input_usd_per_mtok: None,
                source: "contract".into(),
                effective_at: now,
            };
            tdb.db
                .scoped(crate::Scope::Org)
                .set_price(&newer)
                .await
                .unwrap();
            let future = NewPrice {
                effective_at: now + 86_400_000,
                input_usd_per_mtok: 9.0,
                ..newer.clone()
            };
            tdb.db
                .scoped(crate::Scope::Org)
                .set_price(&future)
                .await
                .unwrap();
            let prices = current(&tdb.db, now).await.unwrap();
            let gpt4o: Vec<_> = prices.iter().filter(|p| p.model == "gpt-4o").collect();
            assert_eq!(gpt4o.len(), 1, "one current price per model");
            assert_eq!(gpt4o[0].input_usd_per_mtok, 2.0, "{}", tdb.name());
            assert_eq!(gpt4o[0].source, "contract");
            assert_eq!(
                history(&tdb.db)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|p| p.model == "gpt-4o")
                    .count(),
                3
            );
            tdb.cleanup().await;
        }
    }
}
