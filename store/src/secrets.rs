//! Provider secrets (write-only, AES-256-GCM-SIV at rest under the master
//! key) and organisation-wide provider defaults.
//!
//! A secret is sealed together with its name and team as associated data, so
//! a sealed value copied to another row does not decrypt. Nothing here ever
//! returns a value to the API: only gateways resolve them ([`resolve`]).

use std::collections::HashMap;

use serde::Serialize;

use crate::crypto::MasterKey;
use crate::{Db, Result, StoreError, Tx, new_id, now_ms, with_pool, with_tx};

/// A secret as listed: never its value.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct SecretRow {
    pub secret_id: String,
    pub name: String,
    /// `""` for an org-wide secret.
    pub team_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// Organisation-wide defaults for a provider kind.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct ProviderDefault {
    pub kind: String,
    pub base_url: Option<String>,
    pub secret_name: Option<String>,
    pub updated_at: i64,
    pub updated_by: String,
}

const MASTER_KEY_CHECK: &str = "master_key_check";
const CHECK_PLAINTEXT: &[u8] = b"kt master key check";

/// Checks that `key` is the key this installation's secrets are sealed with
/// (recording it on first use). A different key is an error that says so.
pub async fn check_master_key(db: &Db, key: &MasterKey) -> Result<()> {
    let stored: Option<String> = with_pool!(db, pool => {
        sqlx::query_scalar("select value from kt_meta where name = $1")
            .bind(MASTER_KEY_CHECK)
            .fetch_optional(pool)
            .await
    })?;
    match stored {
        Some(sealed) => key
            .decrypt(&sealed, MASTER_KEY_CHECK.as_bytes())
            .map(|_| ()),
        None => {
            let sealed = key.encrypt(CHECK_PLAINTEXT, MASTER_KEY_CHECK.as_bytes())?;
            with_pool!(db, pool => {
                sqlx::query("insert into kt_meta (name, value) values ($1, $2) on conflict (name) do nothing")
                    .bind(MASTER_KEY_CHECK)
                    .bind(sealed)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
            Ok(())
        }
    }
}

fn context(name: &str, team_id: &str) -> Vec<u8> {
    format!("secret:{team_id}:{name}").into_bytes()
}

/// Secret names: letters, digits, `_`, `-`, `.`; 1 to 64 characters.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The largest secret value accepted.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Checks a secret's name and value; the message names the field.
pub fn validate(name: &str, value: &str) -> std::result::Result<(), String> {
    if !valid_name(name) {
        return Err(format!(
            "`name` {name:?} is not valid: use 1 to 64 letters, digits, `_`, `-` or `.` (configs refer to it as secret_key_ref.secret)"
        ));
    }
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(format!("`value` must be 1 to {MAX_VALUE_BYTES} bytes"));
    }
    Ok(())
}

/// Stores (or replaces) a secret; `true` when it was new.
pub(crate) async fn put(
    tx: &mut Tx,
    key: &MasterKey,
    name: &str,
    team_id: &str,
    value: &str,
    actor: &str,
) -> Result<(SecretRow, bool)> {
    if !valid_name(name) {
        return Err(StoreError::Invalid(format!(
            "`{name}` is not a valid secret name: use 1 to 64 letters, digits, `_`, `-` or `.`"
        )));
    }
    let sealed = key.encrypt(value.as_bytes(), &context(name, team_id))?;
    let now = now_ms();
    // Write first (the update), so an SQLite transaction holds the write
    // lock from its first statement and never has to upgrade a read snapshot.
    let existed: (SecretRow, bool) = with_tx!(tx, conn => {
        let updated = sqlx::query(
            "update secret set sealed = $3, updated_at = $4, updated_by = $5 \
             where name = $1 and team_id = $2",
        )
        .bind(name)
        .bind(team_id)
        .bind(&sealed)
        .bind(now)
        .bind(actor)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated == 0 {
            sqlx::query(
                "insert into secret (secret_id, name, team_id, sealed, created_at, updated_at, updated_by) \
                 values ($1, $2, $3, $4, $5, $5, $6)",
            )
            .bind(new_id())
            .bind(name)
            .bind(team_id)
            .bind(&sealed)
            .bind(now)
            .bind(actor)
            .execute(&mut *conn)
            .await?;
        }
        let row = sqlx::query_as::<_, SecretRow>(&format!(
            "select {COLUMNS} from secret where name = $1 and team_id = $2"
        ))
        .bind(name)
        .bind(team_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok::<_, sqlx::Error>((row, updated == 0))
    })?;
    Ok(existed)
}

const COLUMNS: &str = "secret_id, name, team_id, created_at, updated_at, updated_by";

/// Secrets of one team (`Some`) or all (`None`), names only.
pub(crate) async fn list(db: &Db, team_filter: Option<&str>) -> Result<Vec<SecretRow>> {
    let sql = format!(
        "select {COLUMNS} from secret where ($1 is null or team_id = $1) order by team_id, name"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, SecretRow>(&sql).bind(team_filter).fetch_all(pool).await
    })?)
}

