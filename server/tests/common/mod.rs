//! Process-level test harness for the `kt` binary.
//!
//! - [`Install`]: one kt installation (a database URL and a data directory)
//!   from which `kt` processes are started with the right environment.
//! - [`KtProcess`]: a running `kt serve` / `kt gateway run`, started by waiting
//!   for its `… listening on http://…` line, killed when dropped.
//! - [`Api`]: a small client of the control-plane API.
//! - [`StandIn`]: an OpenAI-compatible provider inside the test process that
//!   records every request it receives.
//! - [`AnthropicStandIn`]: the same for Anthropic's Messages API.
//!
//! Nothing of kt is mocked: the tests run the real binary against a real
//! database (SQLite, and PostgreSQL when a server answers).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The binary under test.
pub const KT: &str = env!("CARGO_BIN_EXE_kt");
/// Longest wait for a process to print its `listening on` line, or for a
/// one-shot command to finish.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a request's event to show up in `GET /v1/events`.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variable the gateway reads the stand-in's API key from.
pub const UPSTREAM_KEY_VAR: &str = "KT_TEST_UPSTREAM_KEY";
/// The upstream API key handed to gateways (the stand-in must receive it).
pub const UPSTREAM_KEY: &str = "sk-standin-0123456789abcdef";

/// What the stand-in answers to a non-streamed request.
pub const STANDIN_CONTENT: &str = "Hello from the stand-in provider.";
pub const STANDIN_PROMPT_TOKENS: i64 = 1234;
pub const STANDIN_COMPLETION_TOKENS: i64 = 567;
/// What the stand-in streams, piece by piece.
pub const STREAM_PIECES: &[&str] = &["Streamed ", "hello ", "from ", "the ", "stand-in."];
pub const STREAM_PROMPT_TOKENS: i64 = 321;
pub const STREAM_COMPLETION_TOKENS: i64 = 45;
/// Pause between two SSE frames of a streamed answer.
pub const STREAM_FRAME_DELAY: Duration = Duration::from_millis(120);

// ---------------------------------------------------------------------------
// kt processes

/// One kt installation: a database and a data directory shared by the kt
/// processes of a test (as on one machine).
pub struct Install {
    pub db_url: String,
    pub data_dir: tempfile::TempDir,
}

/// A finished one-shot command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Install {
    pub fn new(db_url: &str) -> Install {
        Install {
            db_url: db_url.to_owned(),
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }

    /// A `kt` command with this installation's environment. Output is piped,
    /// stdin is null, and the child is killed when the handle is dropped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = kt_command(args);
        cmd.env("KT_DATABASE_URL", &self.db_url)
            .env("KT_DATA_DIR", self.data_dir.path())
            .current_dir(self.data_dir.path());
        cmd
    }

    /// Starts `kt serve` on a free port.
    pub async fn serve(&self) -> KtProcess {
        KtProcess::start(
            self.command(&["serve", "--addr", "127.0.0.1:0"]),
            "kt serve",
        )
        .await
    }

    /// Writes `config` to `<data dir>/<stem>.yaml` and returns the path.
    pub fn write_config(&self, stem: &str, config: &str) -> PathBuf {
        let path = self.data_dir.path().join(format!("{stem}.yaml"));
        std::fs::write(&path, config).unwrap();
        path
    }

    /// Starts `kt gateway run --policy-config CONFIG --listen 127.0.0.1:0
    /// EXTRA…` with the stand-in's API key in its environment.
    pub async fn gateway(&self, config: &Path, extra: &[&str]) -> KtProcess {
        self.gateway_with_env(config, extra, &[]).await
    }

    /// [`Install::gateway`] with more environment variables (e.g. the
    /// Anthropic stand-in's key).
    pub async fn gateway_with_env(
        &self,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> KtProcess {
        let config = config.to_str().unwrap();
        let mut args = vec![
            "gateway",
            "run",
            "--policy-config",
            config,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.env(UPSTREAM_KEY_VAR, UPSTREAM_KEY);
        for (name, value) in env {
            cmd.env(name, value);
        }
        KtProcess::start(cmd, "kt gateway").await
    }

    /// Starts a managed gateway: `kt gateway run --team TEAM --environment
    /// ENV` (no policy file: it runs the team's current configuration
    /// version), with the stand-in's API key in its environment.
    pub async fn managed_gateway(
        &self,
        team: &str,
        environment: &str,
        extra: &[&str],
    ) -> KtProcess {
        let mut args = vec![
            "gateway",
            "run",
            "--team",
            team,
            "--environment",
            environment,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.env(UPSTREAM_KEY_VAR, UPSTREAM_KEY);
        KtProcess::start(cmd, "kt gateway").await
    }

    /// Starts another replica of a gateway, as a second host would run it:
    /// `kt gateway run --policy-config CONFIG` like [`Install::gateway`] (same
    /// database, same config file, hence the same name), but with a data
    /// directory of its own (its own event spool).
    pub async fn gateway_replica(&self, config: &Path, extra: &[&str]) -> Replica {
        let data_dir = tempfile::tempdir().unwrap();
        let config = config.to_str().unwrap();
        let mut args = vec![
            "gateway",
            "run",
            "--policy-config",
            config,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.env("KT_DATA_DIR", data_dir.path())
            .current_dir(data_dir.path())
            .env(UPSTREAM_KEY_VAR, UPSTREAM_KEY);
        let process = KtProcess::start(cmd, "kt gateway").await;
        Replica { process, data_dir }
    }

    /// Runs a one-shot `kt` command to completion (60 s at most), feeding
    /// `stdin` when given.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_command(self.command(args), stdin).await
    }

    /// `kt admin create-token --name NAME`: a new org-admin token.
    pub async fn create_admin_token(&self, name: &str) -> String {
        let out = self
            .run(&["admin", "create-token", "--name", name], None)
            .await;
        assert!(
            out.status.success(),
            "`kt admin create-token` failed:\n{out}"
        );
        let lines: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "`kt admin create-token` must print the token alone on one line:\n{out}"
        );
        let token = lines[0].trim().to_owned();
        assert!(
            token.starts_with("kt_ak_") && token.len() > "kt_ak_".len() + 16,
            "`kt admin create-token` printed `{token}`, expected a kt_ak_… token"
        );
        token
    }
}

/// A gateway replica with its own data directory ([`Install::gateway_replica`]);
/// derefs to its process. The process is killed, then the directory removed,
/// when dropped.
pub struct Replica {
    pub process: KtProcess,
    pub data_dir: tempfile::TempDir,
}

impl std::ops::Deref for Replica {
    type Target = KtProcess;

    fn deref(&self) -> &KtProcess {
        &self.process
    }
}

impl std::ops::DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut KtProcess {
        &mut self.process
    }
}

