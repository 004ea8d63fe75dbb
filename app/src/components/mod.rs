//! Pieces shared by pages.

pub mod chart;
pub mod events;
pub mod layout;
pub mod stat;
