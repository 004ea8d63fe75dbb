//! `POST /v1/chat/completions` (OpenAI format) and `POST /v1/messages`
//! (Anthropic format): authenticate the key, check the team, apply the
//! policies, route to a provider target, relay the answer (streams event by
//! event) and record one event per request, allowed or not.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use policy::{RequestFacts, Verdict};
use serde_json::Value;
use store::events::EventRow;

use crate::Gateway;
use crate::budget::Cap;
use crate::error::GatewayError;
use crate::keys::{KeyInfo, Lookup};
use crate::metrics::{RequestLabels, TokenLabels};
use crate::providers::{Answer, ByteStream};
use crate::rewrite::{FilterFactory, SseRewriter};
use crate::runtime::Runtime;
use crate::usage::{SseUsage, Usage};

/// The wire format a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFormat {
    /// `POST /v1/chat/completions`
    OpenAi,
    /// `POST /v1/messages`
    Anthropic,
}

impl ApiFormat {
    pub fn name(self) -> &'static str {
        match self {
            ApiFormat::OpenAi => "OpenAI chat completions",
            ApiFormat::Anthropic => "Anthropic messages",
        }
    }
}

/// The fields of a request's event known before the answer.
// Not Clone: it may hold a budget reservation, which must be settled once.
struct Draft {
    started: Instant,
    format: ApiFormat,
    key: Option<KeyInfo>,
    model: String,
    target: Option<(String, &'static str)>,
    streamed: bool,
    demo: bool,
    verdict: &'static str,
    reason: Option<String>,
    policy: Option<String>,
    /// The client asked for usage in streams (`stream_options.include_usage`).
    client_wants_usage: bool,
    /// Rewrites the answer's text (restore markers, redact PII), if a policy asks.
    answer_filter: Option<Arc<FilterFactory>>,
    /// PII entity types the policies found (names only).
    pii_entities: Vec<String>,
    /// Estimated prompt tokens, charged when a stream is cut before the
    /// provider reported usage.
    input_estimate: i64,
    /// The worst-case cost held against the team's budget until the end.
    reservation: Option<crate::budget::Reservation>,
}

impl Draft {
    fn new(started: Instant, format: ApiFormat) -> Self {
        Draft {
            started,
            format,
            key: None,
            model: String::new(),
            target: None,
            streamed: false,
            demo: false,
            verdict: "allow",
            reason: None,
            policy: None,
            client_wants_usage: false,
            answer_filter: None,
            pii_entities: Vec::new(),
            input_estimate: 0,
            reservation: None,
        }
    }

    /// Records PII the answer filter redacted from the answer: the entity
    /// types join the event's, and an otherwise allowed request is recorded
    /// as redacted.
    fn note_answer_redactions(&mut self, entities: Vec<String>) {
        if entities.is_empty() {
            return;
        }
        if self.verdict == "allow" {
            self.verdict = "redact";
            self.reason
                .get_or_insert_with(|| format!("pii_in_answer:{}", entities[0]));
        }
        crate::rewrite::merge_entities(&mut self.pii_entities, entities);
    }

    fn finish(
        self,
        gw: &Gateway,
        status: StatusCode,
        usage: Usage,
        verdict: &'static str,
    ) -> EventRow {
        let latency = self.started.elapsed();
        let (cost, unpriced) = gw.prices.cost(&self.model, usage);
        gw.metrics
            .requests
            .get_or_create(&RequestLabels {
                verdict,
                status: status.as_u16(),
            })
            .inc();
        gw.metrics.latency.observe(latency.as_secs_f64());
        gw.metrics
            .cost_micros
            .inc_by(u64::try_from(cost).unwrap_or(0));
        for (direction, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
        ] {
            gw.metrics
                .tokens
                .get_or_create(&TokenLabels { direction })
                .inc_by(u64::try_from(n).unwrap_or(0));
        }
        if let Some(key) = &self.key {
            match &self.reservation {
                Some(reservation) => gw.budgets.settle(reservation, cost),
                None => gw.budgets.record(&key.team_id, cost),
            }
            let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
            gw.limiter.record_tokens(
                &key.team_id,
                u64::try_from(tokens).unwrap_or(0),
                store::now_ms(),
            );
        }
        let (target, kind) = self
            .target
            .map_or((None, None), |(t, k)| (Some(t), Some(k.to_owned())));
        EventRow {
            event_id: store::new_id(),
            created_at: store::now_ms(),
            gateway_id: gw.gateway_id.clone(),
            gateway_name: gw.name.clone(),
            team_id: self.key.as_ref().map(|k| k.team_id.clone()),
            token_id: self.key.map(|k| k.token_id),
            model: self.model,
            provider_target: target,
            provider_kind: kind,
            verdict: verdict.to_owned(),
            reason: self.reason,
            policy: self.policy,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_micros: cost,
            latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
            upstream_status: Some(i64::from(status.as_u16())),
            streamed: self.streamed,
            demo: self.demo,
            pii_entities: (!self.pii_entities.is_empty()).then(|| self.pii_entities.join(",")),
            unpriced,
        }
    }
}

pub async fn chat_completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(gw, headers, body, ApiFormat::OpenAi).await
}

