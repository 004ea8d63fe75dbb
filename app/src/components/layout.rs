//! The signed-in page frame: the top bar with the navigation the user's role
//! may use, breadcrumbs, the outcome of the last form post, and the loading
//! and error states every page shares.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::access::{Flash, Me, NAV, NavItem, Role};
use crate::pages::login::Logout;

#[component]
pub fn Header(me: Me) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let role = me.role;
    let who = match &me.team {
        Some(team) => format!("{} · {team}", me.role.label()),
        None => me.role.label().to_owned(),
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                "kt"
            </a>
            <NavLinks items=NAV role class="primary" label="Main" />
            <div class="who">
                <span class="email">{me.email}</span>
                <span class="role" data-testid="role">
                    {who}
                </span>
                <ActionForm action=logout>
                    <button type="submit" class="link">
                        "Sign out"
                    </button>
                </ActionForm>
            </div>
        </header>
    }
}

/// Links for the items `role` may use; the current one is marked.
#[component]
pub fn NavLinks(
    items: &'static [NavItem],
    role: Role,
    class: &'static str,
    label: &'static str,
) -> impl IntoView {
    let location = use_location();
    view! {
        <nav class=class aria-label=label>
            {items
                .iter()
                .filter(|item| (item.visible)(role))
                .map(|item| {
                    let href = item.href;
                    let current = move || {
                        let path = location.pathname.get();
                        if href == "/" {
                            path == "/"
                        } else {
                            path == href || path.starts_with(&format!("{href}/"))
                        }
                    };
                    view! {
                        <a href=href class:current=current aria-current=move || current().then_some("page")>
                            {item.label}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// "Settings › Keys" style trail; the last crumb is the current page.
#[component]
pub fn Breadcrumbs(crumbs: Vec<(String, String)>) -> impl IntoView {
    let last = crumbs.len().saturating_sub(1);
    view! {
        <nav class="crumbs" aria-label="Breadcrumb">
            <ol>
                {crumbs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (href, label))| {
                        if i == last {
                            view! { <li aria-current="page">{label}</li> }.into_any()
                        } else {
                            view! { <li><a href=href>{label}</a></li> }.into_any()
                        }
                    })
                    .collect_view()}
            </ol>
        </nav>
    }
}

/// The outcome of the last form post; a secret is shown once, with a copy
/// button (public/console.js).
#[component]
pub fn FlashMessage(flash: Option<Flash>) -> impl IntoView {
    flash.map(|f| {
        let class = if f.ok { "flash ok" } else { "flash error" };
        let role = if f.ok { "status" } else { "alert" };
        view! {
            <div class=class role=role data-testid="flash">
                <p>{f.message}</p>
                {f.secret.map(|secret| view! {
                    <div class="secret-once">
                        <code data-testid="secret" id="secret-once">{secret}</code>
                        <button type="button" class="secondary" data-copy="#secret-once">"Copy"</button>
                    </div>
                    <p class="muted">"Store it now: it is shown only this once."</p>
                })}
            </div>
        }
    })
}

/// What a page shows while its data loads, or when loading failed.
#[component]
pub fn PageError(message: String, hydrated: ReadSignal<bool>) -> impl IntoView {
    let forbidden = message.contains(crate::access::FORBIDDEN);
    // Server-function errors read "error running server function: …".
    let message = message
        .split_once("server function: ")
        .map_or(message.clone(), |(_, m)| m.to_owned());
    view! {
        <main class="narrow" data-hydrated=move || hydrated.get().to_string()>
            <h1>{if forbidden { "No access" } else { "Something went wrong" }}</h1>
            <p role="alert" class="form-error">{message}</p>
            <p>
                <a href="/">"Dashboard"</a> " · " <a href="/cost">"Cost Center"</a>
            </p>
        </main>
    }
}

/// Tracks whether the page has hydrated: effects only run in the browser, so
/// the attribute reads `false` in server HTML and `true` once the wasm runs.
pub fn hydrated_signal() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    hydrated
}

/// A page's standard frame around its content: header, breadcrumbs and the
/// outcome of the last form post.
#[component]
pub fn Frame(
    me: Me,
    crumbs: Vec<(&'static str, String)>,
    #[prop(default = None)] flash: Option<Flash>,
    hydrated: ReadSignal<bool>,
    children: Children,
) -> impl IntoView {
    let crumbs = crumbs
        .into_iter()
        .map(|(href, label)| (href.to_owned(), label))
        .collect();
    view! {
        <Header me />
        <main class="page" data-hydrated=move || hydrated.get().to_string()>
            <Breadcrumbs crumbs />
            <FlashMessage flash />
            {children()}
        </main>
    }
}

/// Loads a page's data and renders it, with the shared loading and error
/// states (a 403 or a failed load reads as a message, never a blank page).
pub fn load_page<T, V, F>(data: Resource<Result<T, ServerFnError>>, render: F) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(T, ReadSignal<bool>) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let hydrated = hydrated_signal();
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || {
                let render = render.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(d) => render(d, hydrated).into_any(),
                        Err(e) => view! { <PageError message=e.to_string() hydrated /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
