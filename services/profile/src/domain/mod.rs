//! Pure profile logic: identity normalisation, attributes, consent state.
//! No I/O here, so every rule is unit-tested with exact values.

pub mod attributes;
pub mod consent;
pub mod identity;
pub mod intensity;
pub mod lifecycle;
pub mod merge;
