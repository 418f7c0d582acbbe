//! Checks every service makes of what a client defines: bounded texts, keys
//! and durations ([`text`]), and update masks ([`mask`]). Each problem is a
//! field violation that never echoes unbounded input.

pub mod mask;
pub mod text;
