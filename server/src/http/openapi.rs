//! The OpenAPI 3.1 document of the control-plane API, generated from the
//! handlers' `#[utoipa::path]` annotations and served (without
//! authentication) at `GET /v1/openapi.json` (SPEC §6).
//!
//! A handler added to a router must be listed in [`ApiDoc`]'s `paths`:
//! `server/tests/openapi.rs` compares the routes the routers register with
//! the document and fails on any difference.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{
    audit, configs, escalations, events, gateways, git_repos, onboarding, prices, secrets, teams,
    tokens, wallets, webhooks,
};

/// The name of the bearer-token security scheme in the document.
pub const BEARER: &str = "bearer";
/// The name of the push webhooks' HMAC signature scheme.
pub const WEBHOOK_SIGNATURE: &str = "webhook_signature";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kt API",
        description = "The control-plane API of kt, the multi-tenant AI gateway: teams, \
            tokens, request events, the gateway fleet, prices, wallets, provider secrets and \
            the audit log. Every operation except this document needs \
            `Authorization: Bearer kt_ak_…` (an access token: `kt admin create-token`). \
            Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        openapi_json,
        teams::list_teams,
        teams::create_team,
        teams::get_team,
        teams::rename_team,
        teams::archive_team,
        teams::list_members,
        teams::set_member,
        teams::remove_member,
        teams::list_reviewers,
        teams::set_reviewers,
        tokens::list_tokens,
        tokens::create_token,
        tokens::revoke_token,
        events::list_events,
        gateways::list_gateways,
        prices::list_prices,
        prices::set_price,
        wallets::allocate,
        wallets::balance,
        wallets::transactions,
        secrets::list_secrets,
        secrets::put_secret,
        secrets::delete_secret,
        secrets::list_providers,
        secrets::set_provider,
        audit::list_audit,
        configs::list,
        configs::create,
        configs::rollback,
        git_repos::link_repo,
        git_repos::list_repos,
        git_repos::get_repo,
        git_repos::sync_repo,
        git_repos::unlink_repo,
        git_repos::push_webhook,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
        webhooks::test_webhook,
        escalations::list_escalations,
        escalations::get_escalation,
        escalations::claim_escalation,
        escalations::unclaim_escalation,
        escalations::resolve_escalation,
        onboarding::list_templates,
        onboarding::put_template,
        onboarding::create_request,
        onboarding::list_requests,
        onboarding::get_request,
        onboarding::approve,
        onboarding::reject,
        onboarding::manifests,
        super::healthz,
        super::readyz,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            Unprocessable,
            Internal,
            Unavailable
        )
    ),
    modifiers(&Security),
    tags(
        (name = "meta", description = "This document"),
        (name = "teams", description = "The tenants"),
        (name = "git", description = "Git repositories whose files become configuration versions (branch → environment)"),
        (name = "configurations", description = "Versioned policy configurations per team and environment; managed gateways run the current one"),
        (name = "tokens", description = "Access tokens (`kt_ak_…`) and gateway keys (`kt_gk_…`)"),
        (name = "events", description = "Request events and their totals"),
        (name = "gateways", description = "The gateway fleet"),
        (name = "prices", description = "The price catalog (USD per million tokens)"),
        (name = "wallets", description = "Team wallets: credit, balance, ledger"),
        (name = "secrets", description = "Provider keys (write-only) and provider defaults"),
        (name = "audit", description = "Who changed what, when"),
        (name = "probes", description = "Liveness and readiness, outside `/v1`, for load balancers and Kubernetes"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The document (for the console's API reference page).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    &DOCUMENT
}

/// The OpenAPI 3.1 document of this API (no authentication needed).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
)]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

/// Declares the bearer scheme, and gives every operation that needs it the
/// error answers every authenticated request may get.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kt_ak_…")
                    .description(Some(
                        "An access token (`kt_ak_…`), org-wide or scoped to one team",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            WEBHOOK_SIGNATURE,
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Hub-Signature-256",
                    "`sha256=` and the hex HMAC-SHA256 of the body under the repository's webhook secret",
                ),
            )),
        );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_none_or(Vec::is_empty) {
                    continue;
                }
                for (status, response) in [
                    ("401", "Unauthorized"),
                    ("500", "Internal"),
                    ("503", "Unavailable"),
                ] {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Ref::from_response_name(response).into());
                }
            }
        }
    }
}

/// Reusable error answers (`#/components/responses/NAME`), each with the
/// API's error body; handlers list the ones they can give, e.g.
/// `(status = 404, response = NotFound)`.
macro_rules! error_responses {
    ($($name:ident => $description:literal),* $(,)?) => {$(
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (
                    stringify!($name),
                    ResponseBuilder::new()
                        .description($description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build()
                        .into(),
                )
            }
        }
    )*};
}

error_responses! {
    BadRequest => "`bad_request`: a malformed request (query parameter, JSON syntax, …); the message names what is wrong",
    Unauthorized => "`unauthorized`: no `Authorization: Bearer` access token, or an invalid, revoked or expired one",
    Forbidden => "`forbidden`: the token's scope does not allow this (e.g. a team token where an org-admin token is needed)",
    NotFound => "`not_found`: no such object, or not visible to this token",
    Conflict => "`conflict`: the object already exists, or the change conflicts with the current state",
    Unprocessable => "`invalid`: the body is well-formed but a value is not acceptable; the message names the field",
    Internal => "`internal`: an unexpected server error (details are logged, not returned)",
    Unavailable => "`unavailable`: the database is unreachable; try again shortly",
}
