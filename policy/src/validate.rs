//! Validation of the node tree into a [`PolicyConfig`].
//!
//! Validation never stops at the first problem: every check records a [`Diagnostic`] and
//! carries on with what it can still understand, so one lint run shows everything that is
//! wrong. Diagnostics point at the offending key (unknown or duplicate fields), the offending
//! value (wrong type, unknown name, out of range), or the mapping that lacks a required field.
//!
//! Besides errors, validation emits warnings (the file works, but probably not as meant):
//! disabled policies, allowed models no target serves, models without a known price. It also
//! collects the environment variables named by `secret_key_ref.env`, so that the CLI (which,
//! unlike this crate, may look at the environment) can warn about unset ones.

use std::collections::HashMap;

use crate::config::{
    Action, PiiEntity, Policy, PolicyConfig, ProviderKind, Providers, Rule, SecretKeyRef, Target,
};
use crate::content::ContentMatcher;
use crate::diagnostic::{Diagnostic, Severity, closest, did_you_mean_one_of, one_of};
use crate::lint::EnvRef;
use crate::pii::{CustomPattern, Scanner, check_allow_entry};
use crate::pricing::known_price;
use crate::route::{is_anthropic_model, route_in};
use crate::yaml::{Node, NodeKind, Pos, Scalar, Style, quote_short};

const ROOT_KEYS: &[&str] = &["policies", "providers"];
const POLICY_TYPES: &[&str] = &[
    "pii_detection",
    "cost_limit",
    "model_filter",
    "rate_limit",
    "content_filter",
];
const COMMON_POLICY_KEYS: &[&str] = &["name", "type", "enabled", "action"];
const ALL_ACTIONS: &[&str] = &["block", "redact", "warn", "escalate"];
const PROVIDERS_KEYS: &[&str] = &["targets"];
const TARGET_KEYS: &[&str] = &["id", "provider", "fallbacks"];
const PROVIDER_KEYS: &[&str] = &["kind", "base_url", "models", "secret_key_ref"];
const SECRET_REF_KEYS: &[&str] = &["env", "secret"];
const KINDS: &[&str] = &["openai", "anthropic", "demo"];
const CUSTOM_PATTERN_KEYS: &[&str] = &["name", "pattern"];
/// Longest custom entity name.
const MAX_CUSTOM_NAME: usize = 32;

/// The fields specific to one policy type.
fn type_keys(ty: &str) -> &'static [&'static str] {
    match ty {
        "pii_detection" => &[
            "entities",
            "allowlist",
            "custom_patterns",
            "restore",
            "scan_responses",
            "reviewers_see_prompt",
        ],
        "cost_limit" => &["monthly_limit"],
        "model_filter" => &["allowed_models", "denied_models"],
        "rate_limit" => &["max_requests_per_minute", "max_tokens_per_minute"],
        "content_filter" => &["keywords", "patterns", "reviewers_see_prompt"],
        _ => &[],
    }
}

/// The actions a policy type accepts (the default first when it is not `block`).
fn type_actions(ty: &str) -> &'static [&'static str] {
    match ty {
        "pii_detection" => ALL_ACTIONS,
        "model_filter" => &["block"],
        "content_filter" => &["escalate", "block", "warn"],
        _ => &["block", "warn"],
    }
}

/// The action of a policy without `action`.
fn default_action(ty: Option<&str>) -> Action {
    match ty {
        Some("content_filter") => Action::Escalate,
        _ => Action::Block,
    }
}

/// The policy types that accept field `key`.
fn key_owners(key: &str) -> Vec<&'static str> {
    POLICY_TYPES
        .iter()
        .copied()
        .filter(|t| type_keys(t).contains(&key))
        .collect()
}

/// `a`, `a` and `b`, `a`, `b` and `c` (each in backquotes).
fn and_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// A field of policy type `ty` that `key` (a field of another type) was probably meant to be:
/// a typo away, or one name containing the other (`custom_patterns` / `patterns`).
fn similar_type_key(key: &str, ty: &str) -> Option<&'static str> {
    let keys = type_keys(ty);
    closest(key, keys).or_else(|| {
        keys.iter()
            .copied()
            .find(|k| k.len() >= 5 && key.len() >= 5 && (key.contains(k) || k.contains(key)))
    })
}

fn entity_names() -> Vec<&'static str> {
    PiiEntity::ALL.iter().map(PiiEntity::as_str).collect()
}

const SECRET_MESSAGE: &str =
    "literal secret in the config: store it as a secret and reference it with secret_key_ref";

/// Finds credentials in scalars (API keys, private keys, JWTs), with no allowlist.
static CREDENTIAL_SCANNER: std::sync::LazyLock<Scanner> =
    std::sync::LazyLock::new(|| Scanner::new(&PiiEntity::CREDENTIALS, &[], &[]));

/// What a credential finding is, for messages (never the value).
fn credential_description(entity: Option<PiiEntity>) -> &'static str {
    match entity {
        Some(PiiEntity::PrivateKey) => "a private key",
        Some(PiiEntity::Jwt) => "a JSON Web Token",
        _ => "an API key",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A mapping's fields, first occurrence of each key.
struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }
}

/// A model name written in a model filter, kept for the routing check.
struct ModelRef {
    pos: Pos,
    path: String,
    model: String,
}

/// Target ids seen so far: the line of each, and the file order (for suggestions).
#[derive(Default)]
struct TargetIds {
    lines: HashMap<String, usize>,
    order: Vec<String>,
}

/// A target id written in a target's `fallbacks`, checked once every id is known.
struct FallbackRef {
    pos: Pos,
    path: String,
    /// The referenced id.
    id: String,
    /// The id of the target whose `fallbacks` this is (when valid).
    owner: Option<String>,
}

/// The first enabled policy of a kind that may only be enabled once.
struct Singleton {
    name: String,
    line: usize,
}

#[derive(Default)]
struct Validator {
    diags: Vec<Diagnostic>,
    /// Exact model names in enabled model filters (for the routing check).
    model_refs: Vec<ModelRef>,
    /// Exact model names anywhere (model filters and target `models`), for the price check.
    priced_refs: Vec<ModelRef>,
    env_refs: Vec<EnvRef>,
    /// Where literal secrets are: other diagnostics there would echo the value.
    secrets: Vec<Pos>,
    cost_limit: Option<Singleton>,
    rate_limit: Option<Singleton>,
}

/// What validation found: the configuration when there is no error, every diagnostic (sorted
/// by position), and the environment variables the file names.
pub(crate) struct Validated {
    pub config: Option<PolicyConfig>,
    pub diagnostics: Vec<Diagnostic>,
    pub env_refs: Vec<EnvRef>,
}

/// Validates a document's root node.
pub(crate) fn validate(root: &Node) -> Validated {
    let mut v = Validator::default();
    v.literal_secrets(root, "");
    let config = v.root(root);
    v.check_prices();
    let secrets = v.secrets;
    let mut diags = v.diags;
    // The literal-secret error supersedes whatever else is wrong with that value (a message
    // about it could quote it).
    diags.retain(|d| {
        d.message.starts_with(SECRET_MESSAGE)
            || !secrets
                .iter()
                .any(|p| p.line == d.line && p.column == d.column)
    });
    diags.sort_by_key(|a| (a.line, a.column, a.severity));
    diags.dedup();
    let has_errors = diags.iter().any(Diagnostic::is_error);
    Validated {
        config: config.filter(|_| !has_errors),
        diagnostics: diags,
        env_refs: v.env_refs,
    }
}

