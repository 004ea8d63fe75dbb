//! `kt doctor`: what an operator sees when the installation is healthy, and
//! which check fails (by name) when it is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use store::testing::TestDatabase;

/// Runs `kt doctor --json EXTRA…` against the stack with `env`; returns the
/// exit code and the parsed report.
async fn doctor(s: &Stack, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value, Output) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let mut cmd = s.install.command(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_command(cmd, None).await;
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`kt doctor --json` printed no JSON ({e}):\n{out}"));
    (out.status.code().unwrap_or(-1), report, out)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_on_a_healthy_install_and_names_each_failure() {
    for db in store::testing::backends().await {
        healthy_and_failing(&db).await;
        db.cleanup().await;
    }
}

async fn healthy_and_failing(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = s.install.create_admin_token("doctor").await;
    // As where the gateway runs: the provider key variable the config names is set.
    let api: [(&str, &str); 3] = [
        ("KT_API_URL", &s.serve.url),
        ("KT_API_TOKEN", &token),
        (UPSTREAM_KEY_VAR, "sk-test"),
    ];
    let good = s
        .install
        .write_config("team-good", &allowlist_config(&s.standin, "gpt-4o"));
    let gw = s.install.gateway(&good, &[]).await;
    let good = good.to_str().unwrap();

    // Healthy: every check passes, the gateway counts as healthy.
    let (code, report, out) = doctor(&s, &["--policy-config", good], &api).await;
    assert_eq!(code, 0, "[{b}] a healthy install:\n{out}");
    assert_eq!(report["ok"], true, "[{b}] {report:#}");
    for name in ["database", "master key", "gateways", "config", "api"] {
        let c = check(&report, name);
        assert!(
            c["status"] == "ok" || c["status"] == "warn",
            "[{b}] check {name}: {c}"
        );
    }
    assert!(
        check(&report, "gateways")["detail"]
            .as_str()
            .unwrap()
            .contains("1 of 1 healthy"),
        "[{b}] {report:#}"
    );

    // A config with a lint error, and one naming a secret that is not stored.
    let broken = s.install.write_config(
        "team-broken",
        "policies:\n  - name: x\n    type: model_filtr\n    allowed_models: [gpt-4o]\n",
    );
    let secret_ref = s.install.write_config(
        "team-secret",
        "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider:\n        secret_key_ref: {secret: never-stored}\n",
    );
    let (code, report, out) = doctor(
        &s,
        &[
            "--policy-config",
            broken.to_str().unwrap(),
            "--policy-config",
            secret_ref.to_str().unwrap(),
        ],
        &api,
    )
    .await;
    assert_eq!(code, 1, "[{b}] failing checks exit 1:\n{out}");
    let failed: Vec<&str> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "[{b}] exactly the two configs fail: {report:#}"
    );
    let lint = check(&report, &format!("config {}", broken.display()));
    assert!(
        lint["detail"].as_str().unwrap().contains("model_filtr"),
        "[{b}] the lint error is shown: {lint}"
    );
    let missing = check(&report, &format!("config {}", secret_ref.display()));
    assert!(
        missing["detail"].as_str().unwrap().contains("never-stored"),
        "[{b}] the missing secret is named: {missing}"
    );

    // A wrong token, and a master key that is not the installation's.
    let (code, report, out) = doctor(
        &s,
        &[],
        &[
            ("KT_API_URL", &s.serve.url),
            ("KT_API_TOKEN", "kt_ak_wrong"),
        ],
    )
    .await;
    assert_eq!(code, 1, "[{b}] {out}");
    assert_eq!(check(&report, "api")["status"], "fail", "[{b}] {report:#}");
    let other_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (code, report, out) = doctor(&s, &[], &[("KT_MASTER_KEY", other_key)]).await;
    assert_eq!(code, 1, "[{b}] {out}");
    let key = check(&report, "master key");
    assert_eq!(key["status"], "fail", "[{b}] {report:#}");
    assert!(
        key["detail"].as_str().unwrap().contains("KT_MASTER_KEY"),
        "[{b}] {key}"
    );

    // The gateway goes away: after its heartbeats stop it is reported.
    drop(gw);
    let human = run_command(s.install.command(&["doctor"]), None).await;
    assert!(
        human.stdout.contains("[ok  ] database") || human.stdout.contains("[ok  ] database:"),
        "[{b}] human output lists the checks:\n{human}"
    );
}
