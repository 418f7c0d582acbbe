//! Pure rules of the survey service (docs/DOMAIN.md §7).

pub mod aggregates;
pub mod budget;
pub mod case;
pub mod invitation;
pub mod matching;
pub mod median;
pub mod response;
pub mod sampling;
pub mod settings;
pub mod survey;
pub mod trigger;
pub mod validate;
pub mod verbatim;
