//! `cx.journey.v1.JourneyInternalService`: what other services ask journey,
//! behind the service identity (user tokens are refused by the server):
//! every customer's touchpoint facts, page by page, for the service keeping
//! a copy of them ([`cx_runtime::keyset`], [`crate::store::touch_facts`]);
//! a map's conversion per period, for the kpi service (AnalyzeJourney's own
//! analysis, through its cache).

use chrono::{DateTime, Utc};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_internal_service_server::JourneyInternalService;
use cx_runtime::days::day_number;
use cx_runtime::error::{FieldViolation, all3};
use cx_runtime::identity::{KPI, tenant_of_call_by};
use cx_runtime::input::parse_uuid;
use cx_runtime::keyset::{FACT_LOADER, Keyset, pages};
use futures::stream::BoxStream;
use tonic::{Request, Response, Status};

use super::JourneyApi;
use crate::store::JourneyStore;
use crate::store::touch_facts::TouchCut;

/// Most days of touch or purchase counts an export sends: a year and a
/// bit, what RFM's window needs.
pub const MAX_EXPORT_DAYS: i32 = 400;

#[derive(Clone, Debug)]
pub struct JourneyInternal {
    store: JourneyStore,
    /// Its analyses, cached per map as AnalyzeJourney's are.
    api: JourneyApi,
}

impl JourneyInternal {
    pub fn new(store: JourneyStore, api: JourneyApi) -> Self {
        Self { store, api }
    }
}

fn days(requested: i32, field: &str) -> Result<i32, FieldViolation> {
    if (1..=MAX_EXPORT_DAYS).contains(&requested) {
        Ok(requested)
    } else {
        Err(FieldViolation::new(field, format!("is {requested}; must be 1 to {MAX_EXPORT_DAYS}")))
    }
}

/// The request's cut: the instant, and the first day of each window
/// (`days` days up to today, UTC, included).
fn touch_cut(request: &pb::ExportTouchFactsRequest) -> Result<TouchCut, cx_runtime::error::Violations> {
    let cut = match &request.record_cut_time {
        None => Err(FieldViolation::new("record_cut_time", "is required")),
        Some(ts) => cx_proto::from_timestamp(ts)
            .ok_or_else(|| FieldViolation::new("record_cut_time", "is not a valid timestamp")),
    };
    let (cut, touch, purchase) =
        all3(cut, days(request.touch_days, "touch_days"), days(request.purchase_days, "purchase_days"))?;
    let today = day_number(chrono::Utc::now());
    Ok(TouchCut { cut, touch_from: today - (touch - 1), purchase_from: today - (purchase - 1) })
}

/// Maps a dashboard summary covers.
const SUMMARIZED_MAPS: u64 = 50;
const DEFAULT_PLAN_STEPS: i32 = 5;
const MAX_PLAN_STEPS: i32 = 50;

/// The instants `[since, until)` of whole days `first` to `last`.
fn instants((first, last): (chrono::NaiveDate, chrono::NaiveDate)) -> (DateTime<Utc>, DateTime<Utc>) {
    let since = first.and_time(chrono::NaiveTime::MIN).and_utc();
    (since, since + chrono::Duration::days((last - first).num_days() + 1))
}

/// A map's analysis cut to what a dashboard shows: the plan's first
/// `steps` steps that have a gap, and the funnel.
fn summary(map_id: String, name: String, analysis: pb::AnalyzeJourneyResponse, steps: i32) -> pb::MapSummary {
    let plan = analysis
        .improvement_plan
        .iter()
        .filter_map(|key| analysis.steps.iter().find(|s| &s.step_key == key))
        .filter(|s| s.gap > 0.0)
        .take(usize::try_from(steps).unwrap_or_default())
        .cloned()
        .collect();
    pb::MapSummary {
        map_id,
        name,
        instances: analysis.instances,
        conversions: analysis.conversions,
        plan,
        funnel: analysis.funnel,
    }
}

#[tonic::async_trait]
impl JourneyInternalService for JourneyInternal {
    type ExportTouchFactsStream = BoxStream<'static, Result<pb::ExportTouchFactsResponse, Status>>;

    async fn export_touch_facts(
        &self,
        request: Request<pb::ExportTouchFactsRequest>,
    ) -> Result<Response<Self::ExportTouchFactsStream>, Status> {
        let t = tenant_of_call_by(&request, FACT_LOADER)?;
        let request = request.into_inner();
        let (start, cut) = cx_runtime::error::all2(
            Keyset::parse(&request.after_customer_id, "after_customer_id", request.page_size),
            touch_cut(&request),
        )?;
        let store = self.store.clone();
        let read = move |after, size| {
            let (store, t) = (store.clone(), t.clone());
            async move { store.touch_page(&t, after, size, cut).await }
        };
        Ok(Response::new(pages(start, |page, cursor| page.cursor = cursor, read)))
    }

    async fn get_data_generation(
        &self,
        request: Request<pb::GetDataGenerationRequest>,
    ) -> Result<Response<pb::GetDataGenerationResponse>, Status> {
        let generation = cx_runtime::cache::generation::asked(&self.api.cache, &request, crate::NAME).await?;
        Ok(Response::new(pb::GetDataGenerationResponse { generation }))
    }

    async fn aggregate_conversion(
        &self,
        request: Request<pb::AggregateConversionRequest>,
    ) -> Result<Response<pb::AggregateConversionResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let r = request.get_ref();
        let (map, ranges) = cx_runtime::error::all2(
            parse_uuid(&r.map_id, "map_id", "a journey map id"),
            cx_runtime::days::periods(&r.periods),
        )?;
        let map = self.store.get_map(&t, map, None).await?;
        let mut periods = Vec::with_capacity(ranges.len());
        for (days, asked) in ranges.into_iter().zip(&r.periods) {
            let (since, until) = instants(days);
            let analysis = self.api.analysis(&t, &map, since, until, 0).await?;
            periods.push(pb::ConversionCounts {
                period: Some(asked.clone()),
                instances: analysis.instances,
                conversions: analysis.conversions,
            });
        }
        Ok(Response::new(pb::AggregateConversionResponse { periods }))
    }

    async fn summarize_maps(
        &self,
        request: Request<pb::SummarizeMapsRequest>,
    ) -> Result<Response<pb::SummarizeMapsResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let r = request.get_ref();
        let steps = match r.plan_steps {
            0 => Ok(DEFAULT_PLAN_STEPS),
            n @ 1..=MAX_PLAN_STEPS => Ok(n),
            n => Err(FieldViolation::new("plan_steps", format!("is {n}; must be 0 to {MAX_PLAN_STEPS}"))),
        };
        let (days, steps) = cx_runtime::error::all2(cx_runtime::days::period(r.period.as_ref(), "period"), steps)?;
        let (since, until) = instants(days);
        let mut maps = self.store.list_maps(&t, None, SUMMARIZED_MAPS + 1).await?;
        let truncated = maps.len() as u64 > SUMMARIZED_MAPS;
        maps.truncate(SUMMARIZED_MAPS as usize);
        let mut summaries = Vec::with_capacity(maps.len());
        for map in &maps {
            let analysis = self.api.analysis(&t, map, since, until, 0).await?;
            summaries.push(summary(map.id.to_string(), map.name.clone(), analysis, steps));
        }
        Ok(Response::new(pb::SummarizeMapsResponse { maps: summaries, truncated }))
    }
}