pub async fn messages(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(gw, headers, body, ApiFormat::Anthropic).await
}

async fn handle(gw: Arc<Gateway>, headers: HeaderMap, body: Bytes, format: ApiFormat) -> Response {
    let mut draft = Draft::new(Instant::now(), format);
    match prepare_and_send(&gw, &headers, &body, &mut draft).await {
        Ok(answer) => relay(gw, draft, answer),
        Err(err) => {
            let (verdict, reason) = err.verdict_and_reason();
            draft.reason = Some(reason);
            draft.policy = err.policy().map(str::to_owned);
            let event = draft.finish(&gw, err.status(), Usage::default(), verdict);
            gw.spool.record(event);
            err.into_response_for(format)
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth.and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    })
    .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
    .map(str::trim)
}

async fn authenticate(gw: &Gateway, headers: &HeaderMap) -> Result<KeyInfo, GatewayError> {
    let secret = bearer(headers).ok_or(GatewayError::Unauthorized(
        "missing API key: send `Authorization: Bearer kt_gk_…` with your team's gateway key",
    ))?;
    if !secret.starts_with("kt_gk_") {
        return Err(GatewayError::Unauthorized(
            "invalid API key: expected a kt gateway key (kt_gk_…)",
        ));
    }
    let info = match gw.keys.lookup(secret).await {
        Lookup::Valid(info) => info,
        Lookup::Revoked => {
            return Err(GatewayError::Unauthorized(
                "this gateway key has been revoked",
            ));
        }
        Lookup::Unknown => return Err(GatewayError::Unauthorized("invalid API key")),
    };
    if let Some(teams) = &gw.serve_teams
        && !teams.contains(&info.team_id)
    {
        return Err(GatewayError::WrongTeam);
    }
    Ok(info)
}

async fn prepare_and_send(
    gw: &Gateway,
    headers: &HeaderMap,
    raw: &[u8],
    draft: &mut Draft,
) -> Result<Answer, GatewayError> {
    let key = authenticate(gw, headers).await?;
    draft.key = Some(key.clone());

    let mut body: Value = serde_json::from_slice(raw).map_err(|e| {
        GatewayError::BadRequest(format!("the request body is not valid JSON: {e}"))
    })?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GatewayError::BadRequest("`model` is required and must be a string".to_owned())
        })?
        .to_owned();
    draft.model.clone_from(&model);
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(GatewayError::BadRequest(
            "`messages` is required and must be a list".to_owned(),
        ));
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(GatewayError::BadRequest(
                "`stream` must be true or false".to_owned(),
            ));
        }
    };
    draft.streamed = stream;
    draft.client_wants_usage =
        body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));

    // The config in force when the request started applies to all of it.
    let rt = gw.runtime();
    if let Some(held) = apply_policies(&rt, &model, &mut body, draft, &[])? {
        let ids: Vec<&str> = headers
            .get("x-escalation-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        // What an approval is bound to. (The body is still as sent: a held
        // request is not redacted.)
        let hash = content_hash(&model, &body);
        if ids.is_empty() {
            return Err(escalate(gw, &key, &model, &body, &hash, held, &[]).await);
        }
        // Each approval releases the request from the policy that held it;
        // every other policy still applies, and is checked before the
        // approvals are used up.
        let released = approved_policies(gw, &key, &ids, &hash, &held).await?;
        let skip: Vec<&str> = released.iter().map(String::as_str).collect();
        if let Some(next) = apply_policies(&rt, &model, &mut body, draft, &skip)? {
            // Another policy holds it too: its own review first.
            return Err(escalate(gw, &key, &model, &body, &hash, next, &ids).await);
        }
        use_approvals(gw, &key, &ids, &hash, draft, &held).await?;
    }
    enforce_limits(gw, &rt.config, &key, max_output_tokens(&body), draft).await?;

    // The routed target, then the fallbacks that can serve this format.
    let chain: Vec<_> = rt
        .route_chain(&model)
        .into_iter()
        .enumerate()
        .filter(|(i, (_, provider))| *i == 0 || provider.speaks(draft.format))
        .map(|(_, t)| t)
        .collect();
    if chain.is_empty() {
        return Err(GatewayError::NoRoute(model));
    }
    let mut body = Some(body);
    let mut last = None;
    for (i, (target, provider)) in chain.iter().enumerate() {
        let has_next = i + 1 < chain.len();
        // Keep a copy for the next target only when there is one.
        let Some(this_body) = (if has_next { body.clone() } else { body.take() }) else {
            break;
        };
        draft.target = Some((target.id.clone(), target.kind.as_str()));
        draft.demo = provider.is_demo();
        let asked = Instant::now();
        let answer = provider
            .send(&gw.http, draft.format, this_body, stream, headers)
            .await;
        gw.metrics
            .upstream_latency
            .observe(asked.elapsed().as_secs_f64());
        let failed = match &answer {
            Ok(Answer::Complete { status, .. }) => status.is_server_error(),
            Err(GatewayError::Upstream(_) | GatewayError::UpstreamTimeout) => true,
            _ => false,
        };
        if failed && has_next {
            let next = &chain[i + 1].0.id;
            tracing::warn!(target = %target.id, next = %next, "upstream failed; trying the fallback target");
            gw.metrics.fallbacks.inc();
            last = Some(answer);
            continue;
        }
        return answer;
    }
    last.unwrap_or_else(|| Err(GatewayError::NoRoute(model)))
}

