//! The control-plane API client shared by the commands that go through
//! `kt serve` (`kt events`, `kt teams`, `kt tokens`, `kt wallets`,
//! `kt onboard`; SPEC §3 and §6).
//!
//! Every request goes through [`Client::send`]; the public methods only say
//! what they expect back (an object, a `data` list, text). The API's error
//! body `{"error": {"code", "message", "diagnostics"?}}` becomes a message
//! naming the status, the request and the API's own words, with each lint
//! diagnostic of a 422 on a line of its own.
//!
//! Failures: a missing token or a malformed URL is invalid input (exit 2,
//! before any request); anything the API answers or fails to answer is a
//! runtime failure (exit 1).

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Failure;

/// Where the API is when neither `--api-url` nor `KT_API_URL` says.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:3000";

/// Where the control-plane API is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Base URL of `kt serve`.
    #[arg(long, env = "KT_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// An API access token (kt_ak_…); create one with `kt admin create-token`.
    #[arg(long, env = "KT_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// Why an API call failed.
#[derive(Debug)]
pub enum ApiFailure {
    /// Nothing answered (or not in time), or the server failed (5xx): may pass.
    Unavailable(String),
    /// Any other answer that is not what was asked for.
    Refused(String),
}

impl ApiFailure {
    pub fn message(&self) -> &str {
        match self {
            ApiFailure::Unavailable(m) | ApiFailure::Refused(m) => m,
        }
    }
}

impl From<ApiFailure> for Failure {
    fn from(err: ApiFailure) -> Self {
        match err {
            ApiFailure::Unavailable(m) | ApiFailure::Refused(m) => {
                Failure::Runtime(anyhow::Error::msg(m))
            }
        }
    }
}

/// A client of `kt serve`'s `/v1` API with a bearer token.
pub struct Client {
    /// The base URL, without a trailing `/`.
    pub base: String,
    token: String,
    http: reqwest::Client,
}

/// What a request expects back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A JSON object (or nothing, e.g. 204).
    Object,
    /// `{"data": […]}`.
    List,
    /// Any text (e.g. YAML).
    Text,
}

