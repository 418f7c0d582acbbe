//! The pages of `JourneyInternalService.ExportTouchFacts`: per customer with
//! a touchpoint stored at or before the cut, her touch days, purchase days
//! and last touch, summed as segmentation sums the touchpoints offered to it
//! (docs/DOMAIN.md §8.5), so that a load up to the cut and the feed after it
//! add up to the same facts. A merge moves the merged customer's
//! touchpoints to the survivor (`peers::merge`) and an erasure deletes
//! them, so the rows' owners are already the survivors.
//!
//! A page is four statements whatever its size: its keys, then the touch
//! days, purchase days and last touches of its key range. It ends early
//! when its customers' facts stop fitting in `keyset::MAX_PAGE_BYTES`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::journey::v1::{CustomerTouchFacts, ExportTouchFactsResponse, PurchaseDay, TouchDay};
use cx_runtime::TenantId;
use cx_runtime::days::date_of;
use cx_runtime::keyset::{Page, fitting};
use cx_runtime::store::{numbered, utc_day};
use prost::Message;
use sea_orm::{ConnectionTrait, QueryResult, Value};
use uuid::Uuid;

use super::{JourneyError, JourneyStore, Result};

/// What an export counts: touchpoints stored at or before `cut`; touch
/// days from day number `touch_from` on, purchase days from `purchase_from`.
#[derive(Clone, Copy, Debug)]
pub struct TouchCut {
    pub cut: DateTime<Utc>,
    pub touch_from: i32,
    pub purchase_from: i32,
}

/// The parameters of one statement, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Value>);

impl Params {
    fn add(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }
}