/// A `kt` command with a clean kt environment (no inherited `KT_*`).
pub fn kt_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(KT);
    cmd.args(args)
        .env(
            "RUST_LOG",
            std::env::var("KT_TEST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .env_remove("KT_API_URL")
        .env_remove("KT_API_TOKEN")
        .env_remove("KT_MASTER_KEY")
        .env_remove("KT_DATABASE_URL")
        .env_remove("KT_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a prepared command to completion (60 s at most).
pub async fn run_command(cmd: Command, stdin: Option<&str>) -> Output {
    run_command_within(cmd, stdin, START_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a prepared command to completion; `Err` (with what it wrote to
/// stderr) when it is still running after `limit`, in which case it is killed.
pub async fn run_command_within(
    mut cmd: Command,
    stdin: Option<&str>,
    limit: Duration,
) -> Result<Output, String> {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {KT}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The command may exit without reading: ignore a broken pipe.
        let _ = pipe.write_all(input.as_bytes()).await;
        drop(pipe);
    }
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let out_task = tokio::spawn(collect_lines(child.stdout.take().unwrap(), stdout.clone()));
    let err_task = tokio::spawn(collect_lines(child.stderr.take().unwrap(), stderr.clone()));
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), err_task).await;
            let text = stderr.lock().unwrap().clone();
            return Err(format!(
                "`kt` was still running after {limit:?}\n--- stderr ---\n{text}"
            ));
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), out_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), err_task).await;
    let stdout = stdout.lock().unwrap().clone();
    let stderr = stderr.lock().unwrap().clone();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// A running `kt serve` or `kt gateway run`.
pub struct KtProcess {
    /// `http://127.0.0.1:PORT`, as printed on the listening line.
    pub url: String,
    label: String,
    child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
}

impl KtProcess {
    /// Spawns `cmd` and waits (60 s at most) for the line
    /// `<label>: listening on http://…` on its stdout. Panics with the
    /// process's stderr when it exits or stays silent.
    pub async fn start(mut cmd: Command, label: &str) -> KtProcess {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({KT}): {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_task = tokio::spawn(collect_lines(child.stderr.take().unwrap(), stderr.clone()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let expected = format!("{label}: listening on ");
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            let mut before = Vec::new();
            loop {
                match stdout.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(pos) = line.find("listening on http://") {
                            let url = line[pos + "listening on ".len()..].trim().to_owned();
                            return Ok((line, url, before));
                        }
                        before.push(line);
                    }
                    Ok(None) => {
                        return Err(format!(
                            "its stdout closed without a `listening on` line (stdout: {before:?})"
                        ));
                    }
                    Err(e) => return Err(format!("reading its stdout failed: {e}")),
                }
            }
        })
        .await;
        let failure = match waited {
            Ok(Ok((line, url, before))) => {
                assert!(
                    line.starts_with(&expected),
                    "{label} printed `{line}`; expected the line `{expected}http://127.0.0.1:PORT`"
                );
                assert!(
                    before.is_empty(),
                    "{label} printed other lines on stdout before its listening line: {before:?}"
                );
                assert!(
                    url.starts_with("http://127.0.0.1:")
                        && url
                            .rsplit(':')
                            .next()
                            .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p != 0)),
                    "{label} printed `{line}`: expected http://127.0.0.1:PORT with a real port"
                );
                // Keep draining stdout so the process never blocks on it.
                let rest = stderr.clone();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = stdout.next_line().await {
                        rest.lock().unwrap().push_str(&format!("[stdout] {line}\n"));
                    }
                });
                return KtProcess {
                    url,
                    label: label.to_owned(),
                    child,
                    stderr,
                };
            }
            Ok(Err(why)) => why,
            Err(_) => format!("it printed no `listening on` line within {START_TIMEOUT:?}"),
        };
        let _ = child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr_task).await;
        let status = match status {
            Ok(Ok(s)) => s.to_string(),
            _ => "unknown".to_owned(),
        };
        let text = stderr.lock().unwrap().clone();
        panic!("{label} did not start: {failure}; {status}\n--- {label} stderr ---\n{text}");
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit.
    pub async fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self
            .child
            .id()
            .unwrap_or_else(|| panic!("{} has already exited", self.label));
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "{} did not exit within {limit:?} of SIGTERM\n--- stderr ---\n{}",
                self.label,
                self.stderr()
            ),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for KtProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.stderr();
            let tail_start = text.char_indices().rev().nth(12_000).map_or(0, |(i, _)| i);
            eprintln!(
                "--- {} ({}) stderr (tail) ---\n{}\n--- end of {} stderr ---",
                self.label,
                self.url,
                &text[tail_start..],
                self.label
            );
        }
        let _ = self.child.start_kill();
    }
}

