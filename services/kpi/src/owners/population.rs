//! KPIs of a population (docs/DOMAIN.md §9.11): segmentation hands out the
//! filter's customers a page at a time ([`cx_runtime::population::PAGE`]),
//! each page's ids go to the owner of the figure, and the owners' counts,
//! which add up over customers, are added here. Memory stays one page.

use std::future::Future;

use cx_proto::profile::v1 as profile;
use cx_proto::segmentation::v1 as segmentation;
use cx_proto::segmentation::v1::segmentation_internal_service_client::SegmentationInternalServiceClient;
use cx_proto::survey::v1 as survey;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::peers::internal_call_failed;

use super::{Owners, SEGMENTATION, reachable};
use crate::filter::Filter;

impl Owners {
    /// `ask` folded over every page of `filter`'s population, from `start`:
    /// each call is given the total so far and one page's customer ids. A
    /// population of nobody asks nothing.
    pub(super) async fn over_population<T, F, Fut>(
        &self,
        t: &TenantId,
        filter: &Filter,
        start: T,
        mut ask: F,
    ) -> Result<T, ServiceError>
    where
        F: FnMut(T, Vec<String>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let peer = reachable(self.segmentation.as_ref(), "no segmentation endpoint: populations cannot be read")?;
        let mut total = start;
        let mut after = String::new();
        loop {
            let request = segmentation::ListPopulationRequest {
                segment_id: filter.segment.map(|s| s.to_string()).unwrap_or_default(),
                digital_categories: filter.categories.iter().map(|&c| c.to_owned()).collect(),
                after_customer_id: after,
                page_size: 0,
            };
            let mut client = SegmentationInternalServiceClient::new(peer.channel());
            let page = match client.list_population(peer.request(t, request)?).await {
                Ok(answer) => answer.into_inner(),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    let id = filter.segment.map(|s| s.to_string()).unwrap_or_default();
                    return Err(ServiceError::not_found(format_args!("segment {id}")));
                }
                Err(status) => return Err(internal_call_failed(SEGMENTATION, "list a population", &status)),
            };
            let Some(last) = page.customer_ids.last().cloned() else { return Ok(total) };
            total = ask(total, page.customer_ids).await?;
            if !page.more {
                return Ok(total);
            }
            after = last;
        }
    }
}

/// `page`'s score groups added into `total`, kept in day order, group by
/// group (by day when grouped by day; else the one group): counts only,
/// which is all this service reads of them ([`super::tally`]). A trend has
/// up to 3,660 days a page: each is found by binary search.
pub(super) fn add_groups(total: &mut Vec<survey::ScoreGroup>, page: Vec<survey::ScoreGroup>) {
    for group in page {
        match total.binary_search_by(|g| g.day.cmp(&group.day)) {
            Ok(i) => add_group(&mut total[i], &group),
            Err(i) => total.insert(i, group),
        }
    }
}

fn add_group(into: &mut survey::ScoreGroup, group: &survey::ScoreGroup) {
    let (nps, other) = (into.nps.get_or_insert_default(), group.nps.unwrap_or_default());
    nps.n += other.n;
    nps.promoters += other.promoters;
    nps.passives += other.passives;
    nps.detractors += other.detractors;
    let (csat, other) = (into.csat.get_or_insert_default(), group.csat.unwrap_or_default());
    csat.n += other.n;
    csat.satisfied += other.satisfied;
    let (ces, other) = (into.ces.get_or_insert_default(), group.ces.unwrap_or_default());
    ces.n += other.n;
    ces.score_sum += other.score_sum;
    ces.low_effort += other.low_effort;
    ces.score_squares += other.score_squares;
}

/// `page`'s lifecycle counts added into `total`, period by period.
pub(super) fn add_lifecycle(total: &mut [profile::LifecycleCounts], page: Vec<profile::LifecycleCounts>) {
    for (into, c) in total.iter_mut().zip(page) {
        into.customers_at_start += c.customers_at_start;
        into.lost_by_end += c.lost_by_end;
        into.new_customers += c.new_customers;
        into.lost_at_start += c.lost_at_start;
        into.reactivated += c.reactivated;
    }
}

/// `page`'s purchases added into `total`, period by period; the currency
/// is the first page's (each later page is asked in it).
pub(super) fn add_purchases(
    total: &mut profile::AggregatePurchasesResponse,
    page: profile::AggregatePurchasesResponse,
) {
    if total.currency.is_empty() {
        total.currency = page.currency;
    }
    for (into, p) in total.periods.iter_mut().zip(page.periods) {
        into.purchases += p.purchases;
        into.amount_micros += p.amount_micros;
        into.amount_squares += p.amount_squares;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nps(n: i64, promoters: i64, detractors: i64) -> Option<survey::NpsAggregate> {
        Some(survey::NpsAggregate {
            n,
            promoters,
            passives: n - promoters - detractors,
            detractors,
            ..Default::default()
        })
    }

    #[test]
    fn pages_add_up_by_day() {
        let day = |d: &str, n| survey::ScoreGroup { day: d.into(), nps: nps(n, 1, 1), ..Default::default() };
        let mut total = Vec::new();
        add_groups(&mut total, vec![day("2026-01-02", 3)]);
        add_groups(&mut total, vec![day("2026-01-01", 2), day("2026-01-02", 4)]);
        let days: Vec<_> = total.iter().map(|g| (g.day.as_str(), g.nps.unwrap().n, g.nps.unwrap().promoters)).collect();
        assert_eq!(days, [("2026-01-01", 2, 1), ("2026-01-02", 7, 2)]);
    }

    #[test]
    fn periods_add_up_in_order() {
        let counts = |s, r| profile::LifecycleCounts { customers_at_start: s, reactivated: r, ..Default::default() };
        let mut total = vec![counts(0, 0); 2];
        add_lifecycle(&mut total, vec![counts(5, 1), counts(2, 0)]);
        add_lifecycle(&mut total, vec![counts(3, 2), counts(1, 1)]);
        assert_eq!(total, vec![counts(8, 3), counts(3, 1)]);
    }
}
