//! The price catalog through the API and the real gateway: seeded list
//! prices, edits by org admins only, requests charged at the catalog price,
//! and models without a price flagged (never free).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_prices_requests_and_flags_unknown_models() {
    for db in store::testing::backends().await {
        let s = start_stack(&db).await;
        let b = s.backend;

        // Seeded list prices, current version per model.
        let prices = s.admin.get("/v1/prices").await;
        assert_eq!(prices.status, 200, "{prices}");
        let gpt4o = prices
            .data()
            .into_iter()
            .find(|p| p["model"] == "gpt-4o")
            .unwrap();
        assert_eq!(gpt4o["input_usd_per_mtok"], 2.5, "{gpt4o}");
        assert_eq!(gpt4o["cached_input_usd_per_mtok"], 1.25, "{gpt4o}");
        assert!(
            gpt4o["source"].as_str().unwrap().contains("OpenAI"),
            "{gpt4o}"
        );

        // Only org admins edit prices; bad values are refused.
        let team = s.admin.create_team("Eng", "eng").await;
        let scoped = s
            .admin
            .create_token("eng-api", "access", team["id"].as_str())
            .await;
        let as_team = s.admin.with_token(scoped["token"].as_str());
        let body = json!({"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 4.0, "source": "contract 2026"});
        assert_eq!(
            as_team.put("/v1/prices/gpt-4o", &body).await.status,
            403,
            "[{b}]"
        );
        let negative =
            json!({"input_usd_per_mtok": -1.0, "output_usd_per_mtok": 4.0, "source": "x"});
        assert_eq!(
            s.admin.put("/v1/prices/gpt-4o", &negative).await.status,
            422,
            "[{b}]"
        );
        let r = s.admin.put("/v1/prices/gpt-4o", &body).await;
        assert_eq!(r.status, 200, "[{b}] {r}");
        let history = s.admin.get("/v1/prices?history=true").await.data();
        assert_eq!(
            history.iter().filter(|p| p["model"] == "gpt-4o").count(),
            2,
            "[{b}] both versions kept"
        );

        // A gateway charges at the catalog's current price: the stand-in
        // reports 1234 prompt + 567 completion tokens → 1234×1 + 567×4 = 3502 µ$.
        let key = s
            .admin
            .create_token("app", "gateway", team["id"].as_str())
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = s.install.write_config(
            "team-eng",
            &allowlist_config(&s.standin, "gpt-4o, my-finetune"),
        );
        let gw = s.install.gateway(&path, &[]).await;
        assert_eq!(
            chat(&gw.url, Some(&key), &chat_body("gpt-4o", "hi"))
                .await
                .status,
            200
        );
        assert_eq!(
            chat(&gw.url, Some(&key), &chat_body("my-finetune", "hi"))
                .await
                .status,
            200
        );
        let events = s
            .admin
            .wait_for_events("gateway_id=team-eng", "both events", |e| e.len() == 2)
            .await;
        let priced = events.iter().find(|e| e["model"] == "gpt-4o").unwrap();
        assert_eq!(priced["cost_usd"], 0.003502, "[{b}] {priced}");
        assert_eq!(priced["unpriced"], false, "{priced}");
        let unknown = events.iter().find(|e| e["model"] == "my-finetune").unwrap();
        assert_eq!(unknown["unpriced"], true, "[{b}] {unknown}");
        assert!(
            unknown["cost_usd"].as_f64().unwrap() > 0.0,
            "[{b}] never free: {unknown}"
        );
        db.cleanup().await;
    }
}
