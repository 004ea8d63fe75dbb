//! Request-side policy evaluation.
//!
//! [`PolicyConfig::evaluate_request`] applies the enabled PII, content and model policies, in
//! the order they are written, to one request. Budgets and rate limits need shared state, so the gateway
//! enforces those itself (see [`PolicyConfig::cost_limit`] and [`PolicyConfig::rate_limit`]).

use std::fmt;

use serde::Serialize;

use crate::config::{Action, PolicyConfig, Rule};
use crate::glob::glob_match;
use crate::pii::{AnswerFilter, Redactor, Scanner, Span, raw_spans};

/// What the gateway knows about a request before forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// The requested model.
    pub model: &'a str,
    /// The message contents (system prompt, messages, …) as plain text.
    pub texts: Vec<&'a str>,
}

/// The outcome of a policy check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forward the request.
    Allow,
    /// Refuse the request.
    Block,
    /// Forward the request with sensitive values replaced by markers.
    Redact,
    /// Forward the request and record a warning.
    Warn,
    /// Hold the request for review.
    Escalate,
}

impl Verdict {
    /// The lowercase name (`"block"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Redact => "redact",
            Verdict::Warn => "warn",
            Verdict::Escalate => "escalate",
        }
    }

    /// Whether the request goes on to the provider (allow, warn and redact do).
    pub fn forwards(&self) -> bool {
        matches!(self, Verdict::Allow | Verdict::Warn | Verdict::Redact)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Action> for Verdict {
    fn from(a: Action) -> Verdict {
        match a {
            Action::Block => Verdict::Block,
            Action::Redact => Verdict::Redact,
            Action::Warn => Verdict::Warn,
            Action::Escalate => Verdict::Escalate,
        }
    }
}

/// A verdict with the policy and reason code behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// The deciding policy's name (`None` for a plain allow).
    pub policy: Option<String>,
    /// Reason code: `model_not_allowed`, `pii_detected:email` (the first value found, in text
    /// order), `content_matched:merger` (the first keyword, as written in the policy, or
    /// pattern name found, in text order), …
    pub reason: Option<String>,
    /// What the deciding policy found, sorted, names only (never values): the PII entity
    /// kinds of a `pii_detection` decision, the keywords and pattern names of a
    /// `content_filter` decision; empty for other decisions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
}

impl Decision {
    /// Allow, with no policy involved.
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            policy: None,
            reason: None,
            entities: Vec::new(),
        }
    }

    /// A decision by `policy` for `reason`.
    pub fn new(verdict: Verdict, policy: &str, reason: impl Into<String>) -> Decision {
        Decision {
            verdict,
            policy: Some(policy.to_owned()),
            reason: Some(reason.into()),
            entities: Vec::new(),
        }
    }

    /// The same decision, listing what was found (PII entity kinds, or content filter
    /// keywords and pattern names).
    pub fn with_entities(mut self, entities: Vec<String>) -> Decision {
        self.entities = entities;
        self
    }
}

/// Everything that policy evaluation found for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The final decision (what [`PolicyConfig::evaluate_request`] returns).
    pub decision: Decision,
    /// Every policy that triggered, in evaluation order (warnings included), up to and
    /// including the deciding one.
    pub triggered: Vec<Decision>,
    /// Every PII entity kind found by the `pii_detection` policies evaluated (names only),
    /// sorted. Content filter matches are not listed here (only on their decisions).
    pub entities: Vec<String>,
}

/// Whether `model` passes a model filter: denied patterns first, then allowed ones.
pub fn model_allowed(model: &str, allowed: &[String], denied: &[String]) -> bool {
    !denied.iter().any(|p| glob_match(p, model)) && allowed.iter().any(|p| glob_match(p, model))
}

impl PolicyConfig {
    /// Evaluates the enabled request-side policies in the order written and returns the
    /// decision: the first `block` or `escalate` stops evaluation and decides; otherwise the
    /// first `redact` decides (the gateway then redacts, see [`PolicyConfig::redactor`]);
    /// otherwise the first `warn` (warnings are recorded, the request goes on); otherwise
    /// allow. Disabled policies are skipped; `cost_limit` and `rate_limit` are skipped too
    /// (the gateway enforces them with shared state).
    pub fn evaluate_request(&self, req: &RequestFacts<'_>) -> Decision {
        self.evaluate(req).decision
    }

