//! The policy configuration model: what a validated policy file means.
//!
//! Values of these types only come out of [`crate::parse`], which guarantees the invariants
//! documented on each field (positive limits, known entity names, unique names and ids, …).

use std::fmt;

use serde::Serialize;

use crate::content::ContentMatcher;
pub use crate::pii::PiiEntity;
use crate::pii::{CustomPattern, Scanner};

/// A tenant's validated policy configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyConfig {
    /// The policies, in the order written (evaluation order).
    pub policies: Vec<Policy>,
    /// Where requests go.
    pub providers: Providers,
}

/// One named policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Unique name within the file; reported in decisions and events.
    pub name: String,
    /// Disabled policies are validated but never applied.
    pub enabled: bool,
    /// What the policy checks and what it does.
    #[serde(flatten)]
    pub rule: Rule,
}

/// What a policy does when it triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Refuse the request.
    Block,
    /// Replace the sensitive values by typed markers before the provider sees them.
    Redact,
    /// Let the request through and record a warning.
    Warn,
    /// Hold the request for a human to review.
    Escalate,
}

impl Action {
    /// The lowercase name used in policy files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Warn => "warn",
            Action::Escalate => "escalate",
        }
    }

    /// Parses the lowercase name.
    pub fn from_name(name: &str) -> Option<Action> {
        match name {
            "block" => Some(Action::Block),
            "redact" => Some(Action::Redact),
            "warn" => Some(Action::Warn),
            "escalate" => Some(Action::Escalate),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The check a policy performs (its `type` and type-specific fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// `type: pii_detection`: look for personal data and secrets in the request (and, with
    /// `scan_responses`, in the answer).
    PiiDetection {
        /// `action`, default `block`.
        action: Action,
        /// `entities` to look for; empty means every built-in entity.
        entities: Vec<PiiEntity>,
        /// `allowlist`: matched values to ignore: exact values, `*` globs, or
        /// `regex:<pattern>` (the whole value must match).
        allowlist: Vec<String>,
        /// `custom_patterns`: the policy's own entities (always looked for, in addition to
        /// `entities`).
        custom_patterns: Vec<CustomPattern>,
        /// `restore` (only with `action: redact`): put the original values back into the
        /// answer wherever the model repeated a marker.
        restore: bool,
        /// `scan_responses` (default `false`): also redact the values found in answers
        /// (streamed answers included), whatever the `action` on requests.
        scan_responses: bool,
        /// `reviewers_see_prompt` (default `false`; only with `action: escalate`): see
        /// [`Policy::reviewers_see_prompt`].
        reviewers_see_prompt: bool,
        /// The compiled detector for this policy (entities, custom patterns, allowlist).
        #[serde(skip)]
        scanner: Scanner,
    },
    /// `type: content_filter`: content that always gets human review. Matches `keywords`
    /// (ignoring case, as whole words or phrases; the words of a phrase match across any run
    /// of whitespace) and `patterns` (named regular expressions) in the request. At least one
    /// of the two lists is non-empty.
    ContentFilter {
        /// `keywords`, trimmed, in the order written; each non-blank.
        keywords: Vec<String>,
        /// `patterns`: `{name, pattern}` entries, validated like `pii_detection`'s
        /// `custom_patterns`.
        patterns: Vec<CustomPattern>,
        /// `action`: `escalate` (the default for this type), `block` or `warn`.
        action: Action,
        /// `reviewers_see_prompt` (default `false`; only with `action: escalate`): see
        /// [`Policy::reviewers_see_prompt`].
        reviewers_see_prompt: bool,
        /// The compiled keywords and patterns.
        #[serde(skip)]
        matcher: ContentMatcher,
    },
    /// `type: cost_limit`: a monthly budget, enforced by the gateway.
    CostLimit {
        /// `monthly_limit` in USD per calendar month (UTC); finite and > 0.
        monthly_limit_usd: f64,
        /// `action`: `block` (default) or `warn`.
        action: Action,
    },
    /// `type: model_filter`: which models the tenant may use. Always blocks.
    ModelFilter {
        /// `allowed_models`: exact names or `*` globs; never empty.
        allowed_models: Vec<String>,
        /// `denied_models`: exact names or `*` globs, checked before `allowed_models`.
        denied_models: Vec<String>,
    },
    /// `type: rate_limit`: requests (and optionally tokens) per minute, enforced by the gateway.
    RateLimit {
        /// `max_requests_per_minute`, > 0.
        max_requests_per_minute: u32,
        /// `max_tokens_per_minute`, > 0 when given.
        max_tokens_per_minute: Option<u32>,
        /// `action`: `block` (default) or `warn`.
        action: Action,
    },
}

impl Rule {
    /// The `type` name used in policy files.
    pub fn type_name(&self) -> &'static str {
        match self {
            Rule::PiiDetection { .. } => "pii_detection",
            Rule::CostLimit { .. } => "cost_limit",
            Rule::ModelFilter { .. } => "model_filter",
            Rule::RateLimit { .. } => "rate_limit",
            Rule::ContentFilter { .. } => "content_filter",
        }
    }

    /// The action taken when the rule triggers (`block` for a model filter).
    pub fn action(&self) -> Action {
        match self {
            Rule::PiiDetection { action, .. }
            | Rule::CostLimit { action, .. }
            | Rule::RateLimit { action, .. }
            | Rule::ContentFilter { action, .. } => *action,
            Rule::ModelFilter { .. } => Action::Block,
        }
    }
}

impl Policy {
    /// Whether reviewers of this policy's escalations may read the prompt
    /// (`reviewers_see_prompt: true`, accepted by `pii_detection` and `content_filter` policies
    /// with `action: escalate` only). Reported whether the policy is enabled or not.
    ///
    /// By default a reviewer sees the request's metadata and the matched entity types only
    /// (the decision's reason and entities: PII entity kinds, or the keywords and pattern
    /// names of a content filter), never the prompt text. With this set, the gateway stores
    /// the prompt text encrypted for the reviewers when it holds the request, and deletes it
    /// once the escalation is resolved.
    pub fn reviewers_see_prompt(&self) -> bool {
        match self.rule {
            Rule::PiiDetection {
                reviewers_see_prompt,
                ..
            }
            | Rule::ContentFilter {
                reviewers_see_prompt,
                ..
            } => reviewers_see_prompt,
            Rule::CostLimit { .. } | Rule::ModelFilter { .. } | Rule::RateLimit { .. } => false,
        }
    }
}

/// The `providers` section.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Providers {
    /// Upstream targets, in the order written.
    pub targets: Vec<Target>,
}

