//! `GET /v1/events` against a real `kt serve`, real gateways and the stand-in
//! provider, on every available database backend: filters, `until`, cursor
//! pagination, `group_by` totals from the hourly rollup, team scoping and
//! the 400s that name the parameter at fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;
use store::testing::TestDatabase;

const GPT4O: &str = "gpt-4o";
const MINI: &str = "gpt-4o-mini";
/// Refused by the policy `model-allowlist` of every test gateway.
const BLOCKED: &str = "gpt-3.5-turbo";
const VERDICT_LIST: &str = "allow, block, redact, warn, escalate, error";

fn allowlist() -> String {
    format!(
        "  - name: model-allowlist\n    type: model_filter\n    allowed_models: [{GPT4O}, {MINI}]\n"
    )
}

/// A chat request for `model` through `gw`: answered unless it is [`BLOCKED`].
async fn send(gw: &KtProcess, key: &str, model: &str) {
    let r = chat(gw.url.as_str(), Some(key), &chat_body(model, "Say hello")).await;
    if model == BLOCKED {
        assert!(
            (400..500).contains(&r.status),
            "{model} through {} must be refused: {r}",
            gw.url
        );
    } else {
        assert_eq!(r.status, 200, "{model} through {}: {r}", gw.url);
    }
}

/// Which events a filter keeps.
type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

/// Percent-encodes a query value.
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn micros(v: &Value) -> i64 {
    (v["cost_usd"].as_f64().unwrap() * 1_000_000.0).round() as i64
}

/// `created_at` in unix milliseconds.
fn at_ms(e: &Value) -> i64 {
    let t = parse_rfc3339(e["created_at"].as_str().unwrap());
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The UTC day of an event, `YYYY-MM-DD`.
fn day(e: &Value) -> String {
    rfc3339_ms(at_ms(e))[..10].to_owned()
}

/// What a group adds up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Sum {
    requests: i64,
    blocked: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_micros: i64,
}

impl Sum {
    fn of_events<'a>(events: impl IntoIterator<Item = &'a Value>) -> Sum {
        let mut s = Sum::default();
        for e in events {
            s.requests += 1;
            s.blocked += i64::from(e["verdict"] == "block" || e["verdict"] == "escalate");
            s.input_tokens += e["input_tokens"].as_i64().unwrap();
            s.output_tokens += e["output_tokens"].as_i64().unwrap();
            s.cost_micros += micros(e);
        }
        s
    }

    fn of_group(g: &Value) -> Sum {
        Sum {
            requests: g["requests"].as_i64().unwrap(),
            blocked: g["blocked"].as_i64().unwrap(),
            input_tokens: g["input_tokens"].as_i64().unwrap(),
            output_tokens: g["output_tokens"].as_i64().unwrap(),
            cost_micros: micros(g),
        }
    }

    fn add(&mut self, o: &Sum) {
        self.requests += o.requests;
        self.blocked += o.blocked;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_micros += o.cost_micros;
    }
}

/// One page: its events and `next_cursor`.
async fn page(api: &Api, query: &str) -> (Vec<Value>, Option<String>) {
    let r = api.get(&format!("/v1/events?{query}")).await;
    assert_eq!(r.status, 200, "GET /v1/events?{query}: {r}");
    let next = r
        .body
        .get("next_cursor")
        .unwrap_or_else(|| panic!("GET /v1/events?{query}: no `next_cursor` in {r}"));
    assert!(
        next.is_null() || next.is_string(),
        "GET /v1/events?{query}: next_cursor {next}"
    );
    (r.data(), next.as_str().map(str::to_owned))
}

/// Every page of `query` (which sets `limit`), following `next_cursor`: the
/// events in order and the size of each page.
async fn walk(api: &Api, query: &str, limit: usize) -> (Vec<Value>, Vec<usize>) {
    let mut events = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            None => format!("{query}&limit={limit}"),
            Some(c) => format!("{query}&limit={limit}&cursor={}", enc(c)),
        };
        let (data, next) = page(api, &q).await;
        sizes.push(data.len());
        assert!(data.len() <= limit, "GET /v1/events?{q}: {}", data.len());
        events.extend(data);
        match next {
            Some(next) => cursor = Some(next),
            None => return (events, sizes),
        }
        assert!(sizes.len() < 100, "GET /v1/events?{query}: endless pages");
    }
}