pub(crate) async fn delete(tx: &mut Tx, name: &str, team_id: &str) -> Result<()> {
    let deleted = with_tx!(tx, conn => {
        sqlx::query("delete from secret where name = $1 and team_id = $2")
            .bind(name)
            .bind(team_id)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The secret values a gateway may use, decrypted: org-wide ones, replaced
/// by the team's own of the same name when the gateway serves one team.
pub async fn resolve(
    db: &Db,
    key: &MasterKey,
    team_id: Option<&str>,
) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String, String)> = with_pool!(db, pool => {
        sqlx::query_as("select name, team_id, sealed from secret where team_id = '' or team_id = $1 order by team_id")
            .bind(team_id.unwrap_or(""))
            .fetch_all(pool)
            .await
    })?;
    let mut out = HashMap::new();
    // Org-wide rows ('') sort first, so a team's own secret wins.
    for (name, team, sealed) in rows {
        let value = key.decrypt(&sealed, &context(&name, &team))?;
        let value = String::from_utf8(value)
            .map_err(|_| StoreError::Crypto(format!("secret `{name}` is not UTF-8")))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// Decrypts every stored secret (of every team) and returns how many there
/// are: `kt doctor`'s proof that the master key opens them all.
pub async fn verify_all(db: &Db, key: &MasterKey) -> Result<usize> {
    let rows: Vec<(String, String, String)> = with_pool!(db, pool => {
        sqlx::query_as("select name, team_id, sealed from secret")
            .fetch_all(pool)
            .await
    })?;
    for (name, team, sealed) in &rows {
        key.decrypt(sealed, &context(name, team)).map_err(|_| {
            StoreError::Crypto(format!(
                "secret `{name}`{} cannot be decrypted with this master key",
                if team.is_empty() {
                    String::new()
                } else {
                    format!(" of team {team}")
                }
            ))
        })?;
    }
    Ok(rows.len())
}

/// Sets the defaults for a provider kind.
pub(crate) async fn set_provider(
    tx: &mut Tx,
    kind: &str,
    base_url: Option<&str>,
    secret_name: Option<&str>,
    actor: &str,
) -> Result<ProviderDefault> {
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, ProviderDefault>(
            "insert into provider_default (kind, base_url, secret_name, updated_at, updated_by) \
             values ($1, $2, $3, $4, $5) on conflict (kind) do update set base_url = excluded.base_url, \
             secret_name = excluded.secret_name, updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             returning kind, base_url, secret_name, updated_at, updated_by",
        )
        .bind(kind)
        .bind(base_url)
        .bind(secret_name)
        .bind(now_ms())
        .bind(actor)
        .fetch_one(&mut *conn)
        .await
    })?)
}

/// Every provider default (not tenant data: gateways of all teams use them).
pub async fn providers(db: &Db) -> Result<Vec<ProviderDefault>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, ProviderDefault>(
            "select kind, base_url, secret_name, updated_at, updated_by from provider_default order by kind",
        )
        .fetch_all(pool)
        .await
    })?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_are_sealed_write_only_and_team_ones_win() {
        for tdb in crate::testing::backends().await {
            let db = &tdb.db;
            let (key, _) = MasterKey::generate();
            check_master_key(db, &key).await.unwrap();
            check_master_key(db, &key).await.unwrap();
            let (wrong, _) = MasterKey::generate();
            assert!(
                check_master_key(db, &wrong).await.is_err(),
                "{}",
                tdb.name()
            );

            let (row, created) =
                crate::in_tx!(db, put, &key, "openai", "", "sk-org", "admin").unwrap();
            assert!(created);
            assert_eq!(row.team_id, "");
            let (_, created) =
                crate::in_tx!(db, put, &key, "openai", "team-a", "sk-team-a", "lead").unwrap();
            assert!(created);
            let (_, created) =
                crate::in_tx!(db, put, &key, "openai", "team-a", "sk-team-a-2", "lead").unwrap();
            assert!(!created, "replaced, not added");
            assert!(crate::in_tx!(db, put, &key, "bad name", "", "x", "a").is_err());

            // Stored sealed: the value appears nowhere in clear.
            let sealed: Vec<String> = with_pool!(db, pool => {
                sqlx::query_scalar("select sealed from secret").fetch_all(pool).await
            })
            .unwrap();
            assert!(sealed.iter().all(|s| !s.contains("sk-")), "{}", tdb.name());

            let org = resolve(db, &key, None).await.unwrap();
            assert_eq!(org.get("openai").map(String::as_str), Some("sk-org"));
            let team = resolve(db, &key, Some("team-a")).await.unwrap();
            assert_eq!(team.get("openai").map(String::as_str), Some("sk-team-a-2"));
            let other = resolve(db, &key, Some("team-b")).await.unwrap();
            assert_eq!(other.get("openai").map(String::as_str), Some("sk-org"));
            assert!(resolve(db, &wrong, None).await.is_err());

            assert_eq!(list(db, Some("team-a")).await.unwrap().len(), 1);
            assert_eq!(list(db, None).await.unwrap().len(), 2);
            crate::in_tx!(db, delete, "openai", "team-a").unwrap();
            assert!(matches!(
                crate::in_tx!(db, delete, "openai", "team-a"),
                Err(StoreError::NotFound)
            ));

            let p = crate::in_tx!(
                db,
                set_provider,
                "openai",
                Some("https://llm.internal/v1"),
                Some("openai"),
                "admin",
            )
            .unwrap();
            assert_eq!(p.base_url.as_deref(), Some("https://llm.internal/v1"));
            assert_eq!(providers(db).await.unwrap().len(), 1);
            tdb.cleanup().await;
        }
    }
}
