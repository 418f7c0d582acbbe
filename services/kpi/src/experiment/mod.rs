//! A/B experiments (docs/DOMAIN.md §9.6): a definition checked with its
//! defaults ([`definition`]), the sample size it plans ([`sample_size`]), its results ([`results`]),
//! and the variant of a customer, a pure function of the ids ([`assign`]).

pub mod assign;
pub mod definition;
pub mod results;
pub mod sample_size;