async fn collect_lines(pipe: impl AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut buf = into.lock().unwrap();
        buf.push_str(&line);
        buf.push('\n');
    }
}

// ---------------------------------------------------------------------------
// Control-plane API client

/// A response: status and JSON body (a non-JSON body becomes a JSON string).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The `data` list of a list answer (panics with the body otherwise).
    pub fn data(&self) -> Vec<Value> {
        self.body
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "expected {{\"data\": [...]}}, got {}: {}",
                    self.status, self.body
                )
            })
    }

    /// Asserts the shared error shape `{"error": {"code", "message"}}`.
    pub fn assert_error_shape(&self, what: &str) {
        let err = self.body.get("error");
        assert!(
            err.and_then(|e| e.get("code"))
                .is_some_and(Value::is_string)
                && err
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .is_some_and(|m| !m.is_empty()),
            "{what}: expected an error body {{\"error\": {{\"code\", \"message\"}}}}, got {}: {}",
            self.status,
            self.body
        );
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.body)
    }
}

/// A client of `kt serve`'s API, with a bearer token (or none).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: Option<&str>) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            http: http_client(),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            base: self.base.clone(),
            token: token.map(str::to_owned),
            http: self.http.clone(),
        }
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        let rb = self.auth(self.http.get(format!("{}{path}", self.base)));
        Reply::read(rb.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        let rb = self.auth(self.http.post(format!("{}{path}", self.base)).json(body));
        Reply::read(rb.send().await.unwrap()).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        let rb = self.auth(self.http.patch(format!("{}{path}", self.base)).json(body));
        Reply::read(rb.send().await.unwrap()).await
    }

    /// `GET path` answered 2xx, as text (YAML, CSV).
    pub async fn get_text(&self, path: &str) -> String {
        let rb = self.auth(self.http.get(format!("{}{path}", self.base)));
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {text}");
        text
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        let rb = self.auth(self.http.put(format!("{}{path}", self.base)).json(body));
        Reply::read(rb.send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let rb = self.auth(self.http.delete(format!("{}{path}", self.base)));
        Reply::read(rb.send().await.unwrap()).await
    }

    /// `POST /v1/teams`, expecting 201; returns the team.
    pub async fn create_team(&self, name: &str, slug: &str) -> Value {
        let r = self
            .post("/v1/teams", &json!({"name": name, "slug": slug}))
            .await;
        assert_eq!(r.status, 201, "POST /v1/teams {slug}: {r}");
        assert!(
            r.body["id"].as_str().is_some_and(|s| !s.is_empty()),
            "POST /v1/teams: no id in {r}"
        );
        assert_eq!(r.body["slug"], slug, "POST /v1/teams: {r}");
        assert_eq!(r.body["name"], name, "POST /v1/teams: {r}");
        r.body
    }

    /// `POST /v1/tokens`, expecting 201; returns the created token (with
    /// its secret in `token`).
    pub async fn create_token(&self, name: &str, token_type: &str, team_id: Option<&str>) -> Value {
        let r = self
            .post(
                "/v1/tokens",
                &json!({"name": name, "token_type": token_type, "team_id": team_id}),
            )
            .await;
        assert_eq!(r.status, 201, "POST /v1/tokens ({token_type}): {r}");
        let secret = r.body["token"].as_str().unwrap_or_default();
        let expected_prefix = if token_type == "gateway" {
            "kt_gk_"
        } else {
            "kt_ak_"
        };
        assert!(
            secret.starts_with(expected_prefix),
            "POST /v1/tokens ({token_type}): expected a {expected_prefix}… token, got {r}"
        );
        assert!(
            r.body["id"].as_str().is_some_and(|s| !s.is_empty()),
            "POST /v1/tokens: no id in {r}"
        );
        assert_eq!(r.body["token_type"], token_type, "POST /v1/tokens: {r}");
        r.body
    }

    /// `GET /v1/events?QUERY`, expecting 200; the events.
    pub async fn events(&self, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/events?{query}")).await;
        assert_eq!(r.status, 200, "GET /v1/events?{query}: {r}");
        r.data()
    }

    /// Polls `GET /v1/events?QUERY` until `done` holds (5 s at most).
    pub async fn wait_for_events(
        &self,
        query: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let events = self.events(query).await;
            if done(events.as_slice()) {
                return events;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {EVENT_TIMEOUT:?} for {what} in GET /v1/events?{query}; last answer:\n{}",
                    serde_json::to_string_pretty(&events).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap()
}

/// `POST {gateway}/v1/chat/completions` with `key` as bearer (if any).
pub async fn chat(gateway: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut rb = http_client()
        .post(format!("{gateway}/v1/chat/completions"))
        .json(body);
    if let Some(key) = key {
        rb = rb.bearer_auth(key);
    }
    Reply::read(rb.send().await.unwrap()).await
}

/// A minimal OpenAI chat request.
pub fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Parses an RFC 3339 time.
pub fn parse_rfc3339(s: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("`{s}` is not an RFC 3339 time: {e}"))
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------------------
// Stand-in OpenAI provider

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the OpenAI stand-in answers. [`Answering::Canned`] (the default) is
/// what every test relies on unless it opts into another mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Answering {
    /// [`STANDIN_CONTENT`], or [`STREAM_PIECES`] when streamed.
    #[default]
    Canned,
    /// The text of the last user message received (a string, or its text
    /// parts joined with `\n`); streamed in pieces of `chunk_bytes` bytes
    /// (fewer at the end, never inside a UTF-8 character), so that whatever
    /// the text contains (e.g. a `[EMAIL_1]` marker) may be cut across SSE
    /// chunks.
    Echo { chunk_bytes: usize },
    /// A fixed answer: these pieces joined when not streamed, one SSE chunk
    /// per piece when streamed.
    Fixed { pieces: Vec<String> },
    /// An error: this HTTP status with OpenAI's error body
    /// ([`standin_error_body`]), streamed or not.
    Status { status: u16 },
}

impl Answering {
    /// [`Answering::Echo`].
    pub fn echo(chunk_bytes: usize) -> Answering {
        assert!(chunk_bytes > 0, "chunk size must be positive");
        Answering::Echo { chunk_bytes }
    }

    /// [`Answering::Fixed`] with these exact pieces.
    pub fn fixed(pieces: &[&str]) -> Answering {
        Answering::Fixed {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// [`Answering::Status`]: every request fails with `status`.
    pub fn status(status: u16) -> Answering {
        assert!(
            StatusCode::from_u16(status).is_ok_and(|s| !s.is_success()),
            "an error status, not {status}"
        );
        Answering::Status { status }
    }

    /// [`Answering::Fixed`]: `text` cut every `chunk_bytes` bytes.
    pub fn fixed_sized(text: &str, chunk_bytes: usize) -> Answering {
        Answering::Fixed {
            pieces: split_pieces(text, chunk_bytes),
        }
    }
}

/// `text` cut every `chunk_bytes` bytes (a piece ends early rather than
/// inside a UTF-8 character).
pub fn split_pieces(text: &str, chunk_bytes: usize) -> Vec<String> {
    assert!(chunk_bytes > 0, "chunk size must be positive");
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + chunk_bytes).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if end == start {
            // A character longer than the chunk size: take it whole.
            end = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
        pieces.push(text[start..end].to_owned());
        start = end;
    }
    pieces
}

/// The text of the last `user` message of an OpenAI chat request: a string,
/// or its text parts joined with `\n` ("" when there is none).
pub fn last_user_text(request: &Value) -> String {
    let Some(messages) = request["messages"].as_array() else {
        return String::new();
    };
    let Some(last) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// One answer the stand-in sent: its text pieces, in order (one piece for a
/// non-streamed answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAnswer {
    pub streamed: bool,
    pub pieces: Vec<String>,
}

impl SentAnswer {
    /// The whole text.
    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

/// Pause between two SSE frames in the [`Answering::Echo`] and
/// [`Answering::Fixed`] modes (they send many small frames).
pub const ANSWERING_FRAME_DELAY: Duration = Duration::from_millis(20);

#[derive(Clone)]
struct StandInState {
    received: Arc<Mutex<Vec<Recorded>>>,
    answering: Arc<Mutex<Answering>>,
    sent: Arc<Mutex<Vec<SentAnswer>>>,
}

/// An OpenAI-compatible provider on 127.0.0.1, answering
/// `POST /v1/chat/completions` (JSON, or SSE for `"stream": true`) and
/// recording every request. What it answers is [`Answering::Canned`] unless
/// started with (or switched to) another [`Answering`] mode.
pub struct StandIn {
    /// `http://127.0.0.1:PORT/v1`: the `base_url` to put in a target.
    pub base_url: String,
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Recorded>>>,
    answering: Arc<Mutex<Answering>>,
    sent: Arc<Mutex<Vec<SentAnswer>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// A stand-in giving its canned answers.
    pub async fn start() -> StandIn {
        StandIn::start_answering(Answering::Canned).await
    }

    /// A stand-in echoing the last user message ([`Answering::Echo`]).
    pub async fn start_echo(chunk_bytes: usize) -> StandIn {
        StandIn::start_answering(Answering::echo(chunk_bytes)).await
    }

    /// A stand-in giving a fixed answer in these pieces ([`Answering::Fixed`]).
    pub async fn start_fixed(pieces: &[&str]) -> StandIn {
        StandIn::start_answering(Answering::fixed(pieces)).await
    }

    pub async fn start_answering(answering: Answering) -> StandIn {
        let state = StandInState {
            received: Arc::new(Mutex::new(Vec::new())),
            answering: Arc::new(Mutex::new(answering)),
            sent: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(standin_chat))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StandIn {
            base_url: format!("http://{addr}/v1"),
            addr,
            received: state.received,
            answering: state.answering,
            sent: state.sent,
            task,
        }
    }

    /// Changes how the stand-in answers from the next request on.
    pub fn set_answering(&self, answering: Answering) {
        *self.answering.lock().unwrap() = answering;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Every answer sent so far (to JSON requests), in order.
    pub fn answers(&self) -> Vec<SentAnswer> {
        self.sent.lock().unwrap().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn standin_chat(
    State(state): State<StandInState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    state.received.lock().unwrap().push(Recorded {
        path: "/v1/chat/completions".to_owned(),
        headers,
        body: parsed.clone().unwrap_or(Value::Null),
    });
    let Some(request) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "stand-in: body is not JSON", "type": "invalid_request_error"}})),
        )
            .into_response();
    };
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let streamed = request["stream"] == Value::Bool(true);
    let answering = state.answering.lock().unwrap().clone();
    let (pieces, delay) = match answering {
        Answering::Status { status } => {
            let status = StatusCode::from_u16(status).unwrap();
            return (status, axum::Json(standin_error_body(status.as_u16()))).into_response();
        }
        Answering::Canned if streamed => (
            STREAM_PIECES.iter().map(|p| (*p).to_owned()).collect(),
            STREAM_FRAME_DELAY,
        ),
        Answering::Canned => (vec![STANDIN_CONTENT.to_owned()], STREAM_FRAME_DELAY),
        Answering::Echo { chunk_bytes } => (
            split_pieces(&last_user_text(&request), chunk_bytes),
            ANSWERING_FRAME_DELAY,
        ),
        Answering::Fixed { pieces } => (pieces, ANSWERING_FRAME_DELAY),
    };
    if streamed {
        state.sent.lock().unwrap().push(SentAnswer {
            streamed: true,
            pieces: pieces.clone(),
        });
        let include_usage = request["stream_options"]["include_usage"] == Value::Bool(true);
        return stream_answer(&model, include_usage, &pieces, delay);
    }
    let content = pieces.concat();
    state.sent.lock().unwrap().push(SentAnswer {
        streamed: false,
        pieces: vec![content.clone()],
    });
    axum::Json(json!({
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": STANDIN_PROMPT_TOKENS,
            "completion_tokens": STANDIN_COMPLETION_TOKENS,
            "total_tokens": STANDIN_PROMPT_TOKENS + STANDIN_COMPLETION_TOKENS
        }
    }))
    .into_response()
}

