//! Seeds a database with synthetic traffic for the console render benchmark
//! (`bench/console-render.sh`): N events over the last 30 days, across 20
//! teams (one gateway each), 8 models and every verdict, written through the
//! same batch path the gateways use (so the rollups are maintained as in
//! production).
//!
//! ```text
//! KT_DATABASE_URL=sqlite://bench/console.db cargo run --release -p store --example seed_events -- 10000000
//! ```

use std::time::Instant;

use store::events::EventRow;

const TEAMS: usize = 20;
const MODELS: [&str; 8] = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "o3-mini",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
    "claude-opus-4-20250514",
    "llama-3.1-70b",
];
const VERDICTS: [(&str, Option<&str>); 6] = [
    ("allow", None),
    ("allow", None),
    ("redact", Some("pii-redact")),
    ("block", Some("pii-block")),
    ("warn", Some("budget-warn")),
    ("error", None),
];
const BATCH: usize = 2_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::args()
        .nth(1)
        .map(|n| n.replace('_', "").parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let url = std::env::var("KT_DATABASE_URL").map_err(|_| "set KT_DATABASE_URL")?;
    let db = store::Db::connect(&url).await?;
    db.migrate().await?;
    let mut teams = Vec::new();
    for i in 0..TEAMS {
        let slug = format!("bench-{i:02}");
        let team = match store::teams::by_slug(&db, &slug).await? {
            Some(t) => t,
            None => {
                db.scoped(store::Scope::Org)
                    .create_team(&store::teams::NewTeam {
                        name: format!("Bench team {i}"),
                        slug,
                    })
                    .await?
            }
        };
        let gateway = store::gateways::register(
            &db,
            &store::gateways::Registration {
                name: format!("bench-gw-{i:02}"),
                teams: vec![team.team_id.clone()],
                address: "http://127.0.0.1:0".to_owned(),
                version: "bench".to_owned(),
                config_hash: "bench".to_owned(),
                cost_limit_micros: Some(5_000_000_000),
                environment: None,
                demo: false,
            },
        )
        .await?;
        teams.push((team.team_id, gateway));
    }
    let now = store::now_ms();
    let span = 30 * 24 * store::events::HOUR_MS;
    // A small deterministic generator: the same data every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..total {
        let r = next();
        let team = (r % TEAMS as u64) as usize;
        let (verdict, policy) = VERDICTS[((r >> 8) % VERDICTS.len() as u64) as usize];
        let input = 50 + (r >> 16) as i64 % 2_000;
        let output = if verdict == "block" {
            0
        } else {
            20 + (r >> 28) as i64 % 800
        };
        batch.push(EventRow {
            event_id: format!("seed-{n:09}"),
            // Spread evenly over the last 30 days, oldest first.
            created_at: now - span + (n as i64 * span) / total as i64,
            gateway_id: teams[team].1.clone(),
            gateway_name: format!("bench-gw-{team:02}"),
            team_id: Some(teams[team].0.clone()),
            token_id: None,
            model: MODELS[((r >> 40) % MODELS.len() as u64) as usize].to_owned(),
            provider_target: Some("openai".to_owned()),
            provider_kind: Some("openai".to_owned()),
            verdict: verdict.to_owned(),
            reason: None,
            policy: policy.map(str::to_owned),
            input_tokens: input,
            output_tokens: output,
            cost_micros: (input + 4 * output) / 2,
            latency_ms: 80 + (r >> 48) as i64 % 2_500,
            upstream_status: Some(200),
            streamed: r & 1 == 0,
            demo: false,
            pii_entities: None,
            unpriced: false,
        });
        if batch.len() == BATCH {
            store::events::insert_batch(&db, &batch).await?;
            batch.clear();
            if (n + 1) % 500_000 == 0 {
                eprintln!(
                    "{} events ({:.0}/s)",
                    n + 1,
                    (n + 1) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    store::events::insert_batch(&db, &batch).await?;
    eprintln!("seeded {total} events in {:.0?}", started.elapsed());
    Ok(())
}