/// Evaluates the content policies (PII, model filter) in the order written,
/// redacts the request when a policy says so, and prepares the answer filter
/// (restoring markers, redacting PII in the answer). Fails closed: if
/// evaluation itself fails, the request is blocked.
fn apply_policies(
    rt: &Runtime,
    model: &str,
    body: &mut Value,
    draft: &mut Draft,
    released: &[&str],
) -> Result<Option<Held>, GatewayError> {
    let evaluated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let texts = policy::request_texts(body);
        let chars: usize = texts.iter().map(|t| t.len()).sum();
        let estimate =
            i64::try_from(chars.div_ceil(crate::usage::CHARS_PER_TOKEN)).unwrap_or(i64::MAX);
        let facts = RequestFacts { model, texts };
        (rt.config.evaluate_skipping(&facts, released), estimate)
    }));
    let (evaluation, input_estimate) = evaluated.map_err(|_| {
        tracing::error!("policy evaluation failed; blocking the request (fail closed)");
        GatewayError::PolicyViolation {
            policy: "policy-engine".to_owned(),
            reason: "detector_error".to_owned(),
            message: "the request could not be checked against the team's policies, so it was blocked; retry, and tell your platform team if it persists".to_owned(),
        }
    })?;
    let decision = evaluation.decision;
    draft.pii_entities = evaluation.entities;
    draft.input_estimate = input_estimate;
    draft.policy.clone_from(&decision.policy);
    draft.reason.clone_from(&decision.reason);
    let policy = decision.policy.unwrap_or_default();
    let reason = decision.reason.unwrap_or_default();
    let mut request_redactor = None;
    match decision.verdict {
        Verdict::Block => {
            return Err(GatewayError::PolicyViolation {
                message: format!("request blocked by policy `{policy}` ({reason})"),
                policy,
                reason,
            });
        }
        Verdict::Escalate => {
            return Ok(Some(Held {
                share_prompt: rt
                    .config
                    .policy(&policy)
                    .is_some_and(policy::Policy::reviewers_see_prompt),
                matched: decision.entities,
                policy,
                reason,
            }));
        }
        Verdict::Redact => {
            if let Some(mut redactor) = rt.config.redactor() {
                policy::redact_request(body, &mut redactor);
                request_redactor = Some(redactor);
            }
            draft.verdict = "redact";
        }
        Verdict::Warn => draft.verdict = "warn",
        Verdict::Allow => {}
    }
    draft.answer_filter = rt.config.answer_filter(request_redactor).map(|filter| {
        let make: FilterFactory = Box::new(move || Box::new(filter.clone()));
        Arc::new(make)
    });
    Ok(None)
}

