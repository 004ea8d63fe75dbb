//! The `kt` command line: `kt policy lint`, start-up errors of `kt serve`,
//! and `kt admin create-user`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policy/testdata")
        .join(name)
}

/// Runs `kt ARGS` outside any installation (a scratch data directory, no
/// database URL).
/// Provider key variables the SPEC example names: set, as where a gateway
/// runs, so that lint has no "not set here" warning to give.
const SPEC_EXAMPLE_KEY_VARS: [&str; 2] = ["TEAM_ENG_OPENAI_KEY", "TEAM_ENG_ANTHROPIC_KEY"];

async fn kt(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = kt_command(args);
    cmd.env("KT_DATA_DIR", dir.join(".kt")).current_dir(dir);
    for var in SPEC_EXAMPLE_KEY_VARS {
        cmd.env(var, "sk-test");
    }
    run_command(cmd, None).await
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Every `(line, column)` pair found in a JSON value (objects with numeric
/// `line` and `column`).
fn positions(v: &Value, out: &mut Vec<(u64, u64)>) {
    match v {
        Value::Object(map) => {
            if let (Some(l), Some(c)) = (
                map.get("line").and_then(Value::as_u64),
                map.get("column").and_then(Value::as_u64),
            ) {
                out.push((l, c));
            }
            map.values().for_each(|x| positions(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| positions(x, out)),
        _ => {}
    }
}

const UNKNOWN_KEY: &str = "policies:
  - name: cap
    type: cost_limit
    monthly_limit: 20
    actoin: block
";

/// `providers: openai` is a scalar, so the indented `targets:` below it is a
/// YAML syntax error at its colon (line 6, column 10).
const SYNTAX_ERROR: &str = "policies:
  - name: pii-protection
    type: pii_detection
    action: block
providers: openai
  targets: []
";

/// The spec's example and every config shipped in `configs/teams/`.
fn shipped_configs() -> Vec<PathBuf> {
    let mut files = vec![testdata("spec-example.yaml")];
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/teams");
    if let Ok(entries) = std::fs::read_dir(&shipped) {
        let mut more: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_accepts_the_spec_example_and_the_shipped_configs() {
    let dir = tempfile::tempdir().unwrap();
    for path in shipped_configs() {
        assert!(path.exists(), "missing test data {}", path.display());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let file = path.to_str().unwrap();
        let out = kt(dir.path(), &["policy", "lint", "--file", file]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "`kt policy lint --file {name}` must pass:\n{out}"
        );
        assert!(
            !out.stderr.contains("error"),
            "a clean file must not print errors:\n{out}"
        );

        let out = kt(dir.path(), &["policy", "lint", "--file", file, "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "--json on {name}:\n{out}");
        let parsed: Result<Value, _> = serde_json::from_str(&out.stdout);
        assert!(
            parsed.is_ok(),
            "`kt policy lint --json` must print JSON on stdout:\n{out}"
        );
        let mut found = Vec::new();
        positions(&parsed.unwrap(), &mut found);
        assert!(
            found.is_empty(),
            "a clean file has no diagnostics: {found:?}\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_warns_about_unset_key_variables_but_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = testdata("spec-example.yaml");
    let mut cmd = kt_command(&["policy", "lint", "--file", file.to_str().unwrap()]);
    cmd.env("KT_DATA_DIR", dir.path().join(".kt"))
        .current_dir(dir.path());
    for var in SPEC_EXAMPLE_KEY_VARS {
        cmd.env_remove(var);
    }
    let out = run_command(cmd, None).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings alone must not fail the lint:\n{out}"
    );
    for (var, line) in [("TEAM_ENG_OPENAI_KEY", 27), ("TEAM_ENG_ANTHROPIC_KEY", 31)] {
        let expected = format!("spec-example.yaml:{line}:16: warning:");
        let warning = out
            .stdout
            .lines()
            .find(|l| l.contains(&expected))
            .unwrap_or_else(|| panic!("expected `{expected}` about {var}:\n{out}"));
        assert!(warning.contains(var), "{warning}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_reports_unknown_keys_with_position_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "team-eng.yaml", UNKNOWN_KEY);
    let out = kt(dir.path(), &["policy", "lint", "--file", &file]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "an invalid file must exit with 2:\n{out}"
    );
    let expected = format!("{file}:5:5: error:");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(&expected))
        .unwrap_or_else(|| panic!("expected a line starting `{expected}` on stderr:\n{out}"));
    assert!(
        line.contains("actoin"),
        "the error must name the unknown key: {line}"
    );
    assert!(
        out.stderr.contains("did you mean `action`"),
        "the error must suggest the right key:\n{out}"
    );

    let out = kt(dir.path(), &["policy", "lint", "--file", &file, "--json"]).await;
    assert_eq!(out.status.code(), Some(2), "--json on a bad file:\n{out}");
    let parsed: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!("`kt policy lint --json` must print JSON on stdout ({e}):\n{out}")
    });
    let mut found = Vec::new();
    positions(&parsed, &mut found);
    assert!(
        found.contains(&(5, 5)),
        "the JSON must carry line 5, column 5: {parsed}"
    );
    assert!(
        parsed.to_string().contains("actoin"),
        "the JSON must name the key: {parsed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_reports_yaml_syntax_errors_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.yaml", SYNTAX_ERROR);
    let out = kt(dir.path(), &["policy", "lint", "--file", &file]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a YAML syntax error must exit with 2:\n{out}"
    );
    let expected = format!("{file}:6:10: error:");
    assert!(
        out.stderr.lines().any(|l| l.starts_with(&expected)),
        "expected a line starting `{expected}` on stderr:\n{out}"
    );

    let out = kt(dir.path(), &["policy", "lint", "--file", &file, "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "--json on a syntax error:\n{out}"
    );
    let parsed: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json must print JSON on stdout ({e}):\n{out}"));
    let mut found = Vec::new();
    positions(&parsed, &mut found);
    assert!(found.contains(&(6, 10)), "line 6, column 10 in {parsed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_checks_every_file_and_names_the_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = testdata("spec-example.yaml");
    let good = good.to_str().unwrap();
    let bad = write(dir.path(), "bad.yaml", UNKNOWN_KEY);
    let out = kt(
        dir.path(),
        &["policy", "lint", "--file", good, "--file", &bad],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "one bad file among several fails the lint:\n{out}"
    );
    assert!(
        out.stderr.contains(&format!("{bad}:5:5: error:")),
        "the bad file is named with its position:\n{out}"
    );
    assert!(
        !out.stderr.contains(&format!("{good}:")),
        "the good file must not be reported:\n{out}"
    );

    let missing = dir.path().join("nope.yaml");
    let missing = missing.to_str().unwrap();
    let out = kt(dir.path(), &["policy", "lint", "--file", missing]).await;
    assert!(
        !out.status.success() && out.stderr.contains("nope.yaml"),
        "linting a missing file must fail and name it:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_an_unusable_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kt_command(&["serve", "--addr", "127.0.0.1:0"]);
    cmd.env("KT_DATABASE_URL", "mysql://x")
        .env("KT_DATA_DIR", dir.path().join(".kt"))
        .current_dir(dir.path());
    let out = run_command_within(cmd, None, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("`kt serve` with KT_DATABASE_URL=mysql://x must exit: {e}"));
    assert!(
        !out.status.success(),
        "`kt serve` with KT_DATABASE_URL=mysql://x must fail:\n{out}"
    );
    assert!(
        !out.stdout.contains("listening on"),
        "`kt serve` must not claim to listen without a database:\n{out}"
    );
    assert!(
        out.stderr.contains("mysql://x") || out.stderr.contains("KT_DATABASE_URL"),
        "the error must say which setting is wrong:\n{out}"
    );
    assert!(
        out.stderr.contains("sqlite") && out.stderr.contains("postgres"),
        "the error must say what is accepted (sqlite:// or postgres://):\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_user_reads_the_password_and_refuses_duplicates() {
    for db in store::testing::backends().await {
        eprintln!("--- backend: {}", db.name());
        create_user(&db).await;
        db.cleanup().await;
    }
}

async fn create_user(db: &store::testing::TestDatabase) {
    let install = Install::new(&db.url);
    let email = "ops-admin@example.com";
    let password = "correct horse battery staple";
    let args = ["admin", "create-user", "--email", email, "--role", "admin"];

    let out = install.run(&args, Some(&format!("{password}\n"))).await;
    assert!(
        out.status.success(),
        "[{}] `kt admin create-user` with a password on stdin must succeed:\n{out}",
        db.name()
    );
    assert!(
        !out.stdout.contains(password) && !out.stderr.contains(password),
        "the password must never be echoed:\n{out}"
    );
    let creds = store::users::credentials(&db.db, email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("[{}] the user {email} was not created", db.name()));
    assert!(
        creds.password_hash.starts_with("$argon2id$"),
        "passwords are stored as argon2id hashes, got `{}`",
        creds.password_hash
    );
    assert!(!creds.password_hash.contains(password));
    let user = store::users::get(&db.db, &creds.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, "admin");

    // The same email again: refused, and the first user is left alone.
    let out = install
        .run(&args, Some("another password entirely\n"))
        .await;
    assert!(
        !out.status.success(),
        "[{}] creating {email} twice must fail:\n{out}",
        db.name()
    );
    assert!(
        out.stderr.contains(email) || out.stderr.to_lowercase().contains("exists"),
        "the error must say the user already exists:\n{out}"
    );
    let again = store::users::credentials(&db.db, email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.password_hash, creds.password_hash,
        "a refused duplicate must not change the existing user's password"
    );

    // No password: refused.
    let out = install
        .run(
            &[
                "admin",
                "create-user",
                "--email",
                "nopass@example.com",
                "--role",
                "admin",
            ],
            Some(""),
        )
        .await;
    assert!(
        !out.status.success(),
        "[{}] an empty password must be refused:\n{out}",
        db.name()
    );
    assert!(
        store::users::credentials(&db.db, "nopass@example.com")
            .await
            .unwrap()
            .is_none(),
        "no user may be created without a password"
    );
}
