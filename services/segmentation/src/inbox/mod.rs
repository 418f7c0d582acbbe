//! What other services send the segmentation service through their
//! outboxes, each kept in the fact table: the touchpoints journey stored
//! ([`touchpoints`]); consent decisions and profile facts from profile,
//! scores and open-case counts from survey ([`feeds`]). The runtime's inbox
//! applies each message id once, in the transaction of its effects.

mod feeds;
mod touchpoints;

use cx_runtime::outbox::inbox::Handlers;

pub use feeds::{PROFILE, SURVEY};
pub use touchpoints::{MAX_OFFERED, TOUCHPOINTS_SENDER};

/// The segmentation service's inbox.
pub fn routes(handlers: Handlers) -> Handlers {
    feeds::routes(touchpoints::routes(handlers))
}
