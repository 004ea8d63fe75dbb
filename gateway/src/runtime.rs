//! The policy config a gateway enforces right now, with the providers built
//! from it. It is swapped whole when the config changes ([`crate::reload`]);
//! each request takes the current one once at its start, so a reload never
//! changes the rules under a request in flight.

use policy::{PolicyConfig, Target};

use crate::providers::Provider;

#[derive(Debug)]
pub struct Runtime {
    pub config: PolicyConfig,
    /// Hash of the config source, reported in `/health` and the fleet view.
    pub hash: String,
    providers: Vec<(Target, Provider)>,
}

impl Runtime {
    pub fn new(config: PolicyConfig, hash: String) -> Self {
        let providers = config
            .providers
            .targets
            .iter()
            .map(|target| {
                let provider = Provider::from_target(target);
                if let Some(problem) = provider.startup_problem() {
                    tracing::warn!(target = %target.id, "{problem}; requests routed to it answer 502");
                }
                (target.clone(), provider)
            })
            .collect();
        Runtime {
            config,
            hash,
            providers,
        }
    }

    /// The target serving `model` and its provider.
    pub fn route(&self, model: &str) -> Option<(&Target, &Provider)> {
        let target = self.config.route(model)?;
        self.providers
            .iter()
            .find(|(t, _)| t.id == target.id)
            .map(|(t, p)| (t, p))
    }

    /// The targets to try for `model`, in order: the routed target, then its
    /// `fallbacks` that serve the model.
    pub fn route_chain(&self, model: &str) -> Vec<(&Target, &Provider)> {
        self.config
            .route_with_fallbacks(model)
            .into_iter()
            .filter_map(|target| {
                self.providers
                    .iter()
                    .find(|(t, _)| t.id == target.id)
                    .map(|(t, p)| (t, p))
            })
            .collect()
    }

    /// Whether any target is the built-in demo provider.
    pub fn has_demo(&self) -> bool {
        self.providers.iter().any(|(_, p)| p.is_demo())
    }
}
