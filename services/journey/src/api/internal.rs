//! `cx.journey.v1.JourneyInternalService`: what other services ask journey,
//! behind the service identity (user tokens are refused by the server):
//! every customer's touchpoint facts, page by page, for the service keeping
//! a copy of them ([`cx_runtime::keyset`], [`crate::store::touch_facts`]);
//! a map's conversion per period, for the kpi service (AnalyzeJourney's own
//! analysis, through its cache).

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
        for ((first, last), asked) in ranges.into_iter().zip(&r.periods) {
            let since = first.and_time(chrono::NaiveTime::MIN).and_utc();
            let until = since + chrono::Duration::days((last - first).num_days() + 1);
            let analysis = self.api.analysis(&t, &map, since, until, 0).await?;
            periods.push(pb::ConversionCounts {
                period: Some(asked.clone()),
                instances: analysis.instances,
                conversions: analysis.conversions,
            });
        }
        Ok(Response::new(pb::AggregateConversionResponse { periods }))
    }
}