/// A request an `escalate` policy holds.
struct Held {
    policy: String,
    reason: String,
    /// What the policy matched (entity types, keyword or pattern names).
    matched: Vec<String>,
    /// The policy lets the reviewers read the request (sealed).
    share_prompt: bool,
}

/// What an approval is bound to: the model and the messages as sent.
fn content_hash(model: &str, body: &Value) -> String {
    use sha2::Digest as _;
    let content = serde_json::to_vec(&serde_json::json!({
        "model": model,
        "system": body.get("system"),
        "messages": body.get("messages"),
    }))
    .unwrap_or_default();
    hex::encode(sha2::Sha256::digest(&content))
}

/// The request's text as a reviewer reads it: one `role: text` block per
/// message (the system prompt first).
fn prompt_for_reviewers(body: &Value) -> String {
    fn text(content: &Value) -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
    let mut blocks = Vec::new();
    if let Some(system) = body.get("system") {
        blocks.push(format!("system: {}", text(system)));
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("?");
        blocks.push(format!(
            "{role}: {}",
            m.get("content").map(text).unwrap_or_default()
        ));
    }
    blocks.join("\n\n")
}

/// The refusal of an `X-Escalation-Id` that does not release this request.
fn not_approved(held: &Held, id: &str) -> GatewayError {
    GatewayError::PolicyViolation {
        policy: held.policy.clone(),
        reason: "escalation_not_approved".to_owned(),
        message: format!(
            "escalation {id} does not allow this request: it is not approved, was already used, has expired, or was for other content"
        ),
    }
}

fn unavailable(err: &store::StoreError) -> GatewayError {
    tracing::error!(error = %err, "checking an escalation failed");
    GatewayError::Unavailable("the escalation could not be checked; retry shortly".to_owned())
}

/// The policies the approvals named in `X-Escalation-Id` release: each
/// must be approved, unused and unexpired, for this team and this exact
/// content. Nothing is used up yet.
async fn approved_policies(
    gw: &Gateway,
    key: &KeyInfo,
    ids: &[&str],
    hash: &str,
    held: &Held,
) -> Result<Vec<String>, GatewayError> {
    const MAX_IDS: usize = 8;
    if ids.len() > MAX_IDS {
        return Err(GatewayError::BadRequest(format!(
            "X-Escalation-Id names {} escalations; at most {MAX_IDS}",
            ids.len()
        )));
    }
    let policies = store::escalations::approved_policies(gw.db(), ids, &key.team_id, hash)
        .await
        .map_err(|err| unavailable(&err))?;
    let mut released = Vec::with_capacity(ids.len());
    for (id, policy) in ids.iter().zip(policies) {
        released.push(policy.ok_or_else(|| not_approved(held, id))?);
    }
    Ok(released)
}

/// Uses up the approvals (`X-Escalation-Id`) of a request that now passes,
/// all in one transaction: each passes once.
async fn use_approvals(
    gw: &Gateway,
    key: &KeyInfo,
    ids: &[&str],
    hash: &str,
    draft: &mut Draft,
    held: &Held,
) -> Result<(), GatewayError> {
    // All or none: a refused retry uses up none of its approvals.
    match store::escalations::consume_all(gw.db(), ids, &key.team_id, hash).await {
        Ok(None) => {}
        // Used by a concurrent resend since it was checked.
        Ok(Some(id)) => return Err(not_approved(held, id)),
        Err(err) => return Err(unavailable(&err)),
    }
    if draft.verdict == "allow" {
        draft.reason = Some("escalation_approved".to_owned());
    }
    Ok(())
}