/// `GET /v1/events?group_by=BY&REST`, expecting 200; the groups.
async fn groups(api: &Api, by: &str, rest: &str) -> Vec<Value> {
    let query = format!("group_by={by}{rest}");
    let r = api.get(&format!("/v1/events?{query}")).await;
    assert_eq!(r.status, 200, "GET /v1/events?{query}: {r}");
    assert_eq!(r.body["group_by"], by, "GET /v1/events?{query}: {r}");
    assert!(
        r.body.get("next_cursor").is_none(),
        "grouped answers are not paginated: {r}"
    );
    r.data()
}

/// Expects a 400 in the shared error shape whose message contains each of
/// `names`.
async fn bad_request(api: &Api, query: &str, names: &[&str]) {
    let r = api.get(&format!("/v1/events?{query}")).await;
    assert_eq!(r.status, 400, "GET /v1/events?{query}: {r}");
    r.assert_error_shape(&format!("GET /v1/events?{query}"));
    let message = r.body["error"]["message"].as_str().unwrap();
    for name in names {
        assert!(
            message.contains(name),
            "GET /v1/events?{query}: the message must name {name}: {message}"
        );
    }
}

/// Two teams' requests through two gateways.
struct Seeded {
    s: Stack,
    eng: TeamKey,
    ops: TeamKey,
    gw_a: KtProcess,
    /// Every event, newest first.
    all: Vec<Value>,
}

async fn seed(db: &TestDatabase) -> Seeded {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let ops = s.team_with_key("Operations", "ops").await;
    let gw_a = s.policy_gateway("gw-a", &[allowlist()]).await;
    let gw_b = s.policy_gateway("gw-b", &[allowlist()]).await;
    for model in [GPT4O, MINI, GPT4O, BLOCKED] {
        send(&gw_a, &eng.key, model).await;
    }
    for model in [MINI, BLOCKED, MINI] {
        send(&gw_b, &ops.key, model).await;
    }
    send(&gw_a, &ops.key, GPT4O).await;
    let all = s
        .admin
        .wait_for_events("limit=1000", "8 events", |e| e.len() >= 8)
        .await;
    assert_eq!(all.len(), 8, "[{}] {}", s.backend, pretty(&all));
    assert_eq!(
        all.iter().filter(|e| e["verdict"] == "block").count(),
        2,
        "[{}] {}",
        s.backend,
        pretty(&all)
    );
    drop(gw_b);
    Seeded {
        s,
        eng,
        ops,
        gw_a,
        all,
    }
}

// ---------------------------------------------------------------------------
// Lists: filters, until, pagination

#[tokio::test(flavor = "multi_thread")]
async fn lists_filter_and_paginate() {
    for db in store::testing::backends().await {
        lists(&db).await;
        db.cleanup().await;
    }
}

