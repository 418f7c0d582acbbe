//! `cx.survey.v1.SurveyInternalService`: what other services ask survey,
//! behind the service identity (user tokens are refused by the server):
//! every customer's latest scores and open cases, page by page, for the
//! service keeping a copy of them ([`cx_runtime::keyset`],
//! [`crate::store::score_facts`]); the score aggregates and the counts of
//! follow-up cases, for the kpi service (the public RPCs' own code,
//! `api::aggregates`, `store::cases::report`).

use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_internal_service_server::SurveyInternalService;
use cx_runtime::cache::Cache;
use cx_runtime::error::all2;
use cx_runtime::identity::{KPI, tenant_of_call_by};
use cx_runtime::input::optional_uuid;
use cx_runtime::keyset::{FACT_LOADER, Keyset, pages};
use futures::stream::BoxStream;
use tonic::{Request, Response, Status};

use crate::store::{SurveyStore, cases};

/// A duration in hours, as the kpi service reports times (exact to the
/// microsecond a case's times are kept to).
fn hours(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 3_600_000_000.0
}

#[derive(Clone, Debug)]
pub struct SurveyInternal {
    store: SurveyStore,
    /// Where its data generation lives ([`cx_runtime::cache::generation`]).
    cache: Cache,
}

impl SurveyInternal {
    pub fn new(store: SurveyStore, cache: Cache) -> Self {
        Self { store, cache }
    }
}

#[tonic::async_trait]
impl SurveyInternalService for SurveyInternal {
    type ExportScoreFactsStream = BoxStream<'static, Result<pb::ExportScoreFactsResponse, Status>>;

    async fn export_score_facts(
        &self,
        request: Request<pb::ExportScoreFactsRequest>,
    ) -> Result<Response<Self::ExportScoreFactsStream>, Status> {
        let t = tenant_of_call_by(&request, FACT_LOADER)?;
        let pb::ExportScoreFactsRequest { after_profile_id, page_size } = request.into_inner();
        let start = Keyset::parse(&after_profile_id, "after_profile_id", page_size)?;
        let store = self.store.clone();
        let read = move |after, size| {
            let (store, t) = (store.clone(), t.clone());
            async move { store.score_page(&t, after, size).await }
        };
        Ok(Response::new(pages(start, |page, cursor| page.cursor = cursor, read)))
    }

    async fn aggregate_scores(
        &self,
        request: Request<pb::AggregateScoresRequest>,
    ) -> Result<Response<pb::AggregateScoresResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let pb::AggregateScoresRequest { query, customer_ids } = request.into_inner();
        let customers = cx_runtime::population::customer_ids(&customer_ids, "customer_ids")?;
        let query = query.unwrap_or_default();
        let groups = super::aggregates::score_aggregates(&self.store, &t, &query, &customers).await?.groups;
        Ok(Response::new(pb::AggregateScoresResponse { groups }))
    }

    async fn get_data_generation(
        &self,
        request: Request<pb::GetDataGenerationRequest>,
    ) -> Result<Response<pb::GetDataGenerationResponse>, Status> {
        let generation = cx_runtime::cache::generation::asked(&self.cache, &request, crate::NAME).await?;
        Ok(Response::new(pb::GetDataGenerationResponse { generation }))
    }

    async fn count_open_cases(
        &self,
        request: Request<pb::CountOpenCasesRequest>,
    ) -> Result<Response<pb::CountOpenCasesResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let open = cases::open_now(self.store.db(), &t, cx_runtime::store::now()).await?;
        Ok(Response::new(pb::CountOpenCasesResponse {
            open: open.open,
            overdue: open.overdue,
            next_due_time: open.next_due.map(cx_proto::timestamp),
        }))
    }

    async fn aggregate_cases(
        &self,
        request: Request<pb::AggregateCasesRequest>,
    ) -> Result<Response<pb::AggregateCasesResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let r = request.get_ref();
        let (ranges, survey) =
            all2(cx_runtime::days::periods(&r.periods), optional_uuid(&r.survey_id, "survey_id", "a survey id"))?;
        let now = cx_runtime::store::now();
        let mut periods = Vec::with_capacity(ranges.len());
        for ((first, last), asked) in ranges.into_iter().zip(&r.periods) {
            let report = cases::report(self.store.db(), &t, first, last, survey, now).await?;
            periods.push(pb::CaseCounts {
                period: Some(asked.clone()),
                opened: report.opened,
                acted_within_sla: report.acted_within_sla,
                resolved: report.resolved,
                median_resolution_hours: report.median_time_to_resolution.map_or(0.0, hours),
                resolution_low_hours: report.resolution_interval.map_or(0.0, |(low, _)| hours(low)),
                resolution_high_hours: report.resolution_interval.map_or(0.0, |(_, high)| hours(high)),
            });
        }
        Ok(Response::new(pb::AggregateCasesResponse { periods }))
    }
}
