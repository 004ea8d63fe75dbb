//! Git-backed configuration (SPEC §8) against real repositories created in
//! the test (a bare "remote" over file:// and a working clone that pushes
//! to it), through the real `kt serve` and a managed `kt gateway run`, on
//! SQLite and PostgreSQL: link, sync on demand and by polling, the lint gate
//! (an invalid file is refused with its line, the team keeps its version),
//! unknown teams reported, a missing branch and an unreachable remote as
//! clear statuses, a force push, deleted and renamed files reported, a
//! signed push webhook (forged ones refused), and push-to-running times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn git_commits_reach_managed_gateways_and_invalid_ones_never_do() {
    for db in store::testing::backends().await {
        git_sync(&db).await;
        db.cleanup().await;
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare "remote" `name` under `dir` and a working repository `work/`
/// (with a `teams/` folder) whose `origin` it is.
fn remote_and_clone(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let origin = dir.join(name);
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("teams")).unwrap();
    git(dir, &["init", "-q", "--bare", origin.to_str().unwrap()]);
    git(&work, &["init", "-q"]);
    git(
        &work,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    (origin, work)
}

/// Writes `files` under `teams/`, commits them and pushes main.
fn commit_and_push(work: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, content) in files {
        std::fs::write(work.join("teams").join(name), content).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

fn branch<'a>(repo: &'a Value, name: &str) -> &'a Value {
    repo["last_sync"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["branch"] == name)
        .unwrap_or_else(|| panic!("a sync for {name}: {repo}"))
}

fn file<'a>(sync: &'a Value, name: &str) -> &'a Value {
    sync["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("{name} in {sync}"))
}

