//! What other services send the segmentation service through their
//! outboxes: the touchpoints journey stored (`cx.journey.v1.TouchpointsOffered`),
//! kept as facts (`store::touches`). The runtime's inbox applies each
//! message id once, in the transaction of its effects, so a redelivery
//! changes nothing; batches arriving out of order keep the later last touch.
//! While journey's touchpoints are being loaded, offers are held (answered
//! UNAVAILABLE as a hold: journey's outbox sends them again without spending
//! an attempt); after the load, those
//! journey stored up to its cut are skipped: the load counted them
//! (docs/DECISIONS.md, "Loading facts").

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::journey::v1::{OfferedTouchpoint, TouchpointsOffered};
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::outbox::inbox::{AfterCommit, Handlers, Receive, hold};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::rules::CHANNELS;
use crate::store::sources::{self, TouchFeed};
use crate::store::touches::{self, Touch};

/// The service that offers touchpoints.
pub const TOUCHPOINTS_SENDER: &str = "journey";
/// Touchpoints a message may offer (journey sends at most this many).
pub const MAX_OFFERED: usize = 10_000;

/// The touchpoints journey offers.
pub fn routes(handlers: Handlers) -> Handlers {
    handlers.on::<TouchpointsOffered>(TOUCHPOINTS_SENDER, Arc::new(Touchpoints))
}

/// Offered touchpoints become touch days, purchases and journey facts.
struct Touchpoints;

#[async_trait]
impl Receive<TouchpointsOffered> for Touchpoints {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: TouchpointsOffered,
    ) -> Result<AfterCommit, ServiceError> {
        let n = message.touchpoints.len();
        if n > MAX_OFFERED {
            return Err(ServiceError::invalid(
                "touchpoints",
                format!("has {n} items; at most {MAX_OFFERED} a message"),
            ));
        }
        let cut = match sources::touch_feed(txn, t).await? {
            TouchFeed::Held => {
                return Err(hold("the tenant's touchpoints are being loaded from journey: offer them again later"));
            }
            TouchFeed::After(cut) => Some(cut),
            TouchFeed::Open => None,
        };
        let mut touches: Vec<Touch> =
            message.touchpoints.iter().filter(|tp| !loaded(tp, cut)).filter_map(touch).collect();
        owners(txn, t, &mut touches).await?;
        let today = cx_runtime::days::day_number(cx_runtime::store::now());
        touches::record(txn, t, &touches, today).await?;
        tracing::debug!(offered = n, kept = touches.len(), "touchpoints recorded as facts");
        Ok(None)
    }
}

/// Data sent for a customer merged away is the survivor's; an erased
/// customer takes none (their touchpoints must not come back).
async fn owners(txn: &DatabaseTransaction, t: &TenantId, touches: &mut Vec<Touch>) -> Result<(), ServiceError> {
    let named: Vec<Uuid> = touches.iter().map(|tp| tp.customer).collect::<HashSet<_>>().into_iter().collect();
    let kept = super::kept(txn, t, &named).await?;
    touches.retain_mut(|tp| match kept.get(&tp.customer) {
        Some(owner) => {
            tp.customer = *owner;
            true
        }
        None => false,
    });
    Ok(())
}

/// Whether the load that cut at `cut` counted `tp`: journey stored it at
/// or before the cut. One offered without its record time (an older
/// journey) is counted as new.
fn loaded(tp: &OfferedTouchpoint, cut: Option<DateTime<Utc>>) -> bool {
    let stored = tp.record_time.as_ref().and_then(cx_proto::from_timestamp);
    matches!((stored, cut), (Some(stored), Some(cut)) if stored <= cut)
}

/// An offered touchpoint as the facts read it; `None` (logged) when journey
/// sent something it never stores.
fn touch(tp: &OfferedTouchpoint) -> Option<Touch> {
    let parsed = parse(tp);
    if let Err(why) = parsed {
        tracing::warn!(touchpoint = %cx_runtime::error::clip(&tp.touchpoint_id), why, "offered touchpoint skipped");
    }
    parsed.ok()
}

fn parse(tp: &OfferedTouchpoint) -> Result<Touch, &'static str> {
    let customer = Uuid::parse_str(&tp.customer_id).map_err(|_| "customer_id is not a UUID")?;
    let at = tp.occur_time.as_ref().and_then(cx_proto::from_timestamp).ok_or("occur_time is not a valid instant")?;
    let (channel, name) = channel(tp.channel).ok_or("channel is not known")?;
    let purchase = match &tp.purchase_amount {
        None => None,
        Some(money) => {
            let code = &money.currency_code;
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err("purchase_amount has no ISO 4217 currency code");
            }
            Some((code.clone(), money.micros().ok_or("purchase_amount is too large")?))
        }
    };
    Ok(Touch { customer, at: cx_runtime::store::stored_instant(at), channel, channel_name: name, purchase })
}

/// A channel code as the facts keep it: its index in `rules::CHANNELS` (its
/// bit in `channels_180d`) and its name; `None` when not a known channel.
pub(crate) fn channel(code: i32) -> Option<(i16, &'static str)> {
    let key = Channel::try_from(code).ok().and_then(Channel::key)?;
    let (index, name) = CHANNELS.iter().enumerate().find(|(_, c)| **c == key)?;
    Some((i16::try_from(index).ok()?, name))
}