impl Client {
    /// Checks the URL and the token (invalid input when missing or malformed).
    pub fn new(api: &ApiArgs) -> Result<Client, Failure> {
        let base = api.api_url.trim().trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(Failure::Invalid(format!(
                    "error: --api-url / KT_API_URL `{}` is not an http(s) URL: give the address of `kt serve`, e.g. {DEFAULT_API_URL}",
                    api.api_url
                )));
            }
        }
        let token = api
            .api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failure::Invalid(
                    "error: no API token: set KT_API_TOKEN (or --api-token) to an access token (kt_ak_…); an org admin creates one with `kt admin create-token --name NAME`"
                        .to_owned(),
                )
            })?
            .to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Enough for an onboarding approval, which starts a gateway and
            // waits (20 s at most on the server's side) for it to register.
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot set up an HTTP client: {e}")))?;
        Ok(Client { base, token, http })
    }

    /// `GET {base}{path}?query` → the answer, a JSON object.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiFailure> {
        self.send(Method::GET, path, query, None, Expect::Object)
            .await
            .map(|(v, _)| v)
    }

    /// `GET {base}{path}?query` → the `data` list of the answer.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ApiFailure> {
        match self
            .send(Method::GET, path, query, None, Expect::List)
            .await?
        {
            (Value::Array(items), _) => Ok(items),
            _ => Err(self.not_kt(&Method::GET, path, Expect::List)),
        }
    }

    /// `GET {base}{path}` → the answer as text (e.g. YAML).
    pub async fn get_text(&self, path: &str) -> Result<String, ApiFailure> {
        self.send(Method::GET, path, &[], None, Expect::Text)
            .await
            .map(|(_, text)| text)
    }

    /// `POST {base}{path}` with a JSON body (none when `Value::Null`) → the
    /// answer, a JSON object.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::POST, path, body).await
    }

    /// `PUT {base}{path}` with a JSON body → the answer, a JSON object.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::PUT, path, body).await
    }

    /// `PATCH {base}{path}` with a JSON body → the answer, a JSON object.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::PATCH, path, body).await
    }

    /// `DELETE {base}{path}` (with a JSON body unless `Value::Null`) → the
    /// answer, a JSON object (`null` for an empty answer).
    pub async fn delete(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::DELETE, path, body).await
    }

    async fn call(&self, method: Method, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        let body = (!body.is_null()).then_some(body);
        self.send(method, path, &[], body, Expect::Object)
            .await
            .map(|(v, _)| v)
    }

    /// The one request path: sends, reads the answer, maps failures. For
    /// [`Expect::List`] the value is the `data` array; for [`Expect::Text`]
    /// it is `null` and the text is the body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        expect: Expect,
    ) -> Result<(Value, String), ApiFailure> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            ApiFailure::Unavailable(format!(
                "cannot reach the kt API at {}: {}; is `kt serve` running? set KT_API_URL (or --api-url) to its address",
                self.base,
                error_chain(&e)
            ))
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            ApiFailure::Unavailable(format!(
                "the kt API at {} broke off its answer to {method} {path}: {}",
                self.base,
                error_chain(&e)
            ))
        })?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !status.is_success() {
            return Err(self.refusal(&method, path, status, json.as_ref()));
        }
        match expect {
            Expect::Text => Ok((Value::Null, String::from_utf8_lossy(&bytes).into_owned())),
            Expect::Object if bytes.is_empty() => Ok((Value::Null, String::new())),
            Expect::Object => match json {
                Some(v @ Value::Object(_)) => Ok((v, String::new())),
                _ => Err(self.not_kt(&method, path, expect)),
            },
            Expect::List => match json {
                Some(Value::Object(mut map)) => match map.remove("data") {
                    Some(items @ Value::Array(_)) => Ok((items, String::new())),
                    _ => Err(self.not_kt(&method, path, expect)),
                },
                _ => Err(self.not_kt(&method, path, expect)),
            },
        }
    }

    /// The failure for an answer that is not a success.
    fn refusal(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        body: Option<&Value>,
    ) -> ApiFailure {
        let error = body.map(|b| &b["error"]);
        let api_message = error.and_then(|e| e["message"].as_str()).map(str::to_owned);
        if status == StatusCode::UNAUTHORIZED {
            let said = api_message.map_or(String::new(), |m| format!("; {} said: {m}", self.base));
            return ApiFailure::Refused(format!(
                "the API refused the token (401): set KT_API_TOKEN to a kt_ak_… token (`kt admin create-token`){said}"
            ));
        }
        let mut detail = match api_message {
            Some(m) => m,
            None => format!(
                "the answer is not the kt API's; is {} the address of `kt serve`? (KT_API_URL)",
                self.base
            ),
        };
        if let Some(diagnostics) = error.and_then(|e| e["diagnostics"].as_array()) {
            for d in diagnostics {
                detail.push_str("\n  ");
                detail.push_str(&diagnostic_line(d));
            }
        }
        let message = format!(
            "the kt API at {} answered {status} to {method} {path}: {detail}",
            self.base
        );
        if status.is_server_error() {
            ApiFailure::Unavailable(message)
        } else {
            ApiFailure::Refused(message)
        }
    }

    fn not_kt(&self, method: &Method, path: &str, expect: Expect) -> ApiFailure {
        let what = match expect {
            Expect::List => "the kt API's list (`{\"data\": […]}`)",
            Expect::Object | Expect::Text => "a JSON object",
        };
        ApiFailure::Refused(format!(
            "the server at {} answered {method} {path} with something other than {what}: is it `kt serve`? (KT_API_URL)",
            self.base
        ))
    }

    /// The teams this token sees (archived ones too when asked).
    pub async fn teams(&self, include_archived: bool) -> Result<Vec<Value>, ApiFailure> {
        let query = if include_archived {
            vec![("include_archived", "true".to_owned())]
        } else {
            Vec::new()
        };
        self.list("/v1/teams", &query).await
    }

    /// The teams this token sees: id → slug.
    pub async fn team_slugs(&self) -> Result<HashMap<String, String>, ApiFailure> {
        let teams = self.teams(false).await?;
        Ok(slug_map(&teams))
    }

    /// The team `value` (a slug, or an id) names, among every team this
    /// token sees, archived ones included; `label` says where the value
    /// came from (`--team`, `team`). Unknown: invalid input naming it.
    pub async fn team(&self, label: &str, value: &str) -> Result<Value, Failure> {
        let teams = self.teams(true).await?;
        let id = resolve_team(label, value, &slug_map(&teams))?;
        Ok(teams
            .into_iter()
            .find(|t| t["id"].as_str() == Some(id.as_str()))
            .unwrap_or(Value::Null))
    }
}

