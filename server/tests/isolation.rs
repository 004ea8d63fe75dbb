//! Tenant isolation, endpoint by endpoint (SPEC §6): org-admin tokens see and
//! do everything; a team-scoped access token sees only its own team, and
//! another team's objects answer exactly as if they did not exist; org-wide
//! changes (teams, credit, provider defaults, prices, members) need an
//! org-admin token; gateway keys work only on gateways, never on the control
//! plane.
//!
//! The endpoints are read from the router sources (`src/http/*.rs`) when the
//! test runs, so a new endpoint is swept without touching this file: every
//! method and path is tried with the other tenant's access token (against
//! the victim's objects, and against "ghost" ids that exist nowhere: both
//! must answer alike), and with gateway keys and bad credentials. Any answer
//! showing the victim's identifiers, any write that is not refused, and any
//! change to the data is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_keeps_tenants_apart() {
    let routes = api_routes();
    let mut failures = Failures::default();
    for db in store::testing::backends().await {
        isolation(&db, &routes, &mut failures).await;
        db.cleanup().await;
    }
    assert!(failures.count == 0, "{}", failures.report());
}

/// Examples printed for each kind of failure.
const EXAMPLES_SHOWN: usize = 2;
/// Longest answer body quoted in a failure.
const MAX_QUOTED: usize = 600;

/// `/v1` endpoints that are public by design (no tenant data).
const PUBLIC: &[&str] = &["/v1/openapi.json"];

/// The statuses that refuse a request without telling anything.
const REFUSALS: &[u16] = &[400, 401, 403, 404, 422];

/// Failures, grouped by kind (backend, credentials, route and reason), each
/// with the full story of every occurrence.
#[derive(Default)]
struct Failures {
    count: usize,
    by_kind: BTreeMap<String, Vec<String>>,
}

impl Failures {
    fn add(&mut self, kind: String, detail: String) {
        self.count += 1;
        self.by_kind.entry(kind).or_default().push(detail);
    }