async fn lists(db: &TestDatabase) {
    let Seeded {
        s,
        eng,
        ops,
        gw_a,
        all,
    } = seed(db).await;
    let b = s.backend;
    let admin = &s.admin;

    // Newest first, ties broken by id (the keyset order).
    let keys: Vec<(i64, String)> = all
        .iter()
        .map(|e| (at_ms(e), e["id"].as_str().unwrap().to_owned()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "[{b}] order: {keys:?}"
    );

    // Filters narrow to exactly the matching events, in order.
    let gw_a_id = all.iter().find(|e| e["gateway_name"] == "gw-a").unwrap()["gateway_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("team_id={}", eng.team_id),
            Box::new(|e: &Value| e["team_id"] == eng.team_id.as_str()),
        ),
        (
            format!("team_id={}&verdict=block", ops.team_id),
            Box::new(|e: &Value| e["team_id"] == ops.team_id.as_str() && e["verdict"] == "block"),
        ),
        (
            "verdict=block".to_owned(),
            Box::new(|e: &Value| e["verdict"] == "block"),
        ),
        (
            "verdict=allow".to_owned(),
            Box::new(|e: &Value| e["verdict"] == "allow"),
        ),
        ("verdict=escalate".to_owned(), Box::new(|_: &Value| false)),
        (
            format!("model={MINI}"),
            Box::new(|e: &Value| e["model"] == MINI),
        ),
        (
            format!("model={GPT4O}"),
            Box::new(|e: &Value| e["model"] == GPT4O),
        ),
        ("model=GPT-4O".to_owned(), Box::new(|_: &Value| false)),
        (
            "gateway_id=gw-b".to_owned(),
            Box::new(|e: &Value| e["gateway_name"] == "gw-b"),
        ),
        (
            format!("gateway_id={gw_a_id}"),
            Box::new(|e: &Value| e["gateway_name"] == "gw-a"),
        ),
        (
            format!("gateway_id=gw-a&team_id={}&model={GPT4O}", ops.team_id),
            Box::new(|e: &Value| {
                e["gateway_name"] == "gw-a"
                    && e["team_id"] == ops.team_id.as_str()
                    && e["model"] == GPT4O
            }),
        ),
    ];
    for (query, keep) in &cases {
        let expected: Vec<Value> = all.iter().filter(|e| keep(e)).cloned().collect();
        let got = admin.events(&format!("{query}&limit=1000")).await;
        assert_eq!(ids(&got), ids(&expected), "[{b}] ?{query}");
        assert_eq!(got, expected, "[{b}] ?{query}: same events, same shape");
    }
    assert_eq!(admin.events("verdict=block").await.len(), 2);
    assert_eq!(admin.events(&format!("model={BLOCKED}")).await.len(), 2);

    // `until` is an exclusive upper bound, in both forms.
    let t = at_ms(&all[3]);
    let until = enc(&rfc3339_ms(t));
    let before: Vec<Value> = all.iter().filter(|e| at_ms(e) < t).cloned().collect();
    assert!(before.len() >= 4, "[{b}] {}", pretty(&all));
    assert_eq!(
        ids(&admin.events(&format!("until={until}")).await),
        ids(&before),
        "[{b}] until={until}"
    );
    let s6 = at_ms(&all[6]);
    let since = enc(&rfc3339_ms(s6));
    let between: Vec<Value> = before.iter().filter(|e| at_ms(e) >= s6).cloned().collect();
    assert!(!between.is_empty());
    assert_eq!(
        ids(&admin.events(&format!("since={since}&until={until}")).await),
        ids(&between),
        "[{b}] since={since}&until={until}"
    );
    assert!(admin.events("until=1h").await.is_empty(), "[{b}] until=1h");
    let later = enc(&rfc3339_ms(store::now_ms() + 3_600_000));
    assert_eq!(
        ids(&admin.events(&format!("until={later}&since=1d")).await),
        ids(&all)
    );

    // Pagination walks every event once, in order; the last page says so.
    for (limit, sizes) in [
        (3, vec![3, 3, 2]),
        (4, vec![4, 4]),
        (1, vec![1; 8]),
        (8, vec![8]),
        (1000, vec![8]),
    ] {
        let (walked, got) = walk(admin, "since=1d", limit).await;
        assert_eq!(ids(&walked), ids(&all), "[{b}] limit={limit}");
        assert_eq!(got, sizes, "[{b}] page sizes with limit={limit}");
    }
    let (walked, _) = walk(admin, &format!("team_id={}", eng.team_id), 1).await;
    assert_eq!(
        ids(&walked),
        ids(&all
            .iter()
            .filter(|e| e["team_id"] == eng.team_id.as_str())
            .cloned()
            .collect::<Vec<_>>()),
        "[{b}] pages keep the filters"
    );
    let (_, next) = page(admin, "verdict=block&limit=2").await;
    assert_eq!(next, None, "[{b}] a full last page has no next_cursor");

    // A team token never sees the other team, on any page.
    let ops_token = admin
        .create_token("ops-reader", "access", Some(&ops.team_id))
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_ops = admin.with_token(Some(&ops_token));
    let of_ops: Vec<Value> = all
        .iter()
        .filter(|e| e["team_id"] == ops.team_id.as_str())
        .cloned()
        .collect();
    assert_eq!(of_ops.len(), 4);
    assert_eq!(ids(&as_ops.events("limit=1000").await), ids(&of_ops));
    let (walked, sizes) = walk(&as_ops, "since=30d", 3).await;
    assert_eq!(ids(&walked), ids(&of_ops), "[{b}] ops token, pages");
    assert_eq!(sizes, [3, 1]);
    for query in [
        format!("team_id={}", eng.team_id),
        format!("team_id={}&gateway_id=gw-a", eng.team_id),
    ] {
        assert!(
            as_ops.events(&query).await.is_empty(),
            "[{b}] ops token, ?{query}"
        );
    }
    // Even a cursor taken from the org-wide listing stays within the team.
    let (first, next) = page(admin, "limit=1").await;
    assert_eq!(ids(&first), ids(&all[..1]));
    let (rest, _) = page(&as_ops, &format!("limit=1000&cursor={}", next.unwrap())).await;
    assert!(
        rest.iter().all(|e| e["team_id"] == ops.team_id.as_str()),
        "[{b}] {}",
        pretty(&rest)
    );

    // Events stored during a walk do not shift it: the walk goes on after
    // the last event it saw, and newer events are not part of it.
    let (first, next) = page(admin, "limit=3").await;
    assert_eq!(ids(&first), ids(&all[..3]));
    send(&gw_a, &eng.key, MINI).await;
    let now = admin
        .wait_for_events("limit=1000", "the 9th event", |e| e.len() >= 9)
        .await;
    assert_eq!(
        ids(&now[1..]),
        ids(&all),
        "[{b}] the new event is the newest"
    );
    let mut cursor = next;
    let mut rest = Vec::new();
    while let Some(c) = cursor {
        let (data, next) = page(admin, &format!("limit=3&cursor={}", enc(&c))).await;
        rest.extend(data);
        cursor = next;
    }
    assert_eq!(
        ids(&rest),
        ids(&all[3..]),
        "[{b}] each event once, across a concurrent insert"
    );
}

