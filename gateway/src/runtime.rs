//! The policy config a gateway enforces right now, with the providers built
//! from it. It is swapped whole when the config changes ([`crate::reload`]);
//! each request takes the current one once at its start, so a reload never
//! changes the rules under a request in flight.

use std::collections::HashMap;

use policy::{PolicyConfig, Target};
use store::secrets::ProviderDefault;

use crate::providers::Provider;

/// What provider targets are built with besides the config: the secrets the
/// gateway may use (decrypted; `secret_key_ref.secret`) and the
/// organisation's defaults per provider kind (`PUT /v1/providers/{kind}`).
#[derive(Default, PartialEq)]
pub struct ProviderContext {
    pub secrets: HashMap<String, String>,
    pub defaults: Vec<ProviderDefault>,
    /// Why secrets could not be read, if they could not (no master key, a
    /// wrong one): targets that need one say so.
    pub problem: Option<String>,
}

impl std::fmt::Debug for ProviderContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderContext")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("defaults", &self.defaults)
            .field("problem", &self.problem)
            .finish()
    }
}

impl ProviderContext {
    /// Reads secrets (org-wide, and `team`'s own when the gateway serves
    /// one team) and provider defaults.
    pub async fn load(
        db: &store::Db,
        key: Option<&store::crypto::MasterKey>,
        team: Option<&str>,
    ) -> store::Result<Self> {
        let defaults = store::secrets::providers(db).await?;
        let (secrets, problem) = match key {
            Some(key) => match store::secrets::resolve(db, key, team).await {
                Ok(secrets) => (secrets, None),
                Err(err) => (HashMap::new(), Some(err.to_string())),
            },
            None => (
                HashMap::new(),
                Some("no master key: set KT_MASTER_KEY to read console-stored secrets".to_owned()),
            ),
        };
        Ok(ProviderContext {
            secrets,
            defaults,
            problem,
        })
    }

    /// The organisation's defaults for a provider kind.
    pub fn default_for(&self, kind: policy::ProviderKind) -> Option<&ProviderDefault> {
        self.defaults.iter().find(|d| d.kind == kind.as_str())
    }
}

#[derive(Debug)]
pub struct Runtime {
    pub config: PolicyConfig,
    /// Hash of the config source, reported in `/health` and the fleet view.
    pub hash: String,
    providers: Vec<(Target, Provider)>,
}

impl Runtime {
    pub fn new(config: PolicyConfig, hash: String, context: &ProviderContext) -> Self {
        let providers = config
            .providers
            .targets
            .iter()
            .map(|target| {
                let provider = Provider::from_target(target, context);
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
