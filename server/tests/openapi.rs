//! The OpenAPI document (SPEC §6): `GET /v1/openapi.json` is served without
//! a token, is an OpenAPI 3.1 document, and describes exactly the routes the
//! routers register — a route added to `server/src/http/*.rs` without a
//! `#[utoipa::path]` listed in `ApiDoc` fails here, and so does a documented
//! operation that is not served.
//!
//! The registered routes are read from the source at test time: every
//! `.route("PATH", get(..).post(..))` in `src/http/*.rs`, attributed to the
//! function it is in (`router` functions are nested under `/v1`, `probes` is
//! at the root; see `server::app`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use serde_json::Value;

/// HTTP methods an axum method router can be built with, as in the source.
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The operations the document may mark as open (no bearer token).
const OPEN: [(&str, &str); 3] = [
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

/// Operations authenticated by a signature instead of the bearer token.
const SIGNED: [(&str, &str); 1] = [("post", "/v1/git-repos/{id}/webhook")];

/// `(method, full path)` of every route registered in `src/http/*.rs`.
fn registered_routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The prefixes below are how `server::app` mounts the two routers.
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains(r#".nest("/v1", http::router())"#) && lib.contains(".merge(http::probes())"),
        "server::app no longer mounts http::router() at /v1 and http::probes() at the root: update this test"
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.join("src/http"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut routes = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (function, path, methods) in parse_routes(&source) {
            let prefix = match function.as_str() {
                "router" => "/v1",
                "probes" if name == "mod.rs" => "",
                other => panic!(
                    "{name}: `.route(\"{path}\", …)` in fn `{other}`: this test knows where `router` \
                     (nested at /v1) and `probes` (at the root) are mounted; teach it about `{other}`"
                ),
            };
            assert!(
                !methods.is_empty(),
                "{name}: no method (get/post/put/delete/patch) found for route {path}"
            );
            for method in methods {
                let full = format!("{prefix}{path}");
                assert!(
                    routes.insert((method.clone(), full.clone())),
                    "{name}: {method} {full} registered twice"
                );
            }
        }
    }
    assert!(
        routes.len() >= 20,
        "only {} routes found in src/http/*.rs: is the parser broken? {routes:?}",
        routes.len()
    );
    routes
}

/// `(enclosing fn, path, methods)` of each `.route(…)` call in `source`.
fn parse_routes(source: &str) -> Vec<(String, String, Vec<String>)> {
    let code = strip_comments(source);
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(at) = code[search..].find(".route(").map(|i| search + i) {
        let open = at + ".route".len();
        let close = matching_paren(bytes, open)
            .unwrap_or_else(|| panic!("unbalanced `.route(` at byte {at}"));
        let args = &code[open + 1..close];
        let function = enclosing_fn(&code[..at])
            .unwrap_or_else(|| panic!("`.route(` outside a function at byte {at}"));
        let args_trimmed = args.trim_start();
        let path = args_trimmed
            .strip_prefix('"')
            .and_then(|rest| rest.split_once('"'))
            .map(|(path, _)| path.to_owned())
            .unwrap_or_else(|| panic!("`.route(` without a literal path: {args}"));
        let after_path = &args_trimmed[path.len() + 2..];
        let handler = after_path
            .trim_start()
            .strip_prefix(',')
            .unwrap_or_else(|| panic!("route {path}: expected `, METHOD(..)`"));
        found.push((function, path, top_level_methods(handler)));
        search = close;
    }
    found
}

/// The method calls at the top level of a method-router expression such as
/// `get(list).post(create)` (not calls inside their arguments).
fn top_level_methods(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut methods = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => i = skip_string(bytes, i),
            c if depth == 0 && (c.is_ascii_alphabetic() || c == b'_') => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let ident = &expr[start..i];
                let next = expr[i..].trim_start();
                if next.starts_with('(') {
                    assert!(
                        METHODS.contains(&ident),
                        "unexpected `{ident}(` in a route's method router `{}`: this test \
                         knows {METHODS:?}",
                        expr.trim()
                    );
                    methods.push(ident.to_owned());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    methods
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' => i = skip_string(bytes, i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the closing quote of the string literal opening at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The name of the last `fn NAME` before the end of `before`.
fn enclosing_fn(before: &str) -> Option<String> {
    before.rmatch_indices("fn ").find_map(|(at, _)| {
        let word_start = before[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let name: String = before[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (word_start && !name.is_empty()).then_some(name)
    })
}

/// `source` without `//` comments (doc comments mention routes too).
fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal (a URL) is kept.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(method, path)` of every operation in the document.
fn documented_operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("`paths` is an object") {
        for (method, op) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                ops.insert((method.clone(), path.clone()), op.clone());
            }
        }
    }
    ops
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, into: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => into.push(r),
                    _ => refs(v, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, into)),
        _ => {}
    }
}

#[test]
fn the_route_parser_reads_method_routers() {
    let parsed = parse_routes(
        r#"
        pub fn router() -> Router<AppState> {
            // .route("/commented", get(nothing))
            Router::new()
                .route("/a", get(list).post(create))
                .route(
                    "/a/{id}",
                    get(|State(s): State<AppState>| async move { s.get("x") })
                        .delete(remove),
                )
        }
        pub fn probes() -> Router<AppState> {
            Router::new().route("/healthz", get(healthz))
        }
        "#,
    );
    let simple: Vec<(&str, &str, Vec<&str>)> = parsed
        .iter()
        .map(|(f, p, m)| {
            (
                f.as_str(),
                p.as_str(),
                m.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        simple,
        vec![
            ("router", "/a", vec!["get", "post"]),
            ("router", "/a/{id}", vec!["get", "delete"]),
            ("probes", "/healthz", vec!["get"]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_describes_every_route() {
    let routes = registered_routes();
    let db = store::testing::sqlite().await;
    let install = Install::new(&db.url);
    let serve = install.serve().await;
    let anonymous = Api::new(&serve.url, None);

    // Served without a token, as JSON.
    let reply = anonymous.get("/v1/openapi.json").await;
    assert_eq!(reply.status, 200, "{reply}");
    assert!(
        reply
            .headers
            .get("content-type")
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json")),
        "content type: {:?}",
        reply.headers.get("content-type")
    );
    let doc = reply.body;
    assert!(doc.is_object(), "not a JSON object: {doc}");

    // OpenAPI 3.1, with a title and this build's version.
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi: {version:?}");
    assert_eq!(doc["info"]["title"], "kt API", "{}", doc["info"]);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        doc["info"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    // Exactly the registered routes.
    let ops = documented_operations(&doc);
    let documented: BTreeSet<(String, String)> = ops.keys().cloned().collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes served but missing from /v1/openapi.json (annotate the handler with \
         #[utoipa::path] and list it in ApiDoc's `paths`): {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&routes).collect();
    assert!(
        unserved.is_empty(),
        "operations documented but not registered in any router: {unserved:?}"
    );

    // The bearer scheme and the shared error shape.
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http", "{schemes}");
    assert_eq!(schemes["scheme"], "bearer", "{schemes}");
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error["properties"]["error"]["$ref"], "#/components/schemas/ErrorDetail",
        "{error}"
    );
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    for field in ["code", "message"] {
        assert!(
            detail["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field)),
            "ErrorDetail.{field} must be required: {detail}"
        );
    }

    let mut operation_ids = BTreeSet::new();
    for ((method, path), op) in &ops {
        let what = format!("{} {path}", method.to_uppercase());
        assert!(
            op["operationId"]
                .as_str()
                .is_some_and(|id| operation_ids.insert(id.to_owned())),
            "{what}: missing or duplicate operationId"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{what}: no tag"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no 2xx response"
        );
        // Every `{param}` of the path is a declared path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_path, "{what}: path parameters");

        // Error answers use the shared error shape.
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let body = response
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/responses/"))
                    .map(|name| &doc["components"]["responses"][name])
                    .unwrap_or(response);
                let schema = &body["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    schema == "#/components/schemas/ErrorBody" || (path == "/readyz"),
                    "{what}: the {status} answer is not an ErrorBody: {response}"
                );
            }
        }

        if OPEN.contains(&(method.as_str(), path.as_str())) {
            assert!(op.get("security").is_none(), "{what} must be open: {op}");
            continue;
        }
        if SIGNED.contains(&(method.as_str(), path.as_str())) {
            assert_eq!(
                op["security"],
                serde_json::json!([{"webhook_signature": []}]),
                "{what}: security"
            );
            assert!(responses.contains_key("401"), "{what}: no 401 answer");
            continue;
        }
        // Everything else needs the bearer token, and says so.
        assert_eq!(
            op["security"],
            serde_json::json!([{"bearer": []}]),
            "{what}: security"
        );
        assert!(responses.contains_key("401"), "{what}: no 401 answer");

        // And is really served: without a token the route answers 401 in
        // the error shape (an unregistered path or method would be 404/405).
        let concrete = path.replace(['{', '}'], "");
        let response = anonymous
            .http
            .request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{concrete}", serve.url),
            )
            .send()
            .await
            .unwrap();
        let reply = Reply::read(response).await;
        assert_eq!(reply.status, 401, "{what} without a token: {reply}");
        reply.assert_error_shape(&what);
        assert_eq!(
            reply.body["error"]["code"], "unauthorized",
            "{what}: {reply}"
        );
    }

    // Every reference resolves within the document.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }

    drop(serve);
    db.cleanup().await;
}