    /// Like [`PolicyConfig::evaluate_request`], also listing every policy that triggered
    /// (to record warnings next to the final decision) and every PII entity kind found.
    pub fn evaluate(&self, req: &RequestFacts<'_>) -> Evaluation {
        self.evaluate_skipping(req, &[])
    }

    /// Like [`PolicyConfig::evaluate`], treating the policies named in `skip` as disabled:
    /// when reviewers approved a request the policies held, the request passes those
    /// policies, and every other policy still applies. Names of no policy change nothing.
    pub fn evaluate_skipping(&self, req: &RequestFacts<'_>, skip: &[&str]) -> Evaluation {
        let applied = || {
            self.enabled_policies()
                .filter(move |p| !skip.contains(&p.name.as_str()))
        };
        let mut triggered: Vec<Decision> = Vec::new();
        let mut all_entities: Vec<String> = Vec::new();
        // One scan of each text serves every PII policy (their built-in entities combined).
        let mut raw: Option<Vec<Vec<Span>>> = None;
        for policy in applied() {
            let decision = match &policy.rule {
                Rule::PiiDetection {
                    action, scanner, ..
                } => {
                    let raw = raw.get_or_insert_with(|| {
                        let mask = applied().fold(0, |m, p| match &p.rule {
                            Rule::PiiDetection { scanner, .. } => m | scanner.mask(),
                            _ => m,
                        });
                        req.texts.iter().map(|t| raw_spans(t, mask)).collect()
                    });
                    let mut found: Vec<String> = Vec::new();
                    let mut first: Option<String> = None;
                    for (t, r) in req.texts.iter().zip(raw.iter()) {
                        let f = scanner.entity_names_from(t, r, &mut found);
                        if first.is_none() {
                            first = f;
                        }
                    }
                    first.map(|entity| {
                        found.sort();
                        for e in &found {
                            if !all_entities.contains(e) {
                                all_entities.push(e.clone());
                            }
                        }
                        Decision::new(
                            Verdict::from(*action),
                            &policy.name,
                            format!("pii_detected:{entity}"),
                        )
                        .with_entities(found)
                    })
                }
                // Keywords and pattern names are not PII entity kinds: they stay on the
                // decision and out of `all_entities`.
                Rule::ContentFilter {
                    action, matcher, ..
                } => matcher.find(&req.texts).map(|m| {
                    Decision::new(
                        Verdict::from(*action),
                        &policy.name,
                        format!("content_matched:{}", m.first),
                    )
                    .with_entities(m.names)
                }),
                Rule::ModelFilter {
                    allowed_models,
                    denied_models,
                } => (!model_allowed(req.model, allowed_models, denied_models))
                    .then(|| Decision::new(Verdict::Block, &policy.name, "model_not_allowed")),
                Rule::CostLimit { .. } | Rule::RateLimit { .. } => None,
            };
            if let Some(d) = decision {
                let stop = matches!(d.verdict, Verdict::Block | Verdict::Escalate);
                triggered.push(d);
                if stop {
                    break;
                }
            }
        }
        let pick = |v: Verdict| triggered.iter().find(|d| d.verdict == v).cloned();
        let decision = pick(Verdict::Block)
            .or_else(|| pick(Verdict::Escalate))
            .or_else(|| pick(Verdict::Redact))
            .or_else(|| pick(Verdict::Warn))
            .unwrap_or_else(Decision::allow);
        all_entities.sort();
        Evaluation {
            decision,
            triggered,
            entities: all_entities,
        }
    }

    /// The scanners of the enabled `pii_detection` policies that match `filter`.
    fn pii_scanners(&self, filter: impl Fn(Action, bool) -> bool) -> Vec<Scanner> {
        self.enabled_policies()
            .filter_map(|p| match &p.rule {
                Rule::PiiDetection {
                    action,
                    scan_responses,
                    scanner,
                    ..
                } if filter(*action, *scan_responses) => Some(scanner.clone()),
                _ => None,
            })
            .collect()
    }

