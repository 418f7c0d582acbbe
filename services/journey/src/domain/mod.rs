//! Pure rules of the journey service: maps and their steps, touchpoints.

pub mod analysis;
pub mod map;
pub mod touchpoint;
