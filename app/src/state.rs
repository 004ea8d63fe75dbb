//! What server functions reach through Leptos context (server side only).

use leptos::prelude::LeptosOptions;

/// The console's server-side state, provided to every page render and server
/// function. Cloning is cheap (pools are reference-counted).
#[derive(Clone, Debug)]
pub struct ConsoleState {
    pub db: store::Db,
    pub leptos_options: LeptosOptions,
}