// ---------------------------------------------------------------------------
// group_by

#[tokio::test(flavor = "multi_thread")]
async fn groups_add_up_to_the_events_and_respect_the_scope() {
    for db in store::testing::backends().await {
        grouped(&db).await;
        db.cleanup().await;
    }
}

/// The key of `e` when grouping by `by`.
fn key_of(by: &str, e: &Value) -> Value {
    match by {
        "gateway" => e["gateway_id"].clone(),
        "team" => e["team_id"].clone(),
        "model" => e["model"].clone(),
        "day" => Value::String(day(e)),
        other => panic!("{other}"),
    }
}

/// Checks the groups of `by` against `events`: one group per key with that
/// key's sums, the documented order, names, and totals that add up.
fn check_groups(
    what: &str,
    by: &str,
    got: &[Value],
    events: &[&Value],
    team_names: &BTreeMap<String, String>,
) {
    let mut expected: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in events {
        expected
            .entry(key_of(by, e).to_string())
            .or_default()
            .push(e);
    }
    let keys: Vec<String> = got.iter().map(|g| g["key"].to_string()).collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    assert_eq!(
        sorted_keys,
        expected.keys().cloned().collect::<Vec<_>>(),
        "{what}: one group per key: {}",
        pretty(&got)
    );
    let mut total = Sum::default();
    for g in got {
        let of_key = &expected[&g["key"].to_string()];
        let sum = Sum::of_group(g);
        assert_eq!(
            sum,
            Sum::of_events(of_key.iter().copied()),
            "{what}: group {}",
            g["key"]
        );
        total.add(&sum);
        match by {
            "gateway" => assert_eq!(g["name"], of_key[0]["gateway_name"], "{what}: {g}"),
            "team" => assert_eq!(
                g["name"].as_str(),
                g["key"].as_str().map(|t| team_names[t].as_str()),
                "{what}: {g}"
            ),
            _ => assert!(g.get("name").is_none(), "{what}: {g}"),
        }
    }
    assert_eq!(
        total,
        Sum::of_events(events.iter().copied()),
        "{what}: totals"
    );
    if by == "day" {
        let days: Vec<&str> = got.iter().map(|g| g["key"].as_str().unwrap()).collect();
        assert!(days.windows(2).all(|w| w[0] < w[1]), "{what}: {days:?}");
        assert!(days.iter().all(|d| d.len() == 10 && &d[4..5] == "-"));
    } else {
        let costs: Vec<i64> = got.iter().map(micros).collect();
        assert!(
            costs.windows(2).all(|w| w[0] >= w[1]),
            "{what}: highest cost first: {costs:?}"
        );
    }
}

