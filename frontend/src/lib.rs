//! The wasm entry point: hydrates the HTML that `kt serve` rendered, making
//! the console interactive. Everything else lives in the `app` crate.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
