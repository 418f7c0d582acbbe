//! What other services send the survey service through their outboxes: the
//! touchpoints the journey service stored, offered to the triggers, and the
//! profile service's consent decisions (docs/DOMAIN.md §3.4, §7.4). Merges
//! and erasures come through the runtime's participant handling.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::journey::v1::{OfferedTouchpoint, TouchpointsOffered};
use cx_proto::profile::v1::{ConsentChanged, ConsentPurpose, purpose};
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::error::ServiceError;
use cx_runtime::outbox::inbox::{AfterCommit, Handlers, Prepared, Receive};
use cx_runtime::store::Db;
use sea_orm::DatabaseTransaction;
use tracing::Instrument;
use tracing::field::Empty;
use uuid::Uuid;

use crate::consents::Consents;
use crate::domain::invitation::Reason;
use crate::domain::matching::{Offered, Standing};
use crate::store::invitations::consent::{self, Decision};
use crate::store::invitations::offer;

/// The service that offers touchpoints.
pub const TOUCHPOINTS_SENDER: &str = "journey";
/// The service that announces consent decisions.
pub const CONSENT_SENDER: &str = "profile";
/// Touchpoints a message may offer.
pub const MAX_OFFERED: usize = 10_000;

/// The survey service's inbox. `cache` holds the tenants' active triggers.
pub fn routes(handlers: Handlers, db: Db, consents: Consents, cache: Cache) -> Handlers {
    handlers
        .on::<TouchpointsOffered>(TOUCHPOINTS_SENDER, Arc::new(Offers { db, consents, cache }))
        .on::<ConsentChanged>(CONSENT_SENDER, Arc::new(ConsentChanges))
}

/// Offered touchpoints become invitations (or suppressions). The profile
/// service is asked for the customers' standing before the transaction
/// opens (a plan read outside it names them); inside, the plan is made
/// again, and only customers it names anew (a merge in between) are asked
/// there.
struct Offers {
    db: Db,
    consents: Consents,
    cache: Cache,
}

/// The standing asked before the transaction, and of whom.
struct Asked {
    customers: HashSet<Uuid>,
    standing: HashMap<Uuid, Standing>,
}

impl Offers {
    fn check(message: &TouchpointsOffered) -> Result<(), ServiceError> {
        let n = message.touchpoints.len();
        if n > MAX_OFFERED {
            let why = format!("has {n} items; at most {MAX_OFFERED} a message");
            return Err(ServiceError::invalid("touchpoints", why));
        }
        Ok(())
    }
}

#[async_trait]
impl Receive<TouchpointsOffered> for Offers {
    async fn prepare(&self, t: &TenantId, message: &TouchpointsOffered) -> Result<Option<Prepared>, ServiceError> {
        Self::check(message)?;
        let offered: Vec<Offered> = message.touchpoints.iter().cloned().filter_map(offered).collect();
        let span = tracing::info_span!("survey.consents", customers = Empty);
        async {
            let Some(plan) = offer::plan(&self.db, &self.cache, t, offered).await? else {
                return Ok(None);
            };
            let customers = plan.customers();
            tracing::Span::current().record("customers", count(customers.len()));
            let standing = self.consents.standing(t, &customers).await?;
            let asked = Asked { customers: customers.into_iter().collect(), standing };
            Ok(Some(Box::new(asked) as Prepared))
        }
        .instrument(span)
        .await
    }

    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        sender: &str,
        message: TouchpointsOffered,
    ) -> Result<AfterCommit, ServiceError> {
        self.receive_prepared(txn, t, sender, message, None).await
    }

    async fn receive_prepared(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: TouchpointsOffered,
        prepared: Option<Prepared>,
    ) -> Result<AfterCommit, ServiceError> {
        Self::check(&message)?;
        let n = message.touchpoints.len();
        let asked = prepared.and_then(|p| p.downcast::<Asked>().ok());
        let span = tracing::info_span!(
            "survey.invite",
            touchpoints = count(n),
            skipped = Empty,
            matched = Empty,
            replayed = Empty,
            invited = Empty,
            suppressed.budget = Empty,
            suppressed.consent = Empty,
            suppressed.sampling = Empty,
            suppressed.expired = Empty,
            suppressed.duplicate = Empty,
        );
        async {
            let offered: Vec<Offered> = message.touchpoints.into_iter().filter_map(offered).collect();
            tracing::Span::current().record("skipped", count(n - offered.len()));
            let outcome = match offer::plan(txn, &self.cache, t, offered).await? {
                Some(plan) => {
                    let Asked { customers: known, mut standing } =
                        asked.map(|a| *a).unwrap_or(Asked { customers: HashSet::new(), standing: HashMap::new() });
                    let anew: Vec<Uuid> = plan.customers().into_iter().filter(|c| !known.contains(c)).collect();
                    standing.extend(self.consents.standing(t, &anew).await?);
                    offer::record(txn, t, &plan, &standing, cx_runtime::store::now()).await?
                }
                None => offer::Outcome::default(),
            };
            let span = tracing::Span::current();
            span.record("matched", count(outcome.matched));
            span.record("replayed", count(outcome.replayed));
            span.record("invited", count(outcome.invited));
            for reason in Reason::ALL {
                span.record(field(reason), count(outcome.suppressed.get(&reason).copied().unwrap_or(0)));
            }
            if outcome.matched > 0 {
                tracing::info!(matched = outcome.matched, invited = outcome.invited, "offered touchpoints decided");
            }
            Ok(None)
        }
        .instrument(span)
        .await
    }
}