impl Validator {
    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>, help: Option<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message: message.into(),
            suggestion: help,
        });
    }

    fn warning(&mut self, pos: Pos, path: &str, message: impl Into<String>, help: Option<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Warning,
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message: message.into(),
            suggestion: help,
        });
    }

    /// Every scalar (keys included) that a credential detector matches is an error: secrets
    /// belong in the environment or the console's secret store, never in a config file. The
    /// value is never echoed.
    fn literal_secrets(&mut self, node: &Node, path: &str) {
        match &node.kind {
            NodeKind::Scalar { text, .. } => {
                let found = CREDENTIAL_SCANNER.find(text);
                if let Some(f) = found.first() {
                    self.secrets.push(node.pos);
                    self.error(
                        node.pos,
                        path,
                        format!(
                            "{SECRET_MESSAGE} (this value looks like {})",
                            credential_description(f.entity.builtin())
                        ),
                        Some("remove the value from the file (and rotate it: it may be in the Git history), then use `secret_key_ref: {env: VAR}` or `secret_key_ref: {secret: NAME}`".to_owned()),
                    );
                }
            }
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.literal_secrets(item, &format!("{path}[{i}]"));
                }
            }
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    let name = match k.text() {
                        Some(t) if CREDENTIAL_SCANNER.is_match(t) => "<secret>",
                        Some(t) => t,
                        None => "?",
                    };
                    let p = join(path, name);
                    self.literal_secrets(k, &p);
                    self.literal_secrets(v, &p);
                }
            }
        }
    }

    /// Warns about exact model names without a known price (their cost would be estimated).
    fn check_prices(&mut self) {
        let mut refs = std::mem::take(&mut self.priced_refs);
        refs.sort_by_key(|r| r.pos);
        let mut seen: Vec<&str> = Vec::new();
        for r in &refs {
            if seen.contains(&r.model.as_str()) {
                continue;
            }
            seen.push(&r.model);
            if !known_price(&r.model) {
                self.warning(
                    r.pos,
                    &r.path,
                    format!(
                        "no known price for model `{}`: its usage is charged at the fallback price (that of a large model)",
                        r.model
                    ),
                    Some("check the spelling of the model name; budgets count this model's traffic at the fallback price".to_owned()),
                );
            }
        }
    }

    /// "expected WHAT, found …" at the value, with a hint when the mistake is a common one.
    fn expected(&mut self, node: &Node, path: &str, what: &str) {
        let help = type_help(node, what);
        self.error(
            node.pos,
            path,
            format!("expected {what}, found {}", node.describe()),
            help,
        );
    }

    fn missing(&mut self, map: &Node, path: &str, key: &str, help: Option<String>) {
        self.error(
            map.pos,
            path,
            format!("missing required field `{key}`"),
            help,
        );
    }

    /// The fields of a mapping; reports a non-mapping, non-string keys and duplicate keys.
    fn fields<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<Fields<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            self.expected(node, path, what);
            return None;
        };
        let mut fields = Fields {
            entries: Vec::with_capacity(entries.len()),
        };
        for (k, v) in entries {
            let name = match (&k.kind, k.scalar()) {
                (_, Some(Scalar::Null)) | (NodeKind::Seq(_) | NodeKind::Map(_), _) => {
                    self.expected(k, path, "a field name");
                    continue;
                }
                _ => k.text().unwrap_or_default(),
            };
            if let Some((_, first, _)) = fields.entries.iter().find(|(n, _, _)| *n == name) {
                let line = first.pos.line;
                self.error(
                    k.pos,
                    &join(path, name),
                    format!("duplicate field `{name}`"),
                    Some(format!(
                        "`{name}` is already set on line {line}; remove one of them"
                    )),
                );
                continue;
            }
            fields.entries.push((name, k, v));
        }
        Some(fields)
    }

    /// Reports every field not in `allowed`.
    fn unknown_fields(&mut self, fields: &Fields<'_>, path: &str, allowed: &[&str]) {
        for (name, key, _) in &fields.entries {
            if !allowed.contains(name) {
                self.unknown_field(key, &join(path, name), name, allowed);
            }
        }
    }

    fn unknown_field(&mut self, key: &Node, path: &str, name: &str, allowed: &[&str]) {
        let help = match closest(name, allowed) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("expected one of {}", one_of(allowed)),
        };
        self.error(key.pos, path, format!("unknown field `{name}`"), Some(help));
    }

    fn string<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n str> {
        match node.as_str() {
            Some(s) => Some(s),
            None => {
                self.expected(node, path, what);
                None
            }
        }
    }

    /// A non-empty string without surrounding or inner whitespace (names, ids, models).
    fn word<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n str> {
        let s = self.string(node, path, what)?;
        if s.trim().is_empty() {
            self.error(node.pos, path, format!("{what} must not be empty"), None);
            return None;
        }
        if s.chars().any(char::is_whitespace) {
            self.error(
                node.pos,
                path,
                format!("{what} must not contain spaces, found {}", quote_short(s)),
                None,
            );
            return None;
        }
        Some(s)
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.scalar() {
            Some(Scalar::Bool(b)) => Some(b),
            _ => {
                self.expected(node, path, "`true` or `false`");
                None
            }
        }
    }

    /// A finite number greater than zero (integer or decimal).
    fn positive_number(&mut self, node: &Node, path: &str) -> Option<f64> {
        let value = match node.scalar() {
            Some(Scalar::Int(i)) => i as f64,
            Some(Scalar::Float(f)) => f,
            _ => {
                self.expected(node, path, "a number");
                return None;
            }
        };
        let text = node.text().unwrap_or_default();
        if !value.is_finite() {
            self.error(
                node.pos,
                path,
                format!("expected a finite number, found {text}"),
                None,
            );
            return None;
        }
        if value <= 0.0 {
            self.error(
                node.pos,
                path,
                format!("must be greater than 0, found {text}"),
                None,
            );
            return None;
        }
        Some(value)
    }

    /// A whole number from 1 to `u32::MAX`.
    fn positive_int(&mut self, node: &Node, path: &str) -> Option<u32> {
        let text = node.text().unwrap_or_default();
        let value = match node.scalar() {
            Some(Scalar::Int(i)) => i,
            Some(Scalar::Float(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 => {
                f as i128
            }
            Some(Scalar::Float(_)) => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a whole number, found {text}"),
                    None,
                );
                return None;
            }
            _ => {
                self.expected(node, path, "a whole number");
                return None;
            }
        };
        if value <= 0 {
            self.error(
                node.pos,
                path,
                format!("must be greater than 0, found {text}"),
                None,
            );
            return None;
        }
        match u32::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    node.pos,
                    path,
                    format!("is too large, found {text}"),
                    Some(format!("the largest accepted value is {}", u32::MAX)),
                );
                None
            }
        }
    }

    /// A list whose items are checked by `item`; `None` if the list or any item is invalid.
    fn list<'n, T>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
        mut item: impl FnMut(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.expected(node, path, what);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, n) in items.iter().enumerate() {
            match item(self, n, &format!("{path}[{i}]")) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn root(&mut self, root: &Node) -> Option<PolicyConfig> {
        if !matches!(root.kind, NodeKind::Map(_)) {
            self.error(
                root.pos,
                "",
                format!(
                    "expected a mapping with `policies` at the top level, found {}",
                    root.describe()
                ),
                Some("start the file with `policies:` followed by a list of policies".to_owned()),
            );
            return None;
        }
        let fields = self.fields(root, "", "a mapping")?;
        self.unknown_fields(&fields, "", ROOT_KEYS);

        let providers = match fields.get("providers") {
            Some(node) => self.providers(node),
            None => Some(Providers::default()),
        };

        let policies = match fields.get("policies") {
            None => {
                self.missing(
                    root,
                    "",
                    "policies",
                    Some(
                        "add `policies:` with a list of policies (`policies: []` for none)"
                            .to_owned(),
                    ),
                );
                None
            }
            Some(node) => self.policies(node),
        };

        if let Some(providers) = &providers {
            self.check_routes(providers);
        }
        Some(PolicyConfig {
            policies: policies?,
            providers: providers?,
        })
    }

    fn policies(&mut self, node: &Node) -> Option<Vec<Policy>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.expected(node, "policies", "a list of policies");
            return None;
        };
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.policy(item, i, &mut names) {
                Some(p) => out.push(p),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn policy(
        &mut self,
        node: &Node,
        index: usize,
        names: &mut HashMap<String, usize>,
    ) -> Option<Policy> {
        let path = format!("policies[{index}]");
        let fields = self.fields(node, &path, "a policy (a mapping with `name` and `type`)")?;

        // name
        let name = match fields.get("name") {
            None => {
                self.missing(
                    node,
                    &path,
                    "name",
                    Some("give the policy a unique name, e.g. `name: pii-protection`".to_owned()),
                );
                None
            }
            Some(v) => {
                let p = join(&path, "name");
                let name = self.word(v, &p, "a policy name");
                if let Some(n) = name {
                    if let Some(line) = names.get(n) {
                        self.error(
                            v.pos,
                            &p,
                            format!("duplicate policy name `{n}`"),
                            Some(format!(
                                "a policy on line {line} already has this name; policy names must be unique"
                            )),
                        );
                    } else {
                        names.insert(n.to_owned(), v.pos.line);
                    }
                }
                name
            }
        };

        // type
        let ty: Option<&'static str> = match fields.get("type") {
            None => {
                self.missing(
                    node,
                    &path,
                    "type",
                    Some(format!("add `type:` with one of {}", one_of(POLICY_TYPES))),
                );
                None
            }
            Some(v) => {
                let p = join(&path, "type");
                match self.string(v, &p, "a policy type") {
                    None => None,
                    Some(s) => match POLICY_TYPES.iter().find(|t| **t == s) {
                        Some(t) => Some(*t),
                        None => {
                            self.error(
                                v.pos,
                                &p,
                                format!("unknown policy type `{s}`"),
                                Some(did_you_mean_one_of(s, POLICY_TYPES)),
                            );
                            None
                        }
                    },
                }
            }
        };

        // unknown fields, judged against the type when it is known
        for (key_name, key, _) in &fields.entries {
            if COMMON_POLICY_KEYS.contains(key_name) {
                continue;
            }
            let key_path = join(&path, key_name);
            let owners = key_owners(key_name);
            match ty {
                Some(t) if owners.contains(&t) => {}
                None if !owners.is_empty() => {}
                Some(t) if !owners.is_empty() => {
                    let owned_by =
                        format!("`{key_name}` belongs to {} policies", and_list(&owners));
                    let help = match similar_type_key(key_name, t) {
                        Some(k) => format!("did you mean `{k}`? ({owned_by})"),
                        None => {
                            let accepted: Vec<&str> = COMMON_POLICY_KEYS
                                .iter()
                                .chain(type_keys(t))
                                .copied()
                                .collect();
                            format!("{owned_by}; a `{t}` policy accepts {}", one_of(&accepted))
                        }
                    };
                    self.error(
                        key.pos,
                        &key_path,
                        format!("field `{key_name}` does not apply to a `{t}` policy"),
                        Some(help),
                    );
                }
                t => {
                    let mut allowed: Vec<&str> = COMMON_POLICY_KEYS.to_vec();
                    let types: &[&str] = match t {
                        Some(t) => &[t],
                        None => POLICY_TYPES,
                    };
                    for k in types.iter().flat_map(|t| type_keys(t).iter()) {
                        if !allowed.contains(k) {
                            allowed.push(k);
                        }
                    }
                    self.unknown_field(key, &key_path, key_name, &allowed);
                }
            }
        }

        // enabled
        let enabled = match fields.get("enabled") {
            None => Some(true),
            Some(v) => {
                let p = join(&path, "enabled");
                let enabled = self.boolean(v, &p);
                if enabled == Some(false) {
                    let who =
                        name.map_or_else(|| "this policy".to_owned(), |n| format!("policy `{n}`"));
                    self.warning(
                        v.pos,
                        &p,
                        format!("{who} is disabled: it is checked but never applied"),
                        Some("set `enabled: true` to apply it, or remove the policy".to_owned()),
                    );
                }
                enabled
            }
        };

        // action
        let action = match fields.get("action") {
            None => Some(default_action(ty)),
            Some(v) => self.action(v, &join(&path, "action"), ty),
        };

        let rule = match ty {
            Some("pii_detection") => self.pii_rule(&fields, &path, action),
            Some("cost_limit") => self.cost_rule(node, &fields, &path, action),
            Some("model_filter") => self.model_rule(node, &fields, &path, enabled.unwrap_or(true)),
            Some("rate_limit") => self.rate_rule(node, &fields, &path, action),
            Some("content_filter") => self.content_rule(node, &fields, &path, action),
            _ => None,
        };

        if enabled == Some(true)
            && let (Some(t), Some(n), Some(type_node)) = (ty, name, fields.get("type"))
        {
            self.singleton(t, n, type_node, &join(&path, "type"));
        }

        Some(Policy {
            name: name?.to_owned(),
            enabled: enabled?,
            rule: rule?,
        })
    }

    /// Only one enabled `cost_limit` and one enabled `rate_limit` can take effect.
    fn singleton(&mut self, ty: &str, name: &str, type_node: &Node, path: &str) {
        let (slot, what) = match ty {
            "cost_limit" => (&mut self.cost_limit, "budget"),
            "rate_limit" => (&mut self.rate_limit, "rate limit"),
            _ => return,
        };
        match slot {
            None => {
                *slot = Some(Singleton {
                    name: name.to_owned(),
                    line: type_node.pos.line,
                });
            }
            Some(first) => {
                let help = format!(
                    "`{}` (line {}) already sets the {what}; merge the two, or set `enabled: false` on one",
                    first.name, first.line
                );
                self.error(
                    type_node.pos,
                    path,
                    format!("a second enabled `{ty}` policy would never apply"),
                    Some(help),
                );
            }
        }
    }

    fn action(&mut self, node: &Node, path: &str, ty: Option<&str>) -> Option<Action> {
        let allowed = ty.map_or(ALL_ACTIONS, type_actions);
        let s = self.string(node, path, &format!("an action ({})", one_of(allowed)))?;
        match Action::from_name(s) {
            Some(a) if allowed.contains(&a.as_str()) => Some(a),
            Some(_) => {
                let t = ty.unwrap_or_default();
                let help = if t == "model_filter" {
                    "a `model_filter` policy always blocks: remove `action`, or write `action: block`"
                        .to_owned()
                } else if t == "content_filter" {
                    "a `content_filter` policy accepts `escalate` (the default), `block` or `warn`; it cannot redact: to replace matched values before the provider sees them, use a `pii_detection` policy with `custom_patterns` and `action: redact`"
                        .to_owned()
                } else {
                    format!("a `{t}` policy accepts {}", one_of(allowed))
                };
                self.error(
                    node.pos,
                    path,
                    format!("a `{t}` policy cannot use `action: {s}`"),
                    Some(help),
                );
                None
            }
            None => {
                self.error(
                    node.pos,
                    path,
                    format!("unknown action `{s}`"),
                    Some(did_you_mean_one_of(s, allowed)),
                );
                None
            }
        }
    }

    fn pii_rule(&mut self, f: &Fields<'_>, path: &str, action: Option<Action>) -> Option<Rule> {
        let entities = match f.get("entities") {
            None => Some(Vec::new()),
            Some(v) => {
                let names = entity_names();
                self.list(
                    v,
                    &join(path, "entities"),
                    "a list of entities",
                    |me, n, p| {
                        let s = me.string(n, p, "an entity name")?;
                        match PiiEntity::from_name(s) {
                            Some(e) => Some(e),
                            None => {
                                me.error(
                                    n.pos,
                                    p,
                                    format!("unknown entity `{s}`"),
                                    Some(did_you_mean_one_of(s, &names)),
                                );
                                None
                            }
                        }
                    },
                )
                .map(|e| {
                    // Keep the first mention of each entity, in the order written.
                    let mut unique: Vec<PiiEntity> = Vec::with_capacity(e.len());
                    for x in e {
                        if !unique.contains(&x) {
                            unique.push(x);
                        }
                    }
                    unique
                })
            }
        };
        let allowlist = match f.get("allowlist") {
            None => Some(Vec::new()),
            Some(v) => self.list(
                v,
                &join(path, "allowlist"),
                "a list of values",
                |me, n, p| {
                    let s = me.string(n, p, "a string")?;
                    if s.trim().is_empty() {
                        me.error(n.pos, p, "an allowlist entry must not be empty", None);
                        return None;
                    }
                    if let Some(re) = s.strip_prefix("regex:") {
                        if re.is_empty() {
                            me.error(
                                n.pos,
                                p,
                                "empty regular expression after `regex:`",
                                Some("write `regex:<pattern>`, e.g. `regex:.*@example\\.com`".to_owned()),
                            );
                            return None;
                        }
                        if let Err(why) = check_allow_entry(s) {
                            me.error(
                                n.pos,
                                p,
                                format!("invalid regular expression: {why}"),
                                Some("fix the pattern (Rust `regex` syntax; the whole value must match it)".to_owned()),
                            );
                            return None;
                        }
                    }
                    Some(s.to_owned())
                },
            ),
        };
        let custom = match f.get("custom_patterns") {
            None => Some(Vec::new()),
            Some(v) => {
                let p = join(path, "custom_patterns");
                let mut seen: Vec<(String, usize)> = Vec::new();
                self.list(
                    v,
                    &p,
                    "a list of custom patterns (`{name: ..., pattern: ...}`)",
                    |me, n, p| me.custom_pattern(n, p, &mut seen, PatternOwner::PiiDetection),
                )
            }
        };
        let scan_responses = match f.get("scan_responses") {
            None => Some(false),
            Some(v) => self.boolean(v, &join(path, "scan_responses")),
        };
        let restore = match f.get("restore") {
            None => Some(false),
            Some(v) => {
                let p = join(path, "restore");
                let r = self.boolean(v, &p);
                if r == Some(true) && action.is_some_and(|a| a != Action::Redact) {
                    self.error(
                        v.pos,
                        &p,
                        "`restore` only applies with `action: redact`",
                        Some("set `action: redact`, or remove `restore`".to_owned()),
                    );
                    None
                } else {
                    r
                }
            }
        };
        let reviewers_see_prompt = self.reviewers_see_prompt(f, path, action);
        let (entities, allowlist, custom_patterns) = (entities?, allowlist?, custom?);
        let scanner = Scanner::new(&entities, &custom_patterns, &allowlist);
        Some(Rule::PiiDetection {
            action: action?,
            entities,
            allowlist,
            custom_patterns,
            restore: restore?,
            scan_responses: scan_responses?,
            reviewers_see_prompt: reviewers_see_prompt?,
            scanner,
        })
    }

    /// `reviewers_see_prompt` (`pii_detection` and `content_filter`): a boolean, `true` only
    /// with `action: escalate` (no other action puts a request in front of a reviewer).
    fn reviewers_see_prompt(
        &mut self,
        f: &Fields<'_>,
        path: &str,
        action: Option<Action>,
    ) -> Option<bool> {
        let v = match f.get("reviewers_see_prompt") {
            None => return Some(false),
            Some(v) => v,
        };
        let p = join(path, "reviewers_see_prompt");
        let r = self.boolean(v, &p)?;
        match action {
            Some(a) if r && a != Action::Escalate => {
                self.error(
                    v.pos,
                    &p,
                    "`reviewers_see_prompt` only applies to `action: escalate`",
                    Some(format!(
                        "set `action: escalate`, or remove `reviewers_see_prompt`: with `action: {a}` no request is held for a reviewer"
                    )),
                );
                None
            }
            _ => Some(r),
        }
    }

    /// `type: content_filter`: `keywords` and/or `patterns` (at least one entry in all),
    /// `action` (default `escalate`), `reviewers_see_prompt`.
    fn content_rule(
        &mut self,
        node: &Node,
        f: &Fields<'_>,
        path: &str,
        action: Option<Action>,
    ) -> Option<Rule> {
        let keywords_node = f.get("keywords");
        let keywords = match keywords_node {
            None => Some(Vec::new()),
            Some(v) => self.keywords(v, &join(path, "keywords")),
        };
        let patterns_node = f.get("patterns");
        let patterns = match patterns_node {
            None => Some(Vec::new()),
            Some(v) => {
                let p = join(path, "patterns");
                let mut seen: Vec<(String, usize)> = Vec::new();
                self.list(
                    v,
                    &p,
                    "a list of patterns (`{name: ..., pattern: ...}`)",
                    |me, n, p| me.custom_pattern(n, p, &mut seen, PatternOwner::ContentFilter),
                )
            }
        };
        let reviewers_see_prompt = self.reviewers_see_prompt(f, path, action);
        let (keywords, patterns) = (keywords?, patterns?);
        if keywords.is_empty() && patterns.is_empty() {
            // At the first (empty) list written, else at the policy.
            let (at, at_path, message) = match (keywords_node, patterns_node) {
                (Some(k), _) => (
                    k.pos,
                    join(path, "keywords"),
                    "a `content_filter` policy needs at least one keyword or pattern: `keywords` is empty",
                ),
                (None, Some(p)) => (
                    p.pos,
                    join(path, "patterns"),
                    "a `content_filter` policy needs at least one keyword or pattern: `patterns` is empty",
                ),
                (None, None) => (
                    node.pos,
                    path.to_owned(),
                    "missing `keywords` or `patterns`: a `content_filter` policy needs at least one keyword or pattern",
                ),
            };
            self.error(
                at,
                &at_path,
                message,
                Some("add `keywords: [merger agreement, layoffs]` (words or phrases, matched as whole words, ignoring case) or `patterns: [{name: project_code, pattern: 'PRJ-[0-9]{4}'}]` (regular expressions)".to_owned()),
            );
            return None;
        }
        let matcher = match ContentMatcher::new(&keywords, &patterns) {
            Ok(m) => m,
            Err(why) => {
                let (at, at_path) = match keywords_node {
                    Some(k) => (k.pos, join(path, "keywords")),
                    None => (node.pos, path.to_owned()),
                };
                self.error(
                    at,
                    &at_path,
                    format!("the keywords cannot be compiled: {why}"),
                    Some("split the keywords over several `content_filter` policies".to_owned()),
                );
                return None;
            }
        };
        Some(Rule::ContentFilter {
            keywords: matcher.keywords().to_vec(),
            patterns,
            action: action?,
            reviewers_see_prompt: reviewers_see_prompt?,
            matcher,
        })
    }

    /// A content filter's `keywords`: non-blank strings. Repeated keywords (ignoring case and
    /// spacing) and keywords that look like regular expressions are warnings.
    fn keywords(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let mut seen: Vec<(String, String, usize)> = Vec::new();
        self.list(node, path, "a list of keywords", |me, n, p| {
            let s = me.string(n, p, "a keyword")?;
            if s.trim().is_empty() {
                me.error(
                    n.pos,
                    p,
                    "a keyword must not be empty",
                    Some("write a word or phrase, e.g. `merger agreement`, or remove the entry".to_owned()),
                );
                return None;
            }
            let key = s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
            if let Some((first, _, line)) = seen.iter().find(|(_, k, _)| *k == key) {
                let help = format!(
                    "`{first}` on line {line} matches the same text (keywords ignore case and spacing); remove one of them"
                );
                me.warning(n.pos, p, format!("duplicate keyword `{}`", s.trim()), Some(help));
            } else {
                seen.push((s.trim().to_owned(), key, n.pos.line));
            }
            if looks_like_regex(s) {
                me.warning(
                    n.pos,
                    p,
                    format!(
                        "keyword `{}` looks like a regular expression, but keywords match as plain text",
                        s.trim()
                    ),
                    Some("move it to `patterns`, e.g. `patterns: [{name: my_pattern, pattern: '...'}]`".to_owned()),
                );
            }
            Some(s.trim().to_owned())
        })
    }

    /// One `custom_patterns` (`pii_detection`) or `patterns` (`content_filter`) entry:
    /// `{name: <lowercase word>, pattern: <regex>}`.
    fn custom_pattern(
        &mut self,
        node: &Node,
        path: &str,
        seen: &mut Vec<(String, usize)>,
        owner: PatternOwner,
    ) -> Option<CustomPattern> {
        let fields = self.fields(node, path, "a custom pattern (`{name: ..., pattern: ...}`)")?;
        self.unknown_fields(&fields, path, CUSTOM_PATTERN_KEYS);
        let name = match fields.get("name") {
            None => {
                self.missing(
                    node,
                    path,
                    "name",
                    Some("name the entity in lowercase, e.g. `name: employee_id`".to_owned()),
                );
                None
            }
            Some(v) => {
                let p = join(path, "name");
                let name = self.string(v, &p, "an entity name")?;
                let well_formed = name.len() <= MAX_CUSTOM_NAME
                    && name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !well_formed {
                    let fixed: String = name
                        .trim()
                        .to_ascii_lowercase()
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    self.error(
                        v.pos,
                        &p,
                        format!(
                            "{} is not a valid entity name: use a lowercase word (letters, digits and `_`, starting with a letter, at most {MAX_CUSTOM_NAME} characters)",
                            quote_short(name)
                        ),
                        (!fixed.is_empty() && fixed.starts_with(|c: char| c.is_ascii_lowercase()))
                            .then(|| format!("e.g. `name: {fixed}`")),
                    );
                    None
                } else if PiiEntity::from_name(name).is_some() {
                    let help = match owner {
                        PatternOwner::PiiDetection => format!(
                            "list it in `entities` instead, or give your pattern another name (e.g. `{name}_custom`)"
                        ),
                        PatternOwner::ContentFilter => format!(
                            "give your pattern another name (e.g. `{name}_custom`): matches are reported by name, and `{name}` would read as a PII finding"
                        ),
                    };
                    self.error(
                        v.pos,
                        &p,
                        format!("`{name}` is a built-in entity"),
                        Some(help),
                    );
                    None
                } else if let Some((_, line)) = seen.iter().find(|(n, _)| n == name) {
                    let line = *line;
                    self.error(
                        v.pos,
                        &p,
                        format!("duplicate custom pattern name `{name}`"),
                        Some(format!(
                            "a pattern on line {line} already has this name; merge the two patterns with `|`, or rename one"
                        )),
                    );
                    None
                } else {
                    seen.push((name.to_owned(), v.pos.line));
                    Some(name)
                }
            }
        };
        let pattern = match fields.get("pattern") {
            None => {
                self.missing(
                    node,
                    path,
                    "pattern",
                    Some("add a regular expression, e.g. `pattern: 'EMP-[0-9]{6}'`".to_owned()),
                );
                None
            }
            Some(v) => {
                let p = join(path, "pattern");
                let pat = self.string(v, &p, "a regular expression")?;
                match CustomPattern::new(name.unwrap_or("custom"), pat) {
                    Ok(c) => Some(c),
                    Err(why) => {
                        self.error(
                            v.pos,
                            &p,
                            format!("invalid regular expression: {why}"),
                            Some("fix the pattern (Rust `regex` syntax); quote it in YAML, e.g. `pattern: 'EMP-[0-9]{6}'`".to_owned()),
                        );
                        None
                    }
                }
            }
        };
        // Both parts must be valid (the pattern was compiled under the valid name).
        name?;
        pattern
    }

    fn cost_rule(
        &mut self,
        node: &Node,
        f: &Fields<'_>,
        path: &str,
        action: Option<Action>,
    ) -> Option<Rule> {
        let limit = match f.get("monthly_limit") {
            None => {
                self.missing(
                    node,
                    path,
                    "monthly_limit",
                    Some("add the monthly budget in USD, e.g. `monthly_limit: 2000`".to_owned()),
                );
                None
            }
            Some(v) => self.positive_number(v, &join(path, "monthly_limit")),
        };
        Some(Rule::CostLimit {
            monthly_limit_usd: limit?,
            action: action?,
        })
    }

    /// A list of model names. Exact names are recorded for the price check when `priced`,
    /// and for the routing check when `routed`.
    fn model_list(
        &mut self,
        node: &Node,
        path: &str,
        routed: bool,
        priced: bool,
    ) -> Option<Vec<String>> {
        let models = self.list(node, path, "a list of model names", |me, n, p| {
            let s = me.word(n, p, "a model name")?;
            if !s.contains('*') {
                let r = ModelRef {
                    pos: n.pos,
                    path: p.to_owned(),
                    model: s.to_owned(),
                };
                if priced {
                    me.priced_refs.push(ModelRef {
                        pos: r.pos,
                        path: r.path.clone(),
                        model: r.model.clone(),
                    });
                }
                if routed {
                    me.model_refs.push(r);
                }
            }
            Some(s.to_owned())
        })?;
        Some(models)
    }

    fn model_rule(
        &mut self,
        node: &Node,
        f: &Fields<'_>,
        path: &str,
        enabled: bool,
    ) -> Option<Rule> {
        let allowed = match f.get("allowed_models") {
            None => {
                self.missing(
                    node,
                    path,
                    "allowed_models",
                    Some("list the models this tenant may use, e.g. `allowed_models: [gpt-4o]` (`\"*\"` allows every model)".to_owned()),
                );
                None
            }
            Some(v) => {
                let p = join(path, "allowed_models");
                match self.model_list(v, &p, enabled, enabled) {
                    Some(m) if m.is_empty() => {
                        self.error(
                            v.pos,
                            &p,
                            "`allowed_models` must list at least one model",
                            Some("an empty list would block every request; list models, or `\"*\"` for all".to_owned()),
                        );
                        None
                    }
                    other => other,
                }
            }
        };
        let denied = match f.get("denied_models") {
            None => Some(Vec::new()),
            Some(v) => self.model_list(v, &join(path, "denied_models"), false, false),
        };
        Some(Rule::ModelFilter {
            allowed_models: allowed?,
            denied_models: denied?,
        })
    }

    fn rate_rule(
        &mut self,
        node: &Node,
        f: &Fields<'_>,
        path: &str,
        action: Option<Action>,
    ) -> Option<Rule> {
        let rpm = match f.get("max_requests_per_minute") {
            None => {
                self.missing(
                    node,
                    path,
                    "max_requests_per_minute",
                    Some("add the limit, e.g. `max_requests_per_minute: 120`".to_owned()),
                );
                None
            }
            Some(v) => self.positive_int(v, &join(path, "max_requests_per_minute")),
        };
        let tpm = match f.get("max_tokens_per_minute") {
            None => Some(None),
            Some(v) => self
                .positive_int(v, &join(path, "max_tokens_per_minute"))
                .map(Some),
        };
        Some(Rule::RateLimit {
            max_requests_per_minute: rpm?,
            max_tokens_per_minute: tpm?,
            action: action?,
        })
    }

    fn providers(&mut self, node: &Node) -> Option<Providers> {
        let path = "providers";
        let fields = self.fields(node, path, "a mapping with `targets`")?;
        self.unknown_fields(&fields, path, PROVIDERS_KEYS);
        let Some(targets_node) = fields.get("targets") else {
            self.missing(
                node,
                path,
                "targets",
                Some(
                    "add `targets:` with a list of upstream targets, e.g. `- id: openai`"
                        .to_owned(),
                ),
            );
            return None;
        };
        let tpath = join(path, "targets");
        let NodeKind::Seq(items) = &targets_node.kind else {
            self.expected(targets_node, &tpath, "a list of targets");
            return None;
        };
        let mut ids = TargetIds::default();
        let mut fallbacks = Vec::new();
        let mut targets = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.target(item, &format!("{tpath}[{i}]"), &mut ids, &mut fallbacks) {
                Some(t) => targets.push(t),
                None => ok = false,
            }
        }
        self.check_fallbacks(&ids, fallbacks);
        ok.then_some(Providers { targets })
    }

    /// Every id in a `fallbacks` list must be the id of a target of the file (with "did you
    /// mean" among the other targets' ids).
    fn check_fallbacks(&mut self, ids: &TargetIds, refs: Vec<FallbackRef>) {
        for r in refs {
            if ids.lines.contains_key(&r.id) {
                continue;
            }
            let others: Vec<&str> = ids
                .order
                .iter()
                .map(String::as_str)
                .filter(|i| Some(*i) != r.owner.as_deref())
                .collect();
            let help = if others.is_empty() {
                format!(
                    "add a target with `id: {}`, or remove it from `fallbacks`",
                    r.id
                )
            } else {
                did_you_mean_one_of(&r.id, &others)
            };
            self.error(
                r.pos,
                &r.path,
                format!("unknown fallback target `{}`: no target has this id", r.id),
                Some(help),
            );
        }
    }

    fn target(
        &mut self,
        node: &Node,
        path: &str,
        ids: &mut TargetIds,
        fallback_refs: &mut Vec<FallbackRef>,
    ) -> Option<Target> {
        let fields = self.fields(node, path, "a target (a mapping with `id`)")?;
        self.unknown_fields(&fields, path, TARGET_KEYS);

        let id_node = fields.get("id");
        let id = match id_node {
            None => {
                self.missing(
                    node,
                    path,
                    "id",
                    Some("give the target a unique id, e.g. `id: openai`".to_owned()),
                );
                None
            }
            Some(v) => {
                let p = join(path, "id");
                let id = self.word(v, &p, "a target id");
                if let Some(id) = id {
                    if let Some(line) = ids.lines.get(id) {
                        self.error(
                            v.pos,
                            &p,
                            format!("duplicate target id `{id}`"),
                            Some(format!(
                                "a target on line {line} already has this id; target ids must be unique"
                            )),
                        );
                    } else {
                        ids.lines.insert(id.to_owned(), v.pos.line);
                        ids.order.push(id.to_owned());
                    }
                }
                id
            }
        };

        let mut kind_given = false;
        let mut kind: Option<ProviderKind> = None;
        let mut base_url = Some(None);
        let mut models = Some(Vec::new());
        let mut secret = Some(None);
        let mut provider_ok = true;
        if let Some(pnode) = fields.get("provider") {
            let ppath = join(path, "provider");
            match self.fields(pnode, &ppath, "a mapping") {
                None => provider_ok = false,
                Some(pf) => {
                    self.unknown_fields(&pf, &ppath, PROVIDER_KEYS);
                    if let Some(v) = pf.get("kind") {
                        kind_given = true;
                        kind = self.kind(v, &join(&ppath, "kind"));
                    }
                    if let Some(v) = pf.get("base_url") {
                        base_url = self.base_url(v, &join(&ppath, "base_url")).map(Some);
                    }
                    if let Some(v) = pf.get("models") {
                        let mp = join(&ppath, "models");
                        models = match self.model_list(v, &mp, false, true) {
                            Some(m) if m.is_empty() => {
                                self.error(
                                    v.pos,
                                    &mp,
                                    "`models` must list at least one model",
                                    Some("remove `models` to route by model family (`claude-*` to anthropic, the rest to openai)".to_owned()),
                                );
                                None
                            }
                            other => other,
                        };
                    }
                    if let Some(v) = pf.get("secret_key_ref") {
                        secret = self
                            .secret_ref(v, &join(&ppath, "secret_key_ref"))
                            .map(Some);
                    }
                }
            }
        }

        if !kind_given && let (Some(id), Some(v)) = (id, id_node) {
            kind = ProviderKind::from_name(id);
            if kind.is_none() {
                let guess = closest(id, KINDS)
                    .map(|k| format!("did you mean `id: {k}`? Otherwise add "))
                    .unwrap_or_else(|| "add ".to_owned());
                self.error(
                    v.pos,
                    &join(path, "id"),
                    format!("cannot tell which provider target `{id}` is"),
                    Some(format!(
                        "{guess}`provider: {{kind: ...}}` with one of {}",
                        one_of(KINDS)
                    )),
                );
            }
        }

        if provider_ok
            && secret == Some(None)
            && let Some(k @ (ProviderKind::OpenAi | ProviderKind::Anthropic)) = kind
        {
            let (at, at_path) = match fields.get("provider") {
                Some(p) => (p.pos, join(path, "provider")),
                None => (node.pos, path.to_owned()),
            };
            let who = id.map_or_else(|| "this target".to_owned(), |i| format!("target `{i}`"));
            let var = format!(
                "TEAM_{}_KEY",
                id.unwrap_or(k.as_str())
                    .to_ascii_uppercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            );
            // Not an error: the organisation may have set a default key
            // for this kind (`PUT /v1/providers/{kind}`, SPEC §6).
            self.warning(
                at,
                &at_path,
                format!(
                    "{who} has no `secret_key_ref`: it uses the organisation's default {k} key (`PUT /v1/providers/{k}`), and its requests fail if there is none"
                ),
                Some(format!(
                    "to give it its own key, add `secret_key_ref: {{env: {var}}}` (an environment variable of the gateway) or `secret_key_ref: {{secret: NAME}}` (a secret stored in the console) under `provider`"
                )),
            );
        }

        let fallbacks = match fields.get("fallbacks") {
            None => Some(Vec::new()),
            Some(v) => self.fallbacks(v, &join(path, "fallbacks"), id, fallback_refs),
        };

        if !provider_ok {
            return None;
        }
        Some(Target {
            id: id?.to_owned(),
            kind: kind?,
            base_url: base_url?,
            models: models?,
            secret_key_ref: secret?,
            fallbacks: fallbacks?,
        })
    }

    /// A target's `fallbacks`: target ids, none twice and not the target's own `id`. Whether
    /// each names a target is checked once the whole list of targets is known
    /// ([`Validator::check_fallbacks`]), so the ids are recorded in `refs`.
    fn fallbacks(
        &mut self,
        node: &Node,
        path: &str,
        own_id: Option<&str>,
        refs: &mut Vec<FallbackRef>,
    ) -> Option<Vec<String>> {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        self.list(node, path, "a list of target ids", |me, n, p| {
            let f = me.word(n, p, "a target id")?;
            if own_id == Some(f) {
                me.error(
                    n.pos,
                    p,
                    format!("target `{f}` lists itself as a fallback"),
                    Some("remove it: fallbacks are other targets, tried when this one fails".to_owned()),
                );
                return None;
            }
            if let Some((_, line)) = seen.iter().find(|(s, _)| *s == f) {
                me.error(
                    n.pos,
                    p,
                    format!("duplicate fallback `{f}`"),
                    Some(format!(
                        "`{f}` is already listed on line {line}; each fallback is tried at most once, remove one of them"
                    )),
                );
                return None;
            }
            seen.push((f, n.pos.line));
            refs.push(FallbackRef {
                pos: n.pos,
                path: p.to_owned(),
                id: f.to_owned(),
                owner: own_id.map(str::to_owned),
            });
            Some(f.to_owned())
        })
    }

    fn kind(&mut self, node: &Node, path: &str) -> Option<ProviderKind> {
        let s = self.string(node, path, &format!("a provider kind ({})", one_of(KINDS)))?;
        match ProviderKind::from_name(s) {
            Some(k) => Some(k),
            None => {
                self.error(
                    node.pos,
                    path,
                    format!("unknown provider kind `{s}`"),
                    Some(did_you_mean_one_of(s, KINDS)),
                );
                None
            }
        }
    }

    fn base_url(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path, "a URL")?;
        if let Err(why) = check_url(s) {
            self.error(
                node.pos,
                path,
                format!("{} is not a valid http(s) URL: {why}", quote_short(s)),
                Some("write the full URL, e.g. `https://api.example.com/v1`".to_owned()),
            );
            return None;
        }
        Some(s.to_owned())
    }

    fn secret_ref(&mut self, node: &Node, path: &str) -> Option<SecretKeyRef> {
        let fields = self.fields(node, path, "a mapping with `env` or `secret`")?;
        self.unknown_fields(&fields, path, SECRET_REF_KEYS);
        match (fields.get("env"), fields.get("secret")) {
            (None, None) => {
                self.error(
                    node.pos,
                    path,
                    "missing `env` or `secret`",
                    Some("name an environment variable (`env: TEAM_OPENAI_KEY`) or a console secret (`secret: team-openai`)".to_owned()),
                );
                None
            }
            (Some(_), Some(_)) => {
                self.error(
                    node.pos,
                    path,
                    "set exactly one of `env` and `secret`, not both",
                    Some("keep `env` for an environment variable, or `secret` for a secret stored in the console".to_owned()),
                );
                None
            }
            (Some(v), None) => {
                let p = join(path, "env");
                let name = self.string(v, &p, "an environment variable name")?;
                if is_env_name(name) {
                    self.env_refs.push(EnvRef {
                        var: name.to_owned(),
                        line: v.pos.line,
                        column: v.pos.column,
                        path: p.clone(),
                    });
                    Some(SecretKeyRef::Env(name.to_owned()))
                } else {
                    self.error(
                        v.pos,
                        &p,
                        format!("{} is not a valid environment variable name", quote_short(name)),
                        Some("use letters, digits and `_`, not starting with a digit, e.g. `TEAM_ENG_OPENAI_KEY`".to_owned()),
                    );
                    None
                }
            }
            (None, Some(v)) => {
                let p = join(path, "secret");
                self.word(v, &p, "a secret name")
                    .map(|s| SecretKeyRef::Secret(s.to_owned()))
            }
        }
    }

    /// Every model a model filter allows by exact name must be served by some target
    /// (checked only when the file declares targets).
    fn check_routes(&mut self, providers: &Providers) {
        if providers.targets.is_empty() {
            return;
        }
        let refs = std::mem::take(&mut self.model_refs);
        for r in refs {
            if route_in(&providers.targets, &r.model).is_none() {
                let family = if is_anthropic_model(&r.model) {
                    "anthropic"
                } else {
                    "openai"
                };
                self.warning(
                    r.pos,
                    &r.path,
                    format!(
                        "no provider target serves model `{}`: requests for it will fail",
                        r.model
                    ),
                    Some(format!(
                        "add a target with `id: {family}` (or `provider: {{kind: {family}}}`), or list the model in a target's `provider.models`"
                    )),
                );
            }
        }
    }
}

