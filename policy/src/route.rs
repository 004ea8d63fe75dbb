//! Routing: which provider target serves a model.

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
}

/// [`PolicyConfig::route`] over a list of targets.
pub(crate) fn route_in<'t>(targets: &'t [Target], model: &str) -> Option<&'t Target> {
    if let Some(t) = targets
        .iter()
        .find(|t| t.models.iter().any(|m| m == model))
        .or_else(|| {
            targets
                .iter()
                .find(|t| t.models.iter().any(|m| glob_match(m, model)))
        })
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
}
