//! The audit log: one append-only row per change made through the API or the
//! console — who, what, when, and the object before and after (secret values
//! never appear). Changes made through [`crate::Scoped`] are recorded there,
//! in one place; the database refuses updates and deletes of this table.

use serde::Serialize;
use serde_json::Value;

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

/// One audit entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct AuditRow {
    pub audit_id: String,
    pub created_at: i64,
    pub actor: String,
    pub team_id: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub actor: &'a str,
    /// The tenant the object belongs to (`None`: organisation-wide).
    pub team_id: Option<&'a str>,
    /// `team.create`, `token.revoke`, `wallet.allocate`, …
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Appends an entry.
pub async fn record(tx: &mut Tx, change: Change<'_>) -> Result<()> {
    let before = change.before.map(|v| v.to_string());
    let after = change.after.map(|v| v.to_string());
    with_tx!(tx, conn => {
        sqlx::query(
            "insert into audit_log (audit_id, created_at, actor, team_id, action, target_type, target_id, before_json, after_json) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(now_ms())
        .bind(change.actor)
        .bind(change.team_id)
        .bind(change.action)
        .bind(change.target_type)
        .bind(change.target_id)
        .bind(before)
        .bind(after)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// Filters of `GET /v1/audit` (the team filter comes from the scope).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (`token.`).
    pub action: Option<String>,
    pub team_id: Option<String>,
    pub limit: i64,
}

pub(crate) async fn list(
    db: &Db,
    scope_team: Option<&str>,
    f: &AuditFilter,
) -> Result<Vec<AuditRow>> {
    let action_like = f.action.as_ref().map(|a| {
        if a.ends_with('.') {
            format!("{a}%")
        } else {
            a.clone()
        }
    });
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, AuditRow>(
            "select audit_id, created_at, actor, team_id, action, target_type, target_id, before_json, after_json \
             from audit_log where ($1 is null or team_id = $1) and ($2 is null or team_id = $2) \
             and ($3 is null or actor = $3) and ($4 is null or action like $4) \
             and created_at >= $5 and created_at < $6 \
             order by created_at desc, audit_id desc limit $7",
        )
        .bind(scope_team)
        .bind(&f.team_id)
        .bind(&f.actor)
        .bind(&action_like)
        .bind(f.since_ms.unwrap_or(0))
        .bind(f.until_ms.unwrap_or(i64::MAX))
        .bind(f.limit.clamp(1, 1000))
        .fetch_all(pool)
        .await
    })?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_listed_and_cannot_be_changed() {
        for tdb in crate::testing::backends().await {
            let db = &tdb.db;
            let mut tx = db.begin().await.unwrap();
            record(
                &mut tx,
                Change {
                    actor: "admin (token t1)",
                    team_id: Some("team-a"),
                    action: "token.revoke",
                    target_type: "token",
                    target_id: "tok1",
                    before: Some(serde_json::json!({"revoked": false})),
                    after: Some(serde_json::json!({"revoked": true})),
                },
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            let all = list(
                db,
                None,
                &AuditFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(all.len(), 1, "{}", tdb.name());
            assert_eq!(all[0].action, "token.revoke");
            let prefix = AuditFilter {
                action: Some("token.".into()),
                limit: 10,
                ..Default::default()
            };
            assert_eq!(list(db, None, &prefix).await.unwrap().len(), 1);
            assert!(list(db, Some("team-b"), &prefix).await.unwrap().is_empty());
            let changed = with_pool!(db, pool => {
                sqlx::query("update audit_log set actor = 'someone else'").execute(pool).await.map(|_| ())
            });
            assert!(changed.is_err(), "{}: updates are refused", tdb.name());
            let deleted = with_pool!(db, pool => {
                sqlx::query("delete from audit_log").execute(pool).await.map(|_| ())
            });
            assert!(deleted.is_err(), "{}: deletes are refused", tdb.name());
            tdb.cleanup().await;
        }
    }

    /// A change and its audit entry commit together: when the entry cannot
    /// be written, the change is rolled back and the caller gets the error.
    #[tokio::test]
    async fn a_change_whose_entry_fails_is_not_made() {
        for tdb in crate::testing::backends().await {
            let db = &tdb.db;
            let org = db.scoped(crate::Scope::Org).acting_as("admin");
            let team = org
                .create_team(&crate::teams::NewTeam {
                    name: "Alpha".into(),
                    slug: "alpha".into(),
                })
                .await
                .unwrap();
            // Make the audit log refuse renames, as a full disk or a lost
            // connection between the two writes would.
            let refuse: &[&str] = match db.backend() {
                crate::Backend::Sqlite => {
                    &["create trigger refuse_rename before insert on audit_log \
                     when new.action = 'team.rename' begin select raise(abort, 'audit refused'); end"]
                }
                crate::Backend::Postgres => &[
                    "create function refuse_rename() returns trigger language plpgsql as \
                     $$ begin raise exception 'audit refused'; end $$",
                    "create trigger refuse_rename before insert on audit_log for each row \
                     when (new.action = 'team.rename') execute function refuse_rename()",
                ],
            };
            for sql in refuse {
                with_pool!(db, pool => sqlx::query(sql).execute(pool).await.map(|_| ())).unwrap();
            }
            let renamed = org.rename_team(&team.team_id, "Beta").await;
            assert!(renamed.is_err(), "{}: the rename must fail", tdb.name());
            let after = org.get_team(&team.team_id).await.unwrap();
            assert_eq!(after.name, "Alpha", "{}: rename rolled back", tdb.name());
            let entries = list(
                db,
                None,
                &AuditFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
            assert_eq!(actions, ["team.create"], "{}", tdb.name());
            tdb.cleanup().await;
        }
    }
}