/// A count as a span attribute: a signed integer, which OpenTelemetry
/// exports as one (unsigned ones are exported as text).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The span field counting suppressions for `reason`.
fn field(reason: Reason) -> &'static str {
    match reason {
        Reason::Budget => "suppressed.budget",
        Reason::Consent => "suppressed.consent",
        Reason::Sampling => "suppressed.sampling",
        Reason::Expired => "suppressed.expired",
        Reason::Duplicate => "suppressed.duplicate",
    }
}

/// An offered touchpoint as matching reads it; `None` (logged) when journey
/// sent something it never stores.
fn offered(tp: OfferedTouchpoint) -> Option<Offered> {
    let parsed = parse(&tp);
    if let Err(why) = parsed {
        tracing::warn!(touchpoint = %cx_runtime::error::clip(&tp.touchpoint_id), why, "offered touchpoint skipped");
    }
    parsed.ok()
}

fn parse(tp: &OfferedTouchpoint) -> Result<Offered, &'static str> {
    if tp.touchpoint_id.is_empty() || tp.touchpoint_id.chars().count() > 128 {
        return Err("touchpoint_id has 1 to 128 characters");
    }
    let customer = Uuid::parse_str(&tp.customer_id).map_err(|_| "customer_id is not a UUID")?;
    let at = tp.occur_time.as_ref().and_then(cx_proto::from_timestamp).ok_or("occur_time is not a valid instant")?;
    let map = match tp.map_id.as_str() {
        "" => None,
        raw => Some(Uuid::parse_str(raw).map_err(|_| "map_id is not a UUID")?),
    };
    if tp.step_key.chars().count() > 64 {
        return Err("step_key has at most 64 characters");
    }
    let purchase = match &tp.purchase_amount {
        None => None,
        Some(money) => Some((money.currency_code.clone(), money.micros().ok_or("purchase_amount is too large")?)),
    };
    Ok(Offered {
        id: tp.touchpoint_id.clone(),
        customer,
        at: cx_runtime::store::stored_instant(at),
        channel: tp.channel,
        kind: tp.kind,
        map,
        step: (!tp.step_key.is_empty()).then(|| tp.step_key.clone()),
        score: tp.experience_score,
        purchase,
    })
}

/// The profile service's `survey` consent decisions; other purposes are
/// not survey's concern.
struct ConsentChanges;

#[async_trait]
impl Receive<ConsentChanged> for ConsentChanges {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: ConsentChanged,
    ) -> Result<AfterCommit, ServiceError> {
        let survey = Some(purpose::Kind::Standard(ConsentPurpose::Survey as i32));
        if message.purpose.and_then(|p| p.kind) != survey {
            return Ok(None);
        }
        let customer =
            Uuid::parse_str(&message.profile_id).map_err(|_| ServiceError::invalid("profile_id", "is not a UUID"))?;
        let instant = |ts: &Option<prost_types::Timestamp>, field: &str| {
            ts.as_ref()
                .and_then(cx_proto::from_timestamp)
                .ok_or_else(|| cx_runtime::error::FieldViolation::new(field, "is not a valid instant"))
        };
        let (occurred_at, recorded_at) = cx_runtime::error::all2(
            instant(&message.occur_time, "occur_time"),
            instant(&message.record_time, "record_time"),
        )?;
        let decision = Decision { customer, granted: message.granted, occurred_at, recorded_at };
        let span =
            tracing::info_span!("survey.consent", granted = message.granted, in_force = Empty, suppressed = Empty);
        async {
            let applied = consent::apply(txn, t, decision).await?;
            let span = tracing::Span::current();
            span.record("in_force", applied.in_force);
            span.record("suppressed", i64::try_from(applied.suppressed).unwrap_or(i64::MAX));
            Ok(None)
        }
        .instrument(span)
        .await
    }
}