/// The OpenAI-format error body the stand-in answers in the
/// [`Answering::Status`] mode.
pub fn standin_error_body(status: u16) -> Value {
    json!({"error": {
        "message": format!("stand-in: failing with {status} as asked"),
        "type": if status >= 500 { "server_error" } else { "invalid_request_error" },
        "param": null,
        "code": format!("standin_{status}")
    }})
}

/// An SSE answer sent frame by frame (one `delta.content` per piece) with a
/// pause of `delay` between frames, the way OpenAI streams: usage comes in a
/// final chunk only when asked for.
fn stream_answer(model: &str, include_usage: bool, pieces: &[String], delay: Duration) -> Response {
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": "chatcmpl-standin-stream",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in pieces {
        frames.push(chunk(json!({"content": piece}), Value::Null));
    }
    frames.push(chunk(json!({}), json!("stop")));
    if include_usage {
        frames.push(json!({
            "id": "chatcmpl-standin-stream",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": STREAM_PROMPT_TOKENS,
                "completion_tokens": STREAM_COMPLETION_TOKENS,
                "total_tokens": STREAM_PROMPT_TOKENS + STREAM_COMPLETION_TOKENS
            }
        }));
    }
    let mut texts: Vec<String> = frames.iter().map(|f| format!("data: {f}\n\n")).collect();
    texts.push("data: [DONE]\n\n".to_owned());
    let stream =
        futures::stream::iter(texts.into_iter().enumerate()).then(move |(i, text)| async move {
            if i > 0 {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, std::io::Error>(text)
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Concatenates the `delta.content` of every `data:` frame of an SSE body.
pub fn sse_content(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Stand-in Anthropic provider

/// Environment variable the gateway reads the Anthropic stand-in's key from.
pub const ANTHROPIC_KEY_VAR: &str = "KT_TEST_ANTHROPIC_KEY";
/// The Anthropic key handed to gateways (the stand-in must receive it in
/// `x-api-key`).
pub const ANTHROPIC_KEY: &str = "sk-ant-standin-fedcba9876543210";

/// What the Anthropic stand-in answers to a non-streamed request.
pub const ANTHROPIC_CONTENT: &str = "Hello from the Anthropic stand-in.";
pub const ANTHROPIC_INPUT_TOKENS: i64 = 2345;
pub const ANTHROPIC_OUTPUT_TOKENS: i64 = 678;
/// What the Anthropic stand-in streams, one `text_delta` per piece.
pub const ANTHROPIC_STREAM_PIECES: &[&str] = &[
    "Claude ",
    "streams ",
    "from ",
    "the ",
    "Anthropic ",
    "stand-in.",
];
/// Input tokens of a streamed answer, in `message_start`.
pub const ANTHROPIC_STREAM_INPUT_TOKENS: i64 = 432;
/// Output tokens of a streamed answer, in `message_delta` (`message_start`
/// says 1, as Anthropic does).
pub const ANTHROPIC_STREAM_OUTPUT_TOKENS: i64 = 56;

/// An Anthropic-compatible provider on 127.0.0.1, answering
/// `POST /v1/messages` (JSON, or Anthropic SSE for `"stream": true`) and
/// recording every request it receives, on any path (other paths answer 404).
/// A request with `tools` gets a `tool_use` of the first tool
/// ([`anthropic_tool_message`], [`anthropic_tool_stream_events`]) unless its
/// last message carries a `tool_result`; one containing an
/// [`anthropic_failure_prompt`] gets that error status.
pub struct AnthropicStandIn {
    /// `http://127.0.0.1:PORT` (no `/v1`): the `base_url` to put in a target.
    pub base_url: String,
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AnthropicStandIn {
    pub async fn start() -> AnthropicStandIn {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/messages", post(anthropic_messages))
            .fallback(anthropic_unknown_path)
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        AnthropicStandIn {
            base_url: format!("http://{addr}"),
            addr,
            received,
            task,
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for AnthropicStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Anthropic's error body.
fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

async fn anthropic_unknown_path(
    State(received): State<Arc<Mutex<Vec<Recorded>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    received.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    anthropic_error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("stand-in: no route {}", uri.path()),
    )
}

async fn anthropic_messages(
    State(received): State<Arc<Mutex<Vec<Recorded>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    received.lock().unwrap().push(Recorded {
        path: "/v1/messages".to_owned(),
        headers,
        body: parsed.clone().unwrap_or(Value::Null),
    });
    let Some(request) = parsed else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "stand-in: body is not JSON",
        );
    };
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    if let Some(status) = anthropic_failure_asked(&request) {
        return anthropic_error(
            status,
            anthropic_error_type(status.as_u16()),
            &anthropic_failure_message(status.as_u16()),
        );
    }
    let tool = anthropic_tool_to_call(&request);
    let streamed = request["stream"] == Value::Bool(true);
    match (tool, streamed) {
        (None, true) => anthropic_stream_answer(anthropic_stream_events(&model)),
        (Some(tool), true) => anthropic_stream_answer(anthropic_tool_stream_events(&model, &tool)),
        (None, false) => axum::Json(anthropic_message(&model)).into_response(),
        (Some(tool), false) => axum::Json(anthropic_tool_message(&model, &tool)).into_response(),
    }
}

/// A user text asking the Anthropic stand-in to fail: a request containing
/// it (in any message's text) is answered with `status` and Anthropic's
/// error body.
pub fn anthropic_failure_prompt(status: u16) -> String {
    format!("{ANTHROPIC_FAILURE_PREFIX}{status}")
}

const ANTHROPIC_FAILURE_PREFIX: &str = "stand-in: fail with ";

/// The `error.message` of the stand-in's failure with `status`.
pub fn anthropic_failure_message(status: u16) -> String {
    format!("stand-in: failing with {status} as asked")
}

/// Anthropic's `error.type` for a status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The status an [`anthropic_failure_prompt`] in the request asks for.
fn anthropic_failure_asked(request: &Value) -> Option<StatusCode> {
    let messages = request["messages"].as_array()?;
    let texts = messages.iter().flat_map(|m| match &m["content"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    });
    for text in texts {
        if let Some(pos) = text.find(ANTHROPIC_FAILURE_PREFIX) {
            let digits: String = text[pos + ANTHROPIC_FAILURE_PREFIX.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return digits
                .parse::<u16>()
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok());
        }
    }
    None
}

/// The tool the Anthropic stand-in calls: the first of the request's
/// `tools`, unless the last message already carries a `tool_result` (then it
/// answers in text, as a model does once it has the result).
fn anthropic_tool_to_call(request: &Value) -> Option<String> {
    let name = request["tools"].as_array()?.first()?["name"].as_str()?;
    let last = request["messages"].as_array()?.last()?;
    let has_result = last["content"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    (!has_result).then(|| name.to_owned())
}

/// The id of the stand-in's `tool_use` block (streamed or not).
pub const ANTHROPIC_TOOL_USE_ID: &str = "toolu_standin_0123456789";
/// The text the stand-in says before calling a tool.
pub const ANTHROPIC_TOOL_TEXT: &str = "Let me look that up.";

/// The input the stand-in calls a tool with.
pub fn anthropic_tool_input() -> Value {
    json!({"city": "Paris", "unit": "celsius", "days": 3, "hourly": false})
}

/// The stand-in's non-streamed answer calling `tool` when the request has
/// `tools`: a text block, then a `tool_use` block.
pub fn anthropic_tool_message(model: &str, tool: &str) -> Value {
    json!({
        "id": "msg_standin_tool_0123",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "text", "text": ANTHROPIC_TOOL_TEXT},
            {"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": tool,
             "input": anthropic_tool_input()}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {
            "input_tokens": ANTHROPIC_INPUT_TOKENS,
            "output_tokens": ANTHROPIC_OUTPUT_TOKENS
        }
    })
}

/// The events of the stand-in's streamed answer calling `tool`: a text
/// block, then a `tool_use` block whose input comes in `input_json_delta`
/// pieces, and `stop_reason: "tool_use"`.
pub fn anthropic_tool_stream_events(model: &str, tool: &str) -> Vec<(String, Value)> {
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_standin_tool_stream", "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": ANTHROPIC_STREAM_INPUT_TOKENS, "output_tokens": 1}
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": ANTHROPIC_TOOL_TEXT}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
                   "content_block": {"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID,
                                     "name": tool, "input": {}}}),
        ),
    ];
    for piece in split_pieces(&anthropic_tool_input().to_string(), 9) {
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
                   "delta": {"type": "input_json_delta", "partial_json": piece}}),
        ));
    }
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    ));
    events.push((
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"output_tokens": ANTHROPIC_STREAM_OUTPUT_TOKENS}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    events
        .into_iter()
        .map(|(name, data)| (name.to_owned(), data))
        .collect()
}

