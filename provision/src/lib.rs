//! Self-service onboarding's provisioning (SPEC §9). On approval a request
//! runs the pipeline: **team** → **config** (the template with the requested
//! budget and models, linted) → **wallet** (the monthly budget allocated) →
//! **key** (a gateway key, kept sealed for the requester to see once) →
//! **gateway** (started by the runner). Each step's status is recorded as
//! it runs; a step already done is skipped, so running the pipeline again
//! (a retry after a failure) creates nothing twice.

mod runner;

use std::sync::Arc;

use store::configs::{NewVersion, Source};
use store::onboarding::{Progress, Request, Step};
use store::{Db, Scope, Scoped, StoreError};

pub use runner::{LocalRunner, manifests};

/// The templates kt ships with (seeded when missing; admins edit them).
pub const SHIPPED_TEMPLATES: [(&str, &str); 3] = [
    ("exp", include_str!("../../configs/templates/exp.yaml")),
    ("reg", include_str!("../../configs/templates/reg.yaml")),
    ("std", include_str!("../../configs/templates/std.yaml")),
];

/// A template with a request's budget (USD per month) and models filled in:
/// the first `monthly_limit:` and `allowed_models:` keep their place and
/// comments, only their values change. A template without `allowed_models`
/// cannot hold the requested models: that is an error (the team would get
/// every model).
pub fn render(
    template: &str,
    monthly_budget_micros: i64,
    models: &[String],
) -> Result<String, String> {
    let budget = format_usd(monthly_budget_micros);
    let list = models
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    let (mut budget_done, mut models_done) = (false, false);
    let mut skip_items_deeper_than: Option<usize> = None;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = skip_items_deeper_than {
            if line.trim_start().starts_with("- ") && indent >= depth {
                continue;
            }
            skip_items_deeper_than = None;
        }
        let key = line.trim_start();
        if !budget_done && key.starts_with("monthly_limit:") {
            out.push(format!(
                "{}monthly_limit: {budget}{}",
                &line[..indent],
                comment(key)
            ));
            budget_done = true;
        } else if !models_done && key.starts_with("allowed_models:") {
            out.push(format!(
                "{}allowed_models: [{list}]{}",
                &line[..indent],
                comment(key)
            ));
            models_done = true;
            // A block list's items follow on their own lines.
            if key.trim_end() == "allowed_models:" {
                skip_items_deeper_than = Some(indent);
            }
        } else {
            out.push(line.to_owned());
        }
    }
    if !models_done {
        return Err(
            "the template has no `allowed_models` (in a model_filter policy) to hold the requested models; add one to the template and retry".to_owned(),
        );
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// A trailing `# comment` of a YAML line (with its spacing), if any.
fn comment(line: &str) -> &str {
    line.find(" #").map_or("", |i| &line[i..])
}

/// Micro-USD as a YAML number of USD (`1500000` → `1.5`).
fn format_usd(micros: i64) -> String {
    let whole = micros / 1_000_000;
    let frac = (micros % 1_000_000).abs();
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:06}")
            .trim_end_matches('0')
            .to_owned()
    }
}

/// How the installation runs tenant gateways.
pub enum Runner {
    /// `kt serve` supervises one gateway process per tenant.
    Local(Arc<LocalRunner>),
    /// Manifests are rendered for the operator (or a GitOps pipeline) to apply.
    Kubernetes,
}

/// The result of an approval: the request as it ended, and the gateway key
/// when the pipeline created it in this run (shown once).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: Request,
    pub key: Option<String>,
}

pub struct Provisioner {
    db: Db,
    key: store::crypto::MasterKey,
    runner: Runner,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner").finish_non_exhaustive()
    }
}

/// The encryption context of a request's kept gateway key.
fn key_context(id: &str) -> String {
    format!("onboarding gateway key {id}")
}

impl Provisioner {
    pub fn new(db: Db, key: store::crypto::MasterKey, runner: Runner) -> Arc<Self> {
        Arc::new(Provisioner { db, key, runner })
    }

