//! What an admin may define, checked field by field: every problem of a
//! request named by its path (`survey.questions[2].choices[0].id`), none of
//! them echoing unbounded input (docs/DOMAIN.md §7.5, §7.6).

pub mod language;
pub mod settings;
pub mod survey;
pub mod trigger;
