//! Teams: the tenants.

use serde::{Deserialize, Serialize};

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Team {
    pub team_id: String,
    pub name: String,
    pub slug: String,
    pub created_at: i64,
    /// Set when the team was archived.
    pub archived_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewTeam {
    pub name: String,
    pub slug: String,
}

const COLUMNS: &str = "team_id, name, slug, created_at, archived_at";

pub(crate) async fn create(tx: &mut Tx, new: &NewTeam) -> Result<Team> {
    let team = Team {
        team_id: new_id(),
        name: new.name.clone(),
        slug: new.slug.clone(),
        created_at: now_ms(),
        archived_at: None,
    };
    with_tx!(tx, conn => {
        sqlx::query("insert into team (team_id, name, slug, created_at) values ($1, $2, $3, $4)")
            .bind(&team.team_id)
            .bind(&team.name)
            .bind(&team.slug)
            .bind(team.created_at)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    Ok(team)
}

pub(crate) async fn list(db: &Db, team_filter: Option<&str>) -> Result<Vec<Team>> {
    let sql =
        format!("select {COLUMNS} from team where ($1 is null or team_id = $1) order by slug");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Team>(&sql).bind(team_filter).fetch_all(pool).await
    })?)
}

pub async fn get(db: &Db, team_id: &str) -> Result<Option<Team>> {
    let sql = format!("select {COLUMNS} from team where team_id = $1");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Team>(&sql).bind(team_id).fetch_optional(pool).await
    })?)
}

/// Renames a team (its slug, which names gateways and configs, stays).
pub(crate) async fn rename(tx: &mut Tx, team_id: &str, name: &str) -> Result<Option<Team>> {
    let sql = format!("update team set name = $2 where team_id = $1 returning {COLUMNS}");
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Team>(&sql).bind(team_id).bind(name).fetch_optional(&mut *conn).await
    })?)
}

/// Archives a team (idempotent).
pub(crate) async fn archive(tx: &mut Tx, team_id: &str) -> Result<Option<Team>> {
    let sql = format!(
        "update team set archived_at = coalesce(archived_at, $2) where team_id = $1 returning {COLUMNS}"
    );
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Team>(&sql).bind(team_id).bind(now_ms()).fetch_optional(&mut *conn).await
    })?)
}

/// Looks a team up by slug (CLI and gateway start-up; not tenant data).
pub async fn by_slug(db: &Db, slug: &str) -> Result<Option<Team>> {
    let sql = format!("select {COLUMNS} from team where slug = $1");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Team>(&sql).bind(slug).fetch_optional(pool).await
    })?)
}

/// Validates a team slug: 1–63 lowercase letters, digits and dashes, starting
/// with a letter (it names gateways, namespaces and config files).
pub fn validate_slug(slug: &str) -> Result<(), String> {
    let ok_len = (1..=63).contains(&slug.len());
    let ok_start = slug.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let ok_chars = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok_len && ok_start && ok_chars && !slug.ends_with('-') {
        Ok(())
    } else {
        Err(format!(
            "invalid slug `{slug}`: use 1-63 lowercase letters, digits and dashes, starting with a letter (e.g. `eng`, `data-science`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_slug;

    #[test]
    fn slugs() {
        assert!(validate_slug("eng").is_ok());
        assert!(validate_slug("data-science2").is_ok());
        for bad in ["", "Eng", "1eng", "eng-", "en g", "eng_x"] {
            assert!(validate_slug(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
