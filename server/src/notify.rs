//! Webhook deliveries (SPEC §10): `kt serve` sends what changes enqueued
//! (see `store::webhooks`), signed with each webhook's secret as
//! `X-Kt-Signature: sha256=<hex HMAC-SHA256 of the body>`, with the event in
//! `X-Kt-Event` and the delivery id in `X-Kt-Delivery`. A delivery that does
//! not get a 2xx answer is retried with back-off (1 s, 2 s, 4 s, … at most
//! 5 minutes) up to `store::webhooks::MAX_ATTEMPTS` times; every attempt's
//! result is recorded for the deliveries log.

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