    /// A redactor for one request's texts: the enabled `pii_detection` policies with
    /// `action: redact` (each with its own entities, custom patterns and allowlist), or `None`
    /// when there is no such policy. Use it with [`crate::redact_request`], then hand it to
    /// [`PolicyConfig::answer_filter`].
    pub fn redactor(&self) -> Option<Redactor> {
        let scanners = self.pii_scanners(|a, _| a == Action::Redact);
        (!scanners.is_empty()).then(|| Redactor::from_scanners(scanners))
    }

    /// Whether an enabled redacting `pii_detection` policy asks for `restore: true`.
    pub fn restores_redactions(&self) -> bool {
        self.enabled_policies().any(|p| {
            matches!(
                p.rule,
                Rule::PiiDetection {
                    action: Action::Redact,
                    restore: true,
                    ..
                }
            )
        })
    }

    /// Whether an enabled `pii_detection` policy asks for `scan_responses: true`.
    pub fn scans_responses(&self) -> bool {
        self.enabled_policies().any(|p| {
            matches!(
                p.rule,
                Rule::PiiDetection {
                    scan_responses: true,
                    ..
                }
            )
        })
    }

    /// A redactor for answers: the enabled `pii_detection` policies with
    /// `scan_responses: true` (whatever their `action`), or `None` when there is none.
    /// [`PolicyConfig::answer_filter`] wraps it with restoring and streaming.
    pub fn response_redactor(&self) -> Option<Redactor> {
        let scanners = self.pii_scanners(|_, scan| scan);
        (!scanners.is_empty()).then(|| Redactor::from_scanners(scanners))
    }

