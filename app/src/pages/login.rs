//! Sign-in and sign-out. Both are server functions posted by plain HTML
//! forms, so they work without JavaScript (post → redirect → get).

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::layout::hydrated_signal;

/// Checks the credentials; on success starts a session and goes to the
/// Dashboard, otherwise back to the form with an error flag.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), ServerFnError> {
    use crate::auth::SignIn;
    match crate::auth::sign_in(&email, &password).await? {
        SignIn::Ok => leptos_axum::redirect("/"),
        SignIn::Failed => leptos_axum::redirect("/login?error=invalid"),
        SignIn::Throttled(wait) => {
            let minutes = wait.as_secs().div_ceil(60);
            leptos_axum::redirect(&format!("/login?error=throttled&minutes={minutes}"))
        }
    }
    Ok(())
}

/// Ends the session and goes to the sign-in page.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    crate::auth::sign_out().await?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let error = move || {
        let q = query.read();
        match q.get("error").as_deref() {
            None => None,
            Some("throttled") => Some(format!(
                "Too many failed sign-ins for this account. Try again in {} minutes.",
                q.get("minutes").unwrap_or_else(|| "15".to_owned())
            )),
            Some(_) => Some("Invalid email or password.".to_owned()),
        }
    };
    let hydrated = hydrated_signal();
    view! {
        <Title text="Sign in" />
        <main class="login" data-hydrated=move || hydrated.get().to_string()>
            <h1>"Sign in to kt"</h1>
            {move || error().map(|message| view! {
                <p role="alert" class="form-error">{message}</p>
            })}
            <ActionForm action=login>
                <label>
                    "Email" <input type="email" name="email" required autocomplete="username" />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" required autocomplete="current-password" />
                </label>
                <button type="submit">"Sign in"</button>
            </ActionForm>
        </main>
    }
}
