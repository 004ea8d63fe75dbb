//! Console users (argon2id password hashes).

use serde::Serialize;

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

/// Console roles (SPEC §7).
pub const ROLES: &[&str] = &["admin", "team_lead", "member", "viewer"];

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub team_id: Option<String>,
    pub created_at: i64,
}

impl User {
    /// Whose data the user sees (SPEC §7): admins, and viewers without a
    /// team (managers), the whole org; everyone else their team (nothing
    /// when they have none).
    pub fn scope(&self) -> crate::Scope {
        match (self.role.as_str(), &self.team_id) {
            ("admin", _) | ("viewer", None) => crate::Scope::Org,
            (_, Some(team)) => crate::Scope::Team(team.clone()),
            (_, None) => crate::Scope::Team(String::new()),
        }
    }

    /// Roles that may hold a personal API token: the token has the user's
    /// scope, and the API knows no finer roles than org and team.
    pub fn may_hold_api_token(&self) -> bool {
        self.role == "admin" || (self.role == "team_lead" && self.team_id.is_some())
    }
}

/// A user row including the password hash, for sign-in only.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub user_id: String,
    pub password_hash: String,
}

/// Creates a user with an already computed argon2id hash.
pub async fn create(tx: &mut Tx, email: &str, password_hash: &str, role: &str) -> Result<User> {
    let user = User {
        user_id: new_id(),
        email: email.trim().to_lowercase(),
        role: role.to_owned(),
        team_id: None,
        created_at: now_ms(),
    };
    with_tx!(tx, conn => {
        sqlx::query(
            "insert into app_user (user_id, email, password_hash, role, team_id, created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.user_id)
        .bind(&user.email)
        .bind(password_hash)
        .bind(&user.role)
        .bind(&user.team_id)
        .bind(user.created_at)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })?;
    Ok(user)
}

/// Replaces a user's password hash; false when there is no such user.
pub async fn set_password(db: &Db, email: &str, password_hash: &str) -> Result<bool> {
    let done = with_pool!(db, pool => {
        sqlx::query("update app_user set password_hash = $1 where email = $2")
            .bind(password_hash)
            .bind(email.trim().to_lowercase())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done > 0)
}

pub async fn credentials(db: &Db, email: &str) -> Result<Option<Credentials>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Credentials>("select user_id, password_hash from app_user where email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(pool)
            .await
    })?)
}

pub async fn get(db: &Db, user_id: &str) -> Result<Option<User>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, User>(
            "select user_id, email, role, team_id, created_at from app_user where user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await
    })?)
}

/// The console users of a team.
pub(crate) async fn members(db: &Db, team_id: &str) -> Result<Vec<User>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, User>(
            "select user_id, email, role, team_id, created_at from app_user where team_id = $1 order by email",
        )
        .bind(team_id)
        .fetch_all(pool)
        .await
    })?)
}

/// Puts an existing user in a team with a role (`None`: out of any team).
pub(crate) async fn set_membership(
    tx: &mut Tx,
    email: &str,
    team_id: Option<&str>,
    role: &str,
) -> Result<Option<User>> {
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, User>(
            "update app_user set team_id = $2, role = $3 where email = $1 \
             returning user_id, email, role, team_id, created_at",
        )
        .bind(email)
        .bind(team_id)
        .bind(role)
        .fetch_optional(&mut *conn)
        .await
    })?)
}

/// A user by email (no password hash).
pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, User>(
            "select user_id, email, role, team_id, created_at from app_user where email = $1",
        )
        .bind(email)
        .fetch_optional(pool)
        .await
    })?)
}

/// Every console user, by email.
pub(crate) async fn list_all(db: &Db) -> Result<Vec<User>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, User>(
            "select user_id, email, role, team_id, created_at from app_user order by email",
        )
        .fetch_all(pool)
        .await
    })?)
}

/// Sets a user's role and team.
pub(crate) async fn set_role(
    tx: &mut Tx,
    user_id: &str,
    role: &str,
    team_id: Option<&str>,
) -> Result<Option<User>> {
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, User>(
            "update app_user set role = $2, team_id = $3 where user_id = $1 \
             returning user_id, email, role, team_id, created_at",
        )
        .bind(user_id)
        .bind(role)
        .bind(team_id)
        .fetch_optional(&mut *conn)
        .await
    })?)
}

/// Deletes a user (their sessions stop working at the next request).
pub(crate) async fn delete(tx: &mut Tx, user_id: &str) -> Result<Option<User>> {
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, User>(
            "delete from app_user where user_id = $1 returning user_id, email, role, team_id, created_at",
        )
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
    })?)
}

/// Checks an email address for a console account: one `@`, something on
/// both sides, no spaces.
pub fn validate_email(email: &str) -> std::result::Result<(), String> {
    let email = email.trim();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && !domain.contains('@')
                && email.len() <= 254 =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{email:?} is not an email address (expected name@example.com)"
        )),
    }
}
