//! Request-side policy evaluation.
//!
//! [`PolicyConfig::evaluate_request`] applies the enabled PII and model policies, in the order
//! they are written, to one request. Budgets and rate limits need shared state, so the gateway
//! enforces those itself (see [`PolicyConfig::cost_limit`] and [`PolicyConfig::rate_limit`]).

use std::fmt;

use serde::Serialize;

use crate::config::{Action, PiiEntity, PolicyConfig, Rule};
use crate::glob::glob_match;
use crate::pii::{Redactor, detect};

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
    /// Reason code: `model_not_allowed`, `pii_detected:email`, …
    pub reason: Option<String>,
}

impl Decision {
    /// Allow, with no policy involved.
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            policy: None,
            reason: None,
        }
    }

    /// A decision by `policy` for `reason`.
    pub fn new(verdict: Verdict, policy: &str, reason: impl Into<String>) -> Decision {
        Decision {
            verdict,
            policy: Some(policy.to_owned()),
            reason: Some(reason.into()),
        }
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
}

/// Whether `model` passes a model filter: denied patterns first, then allowed ones.
pub fn model_allowed(model: &str, allowed: &[String], denied: &[String]) -> bool {
    !denied.iter().any(|p| glob_match(p, model)) && allowed.iter().any(|p| glob_match(p, model))
}

impl PolicyConfig {
    /// Evaluates the enabled request-side policies in the order written and returns the
    /// decision: the first `block` or `escalate` stops evaluation and decides; otherwise the
    /// first `redact` decides (the gateway then redacts, see [`PolicyConfig::redactor`]);
    /// otherwise the first `warn`; otherwise allow. `cost_limit` and `rate_limit` are skipped
    /// (the gateway enforces them with shared state).
    pub fn evaluate_request(&self, req: &RequestFacts<'_>) -> Decision {
        self.evaluate(req).decision
    }

    /// Like [`PolicyConfig::evaluate_request`], also listing every policy that triggered
    /// (to record warnings next to the final decision).
    pub fn evaluate(&self, req: &RequestFacts<'_>) -> Evaluation {
        let mut triggered: Vec<Decision> = Vec::new();
        for policy in self.enabled_policies() {
            let decision = match &policy.rule {
                Rule::PiiDetection {
                    action,
                    entities,
                    allowlist,
                    ..
                } => req
                    .texts
                    .iter()
                    .find_map(|t| detect(t, entities, allowlist).into_iter().next())
                    .map(|f| {
                        Decision::new(
                            Verdict::from(*action),
                            &policy.name,
                            format!("pii_detected:{}", f.entity),
                        )
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
        Evaluation {
            decision,
            triggered,
        }
    }

    /// A redactor for the enabled `pii_detection` policies with `action: redact` (their
    /// entities and allowlists combined), or `None` when there is no such policy.
    pub fn redactor(&self) -> Option<Redactor> {
        let mut any = false;
        let mut all_entities = false;
        let mut entities: Vec<PiiEntity> = Vec::new();
        let mut allow: Vec<String> = Vec::new();
        for p in self.enabled_policies() {
            if let Rule::PiiDetection {
                action: Action::Redact,
                entities: e,
                allowlist,
                ..
            } = &p.rule
            {
                any = true;
                all_entities |= e.is_empty();
                entities.extend(e.iter().copied());
                allow.extend(allowlist.iter().cloned());
            }
        }
        if !any {
            return None;
        }
        if all_entities {
            entities.clear();
        }
        entities.sort();
        entities.dedup();
        Some(Redactor::new(&entities, &allow))
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

    #[test]
    fn spec_example_decisions() {
        let cfg = parse(include_str!("../testdata/spec-example.yaml")).unwrap();
        assert_eq!(
            cfg.evaluate_request(&req("gpt-4o", &["hello there"])),
            Decision::allow()
        );
        assert_eq!(
            cfg.evaluate_request(&req("gpt-4o", &["hi", "mail me at a@b.io"])),
            Decision::new(Verdict::Block, "pii-protection", "pii_detected:email")
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
    }

    #[test]
    fn each_entity_blocks_with_its_reason() {
        let cfg = parse("policies:\n  - {name: pii, type: pii_detection}\n").unwrap();
        for (text, entity) in [
            ("reach me at jane@example.org", "email"),
            ("call +1 415 555 0132", "phone"),
            ("card 4111 1111 1111 1111", "credit_card"),
            ("ssn 123-45-6789", "ssn"),
            ("server 10.1.2.3", "ip_address"),
            ("key sk-abcdefghijklmnopqrstuvwxyz123456", "api_key"),
        ] {
            assert_eq!(
                cfg.evaluate_request(&req("gpt-4o", &[text])),
                Decision::new(Verdict::Block, "pii", format!("pii_detected:{entity}")),
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
        assert_eq!(
            e.decision,
            Decision::new(Verdict::Warn, "pii-warn", "pii_detected:ssn")
        );
        let e = cfg.evaluate(&req("gpt-4o-mini", &["ssn 123-45-6789"]));
        assert_eq!(e.decision.verdict, Verdict::Block);
        assert_eq!(e.decision.reason.as_deref(), Some("model_not_allowed"));
        assert_eq!(e.triggered.len(), 2);
        assert!(cfg.evaluate_request(&req("gpt-4.1", &["fine"])).verdict == Verdict::Allow);
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
            Decision::new(Verdict::Redact, "hide", "pii_detected:email")
        );
        assert_eq!(
            cfg.evaluate_request(&req("m", &["a@b.io AKIAIOSFODNN7EXAMPLE"]))
                .verdict,
            Verdict::Escalate
        );
        assert!(cfg.restores_redactions());
        let mut r = cfg.redactor().unwrap();
        assert_eq!(r.redact("a@b.io 123-45-6789"), "[EMAIL_1] 123-45-6789");
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

    #[test]
    fn serializes_lowercase() {
        let d = Decision::new(Verdict::Block, "p", "model_not_allowed");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"verdict":"block","policy":"p","reason":"model_not_allowed"}"#
        );
        assert_eq!(Verdict::Escalate.to_string(), "escalate");
        assert_eq!(Action::Redact.to_string(), "redact");
    }
}
