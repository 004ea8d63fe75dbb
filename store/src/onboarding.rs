//! Self-service onboarding (SPEC §9): policy templates, and requests for a
//! new team that an org admin approves (the provisioning pipeline records
//! each step here) or rejects. Reads and changes on behalf of a caller go
//! through [`crate::Scoped`]; the pipeline's own progress updates use the
//! functions here directly.

use serde::{Deserialize, Serialize};

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

/// A policy template (`std`, `reg`, `exp`, or an admin's own).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct Template {
    pub name: String,
    pub content: String,
    pub updated_by: String,
    pub updated_at: i64,
}

/// Inserts the templates kt ships with, leaving edited ones alone.
pub async fn seed_templates(db: &Db, shipped: &[(&str, &str)]) -> Result<()> {
    for (name, content) in shipped {
        with_pool!(db, pool => {
            sqlx::query(
                "insert into config_template (name, content, updated_by, updated_at) \
                 values ($1, $2, 'kt', $3) on conflict (name) do nothing",
            )
            .bind(name)
            .bind(content)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
    }
    Ok(())
}

pub async fn templates(db: &Db) -> Result<Vec<Template>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Template>(
            "select name, content, updated_by, updated_at from config_template order by name",
        )
        .fetch_all(pool)
        .await
    })?)
}

pub async fn template(db: &Db, name: &str) -> Result<Option<Template>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Template>(
            "select name, content, updated_by, updated_at from config_template where name = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await
    })?)
}

pub(crate) async fn put_template(
    tx: &mut Tx,
    name: &str,
    content: &str,
    actor: &str,
) -> Result<Template> {
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Template>(
            "insert into config_template (name, content, updated_by, updated_at) values ($1, $2, $3, $4) \
             on conflict (name) do update set content = excluded.content, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at returning name, content, updated_by, updated_at",
        )
        .bind(name)
        .bind(content)
        .bind(actor)
        .bind(now_ms())
        .fetch_one(&mut *conn)
        .await
    })?)
}

/// One step of the provisioning pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// `team`, `config`, `wallet`, `key`, `gateway`
    pub step: String,
    /// `pending`, `running`, `done`, `failed`
    pub status: String,
    pub detail: Option<String>,
    pub at: Option<i64>,
}

/// The pipeline's steps, in order.
pub const STEPS: [&str; 5] = ["team", "config", "wallet", "key", "gateway"];

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct Request {
    pub onboarding_request_id: String,
    pub team_name: String,
    pub team_slug: String,
    pub lead_email: String,
    pub use_case: String,
    pub template: String,
    pub monthly_budget_micros: i64,
    /// JSON list of models.
    pub models: String,
    pub environment: String,
    pub status: String,
    pub reason: Option<String>,
    /// JSON list of [`Step`].
    pub steps: String,
    pub team_id: Option<String>,
    pub gateway_name: Option<String>,
    pub gateway_url: Option<String>,
    #[serde(skip)]
    pub key_sealed: Option<String>,
    pub requested_by: String,
    pub created_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

impl Request {
    pub fn models(&self) -> Vec<String> {
        serde_json::from_str(&self.models).unwrap_or_default()
    }

    pub fn steps(&self) -> Vec<Step> {
        serde_json::from_str(&self.steps).unwrap_or_default()
    }
}

const COLUMNS: &str = "onboarding_request_id, team_name, team_slug, lead_email, use_case, template, \
    monthly_budget_micros, models, environment, status, reason, steps, team_id, gateway_name, \
    gateway_url, key_sealed, requested_by, created_at, decided_by, decided_at";

/// What a requester asks for.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub team_name: String,
    pub team_slug: String,
    pub lead_email: String,
    pub use_case: String,
    pub template: String,
    pub monthly_budget_micros: i64,
    pub models: Vec<String>,
    pub environment: String,
}

pub(crate) async fn create(tx: &mut Tx, new: &NewRequest, actor: &str) -> Result<Request> {
    let steps: Vec<Step> = STEPS
        .iter()
        .map(|s| Step {
            step: (*s).to_owned(),
            status: "pending".to_owned(),
            detail: None,
            at: None,
        })
        .collect();
    let sql = format!(
        "insert into onboarding_request ({COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         'pending', null, $10, null, null, null, null, $11, $12, null, null) returning {COLUMNS}"
    );
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Request>(&sql)
            .bind(new_id())
            .bind(&new.team_name)
            .bind(&new.team_slug)
            .bind(&new.lead_email)
            .bind(&new.use_case)
            .bind(&new.template)
            .bind(new.monthly_budget_micros)
            .bind(serde_json::to_string(&new.models).unwrap_or_else(|_| "[]".to_owned()))
            .bind(&new.environment)
            .bind(serde_json::to_string(&steps).unwrap_or_else(|_| "[]".to_owned()))
            .bind(actor)
            .bind(now_ms())
            .fetch_one(&mut *conn)
            .await
    })?)
}

