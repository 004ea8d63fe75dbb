//! Bearer tokens: org/team access tokens for the API (`kt_ak_…`) and gateway
//! keys for applications (`kt_gk_…`). Only SHA-256 digests are stored.

use serde::Serialize;

use crate::crypto::{TokenKind, generate_token, hash_token};
use crate::{Db, Result, StoreError, Tx, new_id, now_ms, with_pool, with_tx};

/// A stored token, never carrying the secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRow {
    pub token_id: String,
    pub name: String,
    pub token_type: String,
    pub team_id: Option<String>,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// After this time the token no longer works.
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// A personal access token acts as this console user (`None`: a team or
    /// org token that acts as itself).
    pub user_id: Option<String>,
}

impl TokenRow {
    pub fn kind(&self) -> Option<TokenKind> {
        TokenKind::parse(&self.token_type)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub kind: TokenKind,
    pub team_id: Option<String>,
    /// Optional expiry (unix ms, in the future).
    pub expires_at: Option<i64>,
    /// A personal access token's user; its scope must be that user's.
    pub user_id: Option<String>,
}

/// A token just created: the row plus the secret, shown once.
#[derive(Debug)]
pub struct CreatedToken {
    pub row: TokenRow,
    pub secret: String,
}

const COLUMNS: &str = "token_id, name, token_type, team_id, prefix, created_at, revoked_at, \
    expires_at, last_used_at, user_id";

pub(crate) async fn create(tx: &mut Tx, new: &NewToken) -> Result<CreatedToken> {
    if new.kind == TokenKind::Gateway && new.team_id.is_none() {
        return Err(StoreError::Invalid(
            "a gateway key belongs to a team: give `team_id`".to_owned(),
        ));
    }
    let generated = generate_token(new.kind);
    let row = TokenRow {
        token_id: new_id(),
        name: new.name.clone(),
        token_type: new.kind.as_str().to_owned(),
        team_id: new.team_id.clone(),
        prefix: generated.display_prefix.clone(),
        created_at: now_ms(),
        revoked_at: None,
        expires_at: new.expires_at,
        last_used_at: None,
        user_id: new.user_id.clone(),
    };
    if new.kind == TokenKind::Gateway && new.user_id.is_some() {
        return Err(StoreError::Invalid(
            "a gateway key belongs to a team, not to a person: leave `user` out".to_owned(),
        ));
    }
    if new.expires_at.is_some_and(|at| at <= row.created_at) {
        return Err(StoreError::Invalid(
            "`expires_at` must be in the future".to_owned(),
        ));
    }
    with_tx!(tx, conn => {
        sqlx::query(
            "insert into api_token (token_id, name, token_type, team_id, prefix, token_hash, created_at, expires_at, user_id) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.token_id)
        .bind(&row.name)
        .bind(&row.token_type)
        .bind(&row.team_id)
        .bind(&row.prefix)
        .bind(&generated.hash)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(&row.user_id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })?;
    Ok(CreatedToken {
        row,
        secret: generated.secret,
    })
}

/// Creates an org-admin access token (no team): the CLI's bootstrap path.
pub async fn create_org_admin(db: &Db, name: &str) -> Result<CreatedToken> {
    let mut tx = db.begin().await?;
    let created = create(
        &mut tx,
        &NewToken {
            name: name.to_owned(),
            kind: TokenKind::Access,
            team_id: None,
            expires_at: None,
            user_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

pub(crate) async fn list(db: &Db, team_filter: Option<&str>) -> Result<Vec<TokenRow>> {
    let sql = format!(
        "select {COLUMNS} from api_token where ($1 is null or team_id = $1) order by created_at desc"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, TokenRow>(&sql).bind(team_filter).fetch_all(pool).await
    })?)
}

pub(crate) async fn revoke(
    tx: &mut Tx,
    token_id: &str,
    team_filter: Option<&str>,
) -> Result<TokenRow> {
    let sql = format!(
        "update api_token set revoked_at = coalesce(revoked_at, $1) \
         where token_id = $2 and ($3 is null or team_id = $3) returning {COLUMNS}"
    );
    let row = with_tx!(tx, conn => {
        sqlx::query_as::<_, TokenRow>(&sql)
            .bind(now_ms())
            .bind(token_id)
            .bind(team_filter)
            .fetch_optional(&mut *conn)
            .await
    })?;
    row.ok_or(StoreError::NotFound)
}

/// Finds the live (not revoked, not expired) token whose secret is
/// `secret`, and notes its use (at most once a minute).
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<TokenRow>> {
    // A token of an archived team no longer works.
    let sql = format!(
        "select {COLUMNS} from api_token where token_hash = $1 and revoked_at is null \
         and (expires_at is null or expires_at > $2) \
         and (team_id is null or team_id not in (select team_id from team where archived_at is not null))"
    );
    let hash = hash_token(secret);
    let now = now_ms();
    let row = with_pool!(db, pool => {
        sqlx::query_as::<_, TokenRow>(&sql).bind(&hash).bind(now).fetch_optional(pool).await
    })?;
    if let Some(row) = &row
        && row
            .last_used_at
            .is_none_or(|at| at < now - LAST_USED_EVERY_MS)
    {
        touch(db, std::slice::from_ref(&row.token_id), now).await?;
    }
    Ok(row)
}

/// `last_used_at` is written at most this often per token.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// Records that tokens were used at `at` (gateways report their keys in
/// batches).
pub async fn touch(db: &Db, token_ids: &[String], at: i64) -> Result<()> {
    for id in token_ids {
        with_pool!(db, pool => {
            sqlx::query(
                "update api_token set last_used_at = $2 where token_id = $1 \
                 and (last_used_at is null or last_used_at < $2)",
            )
            .bind(id)
            .bind(at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
    }
    Ok(())
}

/// Every gateway key with its digest and revocation state, for the gateway's
/// in-memory key cache (refreshed periodically, so revocation takes effect
/// within one refresh interval and the hot path never queries the database).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GatewayKey {
    pub token_id: String,
    pub team_id: Option<String>,
    pub token_hash: String,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
}

pub async fn gateway_keys(db: &Db) -> Result<Vec<GatewayKey>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, GatewayKey>(
            // An archived team's keys count as revoked.
            "select k.token_id, k.team_id, k.token_hash, coalesce(k.revoked_at, t.archived_at) as revoked_at, k.expires_at \
             from api_token k left join team t on t.team_id = k.team_id where k.token_type = 'gateway'",
        )
        .fetch_all(pool)
        .await
    })?)
}