/// A customer's sums as they are read.
#[derive(Default)]
struct Sums {
    touch_days: Vec<TouchDay>,
    purchase_days: Vec<PurchaseDay>,
    /// Latest instant, then the channel whose name sorts last.
    last: Option<(DateTime<Utc>, &'static str, Channel)>,
}

fn date(day: i32) -> String {
    date_of(day).format("%Y-%m-%d").to_string()
}

fn start_of(day: i32) -> DateTime<Utc> {
    date_of(day).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// A count or sum as the backend returns it (PostgreSQL counts in bigint).
fn int(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64>("", column).or_else(|_| row.try_get::<i32>("", column).map(i64::from))?)
}

impl JourneyStore {
    /// Up to `size` customers after `after` with a touchpoint counted, as
    /// one page of the export.
    pub async fn touch_page(
        &self,
        t: &TenantId,
        after: Option<Uuid>,
        size: u64,
        cut: TouchCut,
    ) -> Result<Page<ExportTouchFactsResponse>> {
        let db = self.db();
        let backend = db.get_database_backend();
        let mut p = Params::default();
        let (tenant, stored, limit) =
            (p.add(t.as_str()), p.add(cut.cut), p.add(i64::try_from(size).unwrap_or(i64::MAX).saturating_add(1)));
        let from = after.map(|id| format!(" AND customer_id > {}", p.add(id))).unwrap_or_default();
        let sql = format!(
            "SELECT DISTINCT customer_id FROM touchpoints WHERE tenant_id = {tenant} AND recorded_at <= {stored}{from} \
             ORDER BY customer_id LIMIT {limit}"
        );
        let (keys, more) = cx_runtime::keyset::keys(db, numbered(backend, &sql, p.0), size).await?;
        let Some(last) = keys.last().copied() else {
            return Ok(Page { message: ExportTouchFactsResponse::default(), last: None, more: false });
        };

        // The page's key range, and the touchpoints it counts.
        let range = |p: &mut Params| {
            let (tenant, stored, last) = (p.add(t.as_str()), p.add(cut.cut), p.add(last));
            let from = after.map(|id| format!(" AND customer_id > {}", p.add(id))).unwrap_or_default();
            format!("tenant_id = {tenant} AND recorded_at <= {stored} AND customer_id <= {last}{from}")
        };
        let day = utc_day(backend, "occurred_at");
        let mut sums: BTreeMap<Uuid, Sums> = keys.iter().map(|id| (*id, Sums::default())).collect();

        let mut p = Params::default();
        let counted = range(&mut p);
        let since = p.add(start_of(cut.touch_from));
        let sql = format!(
            "SELECT customer_id, {day} AS day, channel, COUNT(*) AS n FROM touchpoints \
             WHERE {counted} AND occurred_at >= {since} GROUP BY customer_id, {day}, channel"
        );
        for row in db.query_all_raw(numbered(backend, &sql, p.0)).await? {
            let customer: Uuid = row.try_get("", "customer_id")?;
            let channel: i16 = row.try_get("", "channel")?;
            let touch = TouchDay {
                date: date(row.try_get("", "day")?),
                channel: i32::from(channel),
                touchpoints: int(&row, "n")?,
            };
            sums.entry(customer).or_default().touch_days.push(touch);
        }

        let mut p = Params::default();
        let counted = range(&mut p);
        let since = p.add(start_of(cut.purchase_from));
        let sql = format!(
            "SELECT customer_id, {day} AS day, currency, COUNT(*) AS n, CAST(SUM(amount_micros) AS BIGINT) AS micros \
             FROM touchpoints WHERE {counted} AND occurred_at >= {since} \
             AND currency IS NOT NULL AND amount_micros IS NOT NULL GROUP BY customer_id, {day}, currency"
        );
        for row in db.query_all_raw(numbered(backend, &sql, p.0)).await? {
            let customer: Uuid = row.try_get("", "customer_id")?;
            let purchase = PurchaseDay {
                date: date(row.try_get("", "day")?),
                currency_code: row.try_get("", "currency")?,
                purchases: int(&row, "n")?,
                amount_micros: int(&row, "micros")?,
            };
            sums.entry(customer).or_default().purchase_days.push(purchase);
        }

        // The latest instant of each channel (twelve rows a customer at
        // most); equal instants settle on the channel whose name sorts
        // last, as segmentation's facts settle them.
        let mut p = Params::default();
        let counted = range(&mut p);
        let sql = format!(
            "SELECT customer_id, channel, MAX(occurred_at) AS at FROM touchpoints WHERE {counted} \
             GROUP BY customer_id, channel"
        );
        for row in db.query_all_raw(numbered(backend, &sql, p.0)).await? {
            let customer: Uuid = row.try_get("", "customer_id")?;
            let code: i16 = row.try_get("", "channel")?;
            let at: DateTime<Utc> = row.try_get("", "at")?;
            let channel = Channel::try_from(i32::from(code)).unwrap_or(Channel::Unspecified);
            let name = channel
                .key()
                .ok_or_else(|| JourneyError::Corrupt(format!("channel {code} of a touchpoint of {customer}")))?;
            let latest = &mut sums.entry(customer).or_default().last;
            if latest.is_none_or(|(seen, seen_name, _)| (at, name) > (seen, seen_name)) {
                *latest = Some((at, name, channel));
            }
        }

        let mut customers: Vec<CustomerTouchFacts> = sums
            .into_iter()
            .map(|(customer, mut s)| {
                s.touch_days.sort_by(|a, b| (&a.date, a.channel).cmp(&(&b.date, b.channel)));
                s.purchase_days.sort_by(|a, b| (&a.date, &a.currency_code).cmp(&(&b.date, &b.currency_code)));
                CustomerTouchFacts {
                    customer_id: customer.to_string(),
                    touch_days: s.touch_days,
                    purchase_days: s.purchase_days,
                    last_touch_time: s.last.map(|(at, _, _)| cx_proto::timestamp(at)),
                    last_channel: s.last.map_or(Channel::Unspecified, |(_, _, channel)| channel) as i32,
                }
            })
            .collect();
        // Customers with many days: the page ends where they stop fitting.
        let fit = fitting(customers.iter().map(Message::encoded_len));
        let (last, more) = if fit < customers.len() {
            customers.truncate(fit);
            (keys[fit - 1], true)
        } else {
            (last, more)
        };
        Ok(Page { message: ExportTouchFactsResponse { customers, cursor: String::new() }, last: Some(last), more })
    }
}
