//! The counts asked of the services owning the data, as this service (a
//! service identity, never the caller's token): survey's score roll-ups
//! (`SurveyInternalService.AggregateScores`, docs/DOMAIN.md §7.8), whole or
//! by day, and profile's customers by lifecycle
//! (`ProfileInternalService.AggregateLifecycle`, §9.2, §9.3), per period;
//! of a population's customers only, a page at a time ([`population`]).

mod population;

use chrono::NaiveDate;
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_internal_service_client::JourneyInternalServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::survey::v1 as survey;
use cx_proto::survey::v1::survey_internal_service_client::SurveyInternalServiceClient;
use cx_runtime::TenantId;
use cx_runtime::days::{day_range, written};
use cx_runtime::error::ServiceError;
use cx_runtime::peers::{InternalPeer, internal_call_failed};
use cx_runtime::stats::{Moments, NpsCounts};

use crate::clv::{Cost, inputs, year_ending};
use crate::filter::Filter;
use crate::metric::Metric;
use crate::tally::{Currency, Tally};

/// The survey service's name, as the registry and its endpoint name it.
pub const SURVEY: &str = "survey";
/// The profile service's.
pub const PROFILE: &str = "profile";
/// The journey service's.
pub const JOURNEY: &str = "journey";
/// The segmentation service's: it hands out populations.
pub const SEGMENTATION: &str = "segmentation";

/// The services this one asks.
#[derive(Clone, Debug)]
pub struct Owners {
    survey: Option<InternalPeer>,
    profile: Option<InternalPeer>,
    journey: Option<InternalPeer>,
    segmentation: Option<InternalPeer>,
}

/// The service that counts `metric`.
pub fn owner_of(metric: Metric) -> &'static str {
    match metric {
        Metric::Nps | Metric::Csat | Metric::Ces | Metric::ClosedLoop | Metric::ResolutionTime => SURVEY,
        Metric::Churn | Metric::Retention | Metric::Reactivation | Metric::Clv => PROFILE,
        Metric::Conversion => JOURNEY,
    }
}

/// The peer, or UNAVAILABLE saying `missing` when the deployment has no
/// endpoint for it.
fn reachable<'a>(peer: Option<&'a InternalPeer>, missing: &str) -> Result<&'a InternalPeer, ServiceError> {
    peer.ok_or_else(|| ServiceError::Unavailable(missing.to_owned()))
}

impl Owners {
    /// `survey`, `profile`, `journey`, `segmentation`: their internal RPCs,
    /// when the deployment runs them.
    pub fn new(
        survey: Option<InternalPeer>,
        profile: Option<InternalPeer>,
        journey: Option<InternalPeer>,
        segmentation: Option<InternalPeer>,
    ) -> Self {
        Self { survey, profile, journey, segmentation }
    }

    /// `metric`'s counts over days `first..=last` for `filter`.
    pub async fn tally(
        &self,
        t: &TenantId,
        metric: Metric,
        (first, last): (NaiveDate, NaiveDate),
        filter: &Filter,
        cost: Option<&Cost>,
    ) -> Result<Tally, ServiceError> {
        if metric.per_period() {
            let counted = self.periods(t, metric, &[(first, last)], filter, cost).await?;
            return Ok(counted.first().copied().unwrap_or(Tally::empty(metric)));
        }
        let groups = self.groups(t, (first, last), filter, false).await?;
        Ok(groups.first().map_or(Tally::empty(metric), |g| tally(metric, g)))
    }

    /// A per-period `metric`'s counts of each period, in order.
    pub async fn periods(
        &self,
        t: &TenantId,
        metric: Metric,
        periods: &[(NaiveDate, NaiveDate)],
        filter: &Filter,
        cost: Option<&Cost>,
    ) -> Result<Vec<Tally>, ServiceError> {
        if metric == Metric::Clv {
            return Ok(self.lifecycle_and_clv(t, periods, filter, cost).await?.1);
        }
        if metric.of_cases() {
            return Ok(self.cases(t, periods, filter).await?.iter().map(|c| of_cases(metric, c)).collect());
        }
        if metric == Metric::Conversion {
            return self.conversion(t, periods, filter).await;
        }
        let counted = self.lifecycle(t, periods, filter).await?;
        Ok(counted.iter().map(|c| customers(metric, c)).collect())
    }