/// The Anthropic stand-in's non-streamed answer for `model`, exactly.
pub fn anthropic_message(model: &str) -> Value {
    json!({
        "id": "msg_standin_0123456789",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": ANTHROPIC_CONTENT}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": ANTHROPIC_INPUT_TOKENS,
            "output_tokens": ANTHROPIC_OUTPUT_TOKENS
        }
    })
}

/// The events of the Anthropic stand-in's streamed answer for `model`, in
/// order: `(event name, data)`.
pub fn anthropic_stream_events(model: &str) -> Vec<(String, Value)> {
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_standin_stream", "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": ANTHROPIC_STREAM_INPUT_TOKENS, "output_tokens": 1}
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
    ];
    for piece in ANTHROPIC_STREAM_PIECES {
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": ANTHROPIC_STREAM_OUTPUT_TOKENS}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    events
        .into_iter()
        .map(|(name, data)| (name.to_owned(), data))
        .collect()
}

/// Anthropic SSE sent piece by piece with a pause between pieces: one event
/// per piece, except `message_delta`, which is cut in the middle of its
/// `data:` line (networks split where they like).
fn anthropic_stream_answer(events: Vec<(String, Value)>) -> Response {
    let mut pieces: Vec<String> = Vec::new();
    for (name, data) in events {
        let text = format!("event: {name}\ndata: {data}\n\n");
        if name == "message_delta" {
            let cut = text.len() / 2;
            pieces.push(text[..cut].to_owned());
            pieces.push(text[cut..].to_owned());
        } else {
            pieces.push(text);
        }
    }
    let stream =
        futures::stream::iter(pieces.into_iter().enumerate()).then(|(i, text)| async move {
            if i > 0 {
                tokio::time::sleep(STREAM_FRAME_DELAY).await;
            }
            Ok::<_, std::io::Error>(text)
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The events of an SSE body: `(event name, data as JSON)` for every event
/// with a `data:` line (`event` is "" when the event has no name). Panics on
/// a `data:` that is not JSON.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    let normalized = body.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut name = String::new();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    v.trim().clone_into(&mut name);
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            if data.is_empty() {
                return None;
            }
            let data = data.join("\n");
            let value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("SSE data `{data}` is not JSON ({e}) in:\n{body}"));
            Some((name, value))
        })
        .collect()
}