/// Requests, newest first: all (`requested_by` `None`) or one requester's.
pub async fn list(db: &Db, requested_by: Option<&str>, limit: i64) -> Result<Vec<Request>> {
    let sql = format!(
        "select {COLUMNS} from onboarding_request where ($1 is null or requested_by = $1) \
         order by created_at desc limit $2"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Request>(&sql)
            .bind(requested_by)
            .bind(limit.clamp(1, 1000))
            .fetch_all(pool)
            .await
    })?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Request>> {
    let sql = format!("select {COLUMNS} from onboarding_request where onboarding_request_id = $1");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Request>(&sql).bind(id).fetch_optional(pool).await
    })?)
}

/// Moves a request from one of `from` to `to` (with who decided and why);
/// `None` when it was in another state (someone else decided first).
pub(crate) async fn transition(
    tx: &mut Tx,
    id: &str,
    from: &[&str],
    to: &str,
    actor: &str,
    reason: Option<&str>,
) -> Result<Option<Request>> {
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 6)).collect();
    let sql = format!(
        "update onboarding_request set status = $2, decided_by = $3, decided_at = $4, \
         reason = coalesce($5, reason) where onboarding_request_id = $1 and status in ({}) \
         returning {COLUMNS}",
        placeholders.join(", ")
    );
    Ok(with_tx!(tx, conn => {
        let mut q = sqlx::query_as::<_, Request>(&sql)
            .bind(id)
            .bind(to)
            .bind(actor)
            .bind(now_ms())
            .bind(reason);
        for f in from {
            q = q.bind(*f);
        }
        q.fetch_optional(&mut *conn).await
    })?)
}

/// The pipeline's progress: status, steps and what it made so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub status: String,
    pub steps: Vec<Step>,
    pub team_id: Option<String>,
    pub gateway_name: Option<String>,
    pub gateway_url: Option<String>,
    pub reason: Option<String>,
}

pub async fn record_progress(db: &Db, id: &str, p: &Progress) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query(
            "update onboarding_request set status = $2, steps = $3, team_id = coalesce($4, team_id), \
             gateway_name = coalesce($5, gateway_name), gateway_url = coalesce($6, gateway_url), \
             reason = $7 where onboarding_request_id = $1",
        )
        .bind(id)
        .bind(&p.status)
        .bind(serde_json::to_string(&p.steps).unwrap_or_else(|_| "[]".to_owned()))
        .bind(&p.team_id)
        .bind(&p.gateway_name)
        .bind(&p.gateway_url)
        .bind(&p.reason)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// Keeps the new gateway key (sealed) for the requester to see once.
pub async fn keep_key(db: &Db, id: &str, sealed: &str) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("update onboarding_request set key_sealed = $2 where onboarding_request_id = $1")
            .bind(id)
            .bind(sealed)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Takes the kept key (once): the next call finds none.
pub(crate) async fn take_key(db: &Db, id: &str) -> Result<Option<String>> {
    let Some(sealed) = get(db, id).await?.and_then(|r| r.key_sealed) else {
        return Ok(None);
    };
    // Compare-and-clear: of two concurrent readers, one gets it.
    let cleared = with_pool!(db, pool => {
        sqlx::query(
            "update onboarding_request set key_sealed = null \
             where onboarding_request_id = $1 and key_sealed = $2",
        )
        .bind(id)
        .bind(&sealed)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok((cleared == 1).then_some(sealed))
}

/// Requests whose gateway the local runner should keep running.
pub async fn ready_local(db: &Db) -> Result<Vec<Request>> {
    let sql = format!(
        "select {COLUMNS} from onboarding_request r where status = 'ready' and gateway_name is not null \
         and exists (select 1 from team t where t.team_id = r.team_id and t.archived_at is null)"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Request>(&sql).fetch_all(pool).await
    })?)
}

/// Checks a request's fields; the message names the field.
pub fn validate(new: &NewRequest) -> std::result::Result<(), String> {
    if new.team_name.trim().is_empty() || new.team_name.len() > 100 {
        return Err("`team_name`: give the team a name (at most 100 characters)".to_owned());
    }
    crate::teams::validate_slug(&new.team_slug).map_err(|e| format!("`team_slug`: {e}"))?;
    crate::users::validate_email(&new.lead_email).map_err(|e| format!("`lead_email`: {e}"))?;
    if new.use_case.len() > 2000 {
        return Err("`use_case`: at most 2000 characters".to_owned());
    }
    if new.monthly_budget_micros <= 0 {
        return Err("`monthly_budget`: a positive amount of USD per month".to_owned());
    }
    if new.models.is_empty() {
        return Err("`models`: name at least one model, e.g. [\"gpt-4o-mini\"]".to_owned());
    }
    if let Some(bad) = new.models.iter().find(|m| {
        m.trim().is_empty()
            || m.contains(char::is_whitespace)
            || m.contains(['"', '\'', '[', ']', ',', '#'])
    }) {
        return Err(format!("`models`: {bad:?} is not a model name"));
    }
    crate::configs::validate_environment(&new.environment)
        .map_err(|e| format!("`environment`: {e}"))?;
    Ok(())
}
