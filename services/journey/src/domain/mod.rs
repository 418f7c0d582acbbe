//! Pure rules of the journey service: maps and their steps, touchpoints,
//! analysis and the roll-ups it reads.

pub mod analysis;
pub mod channel;
pub mod map;
pub mod rollup;
pub mod touchpoint;
