//! Hot reload of a gateway's policy config through the real processes: a
//! valid edit applies within seconds without restarting, an invalid one is
//! refused while the previous config keeps serving (and `/health` says so).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

/// How long a config edit may take to apply (the gateway polls every 2 s).
const RELOAD_WITHIN: Duration = Duration::from_secs(8);

/// Polls until `check` holds or the deadline passes; returns whether it held.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + RELOAD_WITHIN;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn config_edits_apply_without_restart_and_bad_edits_are_refused() {
    for db in store::testing::backends().await {
        let s = start_stack(&db).await;
        let key = s.team_with_key("Eng", "eng").await.key;
        let path = s
            .install
            .write_config("team-eng", &allowlist_config(&s.standin, "gpt-4o"));
        let gw = s.install.gateway(&path, &[]).await;
        let first_hash = gateway_health(&gw.url).await["config_hash"]
            .as_str()
            .unwrap()
            .to_owned();

        let mini = chat_body("gpt-4o-mini", "hello");
        assert_eq!(
            chat(&gw.url, Some(&key), &mini).await.status,
            409,
            "[{}] not allowed yet",
            s.backend
        );

        // A valid edit: gpt-4o-mini becomes allowed, without a restart.
        std::fs::write(&path, allowlist_config(&s.standin, "gpt-4o, gpt-4o-mini")).unwrap();
        let applied =
            eventually(async || chat(&gw.url, Some(&key), &mini).await.status == 200).await;
        assert!(
            applied,
            "[{}] the edited config was not applied within {RELOAD_WITHIN:?}",
            s.backend
        );
        let h = gateway_health(&gw.url).await;
        let second_hash = h["config_hash"].as_str().unwrap().to_owned();
        assert_ne!(
            second_hash, first_hash,
            "/health must report the new config hash: {h}"
        );
        assert_eq!(h["status"], "ok", "{h}");
        // The fleet view reports the hash the gateway now runs.
        let fleet = s.admin.get("/v1/gateways").await.data();
        let listed = fleet.iter().find(|g| g["name"] == "team-eng").unwrap();
        assert_eq!(listed["config_hash"], second_hash.as_str(), "{listed}");

        // An invalid edit is refused: the previous config keeps serving.
        std::fs::write(&path, "policies:\n  - name: [broken\n").unwrap();
        let refused =
            eventually(async || gateway_health(&gw.url).await["status"] == "degraded").await;
        let h = gateway_health(&gw.url).await;
        assert!(
            refused,
            "[{}] /health must say the new config was refused: {h}",
            s.backend
        );
        let error = h["config_error"].as_str().unwrap();
        assert!(
            error.contains("team-eng.yaml:3:1:"),
            "the error names file and line: {error}"
        );
        assert_eq!(
            h["config_hash"],
            second_hash.as_str(),
            "the previous config keeps running"
        );
        assert_eq!(
            chat(&gw.url, Some(&key), &mini).await.status,
            200,
            "still served by the previous config"
        );
        assert_eq!(
            chat(&gw.url, Some(&key), &chat_body("gpt-3.5-turbo", "hi"))
                .await
                .status,
            409,
            "and still enforced by it"
        );
        db.cleanup().await;
    }
}
