//! Pure rules of the survey service (docs/DOMAIN.md §7).

pub mod case;
pub mod median;
pub mod settings;
pub mod stats;
pub mod survey;
pub mod trigger;
pub mod validate;
