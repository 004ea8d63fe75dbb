//! API authentication: `Authorization: Bearer kt_ak_…`. The extractor yields
//! the caller's tenant-scoped store handle; handlers never see an unscoped
//! database for tenant data.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use store::crypto::TokenKind;
use store::{Scope, Scoped};

use super::error::ApiError;
use crate::AppState;

/// An authenticated API caller.
pub struct ApiCaller {
    pub token_id: String,
    /// Scoped to the token's team, acting as `name (token id)` in audit records.
    pub scoped: Scoped,
}

impl ApiCaller {
    pub fn is_org_admin(&self) -> bool {
        self.scoped.is_org_admin()
    }

    /// The database for data that is not tenant data (the price catalog).
    pub fn db(&self) -> &store::Db {
        self.scoped.db()
    }

    /// Who acted, as recorded in audit trails (e.g. the wallet ledger): the
    /// token's name and id, e.g. `ci-admin (token 0b6f…)`.
    pub fn actor(&self) -> &str {
        self.scoped.actor()
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header_value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing `Authorization: Bearer <token>`: create an API token with `kt admin create-token --name NAME`".to_owned(),
                )
            })?;
        let secret = header_value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("expected `Authorization: Bearer <token>`".to_owned())
            })?;
        let token = store::tokens::authenticate(&state.db, secret)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid or revoked API token".to_owned()))?;
        if token.kind() != Some(TokenKind::Access) {
            return Err(ApiError::Unauthorized(
                "gateway keys (kt_gk_…) authenticate against a gateway, not the API; use an access token (kt_ak_…)".to_owned(),
            ));
        }
        let scope = match &token.team_id {
            None => Scope::Org,
            Some(team) => Scope::Team(team.clone()),
        };
        let Some(user_id) = &token.user_id else {
            let actor = format!("{} (token {})", token.name, token.token_id);
            return Ok(ApiCaller {
                token_id: token.token_id,
                scoped: state.db.scoped(scope).acting_as(actor),
            });
        };
        // A personal token acts as its user, while the user still has the
        // role and team the token was made for.
        let user = store::users::get(&state.db, user_id)
            .await?
            .filter(|u| u.may_hold_api_token() && u.scope() == scope)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this personal token's user no longer has the role or team it was made for; create a new one".to_owned(),
                )
            })?;
        let actor = format!("{} (token {})", user.email, token.token_id);
        Ok(ApiCaller {
            token_id: token.token_id,
            scoped: state.db.scoped(scope).acting_as(actor).as_user(user),
        })
    }
}
