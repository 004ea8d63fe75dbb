//! Webhook deliveries (SPEC §10): `kt serve` sends what changes enqueued
//! (see `store::webhooks`), signed with each webhook's secret as
//! `X-Kt-Signature: sha256=<hex HMAC-SHA256 of the body>`, with the event in
//! `X-Kt-Event` and the delivery id in `X-Kt-Delivery`. A delivery that does
//! not get a 2xx answer is retried with back-off (1 s, 2 s, 4 s, … at most
//! 5 minutes) up to `store::webhooks::MAX_ATTEMPTS` times; every attempt's
//! result is recorded for the deliveries log. [`watch_forever`] turns gateway
//! health changes and budget thresholds into events.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How often due deliveries are looked for.
const TICK: Duration = Duration::from_millis(500);
/// Longest a receiver may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The encryption context of a webhook's secret.
pub fn secret_context(url: &str) -> String {
    format!("webhook secret {url}")
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends due deliveries for as long as the process runs.
pub async fn deliver_forever(db: store::Db, key: store::crypto::MasterKey) {
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the webhook HTTP client; webhooks are off");
            return;
        }
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = match store::webhooks::claim_due(&db, 20).await {
            Ok(d) => d,
            Err(err) => {
                tracing::warn!(error = %err, "looking for webhook deliveries failed");
                continue;
            }
        };
        for d in due {
            let attempts = d.attempts + 1;
            let (code, error) = match send(&db, &key, &http, &d).await {
                Ok(code) => (
                    Some(i64::from(code)),
                    (!(200..300).contains(&code)).then(|| format!("HTTP {code}")),
                ),
                Err(err) => (None, Some(err)),
            };
            if let Err(err) = store::webhooks::record_attempt(
                &db,
                &d.delivery_id,
                attempts,
                code,
                error.as_deref(),
            )
            .await
            {
                tracing::error!(error = %err, "recording a webhook delivery failed");
            }
        }
    }
}

async fn send(
    db: &store::Db,
    key: &store::crypto::MasterKey,
    http: &reqwest::Client,
    d: &store::webhooks::Delivery,
) -> Result<u16, String> {
    let hook = store::webhooks::get(db, &d.webhook_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the webhook was deleted")?;
    let secret = key
        .decrypt(&hook.secret_sealed, secret_context(&hook.url).as_bytes())
        .map_err(|e| format!("cannot open the webhook's secret: {e}"))?;
    let body = d.payload.clone().into_bytes();
    let answer = http
        .post(&hook.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("kt-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-kt-event", &d.event)
        .header("x-kt-delivery", &d.delivery_id)
        .header("x-kt-signature", signature(&secret, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", hook.url))?;
    Ok(answer.status().as_u16())
}

/// How often gateway health and budgets are checked for notifications.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// The level a use reached: 0, 80 or 100 (% of `limit`).
fn level(used: i64, limit: i64) -> u8 {
    if limit <= 0 {
        return 0;
    }
    let pct = i128::from(used) * 100 / i128::from(limit);
    if pct >= 100 {
        100
    } else if pct >= 80 {
        80
    } else {
        0
    }
}

/// Notifies `gateway.health_changed` (healthy / stale / down, from
/// heartbeats) and `budget.threshold` (80 % and 100 % of a team's monthly
/// `cost_limit` and of its wallet), each change once across replicas.
pub async fn watch_forever(db: store::Db) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = watch_once(&db).await {
            tracing::warn!(error = %err, "checking health and budgets for notifications failed");
        }
        // Prompts kept for reviewers go when their escalation expires.
        if let Err(err) = store::escalations::erase_expired_prompts(&db).await {
            tracing::warn!(error = %err, "erasing the prompts of expired escalations failed");
        }
    }
}

async fn watch_once(db: &store::Db) -> store::Result<()> {
    use serde_json::json;
    use store::webhooks::notify_on_change;
    let org = db.scoped(store::Scope::Org).acting_as("kt");
    let now = store::now_ms();
    // One read of each kind per round, whatever the number of gateways and
    // teams; a write only where something changed.
    let month = store::month_start_ms(now);
    let this_month = format!("budget:%:{month}");
    let seen = store::webhooks::notification_states(db, &["gateway:%", &this_month]).await?;
    let gateways = org.list_gateways().await?;
    for g in &gateways {
        let status = g.status(now);
        notify_on_change(
            db,
            &seen,
            &format!("gateway:{}", g.gateway_id),
            status,
            "gateway.health_changed",
            |old| {
                old.map(|from| {
                    json!({"gateway_id": g.gateway_id, "name": g.name, "teams": g.teams,
                           "from": from, "to": status, "address": g.address})
                })
            },
        )
        .await?;
    }
    let spend = org
        .spend_by(
            &store::rollups::RollupFilter {
                since_ms: month,
                gateway_id: None,
                team_id: None,
                daily: true,
            },
            store::rollups::SpendBy::Team,
        )
        .await?;
    let balances = org.wallet_balances().await?;
    for team in org.list_teams().await? {
        if team.archived_at.is_some() {
            continue;
        }
        let spent = spend
            .iter()
            .find(|s| s.key == team.team_id)
            .map_or(0, |s| s.cost_micros);
        let cost_limit = gateways
            .iter()
            .filter(|g| g.teams == team.team_id)
            .filter_map(|g| g.cost_limit_micros)
            .filter(|l| *l > 0)
            .min();
        let wallet = balances.get(&team.team_id).and_then(|balance| {
            balance
                .wallet
                .as_ref()
                .map(|w| (w.spent_micros + balance.reserved_micros, w.allocated_micros))
        });
        for (kind, used_limit) in [
            ("cost_limit", cost_limit.map(|l| (spent, l))),
            ("wallet", wallet),
        ] {
            let Some((used, limit)) = used_limit else {
                continue;
            };
            let now_level = level(used, limit);
            let key = format!("budget:{}:{kind}:{month}", team.team_id);
            notify_on_change(db, &seen, &key, &now_level.to_string(), "budget.threshold", |old| {
                let before = old.and_then(|o| o.parse::<u8>().ok()).unwrap_or(0);
                (now_level > before).then(|| {
                    json!({"team_id": team.team_id, "team": team.slug, "budget": kind,
                           "threshold_percent": now_level, "used_micros": used, "limit_micros": limit})
                })
            })
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels_are_80_and_100_percent() {
        assert_eq!(super::level(79, 100), 0);
        assert_eq!(super::level(80, 100), 80);
        assert_eq!(super::level(100, 100), 100);
        assert_eq!(super::level(5, 0), 0);
    }
}