/// Which kind of policy a named pattern belongs to (for help texts).
#[derive(Clone, Copy)]
enum PatternOwner {
    /// `pii_detection`'s `custom_patterns`.
    PiiDetection,
    /// `content_filter`'s `patterns`.
    ContentFilter,
}

/// Whether a keyword looks like it was meant as a regular expression (`PRJ-\d+`, `foo.*`).
fn looks_like_regex(keyword: &str) -> bool {
    const SIGNS: &[&str] = &[
        r"\d", r"\w", r"\s", r"\b", ".*", ".+", "[0-9]", "[a-z]", "[A-Z]", "{1,", "(?i)",
    ];
    SIGNS.iter().any(|s| keyword.contains(s))
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks an `http://` or `https://` URL with a host (and a numeric port, if any).
fn check_url(s: &str) -> Result<(), &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces");
    }
    let lower = s.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return Err("it must start with `http://` or `https://`");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) if !h.is_empty() => (h, tail.strip_prefix(':')),
            _ => return Err("the IPv6 host is not closed with `]`"),
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    if !host
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
    {
        return Err("the host contains invalid characters");
    }
    if let Some(p) = port
        && (p.is_empty() || p.parse::<u16>().is_err())
    {
        return Err("the port is not a number from 0 to 65535");
    }
    Ok(())
}