    fn report(&self) -> String {
        let mut out = format!(
            "{} tenant-isolation failure(s) of {} kind(s):\n",
            self.count,
            self.by_kind.len()
        );
        for (kind, details) in &self.by_kind {
            out.push_str(&format!("  {:>3} × {kind}\n", details.len()));
        }
        out.push_str(&format!(
            "\nexamples (at most {EXAMPLES_SHOWN} of each kind):\n"
        ));
        for (kind, details) in &self.by_kind {
            out.push_str(&format!("\n--- {kind}\n"));
            for detail in details.iter().take(EXAMPLES_SHOWN) {
                out.push_str(detail);
                out.push_str("\n\n");
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The endpoints, from the router sources

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: &'static str,
    /// `/v1/teams/{id}`.
    path: String,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Method-router constructors and the HTTP methods they stand for.
const METHOD_FNS: &[(&str, &[&str])] = &[
    ("get", &["GET"]),
    ("post", &["POST"]),
    ("put", &["PUT"]),
    ("patch", &["PATCH"]),
    ("delete", &["DELETE"]),
    ("head", &["HEAD"]),
    ("options", &["OPTIONS"]),
    ("trace", &["TRACE"]),
    ("any", &["GET", "POST", "PUT", "PATCH", "DELETE"]),
];

/// Calls in a `.route(…)` that add no method.
const NOT_METHOD_FNS: &[&str] = &["layer", "route_layer", "with_state"];

/// Every `/v1` route: `.route("PATH", get(..).post(..))` calls in functions
/// named `router` under `src/http` (mounted at `/v1`). Routes of other
/// functions (the probes, mounted at the root) are public and left out.
fn api_routes() -> Vec<Route> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http"));
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no Rust sources in {}", dir.display());
    let mut routes = BTreeSet::new();
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        let name = file.display().to_string();
        for (func, path, methods) in route_calls(&blank_comments(&src), &name) {
            if func != "router" {
                eprintln!("(not under /v1, left out: {methods:?} {path} in fn {func} of {name})");
                continue;
            }
            for method in methods {
                routes.insert(Route {
                    method,
                    path: format!("/v1{path}"),
                });
            }
        }
    }
    routes
        .into_iter()
        .filter(|r| !PUBLIC.contains(&r.path.as_str()))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The source with comments blanked out (string and char literals kept), so
/// that a `.route(` in a doc comment is not taken for a route.
fn blank_comments(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (i == 0 || !is_ident(c[i - 1]) || c[i - 1] == 'b')
            && matches!(next, Some('"' | '#'))
        {
            // A raw string r"…" / r#"…"# (or a raw identifier r#name).
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(&c[i..j.min(c.len())]);
            i = j;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(c.len());
            out.extend(&c[i..end]);
            i = end;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a).
            let end = if next == Some('\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                j + 1
            } else if c.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            };
            let end = end.min(c.len());
            out.extend(&c[i..end]);
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The name of the function `pos` is in (the last `fn NAME` before it).
fn enclosing_fn(c: &[char], pos: usize) -> String {
    let mut i = pos;
    while i >= 3 {
        i -= 1;
        if c[i - 2] == 'f'
            && c[i - 1] == 'n'
            && c[i].is_whitespace()
            && (i < 3 || !is_ident(c[i - 3]))
        {
            let mut j = i;
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            let start = j;
            while j < c.len() && is_ident(c[j]) {
                j += 1;
            }
            return c[start..j].iter().collect();
        }
    }
    String::new()
}

/// `(enclosing fn, path, methods)` of every `.route(…)` call. Panics on
/// router calls this parser does not understand, so that no endpoint goes
/// unswept silently.
fn route_calls(code: &str, file: &str) -> Vec<(String, String, Vec<&'static str>)> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |pos: usize| c[..pos].iter().filter(|ch| **ch == '\n').count() + 1;
    let skip_ws = |mut i: usize| {
        while i < c.len() && c[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '.' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < c.len() && is_ident(c[j]) {
            j += 1;
        }
        let word: String = c[start..j].iter().collect();
        let open = skip_ws(j);
        if open >= c.len() || c[open] != '(' {
            i = j.max(i + 1);
            continue;
        }
        match word.as_str() {
            "route" => {}
            "nest" | "nest_service" | "route_service" | "routes" => panic!(
                "{file}:{}: `.{word}(…)` mounts routes this test cannot enumerate yet: teach api_routes() about it",
                line_of(i)
            ),
            _ => {
                i = open;
                continue;
            }
        }
        let line = line_of(i);
        let p = skip_ws(open + 1);
        assert!(
            c.get(p) == Some(&'"'),
            "{file}:{line}: `.route(` without a string literal path: teach api_routes() about it"
        );
        let mut q = p + 1;
        while c[q] != '"' {
            q += 1;
        }
        let path: String = c[p + 1..q].iter().collect();
        // The method router: the calls at the top level of `.route(…)`.
        let mut depth = 1;
        let mut m = q + 1;
        let mut methods = Vec::new();
        let mut unknown = Vec::new();
        while depth > 0 {
            assert!(m < c.len(), "{file}:{line}: unbalanced `.route(`");
            let ch = c[m];
            if ch == '"' {
                m += 1;
                while c[m] != '"' {
                    if c[m] == '\\' {
                        m += 1;
                    }
                    m += 1;
                }
                m += 1;
            } else if matches!(ch, '(' | '[' | '{') {
                depth += 1;
                m += 1;
            } else if matches!(ch, ')' | ']' | '}') {
                depth -= 1;
                m += 1;
            } else if is_ident(ch) && !is_ident(c[m - 1]) {
                let s = m;
                while is_ident(c[m]) {
                    m += 1;
                }
                let ident: String = c[s..m].iter().collect();
                if depth == 1 && c[skip_ws(m)] == '(' {
                    match METHOD_FNS.iter().find(|(name, _)| *name == ident) {
                        Some((_, ms)) => methods.extend_from_slice(ms),
                        None if NOT_METHOD_FNS.contains(&ident.as_str()) => {}
                        None => unknown.push(ident),
                    }
                }
            } else {
                m += 1;
            }
        }
        assert!(
            !methods.is_empty() && unknown.is_empty(),
            "{file}:{line}: cannot tell the methods of route `{path}` (found {methods:?}, unknown calls {unknown:?}): teach api_routes() about them"
        );
        found.push((enclosing_fn(&c, i), path, methods));
        i = m;
    }
    found
}

// ---------------------------------------------------------------------------
// Probes: each route with the victim's ids, queries and bodies

/// Placeholders of the victim's objects (a ghost has the same, made up).
const VICTIM_KEYS: &[&str] = &[
    "TEAM", "SLUG", "SECRET", "EMAIL", "TOKEN", "KEY", "GW", "GWID", "EVENT",
];

/// Query strings tried on every GET route.
const GET_QUERIES: &[&str] = &[
    "",
    "team_id=@@TEAM@@",
    "team_id=@@TEAM@@&limit=1000",
    "gateway_id=@@GW@@",
    "gateway_id=@@GWID@@",
    "group_by=team",
    "group_by=gateway",
    "group_by=model",
    "group_by=day",
    "group_by=team&team_id=@@TEAM@@",
    "group_by=gateway&gateway_id=@@GW@@",
    "include_archived=true",
    "history=true",
    "since=30d&limit=1000",
    "verdict=block",
    "action=secret.",
    "action=team.&team_id=@@TEAM@@",
];

/// Query strings tried on every other route.
const WRITE_QUERIES: &[&str] = &["", "team_id=@@TEAM@@", "team_id=@@OWN@@"];

/// One request to send: templates with `@@KEY@@` placeholders.
#[derive(Debug, Clone)]
struct Probe {
    route: Route,
    /// Path and query.
    target: String,
    body: Option<String>,
}

impl Probe {
    fn is_read(&self) -> bool {
        matches!(self.route.method, "GET" | "HEAD" | "OPTIONS")
    }

    /// Whether the path (not the query) or the body names a victim object.
    fn targets_victim(&self) -> bool {
        let path = self.target.split('?').next().unwrap_or_default();
        VICTIM_KEYS.iter().any(|k| {
            let ph = format!("@@{k}@@");
            path.contains(&ph) || self.body.as_ref().is_some_and(|b| b.contains(&ph))
        })
    }

    /// Whether anything in the request names a victim object.
    fn mentions_victim(&self) -> bool {
        VICTIM_KEYS.iter().any(|k| {
            let ph = format!("@@{k}@@");
            self.target.contains(&ph) || self.body.as_ref().is_some_and(|b| b.contains(&ph))
        })
    }
}

/// What a path parameter is replaced with.
fn param_options(route: &str, param: &str) -> Vec<&'static str> {
    let resource = route
        .trim_start_matches("/v1/")
        .split('/')
        .next()
        .unwrap_or_default();
    match (resource, param) {
        ("teams", "id") => vec!["@@TEAM@@"],
        ("tokens", "id") => vec!["@@TOKEN@@", "@@KEY@@"],
        ("gateways", "id" | "name") => vec!["@@GWID@@", "@@GW@@"],
        ("events", "id") => vec!["@@EVENT@@"],
        (_, "name") => vec!["@@SECRET@@"],
        (_, "email") => vec!["@@EMAIL@@"],
        (_, "model") => vec!["@@MODEL@@"],
        (_, "kind") => vec!["@@KIND@@"],
        (_, "team_id" | "team") => vec!["@@TEAM@@", "@@SLUG@@"],
        (_, "slug") => vec!["@@SLUG@@"],
        _ => vec![
            "@@TEAM@@",
            "@@TOKEN@@",
            "@@KEY@@",
            "@@EVENT@@",
            "@@GWID@@",
            "@@SECRET@@",
        ],
    }
}

/// The route's path with its parameters replaced, every combination; a
/// team route with more parameters also with the caller's own team (e.g.
/// moving the victim's member into one's own team).
fn path_templates(route: &str) -> Vec<String> {
    let segments: Vec<&str> = route.split('/').collect();
    let params: Vec<&str> = segments
        .iter()
        .filter(|s| s.starts_with('{'))
        .map(|s| s.trim_matches(['{', '}', '*']))
        .collect();
    let mut paths = vec![String::new()];
    for (n, segment) in segments.iter().enumerate() {
        let options: Vec<&str> = if segment.starts_with('{') {
            let param = segment.trim_matches(['{', '}', '*']);
            let mut options = param_options(route, param);
            if n == 3 && segments[2] == "teams" && param == "id" && params.len() > 1 {
                options.push("@@OWN@@");
            }
            options
        } else {
            vec![segment]
        };
        paths = paths
            .iter()
            .flat_map(|p| {
                options.iter().map(move |o| {
                    if n == 0 {
                        (*o).to_owned()
                    } else {
                        format!("{p}/{o}")
                    }
                })
            })
            .collect();
    }
    paths
}

/// JSON bodies for a write: valid ones where the endpoint is known (so that
/// only the caller's scope can refuse them), generic ones otherwise.
fn bodies(route: &Route) -> Vec<Value> {
    match (route.method, route.path.as_str()) {
        ("POST", "/v1/teams") => vec![
            json!({"name": "Isolation probe", "slug": "@@SLUG@@"}),
            json!({"name": "Isolation probe", "slug": "@@FRESH@@"}),
        ],
        ("PATCH", "/v1/teams/{id}") => vec![json!({"name": "Renamed by another tenant"})],
        ("POST", "/v1/teams/{id}/archive") => vec![json!({})],
        ("PUT", "/v1/teams/{id}/members/{email}") => {
            vec![json!({"role": "member"}), json!({"role": "team_lead"})]
        }
        ("POST", "/v1/tokens") => vec![
            json!({"name": "probe", "token_type": "access", "team_id": "@@TEAM@@"}),
            json!({"name": "probe", "token_type": "gateway", "team_id": "@@TEAM@@"}),
            json!({"name": "probe-org", "token_type": "access"}),
            json!({"name": "probe-org", "token_type": "gateway"}),
        ],
        ("POST", "/v1/wallets/allocate") => vec![
            json!({"team_id": "@@TEAM@@", "amount": 5.0, "reason": "probe"}),
            json!({"team_id": "@@TEAM@@", "amount": -1.0}),
        ],
        ("POST", "/v1/secrets") => vec![
            json!({"name": "@@SECRET@@", "value": "overwritten-by-probe", "team_id": "@@TEAM@@"}),
            json!({"name": "probe-new", "value": "v", "team_id": "@@TEAM@@"}),
            json!({"name": "@@SECRET@@", "value": "v"}),
        ],
        ("PUT", "/v1/providers/{kind}") => vec![
            json!({"base_url": "http://127.0.0.1:9/v1", "secret": "@@SECRET@@"}),
            json!({"base_url": "http://127.0.0.1:9/v1"}),
        ],
        ("PUT", "/v1/prices/{model}") => vec![json!({
            "input_usd_per_mtok": 0.0, "output_usd_per_mtok": 0.0, "source": "probe"
        })],
        _ => {
            eprintln!(
                "note: {route} has no body of its own in isolation.rs: probed with generic bodies"
            );
            vec![
                json!({"team_id": "@@TEAM@@"}),
                json!({
                    "team_id": "@@TEAM@@", "name": "@@SECRET@@", "value": "probe",
                    "amount": 1.0, "role": "member", "token_type": "access"
                }),
            ]
        }
    }
}

fn probes(routes: &[Route]) -> Vec<Probe> {
    let mut all = Vec::new();
    for route in routes {
        let read = matches!(route.method, "GET" | "HEAD" | "OPTIONS");
        let queries = if read { GET_QUERIES } else { WRITE_QUERIES };
        let route_bodies: Vec<Option<String>> = if read || route.method == "DELETE" {
            vec![None]
        } else {
            bodies(route).iter().map(|b| Some(b.to_string())).collect()
        };
        for path in path_templates(&route.path) {
            for query in queries {
                for body in &route_bodies {
                    let target = if query.is_empty() {
                        path.clone()
                    } else {
                        format!("{path}?{query}")
                    };
                    all.push(Probe {
                        route: route.clone(),
                        target,
                        body: body.clone(),
                    });
                }
            }
        }
    }
    all
}

type Values = BTreeMap<&'static str, String>;

fn render(template: &str, values: &Values) -> String {
    let mut s = template.to_owned();
    for (k, v) in values {
        s = s.replace(&format!("@@{k}@@"), v);
    }
    assert!(!s.contains("@@"), "unfilled placeholder in `{s}`");
    s
}

// ---------------------------------------------------------------------------
// The tenants

fn unique(tag: &str) -> String {
    let id = store::new_id().replace('-', "");
    format!("{tag}-{}", &id[..12])
}

/// One tenant, seeded through the API with an org-admin token.
struct Tenant {
    /// `A` or `B`, for messages.
    label: &'static str,
    team_id: String,
    slug: String,
    name: String,
    access_id: String,
    access_name: String,
    access_token: String,
    access_prefix: String,
    key_id: String,
    key: String,
    key_prefix: String,
    secret: String,
    email: String,
    user_id: String,
    gateway: String,
    gateway_id: String,
    events: Vec<String>,
    reason: String,
    ledger: Vec<String>,
    audit: Vec<String>,
    gateway_process: KtProcess,
}

impl Tenant {
    /// Everything that identifies the tenant's objects: none of it may show
    /// up in another tenant's answers.
    fn identifiers(&self) -> Vec<(&'static str, String)> {
        let mut ids = vec![
            ("team id", self.team_id.clone()),
            ("team slug", self.slug.clone()),
            ("team name", self.name.clone()),
            ("access token id", self.access_id.clone()),
            ("access token name", self.access_name.clone()),
            ("access token secret", self.access_token.clone()),
            ("access token prefix", self.access_prefix.clone()),
            ("gateway key id", self.key_id.clone()),
            ("gateway key secret", self.key.clone()),
            ("gateway key prefix", self.key_prefix.clone()),
            ("secret name", self.secret.clone()),
            ("member email", self.email.clone()),
            ("member user id", self.user_id.clone()),
            ("gateway name", self.gateway.clone()),
            ("gateway id", self.gateway_id.clone()),
            ("wallet allocation reason", self.reason.clone()),
        ];
        ids.extend(self.events.iter().map(|e| ("event id", e.clone())));
        ids.extend(
            self.ledger
                .iter()
                .map(|e| ("wallet ledger entry id", e.clone())),
        );
        ids.extend(self.audit.iter().map(|e| ("audit entry id", e.clone())));
        for (what, value) in &ids {
            assert!(
                value.len() >= 8,
                "{} {what} `{value}` is too short",
                self.label
            );
        }
        ids
    }

    /// The placeholders of [`VICTIM_KEYS`] for this tenant's objects.
    fn values(&self) -> Values {
        let mut v = Values::new();
        v.insert("TEAM", self.team_id.clone());
        v.insert("SLUG", self.slug.clone());
        v.insert("SECRET", self.secret.clone());
        v.insert("EMAIL", self.email.clone());
        v.insert("TOKEN", self.access_id.clone());
        v.insert("KEY", self.key_id.clone());
        v.insert("GW", self.gateway.clone());
        v.insert("GWID", self.gateway_id.clone());
        v.insert("EVENT", self.events[0].clone());
        v
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token)
    }

    /// The tenant's team-scoped access token, as a sweep's caller.
    fn caller(&self) -> Caller<'_> {
        Caller {
            label: format!("{}'s team token", self.label),
            team_id: &self.team_id,
            auth: self.bearer(),
        }
    }
}

/// Made-up objects of the same shapes that exist nowhere.
fn ghost_values() -> Values {
    let mut v = Values::new();
    v.insert("TEAM", store::new_id());
    v.insert("SLUG", unique("ghost"));
    v.insert("SECRET", unique("ghost-secret"));
    v.insert("EMAIL", format!("{}@example.com", unique("ghost-member")));
    v.insert("TOKEN", store::new_id());
    v.insert("KEY", store::new_id());
    v.insert("GW", unique("gw-ghost"));
    v.insert("GWID", store::new_id());
    v.insert("EVENT", store::new_id());
    v
}

/// Who sends a sweep's requests.
struct Caller<'a> {
    /// For messages, e.g. `A's team token`.
    label: String,
    /// The team `@@OWN@@` stands for.
    team_id: &'a str,
    /// The `Authorization` header.
    auth: String,
}

