//! Tenant scoping, applied in one place.
//!
//! Every read or write of tenant data made on behalf of an API caller or a
//! console user goes through a [`Scoped`] handle. A team-scoped handle cannot
//! see another team's rows: they are filtered out in SQL, so another team's
//! object looks exactly like one that does not exist.

use std::collections::HashMap;

use serde_json::json;

use crate::audit::{AuditFilter, AuditRow};
use crate::budgets::{Balance, WalletRow, WalletTransaction};
use crate::configs::{self, ConfigVersion, NewVersion};
use crate::crypto::MasterKey;
use crate::events::{EventFilter, EventGroup, EventPage, EventRow, GroupBy, Totals};
use crate::gateways::GatewayRow;
use crate::rollups::{self, Histogram, PolicyCount, RollupFilter, Spend, SpendBy, VerdictHour};
use crate::secrets::{ProviderDefault, SecretRow};
use crate::teams::{NewTeam, Team};
use crate::tokens::{CreatedToken, NewToken, TokenRow};
use crate::users::User;
use crate::{
    Db, Result, StoreError, Tx, audit, budgets, events, gateways, secrets, teams, tokens, users,
};

/// A short digest of a text, for audit entries that must not copy it.
fn hash_text(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// Whose data a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The platform team: everything.
    Org,
    /// One tenant, by `team_id`.
    Team(String),
}

impl Scope {
    /// The team filter to apply in SQL (`None` = all teams).
    fn team_filter(&self) -> Option<&str> {
        match self {
            Scope::Org => None,
            Scope::Team(id) => Some(id),
        }
    }

    /// Whether this scope may act on `team_id`.
    fn covers(&self, team_id: Option<&str>) -> bool {
        match self {
            Scope::Org => true,
            Scope::Team(own) => team_id == Some(own.as_str()),
        }
    }
}

/// A database handle restricted to a [`Scope`].
#[derive(Debug, Clone)]
pub struct Scoped {
    db: Db,
    scope: Scope,
    /// Who acts, as recorded in the audit log.
    actor: String,
    /// The console user behind the handle (a session or a personal API
    /// token); `None` for a team or org token, which acts as itself.
    user: Option<User>,
}

impl Scoped {
    pub(crate) fn new(db: Db, scope: Scope) -> Self {
        Self {
            db,
            scope,
            actor: "system".to_owned(),
            user: None,
        }
    }

    /// The same handle, acting for a console user (reviewer checks need to
    /// know who the person is).
    pub fn as_user(mut self, user: User) -> Self {
        self.user = Some(user);
        self
    }

    /// The console user behind the handle, if any.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// An org admin: the org scope, as an org token or an admin user (not an
    /// org-wide viewer).
    pub fn is_org_admin(&self) -> bool {
        self.scope == Scope::Org && self.user.as_ref().is_none_or(|u| u.role == "admin")
    }

    /// The same handle, recording its changes as made by `actor` (a token's
    /// name and id, a console user's email).
    pub fn acting_as(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Records the change made in `tx` in the audit log, in the same
    /// transaction, and commits both: a change is never without its entry,
    /// and an entry never describes a change that was rolled back.
    async fn commit_audited(
        &self,
        mut tx: Tx,
        team_id: Option<&str>,
        action: &str,
        target: (&str, &str),
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<()> {
        let change = audit::Change {
            actor: &self.actor,
            team_id,
            action,
            target_type: target.0,
            target_id: target.1,
            before,
            after,
        };
        audit::record(&mut tx, change).await?;
        tx.commit().await
    }

    /// Audit entries the caller may see (a team sees its own team's).
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        audit::list(&self.db, self.scope.team_filter(), filter).await
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The unscoped database, for data that belongs to no tenant (the price
    /// catalog). Tenant data must go through the scoped methods.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>> {
        teams::list(&self.db, self.scope.team_filter()).await
    }

    /// Renames a team: org admins only.
    pub async fn rename_team(&self, team_id: &str, name: &str) -> Result<Team> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let before = self.get_team(team_id).await?;
        let mut tx = self.db.begin().await?;
        let team = teams::rename(&mut tx, team_id, name)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit_audited(
            tx,
            Some(team_id),
            "team.rename",
            ("team", team_id),
            Some(json!({"name": before.name})),
            Some(json!({"name": team.name})),
        )
        .await?;
        Ok(team)
    }

    /// Archives a team (its keys and tokens stop working): org admins only.
    pub async fn archive_team(&self, team_id: &str) -> Result<Team> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let before = self.get_team(team_id).await?;
        if before.archived_at.is_some() {
            return Ok(before);
        }
        let mut tx = self.db.begin().await?;
        let team = teams::archive(&mut tx, team_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit_audited(
            tx,
            Some(team_id),
            "team.archive",
            ("team", team_id),
            Some(json!({"archived": false})),
            Some(json!({"archived": true})),
        )
        .await?;
        Ok(team)
    }

    /// The console users of a team.
    pub async fn team_members(&self, team_id: &str) -> Result<Vec<User>> {
        self.get_team(team_id).await?;
        users::members(&self.db, team_id).await
    }

    /// Puts an existing console user in a team with a team role, or (with
    /// `role` `None`) takes them out: org admins only.
    pub async fn set_member(&self, team_id: &str, email: &str, role: Option<&str>) -> Result<User> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        self.get_team(team_id).await?;
        let before = users::by_email(&self.db, email)
            .await?
            .ok_or(StoreError::NotFound)?;
        if role.is_none() && before.team_id.as_deref() != Some(team_id) {
            return Err(StoreError::NotFound);
        }
        if before.role == "admin" {
            return Err(StoreError::Invalid(format!(
                "{email} is an org admin, who sees every team: org admins are not team members"
            )));
        }
        let mut tx = self.db.begin().await?;
        let user = match role {
            Some(role) => users::set_membership(&mut tx, email, Some(team_id), role).await?,
            None => users::set_membership(&mut tx, email, None, "viewer").await?,
        }
        .ok_or(StoreError::NotFound)?;
        self.commit_audited(
            tx,
            Some(team_id),
            if role.is_some() {
                "member.set"
            } else {
                "member.remove"
            },
            ("user", &user.user_id),
            Some(json!({"email": before.email, "team_id": before.team_id, "role": before.role})),
            Some(json!({"email": user.email, "team_id": user.team_id, "role": user.role})),
        )
        .await?;
        Ok(user)
    }

