//! Console sessions (server side): who is signed in, signing in and out.
//! Sessions are server-side records in the database (tower-sessions); the
//! browser holds only an opaque, HttpOnly, SameSite=Strict cookie.

use leptos::prelude::*;
use store::users::User;
use tower_sessions::Session;

use crate::state::ConsoleState;

const USER_KEY: &str = "user_id";

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
pub async fn sign_in(email: &str, password: &str) -> Result<bool, ServerFnError> {
    let st = state()?;
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
        return Ok(false);
    };
    let session = session().await?;
    session.cycle_id().await.map_err(internal)?;
    session.insert(USER_KEY, user_id).await.map_err(internal)?;
    Ok(true)
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

/// The signed-in user and their scoped database handle; redirects to the
/// sign-in page when nobody is signed in.
pub async fn require_user() -> Result<(User, store::Scoped), ServerFnError> {
    let Some(user) = current_user().await? else {
        leptos_axum::redirect("/login");
        return Err(ServerFnError::new("not signed in"));
    };
    let scope = match (&*user.role, &user.team_id) {
        ("admin", _) => store::Scope::Org,
        (_, Some(team)) => store::Scope::Team(team.clone()),
        // A user without a team and without the admin role sees nothing.
        (_, None) => store::Scope::Team(String::new()),
    };
    let scoped = state()?
        .db
        .scoped(scope)
        .acting_as(format!("{} (console)", user.email));
    Ok((user, scoped))
}
