//! placeholder
pub fn App() {}