    pub async fn get_team(&self, team_id: &str) -> Result<Team> {
        if !self.scope.covers(Some(team_id)) {
            return Err(StoreError::NotFound);
        }
        teams::get(&self.db, team_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Only the org may create teams.
    pub async fn create_team(&self, new: &NewTeam) -> Result<Team> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.db.begin().await?;
        let team = teams::create(&mut tx, new).await?;
        self.commit_audited(
            tx,
            Some(&team.team_id),
            "team.create",
            ("team", &team.team_id),
            None,
            Some(json!({"name": team.name, "slug": team.slug})),
        )
        .await?;
        Ok(team)
    }

    /// Creates a token. A team-scoped caller may only create tokens of its own
    /// team; org-wide access tokens (no team) need the org scope.
    pub async fn create_token(&self, new: &NewToken) -> Result<CreatedToken> {
        if !self.scope.covers(new.team_id.as_deref()) {
            return Err(match new.team_id {
                Some(_) => StoreError::NotFound,
                None => StoreError::Forbidden,
            });
        }
        if let Some(user_id) = &new.user_id {
            self.check_personal_token(user_id, new).await?;
        }
        if let Some(team_id) = &new.team_id
            && let Some(team) = teams::get(&self.db, team_id).await?
            && team.archived_at.is_some()
        {
            return Err(StoreError::Invalid(format!(
                "team `{}` is archived: its keys and tokens no longer work",
                team.slug
            )));
        }
        let mut tx = self.db.begin().await?;
        let created = tokens::create(&mut tx, new).await?;
        let row = &created.row;
        self.commit_audited(
            tx,
            row.team_id.as_deref(),
            "token.create",
            ("token", &row.token_id),
            None,
            Some(json!({"name": row.name, "token_type": row.token_type, "team_id": row.team_id, "prefix": row.prefix, "user_id": row.user_id})),
        )
        .await?;
        Ok(created)
    }

    /// A personal token is made by an org admin or by its user, and has
    /// exactly its user's scope.
    async fn check_personal_token(&self, user_id: &str, new: &NewToken) -> Result<()> {
        let user = users::get(&self.db, user_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if !self.is_org_admin() && self.user.as_ref().map(|u| &u.user_id) != Some(&user.user_id) {
            return Err(StoreError::Denied(format!(
                "only an org admin or {} may create {}'s personal token",
                user.email, user.email
            )));
        }
        if !user.may_hold_api_token() {
            return Err(StoreError::Invalid(format!(
                "{} is a {}: personal API tokens are for org admins and team leads (reviewers with another role review in the console)",
                user.email, user.role
            )));
        }
        let expected = if user.role == "admin" {
            None
        } else {
            user.team_id.as_deref()
        };
        if new.team_id.as_deref() != expected {
            return Err(StoreError::Invalid(format!(
                "a personal token has its user's scope: {}",
                expected.map_or_else(|| "org-wide (no team)".to_owned(), |t| format!("team {t}"))
            )));
        }
        Ok(())
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        tokens::list(&self.db, self.scope.team_filter()).await
    }

    pub async fn revoke_token(&self, token_id: &str) -> Result<TokenRow> {
        let mut tx = self.db.begin().await?;
        let row = tokens::revoke(&mut tx, token_id, self.scope.team_filter()).await?;
        self.commit_audited(
            tx,
            row.team_id.as_deref(),
            "token.revoke",
            ("token", &row.token_id),
            Some(json!({"name": row.name, "revoked": false})),
            Some(json!({"name": row.name, "revoked": true})),
        )
        .await?;
        Ok(row)
    }

    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRow>> {
        events::list(&self.db, self.scope.team_filter(), filter).await
    }

    pub async fn totals(&self, since_ms: i64) -> Result<Totals> {
        events::totals(&self.db, self.scope.team_filter(), since_ms).await
    }

    /// Requests per hour since `since_ms`: `(bucket_start_ms, requests, cost_micros)`.
    pub async fn hourly(&self, since_ms: i64) -> Result<Vec<(i64, i64, i64)>> {
        events::hourly(&self.db, self.scope.team_filter(), since_ms).await
    }

    /// Adds a (lint-clean) configuration version for a team's environment.
    pub async fn add_config(&self, new: &NewVersion<'_>) -> Result<ConfigVersion> {
        self.get_team(new.team_id).await?;
        let mut tx = self.db.begin().await?;
        let version = configs::add(&mut tx, new, &self.actor).await?;
        crate::webhooks::enqueue(
            &mut tx,
            "config.deployed",
            json!({
                "team_id": new.team_id,
                "environment": version.environment,
                "version": version.version,
                "content_hash": version.content_hash,
                "source": version.source,
                "author": self.actor,
            }),
        )
        .await?;
        self.commit_audited(
            tx,
            Some(new.team_id),
            "config.version",
            ("config", &format!("{}/{}", new.team_id, new.environment)),
            None,
            Some(json!({
                "environment": version.environment,
                "version": version.version,
                "content_hash": version.content_hash,
                "source": version.source,
                "message": version.message,
            })),
        )
        .await?;
        Ok(version)
    }

    /// A team's configuration versions, newest first.
    pub async fn list_configs(
        &self,
        team_id: &str,
        environment: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConfigVersion>> {
        self.get_team(team_id).await?;
        configs::list(&self.db, team_id, environment, limit).await
    }

    /// One version of a team's environment.
    pub async fn get_config(
        &self,
        team_id: &str,
        environment: &str,
        version: i64,
    ) -> Result<ConfigVersion> {
        self.get_team(team_id).await?;
        configs::get(&self.db, team_id, environment, version)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Links a Git repository: org admins only.
    pub async fn link_repo(
        &self,
        new: &crate::git_repos::NewRepo<'_>,
    ) -> Result<crate::git_repos::GitRepo> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.db.begin().await?;
        let repo = crate::git_repos::create(&mut tx, new, &self.actor).await?;
        self.commit_audited(
            tx,
            None,
            "git_repo.link",
            ("git_repo", &repo.git_repo_id),
            None,
            Some(json!({
                "repo_url": repo.repo_url,
                "path": repo.path,
                "branches": repo.branches,
                "access_token": new.access_token_sealed.as_ref().map(|_| "***"),
            })),
        )
        .await?;
        Ok(repo)
    }

    /// Unlinks a Git repository (versions it made stay): org admins only.
    pub async fn unlink_repo(&self, id: &str) -> Result<()> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let repo = crate::git_repos::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.db.begin().await?;
        crate::git_repos::delete(&mut tx, id).await?;
        self.commit_audited(
            tx,
            None,
            "git_repo.unlink",
            ("git_repo", id),
            Some(json!({"repo_url": repo.repo_url, "path": repo.path, "branches": repo.branches})),
            None,
        )
        .await?;
        Ok(())
    }

    /// The linked repositories: org admins only.
    pub async fn list_repos(&self) -> Result<Vec<crate::git_repos::GitRepo>> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        crate::git_repos::list(&self.db).await
    }

    /// One repository and its last sync per branch: org admins only.
    pub async fn get_repo(
        &self,
        id: &str,
    ) -> Result<(crate::git_repos::GitRepo, Vec<crate::git_repos::GitSync>)> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let repo = crate::git_repos::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let syncs = crate::git_repos::syncs(&self.db, id).await?;
        Ok((repo, syncs))
    }

