//! Applying one page of a load, inside the transaction that also records
//! its cursor: profile's and survey's through the feeds' own functions (the
//! later fact wins, so load and feed commute), journey's by replacing the
//! page's key range (docs/DECISIONS.md, "Loading facts").

use std::collections::HashSet;

use chrono::NaiveDate;
use cx_proto::journey::v1::{CustomerTouchFacts, ExportTouchFactsResponse};
use cx_proto::profile::v1::ExportProfileFactsResponse;
use cx_proto::survey::v1::ExportScoreFactsResponse;
use cx_runtime::TenantId;
use cx_runtime::days::date_number;
use cx_runtime::error::ServiceError;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::inbox::feeds;
use crate::inbox::touchpoints::channel;
use crate::rfm::PurchaseDay;
use crate::store::touches::{self, Loaded};

/// A page of one source's export.
#[derive(Clone, Debug)]
pub enum Page {
    Profile(ExportProfileFactsResponse),
    Journey(ExportTouchFactsResponse),
    Survey(ExportScoreFactsResponse),
}

impl Page {
    /// The last customer id the page covers, as the source sent it.
    pub fn cursor(&self) -> &str {
        match self {
            Page::Profile(p) => &p.cursor,
            Page::Journey(p) => &p.cursor,
            Page::Survey(p) => &p.cursor,
        }
    }

    /// The customers it carries.
    pub fn customers(&self) -> i64 {
        let n = match self {
            Page::Profile(p) => p.facts.len(),
            Page::Journey(p) => p.customers.len(),
            Page::Survey(p) => {
                let ids = p.scores.iter().map(|s| &s.profile_id).chain(p.open_cases.iter().map(|c| &c.profile_id));
                ids.collect::<HashSet<_>>().len()
            }
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

/// Applies `page`, which covers the customer ids in (`after`, `through`],
/// as of day number `today`.
pub async fn apply(
    txn: &DatabaseTransaction,
    t: &TenantId,
    after: Option<Uuid>,
    through: Option<Uuid>,
    page: Page,
    today: i32,
) -> Result<(), ServiceError> {
    match page {
        Page::Profile(page) => {
            for facts in page.facts {
                skip_invalid(feeds::profile_facts_changed(txn, t, facts).await)?;
            }
            for consent in page.consents {
                skip_invalid(feeds::consent_changed(txn, t, consent).await)?;
            }
        }
        Page::Survey(page) => {
            for score in page.scores {
                skip_invalid(feeds::score_recorded(txn, t, score, true).await)?;
            }
            for cases in page.open_cases {
                skip_invalid(feeds::open_cases_changed(txn, t, cases).await)?;
            }
        }
        Page::Journey(page) => {
            let mut loaded: Vec<Loaded> = page.customers.iter().filter_map(customer).collect();
            let named: Vec<Uuid> = loaded.iter().map(|l| l.customer).collect();
            let kept = crate::inbox::kept(txn, t, &named).await?;
            loaded.retain_mut(|l| match kept.get(&l.customer) {
                Some(owner) => {
                    l.customer = *owner;
                    true
                }
                None => false,
            });
            touches::replace_range(txn, t, after, through, &loaded, today).await?;
        }
    }
    Ok(())
}

/// An item the source should never send is logged and left out: the load
/// goes on without it rather than stop for good on it.
fn skip_invalid(applied: Result<(), ServiceError>) -> Result<(), ServiceError> {
    match applied {
        Err(ServiceError::InvalidArgument(violations)) => {
            let field = violations.first().map(|v| v.field.clone()).unwrap_or_default();
            tracing::warn!(field, "loaded fact skipped: not valid");
            Ok(())
        }
        other => other,
    }
}

/// A customer's touch facts as the store takes them; `None` (logged) when
/// its id is not a UUID. Days, purchases or a last touch that do not parse
/// are left out.
fn customer(c: &CustomerTouchFacts) -> Option<Loaded> {
    let Ok(customer) = Uuid::parse_str(&c.customer_id) else {
        tracing::warn!(customer = %cx_runtime::error::clip(&c.customer_id), "loaded customer skipped: not a UUID");
        return None;
    };
    let day = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().map(date_number);
    let days = c
        .touch_days
        .iter()
        .filter_map(|d| Some((day(&d.date)?, channel(d.channel)?.0, d.touchpoints)))
        .filter(|(_, _, n)| *n > 0)
        .collect();
    let purchases = c
        .purchase_days
        .iter()
        .filter(|p| p.currency_code.len() == 3 && p.currency_code.bytes().all(|b| b.is_ascii_uppercase()))
        .filter_map(|p| {
            Some(PurchaseDay {
                day: NaiveDate::parse_from_str(&p.date, "%Y-%m-%d").ok()?,
                currency: p.currency_code.clone(),
                purchases: p.purchases,
                amount_micros: p.amount_micros,
            })
        })
        .filter(|p| p.purchases > 0)
        .collect();
    let at = c.last_touch_time.as_ref().and_then(cx_proto::from_timestamp).map(cx_runtime::store::stored_instant);
    let last = at.zip(channel(c.last_channel).map(|(_, name)| name));
    Some(Loaded { customer, days, purchases, last })
}