/// A hint for the most common type mistakes.
fn type_help(node: &Node, what: &str) -> Option<String> {
    let text = node.text()?;
    let quoted = matches!(
        node.kind,
        NodeKind::Scalar {
            style: Style::Quoted,
            ..
        }
    );
    let number_expected = what.contains("number");
    match node.scalar()? {
        Scalar::Str(s) if number_expected => {
            let plain = s.trim();
            if quoted && plain.parse::<f64>().is_ok() {
                return Some(format!("remove the quotes: {plain}"));
            }
            let cleaned: String = plain
                .trim_start_matches('$')
                .chars()
                .filter(|c| !matches!(c, '_' | ','))
                .collect();
            let (digits, factor) = match cleaned.strip_suffix(['k', 'K']) {
                Some(d) => (d, 1000.0),
                None => (cleaned.as_str(), 1.0),
            };
            match digits.parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    Some(format!("write a plain number, e.g. {}", v * factor))
                }
                _ => None,
            }
        }
        Scalar::Str(s) if what.contains("`true`") => {
            let l = s.trim().to_ascii_lowercase();
            match l.as_str() {
                "true" | "yes" | "y" | "on" => Some("write `true` (without quotes)".to_owned()),
                "false" | "no" | "n" | "off" => Some("write `false` (without quotes)".to_owned()),
                _ => None,
            }
        }
        Scalar::Str(_) | Scalar::Int(_) | Scalar::Float(_) | Scalar::Bool(_)
            if what.starts_with("a list") =>
        {
            Some(format!("write a list: [{text}]"))
        }
        Scalar::Int(_) | Scalar::Float(_) | Scalar::Bool(_)
            if !number_expected && what != "`true` or `false`" =>
        {
            Some(format!("put it in quotes: \"{text}\""))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{
        Action, ContentMatcher, CustomPattern, Diagnostic, PiiEntity, ProviderKind, Rule, Scanner,
        SecretKeyRef, Severity, lint, parse, render_diagnostics,
    };

    const SPEC: &str = include_str!("../testdata/spec-example.yaml");
    const DEMO: &str = include_str!("../../configs/teams/demo.yaml");

    fn errors(src: &str) -> Vec<Diagnostic> {
        match parse(src) {
            Ok(cfg) => panic!("expected errors, got {cfg:?}"),
            Err(d) => d,
        }
    }

    /// (line, column, path, message) of each diagnostic.
    fn brief(src: &str) -> Vec<(usize, usize, String, String)> {
        errors(src)
            .into_iter()
            .map(|d| (d.line, d.column, d.path, d.message))
            .collect()
    }

    fn one(src: &str) -> Diagnostic {
        let mut d = errors(src);
        assert_eq!(d.len(), 1, "{d:#?}");
        d.remove(0)
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn spec_example_parses_clean_with_its_meaning() {
        let cfg = parse(SPEC).unwrap();
        let names: Vec<&str> = cfg.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pii-protection",
                "cost-cap",
                "model-allowlist",
                "tenant-rate-limit"
            ]
        );
        assert!(cfg.policies.iter().all(|p| p.enabled));
        assert_eq!(
            cfg.policies[0].rule,
            Rule::PiiDetection {
                action: Action::Block,
                entities: vec![],
                allowlist: vec![],
                custom_patterns: vec![],
                restore: false,
                scan_responses: false,
                reviewers_see_prompt: false,
                scanner: Scanner::default(),
            }
        );
        assert_eq!(cfg.cost_limit(), Some((2000.0, "cost-cap", Action::Block)));
        assert_eq!(
            cfg.policies[2].rule,
            Rule::ModelFilter {
                allowed_models: vec![s("gpt-4o"), s("claude-sonnet-4-20250514")],
                denied_models: vec![]
            }
        );
        assert_eq!(
            cfg.rate_limit(),
            Some((120, None, "tenant-rate-limit", Action::Block))
        );
        let t = &cfg.providers.targets;
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].id.as_str(), t[0].kind),
            ("openai", ProviderKind::OpenAi)
        );
        assert_eq!(
            t[0].secret_key_ref,
            Some(SecretKeyRef::Env(s("TEAM_ENG_OPENAI_KEY")))
        );
        assert_eq!(t[1].kind, ProviderKind::Anthropic);
        assert_eq!(t[1].kind.as_str(), "anthropic");
        assert_eq!(t[1].base_url, None);
    }

    #[test]
    fn demo_config_parses_clean() {
        let cfg = parse(DEMO).unwrap();
        assert_eq!(cfg.policies.len(), 4);
        assert_eq!(cfg.cost_limit(), Some((50.0, "cost-cap", Action::Block)));
        assert_eq!(cfg.rate_limit().map(|r| r.0), Some(120));
        assert_eq!(cfg.providers.targets.len(), 1);
        assert_eq!(cfg.providers.targets[0].kind, ProviderKind::Demo);
    }

    #[test]
    fn three_mistakes_are_reported_at_once() {
        let src = "\
policies:
  - name: pii-protection
    type: pii_detection
    action: blok
  - name: tenant-rate-limit
    type: rate_limit
    max_requests_per_minute: \"2k\"
provider:
  targets: []
";
        assert_eq!(
            brief(src),
            [
                (4, 13, s("policies[0].action"), s("unknown action `blok`")),
                (
                    7,
                    30,
                    s("policies[1].max_requests_per_minute"),
                    s("expected a whole number, found a string (\"2k\")")
                ),
                (8, 1, s("provider"), s("unknown field `provider`")),
            ]
        );
        let d = errors(src);
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some("did you mean `block`? (expected one of `block`, `redact`, `warn`, `escalate`)")
        );
        assert_eq!(
            d[2].suggestion.as_deref(),
            Some("did you mean `providers`?")
        );
    }

    #[test]
    fn did_you_mean_for_keys_types_and_actions() {
        let d = errors("policies:\n  - name: cap\n    type: cost_limit\n    monthy_limit: 20\n");
        assert_eq!(
            (d[0].line, d[0].column, d[0].path.as_str()),
            (2, 5, "policies[0]")
        );
        assert_eq!(d[0].message, "missing required field `monthly_limit`");
        assert_eq!((d[1].line, d[1].column), (4, 5));
        assert_eq!(d[1].path, "policies[0].monthy_limit");
        assert_eq!(d[1].message, "unknown field `monthy_limit`");
        assert_eq!(
            d[1].suggestion.as_deref(),
            Some("did you mean `monthly_limit`?")
        );

        let d = one("policies:\n  - name: p\n    type: pii_detect\n");
        assert_eq!(
            (d.line, d.column, d.path.as_str()),
            (3, 11, "policies[0].type")
        );
        assert_eq!(d.message, "unknown policy type `pii_detect`");
        assert!(
            d.suggestion
                .as_deref()
                .unwrap()
                .starts_with("did you mean `pii_detection`? (expected one of `pii_detection`,")
        );

        let d = one("policies:\n  - {name: p, type: pii_detection, action: blok}\n");
        assert_eq!((d.line, d.column), (2, 44));
        assert!(d.suggestion.unwrap().starts_with("did you mean `block`?"));

        // No close match: the allowed keys are listed.
        let d = one("policies:\n  - {name: p, type: cost_limit, monthly_limit: 5, zzz: 1}\n");
        assert_eq!(d.message, "unknown field `zzz`");
        assert_eq!(
            d.suggestion.as_deref(),
            Some("expected one of `name`, `type`, `enabled`, `action`, `monthly_limit`")
        );
    }

    #[test]
    fn wrong_value_types() {
        let src = "\
policies:
  - name: p
    type: pii_detection
    enabled: \"yes\"
    entities: email
  - name: c
    type: cost_limit
    monthly_limit: \"2000\"
  - name: r
    type: rate_limit
    max_requests_per_minute: 1.5
    max_tokens_per_minute: -5
  - name: 42
    type: model_filter
    allowed_models: gpt-4o
";
        assert_eq!(
            brief(src),
            [
                (
                    4,
                    14,
                    s("policies[0].enabled"),
                    s("expected `true` or `false`, found a string (\"yes\")")
                ),
                (
                    5,
                    15,
                    s("policies[0].entities"),
                    s("expected a list of entities, found a string (\"email\")")
                ),
                (
                    8,
                    20,
                    s("policies[1].monthly_limit"),
                    s("expected a number, found a string (\"2000\")")
                ),
                (
                    11,
                    30,
                    s("policies[2].max_requests_per_minute"),
                    s("expected a whole number, found 1.5")
                ),
                (
                    12,
                    28,
                    s("policies[2].max_tokens_per_minute"),
                    s("must be greater than 0, found -5")
                ),
                (
                    13,
                    11,
                    s("policies[3].name"),
                    s("expected a policy name, found a number (42)")
                ),
                (
                    15,
                    21,
                    s("policies[3].allowed_models"),
                    s("expected a list of model names, found a string (\"gpt-4o\")")
                ),
            ]
        );
        let d = errors(src);
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some("write `true` (without quotes)")
        );
        assert_eq!(d[2].suggestion.as_deref(), Some("remove the quotes: 2000"));
        assert_eq!(d[5].suggestion.as_deref(), Some("put it in quotes: \"42\""));
        assert_eq!(d[6].suggestion.as_deref(), Some("write a list: [gpt-4o]"));

        let d = one("policies:\n  - {name: c, type: cost_limit, monthly_limit: 2k}\n");
        assert_eq!(d.message, "expected a number, found a string (\"2k\")");
        assert_eq!(
            d.suggestion.as_deref(),
            Some("write a plain number, e.g. 2000")
        );
        let d = one("policies:\n  - {name: c, type: cost_limit, monthly_limit: 0}\n");
        assert_eq!(d.message, "must be greater than 0, found 0");
        let d = one("policies: {name: x}\n");
        assert_eq!(d.message, "expected a list of policies, found a mapping");
    }

    #[test]
    fn decimals_are_fine_for_budgets() {
        let cfg = parse(
            "policies:\n  - {name: c, type: cost_limit, monthly_limit: 12.5, action: warn}\n",
        )
        .unwrap();
        assert_eq!(cfg.cost_limit(), Some((12.5, "c", Action::Warn)));
    }

    #[test]
    fn duplicates() {
        let src = "\
policies:
  - name: same
    type: pii_detection
  - name: same
    type: pii_detection
    type: cost_limit
providers:
  targets:
    - id: openai
      provider: {secret_key_ref: {env: A}}
    - id: openai
      provider: {secret_key_ref: {env: A}}
";
        let d = errors(src);
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (4, 11, "policies[1].name", "duplicate policy name `same`"),
                (6, 5, "policies[1].type", "duplicate field `type`"),
                (
                    11,
                    11,
                    "providers.targets[1].id",
                    "duplicate target id `openai`"
                ),
            ]
        );
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some("a policy on line 2 already has this name; policy names must be unique")
        );
    }

    #[test]
    fn missing_required_fields_point_at_the_mapping() {
        let src =
            "policies:\n  - type: rate_limit\n  - name: m\n    type: model_filter\n  - name: x\n";
        assert_eq!(
            brief(src),
            [
                (2, 5, s("policies[0]"), s("missing required field `name`")),
                (
                    2,
                    5,
                    s("policies[0]"),
                    s("missing required field `max_requests_per_minute`")
                ),
                (
                    3,
                    5,
                    s("policies[1]"),
                    s("missing required field `allowed_models`")
                ),
                (5, 5, s("policies[2]"), s("missing required field `type`")),
            ]
        );
        let d = one("providers:\n  targets: []\n");
        assert_eq!((d.line, d.column, d.path.as_str()), (1, 1, ""));
        assert_eq!(d.message, "missing required field `policies`");
    }

    #[test]
    fn empty_and_malformed_documents() {
        for empty in ["", "\n\n", "# nothing here\n", "---\n"] {
            let d = one(empty);
            assert_eq!((d.line, d.column), (1, 1));
            assert_eq!(
                d.message,
                "the file is empty: expected a mapping with `policies`"
            );
        }
        let d = one("policies:\n  - name: a\n   type: b\n");
        assert_eq!(d.path, "");
        assert!(d.message.starts_with("invalid YAML: "), "{}", d.message);
        assert_eq!(d.line, 3);
        let d = one("- a\n- b\n");
        assert_eq!(
            d.message,
            "expected a mapping with `policies` at the top level, found a list"
        );
    }

    #[test]
    fn fields_of_another_policy_type() {
        let d = one("policies:\n  - name: p\n    type: pii_detection\n    monthly_limit: 5\n");
        assert_eq!(d.path, "policies[0].monthly_limit");
        assert_eq!(
            d.message,
            "field `monthly_limit` does not apply to a `pii_detection` policy"
        );
        assert!(
            d.suggestion
                .unwrap()
                .starts_with("`monthly_limit` belongs to `cost_limit` policies")
        );
    }

    #[test]
    fn actions_depend_on_the_type() {
        let d =
            one("policies:\n  - {name: c, type: cost_limit, monthly_limit: 5, action: redact}\n");
        assert_eq!(
            d.message,
            "a `cost_limit` policy cannot use `action: redact`"
        );
        assert_eq!(
            d.suggestion.as_deref(),
            Some("a `cost_limit` policy accepts `block`, `warn`")
        );
        let d = one(
            "policies:\n  - {name: m, type: model_filter, allowed_models: [a], action: warn}\n",
        );
        assert_eq!(
            d.message,
            "a `model_filter` policy cannot use `action: warn`"
        );
        assert!(
            parse(
                "policies:\n  - {name: m, type: model_filter, allowed_models: [a], action: block}\n"
            )
            .is_ok()
        );
        let d =
            one("policies:\n  - {name: p, type: pii_detection, action: block, restore: true}\n");
        assert_eq!(d.message, "`restore` only applies with `action: redact`");
    }

    #[test]
    fn pii_entities_and_allowlist() {
        let cfg = parse(
            "policies:\n  - name: p\n    type: pii_detection\n    action: redact\n    restore: true\n    entities: [email, credit_card]\n    allowlist: [\"support@example.com\"]\n",
        )
        .unwrap();
        assert_eq!(
            cfg.policies[0].rule,
            Rule::PiiDetection {
                action: Action::Redact,
                entities: vec![PiiEntity::Email, PiiEntity::CreditCard],
                allowlist: vec![s("support@example.com")],
                custom_patterns: vec![],
                restore: true,
                scan_responses: false,
                reviewers_see_prompt: false,
                scanner: Scanner::new(
                    &[PiiEntity::Email, PiiEntity::CreditCard],
                    &[],
                    &[s("support@example.com")]
                ),
            }
        );
        let d =
            one("policies:\n  - {name: p, type: pii_detection, entities: [email, phone_number]}\n");
        assert_eq!(d.path, "policies[0].entities[1]");
        assert_eq!(d.message, "unknown entity `phone_number`");
        assert!(d.suggestion.unwrap().starts_with("did you mean `phone`?"));
        let d = one("policies:\n  - {name: p, type: pii_detection, allowlist: [5551234567]}\n");
        assert_eq!(d.message, "expected a string, found a number (5551234567)");
        assert_eq!(
            d.suggestion.as_deref(),
            Some("put it in quotes: \"5551234567\"")
        );
    }

    #[test]
    fn provider_targets() {
        let src = "\
policies: []
providers:
  targets:
    - id: azure-eu
    - id: opnai
    - id: x
      provider:
        kind: antropic
        base_url: ftp://example.com
        secret_key_ref: {env: 1BAD-NAME}
    - id: y
      provider:
        kind: openai
        secret_key_ref: {env: A, secret: b}
        region: eu
";
        let d = errors(src);
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    4,
                    11,
                    "providers.targets[0].id",
                    "cannot tell which provider target `azure-eu` is"
                ),
                (
                    5,
                    11,
                    "providers.targets[1].id",
                    "cannot tell which provider target `opnai` is"
                ),
                (
                    8,
                    15,
                    "providers.targets[2].provider.kind",
                    "unknown provider kind `antropic`"
                ),
                (
                    9,
                    19,
                    "providers.targets[2].provider.base_url",
                    "\"ftp://example.com\" is not a valid http(s) URL: it must start with `http://` or `https://`"
                ),
                (
                    10,
                    31,
                    "providers.targets[2].provider.secret_key_ref.env",
                    "\"1BAD-NAME\" is not a valid environment variable name"
                ),
                (
                    14,
                    25,
                    "providers.targets[3].provider.secret_key_ref",
                    "set exactly one of `env` and `secret`, not both"
                ),
                (
                    15,
                    9,
                    "providers.targets[3].provider.region",
                    "unknown field `region`"
                ),
            ]
        );
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some("add `provider: {kind: ...}` with one of `openai`, `anthropic`, `demo`")
        );
        assert!(
            d[1].suggestion
                .as_deref()
                .unwrap()
                .starts_with("did you mean `id: openai`?")
        );
        assert!(
            d[2].suggestion
                .as_deref()
                .unwrap()
                .starts_with("did you mean `anthropic`?")
        );
    }

    #[test]
    fn good_targets() {
        let cfg = parse(
            "policies: []\nproviders:\n  targets:\n    - id: vllm\n      provider:\n        kind: openai\n        base_url: \"http://[::1]:8000/v1\"\n        models: [\"llama-*\"]\n        secret_key_ref: {secret: team-vllm}\n    - id: azure\n      provider: {kind: openai, base_url: \"https://my-res.openai.azure.com\", secret_key_ref: {env: AZURE_KEY}}\n",
        )
        .unwrap();
        let t = &cfg.providers.targets;
        assert_eq!(t[0].base_url.as_deref(), Some("http://[::1]:8000/v1"));
        assert_eq!(
            t[0].secret_key_ref,
            Some(SecretKeyRef::Secret(s("team-vllm")))
        );
        assert_eq!(t[0].models, [s("llama-*")]);
        for bad in [
            "http://",
            "https:///path",
            "http://host:99999",
            "http://a b",
            "example.com",
        ] {
            let src = format!(
                "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {{base_url: \"{bad}\"}}\n"
            );
            assert!(parse(&src).is_err(), "{bad}");
        }
    }

    /// The example of the `fallbacks` documentation.
    const FALLBACKS: &str = "\
policies: []
providers:
  targets:
    - id: openai
      provider:
        secret_key_ref: { env: OPENAI_KEY }
      fallbacks: [azure-east, anthropic]
    - id: azure-east
      provider:
        kind: openai
        base_url: https://east.example.com/openai/v1
        secret_key_ref: { env: AZURE_KEY }
        models: [\"gpt-*\"]
    - id: anthropic
      provider:
        secret_key_ref: { env: ANTHROPIC_KEY }
";

    #[test]
    fn fallbacks_parse_and_serialize() {
        assert_eq!(warnings(FALLBACKS), []);
        let cfg = parse(FALLBACKS).unwrap();
        let t = &cfg.providers.targets;
        assert_eq!(t[0].fallbacks, [s("azure-east"), s("anthropic")]);
        assert!(t[1].fallbacks.is_empty() && t[2].fallbacks.is_empty());
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            json["providers"]["targets"][0]["fallbacks"],
            serde_json::json!(["azure-east", "anthropic"])
        );
        assert_eq!(
            json["providers"]["targets"][1]["fallbacks"],
            serde_json::json!([])
        );
        // Block lists, empty lists, cycles and targets referring to later ones are fine.
        let cfg = parse(
            "policies: []\nproviders:\n  targets:\n    - id: demo\n      fallbacks:\n        - openai\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n      fallbacks: [demo]\n    - id: anthropic\n      provider: {secret_key_ref: {env: K}}\n      fallbacks: []\n",
        )
        .unwrap();
        let f: Vec<_> = cfg.providers.targets.iter().map(|t| &t.fallbacks).collect();
        assert_eq!(f, [&vec![s("openai")], &vec![s("demo")], &vec![]]);
    }

    #[test]
    fn unknown_fallback_targets_suggest_an_id() {
        let src = "\
policies: []
providers:
  targets:
    - id: openai
      provider: {secret_key_ref: {env: K}}
      fallbacks: [azure-east, antropic]
    - id: azure-east
      provider: {kind: openai, secret_key_ref: {env: K}}
    - id: anthropic
      provider: {secret_key_ref: {env: K}}
      fallbacks:
        - opneai
        - nowhere-at-all
";
        let d = errors(src);
        let got: Vec<_> = d
            .iter()
            .map(|d| {
                (
                    d.line,
                    d.column,
                    d.path.as_str(),
                    d.message.as_str(),
                    d.suggestion.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    6,
                    31,
                    "providers.targets[0].fallbacks[1]",
                    "unknown fallback target `antropic`: no target has this id",
                    "did you mean `anthropic`? (expected one of `azure-east`, `anthropic`)"
                ),
                (
                    12,
                    11,
                    "providers.targets[2].fallbacks[0]",
                    "unknown fallback target `opneai`: no target has this id",
                    "did you mean `openai`? (expected one of `openai`, `azure-east`)"
                ),
                (
                    13,
                    11,
                    "providers.targets[2].fallbacks[1]",
                    "unknown fallback target `nowhere-at-all`: no target has this id",
                    "expected one of `openai`, `azure-east`"
                ),
            ]
        );
        // With no other target to suggest.
        let d = one(
            "policies: []\nproviders:\n  targets:\n    - id: demo\n      fallbacks: [openai]\n",
        );
        assert_eq!(
            (d.line, d.column, d.path.as_str()),
            (5, 19, "providers.targets[0].fallbacks[0]")
        );
        assert_eq!(
            d.suggestion.as_deref(),
            Some("add a target with `id: openai`, or remove it from `fallbacks`")
        );
        // A misspelt key.
        let d =
            one("policies: []\nproviders:\n  targets:\n    - id: demo\n      fallback: [demo]\n");
        assert_eq!(
            (d.line, d.column, d.path.as_str(), d.message.as_str()),
            (
                5,
                7,
                "providers.targets[0].fallback",
                "unknown field `fallback`"
            )
        );
        assert_eq!(d.suggestion.as_deref(), Some("did you mean `fallbacks`?"));
    }

    #[test]
    fn fallbacks_self_references_duplicates_and_wrong_types() {
        let src = "\
policies: []
providers:
  targets:
    - id: openai
      provider: {secret_key_ref: {env: K}}
      fallbacks: [anthropic, openai, anthropic]
    - id: anthropic
      provider: {secret_key_ref: {env: K}}
      fallbacks: openai
    - id: demo
      fallbacks: [42, {id: openai}, \"\"]
    - id: local
      provider: {kind: demo}
      fallbacks: {openai: true}
";
        let d = errors(src);
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    6,
                    30,
                    "providers.targets[0].fallbacks[1]",
                    "target `openai` lists itself as a fallback"
                ),
                (
                    6,
                    38,
                    "providers.targets[0].fallbacks[2]",
                    "duplicate fallback `anthropic`"
                ),
                (
                    9,
                    18,
                    "providers.targets[1].fallbacks",
                    "expected a list of target ids, found a string (\"openai\")"
                ),
                (
                    11,
                    19,
                    "providers.targets[2].fallbacks[0]",
                    "expected a target id, found a number (42)"
                ),
                (
                    11,
                    23,
                    "providers.targets[2].fallbacks[1]",
                    "expected a target id, found a mapping"
                ),
                (
                    11,
                    37,
                    "providers.targets[2].fallbacks[2]",
                    "a target id must not be empty"
                ),
                (
                    14,
                    18,
                    "providers.targets[3].fallbacks",
                    "expected a list of target ids, found a mapping"
                ),
            ]
        );
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some("remove it: fallbacks are other targets, tried when this one fails")
        );
        assert_eq!(
            d[1].suggestion.as_deref(),
            Some(
                "`anthropic` is already listed on line 6; each fallback is tried at most once, remove one of them"
            )
        );
        assert_eq!(d[2].suggestion.as_deref(), Some("write a list: [openai]"));
        assert_eq!(d[3].suggestion.as_deref(), Some("put it in quotes: \"42\""));
    }

    #[test]
    fn only_one_enabled_budget_and_rate_limit() {
        let src = "\
policies:
  - {name: a, type: cost_limit, monthly_limit: 5}
  - {name: b, type: cost_limit, monthly_limit: 9}
  - {name: c, type: cost_limit, monthly_limit: 9, enabled: false}
";
        let d = one(src);
        assert_eq!((d.line, d.path.as_str()), (3, "policies[1].type"));
        assert_eq!(
            d.message,
            "a second enabled `cost_limit` policy would never apply"
        );
    }

    /// Lints `src` and returns its warnings as (line, column, path, message).
    fn warnings(src: &str) -> Vec<(usize, usize, String, String)> {
        let report = lint(src);
        assert!(!report.has_errors(), "{:#?}", report.diagnostics);
        assert!(report.config.is_some());
        report
            .warnings()
            .map(|d| (d.line, d.column, d.path.clone(), d.message.clone()))
            .collect()
    }

    #[test]
    fn unroutable_models_are_a_warning() {
        let src = "\
policies:
  - name: models
    type: model_filter
    allowed_models: [gpt-4o, claude-sonnet-4-20250514, \"claude-*\"]
providers:
  targets:
    - id: openai
      provider: {secret_key_ref: {env: OPENAI_KEY}}
";
        assert_eq!(
            warnings(src),
            [(
                4,
                30,
                s("policies[0].allowed_models[1]"),
                s(
                    "no provider target serves model `claude-sonnet-4-20250514`: requests for it will fail"
                )
            )]
        );
        let report = lint(src);
        let d = report.warnings().next().unwrap();
        assert!(
            d.suggestion
                .as_deref()
                .unwrap()
                .starts_with("add a target with `id: anthropic`")
        );
        assert!(parse(src).is_ok());
        // Without targets there is nothing to check against.
        assert!(
            warnings(
                "policies:\n  - {name: m, type: model_filter, allowed_models: [claude-sonnet-4]}\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn disabled_policies_and_unpriced_models_are_warnings() {
        let src = "\
policies:
  - name: off
    type: pii_detection
    enabled: false
  - name: models
    type: model_filter
    allowed_models: [gpt-4o, my-finetune, \"llama-*\", my-finetune]
providers:
  targets:
    - id: openai
      provider:
        models: [gpt-4o, my-finetune, other-model]
        secret_key_ref: {env: OPENAI_KEY}
";
        let w = warnings(src);
        let got: Vec<(usize, &str)> = w.iter().map(|(l, _, p, _)| (*l, p.as_str())).collect();
        assert_eq!(
            got,
            [
                (4, "policies[0].enabled"),
                (7, "policies[1].allowed_models[1]"),
                (12, "providers.targets[0].provider.models[2]"),
            ]
        );
        assert_eq!(
            w[0].3,
            "policy `off` is disabled: it is checked but never applied"
        );
        assert!(w[1].3.starts_with("no known price for model `my-finetune`"));
        let text = render_diagnostics("t.yaml", &lint(src).diagnostics);
        assert!(
            text.starts_with("t.yaml:4:14: warning: policies[0].enabled: policy `off` is disabled")
        );
        // The spec example and the shipped configs have no warning.
        assert!(warnings(SPEC).is_empty());
        assert!(warnings(DEMO).is_empty());
    }

    #[test]
    fn targets_without_a_key_use_the_org_default_with_a_warning() {
        let src = "\
policies: []
providers:
  targets:
    - id: openai
    - id: claude
      provider: {kind: anthropic, base_url: \"https://example.com\"}
    - id: demo
    - id: local
      provider: {kind: demo}
";
        let report = lint(src);
        assert!(!report.has_errors(), "{:#?}", report.diagnostics);
        let d: Vec<_> = report.warnings().collect();
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    4,
                    7,
                    "providers.targets[0]",
                    "target `openai` has no `secret_key_ref`: it uses the organisation's default openai key (`PUT /v1/providers/openai`), and its requests fail if there is none"
                ),
                (
                    6,
                    17,
                    "providers.targets[1].provider",
                    "target `claude` has no `secret_key_ref`: it uses the organisation's default anthropic key (`PUT /v1/providers/anthropic`), and its requests fail if there is none"
                ),
            ]
        );
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some(
                "to give it its own key, add `secret_key_ref: {env: TEAM_OPENAI_KEY}` (an environment variable of the gateway) or `secret_key_ref: {secret: NAME}` (a secret stored in the console) under `provider`"
            )
        );
    }

    #[test]
    fn literal_secrets_are_errors_without_echoing_them() {
        let key = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
        let src = format!(
            "\
policies:
  - name: p
    type: pii_detection
    allowlist: [\"{key}\"]
providers:
  targets:
    - id: openai
      provider:
        secret_key_ref:
          env: {key}
# api_key: AKIAIOSFODNN7EXAMPLE (comments are not values)
"
        );
        let d = errors(&src);
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (4, 17, "policies[0].allowlist[0]"),
                (10, 16, "providers.targets[0].provider.secret_key_ref.env"),
            ]
        );
        assert_eq!(
            d[0].message,
            "literal secret in the config: store it as a secret and reference it with secret_key_ref (this value looks like an API key)"
        );
        for x in &d {
            assert!(
                !x.message.contains(key) && !x.suggestion.clone().unwrap_or_default().contains(key),
                "{x:?}"
            );
        }
        let rendered = render_diagnostics("t.yaml", &d);
        assert!(!rendered.contains("Ab3dEf6h"), "{rendered}");
        // Private keys and JWTs, in keys and block scalars too.
        let src = "policies: []\nx:\n  eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl: 1\ny: |\n  -----BEGIN EC PRIVATE KEY-----\n  MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oMZX1kB9K6NMoAoGCCqGSM49\n  -----END EC PRIVATE KEY-----\n";
        let d = errors(src);
        assert!(d.iter().any(|d| {
            d.message
                .ends_with("(this value looks like a JSON Web Token)")
                && d.line == 3
        }));
        assert!(
            d.iter().any(
                |d| d.message.ends_with("(this value looks like a private key)") && d.line == 5
            ),
            "{d:#?}"
        );
        assert!(d.iter().all(|d| !d.path.contains("eyJ")));
    }

    #[test]
    fn custom_patterns_are_checked() {
        let src = "\
policies:
  - name: p
    type: pii_detection
    custom_patterns:
      - {name: employee_id, pattern: 'EMP-[0-9]{6}'}
      - {name: email, pattern: 'x+'}
      - {name: Ticket-ID, pattern: 'T-[0-9]+'}
      - {name: employee_id, pattern: 'E[0-9]+'}
      - {name: broken, pattern: 'EMP-([0-9]{6}'}
      - {name: empty, pattern: 'x*'}
      - {name: nopattern}
      - {name: extra, pattern: 'y+', flags: i}
    allowlist: [\"regex:[a-\", \"regex:\"]
";
        let d = errors(src);
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    6,
                    16,
                    "policies[0].custom_patterns[1].name",
                    "`email` is a built-in entity"
                ),
                (
                    7,
                    16,
                    "policies[0].custom_patterns[2].name",
                    "\"Ticket-ID\" is not a valid entity name: use a lowercase word (letters, digits and `_`, starting with a letter, at most 32 characters)"
                ),
                (
                    8,
                    16,
                    "policies[0].custom_patterns[3].name",
                    "duplicate custom pattern name `employee_id`"
                ),
                (
                    9,
                    33,
                    "policies[0].custom_patterns[4].pattern",
                    "invalid regular expression: unclosed group"
                ),
                (
                    10,
                    32,
                    "policies[0].custom_patterns[5].pattern",
                    "invalid regular expression: the pattern matches the empty string, so it would match everywhere"
                ),
                (
                    11,
                    9,
                    "policies[0].custom_patterns[6]",
                    "missing required field `pattern`"
                ),
                (
                    12,
                    38,
                    "policies[0].custom_patterns[7].flags",
                    "unknown field `flags`"
                ),
                (
                    13,
                    17,
                    "policies[0].allowlist[0]",
                    "invalid regular expression: invalid character class range, the start must be <= the end"
                ),
                (
                    13,
                    30,
                    "policies[0].allowlist[1]",
                    "empty regular expression after `regex:`"
                ),
            ]
        );
        assert_eq!(d[1].suggestion.as_deref(), Some("e.g. `name: ticket_id`"));
        // And a good one.
        let cfg = parse(
            "policies:\n  - name: p\n    type: pii_detection\n    scan_responses: true\n    custom_patterns: [{name: employee_id, pattern: 'EMP-[0-9]{6}'}]\n",
        )
        .unwrap();
        let Rule::PiiDetection {
            custom_patterns,
            scan_responses,
            ..
        } = &cfg.policies[0].rule
        else {
            panic!()
        };
        assert_eq!(custom_patterns[0].name(), "employee_id");
        assert_eq!(custom_patterns[0].pattern(), "EMP-[0-9]{6}");
        assert!(*scan_responses);
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            json["policies"][0]["custom_patterns"][0]["name"],
            "employee_id"
        );
        assert_eq!(json["policies"][0]["scan_responses"], true);
        let d = one("policies:\n  - {name: p, type: pii_detection, scan_responses: yes}\n");
        assert_eq!(d.path, "policies[0].scan_responses");
    }

    #[test]
    fn content_filter_parses_with_escalate_by_default() {
        let src = "\
policies:
  - name: deals
    type: content_filter
    keywords: [merger agreement, \" Project Falcon \"]
    patterns:
      - {name: project_code, pattern: 'PRJ-[0-9]{4}'}
    reviewers_see_prompt: true
  - {name: words, type: content_filter, action: warn, keywords: [layoffs]}
  - {name: codes, type: content_filter, action: block, patterns: [{name: ticket, pattern: 'T-[0-9]+'}], reviewers_see_prompt: false}
  - {name: pii, type: pii_detection, action: escalate, reviewers_see_prompt: true}
";
        assert!(warnings(src).is_empty());
        let cfg = parse(src).unwrap();
        let keywords = vec![s("merger agreement"), s("Project Falcon")];
        let patterns = vec![CustomPattern::new("project_code", "PRJ-[0-9]{4}").unwrap()];
        assert_eq!(
            cfg.policies[0].rule,
            Rule::ContentFilter {
                matcher: ContentMatcher::new(&keywords, &patterns).unwrap(),
                keywords,
                patterns,
                action: Action::Escalate,
                reviewers_see_prompt: true,
            }
        );
        let summary: Vec<(&str, Action, bool)> = cfg
            .policies
            .iter()
            .map(|p| {
                (
                    p.rule.type_name(),
                    p.rule.action(),
                    p.reviewers_see_prompt(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("content_filter", Action::Escalate, true),
                ("content_filter", Action::Warn, false),
                ("content_filter", Action::Block, false),
                ("pii_detection", Action::Escalate, true),
            ]
        );
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            json["policies"][0],
            serde_json::json!({
                "name": "deals",
                "enabled": true,
                "type": "content_filter",
                "keywords": ["merger agreement", "Project Falcon"],
                "patterns": [{"name": "project_code", "pattern": "PRJ-[0-9]{4}"}],
                "action": "escalate",
                "reviewers_see_prompt": true
            })
        );
        assert_eq!(json["policies"][3]["reviewers_see_prompt"], true);
    }

    #[test]
    fn content_filter_errors() {
        let src = "\
policies:
  - name: nothing
    type: content_filter
  - name: empty
    type: content_filter
    keywords: []
    patterns: []
  - name: bad
    type: content_filter
    action: redact
    keywords: [merger, \"\", 42, \"  \"]
    patterns:
      - {name: broken, pattern: 'PRJ-([0-9]'}
      - {name: email, pattern: 'x+'}
      - {name: Bad-Name, pattern: 'y+'}
      - {name: empty, pattern: 'x*'}
    keyword: [x]
    custom_patterns: []
  - name: review-blocked
    type: content_filter
    action: block
    keywords: [x]
    reviewers_see_prompt: true
  - name: types
    type: content_filter
    action: esclate
    keywords: merger
    patterns: {name: x}
    reviewers_see_prompt: \"yes\"
  - {name: only-patterns, type: content_filter, patterns: []}
";
        let d = errors(src);
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    5,
                    "policies[0]",
                    "missing `keywords` or `patterns`: a `content_filter` policy needs at least one keyword or pattern"
                ),
                (
                    6,
                    15,
                    "policies[1].keywords",
                    "a `content_filter` policy needs at least one keyword or pattern: `keywords` is empty"
                ),
                (
                    10,
                    13,
                    "policies[2].action",
                    "a `content_filter` policy cannot use `action: redact`"
                ),
                (
                    11,
                    24,
                    "policies[2].keywords[1]",
                    "a keyword must not be empty"
                ),
                (
                    11,
                    28,
                    "policies[2].keywords[2]",
                    "expected a keyword, found a number (42)"
                ),
                (
                    11,
                    32,
                    "policies[2].keywords[3]",
                    "a keyword must not be empty"
                ),
                (
                    13,
                    33,
                    "policies[2].patterns[0].pattern",
                    "invalid regular expression: unclosed group"
                ),
                (
                    14,
                    16,
                    "policies[2].patterns[1].name",
                    "`email` is a built-in entity"
                ),
                (
                    15,
                    16,
                    "policies[2].patterns[2].name",
                    "\"Bad-Name\" is not a valid entity name: use a lowercase word (letters, digits and `_`, starting with a letter, at most 32 characters)"
                ),
                (
                    16,
                    32,
                    "policies[2].patterns[3].pattern",
                    "invalid regular expression: the pattern matches the empty string, so it would match everywhere"
                ),
                (17, 5, "policies[2].keyword", "unknown field `keyword`"),
                (
                    18,
                    5,
                    "policies[2].custom_patterns",
                    "field `custom_patterns` does not apply to a `content_filter` policy"
                ),
                (
                    23,
                    27,
                    "policies[3].reviewers_see_prompt",
                    "`reviewers_see_prompt` only applies to `action: escalate`"
                ),
                (26, 13, "policies[4].action", "unknown action `esclate`"),
                (
                    27,
                    15,
                    "policies[4].keywords",
                    "expected a list of keywords, found a string (\"merger\")"
                ),
                (
                    28,
                    15,
                    "policies[4].patterns",
                    "expected a list of patterns (`{name: ..., pattern: ...}`), found a mapping"
                ),
                (
                    29,
                    27,
                    "policies[4].reviewers_see_prompt",
                    "expected `true` or `false`, found a string (\"yes\")"
                ),
                (
                    30,
                    59,
                    "policies[5].patterns",
                    "a `content_filter` policy needs at least one keyword or pattern: `patterns` is empty"
                ),
            ]
        );
        let help = |i: usize| d[i].suggestion.as_deref().unwrap();
        assert_eq!(
            help(0),
            "add `keywords: [merger agreement, layoffs]` (words or phrases, matched as whole words, ignoring case) or `patterns: [{name: project_code, pattern: 'PRJ-[0-9]{4}'}]` (regular expressions)"
        );
        assert_eq!(help(1), help(0));
        assert_eq!(
            help(2),
            "a `content_filter` policy accepts `escalate` (the default), `block` or `warn`; it cannot redact: to replace matched values before the provider sees them, use a `pii_detection` policy with `custom_patterns` and `action: redact`"
        );
        assert_eq!(help(4), "put it in quotes: \"42\"");
        assert_eq!(
            help(7),
            "give your pattern another name (e.g. `email_custom`): matches are reported by name, and `email` would read as a PII finding"
        );
        assert_eq!(help(10), "did you mean `keywords`?");
        assert_eq!(
            help(11),
            "did you mean `patterns`? (`custom_patterns` belongs to `pii_detection` policies)"
        );
        assert_eq!(
            help(12),
            "set `action: escalate`, or remove `reviewers_see_prompt`: with `action: block` no request is held for a reviewer"
        );
        assert_eq!(
            help(13),
            "did you mean `escalate`? (expected one of `escalate`, `block`, `warn`)"
        );
        assert_eq!(help(14), "write a list: [merger]");
        assert_eq!(help(16), "write `true` (without quotes)");
    }

    #[test]
    fn reviewers_see_prompt_needs_escalate() {
        // `pii_detection` blocks by default.
        let d = one("policies:\n  - {name: p, type: pii_detection, reviewers_see_prompt: true}\n");
        assert_eq!(
            (d.line, d.column, d.path.as_str(), d.message.as_str()),
            (
                2,
                58,
                "policies[0].reviewers_see_prompt",
                "`reviewers_see_prompt` only applies to `action: escalate`"
            )
        );
        assert_eq!(
            d.suggestion.as_deref(),
            Some(
                "set `action: escalate`, or remove `reviewers_see_prompt`: with `action: block` no request is held for a reviewer"
            )
        );
        for action in ["redact", "warn"] {
            let d = one(&format!(
                "policies:\n  - {{name: p, type: pii_detection, action: {action}, reviewers_see_prompt: true}}\n"
            ));
            assert_eq!(
                d.message,
                "`reviewers_see_prompt` only applies to `action: escalate`"
            );
        }
        let d = one(
            "policies:\n  - {name: c, type: content_filter, action: warn, keywords: [x], reviewers_see_prompt: true}\n",
        );
        assert!(
            d.suggestion
                .unwrap()
                .ends_with("with `action: warn` no request is held for a reviewer")
        );
        // `false` is the default, whatever the action.
        assert!(
            parse("policies:\n  - {name: p, type: pii_detection, reviewers_see_prompt: false}\n")
                .is_ok()
        );
        // Other types do not take the field; a `pii_detection` policy does not take `patterns`.
        let d = errors(
            "policies:\n  - {name: c, type: cost_limit, monthly_limit: 5, reviewers_see_prompt: true}\n  - {name: p, type: pii_detection, patterns: []}\n",
        );
        assert_eq!(
            (d[0].path.as_str(), d[0].message.as_str()),
            (
                "policies[0].reviewers_see_prompt",
                "field `reviewers_see_prompt` does not apply to a `cost_limit` policy"
            )
        );
        assert_eq!(
            d[0].suggestion.as_deref(),
            Some(
                "`reviewers_see_prompt` belongs to `pii_detection` and `content_filter` policies; a `cost_limit` policy accepts `name`, `type`, `enabled`, `action`, `monthly_limit`"
            )
        );
        assert_eq!(
            d[1].message,
            "field `patterns` does not apply to a `pii_detection` policy"
        );
        assert_eq!(
            d[1].suggestion.as_deref(),
            Some(
                "did you mean `custom_patterns`? (`patterns` belongs to `content_filter` policies)"
            )
        );
        // Unknown keys of a content filter list its own fields.
        let d = one("policies:\n  - {name: c, type: content_filter, keywords: [x], zzz: 1}\n");
        assert_eq!(
            d.suggestion.as_deref(),
            Some(
                "expected one of `name`, `type`, `enabled`, `action`, `keywords`, `patterns`, `reviewers_see_prompt`"
            )
        );
        let d = one(
            "policies:\n  - {name: c, type: content_filter, keywords: [x], reviewers_see_promt: true}\n",
        );
        assert_eq!(d.message, "unknown field `reviewers_see_promt`");
        assert_eq!(
            d.suggestion.as_deref(),
            Some("did you mean `reviewers_see_prompt`?")
        );
    }

    #[test]
    fn content_filter_warnings_and_limits() {
        let src = "\
policies:
  - name: deals
    type: content_filter
    keywords:
      - merger agreement
      - Merger  Agreement
      - 'PRJ-\\d+'
";
        assert_eq!(
            warnings(src),
            [
                (
                    6,
                    9,
                    s("policies[0].keywords[1]"),
                    s("duplicate keyword `Merger  Agreement`")
                ),
                (
                    7,
                    9,
                    s("policies[0].keywords[2]"),
                    s(
                        "keyword `PRJ-\\d+` looks like a regular expression, but keywords match as plain text"
                    )
                ),
            ]
        );
        let report = lint(src);
        let w: Vec<_> = report.warnings().collect();
        assert_eq!(
            w[0].suggestion.as_deref(),
            Some(
                "`merger agreement` on line 5 matches the same text (keywords ignore case and spacing); remove one of them"
            )
        );
        assert_eq!(
            w[1].suggestion.as_deref(),
            Some("move it to `patterns`, e.g. `patterns: [{name: my_pattern, pattern: '...'}]`")
        );
        // Keywords too large to compile.
        let src = format!(
            "policies:\n  - name: huge\n    type: content_filter\n    keywords: [{}]\n",
            "ks".repeat(60_000)
        );
        let d = one(&src);
        assert_eq!(
            (d.line, d.column, d.path.as_str(), d.message.as_str()),
            (
                4,
                15,
                "policies[0].keywords",
                "the keywords cannot be compiled: the expression is too large (its compiled form exceeds 1048576 bytes)"
            )
        );
        assert_eq!(
            d.suggestion.as_deref(),
            Some("split the keywords over several `content_filter` policies")
        );
    }

    #[test]
    fn env_refs_are_reported_for_the_cli() {
        let mut report = lint(SPEC);
        let refs: Vec<(&str, usize, usize, &str)> = report
            .env_refs()
            .iter()
            .map(|r| (r.var.as_str(), r.line, r.column, r.path.as_str()))
            .collect();
        assert_eq!(
            refs,
            [
                (
                    "TEAM_ENG_OPENAI_KEY",
                    27,
                    16,
                    "providers.targets[0].provider.secret_key_ref.env"
                ),
                (
                    "TEAM_ENG_ANTHROPIC_KEY",
                    31,
                    16,
                    "providers.targets[1].provider.secret_key_ref.env"
                ),
            ]
        );
        report.warn_unset_env(|v| v == "TEAM_ENG_OPENAI_KEY");
        let w: Vec<_> = report.warnings().collect();
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].line, w[0].severity), (31, Severity::Warning));
        assert!(
            w[0].message
                .starts_with("environment variable `TEAM_ENG_ANTHROPIC_KEY` is not set")
        );
        assert!(!report.has_errors());
    }

    #[test]
    fn rendered_output_and_json() {
        let src = "policies:\n  - name: cap\n    type: cost_limit\n    monthly_limit: 20\n    actoin: block\n";
        let d = errors(src);
        assert_eq!(
            render_diagnostics("configs/teams/team-eng.yaml", &d),
            "configs/teams/team-eng.yaml:5:5: error: policies[0].actoin: unknown field `actoin`\n  \
             help: did you mean `action`?\n"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json[0]["line"], 5);
        assert_eq!(json[0]["column"], 5);
        assert_eq!(json[0]["path"], "policies[0].actoin");
        assert_eq!(json[0]["suggestion"], "did you mean `action`?");
    }

    #[test]
    fn config_serializes() {
        let cfg = parse(SPEC).unwrap();
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["policies"][1]["type"], "cost_limit");
        assert_eq!(json["policies"][1]["monthly_limit_usd"], 2000.0);
        assert_eq!(json["providers"]["targets"][0]["kind"], "openai");
        assert_eq!(
            json["providers"]["targets"][0]["secret_key_ref"]["env"],
            "TEAM_ENG_OPENAI_KEY"
        );
    }
}
