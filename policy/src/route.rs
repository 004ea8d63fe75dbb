//! Routing: which provider target serves a model, and which targets to try after it.

use crate::config::{PolicyConfig, ProviderKind, Target};
use crate::glob::glob_match;

/// Whether a model name belongs to Anthropic's family (`claude-…`).
pub fn is_anthropic_model(model: &str) -> bool {
    model.starts_with("claude")
}

impl PolicyConfig {
    /// The target that serves `model`:
    ///
    /// 1. a target whose `provider.models` lists it exactly, else one that lists a matching
    ///    `*` glob (first in file order);
    /// 2. otherwise, among targets without a `models` list: `claude-*` goes to the first
    ///    anthropic target and any other model to the first openai target;
    /// 3. otherwise the first demo target without a `models` list, which serves any model.
    ///
    /// `None` when no target serves the model.
    pub fn route(&self, model: &str) -> Option<&Target> {
        route_in(&self.providers.targets, model)
    }

    /// The targets to try for `model`, in order: the routed target ([`PolicyConfig::route`])
    /// followed by its `fallbacks`, in the order written. When a target's upstream answers
    /// with a 5xx status, times out or cannot be reached, the gateway moves on to the next
    /// target, but only before any byte of the answer has reached the caller.
    ///
    /// Each target appears at most once (so cycles between targets are harmless), only the
    /// routed target's own `fallbacks` are followed (not those of its fallbacks), and a
    /// fallback whose `provider.models` is non-empty and matches none of its entries (exact
    /// names or `*` globs, as in routing) is skipped: it does not serve this model.
    ///
    /// Empty when no target serves the model.
    pub fn route_with_fallbacks(&self, model: &str) -> Vec<&Target> {
        let Some(first) = self.route(model) else {
            return Vec::new();
        };
        let mut chain = vec![first];
        for id in &first.fallbacks {
            let Some(t) = self.target(id) else {
                continue;
            };
            if chain.iter().any(|c| c.id == t.id) {
                continue;
            }
            if !t.models.is_empty() && !lists_model(t, model) {
                continue;
            }
            chain.push(t);
        }
        chain
    }
}

/// Whether one of the target's `provider.models` (exact names or `*` globs) matches `model`.
fn lists_model(target: &Target, model: &str) -> bool {
    target
        .models
        .iter()
        .any(|m| m == model || glob_match(m, model))
}

