//! The channels an interaction takes place on: shared by every service.

pub use cx_runtime::channel::Channel;