/// Concatenates the `text_delta`s of an Anthropic SSE body.
pub fn anthropic_sse_text(body: &str) -> String {
    sse_events(body)
        .iter()
        .filter(|(_, data)| data["type"] == "content_block_delta")
        .filter_map(|(_, data)| data["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// A console/API process, an org-admin token and a stand-in provider, on one
/// database: what every end-to-end test starts from.
pub struct Stack {
    pub backend: &'static str,
    pub install: Install,
    pub serve: KtProcess,
    pub admin: Api,
    pub standin: StandIn,
}

pub async fn start_stack(db: &store::testing::TestDatabase) -> Stack {
    eprintln!(
        "--- backend: {} ({})",
        db.name(),
        store::redact_url(&db.url)
    );
    let install = Install::new(&db.url);
    let serve = install.serve().await;
    let token = install.create_admin_token("integration-tests").await;
    let admin = Api::new(&serve.url, Some(&token));
    let standin = StandIn::start().await;
    Stack {
        backend: db.name(),
        install,
        serve,
        admin,
        standin,
    }
}

/// A team and a gateway key of it.
pub struct TeamKey {
    pub team_id: String,
    pub key_id: String,
    /// The key's secret (`kt_gk_…`).
    pub key: String,
}

impl Stack {
    /// Creates a team and a gateway key of it.
    pub async fn team_with_key(&self, name: &str, slug: &str) -> TeamKey {
        let team = self.admin.create_team(name, slug).await;
        let team_id = team["id"].as_str().unwrap().to_owned();
        let key = self
            .admin
            .create_token(&format!("{slug}-app"), "gateway", Some(&team_id))
            .await;
        assert_eq!(key["team_id"], team_id.as_str(), "gateway key: {key}");
        TeamKey {
            team_id,
            key_id: key["id"].as_str().unwrap().to_owned(),
            key: key["token"].as_str().unwrap().to_owned(),
        }
    }

    /// `kt admin create-user` with the password on stdin.
    pub async fn create_user(&self, email: &str, role: &str, password: &str) {
        let out = self
            .install
            .run(
                &["admin", "create-user", "--email", email, "--role", role],
                Some(&format!("{password}\n")),
            )
            .await;
        assert!(out.status.success(), "{out}");
    }

    /// Creates a console user and puts them in a team with a team role;
    /// returns the user's id.
    pub async fn team_user(&self, team_id: &str, email: &str, role: &str) -> String {
        self.create_user(email, "member", "a long password 123")
            .await;
        let r = self
            .admin
            .put(
                &format!("/v1/teams/{team_id}/members/{email}"),
                &serde_json::json!({ "role": role }),
            )
            .await;
        assert_eq!(
            r.status, 200,
            "[{}] {email} joins as {role}: {r}",
            self.backend
        );
        r.body["user_id"].as_str().unwrap().to_owned()
    }

    /// Starts a gateway named `name` (its config file's stem) on the given
    /// policies, with the stand-in as the `openai` target.
    pub async fn policy_gateway(&self, name: &str, policies: &[String]) -> KtProcess {
        let config = policies_config(&self.standin, policies);
        let path = self.install.write_config(name, &config);
        self.install.gateway(&path, &[]).await
    }

    /// Starts another replica of the gateway `name` started by
    /// [`Stack::policy_gateway`]: same config file (so same name), same
    /// database, its own data directory (its own spool).
    pub async fn policy_gateway_replica(&self, name: &str) -> Replica {
        let path = self.install.data_path().join(format!("{name}.yaml"));
        assert!(
            path.exists(),
            "start the gateway `{name}` with policy_gateway before its replica"
        );
        self.install.gateway_replica(&path, &[]).await
    }

    /// Waits until the gateway `name` has recorded `n` events and returns
    /// them, newest first; fails if there are more than `n`.
    pub async fn gateway_events(&self, name: &str, n: usize) -> Vec<Value> {
        let query = format!("gateway_id={name}&limit=1000");
        let events = self
            .admin
            .wait_for_events(&query, &format!("{n} event(s) of gateway `{name}`"), |e| {
                e.len() >= n
            })
            .await;
        assert_eq!(
            events.len(),
            n,
            "[{}] gateway `{name}`: {n} request(s) must give exactly {n} event(s):\n{}",
            self.backend,
            pretty(&events)
        );
        events
    }
}

pub fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// A policy config: `policies` (YAML list items) and the stand-in as the
/// only target, `openai`.
pub fn policies_config(standin: &StandIn, policies: &[String]) -> String {
    let base = &standin.base_url;
    format!(
        "policies:
{}providers:
  targets:
    - id: openai
      provider:
        base_url: {base}
        secret_key_ref:
          env: {UPSTREAM_KEY_VAR}
",
        policies.concat()
    )
}

/// A policy config with a model allowlist and the stand-in as `openai`.
pub fn allowlist_config(standin: &StandIn, allowed: &str) -> String {
    let allowlist = format!(
        "  - name: model-allowlist
    type: model_filter
    allowed_models: [{allowed}]
"
    );
    policies_config(standin, &[allowlist])
}

/// A gateway's `/health` document.
pub async fn gateway_health(url: &str) -> Value {
    reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