    /// What the gateway applies to an answer, given the request's redactor (after
    /// [`crate::redact_request`]): redaction of answers (`scan_responses`) and restoring of the
    /// request's values (`restore`). `None` when the answer passes unchanged.
    pub fn answer_filter(&self, request: Option<Redactor>) -> Option<AnswerFilter> {
        let restore = request.filter(|r| self.restores_redactions() && !r.is_empty());
        let scan = self.response_redactor();
        (scan.is_some() || restore.is_some()).then(|| AnswerFilter::new(scan, restore))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse;

    fn req<'a>(model: &'a str, texts: &[&'a str]) -> RequestFacts<'a> {
        RequestFacts {
            model,
            texts: texts.to_vec(),
        }
    }

    fn pii(verdict: Verdict, policy: &str, first: &str, entities: &[&str]) -> Decision {
        Decision::new(verdict, policy, format!("pii_detected:{first}"))
            .with_entities(entities.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn spec_example_decisions() {
        let cfg = parse(include_str!("../testdata/spec-example.yaml")).unwrap();
        assert_eq!(
            cfg.evaluate_request(&req("gpt-4o", &["hello there"])),
            Decision::allow()
        );
        assert_eq!(
            cfg.evaluate_request(&req("gpt-4o", &["hi", "mail me at a@b.io"])),
            pii(Verdict::Block, "pii-protection", "email", &["email"])
        );
        assert_eq!(
            cfg.evaluate_request(&req("gpt-3.5-turbo", &["hello"])),
            Decision::new(Verdict::Block, "model-allowlist", "model_not_allowed")
        );
        assert_eq!(
            cfg.evaluate_request(&req("claude-sonnet-4-20250514", &["ok"]))
                .verdict,
            Verdict::Allow
        );
        // PII is checked first (evaluation order as written).
        let e = cfg.evaluate(&req("gpt-3.5-turbo", &["ssn 123-45-6789, mail a@b.io"]));
        assert_eq!(
            e.decision,
            pii(Verdict::Block, "pii-protection", "ssn", &["email", "ssn"])
        );
        assert_eq!(e.triggered.len(), 1);
        assert_eq!(e.entities, ["email", "ssn"]);
    }

    #[test]
    fn each_entity_blocks_with_its_reason() {
        let cfg = parse("policies:\n  - {name: pii, type: pii_detection}\n").unwrap();
        for (text, entity) in [
            ("reach me at jane@example.org", "email"),
            ("call +1 415 555 0132", "phone"),
            ("card 4111 1111 1111 1111", "credit_card"),
            ("ssn 123-45-6789", "ssn"),
            ("iban DE89 3704 0044 0532 0130 00", "iban"),
            ("server 10.1.2.3", "ip_address"),
            ("server 2001:db8::1", "ip_address"),
            ("key sk-abcdefghijklmnopqrstuvwxyz123456", "api_key"),
            (
                "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----",
                "private_key",
            ),
            (
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
                "jwt",
            ),
        ] {
            assert_eq!(
                cfg.evaluate_request(&req("gpt-4o", &[text])),
                pii(Verdict::Block, "pii", entity, &[entity]),
                "{text}"
            );
        }
        for text in ["version 1.2.3", "order 12345", "see page 42 of RFC 7231"] {
            assert_eq!(
                cfg.evaluate_request(&req("gpt-4o", &[text])),
                Decision::allow()
            );
        }
    }

    #[test]
    fn warn_continues_and_block_wins() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: pii-warn, type: pii_detection, action: warn}\n\
             \x20 - {name: models, type: model_filter, allowed_models: [\"gpt-*\"], denied_models: [gpt-4o-mini]}\n",
        )
        .unwrap();
        let e = cfg.evaluate(&req("gpt-4o", &["ssn 123-45-6789"]));
        assert_eq!(e.decision, pii(Verdict::Warn, "pii-warn", "ssn", &["ssn"]));
        let e = cfg.evaluate(&req("gpt-4o-mini", &["ssn 123-45-6789"]));
        assert_eq!(e.decision.verdict, Verdict::Block);
        assert_eq!(e.decision.reason.as_deref(), Some("model_not_allowed"));
        assert!(e.decision.entities.is_empty());
        assert_eq!(e.triggered.len(), 2);
        assert_eq!(e.entities, ["ssn"]);
        assert!(cfg.evaluate_request(&req("gpt-4.1", &["fine"])).verdict == Verdict::Allow);
    }

    #[test]
    fn first_block_or_escalate_stops_evaluation() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: keys, type: pii_detection, action: escalate, entities: [api_key]}\n\
             \x20 - {name: all, type: pii_detection, action: block}\n",
        )
        .unwrap();
        let e = cfg.evaluate(&req("m", &["AKIAIOSFODNN7EXAMPLE and a@b.io"]));
        assert_eq!(
            e.decision,
            pii(Verdict::Escalate, "keys", "api_key", &["api_key"])
        );
        assert_eq!(e.triggered.len(), 1);
        assert_eq!(
            cfg.evaluate_request(&req("m", &["a@b.io"])),
            pii(Verdict::Block, "all", "email", &["email"])
        );
    }