/// Records a held request for its team's reviewers and answers 409
/// `escalation_required` with the escalation's id. Only this rare path (and
/// [`use_approvals`]) touches the database.
async fn escalate(
    gw: &Gateway,
    key: &KeyInfo,
    model: &str,
    body: &Value,
    hash: &str,
    held: Held,
    approved: &[&str],
) -> GatewayError {
    let message = format!(
        "request held by policy `{}` ({}): it needs a reviewer's approval",
        held.policy, held.reason
    );
    let ttl_ms = std::env::var("KT_ESCALATION_TTL_SECONDS")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .map_or(store::escalations::DEFAULT_TTL_MS, |s| s * 1000);
    let sealed = match (held.share_prompt, gw.master_key()) {
        (false, _) => None,
        (true, Some(k)) => {
            store::escalations::seal_prompt(k, &key.team_id, hash, &prompt_for_reviewers(body))
                .map_err(|err| tracing::error!(error = %err, "sealing a held prompt failed"))
                .ok()
        }
        (true, None) => {
            tracing::warn!(
                policy = %held.policy,
                "the policy lets reviewers see the prompt, but this gateway has no master key (KT_MASTER_KEY): only metadata is kept"
            );
            None
        }
    };
    let recorded = store::escalations::create(
        gw.db(),
        &store::escalations::NewEscalation {
            team_id: &key.team_id,
            gateway_id: &gw.gateway_id,
            token_id: &key.token_id,
            policy: &held.policy,
            reason: &held.reason,
            model,
            entities: &held.matched,
            content_hash: hash,
            ttl_ms,
            prompt_sealed: sealed.as_deref(),
        },
    )
    .await;
    let escalation_id = match recorded {
        Ok(e) => Some(e.escalation_id),
        Err(err) => {
            tracing::error!(error = %err, "recording an escalation failed; the request stays held");
            None
        }
    };
    GatewayError::EscalationRequired {
        message: match &escalation_id {
            Some(id) => {
                let header = approved
                    .iter()
                    .copied()
                    .chain([id.as_str()])
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "{message}; escalation {id} awaits a reviewer, then resend the same request with the header X-Escalation-Id: {header}"
                )
            }
            None => format!("{message}; it could not be sent to a reviewer now, retry shortly"),
        },
        policy: held.policy,
        reason: held.reason,
        escalation_id,
    }
}

/// Output tokens assumed for a request that does not cap them, when
/// reserving its worst-case cost.
const DEFAULT_MAX_OUTPUT_TOKENS: i64 = 4096;

/// The output cap a request asks for (`max_tokens`, or OpenAI's newer
/// `max_completion_tokens`).
fn max_output_tokens(body: &Value) -> i64 {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_i64))
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS)
}

/// Rate limits (requests and tokens per minute) and the monthly cost cap.
/// `warn` policies record and let the request through.
async fn enforce_limits(
    gw: &Gateway,
    config: &policy::PolicyConfig,
    key: &KeyInfo,
    max_output_tokens: i64,
    draft: &mut Draft,
) -> Result<(), GatewayError> {
    let warn = |draft: &mut Draft, policy: &str, reason: &str| {
        draft.verdict = "warn";
        draft.policy = Some(policy.to_owned());
        draft.reason = Some(reason.to_owned());
    };
    let now_ms = store::now_ms();
    if let Some((rpm, tpm, policy, action)) = config.rate_limit() {
        let limited = match gw.limiter.admit(&key.team_id, rpm, now_ms).await {
            Err(wait) => Err((rpm, "requests", wait)),
            Ok(()) => match tpm {
                Some(tpm) => gw
                    .limiter
                    .check_tokens(&key.team_id, tpm, now_ms)
                    .map_err(|wait| (tpm, "tokens", wait)),
                None => Ok(()),
            },
        };
        if let Err((limit, unit, wait)) = limited {
            if action != policy::Action::Block {
                warn(draft, policy, "rate_limited");
            } else {
                return Err(GatewayError::RateLimited {
                    policy: policy.to_owned(),
                    limit,
                    unit,
                    retry_after_secs: wait.as_secs().max(1),
                });
            }
        }
    }
    // The most this request can cost: its prompt plus every output token it
    // may ask for. Reserved against the monthly cap and the wallet.
    let worst_usage = Usage {
        input_tokens: draft.input_estimate,
        output_tokens: max_output_tokens,
        cached_input_tokens: 0,
    };
    let (worst, _) = gw.prices.cost(&draft.model, worst_usage);
    let cost_limit = config.cost_limit();
    let month_cap = config.cost_limit_micros();
    let unavailable = |err: store::StoreError| {
        tracing::error!(error = %err, "leasing budget failed; refusing the request");
        GatewayError::Unavailable(
            "the team's budget cannot be checked right now (database unavailable); retry shortly"
                .to_owned(),
        )
    };
    let mut reserved = gw
        .budgets
        .reserve(&key.team_id, worst, month_cap, now_ms)
        .await
        .map_err(unavailable)?;
    if let (Err(exceeded), Some((_, policy, action))) = (&reserved, cost_limit)
        && exceeded.cap == Cap::Monthly
        && action != policy::Action::Block
    {
        // A `warn` cost limit records and lets the request through; the
        // wallet (if any) still applies.
        warn(draft, policy, "budget_exceeded");
        reserved = gw
            .budgets
            .reserve(&key.team_id, worst, None, now_ms)
            .await
            .map_err(unavailable)?;
    }
    let usd = |micros: i64| micros as f64 / 1_000_000.0;
    match reserved {
        Ok(reservation) => draft.reservation = reservation,
        Err(exceeded) if exceeded.cap == Cap::Wallet => {
            return Err(GatewayError::BudgetExceeded {
                policy: "wallet".to_owned(),
                message: format!(
                    "the team's wallet balance (${:.4}) does not cover this request, which may cost up to ${:.4}; lower max_tokens, or ask your platform team to allocate credit",
                    usd(exceeded.wallet_balance_micros),
                    usd(worst),
                ),
            });
        }
        Err(exceeded) => {
            let (limit_usd, policy, _) =
                cost_limit.unwrap_or((0.0, "cost-limit", policy::Action::Block));
            return Err(GatewayError::BudgetExceeded {
                policy: policy.to_owned(),
                message: format!(
                    "the team's monthly budget of ${limit_usd:.2} would be exceeded (policy `{policy}`; spent ${:.4} this month, and this request may cost up to ${:.4}); lower max_tokens, or wait for the 1st (UTC)",
                    usd(exceeded.month_spent_micros),
                    usd(worst),
                ),
            });
        }
    }
    Ok(())
}