/// [`PolicyConfig::route`] over a list of targets.
pub(crate) fn route_in<'t>(targets: &'t [Target], model: &str) -> Option<&'t Target> {
    if let Some(t) = targets
        .iter()
        .find(|t| t.models.iter().any(|m| m == model))
        .or_else(|| targets.iter().find(|t| lists_model(t, model)))
    {
        return Some(t);
    }
    let default_kind = if is_anthropic_model(model) {
        ProviderKind::Anthropic
    } else {
        ProviderKind::OpenAi
    };
    let general = |kind: ProviderKind| {
        targets
            .iter()
            .find(|t| t.kind == kind && t.models.is_empty())
    };
    general(default_kind).or_else(|| general(ProviderKind::Demo))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::parse;

    fn routed<'a>(cfg: &'a crate::PolicyConfig, model: &str) -> Option<&'a str> {
        cfg.route(model).map(|t| t.id.as_str())
    }

    #[test]
    fn spec_example_routes_by_family() {
        let cfg = parse(include_str!("../testdata/spec-example.yaml")).unwrap();
        assert_eq!(routed(&cfg, "gpt-4o"), Some("openai"));
        assert_eq!(routed(&cfg, "claude-sonnet-4-20250514"), Some("anthropic"));
        assert_eq!(routed(&cfg, "o3-mini"), Some("openai"));
    }

    #[test]
    fn explicit_models_win_and_demo_serves_the_rest() {
        let cfg = parse(
            "policies: []\n\
             providers:\n  targets:\n\
             \x20   - id: openai\n      provider: {secret_key_ref: {env: K}}\n\
             \x20   - id: local-llama\n      provider:\n        kind: openai\n        base_url: http://127.0.0.1:11434/v1\n        models: [\"llama-*\", qwen2]\n        secret_key_ref: {env: K}\n\
             \x20   - id: azure-claude\n      provider:\n        kind: anthropic\n        models: [claude-opus-4]\n        secret_key_ref: {secret: azure}\n\
             \x20   - id: demo\n",
        )
        .unwrap();
        assert_eq!(routed(&cfg, "llama-3.1-8b"), Some("local-llama"));
        assert_eq!(routed(&cfg, "qwen2"), Some("local-llama"));
        assert_eq!(routed(&cfg, "gpt-4o"), Some("openai"));
        assert_eq!(routed(&cfg, "claude-opus-4"), Some("azure-claude"));
        // No anthropic target without a models list: the demo stand-in answers.
        assert_eq!(routed(&cfg, "claude-3-haiku"), Some("demo"));
    }

    #[test]
    fn no_target_no_route() {
        let cfg = parse(
            "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n",
        )
        .unwrap();
        assert_eq!(routed(&cfg, "claude-3-haiku"), None);
        let cfg = parse("policies: []\n").unwrap();
        assert_eq!(routed(&cfg, "gpt-4o"), None);
        let demo = parse(include_str!("../../configs/teams/demo.yaml")).unwrap();
        assert_eq!(routed(&demo, "gpt-4o"), Some("demo"));
        assert_eq!(routed(&demo, "claude-sonnet-4-20250514"), Some("demo"));
    }

    fn chain<'a>(cfg: &'a crate::PolicyConfig, model: &str) -> Vec<&'a str> {
        cfg.route_with_fallbacks(model)
            .into_iter()
            .map(|t| t.id.as_str())
            .collect()
    }

    /// The example of the fallbacks documentation, plus a models-restricted fallback that
    /// serves only Claude models and a cycle back to `openai`.
    const FALLBACKS: &str = "\
policies: []
providers:
  targets:
    - id: openai
      provider:
        secret_key_ref: { env: OPENAI_KEY }
      fallbacks: [azure-east, anthropic, bedrock-claude]
    - id: azure-east
      provider:
        kind: openai
        base_url: https://east.example.com/openai/v1
        secret_key_ref: { env: AZURE_KEY }
        models: [\"gpt-*\"]
      fallbacks: [openai]
    - id: anthropic
      provider:
        secret_key_ref: { env: ANTHROPIC_KEY }
      fallbacks: [bedrock-claude, openai]
    - id: bedrock-claude
      provider:
        kind: anthropic
        models: [claude-sonnet-4-20250514, \"claude-opus-*\"]
        secret_key_ref: { secret: bedrock }
";

    #[test]
    fn fallbacks_follow_the_routed_target_in_order() {
        let cfg = parse(FALLBACKS).unwrap();
        // `gpt-4o` goes to azure-east first (its glob lists it), whose only fallback is openai;
        // openai's own fallbacks are not followed.
        assert_eq!(chain(&cfg, "gpt-4o"), ["azure-east", "openai"]);
        // `o3-mini` goes to openai; azure-east's `gpt-*` does not match it and bedrock-claude
        // lists only Claude models, so both are skipped; anthropic has no models list.
        assert_eq!(chain(&cfg, "o3-mini"), ["openai", "anthropic"]);
        // Exact names and globs of a fallback's models both count.
        assert_eq!(
            chain(&cfg, "claude-sonnet-4-20250514"),
            ["bedrock-claude"],
            "bedrock-claude lists the model exactly, so it is the routed target"
        );
        assert_eq!(
            chain(&cfg, "claude-3-haiku"),
            ["anthropic", "openai"],
            "bedrock-claude does not serve claude-3-haiku"
        );
        assert_eq!(
            chain(&cfg, "claude-opus-4"),
            ["bedrock-claude"],
            "bedrock-claude lists `claude-opus-*` and has no fallbacks"
        );
    }

    const MODEL_LISTS: &str = "\
policies: []
providers:
  targets:
    - id: anthropic
      provider: {secret_key_ref: {env: K}}
      fallbacks: [opus, sonnet-glob, demo]
    - id: opus
      provider: {kind: anthropic, models: [claude-opus-4], secret_key_ref: {env: K}}
      fallbacks: [sonnet-glob, anthropic]
    - id: sonnet-glob
      provider: {kind: anthropic, models: [\"claude-*-4*\"], secret_key_ref: {env: K}}
      fallbacks: [anthropic, opus]
    - id: haiku-a
      provider: {kind: anthropic, models: [claude-3-haiku], secret_key_ref: {env: K}}
      fallbacks: [haiku-b, opus, demo]
    - id: haiku-b
      provider: {kind: anthropic, models: [claude-3-haiku], secret_key_ref: {env: K}}
    - id: demo
      fallbacks: [anthropic]
";

    #[test]
    fn fallbacks_with_models_lists_serve_only_matching_models() {
        let cfg = parse(MODEL_LISTS).unwrap();
        // Routed to anthropic (no list matches): opus and sonnet-glob are skipped, demo
        // serves anything.
        assert_eq!(chain(&cfg, "claude-3-opus"), ["anthropic", "demo"]);
        // A fallback matched by a glob is kept.
        assert_eq!(
            chain(&cfg, "claude-opus-4"),
            ["opus", "sonnet-glob", "anthropic"]
        );
        assert_eq!(chain(&cfg, "claude-sonnet-4"), ["sonnet-glob", "anthropic"]);
        // A fallback listing the model exactly is kept (the first listing target is routed).
        assert_eq!(
            chain(&cfg, "claude-3-haiku"),
            ["haiku-a", "haiku-b", "demo"]
        );
        // A cycle (demo -> anthropic -> demo) is harmless: fallbacks of fallbacks are not
        // followed.
        assert_eq!(chain(&cfg, "gpt-4o"), ["demo", "anthropic"]);
    }

    #[test]
    fn each_target_is_tried_at_most_once() {
        // Lint refuses these lists; a configuration built by hand may still have them.
        let mut cfg = parse(MODEL_LISTS).unwrap();
        let demo = cfg
            .providers
            .targets
            .iter_mut()
            .find(|t| t.id == "demo")
            .unwrap();
        demo.fallbacks = [
            "demo",
            "anthropic",
            "anthropic",
            "nowhere",
            "haiku-a",
            "opus",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(chain(&cfg, "gpt-4o"), ["demo", "anthropic"]);
    }

    #[test]
    fn no_route_no_fallbacks() {
        let cfg = parse("policies: []\n").unwrap();
        assert!(cfg.route_with_fallbacks("gpt-4o").is_empty());
        let cfg = parse(
            "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n      fallbacks: []\n",
        )
        .unwrap();
        assert!(cfg.route_with_fallbacks("claude-3-haiku").is_empty());
        assert_eq!(chain(&cfg, "gpt-4o"), ["openai"]);
    }
}