    /// Profile's customers (of `filter`'s population) by lifecycle in each
    /// period, in order.
    pub async fn lifecycle(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        filter: &Filter,
    ) -> Result<Vec<profile::LifecycleCounts>, ServiceError> {
        if !filter.has_population() {
            return self.lifecycle_of(t, periods, Vec::new()).await;
        }
        let start = no_customers(periods);
        self.over_population(t, filter, start, |mut total, ids| async move {
            population::add_lifecycle(&mut total, self.lifecycle_of(t, periods, ids).await?);
            Ok(total)
        })
        .await
    }

    /// Profile's lifecycle counts of each period, of `customer_ids` only
    /// when given.
    async fn lifecycle_of(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        customer_ids: Vec<String>,
    ) -> Result<Vec<profile::LifecycleCounts>, ServiceError> {
        let peer = reachable(self.profile.as_ref(), "no profile endpoint: customers' lifecycles cannot be read")?;
        let periods = periods.iter().copied().map(day_range).collect();
        let request = profile::AggregateLifecycleRequest { periods, customer_ids };
        let mut client = ProfileInternalServiceClient::new(peer.channel());
        Ok(client
            .aggregate_lifecycle(peer.request(t, request)?)
            .await
            .map_err(|s| internal_call_failed(PROFILE, "aggregate lifecycles", &s))?
            .into_inner()
            .periods)
    }