fn relay(gw: Arc<Gateway>, mut draft: Draft, answer: Answer) -> Response {
    match answer {
        Answer::Complete { status, body } => {
            let usage = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| crate::usage::from_json(&v))
                .unwrap_or_default();
            let body = match (&draft.answer_filter, status.is_success()) {
                (Some(make), true) => match crate::rewrite::rewrite_complete(&body, make) {
                    Some((rewritten, entities)) => {
                        draft.note_answer_redactions(entities);
                        rewritten
                    }
                    None => body,
                },
                _ => body,
            };
            let verdict = if status.is_success() {
                draft.verdict
            } else {
                "error"
            };
            let event = draft.finish(&gw, status, usage, verdict);
            gw.spool.record(event);
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Answer::Stream { status, body } => {
            let strip_usage = draft.format == ApiFormat::OpenAi && !draft.client_wants_usage;
            let rewriter = (draft.answer_filter.is_some() || strip_usage)
                .then(|| SseRewriter::new(draft.answer_filter.clone(), strip_usage));
            let metered = Metered {
                inner: body,
                sse: SseUsage::default(),
                rewriter,
                ended: false,
                pending: Some((gw, draft, status)),
            };
            let mut response = Response::new(Body::from_stream(metered));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    }
}

/// Relays a provider's SSE stream chunk by chunk — unchanged, or through a
/// [`SseRewriter`] when the answer must be rewritten — while reading the
/// usage from the original bytes; records the event when the stream ends or
/// the client goes away (drop), whichever comes first.
struct Metered {
    inner: ByteStream,
    sse: SseUsage,
    rewriter: Option<SseRewriter>,
    ended: bool,
    pending: Option<(Arc<Gateway>, Draft, StatusCode)>,
}

impl Metered {
    fn finish(&mut self, verdict_override: Option<&'static str>) {
        if let Some((gw, mut draft, status)) = self.pending.take() {
            if let Some(rewriter) = &self.rewriter {
                draft.note_answer_redactions(rewriter.entities());
            }
            let (usage, estimated) = self.sse.charge(draft.input_estimate);
            if estimated && draft.reason.is_none() {
                draft.reason = Some("usage_estimated".to_owned());
            }
            let verdict = verdict_override.unwrap_or(draft.verdict);
            let event = draft.finish(&gw, status, usage, verdict);
            gw.spool.record(event);
        }
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.sse.feed(&chunk);
                    let Some(rewriter) = self.rewriter.as_mut() else {
                        return Poll::Ready(Some(Ok(chunk)));
                    };
                    let out = rewriter.feed(&chunk);
                    // A chunk inside an event yields nothing yet: read on.
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    self.finish(Some("error"));
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    self.finish(None);
                    let rest = self
                        .rewriter
                        .as_mut()
                        .map(SseRewriter::finish)
                        .unwrap_or_default();
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // The client disconnected before the end: still record what was used.
        self.finish(None);
    }
}
