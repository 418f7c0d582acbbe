//! Pure profile logic: identity normalisation, attributes, consent state,
//! lifecycle and its purchase spans, intensity, merges and the latest survey
//! scores.
//! No I/O here, so every rule is unit-tested with exact values.

pub mod attributes;
pub mod consent;
pub mod identity;
pub mod intensity;
pub mod lifecycle;
pub mod merge;
pub mod scores;
pub mod spans;
