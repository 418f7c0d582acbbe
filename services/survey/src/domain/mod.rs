//! Pure rules of the survey service (docs/DOMAIN.md §7).

pub mod settings;
pub mod survey;
pub mod trigger;
pub mod validate;