    /// The current configuration hash of each (team, environment) the
    /// caller may see: the fleet's desired configs.
    pub async fn desired_config_hashes(&self) -> Result<Vec<(String, String, String)>> {
        let all = configs::current_hashes(&self.db).await?;
        Ok(all
            .into_iter()
            .filter(|(team, _, _)| self.scope.covers(Some(team)))
            .collect())
    }

    /// Makes an old version current again, as a new version with its content.
    pub async fn rollback_config(
        &self,
        team_id: &str,
        environment: &str,
        version: i64,
        source: configs::Source,
    ) -> Result<ConfigVersion> {
        let old = self.get_config(team_id, environment, version).await?;
        let message = format!("rollback to version {version}");
        self.add_config(&NewVersion {
            team_id,
            environment,
            content: &old.content,
            content_hash: &old.content_hash,
            source,
            git_commit: None,
            git_author: None,
            message: Some(&message),
        })
        .await
    }

    /// Requests and spend per hour and verdict (console charts).
    pub async fn verdict_hours(&self, f: &RollupFilter) -> Result<Vec<VerdictHour>> {
        rollups::verdict_hours(&self.db, self.scope.team_filter(), f).await
    }

    /// The latency histogram of a range (p50 / p95 with [`rollups::quantile`]).
    pub async fn latency_histogram(&self, f: &RollupFilter) -> Result<Histogram> {
        rollups::latency(&self.db, self.scope.team_filter(), f).await
    }