    pub fn runner_name(&self) -> &'static str {
        match self.runner {
            Runner::Local(_) => "local",
            Runner::Kubernetes => "kubernetes",
        }
    }

    /// Seeds the shipped templates and, with the local runner, keeps the
    /// gateways of provisioned teams running (restarted when they exit,
    /// stopped when their team is archived), for as long as the process runs.
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        store::onboarding::seed_templates(&self.db, &SHIPPED_TEMPLATES).await?;
        if let Runner::Local(local) = &self.runner {
            tokio::spawn(local.clone().supervise(self.db.clone()));
        }
        Ok(())
    }

    /// Approves a request (pending, or failed: a retry) as `scoped` (an org
    /// admin) and runs the pipeline to its end. The pipeline runs in its own
    /// task: a caller that goes away does not stop it half-way.
    pub async fn approve(
        self: &Arc<Self>,
        scoped: &Scoped,
        id: &str,
    ) -> Result<Outcome, StoreError> {
        let approved = scoped.approve_onboarding(id).await?;
        let this = self.clone();
        let owned = id.to_owned();
        match tokio::spawn(async move { this.run(approved).await }).await {
            Ok(outcome) => Ok(outcome),
            Err(err) => {
                tracing::error!(error = %err, request = %owned, "the provisioning pipeline failed");
                Ok(self.outcome(&owned, None).await)
            }
        }
    }

    /// Approves, and runs the pipeline in the background (the console shows
    /// its progress).
    pub async fn approve_in_background(
        self: &Arc<Self>,
        scoped: &Scoped,
        id: &str,
    ) -> Result<Request, StoreError> {
        let approved = scoped.approve_onboarding(id).await?;
        let this = self.clone();
        let request = approved.clone();
        tokio::spawn(async move {
            this.run(request).await;
        });
        Ok(approved)
    }

    /// The requester's gateway key, once.
    pub async fn take_key(&self, scoped: &Scoped, id: &str) -> Result<Option<String>, StoreError> {
        let Some(sealed) = scoped.take_onboarding_key(id).await? else {
            return Ok(None);
        };
        let bytes = self.key.decrypt(&sealed, key_context(id).as_bytes())?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Runs every step not yet done, recording each as it goes.
    async fn run(&self, request: Request) -> Outcome {
        let id = request.onboarding_request_id.clone();
        let mut progress = Progress {
            status: "provisioning".to_owned(),
            steps: request.steps(),
            team_id: request.team_id.clone(),
            gateway_name: request.gateway_name.clone(),
            gateway_url: request.gateway_url.clone(),
            reason: None,
        };
        let approver = request
            .decided_by
            .clone()
            .unwrap_or_else(|| "kt".to_owned());
        let org = self.db.scoped(Scope::Org).acting_as(format!(
            "onboarding {} (approved by {approver})",
            &id[..8.min(id.len())]
        ));
        let mut key = None;
        for step in store::onboarding::STEPS {
            if progress
                .steps
                .iter()
                .any(|s| s.step == step && s.status == "done")
            {
                continue;
            }
            set(&mut progress.steps, step, "running", None);
            self.save(&id, &progress).await;
            let result = match step {
                "team" => self.step_team(&org, &request, &mut progress).await,
                "config" => self.step_config(&org, &request, &progress).await,
                "wallet" => self.step_wallet(&org, &request, &progress).await,
                "key" => self.step_key(&org, &request, &progress, &mut key).await,
                _ => self.step_gateway(&request, &mut progress).await,
            };
            match result {
                Ok(detail) => set(&mut progress.steps, step, "done", Some(detail)),
                Err(message) => {
                    set(&mut progress.steps, step, "failed", Some(message.clone()));
                    progress.status = "failed".to_owned();
                    progress.reason = Some(format!("{step}: {message}"));
                    self.save(&id, &progress).await;
                    return self.outcome(&id, key).await;
                }
            }
            self.save(&id, &progress).await;
        }
        progress.status = "ready".to_owned();
        self.save(&id, &progress).await;
        self.outcome(&id, key).await
    }

    async fn outcome(&self, id: &str, key: Option<String>) -> Outcome {
        let request = store::onboarding::get(&self.db, id).await.ok().flatten();
        Outcome {
            request: request.unwrap_or_else(|| unreachable_request(id)),
            key,
        }
    }

    async fn save(&self, id: &str, progress: &Progress) {
        if let Err(err) = store::onboarding::record_progress(&self.db, id, progress).await {
            tracing::error!(error = %err, request = id, "recording onboarding progress failed");
        }
    }

    async fn step_team(
        &self,
        org: &Scoped,
        r: &Request,
        progress: &mut Progress,
    ) -> Result<String, String> {
        if let Some(team_id) = &progress.team_id
            && org.get_team(team_id).await.is_ok()
        {
            return Ok(format!("team {} exists", r.team_slug));
        }
        // A team of this slug that this pipeline did not record was made by
        // someone else since the request: never take it over.
        if store::teams::by_slug(&self.db, &r.team_slug)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err(format!(
                "a team called {:?} was created by someone else since the request; reject this request",
                r.team_slug
            ));
        }
        let team = org
            .create_team(&store::teams::NewTeam {
                name: r.team_name.clone(),
                slug: r.team_slug.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        progress.team_id = Some(team.team_id);
        // Recorded at once: a retry finds the team it made.
        self.save(&r.onboarding_request_id, progress).await;
        Ok(format!("created team {}", r.team_slug))
    }

    async fn step_config(
        &self,
        org: &Scoped,
        r: &Request,
        progress: &Progress,
    ) -> Result<String, String> {
        let team_id = progress.team_id.as_deref().ok_or("no team")?;
        let template = store::onboarding::template(&self.db, &r.template)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the template {:?} no longer exists", r.template))?;
        let content = render(&template.content, r.monthly_budget_micros, &r.models())
            .map_err(|e| format!("template {:?}: {e}", r.template))?;
        if let Err(errors) = policy::parse(&content) {
            let first = errors
                .first()
                .map(|d| format!("line {}, column {}: {}", d.line, d.column, d.message))
                .unwrap_or_default();
            return Err(format!(
                "the template {:?} with this request's budget and models fails lint ({} error(s); {first}); fix the template and retry",
                r.template,
                errors.len()
            ));
        }
        let hash = policy::source_hash(&content);
        if let Ok(Some(current)) = store::configs::current(&self.db, team_id, &r.environment).await
            && current.content_hash == hash
        {
            return Ok(format!(
                "version {} of {} (unchanged)",
                current.version, r.environment
            ));
        }
        let message = format!("onboarding: template {}", r.template);
        let v = org
            .add_config(&NewVersion {
                team_id,
                environment: &r.environment,
                content: &content,
                content_hash: &hash,
                source: Source::Api,
                git_commit: None,
                git_author: None,
                message: Some(&message),
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "version {} of {} from template {} (lint clean)",
            v.version, r.environment, r.template
        ))
    }

    async fn step_wallet(
        &self,
        org: &Scoped,
        r: &Request,
        progress: &Progress,
    ) -> Result<String, String> {
        let team_id = progress.team_id.as_deref().ok_or("no team")?;
        let reason = format!("onboarding {}", r.onboarding_request_id);
        let ledger = org
            .wallet_transactions(team_id, 1000)
            .await
            .map_err(|e| e.to_string())?;
        let amount = format!("${}", format_usd(r.monthly_budget_micros));
        if ledger
            .iter()
            .any(|t| t.reason.as_deref() == Some(reason.as_str()))
        {
            return Ok(format!("{amount} allocated"));
        }
        org.allocate(team_id, r.monthly_budget_micros, Some(&reason))
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!("{amount} allocated"))
    }

    async fn step_key(
        &self,
        org: &Scoped,
        r: &Request,
        progress: &Progress,
        key: &mut Option<String>,
    ) -> Result<String, String> {
        let team_id = progress.team_id.as_deref().ok_or("no team")?;
        let name = format!("{}-{} gateway (onboarding)", r.team_slug, r.environment);
        let existing = org.list_tokens().await.map_err(|e| e.to_string())?;
        if existing.iter().any(|t| {
            t.name == name && t.team_id.as_deref() == Some(team_id) && t.revoked_at.is_none()
        }) {
            return Ok(format!("{name} exists (its secret was shown once)"));
        }
        let created = org
            .create_token(&store::tokens::NewToken {
                name: name.clone(),
                kind: store::crypto::TokenKind::Gateway,
                team_id: Some(team_id.to_owned()),
                expires_at: None,
                user_id: None,
            })
            .await
            .map_err(|e| e.to_string())?;
        let sealed = self
            .key
            .encrypt(
                created.secret.as_bytes(),
                key_context(&r.onboarding_request_id).as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        store::onboarding::keep_key(&self.db, &r.onboarding_request_id, &sealed)
            .await
            .map_err(|e| e.to_string())?;
        *key = Some(created.secret);
        Ok(format!("created {name} ({})", created.row.prefix))
    }

    async fn step_gateway(&self, r: &Request, progress: &mut Progress) -> Result<String, String> {
        let name = format!("{}-{}", r.team_slug, r.environment);
        match &self.runner {
            Runner::Local(local) => {
                let url = local
                    .ensure(&self.db, &name, &r.team_slug, &r.environment)
                    .await?;
                progress.gateway_name = Some(name.clone());
                progress.gateway_url = Some(url.clone());
                Ok(format!("{name} running at {url}"))
            }
            Runner::Kubernetes => {
                progress.gateway_name = Some(name.clone());
                Ok(format!(
                    "manifests for namespace tenant-{} rendered: GET /v1/onboarding/requests/{}/manifests, then kubectl apply",
                    r.team_slug, r.onboarding_request_id
                ))
            }
        }
    }
}

fn set(steps: &mut Vec<Step>, step: &str, status: &str, detail: Option<String>) {
    let at = Some(store::now_ms());
    match steps.iter_mut().find(|s| s.step == step) {
        Some(s) => {
            s.status = status.to_owned();
            if detail.is_some() || status == "running" {
                s.detail = detail;
            }
            s.at = at;
        }
        None => steps.push(Step {
            step: step.to_owned(),
            status: status.to_owned(),
            detail,
            at,
        }),
    }
}

/// Only when the request vanished mid-run (deleted from the database).
fn unreachable_request(id: &str) -> Request {
    Request {
        onboarding_request_id: id.to_owned(),
        team_name: String::new(),
        team_slug: String::new(),
        lead_email: String::new(),
        use_case: String::new(),
        template: String::new(),
        monthly_budget_micros: 0,
        models: "[]".to_owned(),
        environment: String::new(),
        status: "failed".to_owned(),
        reason: Some("the request disappeared while it was provisioned".to_owned()),
        steps: "[]".to_owned(),
        team_id: None,
        gateway_name: None,
        gateway_url: None,
        key_sealed: None,
        requested_by: String::new(),
        created_at: 0,
        decided_by: None,
        decided_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_get_the_budget_and_models_and_stay_lint_clean() {
        for (name, template) in SHIPPED_TEMPLATES {
            assert!(policy::parse(template).is_ok(), "{name} is lint clean");
            let models = vec!["gpt-4o-mini".to_owned(), "claude-*".to_owned()];
            let text = render(template, 1_250_000_000, &models).unwrap_or_default();
            let config = policy::parse(&text);
            assert!(config.is_ok(), "{name} rendered: {text}");
            assert!(text.contains("monthly_limit: 1250"), "{name}: {text}");
            assert!(
                text.contains(r#"allowed_models: ["gpt-4o-mini", "claude-*"]"#),
                "{name}: {text}"
            );
        }
        let block = "policies:\n  - name: m\n    type: model_filter\n    allowed_models:\n      - a\n      - b\n    enabled: true\n";
        let text = render(block, 1, &["x".to_owned()]).unwrap_or_default();
        assert_eq!(
            text,
            "policies:\n  - name: m\n    type: model_filter\n    allowed_models: [\"x\"]\n    enabled: true\n"
        );
        assert!(render("policies: []\n", 1, &["x".to_owned()]).is_err());
        assert_eq!(format_usd(1_500_000), "1.5");
        assert_eq!(format_usd(20_000_000), "20");
    }
}
