//! Escalations (SPEC §10): requests held by an `escalate` policy until a
//! reviewer of their team approves or denies them. The gateway records one
//! and, on the caller's retry with `X-Escalation-Id`, consumes an approval
//! (once, for the same content, before it expires). Reviewers reach them
//! through [`crate::Scoped`], which keeps each team's to itself.

use serde::Serialize;

use crate::{Db, Result, StoreError, Tx, new_id, now_ms, with_pool, with_tx};

/// How long an escalation can be reviewed and an approval used, unless the
/// installation says otherwise (`KT_ESCALATION_TTL_SECONDS`).
pub const DEFAULT_TTL_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct Escalation {
    pub escalation_id: String,
    pub team_id: String,
    pub gateway_id: String,
    pub token_id: String,
    pub policy: String,
    pub reason: String,
    pub model: String,
    /// JSON list of entity types.
    pub entities: String,
    #[serde(skip)]
    pub content_hash: String,
    pub status: String,
    pub claimed_by: Option<String>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub resolved_at: Option<i64>,
    pub used_at: Option<i64>,
    /// The prompt, sealed with the master key, when the policy lets
    /// reviewers see it; erased on resolution or expiry.
    #[serde(skip)]
    pub prompt_sealed: Option<String>,
}

impl Escalation {
    /// The status people see: a pending or claimed escalation past its
    /// expiry is `expired`.
    pub fn shown_status(&self, now: i64) -> &str {
        if matches!(self.status.as_str(), "pending" | "claimed") && self.expires_at <= now {
            "expired"
        } else {
            &self.status
        }
    }

    pub fn entities(&self) -> Vec<String> {
        serde_json::from_str(&self.entities).unwrap_or_default()
    }
}

const COLUMNS: &str = "escalation_id, team_id, gateway_id, token_id, policy, reason, model, entities, \
    content_hash, status, claimed_by, resolved_by, note, created_at, expires_at, resolved_at, used_at, \
    prompt_sealed";

/// What the gateway records.
#[derive(Debug, Clone)]
pub struct NewEscalation<'a> {
    pub team_id: &'a str,
    pub gateway_id: &'a str,
    pub token_id: &'a str,
    pub policy: &'a str,
    pub reason: &'a str,
    pub model: &'a str,
    pub entities: &'a [String],
    pub content_hash: &'a str,
    pub ttl_ms: i64,
    /// The prompt sealed with the master key (`reviewers_see_prompt`).
    pub prompt_sealed: Option<&'a str>,
}