    /// Profile's purchases in each period, in `currency` (empty: the
    /// tenant's busiest), of `customer_ids` only when given.
    async fn purchases_of(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        currency: String,
        customer_ids: Vec<String>,
    ) -> Result<profile::AggregatePurchasesResponse, ServiceError> {
        let peer = reachable(self.profile.as_ref(), "no profile endpoint: customers' purchases cannot be read")?;
        let periods = periods.iter().copied().map(day_range).collect();
        let request = profile::AggregatePurchasesRequest { periods, currency, customer_ids };
        let mut client = ProfileInternalServiceClient::new(peer.channel());
        client
            .aggregate_purchases(peer.request(t, request)?)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| internal_call_failed(PROFILE, "aggregate purchases", &s))
    }

    /// Profile's lifecycle counts of each period, and CLV's inputs of each
    /// (docs/DOMAIN.md §9.4), in order: worked from those counts, the counts
    /// of the years ending with the periods, and the purchases in the cost's
    /// currency (or the busiest). One answer for callers that need both; one
    /// walk of `filter`'s population for all three.
    pub async fn lifecycle_and_clv(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        filter: &Filter,
        cost: Option<&Cost>,
    ) -> Result<(Vec<profile::LifecycleCounts>, Vec<Tally>), ServiceError> {
        let years: Vec<_> = periods.iter().map(|&(_, last)| year_ending(last)).collect();
        let (currency, micros) = cost.cloned().unwrap_or_default();
        // The periods and the years in one ask: profile groups the purchase
        // days by customer once for all of them.
        let both: Vec<_> = periods.iter().chain(&years).copied().collect();
        let both = &both;
        let ask = |ids: Vec<String>, currency: String| async move {
            let (mut counted, bought) = tokio::try_join!(
                self.lifecycle_of(t, both, ids.clone()),
                self.purchases_of(t, periods, currency, ids),
            )?;
            if counted.len() != both.len() || bought.periods.len() != periods.len() {
                return Err(ServiceError::Internal("profile answered another number of periods than asked".into()));
            }
            let yearly = counted.split_off(periods.len());
            Ok((counted, yearly, bought))
        };
        let (counted, yearly, bought) = if filter.has_population() {
            let none = profile::PurchaseSums::default();
            let start = (
                no_customers(periods),
                no_customers(&years),
                profile::AggregatePurchasesResponse { currency: String::new(), periods: vec![none; periods.len()] },
            );
            let ask = &ask;
            let asked = &currency;
            self.over_population(t, filter, start, |(mut counted, mut yearly, mut bought), ids| async move {
                // Every page in the currency the first one was counted in.
                let currency = if bought.currency.is_empty() { asked.clone() } else { bought.currency.clone() };
                let (c, y, b) = ask(ids, currency).await?;
                population::add_lifecycle(&mut counted, c);
                population::add_lifecycle(&mut yearly, y);
                population::add_purchases(&mut bought, b);
                Ok((counted, yearly, bought))
            })
            .await?
        } else {
            ask(Vec::new(), currency).await?
        };
        let currency = Currency::parse(&bought.currency);
        let tallies = periods
            .iter()
            .zip(counted.iter().zip(&yearly).zip(&bought.periods))
            .map(|(&days, ((period, year), sums))| Tally::Clv {
                inputs: inputs(days, period, year, sums, micros),
                currency,
            })
            .collect();
        Ok((counted, tallies))
    }

    /// `metric`'s counts of each day of `first..=last` with answers, in day order.
    pub async fn daily(
        &self,
        t: &TenantId,
        metric: Metric,
        (first, last): (NaiveDate, NaiveDate),
        filter: &Filter,
    ) -> Result<Vec<(NaiveDate, Tally)>, ServiceError> {
        let groups = self.daily_groups(t, (first, last), filter).await?;
        Ok(groups.iter().map(|(day, g)| (*day, tally(metric, g))).collect())
    }

    /// Survey's score aggregates of each day of `first..=last` with answers,
    /// in day order.
    pub async fn daily_groups(
        &self,
        t: &TenantId,
        (first, last): (NaiveDate, NaiveDate),
        filter: &Filter,
    ) -> Result<Vec<(NaiveDate, survey::ScoreGroup)>, ServiceError> {
        let groups = self.groups(t, (first, last), filter, true).await?;
        groups
            .into_iter()
            .map(|g| {
                let day = NaiveDate::parse_from_str(&g.day, "%Y-%m-%d")
                    .map_err(|_| ServiceError::Internal(format!("survey grouped by a day it wrote {:?}", g.day)))?;
                Ok((day, g))
            })
            .collect()
    }

    /// Survey's score aggregates of the days `first..=last` as one group.
    pub async fn score_group(
        &self,
        t: &TenantId,
        range: (NaiveDate, NaiveDate),
        filter: &Filter,
    ) -> Result<survey::ScoreGroup, ServiceError> {
        let groups = self.groups(t, range, filter, false).await?;
        Ok(groups.into_iter().next().unwrap_or_default())
    }

    /// Every journey map's conversion, plan and funnel over `range`.
    pub async fn maps(
        &self,
        t: &TenantId,
        range: (NaiveDate, NaiveDate),
    ) -> Result<journey::SummarizeMapsResponse, ServiceError> {
        let peer = reachable(self.journey.as_ref(), "no journey endpoint: journey maps cannot be read")?;
        let request = journey::SummarizeMapsRequest { period: Some(day_range(range)), plan_steps: 0 };
        let mut client = JourneyInternalServiceClient::new(peer.channel());
        Ok(client
            .summarize_maps(peer.request(t, request)?)
            .await
            .map_err(|s| internal_call_failed(JOURNEY, "summarize maps", &s))?
            .into_inner())
    }

    /// Profile's customers by stage as of `as_of` ("YYYY-MM-DD") and by
    /// digital intensity.
    pub async fn distributions(
        &self,
        t: &TenantId,
        as_of: String,
    ) -> Result<profile::AggregateDistributionsResponse, ServiceError> {
        let peer = reachable(self.profile.as_ref(), "no profile endpoint: customers cannot be counted")?;
        let mut client = ProfileInternalServiceClient::new(peer.channel());
        let request = profile::AggregateDistributionsRequest { as_of_day: as_of };
        Ok(client
            .aggregate_distributions(peer.request(t, request)?)
            .await
            .map_err(|s| internal_call_failed(PROFILE, "count customers by stage and intensity", &s))?
            .into_inner())
    }

    /// Survey's unresolved cases now.
    pub async fn open_cases(&self, t: &TenantId) -> Result<survey::CountOpenCasesResponse, ServiceError> {
        let peer = reachable(self.survey.as_ref(), "no survey endpoint: follow-up cases cannot be read")?;
        let mut client = SurveyInternalServiceClient::new(peer.channel());
        Ok(client
            .count_open_cases(peer.request(t, survey::CountOpenCasesRequest {})?)
            .await
            .map_err(|s| internal_call_failed(SURVEY, "count open cases", &s))?
            .into_inner())
    }

    /// The services this deployment does not run, of those asked.
    pub fn missing(&self) -> Vec<&'static str> {
        [(SURVEY, &self.survey), (PROFILE, &self.profile), (JOURNEY, &self.journey)]
            .into_iter()
            .filter(|(_, peer)| peer.is_none())
            .map(|(name, _)| name)
            .collect()
    }

    /// Whether the deployment runs segmentation, which populations need.
    pub fn has_populations(&self) -> bool {
        self.segmentation.is_some()
    }

    /// The current generation of each owner's data ([`cx_runtime::cache::generation`]),
    /// as `service=generation` in a fixed order; one the deployment lacks has none.
    pub async fn generations(&self, t: &TenantId) -> Result<String, ServiceError> {
        let survey = async {
            let Some(peer) = &self.survey else { return Ok::<_, ServiceError>(String::new()) };
            let mut client = SurveyInternalServiceClient::new(peer.channel());
            let asked = client.get_data_generation(peer.request(t, survey::GetDataGenerationRequest {})?).await;
            Ok(asked.map_err(|s| internal_call_failed(SURVEY, "read the data generation", &s))?.into_inner().generation)
        };
        let profile = async {
            let Some(peer) = &self.profile else { return Ok::<_, ServiceError>(String::new()) };
            let mut client = ProfileInternalServiceClient::new(peer.channel());
            let asked = client.get_data_generation(peer.request(t, profile::GetDataGenerationRequest {})?).await;
            Ok(asked
                .map_err(|s| internal_call_failed(PROFILE, "read the data generation", &s))?
                .into_inner()
                .generation)
        };
        let journey = async {
            let Some(peer) = &self.journey else { return Ok::<_, ServiceError>(String::new()) };
            let mut client = JourneyInternalServiceClient::new(peer.channel());
            let asked = client.get_data_generation(peer.request(t, journey::GetDataGenerationRequest {})?).await;
            Ok(asked
                .map_err(|s| internal_call_failed(JOURNEY, "read the data generation", &s))?
                .into_inner()
                .generation)
        };
        let (s, p, j): (String, String, String) = tokio::try_join!(survey, profile, journey)?;
        Ok(format!("{SURVEY}={s},{PROFILE}={p},{JOURNEY}={j}"))
    }

    /// A map's conversion counts of each period, in order. A map the
    /// tenant does not have is the caller's NOT_FOUND.
    async fn conversion(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        filter: &Filter,
    ) -> Result<Vec<Tally>, ServiceError> {
        let peer = reachable(self.journey.as_ref(), "no journey endpoint: journey maps cannot be read")?;
        let map = filter.map.ok_or_else(|| ServiceError::invalid("filter.map_id", "is required for CONVERSION"))?;
        let periods = periods.iter().copied().map(day_range).collect();
        let request = journey::AggregateConversionRequest { map_id: map.to_string(), periods };
        let mut client = JourneyInternalServiceClient::new(peer.channel());
        let counted = match client.aggregate_conversion(peer.request(t, request)?).await {
            Ok(answer) => answer.into_inner().periods,
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(ServiceError::not_found(format_args!("journey map {map}")));
            }
            Err(status) => return Err(internal_call_failed(JOURNEY, "aggregate conversions", &status)),
        };
        let metric = Metric::Conversion;
        Ok(counted.iter().map(|c| Tally::Counted { metric, k: c.conversions, n: c.instances }).collect())
    }

    /// Survey's counts of the cases opened in each period, in order: what
    /// the closed loop and the time to resolution are read from.
    pub async fn cases(
        &self,
        t: &TenantId,
        periods: &[(NaiveDate, NaiveDate)],
        filter: &Filter,
    ) -> Result<Vec<survey::CaseCounts>, ServiceError> {
        let peer = reachable(self.survey.as_ref(), "no survey endpoint: follow-up cases cannot be read")?;
        let periods = periods.iter().copied().map(day_range).collect();
        let survey_id = filter.surveys.first().map(ToString::to_string).unwrap_or_default();
        let request = survey::AggregateCasesRequest { periods, survey_id };
        let mut client = SurveyInternalServiceClient::new(peer.channel());
        Ok(client
            .aggregate_cases(peer.request(t, request)?)
            .await
            .map_err(|s| internal_call_failed(SURVEY, "aggregate cases", &s))?
            .into_inner()
            .periods)
    }

    /// Survey's score groups of `filter` (by day or one), of its population
    /// when it names one.
    async fn groups(
        &self,
        t: &TenantId,
        range: (NaiveDate, NaiveDate),
        filter: &Filter,
        by_day: bool,
    ) -> Result<Vec<survey::ScoreGroup>, ServiceError> {
        if !filter.has_population() {
            return self.groups_of(t, range, filter, by_day, Vec::new()).await;
        }
        self.over_population(t, filter, Vec::new(), |mut total, ids| async move {
            population::add_groups(&mut total, self.groups_of(t, range, filter, by_day, ids).await?);
            Ok(total)
        })
        .await
    }

    async fn groups_of(
        &self,
        t: &TenantId,
        (first, last): (NaiveDate, NaiveDate),
        filter: &Filter,
        by_day: bool,
        customer_ids: Vec<String>,
    ) -> Result<Vec<survey::ScoreGroup>, ServiceError> {
        let survey = reachable(self.survey.as_ref(), "no survey endpoint: survey scores cannot be read")?;
        let canonical = filter.proto();
        let query = survey::GetScoreAggregatesRequest {
            start_day: written(first),
            end_day: written(last),
            survey_ids: canonical.survey_ids,
            map_id: canonical.map_id,
            step_key: canonical.step_key,
            channels: canonical.channels,
            group_by: if by_day { vec![survey::Dimension::Day.into()] } else { Vec::new() },
        };
        let request = survey::AggregateScoresRequest { query: Some(query), customer_ids };
        let mut client = SurveyInternalServiceClient::new(survey.channel());
        Ok(client
            .aggregate_scores(survey.request(t, request)?)
            .await
            .map_err(|s| internal_call_failed(SURVEY, "aggregate scores", &s))?
            .into_inner()
            .groups)
    }
}