/// One upstream target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Unique id within the file.
    pub id: String,
    /// Which API the target speaks (from `provider.kind`, else from the id).
    pub kind: ProviderKind,
    /// `provider.base_url`: overrides the vendor URL; an `http(s)://host…` URL.
    pub base_url: Option<String>,
    /// `provider.models`: the models this target serves (exact or `*` globs). When non-empty,
    /// the target serves exactly these and takes no part in default routing.
    pub models: Vec<String>,
    /// `provider.secret_key_ref`: where the upstream API key comes from.
    pub secret_key_ref: Option<SecretKeyRef>,
    /// `fallbacks` (a sibling of `provider`; empty when absent): ids of other targets in the
    /// same file, in order. When this target's upstream answers with a 5xx status, times out
    /// or cannot be reached, the gateway retries the same request on each listed target in
    /// turn, but only before any byte of the answer has reached the caller. Each id names
    /// another target of the file, at most once and never this target itself; cycles between
    /// targets are allowed, since each target is tried at most once per request (see
    /// [`PolicyConfig::route_with_fallbacks`]).
    pub fallbacks: Vec<String>,
}

/// The API a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI (or an OpenAI-compatible server via `base_url`).
    OpenAi,
    /// Anthropic.
    Anthropic,
    /// The built-in stand-in that answers locally, for trying kt without vendor keys.
    Demo,
}

impl ProviderKind {
    /// All kinds, in the order they are listed in help texts.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Demo,
    ];

    /// `"openai"`, `"anthropic"` or `"demo"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Demo => "demo",
        }
    }

    /// Parses `"openai"`, `"anthropic"` or `"demo"`.
    pub fn from_name(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a target's upstream API key comes from. Keys themselves never appear in configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKeyRef {
    /// `env: NAME`: an environment variable of the gateway process.
    Env(String),
    /// `secret: NAME`: a secret stored (encrypted) in the console.
    Secret(String),
}

impl PolicyConfig {
    /// The enabled policies, in evaluation order.
    pub fn enabled_policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter().filter(|p| p.enabled)
    }

    /// The policy called `name`, enabled or not.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The first enabled `cost_limit`: (monthly limit in USD, policy name, action).
    pub fn cost_limit(&self) -> Option<(f64, &str, Action)> {
        self.enabled_policies().find_map(|p| match p.rule {
            Rule::CostLimit {
                monthly_limit_usd,
                action,
            } => Some((monthly_limit_usd, p.name.as_str(), action)),
            _ => None,
        })
    }

    /// The monthly limit of [`Self::cost_limit`] in micro-USD.
    pub fn cost_limit_micros(&self) -> Option<i64> {
        // Limits are validated as finite and non-negative; the cast saturates.
        self.cost_limit()
            .map(|(usd, _, _)| (usd * 1_000_000.0).round() as i64)
    }

    /// The first enabled `rate_limit`: (requests per minute, tokens per minute, policy name,
    /// action).
    pub fn rate_limit(&self) -> Option<(u32, Option<u32>, &str, Action)> {
        self.enabled_policies().find_map(|p| match p.rule {
            Rule::RateLimit {
                max_requests_per_minute,
                max_tokens_per_minute,
                action,
            } => Some((
                max_requests_per_minute,
                max_tokens_per_minute,
                p.name.as_str(),
                action,
            )),
            _ => None,
        })
    }

    /// The target with this id.
    pub fn target(&self, id: &str) -> Option<&Target> {
        self.providers.targets.iter().find(|t| t.id == id)
    }
}