async fn git_sync(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let _ops = s.team_with_key("Operations", "ops").await;

    let dir = tempfile::tempdir().unwrap();
    let (origin, work) = remote_and_clone(dir.path(), "origin.git");
    let v1 = allowlist_config(&s.standin, "gpt-4o");
    let first = commit_and_push(
        &work,
        &[
            ("eng.yaml", &v1),
            ("team-ops.yaml", &v1),
            ("ghost.yaml", &v1),
        ],
        "first configs",
    );

    // --- Link: the first sync runs at once.
    let url = format!("file://{}", origin.display());
    let body = json!({"repo_url": url, "path": "teams", "branches": {"main": "production", "staging": "staging"}, "poll_interval_seconds": 5});
    let team_token = s
        .admin
        .create_token("eng-ci", "access", Some(&eng.team_id))
        .await;
    let r = Api::new(&s.serve.url, team_token["token"].as_str())
        .post("/v1/git-repos", &body)
        .await;
    assert_eq!(
        r.status, 403,
        "[{b}] a team token cannot link repositories: {r}"
    );
    let r = s.admin.post("/v1/git-repos", &body).await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let main = branch(&r.body, "main");
    assert_eq!(main["commit"], first.as_str(), "[{b}] {main}");
    assert_eq!(
        main["status"], "partial",
        "[{b}] the unknown team is refused: {main}"
    );
    assert_eq!(
        file(main, "teams/eng.yaml")["status"],
        "deployed",
        "[{b}] {main}"
    );
    assert_eq!(
        file(main, "teams/team-ops.yaml")["team"],
        "ops",
        "[{b}] team- prefix: {main}"
    );
    let ghost = file(main, "teams/ghost.yaml");
    assert_eq!(ghost["status"], "unknown_team", "[{b}] {ghost}");
    assert!(
        ghost["message"].as_str().unwrap().contains("ghost"),
        "[{b}] {ghost}"
    );
    let staging = branch(&r.body, "staging");
    assert_eq!(staging["status"], "error", "[{b}] {staging}");
    assert!(
        staging["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "[{b}] {staging}"
    );
    let versions = s
        .admin
        .get(&format!(
            "/v1/configurations?team_id={}&environment=production",
            eng.team_id
        ))
        .await;
    let v = &versions.data()[0];
    assert_eq!(
        (v["version"].as_i64(), v["source"].as_str()),
        (Some(1), Some("git")),
        "[{b}] {v}"
    );
    assert_eq!(v["git_commit"], first.as_str());
    assert_eq!(v["git_author"], "Ada Lovelace");
    assert_eq!(v["message"], "first configs");

    let gw = s.install.managed_gateway("eng", "production", &[]).await;
    // A second gateway of the environment (another name, its own spool).
    let gw2 = s
        .install
        .managed_gateway("eng", "production", &["--name", "eng-production-b"])
        .await;
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi"))
            .await
            .status,
        409,
        "[{b}]"
    );

    // --- An invalid commit is refused with its line; the team keeps version 1.
    let broken = "policies:\n  - name: models\n    type: model_filter\n    allowed_models: 42\n";
    let bad = commit_and_push(&work, &[("eng.yaml", broken)], "oops");
    let r = s
        .admin
        .post(&format!("/v1/git-repos/{id}/sync"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let main = branch(&r.body, "main");
    assert_eq!(main["commit"], bad.as_str());
    let eng_file = file(main, "teams/eng.yaml");
    assert_eq!(eng_file["status"], "invalid", "[{b}] {eng_file}");
    assert_eq!(
        eng_file["diagnostics"][0]["line"], 4,
        "[{b}] the error's line: {eng_file}"
    );
    let versions = s
        .admin
        .get(&format!(
            "/v1/configurations?team_id={}&environment=production",
            eng.team_id
        ))
        .await;
    assert_eq!(
        versions.data().len(),
        1,
        "[{b}] nothing deployed: {versions}"
    );
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi"))
            .await
            .status,
        200,
        "[{b}]"
    );

    // --- A valid commit reaches the managed gateway by polling alone.
    let v2 = allowlist_config(&s.standin, "gpt-4o, gpt-4o-mini");
    let pushed = Instant::now();
    commit_and_push(&work, &[("eng.yaml", &v2)], "allow mini");
    loop {
        let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi")).await;
        if r.status == 200 {
            break;
        }
        assert!(
            pushed.elapsed() < Duration::from_secs(30),
            "[{b}] the push never ran: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "[{b}] push → running on the managed gateway (5 s poll interval): {:?}",
        pushed.elapsed()
    );

    // --- A force push back to the first commit's content deploys it again.
    git(&work, &["reset", "-q", "--hard", &first]);
    git(&work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    let r = s
        .admin
        .post(&format!("/v1/git-repos/{id}/sync"), &json!({}))
        .await;
    let main = branch(&r.body, "main");
    assert_eq!(
        main["commit"],
        first.as_str(),
        "[{b}] the branch moved back: {main}"
    );
    assert_eq!(
        file(main, "teams/eng.yaml")["status"],
        "deployed",
        "[{b}] {main}"
    );
    let started = Instant::now();
    while chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi"))
        .await
        .status
        != 409
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "[{b}] the force push did not run within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // --- Deleted and renamed files are reported; their teams keep versions.
    // (Two commits: ghost.yaml has the same content as team-ops.yaml, and
    // Git would be free to see either as the rename's source.)
    git(&work, &["mv", "teams/team-ops.yaml", "teams/ops.yaml"]);
    git(&work, &["commit", "-q", "-m", "rename ops"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let r = s
        .admin
        .post(&format!("/v1/git-repos/{id}/sync"), &json!({}))
        .await;
    let main = branch(&r.body, "main");
    let renamed = file(main, "teams/team-ops.yaml");
    assert_eq!(renamed["status"], "removed", "[{b}] {main}");
    assert!(
        renamed["message"]
            .as_str()
            .unwrap()
            .contains("renamed to teams/ops.yaml"),
        "[{b}] {renamed}"
    );
    assert_eq!(
        file(main, "teams/ops.yaml")["status"],
        "unchanged",
        "[{b}] same content under the new name: {main}"
    );
    git(&work, &["rm", "-q", "teams/ghost.yaml"]);
    git(&work, &["commit", "-q", "-m", "drop ghost"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let latest = git(&work, &["rev-parse", "HEAD"]);
    let r = s
        .admin
        .post(&format!("/v1/git-repos/{id}/sync"), &json!({}))
        .await;
    let main = branch(&r.body, "main");
    let ghost = file(main, "teams/ghost.yaml");
    assert_eq!(ghost["status"], "removed", "[{b}] {ghost}");
    assert!(
        ghost["message"]
            .as_str()
            .unwrap()
            .contains("deleted from Git"),
        "[{b}] {ghost}"
    );
    assert!(
        !main.to_string().contains("team-ops.yaml"),
        "[{b}] a removal is reported once: {main}"
    );
    assert_eq!(
        main["status"], "ok",
        "[{b}] a removal refuses nothing: {main}"
    );

    // --- An unreachable remote is a clear status, and GET shows the last sync.
    let r = s
        .admin
        .post(
            "/v1/git-repos",
            &json!({"repo_url": format!("file://{}/missing.git", dir.path().display()), "branches": {"main": "production"}, "access_token": "secret-token-value"}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    assert_eq!(r.body["has_access_token"], true);
    assert!(
        !r.to_string().contains("secret-token-value"),
        "[{b}] the token is never returned"
    );
    let main = branch(&r.body, "main");
    assert_eq!(main["status"], "error", "[{b}] {main}");
    assert!(
        main["message"].as_str().unwrap().contains("cannot fetch"),
        "[{b}] {main}"
    );
    let got = s.admin.get(&format!("/v1/git-repos/{id}")).await;
    assert_eq!(got.status, 200, "[{b}] {got}");
    assert_eq!(
        branch(&got.body, "main")["commit"],
        latest.as_str(),
        "[{b}] {got}"
    );
    let r = s.admin.delete(&format!("/v1/git-repos/{id}")).await;
    assert_eq!(r.status, 204, "[{b}] {r}");
    assert_eq!(
        s.admin.get(&format!("/v1/git-repos/{id}")).await.status,
        404,
        "[{b}]"
    );
    for bad in [
        json!({"repo_url": "ssh://x", "branches": {"main": "production"}}),
        json!({"repo_url": url, "branches": {}}),
        json!({"repo_url": url, "branches": {"main": "Prod"}}),
        json!({"repo_url": url, "branches": {"main": "production"}, "poll_interval_seconds": 1}),
    ] {
        let r = s.admin.post("/v1/git-repos", &bad).await;
        assert_eq!(r.status, 422, "[{b}] {bad}: {r}");
        r.assert_error_shape("bad repository");
    }

    // --- A signed push webhook syncs at once (polling is hourly here).
    let r = s
        .admin
        .post(
            "/v1/git-repos",
            &json!({"repo_url": url, "path": "teams", "branches": {"main": "production"}, "poll_interval_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["webhook_secret"].as_str().unwrap().to_owned();
    let hook = format!("{}/v1/git-repos/{id}/webhook", s.serve.url);
    assert_eq!(
        r.body["webhook_path"],
        format!("/v1/git-repos/{id}/webhook")
    );
    let got = s.admin.get(&format!("/v1/git-repos/{id}")).await;
    assert!(
        !got.to_string().contains(&secret),
        "[{b}] the webhook secret is shown only once"
    );
    let v3 = allowlist_config(&s.standin, "gpt-4o, gpt-4o-mini");
    commit_and_push(&work, &[("eng.yaml", &v3)], "allow mini again");
    let event = br#"{"ref":"refs/heads/main"}"#;
    let http = reqwest::Client::new();
    let send = |signature: Option<String>| {
        let mut req = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(event.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401, "[{b}] unsigned");
    let forged = format!("sha256={}", sign(b"another secret", event));
    assert_eq!(
        send(Some(forged)).await.unwrap().status(),
        401,
        "[{b}] forged"
    );
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi"))
            .await
            .status,
        409,
        "[{b}] the push alone changes nothing before the webhook"
    );
    let pushed = Instant::now();
    let signed = format!("sha256={}", sign(secret.as_bytes(), event));
    assert_eq!(
        send(Some(signed)).await.unwrap().status(),
        202,
        "[{b}] signed"
    );
    let mut waiting = vec![&gw, &gw2];
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for g in waiting {
            let r = chat(&g.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi")).await;
            if r.status != 200 {
                assert!(
                    pushed.elapsed() < Duration::from_secs(10),
                    "[{b}] the webhook's sync never reached {}: {r}",
                    g.url
                );
                still.push(g);
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "[{b}] webhook → running on both managed gateways: {:?}",
        pushed.elapsed()
    );
}

/// The hex HMAC-SHA256 of `body` under `key`, as a Git host signs webhooks.
fn sign(key: &[u8], body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A repository served over Git's smart-HTTP protocol (`git http-backend`
/// behind a small HTTP server in the test) that demands the access token:
/// kt fetches with the stored token, and a wrong token is a clear status.
#[tokio::test(flavor = "multi_thread")]
async fn http_remotes_are_fetched_with_the_stored_token() {
    for db in store::testing::backends().await {
        http_remote(&db).await;
        db.cleanup().await;
    }
}

const REMOTE_TOKEN: &str = "glpat-remote-token-1234";

async fn http_remote(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let dir = tempfile::tempdir().unwrap();
    let (_origin, work) = remote_and_clone(dir.path(), "configs.git");
    let commit = commit_and_push(
        &work,
        &[("eng.yaml", &allowlist_config(&s.standin, "gpt-4o"))],
        "over http",
    );
    let base = smart_http_server(dir.path().to_owned()).await;
    let url = format!("{base}/configs.git");

    let r = s
        .admin
        .post(
            "/v1/git-repos",
            &json!({"repo_url": url, "path": "teams", "branches": {"main": "production"}, "access_token": REMOTE_TOKEN, "poll_interval_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    let main = branch(&r.body, "main");
    assert_eq!(main["commit"], commit.as_str(), "[{b}] {main}");
    assert_eq!(
        file(main, "teams/eng.yaml")["status"],
        "deployed",
        "[{b}] {main}"
    );
    assert!(!r.to_string().contains(REMOTE_TOKEN), "[{b}] token echoed");
    let versions = s
        .admin
        .get(&format!(
            "/v1/configurations?team_id={}&environment=production",
            eng.team_id
        ))
        .await;
    assert_eq!(versions.data()[0]["git_commit"], commit.as_str(), "[{b}]");

    let r = s
        .admin
        .post(
            "/v1/git-repos",
            &json!({"repo_url": url, "path": "teams", "branches": {"main": "staging"}, "access_token": "wrong-token", "poll_interval_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    let main = branch(&r.body, "main");
    assert_eq!(main["status"], "error", "[{b}] {main}");
    let message = main["message"].as_str().unwrap();
    assert!(message.contains("cannot fetch"), "[{b}] {message}");
    assert!(!message.contains("wrong-token"), "[{b}] {message}");

    let r = s
        .admin
        .post(
            "/v1/git-repos",
            &json!({"repo_url": "http://git.example.com/configs.git", "branches": {"main": "production"}}),
        )
        .await;
    assert_eq!(r.status, 422, "[{b}] plain http beyond this machine: {r}");
}

/// Serves the bare repositories under `root` over smart HTTP through
/// `git http-backend` (CGI), requiring `Authorization: Basic` with the
/// token as password (as Git hosts accept it). Returns the base URL.
async fn smart_http_server(root: std::path::PathBuf) -> String {
    use axum::body::Body;
    use axum::http::{Request, Response, StatusCode};
    use base64::Engine as _;
    use tokio::io::AsyncWriteExt as _;

    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{REMOTE_TOKEN}"))
    );
    let handler = move |req: Request<Body>| {
        let root = root.clone();
        let expected = expected.clone();
        async move {
            // (Read before the first await: a borrowed request is not Send.)
            let (auth, content_type, encoding, protocol) = {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                (
                    header("authorization"),
                    header("content-type"),
                    header("content-encoding"),
                    header("git-protocol"),
                )
            };
            if auth != expected {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("www-authenticate", "Basic realm=\"git\"")
                    .body(Body::from("token required"))
                    .unwrap();
            }
            let (method, path, query) = (
                req.method().to_string(),
                req.uri().path().to_owned(),
                req.uri().query().unwrap_or_default().to_owned(),
            );
            let body = axum::body::to_bytes(req.into_body(), 64 << 20)
                .await
                .unwrap();
            let mut child = tokio::process::Command::new("git")
                .arg("http-backend")
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("REQUEST_METHOD", method)
                .env("PATH_INFO", path)
                .env("QUERY_STRING", query)
                .env("CONTENT_TYPE", content_type)
                .env("CONTENT_LENGTH", body.len().to_string())
                .env("HTTP_CONTENT_ENCODING", encoding)
                .env("GIT_PROTOCOL", protocol)
                .env("REMOTE_ADDR", "127.0.0.1")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&body).await.unwrap();
            drop(stdin);
            let out = child.wait_with_output().await.unwrap().stdout;
            // CGI: headers, a blank line, the body.
            let split = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
                .expect("CGI headers");
            let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
            let mut resp = Response::builder();
            for line in head.lines() {
                if let Some((name, value)) = line.split_once(':') {
                    let value = value.trim();
                    if name.eq_ignore_ascii_case("status") {
                        let code = value.split(' ').next().unwrap().parse::<u16>().unwrap();
                        resp = resp.status(code);
                    } else {
                        resp = resp.header(name.trim(), value);
                    }
                }
            }
            resp.body(Body::from(out[split.0 + split.1..].to_vec()))
                .unwrap()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