/// Each period with nobody counted yet.
fn no_customers(periods: &[(NaiveDate, NaiveDate)]) -> Vec<profile::LifecycleCounts> {
    let none = |&days| profile::LifecycleCounts { period: Some(day_range(days)), ..Default::default() };
    periods.iter().map(none).collect()
}

/// `metric`'s counts in survey's figures of one group.
pub fn tally(metric: Metric, group: &survey::ScoreGroup) -> Tally {
    match metric {
        Metric::Nps => {
            let a = group.nps.unwrap_or_default();
            Tally::Nps(NpsCounts { promoters: a.promoters, detractors: a.detractors, n: a.n })
        }
        Metric::Csat => {
            let a = group.csat.unwrap_or_default();
            Tally::Csat { satisfied: a.satisfied, n: a.n }
        }
        Metric::Churn
        | Metric::Retention
        | Metric::Reactivation
        | Metric::ClosedLoop
        | Metric::Conversion
        | Metric::Clv
        | Metric::ResolutionTime => Tally::empty(metric),
        Metric::Ces => {
            let a = group.ces.unwrap_or_default();
            // Sums of scores 1–7 are exact in an f64 far past any count.
            Tally::Ces(Moments { n: a.n, sum: a.score_sum as f64, sum_sq: a.score_squares as f64 })
        }
    }
}