pub async fn create(db: &Db, new: &NewEscalation<'_>) -> Result<Escalation> {
    let now = now_ms();
    let sql = format!(
        "insert into escalation ({COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', \
         null, null, null, $10, $11, null, null, $12) returning {COLUMNS}"
    );
    let (reviewers, named) = routed_to(db, new.team_id).await?;
    let mut tx = db.begin().await?;
    let e = with_tx!(tx, conn => {
        sqlx::query_as::<_, Escalation>(&sql)
            .bind(new_id())
            .bind(new.team_id)
            .bind(new.gateway_id)
            .bind(new.token_id)
            .bind(new.policy)
            .bind(new.reason)
            .bind(new.model)
            .bind(serde_json::to_string(new.entities).unwrap_or_else(|_| "[]".to_owned()))
            .bind(new.content_hash)
            .bind(now)
            .bind(now + new.ttl_ms)
            .bind(new.prompt_sealed)
            .fetch_one(&mut *conn)
            .await
    })?;
    crate::webhooks::enqueue(
        &mut tx,
        "escalation.created",
        serde_json::json!({
            "escalation_id": e.escalation_id,
            "team_id": e.team_id,
            "policy": e.policy,
            "reason": e.reason,
            "model": e.model,
            "entities": e.entities(),
            "expires_at": crate::format_ms(e.expires_at),
            "reviewers": reviewers,
            "routed_to": if named { "team_reviewers" } else { "org_admins" },
            "prompt_shared": e.prompt_sealed.is_some(),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(e)
}

/// The additional data a held prompt is sealed with: it opens only for its
/// team and its content.
fn prompt_context(team_id: &str, content_hash: &str) -> Vec<u8> {
    format!("escalation-prompt:{team_id}:{content_hash}").into_bytes()
}

/// Seals a held request's text for its reviewers.
pub fn seal_prompt(
    key: &crate::crypto::MasterKey,
    team_id: &str,
    content_hash: &str,
    prompt: &str,
) -> Result<String> {
    key.encrypt(prompt.as_bytes(), &prompt_context(team_id, content_hash))
}

/// Opens a held request's text (for its reviewers only: the caller checks).
pub fn open_prompt(key: &crate::crypto::MasterKey, e: &Escalation, sealed: &str) -> Result<String> {
    let bytes = key.decrypt(sealed, &prompt_context(&e.team_id, &e.content_hash))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The policies the approvals `ids` release, in the order of `ids`: `Some`
/// for an approved, unused, unexpired escalation of `team_id` whose content
/// hash matches, `None` for any other id. One query, nothing used up.
pub async fn approved_policies(
    db: &Db,
    ids: &[&str],
    team_id: &str,
    content_hash: &str,
) -> Result<Vec<Option<String>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<(String, String)> = with_pool!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(
            "select escalation_id, policy from escalation where status = 'approved' and used_at is null and team_id = ",
        );
        query
            .push_bind(team_id)
            .push(" and content_hash = ")
            .push_bind(content_hash)
            .push(" and expires_at > ")
            .push_bind(now_ms())
            .push(" and escalation_id in (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        list.push_unseparated(")");
        query.build_query_as().fetch_all(pool).await
    })?;
    Ok(ids
        .iter()
        .map(|id| {
            found
                .iter()
                .find(|(found, _)| found == id)
                .map(|(_, policy)| policy.clone())
        })
        .collect())
}

/// Uses up the approvals `ids` for a retry, all or none, in one
/// transaction: each must be an approved, unused, unexpired escalation of
/// `team_id` whose content hash matches. Returns the first id that is not
/// (used by a concurrent retry since it was checked, say), in which case
/// none is used up.
pub async fn consume_all<'a>(
    db: &Db,
    ids: &[&'a str],
    team_id: &str,
    content_hash: &str,
) -> Result<Option<&'a str>> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    for id in ids {
        let n = with_tx!(tx, conn => {
            sqlx::query(
                "update escalation set used_at = $4 where escalation_id = $1 and team_id = $2 \
                 and content_hash = $3 and status = 'approved' and used_at is null and expires_at > $4",
            )
            .bind(*id)
            .bind(team_id)
            .bind(content_hash)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        if n != 1 {
            // Dropping the transaction rolls back the ones used so far.
            return Ok(Some(id));
        }
    }
    tx.commit().await?;
    Ok(None)
}

pub(crate) async fn list(
    db: &Db,
    team_filter: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Escalation>> {
    let now = now_ms();
    // `expired` and `resolved` are views over the stored statuses.
    let (stored, expiry): (Option<Vec<&str>>, Option<bool>) = match status {
        None => (None, None),
        Some("pending") => (Some(vec!["pending"]), Some(false)),
        Some("claimed") => (Some(vec!["claimed"]), Some(false)),
        Some("expired") => (Some(vec!["pending", "claimed"]), Some(true)),
        Some("resolved") => (Some(vec!["approved", "denied"]), None),
        Some(other) => (Some(vec![other]), None),
    };
    let sql = format!(
        "select {COLUMNS} from escalation where ($1 is null or team_id = $1) \
         and ($2 is null or status = $2 or status = $3) \
         and ($4 is null or ($4 = 1 and expires_at <= $5) or ($4 = 0 and expires_at > $5)) \
         order by created_at desc limit $6"
    );
    let (s1, s2) = match &stored {
        Some(v) => (v.first().copied(), v.get(1).copied().or(v.first().copied())),
        None => (None, None),
    };
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Escalation>(&sql)
            .bind(team_filter)
            .bind(s1)
            .bind(s2)
            .bind(expiry.map(i64::from))
            .bind(now)
            .bind(limit.clamp(1, 1000))
            .fetch_all(pool)
            .await
    })?)
}

pub(crate) async fn get(db: &Db, id: &str) -> Result<Option<Escalation>> {
    let sql = format!("select {COLUMNS} from escalation where escalation_id = $1");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Escalation>(&sql).bind(id).fetch_optional(pool).await
    })?)
}

/// Claims (`claimed_by` = actor) or unclaims (`None`) an open, unexpired
/// escalation; `None` when it is not open.
pub(crate) async fn set_claim(
    tx: &mut Tx,
    id: &str,
    actor: Option<&str>,
) -> Result<Option<Escalation>> {
    let (to, from) = match actor {
        Some(_) => ("claimed", "pending"),
        None => ("pending", "claimed"),
    };
    let sql = format!(
        "update escalation set status = $2, claimed_by = $3 where escalation_id = $1 \
         and status = $4 and expires_at > $5 returning {COLUMNS}"
    );
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Escalation>(&sql)
            .bind(id)
            .bind(to)
            .bind(actor)
            .bind(from)
            .bind(now_ms())
            .fetch_optional(&mut *conn)
            .await
    })?)
}