/// id → slug of a team list.
pub fn slug_map(teams: &[Value]) -> HashMap<String, String> {
    teams
        .iter()
        .filter_map(|t| Some((t["id"].as_str()?.to_owned(), t["slug"].as_str()?.to_owned())))
        .collect()
}

/// The id of the team `value` names (its slug, or its id). Unknown: invalid
/// input (exit 2) naming the value, the teams there are, and how to list
/// them.
pub fn resolve_team(
    label: &str,
    value: &str,
    slugs: &HashMap<String, String>,
) -> Result<String, Failure> {
    if let Some((id, _)) = slugs.iter().find(|(_, s)| s.as_str() == value) {
        return Ok(id.clone());
    }
    if slugs.contains_key(value) {
        return Ok(value.to_owned());
    }
    let mut known: Vec<&str> = slugs.values().map(String::as_str).collect();
    known.sort_unstable();
    let known = match known.len() {
        0 => "this token sees no team".to_owned(),
        n if n <= 10 => format!("teams: {}", known.join(", ")),
        n => format!("{n} teams, e.g. {}", known[..10].join(", ")),
    };
    Err(Failure::Invalid(format!(
        "error: {label} {value}: no team with slug `{value}` ({known}); list teams with `kt teams list` (GET /v1/teams)"
    )))
}

/// One lint diagnostic of an error body: `line L, column C: message`, then
/// the field path and the suggestion when given.
fn diagnostic_line(d: &Value) -> String {
    let position = match (d["line"].as_u64(), d["column"].as_u64()) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        _ => String::new(),
    };
    let message = d["message"].as_str().unwrap_or("(no message)");
    let extra: Vec<String> = [
        d["path"].as_str().map(|p| format!("at {p}")),
        d["suggestion"].as_str().map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty() && s != "at ")
    .collect();
    if extra.is_empty() {
        format!("{position}{message}")
    } else {
        format!("{position}{message} ({})", extra.join("; "))
    }
}

/// `/v1/…/{segment}`: a path segment percent-encoded (ids come from the
/// command line).
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `err: its cause: its cause…`, as reqwest's own message names only the URL.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// Flag values shared by the API commands (clap calls these, so a bad value
// is reported naming its flag, exit 2, before any request)

/// A value that must not be blank (names, ids, reasons); trimmed.
pub fn nonempty(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// An id or a slug for a path segment: not blank, no whitespace or `/`.
pub fn id(value: &str) -> Result<String, String> {
    let value = nonempty(value)?;
    if value.contains(|c: char| c.is_whitespace() || c == '/' || c.is_control()) {
        return Err(format!(
            "`{value}` is not an id: ids have no spaces or `/` (copy one from a list command's ID column)"
        ));
    }
    Ok(value)
}

/// A team slug, checked as the API checks it.
pub fn slug(value: &str) -> Result<String, String> {
    let value = value.trim();
    store::teams::validate_slug(value)?;
    Ok(value.to_owned())
}

// ---------------------------------------------------------------------------
// Output shared by the API commands

/// Writes `text` to stdout. `Ok(false)` when stdout is closed (e.g. piped
/// into `head`): the caller stops quietly.
pub fn emit(text: &str) -> Result<bool, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::Runtime(anyhow::anyhow!("writing to stdout: {e}"))),
    }
}