async fn grouped(db: &TestDatabase) {
    let Seeded {
        s, eng, ops, all, ..
    } = seed(db).await;
    let b = s.backend;
    let admin = &s.admin;
    let team_names: BTreeMap<String, String> = [
        (eng.team_id.clone(), "Engineering".to_owned()),
        (ops.team_id.clone(), "Operations".to_owned()),
    ]
    .into();
    let everything: Vec<&Value> = all.iter().collect();
    assert!(Sum::of_events(everything.iter().copied()).cost_micros > 0);

    for by in ["gateway", "team", "model", "day"] {
        for range in ["", "&since=1d", "&since=2h&until=1970-01-01T00:00:00Z"] {
            if range.contains("1970") {
                bad_request(admin, &format!("group_by={by}{range}"), &["`until`"]).await;
                continue;
            }
            let got = groups(admin, by, range).await;
            check_groups(
                &format!("[{b}] group_by={by}{range}"),
                by,
                &got,
                &everything,
                &team_names,
            );
        }
    }
    let models = groups(admin, "model", "").await;
    assert_eq!(models.len(), 3, "[{b}] {}", pretty(&models));
    let gateways = groups(admin, "gateway", "").await;
    assert_eq!(gateways.len(), 2, "[{b}] {}", pretty(&gateways));

    // Filters apply to groups as to lists.
    let filtered: Vec<(&str, String, Keep)> = vec![
        (
            "model",
            format!("&team_id={}", eng.team_id),
            Box::new(|e: &Value| e["team_id"] == eng.team_id.as_str()),
        ),
        (
            "team",
            "&verdict=block".to_owned(),
            Box::new(|e: &Value| e["verdict"] == "block"),
        ),
        (
            "gateway",
            "&gateway_id=gw-b".to_owned(),
            Box::new(|e: &Value| e["gateway_name"] == "gw-b"),
        ),
        (
            "day",
            format!("&model={GPT4O}"),
            Box::new(|e: &Value| e["model"] == GPT4O),
        ),
        (
            "team",
            format!("&gateway_id=gw-a&model={MINI}&verdict=allow"),
            Box::new(|e: &Value| {
                e["gateway_name"] == "gw-a" && e["model"] == MINI && e["verdict"] == "allow"
            }),
        ),
        (
            "model",
            "&verdict=warn".to_owned(),
            Box::new(|_: &Value| false),
        ),
    ];
    for (by, rest, keep) in &filtered {
        let events: Vec<&Value> = all.iter().filter(|e| keep(e)).collect();
        let got = groups(admin, by, rest).await;
        check_groups(
            &format!("[{b}] group_by={by}{rest}"),
            by,
            &got,
            &events,
            &team_names,
        );
    }
    let gw_a_id = gateways.iter().find(|g| g["name"] == "gw-a").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_id = groups(admin, "team", &format!("&gateway_id={gw_a_id}")).await;
    let by_name = groups(admin, "team", "&gateway_id=gw-a").await;
    assert_eq!(by_id, by_name, "[{b}] gateway_id takes an id or a name");

    // Ranges: whole hours around the events count, hours before or after
    // them do not; the answer says which hours it used.
    let first = all.iter().map(at_ms).min().unwrap();
    let last = all.iter().map(at_ms).max().unwrap();
    let hour = 3_600_000;
    let until = rfc3339_ms(first - 2 * hour);
    assert!(
        groups(admin, "team", &format!("&until={}", enc(&until)))
            .await
            .is_empty(),
        "[{b}] until two hours before the first event"
    );
    let since = rfc3339_ms(last + 2 * hour);
    assert!(
        groups(admin, "day", &format!("&since={}", enc(&since)))
            .await
            .is_empty(),
        "[{b}] since two hours after the last event"
    );
    // `since` one minute after the last event still counts its hour in full
    // unless that minute starts a new hour.
    let since = last + 60_000;
    let r = admin
        .get(&format!(
            "/v1/events?group_by=model&since={}",
            enc(&rfc3339_ms(since))
        ))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let aligned = since - since.rem_euclid(hour);
    assert_eq!(r.body["since"], rfc3339_ms(aligned).as_str(), "[{b}] {r}");
    assert!(r.body["until"].is_null(), "[{b}] {r}");
    let counted: Vec<&Value> = all.iter().filter(|e| at_ms(e) >= aligned).collect();
    check_groups(
        &format!("[{b}] whole hours"),
        "model",
        &r.data(),
        &counted,
        &team_names,
    );

    // `limit` caps the number of groups: the most expensive ones.
    let top = groups(admin, "model", "&limit=1").await;
    assert_eq!(top, models[..1], "[{b}] group_by=model&limit=1");

    // A team token only ever sees its own team in groups.
    let ops_token = admin
        .create_token("ops-reader", "access", Some(&ops.team_id))
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_ops = admin.with_token(Some(&ops_token));
    let of_ops: Vec<&Value> = all
        .iter()
        .filter(|e| e["team_id"] == ops.team_id.as_str())
        .collect();
    for by in ["gateway", "team", "model", "day"] {
        let got = groups(&as_ops, by, "").await;
        check_groups(
            &format!("[{b}] ops token, group_by={by}"),
            by,
            &got,
            &of_ops,
            &team_names,
        );
    }
    let teams = groups(&as_ops, "team", "").await;
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0]["key"], ops.team_id.as_str());
    for by in ["team", "model", "gateway"] {
        assert!(
            groups(&as_ops, by, &format!("&team_id={}", eng.team_id))
                .await
                .is_empty(),
            "[{b}] ops token, group_by={by}&team_id=eng"
        );
    }
}