/// A cases' `metric` in survey's counts of one period: the closed loop's
/// cases acted on within their SLA, or the median time to resolution.
pub fn of_cases(metric: Metric, c: &survey::CaseCounts) -> Tally {
    match metric {
        Metric::ResolutionTime => Tally::Median {
            n: c.resolved,
            median: c.median_resolution_hours,
            low: c.resolution_low_hours,
            high: c.resolution_high_hours,
        },
        _ => Tally::Counted { metric: Metric::ClosedLoop, k: c.acted_within_sla, n: c.opened },
    }
}

/// A lifecycle `metric`'s customers in profile's counts of one period.
pub fn customers(metric: Metric, c: &profile::LifecycleCounts) -> Tally {
    let (k, n) = match metric {
        Metric::Churn => (c.lost_by_end, c.customers_at_start),
        Metric::Retention => (c.customers_at_start.saturating_sub(c.lost_by_end), c.customers_at_start),
        Metric::Reactivation => (c.reactivated, c.lost_at_start),
        Metric::Nps
        | Metric::Csat
        | Metric::Ces
        | Metric::ClosedLoop
        | Metric::Conversion
        | Metric::Clv
        | Metric::ResolutionTime => (0, 0),
    };
    Tally::Counted { metric, k, n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_metric_reads_its_own_counts_of_the_group() {
        let group = survey::ScoreGroup {
            nps: Some(survey::NpsAggregate { n: 8, promoters: 4, passives: 2, detractors: 2, ..Default::default() }),
            csat: Some(survey::CsatAggregate { n: 10, satisfied: 7, ..Default::default() }),
            ces: Some(survey::CesAggregate { n: 10, score_sum: 42, score_squares: 218, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(tally(Metric::Nps, &group), Tally::Nps(NpsCounts { promoters: 4, detractors: 2, n: 8 }));
        assert_eq!(tally(Metric::Csat, &group), Tally::Csat { satisfied: 7, n: 10 });
        assert_eq!(tally(Metric::Ces, &group), Tally::Ces(Moments { n: 10, sum: 42.0, sum_sq: 218.0 }));
        assert_eq!(tally(Metric::Ces, &survey::ScoreGroup::default()), Tally::empty(Metric::Ces));
    }
}