    #[test]
    fn redact_and_escalate() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: hide, type: pii_detection, action: redact, entities: [email], restore: true}\n\
             \x20 - {name: keys, type: pii_detection, action: escalate, entities: [api_key]}\n",
        )
        .unwrap();
        assert_eq!(
            cfg.evaluate_request(&req("m", &["a@b.io"])),
            pii(Verdict::Redact, "hide", "email", &["email"])
        );
        assert_eq!(
            cfg.evaluate_request(&req("m", &["a@b.io AKIAIOSFODNN7EXAMPLE"]))
                .verdict,
            Verdict::Escalate
        );
        assert!(cfg.restores_redactions());
        assert!(!cfg.scans_responses());
        let mut r = cfg.redactor().unwrap();
        assert_eq!(r.redact("a@b.io 123-45-6789"), "[EMAIL_1] 123-45-6789");
    }

    #[test]
    fn custom_patterns_and_allowlist_regex() {
        let cfg = parse(
            "policies:\n\
             \x20 - name: hr\n\
             \x20   type: pii_detection\n\
             \x20   action: redact\n\
             \x20   entities: [email]\n\
             \x20   allowlist: [\"regex:.*@example\\\\.com\"]\n\
             \x20   custom_patterns:\n\
             \x20     - {name: employee_id, pattern: 'EMP-[0-9]{6}'}\n",
        )
        .unwrap();
        let e = cfg.evaluate(&req("m", &["EMP-123456 and bob@corp.io, ann@example.com"]));
        assert_eq!(
            e.decision,
            pii(
                Verdict::Redact,
                "hr",
                "employee_id",
                &["email", "employee_id"]
            )
        );
        let mut r = cfg.redactor().unwrap();
        assert_eq!(
            r.redact("EMP-123456 and bob@corp.io, ann@example.com"),
            "[EMPLOYEE_ID_1] and [EMAIL_1], ann@example.com"
        );
        assert_eq!(r.entities(), ["employee_id", "email"]);
    }

    #[test]
    fn redactors_keep_each_policy_settings() {
        // Two redacting policies: each allowlist applies to its own policy only.
        let cfg = parse(
            "policies:\n\
             \x20 - {name: mails, type: pii_detection, action: redact, entities: [email], allowlist: [\"*@corp.io\"]}\n\
             \x20 - {name: all, type: pii_detection, action: redact}\n",
        )
        .unwrap();
        let mut r = cfg.redactor().unwrap();
        assert_eq!(r.redact("bob@corp.io 10.0.0.1"), "[EMAIL_1] [IP_ADDRESS_1]");
    }

    #[test]
    fn answers_are_scanned_and_restored() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: hide, type: pii_detection, action: redact, restore: true, scan_responses: true}\n",
        )
        .unwrap();
        assert!(cfg.scans_responses());
        let mut body =
            serde_json::json!({"messages": [{"role": "user", "content": "I am jo@ex.com"}]});
        let mut r = cfg.redactor().unwrap();
        crate::redact_request(&mut body, &mut r);
        assert_eq!(body["messages"][0]["content"], "I am [EMAIL_1]");
        let mut f = cfg.answer_filter(Some(r)).unwrap();
        assert!(f.redacts() && f.restores());
        assert_eq!(
            f.filter("Hi [EMAIL_1], write to help@corp.io"),
            "Hi jo@ex.com, write to [EMAIL_2]"
        );
        // Nothing to do: no filter.
        let spec = parse(include_str!("../testdata/spec-example.yaml")).unwrap();
        assert!(spec.answer_filter(None).is_none());
        assert!(spec.response_redactor().is_none());
        // Scanning answers without redacting requests (a blocking policy).
        let cfg = parse(
            "policies:\n  - {name: p, type: pii_detection, action: block, scan_responses: true}\n",
        )
        .unwrap();
        let mut f = cfg.answer_filter(cfg.redactor()).unwrap();
        assert!(!f.restores());
        assert_eq!(f.filter("ip 10.0.0.1"), "ip [IP_ADDRESS_1]");
    }

    #[test]
    fn disabled_policies_are_skipped() {
        let cfg = parse(
            "policies:\n  - {name: p, type: pii_detection, enabled: false}\n  - {name: c, type: cost_limit, monthly_limit: 1.5, action: warn}\n",
        )
        .unwrap();
        assert_eq!(
            cfg.evaluate_request(&req("m", &["a@b.io"])),
            Decision::allow()
        );
        assert_eq!(cfg.cost_limit(), Some((1.5, "c", Action::Warn)));
        assert_eq!(cfg.rate_limit(), None);
        assert!(cfg.redactor().is_none());
    }

    fn content(verdict: Verdict, policy: &str, first: &str, names: &[&str]) -> Decision {
        Decision::new(verdict, policy, format!("content_matched:{first}"))
            .with_entities(names.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn content_filter_keywords_are_whole_words_ignoring_case() {
        let cfg = parse(
            "policies:\n  - {name: deals, type: content_filter, keywords: [merge, merger agreement]}\n",
        )
        .unwrap();
        assert_eq!(
            cfg.evaluate_request(&req("m", &["Please MERGE these"])),
            content(Verdict::Escalate, "deals", "merge", &["merge"])
        );
        assert_eq!(
            cfg.evaluate_request(&req("m", &["hi", "the Merger\n  Agreement, and merge it"])),
            content(
                Verdict::Escalate,
                "deals",
                "merger agreement",
                &["merge", "merger agreement"]
            )
        );
        for text in [
            "an emergency",
            "merged",
            "mergers",
            "remerge",
            "merger agreements",
        ] {
            assert_eq!(
                cfg.evaluate_request(&req("m", &[text])),
                Decision::allow(),
                "{text}"
            );
        }
        let cfg = parse("policies:\n  - {name: deals, type: content_filter, keywords: [merger]}\n")
            .unwrap();
        assert_eq!(
            cfg.evaluate_request(&req("m", &["The Merger is secret."])),
            content(Verdict::Escalate, "deals", "merger", &["merger"])
        );
    }

    #[test]
    fn content_filter_patterns_and_actions() {
        let cfg = parse(
            "policies:\n\
             \x20 - name: codes\n\
             \x20   type: content_filter\n\
             \x20   action: warn\n\
             \x20   patterns:\n\
             \x20     - {name: project_code, pattern: 'PRJ-[0-9]{4}'}\n\
             \x20     - {name: ticket, pattern: 'T-[0-9]+'}\n\
             \x20 - {name: words, type: content_filter, action: block, keywords: [layoffs]}\n",
        )
        .unwrap();
        let e = cfg.evaluate(&req("m", &["see T-12 and PRJ-0042"]));
        assert_eq!(
            e.decision,
            content(
                Verdict::Warn,
                "codes",
                "ticket",
                &["project_code", "ticket"]
            )
        );
        assert!(e.decision.verdict.forwards());
        assert!(e.entities.is_empty());
        // A warning goes on to the next policy; a block decides.
        let e = cfg.evaluate(&req("m", &["PRJ-0042: Layoffs"]));
        assert_eq!(
            e.decision,
            content(Verdict::Block, "words", "layoffs", &["layoffs"])
        );
        assert_eq!(
            e.triggered,
            [
                content(Verdict::Warn, "codes", "project_code", &["project_code"]),
                content(Verdict::Block, "words", "layoffs", &["layoffs"]),
            ]
        );
        assert_eq!(
            cfg.evaluate_request(&req("m", &["PRJ-42 and T-"])),
            Decision::allow()
        );
    }

    #[test]
    fn content_filter_names_stay_out_of_pii_entities() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: pii, type: pii_detection, action: warn}\n\
             \x20 - {name: deals, type: content_filter, keywords: [merger], patterns: [{name: code, pattern: 'PRJ-[0-9]+'}]}\n",
        )
        .unwrap();
        let e = cfg.evaluate(&req("m", &["merger PRJ-7, mail a@b.io"]));
        assert_eq!(
            e.decision,
            content(Verdict::Escalate, "deals", "merger", &["code", "merger"])
        );
        assert_eq!(e.triggered.len(), 2);
        assert_eq!(
            e.triggered[0],
            pii(Verdict::Warn, "pii", "email", &["email"])
        );
        assert_eq!(e.entities, ["email"]);
        let e = cfg.evaluate(&req("m", &["PRJ-7 only"]));
        assert_eq!(e.decision.entities, ["code"]);
        assert!(e.entities.is_empty());
        let json = serde_json::to_value(&e.decision).unwrap();
        assert_eq!(json["reason"], "content_matched:code");
    }

    #[test]
    fn content_filter_escalation_stops_evaluation() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: deals, type: content_filter, keywords: [merger]}\n\
             \x20 - {name: pii, type: pii_detection}\n\
             \x20 - {name: models, type: model_filter, allowed_models: [gpt-4o]}\n",
        )
        .unwrap();
        let e = cfg.evaluate(&req("gpt-3.5-turbo", &["merger with a@b.io"]));
        assert_eq!(
            e.decision,
            content(Verdict::Escalate, "deals", "merger", &["merger"])
        );
        assert_eq!(e.triggered.len(), 1);
        // Nothing after the escalating policy ran: no PII entity was looked for.
        assert!(e.entities.is_empty());
        assert_eq!(
            cfg.evaluate_request(&req("gpt-3.5-turbo", &["hello"]))
                .reason
                .as_deref(),
            Some("model_not_allowed")
        );
    }

    #[test]
    fn evaluate_skipping_passes_exactly_the_named_policy() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: deals, type: content_filter, keywords: [merger]}\n\
             \x20 - {name: deals-too, type: content_filter, action: warn, keywords: [merger]}\n\
             \x20 - {name: keys, type: pii_detection, action: escalate, entities: [api_key]}\n\
             \x20 - {name: models, type: model_filter, allowed_models: [gpt-4o]}\n",
        )
        .unwrap();
        let held = req("gpt-4o", &["the merger"]);
        assert_eq!(cfg.evaluate(&held).decision.verdict, Verdict::Escalate);
        // Approved: that policy passes, the others still apply (here a warning).
        let e = cfg.evaluate_skipping(&held, &["deals"]);
        assert_eq!(
            e.decision,
            content(Verdict::Warn, "deals-too", "merger", &["merger"])
        );
        assert_eq!(e.triggered.len(), 1);
        // A later model filter still blocks.
        let e = cfg.evaluate_skipping(&req("gpt-3.5-turbo", &["the merger"]), &["deals"]);
        assert_eq!(
            e.decision,
            Decision::new(Verdict::Block, "models", "model_not_allowed")
        );
        assert_eq!(e.triggered.len(), 2);
        // A later escalation still holds the request.
        let e = cfg.evaluate_skipping(&req("gpt-4o", &["merger AKIAIOSFODNN7EXAMPLE"]), &["deals"]);
        assert_eq!(
            e.decision,
            pii(Verdict::Escalate, "keys", "api_key", &["api_key"])
        );
        assert_eq!(e.entities, ["api_key"]);
        // Both approved: both pass, the warning remains.
        let e = cfg.evaluate_skipping(
            &req("gpt-4o", &["merger AKIAIOSFODNN7EXAMPLE"]),
            &["deals", "keys"],
        );
        assert_eq!(e.decision.verdict, Verdict::Warn);
        assert_eq!(e.decision.policy.as_deref(), Some("deals-too"));
        // Skipping a PII policy; an unknown name changes nothing.
        let e = cfg.evaluate_skipping(&req("gpt-4o", &["AKIAIOSFODNN7EXAMPLE"]), &["keys"]);
        assert_eq!(e.decision, Decision::allow());
        assert!(e.entities.is_empty());
        for r in [&held, &req("gpt-3.5-turbo", &["AKIAIOSFODNN7EXAMPLE"])] {
            assert_eq!(cfg.evaluate_skipping(r, &["nope"]), cfg.evaluate(r));
        }
    }

    #[test]
    fn reviewers_see_prompt_is_per_policy() {
        let cfg = parse(
            "policies:\n\
             \x20 - {name: deals, type: content_filter, keywords: [merger], reviewers_see_prompt: true}\n\
             \x20 - {name: codes, type: content_filter, keywords: [x]}\n\
             \x20 - {name: keys, type: pii_detection, action: escalate, reviewers_see_prompt: true, enabled: false}\n\
             \x20 - {name: pii, type: pii_detection}\n\
             \x20 - {name: models, type: model_filter, allowed_models: [gpt-4o]}\n",
        )
        .unwrap();
        let see: Vec<(&str, bool)> = cfg
            .policies
            .iter()
            .map(|p| (p.name.as_str(), p.reviewers_see_prompt()))
            .collect();
        assert_eq!(
            see,
            [
                ("deals", true),
                ("codes", false),
                ("keys", true),
                ("pii", false),
                ("models", false)
            ]
        );
        let d = cfg.evaluate_request(&req("gpt-4o", &["merger"]));
        let policy = cfg.policy(d.policy.as_deref().unwrap()).unwrap();
        assert!(policy.reviewers_see_prompt());
        assert_eq!(policy.rule.type_name(), "content_filter");
        assert_eq!(policy.rule.action(), Action::Escalate);
    }

    #[test]
    fn serializes_lowercase() {
        let d = Decision::new(Verdict::Block, "p", "model_not_allowed");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"verdict":"block","policy":"p","reason":"model_not_allowed"}"#
        );
        let d = d.with_entities(vec!["email".into()]);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"verdict":"block","policy":"p","reason":"model_not_allowed","entities":["email"]}"#
        );
        assert_eq!(Verdict::Escalate.to_string(), "escalate");
        assert_eq!(Action::Redact.to_string(), "redact");
    }
}