pub(crate) async fn resolve(
    tx: &mut Tx,
    id: &str,
    outcome: &str,
    actor: &str,
    note: Option<&str>,
) -> Result<Option<Escalation>> {
    if !matches!(outcome, "approved" | "denied") {
        return Err(StoreError::Invalid(
            "`outcome` must be \"approved\" or \"denied\"".to_owned(),
        ));
    }
    let sql = format!(
        "update escalation set status = $2, resolved_by = $3, note = $4, resolved_at = $5, \
         prompt_sealed = null where escalation_id = $1 and status in ('pending', 'claimed') and expires_at > $5 \
         returning {COLUMNS}"
    );
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Escalation>(&sql)
            .bind(id)
            .bind(outcome)
            .bind(actor)
            .bind(note)
            .bind(now_ms())
            .fetch_optional(&mut *conn)
            .await
    })?)
}

/// A team's designated reviewer.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct Reviewer {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub added_at: i64,
}

/// The designated reviewers of a team, by email.
pub(crate) async fn reviewers(db: &Db, team_id: &str) -> Result<Vec<Reviewer>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Reviewer>(
            "select u.user_id, u.email, u.role, r.added_at from team_reviewer r \
             join app_user u on u.user_id = r.user_id \
             where r.team_id = $1 and u.team_id = $1 and u.role <> 'viewer' order by u.email",
        )
        .bind(team_id)
        .fetch_all(pool)
        .await
    })?)
}

/// Replaces a team's reviewers (users already checked to be its members).
pub(crate) async fn set_reviewers(tx: &mut Tx, team_id: &str, user_ids: &[String]) -> Result<()> {
    let now = now_ms();
    with_tx!(tx, conn => {
        sqlx::query("delete from team_reviewer where team_id = $1")
            .bind(team_id)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    for user_id in user_ids {
        with_tx!(tx, conn => {
            sqlx::query("insert into team_reviewer (team_id, user_id, added_at) values ($1, $2, $3)")
                .bind(team_id)
                .bind(user_id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map(|_| ())
        })?;
    }
    Ok(())
}

/// Who an escalation of `team_id` goes to: the team's reviewers' emails, or
/// the org admins' when it names none. The flag says which.
pub async fn routed_to(db: &Db, team_id: &str) -> Result<(Vec<String>, bool)> {
    let named: Vec<String> = reviewers(db, team_id)
        .await?
        .into_iter()
        .map(|r| r.email)
        .collect();
    if !named.is_empty() {
        return Ok((named, true));
    }
    let admins = with_pool!(db, pool => {
        sqlx::query_scalar::<_, String>(
            "select email from app_user where role = 'admin' order by email",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok((admins, false))
}

/// Erases the sealed prompts of escalations that expired unresolved (a
/// resolution erases its own); returns how many.
pub async fn erase_expired_prompts(db: &Db) -> Result<u64> {
    Ok(with_pool!(db, pool => {
        sqlx::query(
            "update escalation set prompt_sealed = null \
             where prompt_sealed is not null and expires_at <= $1",
        )
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn approved(db: &Db, team: &str, hash: &str, policy: &str) -> String {
        let e = create(
            db,
            &NewEscalation {
                team_id: team,
                gateway_id: "gw",
                token_id: "tok",
                policy,
                reason: "content_matched:x",
                model: "gpt-4o",
                entities: &[],
                content_hash: hash,
                ttl_ms: DEFAULT_TTL_MS,
                prompt_sealed: None,
            },
        )
        .await
        .unwrap();
        let mut tx = db.begin().await.unwrap();
        resolve(&mut tx, &e.escalation_id, "approved", "admin", None)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        e.escalation_id
    }

    #[tokio::test]
    async fn approvals_are_checked_in_one_query_and_used_all_or_none() {
        for tdb in crate::testing::backends().await {
            let db = &tdb.db;
            let first = approved(db, "team-a", "h1", "pii").await;
            let second = approved(db, "team-a", "h1", "review").await;
            let other_content = approved(db, "team-a", "h2", "review").await;

            let policies = approved_policies(db, &[&second, "nope", &first], "team-a", "h1")
                .await
                .unwrap();
            assert_eq!(
                policies,
                vec![Some("review".to_owned()), None, Some("pii".to_owned())],
                "{}",
                tdb.name()
            );
            // Another team, or other content, releases nothing.
            let policies = approved_policies(db, &[&first], "team-b", "h1")
                .await
                .unwrap();
            assert_eq!(policies, vec![None]);

            // One id that does not fit: none is used up.
            let refused = consume_all(db, &[&first, &other_content], "team-a", "h1")
                .await
                .unwrap();
            assert_eq!(refused, Some(other_content.as_str()), "{}", tdb.name());
            assert!(get(db, &first).await.unwrap().unwrap().used_at.is_none());

            // Both fit: both are used, once.
            assert_eq!(
                consume_all(db, &[&first, &second], "team-a", "h1")
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                consume_all(db, &[&first], "team-a", "h1").await.unwrap(),
                Some(first.as_str())
            );
            assert_eq!(
                approved_policies(db, &[&first, &second], "team-a", "h1")
                    .await
                    .unwrap(),
                vec![None, None]
            );
            tdb.cleanup().await;
        }
    }
}