// ---------------------------------------------------------------------------
// Errors

#[tokio::test(flavor = "multi_thread")]
async fn invalid_queries_are_refused_naming_the_parameter() {
    let db = store::testing::sqlite().await;
    let s = start_stack(&db).await;
    let admin = &s.admin;
    let cursor = store::events::EventCursor {
        created_at: store::now_ms(),
        event_id: "e".to_owned(),
    }
    .encode();
    let (_, next) = page(admin, "limit=1").await;
    assert_eq!(next, None, "no events, no next page");
    assert!(page(admin, &format!("cursor={cursor}")).await.0.is_empty());

    for (query, names) in [
        ("verdict=blocked", &["`verdict`", VERDICT_LIST][..]),
        ("verdict=ALLOW", &["`verdict`", VERDICT_LIST][..]),
        ("limit=0", &["`limit`", "1 to 1000"][..]),
        ("limit=1001", &["`limit`", "1 to 1000"][..]),
        ("limit=-5", &["`limit`", "1 to 1000"][..]),
        ("limit=many", &["`limit`", "1 to 1000"][..]),
        ("group_by=model&limit=0", &["`limit`"][..]),
        ("cursor=not-a-cursor", &["`cursor`", "next_cursor"][..]),
        // base64url of "abc" and of "12:" (no time, no id).
        ("cursor=YWJj", &["`cursor`"][..]),
        ("cursor=MTI6", &["`cursor`"][..]),
        ("since=yesterday", &["`since`", "RFC 3339"][..]),
        ("until=tomorrow", &["`until`", "RFC 3339"][..]),
        ("since=1h&until=2h", &["`until`", "`since`"][..]),
        (
            "group_by=week",
            &["`group_by`", "gateway, team, model, day"][..],
        ),
        ("foo=1", &["`foo`"][..]),
        ("limit=5&foo=1&bar=2", &["`foo`", "`bar`"][..]),
        ("page=2&verdict=block", &["`page`"][..]),
        (
            "verdict=block&verdict=allow",
            &["`verdict`", "more than once"][..],
        ),
        ("model=", &["`model`", "empty"][..]),
    ] {
        bad_request(admin, query, names).await;
    }
    let with_group = format!("group_by=team&cursor={cursor}");
    bad_request(admin, &with_group, &["`cursor`", "`group_by`"]).await;
    // Nothing answers without a token.
    let r = admin.with_token(None).get("/v1/events").await;
    assert_eq!(r.status, 401, "{r}");
    drop(s);
    db.cleanup().await;
}