pub fn to_json(value: &Value, pretty: bool) -> Result<String, Failure> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.map_err(|e| Failure::Runtime(anyhow::anyhow!("encoding JSON: {e}")))
}

/// Prints `value` as pretty JSON, on lines of its own.
pub fn print_json(value: &Value) -> Result<(), Failure> {
    let mut text = to_json(value, true)?;
    text.push('\n');
    emit(&text)?;
    Ok(())
}

/// Prints `text`, ending it with a newline.
pub fn print_text(text: &str) -> Result<(), Failure> {
    let mut text = text.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    emit(&text)?;
    Ok(())
}

/// A table: a header and rows, columns as wide as their widest cell, two
/// spaces apart; the columns named in `right` are aligned right.
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[&str]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = width.saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if header.get(i).is_some_and(|h| right.contains(h)) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// A JSON value as a table cell: text as is, numbers as written, `-` for
/// nothing.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "-".to_owned(),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` in UTC (as given when
/// unreadable, `-` when absent).
pub fn utc(v: &Value) -> String {
    let Some(raw) = v.as_str() else {
        return "-".to_owned();
    };
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| {
            t.to_offset(time::UtcOffset::UTC)
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .ok()
        })
        .unwrap_or_else(|| raw.to_owned())
}

/// USD with at least two decimals and at most six (micro-dollars):
/// `250` → `$250.00`, `0.001234` → `$0.001234`, `-5` → `-$5.00`.
pub fn dollars(v: &Value) -> String {
    let Some(amount) = v.as_f64() else {
        return "-".to_owned();
    };
    let micros = (amount * 1_000_000.0).round() as i64;
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let mut frac = format!("{:06}", m % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}${}.{frac}", m / 1_000_000)
}

/// `1 team`, `2 teams`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diagnostics_read_as_positions() {
        let bare = json!({"line": 1, "column": 1, "path": "", "message": "empty file"});
        assert_eq!(diagnostic_line(&bare), "line 1, column 1: empty file");
        let d = json!({"line": 3, "column": 11, "path": "policies[0].type",
            "message": "unknown policy type `nope`", "suggestion": "expected one of `a`"});
        assert_eq!(
            diagnostic_line(&d),
            "line 3, column 11: unknown policy type `nope` (at policies[0].type; expected one of `a`)"
        );
    }

    #[test]
    fn amounts_segments_and_tables() {
        assert_eq!(dollars(&json!(250.0)), "$250.00");
        assert_eq!(dollars(&json!(0.001234)), "$0.001234");
        assert_eq!(dollars(&json!(-5)), "-$5.00");
        assert_eq!(dollars(&json!(12.5)), "$12.50");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        let t = table(
            &["NAME", "USD"],
            &[
                vec!["eng".into(), "1.00".into()],
                vec!["data-science".into(), "250.00".into()],
            ],
            &["USD"],
        );
        assert_eq!(
            t,
            "NAME             USD\neng             1.00\ndata-science  250.00\n"
        );
    }

    #[test]
    fn unknown_teams_are_named() {
        let slugs = HashMap::from([("t1".to_owned(), "eng".to_owned())]);
        assert_eq!(
            resolve_team("--team", "eng", &slugs).ok(),
            Some("t1".to_owned())
        );
        assert_eq!(
            resolve_team("--team", "t1", &slugs).ok(),
            Some("t1".to_owned())
        );
        match resolve_team("--team", "nope", &slugs) {
            Err(Failure::Invalid(m)) => {
                assert!(m.contains("--team nope") && m.contains("teams: eng"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
