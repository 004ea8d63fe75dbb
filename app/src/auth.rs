//! Console sessions (server side): who is signed in, signing in and out.
//! Sessions are server-side records in the database (tower-sessions); the
//! browser holds only an opaque, HttpOnly, SameSite=Strict cookie.

use leptos::prelude::*;
use store::users::User;
use tower_sessions::Session;

use crate::access::{Flash, Me, Role};
use crate::state::ConsoleState;

/// The session key holding the signed-in user's id.
pub const USER_KEY: &str = "user_id";

fn state() -> Result<ConsoleState, ServerFnError> {
    use_context::<ConsoleState>().ok_or_else(|| ServerFnError::new("console state missing"))
}

async fn session() -> Result<Session, ServerFnError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| ServerFnError::new(format!("no session: {e}")))
}

pub fn internal(err: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %err, "console request failed");
    ServerFnError::new("internal error; see the server log")
}

/// Verifies the password (argon2id, off the async executor) and, when it
/// matches, starts a fresh session (new id, against fixation).
pub async fn sign_in(email: &str, password: &str) -> Result<SignIn, ServerFnError> {
    let st = state()?;
    let email = email.trim().to_lowercase();
    let email = email.as_str();
    if let Some(wait) = st.throttle.locked(email) {
        return Ok(SignIn::Throttled(wait));
    }
    let creds = store::users::credentials(&st.db, email)
        .await
        .map_err(internal)?;
    let password = password.to_owned();
    let matched = match creds {
        Some(creds) => {
            let hash = creds.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || {
                store::crypto::verify_password(&password, &hash)
            })
            .await
            .map_err(internal)?;
            ok.then_some(creds.user_id)
        }
        None => {
            // Spend the same time as a real check, so response times do not
            // reveal which emails have accounts.
            let _ =
                tokio::task::spawn_blocking(move || store::crypto::hash_password(&password)).await;
            None
        }
    };
    let Some(user_id) = matched else {
        st.throttle.failed(email);
        return Ok(SignIn::Failed);
    };
    st.throttle.succeeded(email);
    let session = session().await?;
    session.cycle_id().await.map_err(internal)?;
    session.insert(USER_KEY, user_id).await.map_err(internal)?;
    Ok(SignIn::Ok)
}

/// The outcome of a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    Ok,
    Failed,
    /// Too many failures for this account: try again after this long.
    Throttled(std::time::Duration),
}

pub async fn sign_out() -> Result<(), ServerFnError> {
    session().await?.flush().await.map_err(internal)
}

/// The signed-in user, if any.
pub async fn current_user() -> Result<Option<User>, ServerFnError> {
    let st = state()?;
    let session = session().await?;
    let Some(user_id) = session.get::<String>(USER_KEY).await.map_err(internal)? else {
        return Ok(None);
    };
    store::users::get(&st.db, &user_id).await.map_err(internal)
}

/// A signed-in user with their scoped database handle: every read and
/// write a page makes goes through `scoped`, so tenant scoping is the
/// store's (one place), not each page's.
pub struct Caller {
    pub me: Me,
    pub user: User,
    pub scoped: store::Scoped,
}

/// The signed-in user; redirects to the sign-in page when nobody is signed
/// in.
pub async fn require_user() -> Result<Caller, ServerFnError> {
    let Some(user) = current_user().await? else {
        leptos_axum::redirect("/login");
        return Err(ServerFnError::new("not signed in"));
    };
    let st = state()?;
    caller(&st.db, user).await.map_err(internal)
}

/// The scoped handle and page identity of a user (also used by the CSV
/// export, which is a plain axum route).
pub async fn caller(db: &store::Db, user: User) -> Result<Caller, store::StoreError> {
    let role = Role::parse(&user.role);
    let scope = user.scope();
    let team = match &user.team_id {
        Some(id) => store::teams::get(db, id).await?.map(|t| t.slug),
        None => None,
    };
    let scoped = db
        .scoped(scope)
        .acting_as(format!("{} (console)", user.email))
        .as_user(user.clone());
    Ok(Caller {
        me: Me {
            email: user.email.clone(),
            role,
            team,
        },
        user,
        scoped,
    })
}

/// The signed-in user, when their role allows `allowed`; otherwise the page
/// answers 403 with a message.
pub async fn require(allowed: fn(Role) -> bool) -> Result<Caller, ServerFnError> {
    let caller = require_user().await?;
    if !allowed(caller.me.role) {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::FORBIDDEN);
        }
        return Err(ServerFnError::new(crate::access::FORBIDDEN));
    }
    Ok(caller)
}

const FLASH_KEY: &str = "flash";

/// Ends a form post: stores the outcome for the next page view and
/// redirects there (post → redirect → get, with or without JavaScript).
pub async fn finish(to: &str, flash: Flash) -> Result<(), ServerFnError> {
    session()
        .await?
        .insert(FLASH_KEY, flash)
        .await
        .map_err(internal)?;
    leptos_axum::redirect(to);
    Ok(())
}

/// A form's server function: checks the signed-in user's role (`allowed`,
/// else the `denied` message), runs the action, and reports its outcome on
/// the page at `to` ([`finish_with`]).
pub async fn act<F, Fut>(
    to: &str,
    allowed: fn(Role) -> bool,
    denied: &str,
    action: F,
) -> Result<(), ServerFnError>
where
    F: FnOnce(Caller) -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let caller = require_user().await?;
    let outcome = if allowed(caller.me.role) {
        action(caller).await
    } else {
        Err(denied.to_owned())
    };
    finish_with(to, outcome).await
}

/// [`finish`] with a plain success or error message.
pub async fn finish_with(to: &str, outcome: Result<String, String>) -> Result<(), ServerFnError> {
    let (ok, message) = match outcome {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    finish(
        to,
        Flash {
            ok,
            message,
            secret: None,
        },
    )
    .await
}

/// The outcome of the last form post, once.
pub async fn take_flash() -> Result<Option<Flash>, ServerFnError> {
    session()
        .await?
        .remove::<Flash>(FLASH_KEY)
        .await
        .map_err(internal)
}

/// A store error as a message for the person who submitted a form.
/// Keeps a value in the session for the next page view (a form's refused
/// input, so that the page can show it again with its errors).
pub async fn stash<T: serde::Serialize + Send + Sync>(
    key: &str,
    value: &T,
) -> Result<(), ServerFnError> {
    session().await?.insert(key, value).await.map_err(internal)
}

/// Takes back what [`stash`] kept (once).
pub async fn unstash<T: serde::de::DeserializeOwned>(
    key: &str,
) -> Result<Option<T>, ServerFnError> {
    session().await?.remove::<T>(key).await.map_err(internal)
}

pub fn explain(err: store::StoreError) -> String {
    use store::StoreError;
    match err {
        StoreError::Invalid(msg) => msg,
        StoreError::NotFound => "not found (it may have been removed)".to_owned(),
        StoreError::Forbidden => "your role does not allow this".to_owned(),
        StoreError::Denied(msg) => msg,
        StoreError::Conflict(what) => format!("that already exists ({what})"),
        other => {
            tracing::error!(error = %other, "console action failed");
            "internal error; see the server log".to_owned()
        }
    }
}