    /// The policies that fired most often in a range.
    pub async fn top_policies(&self, f: &RollupFilter, limit: i64) -> Result<Vec<PolicyCount>> {
        rollups::top_policies(&self.db, self.scope.team_filter(), f, limit).await
    }

    /// Spend per team, model or hour in a range.
    pub async fn spend_by(&self, f: &RollupFilter, by: SpendBy) -> Result<Vec<Spend>> {
        rollups::spend_by(&self.db, self.scope.team_filter(), f, by).await
    }

    /// Console users: every user for the org, a team's members otherwise.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        match self.scope.team_filter() {
            None => users::list_all(&self.db).await,
            Some(team) => users::members(&self.db, team).await,
        }
    }

    /// Creates a console user with a role (and, for team roles, a team):
    /// org admins only. `password_hash` is an argon2id hash.
    pub async fn invite_user(
        &self,
        email: &str,
        role: &str,
        team_id: Option<&str>,
        password_hash: &str,
    ) -> Result<User> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        users::validate_email(email).map_err(StoreError::Invalid)?;
        let team_id = self.check_role(role, team_id).await?;
        let mut tx = self.db.begin().await?;
        let user = users::create(&mut tx, email, password_hash, role).await?;
        let user = match team_id {
            Some(team) => users::set_role(&mut tx, &user.user_id, role, Some(team))
                .await?
                .ok_or(StoreError::NotFound)?,
            None => user,
        };
        self.commit_audited(
            tx,
            user.team_id.as_deref(),
            "user.invite",
            ("user", &user.user_id),
            None,
            Some(json!({"email": user.email, "role": user.role, "team_id": user.team_id})),
        )
        .await?;
        Ok(user)
    }

    /// Changes a user's role and team: org admins only.
    pub async fn set_user_role(
        &self,
        user_id: &str,
        role: &str,
        team_id: Option<&str>,
    ) -> Result<User> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let team_id = self.check_role(role, team_id).await?;
        let before = users::get(&self.db, user_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.db.begin().await?;
        let user = users::set_role(&mut tx, user_id, role, team_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit_audited(
            tx,
            user.team_id.as_deref().or(before.team_id.as_deref()),
            "user.role",
            ("user", &user.user_id),
            Some(json!({"email": before.email, "role": before.role, "team_id": before.team_id})),
            Some(json!({"email": user.email, "role": user.role, "team_id": user.team_id})),
        )
        .await?;
        Ok(user)
    }

    /// Deletes a console user: org admins only.
    pub async fn remove_user(&self, user_id: &str) -> Result<User> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.db.begin().await?;
        let user = users::delete(&mut tx, user_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit_audited(
            tx,
            user.team_id.as_deref(),
            "user.remove",
            ("user", &user.user_id),
            Some(json!({"email": user.email, "role": user.role, "team_id": user.team_id})),
            None,
        )
        .await?;
        Ok(user)
    }

    /// A role and team that go together: admins have no team, team leads and
    /// members need one, viewers may have one (or read the whole org's costs).
    async fn check_role<'t>(
        &self,
        role: &str,
        team_id: Option<&'t str>,
    ) -> Result<Option<&'t str>> {
        if !users::ROLES.contains(&role) {
            return Err(StoreError::Invalid(format!(
                "unknown role {role:?}; expected one of {}",
                users::ROLES.join(", ")
            )));
        }
        let team_id = team_id.filter(|t| !t.is_empty());
        match (role, team_id) {
            ("admin", Some(_)) => Err(StoreError::Invalid(
                "org admins see every team; leave the team empty".to_owned(),
            )),
            ("team_lead" | "member", None) => Err(StoreError::Invalid(format!(
                "a {role} belongs to a team; choose one"
            ))),
            (_, Some(team)) => {
                let team_row = self.get_team(team).await?;
                if team_row.archived_at.is_some() {
                    return Err(StoreError::Invalid(format!(
                        "team {} is archived",
                        team_row.slug
                    )));
                }
                Ok(Some(team))
            }
            (_, None) => Ok(None),
        }
    }

    pub async fn list_gateways(&self) -> Result<Vec<GatewayRow>> {
        let all = gateways::list(&self.db).await?;
        Ok(match self.scope.team_filter() {
            None => all,
            // A gateway serving several teams shows a team only itself: the
            // other teams it serves are not this tenant's business.
            Some(team) => all
                .into_iter()
                .filter(|g| g.serves(team))
                .map(|mut g| {
                    if !g.teams.is_empty() {
                        g.teams = team.to_owned();
                    }
                    g
                })
                .collect(),
        })
    }

    /// Allocates credit to a team's wallet: org admins only.
    pub async fn allocate(
        &self,
        team_id: &str,
        amount_micros: i64,
        reason: Option<&str>,
    ) -> Result<WalletRow> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        teams::get(&self.db, team_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let before = budgets::balance(&self.db, team_id, crate::now_ms())
            .await?
            .wallet
            .map(
                |w| json!({"allocated_micros": w.allocated_micros, "spent_micros": w.spent_micros}),
            );
        let mut tx = self.db.begin().await?;
        let wallet =
            budgets::allocate(&mut tx, team_id, amount_micros, &self.actor, reason).await?;
        self.commit_audited(
            tx,
            Some(team_id),
            "wallet.allocate",
            ("wallet", team_id),
            before,
            Some(json!({"allocated_micros": wallet.allocated_micros, "spent_micros": wallet.spent_micros, "amount_micros": amount_micros, "reason": reason})),
        )
        .await?;
        Ok(wallet)
    }

    pub async fn wallet_balance(&self, team_id: &str) -> Result<Balance> {
        self.get_team(team_id).await?;
        budgets::balance(&self.db, team_id, crate::now_ms()).await
    }

    /// The balance of every team in scope that has a wallet or holds
    /// budget leases (two queries, whatever the number of teams).
    pub async fn wallet_balances(&self) -> Result<HashMap<String, Balance>> {
        budgets::balances(&self.db, self.scope.team_filter(), crate::now_ms()).await
    }

    pub async fn wallet_transactions(
        &self,
        team_id: &str,
        limit: i64,
    ) -> Result<Vec<WalletTransaction>> {
        self.get_team(team_id).await?;
        budgets::transactions(&self.db, team_id, limit).await
    }

    /// The team a secret belongs to: `None` = org-wide, which needs the org
    /// scope; another team's answers 404.
    async fn secret_team(&self, team_id: Option<&str>) -> Result<String> {
        match team_id {
            None if self.scope == Scope::Org => Ok(String::new()),
            None => Err(StoreError::Forbidden),
            Some(team) => {
                self.get_team(team).await?;
                Ok(team.to_owned())
            }
        }
    }

    /// Stores or replaces a secret; `true` when it was new.
    pub async fn put_secret(
        &self,
        key: &MasterKey,
        name: &str,
        team_id: Option<&str>,
        value: &str,
    ) -> Result<(SecretRow, bool)> {
        let team = self.secret_team(team_id).await?;
        let mut tx = self.db.begin().await?;
        let (row, created) = secrets::put(&mut tx, key, name, &team, value, &self.actor).await?;
        // The value never enters the audit log: only that it changed.
        let masked = json!({"name": name, "team_id": team_id, "value": "***"});
        self.commit_audited(
            tx,
            team_id,
            if created {
                "secret.create"
            } else {
                "secret.replace"
            },
            ("secret", name),
            (!created).then(|| masked.clone()),
            Some(masked),
        )
        .await?;
        Ok((row, created))
    }

    /// Names of the secrets the caller may see (a team sees its own).
    pub async fn list_secrets(&self) -> Result<Vec<SecretRow>> {
        secrets::list(&self.db, self.scope.team_filter()).await
    }

    pub async fn delete_secret(&self, name: &str, team_id: Option<&str>) -> Result<()> {
        let team = self.secret_team(team_id).await?;
        let mut tx = self.db.begin().await?;
        secrets::delete(&mut tx, name, &team).await?;
        self.commit_audited(
            tx,
            team_id,
            "secret.delete",
            ("secret", name),
            Some(json!({"name": name, "team_id": team_id, "value": "***"})),
            None,
        )
        .await?;
        Ok(())
    }

    /// Org-wide provider defaults: org admins only.
    pub async fn set_provider(
        &self,
        kind: &str,
        base_url: Option<&str>,
        secret_name: Option<&str>,
    ) -> Result<ProviderDefault> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let before = secrets::providers(&self.db)
            .await?
            .into_iter()
            .find(|p| p.kind == kind)
            .map(|p| json!({"base_url": p.base_url, "secret": p.secret_name}));
        let mut tx = self.db.begin().await?;
        let row = secrets::set_provider(&mut tx, kind, base_url, secret_name, &self.actor).await?;
        self.commit_audited(
            tx,
            None,
            "provider.set",
            ("provider", kind),
            before,
            Some(json!({"base_url": row.base_url, "secret": row.secret_name})),
        )
        .await?;
        Ok(row)
    }

    /// Replaces (or adds) a policy template: org admins only. The caller
    /// has linted `content`.
    pub async fn put_template(
        &self,
        name: &str,
        content: &str,
    ) -> Result<crate::onboarding::Template> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        teams::validate_slug(name)
            .map_err(|e| StoreError::Invalid(format!("template name: {e}")))?;
        let before = crate::onboarding::template(&self.db, name).await?;
        let mut tx = self.db.begin().await?;
        let t = crate::onboarding::put_template(&mut tx, name, content, &self.actor).await?;
        self.commit_audited(
            tx,
            None,
            "template.put",
            ("template", name),
            before.map(|b| json!({"content_hash": hash_text(&b.content)})),
            Some(json!({"content_hash": hash_text(&t.content)})),
        )
        .await?;
        Ok(t)
    }

    /// Files an onboarding request (anyone signed in may ask).
    pub async fn request_onboarding(
        &self,
        new: &crate::onboarding::NewRequest,
    ) -> Result<crate::onboarding::Request> {
        crate::onboarding::validate(new).map_err(StoreError::Invalid)?;
        if crate::onboarding::template(&self.db, &new.template)
            .await?
            .is_none()
        {
            return Err(StoreError::Invalid(format!(
                "`template`: no template called {:?} (GET /v1/templates lists them)",
                new.template
            )));
        }
        if teams::by_slug(&self.db, &new.team_slug).await?.is_some() {
            return Err(StoreError::Invalid(format!(
                "`team_slug`: a team called {:?} already exists",
                new.team_slug
            )));
        }
        let mut tx = self.db.begin().await?;
        let r = crate::onboarding::create(&mut tx, new, &self.actor).await?;
        self.commit_audited(
            tx,
            None,
            "onboarding.request",
            ("onboarding_request", &r.onboarding_request_id),
            None,
            Some(json!({"team_slug": r.team_slug, "template": r.template, "environment": r.environment, "monthly_budget_micros": r.monthly_budget_micros, "models": r.models()})),
        )
        .await?;
        Ok(r)
    }

    /// Onboarding requests: every one for the org, the caller's own otherwise.
    pub async fn list_onboarding(&self, limit: i64) -> Result<Vec<crate::onboarding::Request>> {
        let mine = (self.scope != Scope::Org).then_some(self.actor.as_str());
        crate::onboarding::list(&self.db, mine, limit).await
    }

    /// One request (another requester's answers 404 unless org).
    pub async fn get_onboarding(&self, id: &str) -> Result<crate::onboarding::Request> {
        let r = crate::onboarding::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if self.scope == Scope::Org || r.requested_by == self.actor {
            Ok(r)
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Moves a request from pending (or failed, to retry) to provisioning:
    /// org admins only; the pipeline then runs. Conflict when it is in
    /// another state.
    pub async fn approve_onboarding(&self, id: &str) -> Result<crate::onboarding::Request> {
        self.decide_onboarding(
            id,
            &["pending", "failed"],
            "provisioning",
            "onboarding.approve",
            None,
        )
        .await
    }

    /// Rejects a pending (or failed) request with a reason: org admins only.
    pub async fn reject_onboarding(
        &self,
        id: &str,
        reason: &str,
    ) -> Result<crate::onboarding::Request> {
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "`reason`: say why, for the requester".to_owned(),
            ));
        }
        self.decide_onboarding(
            id,
            &["pending", "failed"],
            "rejected",
            "onboarding.reject",
            Some(reason.trim()),
        )
        .await
    }

    async fn decide_onboarding(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        action: &str,
        reason: Option<&str>,
    ) -> Result<crate::onboarding::Request> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let before = self.get_onboarding(id).await?;
        let mut tx = self.db.begin().await?;
        let Some(r) =
            crate::onboarding::transition(&mut tx, id, from, to, &self.actor, reason).await?
        else {
            return Err(StoreError::Conflict(format!(
                "the request is {}, not {}",
                before.status,
                from.join(" or ")
            )));
        };
        self.commit_audited(
            tx,
            r.team_id.as_deref(),
            action,
            ("onboarding_request", id),
            Some(json!({"status": before.status})),
            Some(json!({"status": r.status, "reason": r.reason})),
        )
        .await?;
        Ok(r)
    }

    /// The new team's gateway key, sealed, for its requester, once.
    pub async fn take_onboarding_key(&self, id: &str) -> Result<Option<String>> {
        let r = self.get_onboarding(id).await?;
        if r.requested_by != self.actor {
            return Ok(None);
        }
        crate::onboarding::take_key(&self.db, id).await
    }

    /// Escalations of the caller's team (every team's for the org), newest
    /// first; `status`: pending, claimed, expired, resolved, approved, denied.
    pub async fn list_escalations(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<crate::escalations::Escalation>> {
        crate::escalations::list(&self.db, self.scope.team_filter(), status, limit).await
    }

    /// One escalation; another team's answers 404.
    pub async fn get_escalation(&self, id: &str) -> Result<crate::escalations::Escalation> {
        let e = crate::escalations::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if self.scope.covers(Some(&e.team_id)) {
            Ok(e)
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// A team's designated reviewers (escalations go to the org admins when
    /// there are none).
    pub async fn team_reviewers(&self, team_id: &str) -> Result<Vec<crate::escalations::Reviewer>> {
        self.get_team(team_id).await?;
        crate::escalations::reviewers(&self.db, team_id).await
    }

    /// Names a team's reviewers (replacing the list; empty = the org
    /// admins review): org admins, or a team lead of that team. Each must be
    /// a member of the team who is not a viewer.
    pub async fn set_team_reviewers(
        &self,
        team_id: &str,
        emails: &[String],
    ) -> Result<Vec<crate::escalations::Reviewer>> {
        let team = self.get_team(team_id).await?;
        let lead = self
            .user
            .as_ref()
            .is_some_and(|u| u.role == "team_lead" && u.team_id.as_deref() == Some(team_id));
        if !self.is_org_admin() && !lead {
            return Err(StoreError::Denied(format!(
                "only an org admin or a team lead of {} may name its reviewers",
                team.slug
            )));
        }
        let mut ids: Vec<String> = Vec::new();
        for email in emails {
            let email = email.trim();
            let Some(user) = users::by_email(&self.db, email).await? else {
                return Err(StoreError::Invalid(format!(
                    "there is no console user {email}: create the user first"
                )));
            };
            if user.team_id.as_deref() != Some(team_id) || user.role == "admin" {
                return Err(StoreError::Invalid(format!(
                    "{email} is not a member of team {}: add them to the team first",
                    team.slug
                )));
            }
            if user.role == "viewer" {
                return Err(StoreError::Invalid(format!(
                    "{email} is a viewer, who only reads: give them the member or team_lead role to review"
                )));
            }
            if !ids.contains(&user.user_id) {
                ids.push(user.user_id);
            }
        }
        let before: Vec<String> = crate::escalations::reviewers(&self.db, team_id)
            .await?
            .into_iter()
            .map(|r| r.email)
            .collect();
        let mut tx = self.db.begin().await?;
        crate::escalations::set_reviewers(&mut tx, team_id, &ids).await?;
        let mut named: Vec<&str> = emails.iter().map(|e| e.trim()).collect();
        named.sort_unstable();
        named.dedup();
        self.commit_audited(
            tx,
            Some(team_id),
            "team.reviewers",
            ("team", team_id),
            Some(json!({"reviewers": before})),
            Some(json!({"reviewers": named})),
        )
        .await?;
        crate::escalations::reviewers(&self.db, team_id).await
    }

    /// Whether the caller decides on `team_id`'s escalations: one of its
    /// designated reviewers, or an org admin when it names none.
    pub async fn reviews(&self, team_id: &str) -> Result<bool> {
        let named = crate::escalations::reviewers(&self.db, team_id).await?;
        Ok(if named.is_empty() {
            self.is_org_admin()
        } else {
            self.user
                .as_ref()
                .is_some_and(|u| named.iter().any(|r| r.user_id == u.user_id))
        })
    }

    async fn check_reviewer(&self, team_id: &str) -> Result<()> {
        if self.reviews(team_id).await? {
            return Ok(());
        }
        let (to, named) = crate::escalations::routed_to(&self.db, team_id).await?;
        Err(StoreError::Denied(if named {
            format!(
                "this team's escalations go to its reviewers ({}); a team lead or an org admin can change them",
                to.join(", ")
            )
        } else {
            "this team names no reviewers, so its escalations go to the org admins; a team lead or an org admin can name reviewers".to_owned()
        }))
    }

    /// Claims (`true`) or unclaims an open escalation of the caller's team.
    pub async fn claim_escalation(
        &self,
        id: &str,
        claim: bool,
    ) -> Result<crate::escalations::Escalation> {
        let before = self.get_escalation(id).await?;
        self.check_reviewer(&before.team_id).await?;
        let mut tx = self.db.begin().await?;
        let actor = claim.then_some(self.actor.as_str());
        let Some(e) = crate::escalations::set_claim(&mut tx, id, actor).await? else {
            return Err(StoreError::Conflict(format!(
                "the escalation is {}",
                before.shown_status(crate::now_ms())
            )));
        };
        self.commit_audited(
            tx,
            Some(&e.team_id),
            if claim {
                "escalation.claim"
            } else {
                "escalation.unclaim"
            },
            ("escalation", id),
            Some(json!({"status": before.status, "claimed_by": before.claimed_by})),
            Some(json!({"status": e.status, "claimed_by": e.claimed_by})),
        )
        .await?;
        Ok(e)
    }

    /// Approves or denies an open escalation of the caller's team.
    pub async fn resolve_escalation(
        &self,
        id: &str,
        outcome: &str,
        note: Option<&str>,
    ) -> Result<crate::escalations::Escalation> {
        let before = self.get_escalation(id).await?;
        self.check_reviewer(&before.team_id).await?;
        let mut tx = self.db.begin().await?;
        let Some(e) = crate::escalations::resolve(&mut tx, id, outcome, &self.actor, note).await?
        else {
            return Err(StoreError::Conflict(format!(
                "the escalation is {}",
                before.shown_status(crate::now_ms())
            )));
        };
        crate::webhooks::enqueue(
            &mut tx,
            "escalation.resolved",
            json!({
                "escalation_id": e.escalation_id,
                "team_id": e.team_id,
                "policy": e.policy,
                "outcome": e.status,
                "resolved_by": e.resolved_by,
                "note": e.note,
            }),
        )
        .await?;
        self.commit_audited(
            tx,
            Some(&e.team_id),
            "escalation.resolve",
            ("escalation", id),
            Some(json!({"status": before.status})),
            Some(json!({"status": e.status, "note": e.note})),
        )
        .await?;
        Ok(e)
    }

    /// Adds a webhook (org admins); `secret_sealed` is its HMAC key, sealed.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[String],
        secret_sealed: &str,
    ) -> Result<crate::webhooks::Webhook> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.db.begin().await?;
        let hook =
            crate::webhooks::create(&mut tx, url, events, secret_sealed, &self.actor).await?;
        self.commit_audited(
            tx,
            None,
            "webhook.create",
            ("webhook", &hook.webhook_id),
            None,
            Some(json!({"url": hook.url, "events": events, "secret": "***"})),
        )
        .await?;
        Ok(hook)
    }

    /// The webhooks (org admins).
    pub async fn list_webhooks(&self) -> Result<Vec<crate::webhooks::Webhook>> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        crate::webhooks::list(&self.db).await
    }

    /// One webhook and its latest deliveries (org admins).
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<(crate::webhooks::Webhook, Vec<crate::webhooks::Delivery>)> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let hook = crate::webhooks::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let deliveries = crate::webhooks::deliveries(&self.db, id, limit).await?;
        Ok((hook, deliveries))
    }

    /// Removes a webhook (org admins).
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let hook = crate::webhooks::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.db.begin().await?;
        crate::webhooks::delete(&mut tx, id).await?;
        self.commit_audited(
            tx,
            None,
            "webhook.delete",
            ("webhook", id),
            Some(json!({"url": hook.url, "events": hook.events()})),
            None,
        )
        .await
    }

    /// Queues a test delivery to a webhook (org admins).
    pub async fn test_webhook(&self, id: &str) -> Result<String> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        crate::webhooks::get(&self.db, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        crate::webhooks::enqueue_test(&self.db, id, &self.actor).await
    }

    /// Adds a price version to the catalog: org admins only.
    pub async fn set_price(
        &self,
        new: &crate::prices::NewPrice,
    ) -> Result<crate::prices::PriceRow> {
        if !self.is_org_admin() {
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.db.begin().await?;
        let row = crate::prices::set(&mut tx, new).await?;
        self.commit_audited(
            tx,
            None,
            "price.set",
            ("price", &row.model),
            None,
            serde_json::to_value(&row).ok(),
        )
        .await?;
        Ok(row)
    }

    pub async fn list_providers(&self) -> Result<Vec<ProviderDefault>> {
        secrets::providers(&self.db).await
    }

    /// One page of events, newest first, and where the next page starts.
    pub async fn list_events_page(&self, filter: &EventFilter) -> Result<EventPage> {
        events::page(&self.db, self.scope.team_filter(), filter).await
    }

    /// Event totals per gateway, team, model or UTC day, from the hourly
    /// rollup over whole hours, highest cost first (days: oldest first).
    pub async fn group_events(&self, by: GroupBy, filter: &EventFilter) -> Result<Vec<EventGroup>> {
        events::group(&self.db, self.scope.team_filter(), by, filter).await
    }
}