/// The placeholders that name no victim object.
fn with_common(mut values: Values, own_team: &str, fresh: &str) -> Values {
    values.insert("OWN", own_team.to_owned());
    values.insert("MODEL", "gpt-isolation-probe".to_owned());
    values.insert("KIND", "openai".to_owned());
    values.insert("FRESH", fresh.to_owned());
    values
}

async fn seed_tenant(s: &Stack, label: &'static str, tag: &str) -> Tenant {
    let b = s.backend;
    let slug = unique(tag);
    let name = format!("{} Corp {}", label, unique(tag));
    let team = s.team_with_key(&name, &slug).await;
    let access_name = format!("{slug}-ci");
    let access = s
        .admin
        .create_token(&access_name, "access", Some(&team.team_id))
        .await;

    let secret = unique(&format!("{tag}-secret"));
    let r = s
        .admin
        .post(
            "/v1/secrets",
            &json!({"name": secret, "value": unique("value"), "team_id": team.team_id}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] POST /v1/secrets for {label}: {r}");

    let reason = unique(&format!("{tag}-allocation"));
    let r = s
        .admin
        .post(
            "/v1/wallets/allocate",
            &json!({"team_id": team.team_id, "amount": 100.0, "reason": reason}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] allocating to {label}: {r}");

    let email = format!("{}@example.com", unique(&format!("{tag}-member")));
    let out = s
        .install
        .run(
            &[
                "admin",
                "create-user",
                "--email",
                &email,
                "--role",
                "viewer",
            ],
            Some("a long enough password\n"),
        )
        .await;
    assert!(out.status.success(), "[{b}] create-user {email}: {out}");
    let r = s
        .admin
        .put(
            &format!("/v1/teams/{}/members/{email}", team.team_id),
            &json!({"role": "member"}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] member of {label}: {r}");
    let user_id = r.body["user_id"].as_str().unwrap().to_owned();

    // The team's own gateway, and events through it.
    let gateway = unique(&format!("gw-{tag}"));
    let path = s
        .install
        .write_config(&gateway, &allowlist_config(&s.standin, "gpt-4o"));
    let process = s.install.gateway(&path, &["--team", &slug]).await;
    let r = chat(&process.url, Some(&team.key), &chat_body("gpt-4o", "hello")).await;
    assert_eq!(r.status, 200, "[{b}] {label}'s key on its gateway: {r}");
    let r = chat(
        &process.url,
        Some(&team.key),
        &chat_body("gpt-3.5-turbo", "not allowed"),
    )
    .await;
    assert!(r.status >= 400, "[{b}] a model off the allowlist: {r}");
    let events = s
        .gateway_events(&gateway, 2)
        .await
        .iter()
        .map(|e| {
            assert_eq!(e["team_id"], team.team_id.as_str(), "[{b}] {e}");
            e["id"].as_str().unwrap().to_owned()
        })
        .collect();

    Tenant {
        label,
        team_id: team.team_id,
        slug,
        name,
        access_id: access["id"].as_str().unwrap().to_owned(),
        access_name,
        access_token: access["token"].as_str().unwrap().to_owned(),
        access_prefix: access["prefix"].as_str().unwrap().to_owned(),
        key_id: team.key_id,
        key: team.key,
        key_prefix: String::new(),
        secret,
        email,
        user_id,
        gateway,
        gateway_id: String::new(),
        events,
        reason,
        ledger: Vec::new(),
        audit: Vec::new(),
        gateway_process: process,
    }
}

/// Fills in what only the org's lists tell: the gateway id, the key's
/// prefix, the wallet ledger and audit entries.
async fn complete(s: &Stack, t: &mut Tenant) {
    let b = s.backend;
    let r = s.admin.get("/v1/gateways").await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    t.gateway_id = r
        .data()
        .iter()
        .find(|g| g["name"] == t.gateway.as_str())
        .unwrap_or_else(|| panic!("[{b}] gateway {} not listed: {r}", t.gateway))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.admin.get("/v1/tokens").await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    t.key_prefix = r
        .data()
        .iter()
        .find(|k| k["id"] == t.key_id.as_str())
        .unwrap_or_else(|| panic!("[{b}] key {} not listed: {r}", t.key_id))["prefix"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = |r: &Reply| -> Vec<String> {
        r.data()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = s
        .admin
        .get(&format!("/v1/wallets/transactions?team_id={}", t.team_id))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    t.ledger = ids(&r);
    assert!(!t.ledger.is_empty(), "[{b}] {}'s ledger: {r}", t.label);
    let r = s
        .admin
        .get(&format!("/v1/audit?team_id={}&limit=1000", t.team_id))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    t.audit = ids(&r);
    assert!(!t.audit.is_empty(), "[{b}] {}'s audit trail: {r}", t.label);
}

// ---------------------------------------------------------------------------
// Sending and judging

struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn quoted(&self) -> String {
        self.quoted_around("")
    }

    /// The status and the body, cut to [`MAX_QUOTED`] characters around the
    /// first occurrence of `needle` (from the start when it is empty).
    fn quoted_around(&self, needle: &str) -> String {
        let text = &self.text;
        let at = if needle.is_empty() {
            0
        } else {
            text.find(needle).unwrap_or(0)
        };
        let mut start = at.saturating_sub(MAX_QUOTED / 2);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let end = text[start..]
            .char_indices()
            .nth(MAX_QUOTED)
            .map_or(text.len(), |(i, _)| start + i);
        format!(
            "HTTP {} {}{}{}",
            self.status,
            if start > 0 { "… " } else { "" },
            &text[start..end],
            if end < text.len() { " …" } else { "" }
        )
    }

    /// Whether the body has the shared error shape.
    fn has_error_shape(&self) -> bool {
        serde_json::from_str::<Value>(&self.text).is_ok_and(|v| {
            v["error"]["code"].is_string()
                && v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
        })
    }
}

struct Client {
    backend: &'static str,
    base: String,
    http: reqwest::Client,
    sent: usize,
}

impl Client {
    async fn send(
        &mut self,
        auth: Option<&str>,
        method: &str,
        target: &str,
        body: Option<&str>,
    ) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.http.request(m, format!("{}{target}", self.base));
        if let Some(auth) = auth {
            rb = rb.header("authorization", auth);
        }
        if let Some(body) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        self.sent += 1;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Answer { status, text }
    }
}

fn request_line(method: &str, target: &str, body: Option<&str>) -> String {
    match body {
        Some(body) => format!("{method} {target} {body}"),
        None => format!("{method} {target}"),
    }
}

/// `text` with every value replaced by its placeholder, longest first.
fn normalized(text: &str, values: &Values) -> Value {
    let mut pairs: Vec<(&&str, &String)> = values
        .iter()
        .filter(|(k, _)| VICTIM_KEYS.contains(k))
        .collect();
    pairs.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut text = text.to_owned();
    for (k, v) in pairs {
        text = text.replace(v.as_str(), &format!("@@{k}@@"));
    }
    let mut value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    strip_volatile(&mut value);
    value
}

/// Fields that change by themselves (clocks, heartbeats, key use, leases).
const VOLATILE: &[&str] = &[
    "last_used_at",
    "last_seen",
    "started_at",
    "status",
    "reserved",
    "balance",
    "since",
    "until",
];

fn strip_volatile(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in VOLATILE {
                map.remove(*key);
            }
            map.values_mut().for_each(strip_volatile);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// Tries every probe with `caller`'s credentials (a team-scoped access
/// token) against `victim`'s objects, and against ghost objects that exist
/// nowhere.
async fn sweep(
    client: &mut Client,
    probes: &[Probe],
    caller: &Caller<'_>,
    victim: &Tenant,
    failures: &mut Failures,
) {
    let backend = client.backend;
    let fresh = unique("probe");
    let victim_values = with_common(victim.values(), caller.team_id, &fresh);
    let ghost_values = with_common(ghost_values(), caller.team_id, &fresh);
    let identifiers = victim.identifiers();
    let auth = &caller.auth;
    for probe in probes {
        let method = probe.route.method;
        let target = render(&probe.target, &victim_values);
        let body = probe.body.as_ref().map(|b| render(b, &victim_values));
        let answer = client
            .send(Some(auth), method, &target, body.as_deref())
            .await;
        let request = request_line(method, &target, body.as_deref());
        let mut fail = |kind: String, why: String, quoted: String| {
            failures.add(
                format!("[{backend}] {}: {} — {kind}", caller.label, probe.route),
                format!(
                    "[{backend}] {} → {request}\n  {why}\n  answer: {quoted}",
                    caller.label
                ),
            );
        };
        let must_refuse = !probe.is_read() || probe.targets_victim();
        if must_refuse && !REFUSALS.contains(&answer.status) {
            fail(
                format!("not refused (HTTP {})", answer.status),
                format!(
                    "expected a refusal (one of {REFUSALS:?}): {}",
                    if probe.is_read() {
                        format!("the request names {}'s objects", victim.label)
                    } else {
                        format!(
                            "a team token may not write {}'s objects nor org-wide ones",
                            victim.label
                        )
                    }
                ),
                answer.quoted(),
            );
        } else if !must_refuse && !answer.ok() && !REFUSALS.contains(&answer.status) {
            fail(
                format!("neither 2xx nor a refusal (HTTP {})", answer.status),
                format!("expected 2xx or a refusal (one of {REFUSALS:?})"),
                answer.quoted(),
            );
        }
        if !answer.ok() && !answer.has_error_shape() {
            fail(
                "error without the shared shape".to_owned(),
                "an error answer without the shared shape {\"error\": {\"code\", \"message\"}}"
                    .to_owned(),
                answer.quoted(),
            );
        }
        for (what, value) in &identifiers {
            // An error may echo what the caller sent (the ghost comparison
            // below shows it tells nothing); nothing else may show.
            if answer.text.contains(value.as_str()) && (answer.ok() || !request.contains(value)) {
                fail(
                    format!("shows {}'s {what}", victim.label),
                    format!("the answer shows {}'s {what} `{value}`", victim.label),
                    answer.quoted_around(value),
                );
            }
        }
        if probe.mentions_victim() {
            let ghost_target = render(&probe.target, &ghost_values);
            let ghost_body = probe.body.as_ref().map(|b| render(b, &ghost_values));
            let ghost = client
                .send(Some(auth), method, &ghost_target, ghost_body.as_deref())
                .await;
            let ghost_request = request_line(method, &ghost_target, ghost_body.as_deref());
            if ghost.status != answer.status
                || normalized(&ghost.text, &ghost_values)
                    != normalized(&answer.text, &victim_values)
            {
                fail(
                    format!("{}'s objects answer unlike missing ones", victim.label),
                    format!(
                        "{}'s objects must answer exactly like objects that do not exist; for made-up ids\n    {ghost_request}\n  answered {}",
                        victim.label,
                        ghost.quoted()
                    ),
                    answer.quoted(),
                );
            }
        }
    }
}

/// The read probes with the org-admin token (which may see B) in place of
/// A's team token: the sweep must flag every route that serves tenant data,
/// or it could not catch a leak there either.
async fn detector_self_check(
    client: &mut Client,
    probes: &[Probe],
    s: &Stack,
    a: &Tenant,
    b: &Tenant,
) {
    let reads: Vec<Probe> = probes.iter().filter(|p| p.is_read()).cloned().collect();
    let org = Caller {
        label: "the org-admin token (self-check)".to_owned(),
        team_id: &a.team_id,
        auth: format!("Bearer {}", s.admin.token.as_deref().unwrap()),
    };
    let mut found = Failures::default();
    sweep(client, &reads, &org, b, &mut found).await;
    let flagged: BTreeSet<String> = found
        .by_kind
        .keys()
        .filter_map(|k| k.split(": ").nth(1))
        .filter_map(|k| k.split(" — ").next())
        .map(str::to_owned)
        .collect();
    for route in [
        "GET /v1/teams",
        "GET /v1/teams/{id}",
        "GET /v1/teams/{id}/members",
        "GET /v1/tokens",
        "GET /v1/secrets",
        "GET /v1/events",
        "GET /v1/audit",
        "GET /v1/gateways",
        "GET /v1/wallets/balance",
        "GET /v1/wallets/transactions",
    ] {
        assert!(
            flagged.contains(route),
            "[{}] self-check: the sweep does not notice the org-admin token seeing B's data on {route}, so it could not catch a leak there (flagged: {flagged:?})",
            s.backend
        );
    }
}

/// Every probe with credentials that must not open the control plane at
/// all: 401, and nothing of either tenant in the answer.
async fn sweep_unauthenticated(
    client: &mut Client,
    probes: &[Probe],
    a: &Tenant,
    b: &Tenant,
    revoked: &str,
    failures: &mut Failures,
) {
    let backend = client.backend;
    let fresh = unique("probe");
    let mut identifiers = a.identifiers();
    identifiers.extend(b.identifiers());
    let credentials: Vec<(String, Option<String>, bool)> = vec![
        (
            "A's gateway key".to_owned(),
            Some(format!("Bearer {}", a.key)),
            true,
        ),
        (
            "B's gateway key".to_owned(),
            Some(format!("Bearer {}", b.key)),
            true,
        ),
        ("no Authorization header".to_owned(), None, false),
        (
            "an unknown access token".to_owned(),
            Some(format!("Bearer kt_ak_{}", "x".repeat(40))),
            false,
        ),
        (
            "A's revoked access token".to_owned(),
            Some(format!("Bearer {revoked}")),
            false,
        ),
        (
            "A's access token as Basic credentials".to_owned(),
            Some(format!("Basic {}", a.access_token)),
            false,
        ),
    ];
    for (who, auth, both_ways) in &credentials {
        // Against B's objects (A's own being the caller's team), and for
        // gateway keys also against their own team's objects.
        let mut targets = vec![with_common(b.values(), &a.team_id, &fresh)];
        if *both_ways {
            targets.push(with_common(a.values(), &b.team_id, &fresh));
        }
        for values in &targets {
            for probe in probes {
                let method = probe.route.method;
                let target = render(&probe.target, values);
                let body = probe.body.as_ref().map(|t| render(t, values));
                let answer = client
                    .send(auth.as_deref(), method, &target, body.as_deref())
                    .await;
                let request = request_line(method, &target, body.as_deref());
                let mut fail = |kind: String, why: String, needle: &str| {
                    failures.add(
                        format!("[{backend}] {who}: {} — {kind}", probe.route),
                        format!(
                            "[{backend}] {who} → {request}\n  {why}\n  answer: {}",
                            answer.quoted_around(needle)
                        ),
                    );
                };
                if answer.status != 401 {
                    fail(
                        format!("not 401 (HTTP {})", answer.status),
                        "expected 401: only access tokens open the control plane".to_owned(),
                        "",
                    );
                } else if !answer.has_error_shape() {
                    fail(
                        "error without the shared shape".to_owned(),
                        "a 401 without the shared error shape".to_owned(),
                        "",
                    );
                }
                for (what, value) in &identifiers {
                    if answer.text.contains(value.as_str()) {
                        fail(
                            format!("shows a tenant's {what}"),
                            format!("the answer shows a tenant's {what} `{value}`"),
                            value,
                        );
                    }
                }
            }
        }
    }
}

/// Org-only actions with a team token on its own team: 403.
async fn org_only_actions(
    client: &mut Client,
    t: &Tenant,
    org_secret: &str,
    failures: &mut Failures,
) {
    let backend = client.backend;
    let team = &t.team_id;
    let email = &t.email;
    let actions: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/v1/teams".to_owned(),
            Some(json!({"name": "Another team", "slug": unique("probe")})),
        ),
        (
            "POST",
            "/v1/wallets/allocate".to_owned(),
            Some(json!({"team_id": team, "amount": 10.0, "reason": "self-service"})),
        ),
        (
            "POST",
            "/v1/wallets/allocate".to_owned(),
            Some(json!({"team_id": team, "amount": -1.0})),
        ),
        (
            "PUT",
            "/v1/providers/openai".to_owned(),
            Some(json!({"base_url": "http://127.0.0.1:9/v1"})),
        ),
        (
            "PUT",
            "/v1/prices/gpt-4o".to_owned(),
            Some(
                json!({"input_usd_per_mtok": 0.0, "output_usd_per_mtok": 0.0, "source": "free for us"}),
            ),
        ),
        (
            "PATCH",
            format!("/v1/teams/{team}"),
            Some(json!({"name": "Renamed by its own team token"})),
        ),
        ("POST", format!("/v1/teams/{team}/archive"), None),
        (
            "PUT",
            format!("/v1/teams/{team}/members/{email}"),
            Some(json!({"role": "team_lead"})),
        ),
        ("DELETE", format!("/v1/teams/{team}/members/{email}"), None),
        (
            "POST",
            "/v1/tokens".to_owned(),
            Some(json!({"name": "org-wide", "token_type": "access"})),
        ),
        (
            "POST",
            "/v1/secrets".to_owned(),
            Some(json!({"name": unique("org-probe"), "value": "v"})),
        ),
        ("DELETE", format!("/v1/secrets/{org_secret}"), None),
    ];
    for (method, path, body) in actions {
        let body = body.map(|b| b.to_string());
        let answer = client
            .send(Some(&t.bearer()), method, &path, body.as_deref())
            .await;
        if answer.status != 403 || !answer.has_error_shape() {
            let request = request_line(method, &path, body.as_deref());
            failures.add(
                format!(
                    "[{backend}] {}'s team token on its own team: {request} — not a 403 (HTTP {})",
                    t.label, answer.status
                ),
                format!(
                    "[{backend}] {}'s team token → {request} (its own team, or org-wide)\n  expected 403: only org admins may do this\n  answer: {}",
                    t.label,
                    answer.quoted()
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// What each token sees

fn data(r: &Reply, what: &str) -> Vec<Value> {
    assert_eq!(r.status, 200, "{what}: {r}");
    r.data()
}

/// The lists the sweep reads are not empty: the org sees both tenants, a
/// team token its own team (so the absence of the other is meaningful).
async fn views(s: &Stack, a: &Tenant, b: &Tenant) {
    let bk = s.backend;
    for t in [a, b] {
        let body = |r: &Reply| r.body.to_string();
        let org = &s.admin;
        let r = org.get("/v1/teams").await;
        assert!(body(&r).contains(&t.slug), "[{bk}] org GET /v1/teams: {r}");
        let r = org.get("/v1/tokens").await;
        for id in [&t.access_id, &t.key_id] {
            assert!(body(&r).contains(id.as_str()), "[{bk}] org tokens: {r}");
        }
        let r = org.get("/v1/secrets").await;
        assert!(body(&r).contains(&t.secret), "[{bk}] org secrets: {r}");
        let r = org.get("/v1/events?limit=1000").await;
        for e in &t.events {
            assert!(body(&r).contains(e.as_str()), "[{bk}] org events: {r}");
        }
        let r = org.get("/v1/events?group_by=team").await;
        assert!(
            body(&r).contains(&t.team_id),
            "[{bk}] org events by team: {r}"
        );
        let r = org.get("/v1/gateways").await;
        assert!(body(&r).contains(&t.gateway), "[{bk}] org gateways: {r}");
        let r = org.get(&format!("/v1/teams/{}/members", t.team_id)).await;
        assert!(body(&r).contains(&t.email), "[{bk}] org members: {r}");

        let own = Api::new(&s.serve.url, Some(&t.access_token));
        let who = format!("[{bk}] {}'s team token", t.label);
        let teams = data(&own.get("/v1/teams").await, &who);
        assert!(
            teams.len() == 1 && teams[0]["id"] == t.team_id.as_str(),
            "{who}: GET /v1/teams must list its own team alone: {}",
            pretty(&teams)
        );
        let r = own.get(&format!("/v1/teams/{}", t.team_id)).await;
        assert_eq!(r.status, 200, "{who}: its own team: {r}");
        let r = own.get("/v1/tokens").await;
        for id in [&t.access_id, &t.key_id] {
            assert!(body(&r).contains(id.as_str()), "{who}: tokens: {r}");
        }
        let r = own.get("/v1/secrets").await;
        assert!(body(&r).contains(&t.secret), "{who}: secrets: {r}");
        let events = data(&own.get("/v1/events?limit=1000").await, &who);
        let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
        let expected: BTreeSet<&str> = t.events.iter().map(String::as_str).collect();
        assert_eq!(ids, expected, "{who}: its events: {}", pretty(&events));
        let r = own.get("/v1/events?group_by=team").await;
        assert!(body(&r).contains(&t.team_id), "{who}: by team: {r}");
        let r = own.get("/v1/gateways").await;
        assert!(body(&r).contains(&t.gateway), "{who}: gateways: {r}");
        let audit = data(&own.get("/v1/audit?limit=1000").await, &who);
        assert!(
            !audit.is_empty() && audit.iter().all(|e| e["team_id"] == t.team_id.as_str()),
            "{who}: its own audit trail only: {}",
            pretty(&audit)
        );
        let r = own.get(&format!("/v1/teams/{}/members", t.team_id)).await;
        assert!(body(&r).contains(&t.email), "{who}: members: {r}");
        let r = own
            .get(&format!("/v1/wallets/balance?team_id={}", t.team_id))
            .await;
        assert!(
            r.status == 200 && r.body["allocated"] == 100.0,
            "{who}: its wallet: {r}"
        );
        let r = own
            .get(&format!("/v1/wallets/transactions?team_id={}", t.team_id))
            .await;
        assert!(body(&r).contains(&t.reason), "{who}: its ledger: {r}");
    }
}

/// The org's view of everything the sweeps could change.
async fn snapshot(s: &Stack, tenants: &[&Tenant]) -> BTreeMap<String, Value> {
    let mut paths: Vec<String> = [
        "/v1/teams?include_archived=true",
        "/v1/tokens",
        "/v1/secrets",
        "/v1/providers",
        "/v1/prices?history=true",
        "/v1/audit?limit=1000",
        "/v1/events?limit=1000",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    for t in tenants {
        let id = &t.team_id;
        paths.push(format!("/v1/teams/{id}"));
        paths.push(format!("/v1/teams/{id}/members"));
        paths.push(format!("/v1/wallets/balance?team_id={id}"));
        paths.push(format!("/v1/wallets/transactions?team_id={id}&limit=1000"));
    }
    let mut snap = BTreeMap::new();
    for path in paths {
        let r = s.admin.get(&path).await;
        assert_eq!(r.status, 200, "[{}] org GET {path}: {r}", s.backend);
        let mut body = r.body;
        strip_volatile(&mut body);
        snap.insert(path, body);
    }
    snap
}

// ---------------------------------------------------------------------------

async fn isolation(db: &TestDatabase, routes: &[Route], failures: &mut Failures) {
    let s = start_stack(db).await;
    let bk = s.backend;

    // Every route, read from the sources.
    let names: Vec<String> = routes.iter().map(ToString::to_string).collect();
    assert!(
        routes.len() >= 20,
        "only {} routes found in src/http: {names:?}",
        routes.len()
    );
    for expected in [
        "GET /v1/teams",
        "POST /v1/teams",
        "GET /v1/tokens",
        "DELETE /v1/tokens/{id}",
        "POST /v1/wallets/allocate",
        "GET /v1/wallets/balance",
        "GET /v1/events",
        "GET /v1/gateways",
        "GET /v1/audit",
        "POST /v1/secrets",
        "PUT /v1/providers/{kind}",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "route `{expected}` not found in src/http: {names:?}"
        );
    }
    let probes = probes(routes);
    for route in routes {
        assert!(
            probes.iter().any(|p| &p.route == route),
            "no probe for {route}"
        );
    }

    // Org-wide data, then two tenants with data in every list.
    let org_secret = unique("org-secret");
    let r = s
        .admin
        .post(
            "/v1/secrets",
            &json!({"name": org_secret, "value": UPSTREAM_KEY}),
        )
        .await;
    assert_eq!(r.status, 201, "[{bk}] org secret: {r}");
    let r = s
        .admin
        .put(
            "/v1/providers/openai",
            &json!({"base_url": s.standin.base_url, "secret": org_secret}),
        )
        .await;
    assert_eq!(r.status, 200, "[{bk}] provider default: {r}");
    let r = s
        .admin
        .put(
            "/v1/prices/gpt-isolation-org",
            &json!({"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0, "source": "isolation test"}),
        )
        .await;
    assert_eq!(r.status, 200, "[{bk}] price: {r}");

    let mut a = seed_tenant(&s, "A", "alpha").await;
    let mut b = seed_tenant(&s, "B", "bravo").await;
    // A gateway serving both teams: each team sees it, but not the other.
    let shared = unique("gw-shared");
    let path = s
        .install
        .write_config(&shared, &allowlist_config(&s.standin, "gpt-4o"));
    let _shared_gateway = s
        .install
        .gateway(&path, &["--team", &a.slug, "--team", &b.slug])
        .await;
    // A revoked access token of A's.
    let revoked = s
        .admin
        .create_token(&format!("{}-revoked", a.slug), "access", Some(&a.team_id))
        .await;
    let r = s
        .admin
        .delete(&format!("/v1/tokens/{}", revoked["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200, "[{bk}] revoking: {r}");
    let revoked = revoked["token"].as_str().unwrap().to_owned();
    complete(&s, &mut a).await;
    complete(&s, &mut b).await;

    views(&s, &a, &b).await;
    let before = snapshot(&s, &[&a, &b]).await;

    let mut client = Client {
        backend: bk,
        base: s.serve.url.clone(),
        http: http_client(),
        sent: 0,
    };
    detector_self_check(&mut client, &probes, &s, &a, &b).await;
    let failed_before = failures.count;
    sweep(&mut client, &probes, &a.caller(), &b, failures).await;
    sweep(&mut client, &probes, &b.caller(), &a, failures).await;
    sweep_unauthenticated(&mut client, &probes, &a, &b, &revoked, failures).await;
    org_only_actions(&mut client, &a, &org_secret, failures).await;
    org_only_actions(&mut client, &b, &org_secret, failures).await;

    // No refused request changed anything, for either tenant or the org.
    let after = snapshot(&s, &[&a, &b]).await;
    for (path, was) in &before {
        let now = &after[path];
        if was != now {
            failures.add(
                format!("[{bk}] the sweeps changed org GET {path}"),
                format!(
                    "[{bk}] the sweeps changed org GET {path}: every request was refused, yet\n  before: {}\n  after:  {}",
                    serde_json::to_string(was).unwrap(),
                    serde_json::to_string(now).unwrap()
                ),
            );
        }
    }
    // B's (and A's) credentials still work: nothing was revoked or archived.
    for t in [&a, &b] {
        let r = Api::new(&s.serve.url, Some(&t.access_token))
            .get(&format!("/v1/teams/{}", t.team_id))
            .await;
        if r.status != 200 {
            let kind = format!(
                "[{bk}] after the sweeps, {}'s team token no longer reads its own team",
                t.label
            );
            failures.add(kind.clone(), format!("{kind}: {r}"));
        }
        let r = chat(
            &t.gateway_process.url,
            Some(&t.key),
            &chat_body("gpt-4o", "still there?"),
        )
        .await;
        if r.status != 200 {
            let kind = format!(
                "[{bk}] after the sweeps, {}'s gateway key no longer works",
                t.label
            );
            failures.add(kind.clone(), format!("{kind}: {r}"));
        }
    }
    eprintln!(
        "[{bk}] {} routes, {} probes, {} requests sent, {} failure(s)",
        routes.len(),
        probes.len(),
        client.sent,
        failures.count - failed_before
    );
}
