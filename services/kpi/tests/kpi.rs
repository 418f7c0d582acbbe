//! KPIs and targets over the real services: profile, survey and kpi each on
//! its own loopback server, on PostgreSQL and SQLite. Answers go in through
//! survey's public API; the kpi service asks survey's roll-ups as itself and
//! must give the hand-worked figures (docs/DOMAIN.md §7.1–§7.3, §9.1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::common::v1::Channel;
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::kpi::v1 as pb;
use cx_proto::kpi::v1::kpi_service_client::KpiServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_internal_service_client::ProfileInternalServiceClient;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::survey::v1 as survey;
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use cx_runtime::error::field_violations;
use cx_runtime::registry::Registry;
use cx_testkit::{Backend, Cluster, Tokens, authed};
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;

cx_testkit::on_both_backends!(
    each_kpi_has_its_hand_worked_value_n_and_interval,
    periods_are_compared_and_trends_group_the_days,
    churn_retention_and_reactivation_count_customers_whose_lifecycle_changes_in_the_period,
    the_closed_loop_is_the_share_of_cases_acted_on_within_their_sla,
    resolution_time_is_the_median_of_the_resolved_cases_with_an_order_statistics_interval,
    conversion_is_the_share_of_a_maps_instances_that_reached_its_conversion_step,
    clv_is_worked_from_the_purchases_the_customers_exposure_and_the_annual_churn,
    targets_are_named_by_metric_and_canonical_filter_and_give_a_status,
    the_dashboard_shows_the_owners_own_figures_and_is_worked_out_again_only_after_a_write,
    snapshots_keep_each_days_kpis_as_they_were_computed,
    profile_counts_customers_per_stage_as_of_a_day_and_per_intensity_category_and_band,
    requests_are_checked_roles_enforced_and_tenants_kept_apart,
    kpis_of_a_segment_or_a_digital_category_count_its_customers_only
);

const SERVICES: Registry =
    Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE, cx_survey::SERVICE, cx_kpi::SERVICE]);
/// With segmentation, which hands out populations.
const WITH_SEGMENTS: Registry = Registry::new(&[
    cx_profile::SERVICE,
    cx_journey::SERVICE,
    cx_survey::SERVICE,
    cx_segmentation::SERVICE,
    cx_kpi::SERVICE,
]);
const MARCH: (&str, &str) = ("2026-03-01", "2026-03-31");

struct Suite {
    cluster: Cluster,
    who: Tokens,
}

impl Suite {
    async fn start(backend: Backend) -> Self {
        Self::start_with(SERVICES, backend).await
    }

    async fn start_with(services: Registry, backend: Backend) -> Self {
        Self { cluster: Cluster::start(services, backend).await, who: Tokens::new("kpi") }
    }

    async fn kpis(&self) -> KpiServiceClient<GrpcChannel> {
        KpiServiceClient::new(self.cluster.server("kpi").channel().await)
    }

    async fn surveys(&self) -> SurveyServiceClient<GrpcChannel> {
        SurveyServiceClient::new(self.cluster.server("survey").channel().await)
    }

    /// An anonymous survey of `kind` (answers count on the web channel),
    /// answered `scores` on 2 March 2026; its id.
    async fn answered(&self, kind: survey::SurveyType, scores: &[i32]) -> String {
        let id = self.survey(kind).await;
        self.answer(&id, scores, "2026-03-02").await;
        id
    }

    /// An anonymous survey of `kind`; its id.
    async fn survey(&self, kind: survey::SurveyType) -> String {
        let definition = survey::Survey {
            name: format!("{kind:?} after delivery"),
            r#type: kind as i32,
            language: "en".into(),
            title: "Your delivery".into(),
            score_question: "How was it?".into(),
            channel: Channel::Email as i32,
            allow_anonymous: true,
            ..Default::default()
        };
        let request = authed(survey::CreateSurveyRequest { survey: Some(definition) }, &self.who.admin);
        self.surveys().await.create_survey(request).await.unwrap().into_inner().survey.unwrap().id
    }

    /// Survey `id` answered `scores` at 10:00 UTC on `day`.
    async fn answer(&self, id: &str, scores: &[i32], day: &str) {
        for (i, &score) in scores.iter().enumerate() {
            let response = survey::Response {
                id: format!("{id}-{day}-{i}"),
                survey_id: id.into(),
                score,
                respond_time: Some(cx_proto::timestamp(format!("{day}T10:00:00Z").parse().unwrap())),
                ..Default::default()
            };
            let request = authed(survey::SubmitResponseRequest { response: Some(response) }, &self.who.writer);
            self.surveys().await.submit_response(request).await.unwrap();
        }
    }

    async fn get(
        &self,
        metric: pb::Metric,
        filter: Option<pb::Filter>,
        token: &str,
    ) -> Result<pb::KpiValue, tonic::Status> {
        let request = pb::GetKpiRequest {
            metric: metric as i32,
            start_day: MARCH.0.into(),
            end_day: MARCH.1.into(),
            filter,
            compare_previous: false,
            acquisition_cost: None,
        };
        Ok(self.kpis().await.get_kpi(authed(request, token)).await?.into_inner().kpi.unwrap())
    }

    async fn set(
        &self,
        metric: pb::Metric,
        filter: Option<pb::Filter>,
        value: f64,
    ) -> Result<pb::Target, tonic::Status> {
        let target = pb::Target { metric: metric as i32, filter, value, ..Default::default() };
        let request = authed(pb::SetTargetRequest { target: Some(target) }, &self.who.admin);
        Ok(self.kpis().await.set_target(request).await?.into_inner().target.unwrap())
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-6
}

/// (value, n, low, high) rounded to 6 places.
fn shown(k: &pb::KpiValue) -> (f64, i64, f64, f64) {
    let r = |x: f64| (x * 1e6).round() / 1e6;
    (r(k.value), k.n, r(k.low), r(k.high))
}

async fn each_kpi_has_its_hand_worked_value_n_and_interval(backend: Backend) {
    let s = Suite::start(backend).await;
    // NPS 10, 10, 9, 9, 8, 7, 6, 3: 4 promoters, 2 passives, 2 detractors of
    // 8; NPS = (4 − 2) / 8 × 100 = 25. Margin 196 × sqrt((0.5 + 0.25 −
    // 0.25²) / 8) = 196 × sqrt(0.0859375) = 196 × 0.293151 = 57.457593:
    // 25 ± 57.457593 is −32.457593 to 82.457593.
    s.answered(survey::SurveyType::Nps, &[10, 10, 9, 9, 8, 7, 6, 3]).await;
    let nps = s.get(pb::Metric::Nps, None, &s.who.reader).await.unwrap();
    assert_eq!(shown(&nps), (25.0, 8, -32.457593, 82.457593));
    assert_eq!(nps.interval_method, "nps-margin");
    assert_eq!((nps.target, nps.target_status), (None, pb::TargetStatus::Unspecified as i32));

    // CSAT 5, 5, 4, 4, 4, 3, 2, 1, 5, 4: 7 of 10 are 4 or 5, 0.7. Wilson
    // (z 1.96): z²/n = 0.38416, centre (0.7 + 0.19208) / 1.38416 = 0.644492,
    // half 1.96 / 1.38416 × sqrt(0.021 + 0.009604) = 0.247719:
    // 0.396773 to 0.892211.
    s.answered(survey::SurveyType::Csat, &[5, 5, 4, 4, 4, 3, 2, 1, 5, 4]).await;
    let csat = s.get(pb::Metric::Csat, None, &s.who.reader).await.unwrap();
    assert_eq!(shown(&csat), (0.7, 10, 0.396773, 0.892211));
    assert_eq!(csat.interval_method, "wilson");

    // CES 7, 7, 6, 5, 5, 4, 3, 2, 2, 1: mean 42 / 10 = 4.2; squares 218,
    // variance (218 − 176.4) / 9 = 4.622222, s = 2.149935; t(0.975, 9) =
    // 2.262157; half 2.262157 × 2.149935 / sqrt(10) = 1.537971:
    // 2.662029 to 5.737971.
    s.answered(survey::SurveyType::Ces, &[7, 7, 6, 5, 5, 4, 3, 2, 2, 1]).await;
    let ces = s.get(pb::Metric::Ces, None, &s.who.reader).await.unwrap();
    assert_eq!(shown(&ces), (4.2, 10, 2.662029, 5.737971));
    assert_eq!(ces.interval_method, "student-t");

    // Anonymous answers count on the web: none in the store.
    let store = Some(pb::Filter { channels: vec![Channel::Store as i32], ..Default::default() });
    assert_eq!(shown(&s.get(pb::Metric::Nps, store, &s.who.reader).await.unwrap()), (0.0, 0, 0.0, 0.0));
    let web = Some(pb::Filter { channels: vec![Channel::Web as i32], ..Default::default() });
    assert_eq!(s.get(pb::Metric::Csat, web, &s.who.reader).await.unwrap().n, 10);
}

async fn periods_are_compared_and_trends_group_the_days(backend: Backend) {
    let s = Suite::start(backend).await;
    let csat = s.survey(survey::SurveyType::Csat).await;
    // 10 February: 3 of 10 satisfied; 2 March: 7 of 10.
    s.answer(&csat, &[5, 5, 5, 1, 1, 1, 1, 1, 1, 1], "2026-02-10").await;
    s.answer(&csat, &[5, 5, 4, 4, 4, 3, 2, 1, 5, 4], "2026-03-02").await;

    // March against the 31 days before (29 January to 28 February): 0.3 to
    // 0.7, a lift of 0.4. Pooled 0.5: se sqrt(0.25 × (1/10 + 1/10)) =
    // 0.223607, z = 1.788854, p = 2 × (1 − Φ(1.788854)) = 0.073638: not
    // significant at 0.05. Interval 0.4 ± 1.96 × sqrt(0.021 + 0.021) =
    // 0.4 ± 0.401680: −0.001680 to 0.801680.
    let request = pb::GetKpiRequest {
        metric: pb::Metric::Csat as i32,
        start_day: MARCH.0.into(),
        end_day: MARCH.1.into(),
        filter: None,
        compare_previous: true,
        acquisition_cost: None,
    };
    let got = s.kpis().await.get_kpi(authed(request, &s.who.reader)).await.unwrap().into_inner();
    let previous = got.previous.unwrap();
    assert_eq!((previous.start_day.as_str(), previous.end_day.as_str()), ("2026-01-29", "2026-02-28"));
    // Wilson 3 of 10: 0.107789 to 0.603227.
    assert_eq!(shown(&previous), (0.3, 10, 0.107789, 0.603227));
    assert_eq!(shown(&got.kpi.unwrap()), (0.7, 10, 0.396773, 0.892211));
    let change = got.change.unwrap();
    let r = |x: f64| (x * 1e6).round() / 1e6;
    assert_eq!(
        (r(change.difference), r(change.low), r(change.high), r(change.p_value), change.significant),
        (0.4, -0.00168, 0.80168, 0.073638, false)
    );
    assert_eq!(change.test, "two-proportion-z");

    // Weeks of 26 February (a Thursday) to 10 March: the 26th to Sunday the
    // 1st (no answer), the week of 2 March (7 of 10), 9–10 March (none).
    let trend = |granularity: pb::Granularity, start: &str, end: &str| pb::GetKpiTrendRequest {
        metric: pb::Metric::Csat as i32,
        start_day: start.into(),
        end_day: end.into(),
        filter: None,
        granularity: granularity as i32,
        acquisition_cost: None,
    };
    let weeks = trend(pb::Granularity::Week, "2026-02-26", "2026-03-10");
    let weeks = s.kpis().await.get_kpi_trend(authed(weeks, &s.who.reader)).await.unwrap().into_inner();
    let points: Vec<_> = weeks.points.iter().map(|p| (p.start_day.as_str(), p.end_day.as_str(), p.n)).collect();
    assert_eq!(
        points,
        [("2026-02-26", "2026-03-01", 0), ("2026-03-02", "2026-03-08", 10), ("2026-03-09", "2026-03-10", 0)]
    );
    let r6 = |p: &pb::TrendPoint| (r(p.value), r(p.low), r(p.high));
    assert_eq!(r6(&weeks.points[1]), (0.7, 0.396773, 0.892211));
    assert_eq!(r6(&weeks.points[0]), (0.0, 0.0, 0.0));
    // Months: February's 3 of 10 and March's 7 of 10, each its own interval.
    let months = trend(pb::Granularity::Month, "2026-02-01", "2026-03-31");
    let months = s.kpis().await.get_kpi_trend(authed(months, &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(
        months.points.iter().map(r6).collect::<Vec<_>>(),
        [(0.3, 0.107789, 0.603227), (0.7, 0.396773, 0.892211)]
    );
    // Days: 59 points, two with answers.
    let days = trend(pb::Granularity::Day, "2026-02-01", "2026-03-31");
    let days = s.kpis().await.get_kpi_trend(authed(days, &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(days.points.len(), 59);
    let answered: Vec<_> = days.points.iter().filter(|p| p.n > 0).map(|p| p.start_day.as_str()).collect();
    assert_eq!(answered, ["2026-02-10", "2026-03-02"]);
    let unspecified = trend(pb::Granularity::Unspecified, "2026-02-01", "2026-03-31");
    let refused = s.kpis().await.get_kpi_trend(authed(unspecified, &s.who.reader)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["granularity"]);
}

/// A customer of the shop who bought on each of `days` (noon UTC), 50 EUR each.
async fn buyer(s: &Suite, name: &str, days: &[&str]) -> String {
    let bought: Vec<_> = days.iter().map(|&day| (day, 1, 50, "EUR")).collect();
    spender(s, name, &bought).await
}

/// A customer of the shop who made, on each (day, purchases, amount in
/// units, currency), one record of that many purchases and amount (noon
/// UTC); her profile id.
async fn spender(s: &Suite, name: &str, bought: &[(&str, i64, i64, &str)]) -> String {
    let mut profiles = ProfileServiceClient::new(s.cluster.server("profile").channel().await);
    let identity =
        profile::Identity { kind: profile::IdentityKind::Email as i32, value: format!("{name}@example.com") };
    let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
    let id = profiles.resolve_profile(authed(request, &s.who.writer)).await.unwrap().into_inner().profile.unwrap().id;
    let records: Vec<_> = bought
        .iter()
        .map(|&(day, purchases, units, currency)| profile::ActivityRecord {
            profile_id: id.clone(),
            occur_time: Some(cx_proto::timestamp(format!("{day}T12:00:00Z").parse().unwrap())),
            channel: Channel::Store as i32,
            initiator: cx_proto::common::v1::Initiator::Pull as i32,
            kind: cx_proto::common::v1::InteractionKind::Transactional as i32,
            touchpoints: purchases,
            purchases,
            purchase_amount: Some(cx_proto::money(currency, units * 1_000_000)),
            device_id: String::new(),
        })
        .collect();
    if !records.is_empty() {
        let request = profile::RecordActivityRequest { batch_id: format!("{name}-purchases"), records };
        profiles.record_activity(authed(request, &s.who.writer)).await.unwrap();
    }
    id
}

async fn churn_retention_and_reactivation_count_customers_whose_lifecycle_changes_in_the_period(backend: Backend) {
    let s = Suite::start(backend).await;
    // March 2026. At the start (as of 28 February) a customer is lost when
    // her last purchase is before 1 March 2025; at the end (31 March 2026),
    // when it is on or before 31 March 2025.
    // - a: 1 March 2025 only: at risk at the start (364 days), lost on
    //   1 March 2026, inside the period: churned.
    // - g: 20 March 2025 only: at risk, lost on 20 March 2026: churned.
    // - b: 15 March 2025 and 10 March 2026: at risk, then active: kept.
    // - c: 10 January 2026; i: 1 December 2025: active, kept.
    // - d: 1 June 2024 only: lost at the start, still lost.
    // - e: 1 January 2024 and 5 March 2026: lost at the start, reactivated.
    // - f: first purchase 20 March 2026: new.
    for (name, days) in [
        ("a", &["2025-03-01"][..]),
        ("g", &["2025-03-20"]),
        ("b", &["2025-03-15", "2026-03-10"]),
        ("c", &["2026-01-10"]),
        ("i", &["2025-12-01"]),
        ("d", &["2024-06-01"]),
        ("e", &["2024-01-01", "2026-03-05"]),
        ("f", &["2026-03-20"]),
    ] {
        buyer(&s, name, days).await;
    }
    // S = {a, g, b, c, i}: 5. Churn 2 of 5 = 0.4, Wilson 0.117618 to
    // 0.769280; retention 3 of 5 = 0.6, 0.230720 to 0.882382; reactivation
    // 1 (e) of 2 lost at the start (d, e) = 0.5, 0.094529 to 0.905471.
    let churn = s.get(pb::Metric::Churn, None, &s.who.reader).await.unwrap();
    assert_eq!(shown(&churn), (0.4, 5, 0.117618, 0.76928));
    assert_eq!(churn.interval_method, "wilson");
    let retention = s.get(pb::Metric::Retention, None, &s.who.reader).await.unwrap();
    assert_eq!(shown(&retention), (0.6, 5, 0.23072, 0.882382));
    let reactivation = s.get(pb::Metric::Reactivation, None, &s.who.reader).await.unwrap();
    assert_eq!(shown(&reactivation), (0.5, 2, 0.094529, 0.905471));

    // Lower churn is better: a target of 0.8 is met (0.769 < 0.8).
    s.set(pb::Metric::Churn, None, 0.8).await.unwrap();
    let churn = s.get(pb::Metric::Churn, None, &s.who.reader).await.unwrap();
    assert_eq!(churn.target_status, pb::TargetStatus::Met as i32);

    // Monthly, February and March: in February (as of 31 January) S is
    // a, g, b, c, i = 5, none lost by 28 February (a's purchase is then 364
    // days old); March as above.
    let request = pb::GetKpiTrendRequest {
        metric: pb::Metric::Churn as i32,
        start_day: "2026-02-01".into(),
        end_day: "2026-03-31".into(),
        filter: None,
        granularity: pb::Granularity::Month as i32,
        acquisition_cost: None,
    };
    let trend = s.kpis().await.get_kpi_trend(authed(request.clone(), &s.who.reader)).await.unwrap().into_inner();
    let points: Vec<_> = trend.points.iter().map(|p| (p.start_day.as_str(), p.n, p.value)).collect();
    assert_eq!(points, [("2026-02-01", 5, 0.0), ("2026-03-01", 5, 0.4)]);
    // Daily in March: 31 periods, counted by profile eight to a pass. Only
    // two days lose a customer: 1 March (a, 365 days after her purchase; S
    // as of 28 February is a, g, b, c, i) and 20 March (g; S as of 19 March
    // is g, b, c, i and e, back since 5 March): 1 of 5 each.
    let daily =
        pb::GetKpiTrendRequest { start_day: MARCH.0.into(), granularity: pb::Granularity::Day as i32, ..request };
    let trend = s.kpis().await.get_kpi_trend(authed(daily, &s.who.reader)).await.unwrap().into_inner();
    let churned: Vec<_> =
        trend.points.iter().filter(|p| p.value > 0.0).map(|p| (p.start_day.as_str(), p.n, p.value)).collect();
    assert_eq!((trend.points.len(), churned), (31, vec![("2026-03-01", 5, 0.2), ("2026-03-20", 5, 0.2)]));

    // Lifecycle KPIs count customers: a filter of answers is refused.
    let filtered = Some(pb::Filter { channels: vec![Channel::Web as i32], ..Default::default() });
    let refused = s.get(pb::Metric::Churn, filtered, &s.who.reader).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["filter"]);
    // A daily churn trend of ten years would be 3,653 periods: refused.
    let request = pb::GetKpiTrendRequest {
        metric: pb::Metric::Churn as i32,
        start_day: "2020-01-01".into(),
        end_day: "2029-12-31".into(),
        filter: None,
        granularity: pb::Granularity::Day as i32,
        acquisition_cost: None,
    };
    let refused = s.kpis().await.get_kpi_trend(authed(request, &s.who.reader)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Profile counts lifecycles for the kpi service alone, and checks each period.
    let mut internal = ProfileInternalServiceClient::new(s.cluster.server("profile").channel().await);
    let period =
        |start: &str, end: &str| cx_proto::common::v1::DayRange { start_day: start.into(), end_day: end.into() };
    let ask = |periods| profile::AggregateLifecycleRequest { periods, customer_ids: Vec::new() };
    let segmentation = cx_testkit::service_token("segmentation", &s.who.tenant);
    let denied = internal.aggregate_lifecycle(authed(ask(vec![period(MARCH.0, MARCH.1)]), &segmentation)).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    let kpi = cx_testkit::service_token("kpi", &s.who.tenant);
    let bad = vec![period(MARCH.0, MARCH.1), period("2026-03-31", "2026-03-01")];
    let refused = internal.aggregate_lifecycle(authed(ask(bad), &kpi)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["periods[1].end_day"]);
    let counted = internal.aggregate_lifecycle(authed(ask(vec![period(MARCH.0, MARCH.1)]), &kpi)).await.unwrap();
    let c = counted.into_inner().periods.remove(0);
    // f's first purchase is in March: one new customer.
    assert_eq!((c.customers_at_start, c.lost_by_end, c.new_customers, c.lost_at_start, c.reactivated), (5, 2, 1, 2, 1));
}

/// An invitation of `customer` to `survey`, sent now, as a trigger would
/// have written it (triggers need journey and consents, which this test
/// does not run); its id.
async fn invitation(s: &Suite, survey: &str, customer: uuid::Uuid) -> uuid::Uuid {
    invitation_made(s, survey, customer, chrono::Utc::now()).await
}

/// [`invitation`], made (and sent) at `now`.
async fn invitation_made(
    s: &Suite,
    survey: &str,
    customer: uuid::Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> uuid::Uuid {
    use cx_survey::store::entity::invitation;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let db = cx_runtime::store::open(&s.cluster.store, "survey").await.unwrap();
    let id = uuid::Uuid::now_v7();
    let row = invitation::ActiveModel {
        tenant_id: Set(s.who.tenant.clone()),
        id: Set(id),
        survey_id: Set(survey.parse().unwrap()),
        survey_version: Set(1),
        trigger_id: Set(uuid::Uuid::from_u128(0x7819)),
        customer_id: Set(customer),
        touchpoint_id: Set(format!("tp-{id}")),
        map_id: Set(None),
        step_key: Set(None),
        channel: Set(Channel::Email as i16),
        state: Set(survey::InvitationState::Sent as i16),
        reason: Set(0),
        created_at: Set(now),
        send_after: Set(now),
        sent_at: Set(Some(now)),
        expire_at: Set(now + chrono::Duration::days(30)),
        answered_at: Set(None),
        response_id: Set(None),
    };
    invitation::Entity::insert(row).exec(&db).await.unwrap();
    id
}

async fn the_closed_loop_is_the_share_of_cases_acted_on_within_their_sla(backend: Backend) {
    let s = Suite::start(backend).await;
    let nps = s.survey(survey::SurveyType::Nps).await;
    // Two detractors answer now (cases due in 48 hours); one case is
    // assigned at once (acted on within its SLA), the other waits.
    let mut cases = Vec::new();
    for name in ["dana", "eve"] {
        let invited = invitation(&s, &nps, uuid::Uuid::now_v7()).await;
        let response = survey::Response {
            id: format!("{name}-1"),
            survey_id: nps.clone(),
            invitation_id: invited.to_string(),
            score: 2,
            ..Default::default()
        };
        let request = authed(survey::SubmitResponseRequest { response: Some(response) }, &s.who.writer);
        let answered = s.surveys().await.submit_response(request).await.unwrap().into_inner();
        cases.push(answered.response.unwrap().case_id);
    }
    let assign = survey::AssignCaseRequest { id: cases[0].clone(), owner: "call centre".into() };
    s.surveys().await.assign_case(authed(assign, &s.who.writer)).await.unwrap();

    // 1 of 2: 0.5, Wilson 0.094529 to 0.905471; for the survey alone too.
    let today = chrono::Utc::now().date_naive().to_string();
    let ask = |filter| pb::GetKpiRequest {
        metric: pb::Metric::ClosedLoopSla as i32,
        start_day: today.clone(),
        end_day: today.clone(),
        filter,
        compare_previous: false,
        acquisition_cost: None,
    };
    let got = s.kpis().await.get_kpi(authed(ask(None), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(shown(&got.kpi.unwrap()), (0.5, 2, 0.094529, 0.905471));
    let only = Some(pb::Filter { survey_ids: vec![nps.clone()], ..Default::default() });
    let got = s.kpis().await.get_kpi(authed(ask(only), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(got.kpi.unwrap().n, 2);
    // Another survey opened none.
    let other = Some(pb::Filter { survey_ids: vec![uuid::Uuid::now_v7().to_string()], ..Default::default() });
    let got = s.kpis().await.get_kpi(authed(ask(other), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(shown(&got.kpi.unwrap()), (0.0, 0, 0.0, 0.0));
    // A channel does not filter cases.
    let channel = Some(pb::Filter { channels: vec![Channel::Web as i32], ..Default::default() });
    let refused = s.kpis().await.get_kpi(authed(ask(channel), &s.who.reader)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["filter"]);
}

async fn resolution_time_is_the_median_of_the_resolved_cases_with_an_order_statistics_interval(backend: Backend) {
    let s = Suite::start(backend).await;
    let nps = s.survey(survey::SurveyType::Nps).await;
    // Seven detractors answered 3, 5, 8, 12, 20, 40 and 1 hours ago (cases
    // opened now, on their submission); the first six are resolved at once:
    // resolution times 3, 5, 8, 12, 20 and 40 h (plus the seconds the test
    // takes); the seventh stays open and is not counted.
    let now = chrono::Utc::now();
    for (i, hours) in [3, 5, 8, 12, 20, 40, 1].into_iter().enumerate() {
        let invited = invitation_made(&s, &nps, uuid::Uuid::now_v7(), now - chrono::Duration::days(2)).await;
        let response = survey::Response {
            id: format!("late-{i}"),
            survey_id: nps.clone(),
            invitation_id: invited.to_string(),
            score: 1,
            respond_time: Some(cx_proto::timestamp(now - chrono::Duration::hours(hours))),
            ..Default::default()
        };
        let request = authed(survey::SubmitResponseRequest { response: Some(response) }, &s.who.writer);
        let case = s.surveys().await.submit_response(request).await.unwrap().into_inner().response.unwrap().case_id;
        if hours > 1 {
            let resolve = survey::ResolveCaseRequest { id: case, root_cause: "delivery".into(), note: String::new() };
            s.surveys().await.resolve_case(authed(resolve, &s.who.writer)).await.unwrap();
        }
    }
    // n = 6: the median is the mean of the 3rd and 4th, (8 + 12) / 2 = 10 h.
    // Ranks for n = 6: 1 and 6 (coverage 1 − 2 × 1/64 = 96.9 %): 3 h to 40 h.
    // Hours are rounded to 0.01 h (36 s): the test's own seconds vanish.
    let today = now.date_naive().to_string();
    let ask = |filter, compare_previous| pb::GetKpiRequest {
        metric: pb::Metric::ResolutionTime as i32,
        start_day: today.clone(),
        end_day: today.clone(),
        filter,
        compare_previous,
        acquisition_cost: None,
    };
    let hours = |k: &pb::KpiValue| {
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        (r2(k.value), k.n, r2(k.low), r2(k.high), k.interval_method.clone())
    };
    let got = s.kpis().await.get_kpi(authed(ask(None, true), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(hours(got.kpi.as_ref().unwrap()), (10.0, 6, 3.0, 40.0, "order-statistics".into()));
    // Yesterday opened none: 0 of 0; the change 10 h − 0 is not tested.
    assert_eq!(hours(got.previous.as_ref().unwrap()), (0.0, 0, 0.0, 0.0, "order-statistics".into()));
    let change = got.change.unwrap();
    assert_eq!(
        ((change.difference * 100.0).round() / 100.0, change.p_value, change.significant, change.test.as_str()),
        (10.0, 1.0, false, "none")
    );
    // Lower is better: 3 to 40 h is within a 48 h target (met), straddles 24 h.
    s.set(pb::Metric::ResolutionTime, None, 48.0).await.unwrap();
    let got = s.kpis().await.get_kpi(authed(ask(None, false), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(got.kpi.unwrap().target_status, pb::TargetStatus::Met as i32);
    s.set(pb::Metric::ResolutionTime, None, 24.0).await.unwrap();
    let got = s.kpis().await.get_kpi(authed(ask(None, false), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(got.kpi.unwrap().target_status, pb::TargetStatus::AtRisk as i32);
    // The survey alone: the same six; another survey: none.
    let only = Some(pb::Filter { survey_ids: vec![nps.clone()], ..Default::default() });
    let got = s.kpis().await.get_kpi(authed(ask(only, false), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(hours(got.kpi.as_ref().unwrap()).1, 6);
    let other = Some(pb::Filter { survey_ids: vec![uuid::Uuid::now_v7().to_string()], ..Default::default() });
    let got = s.kpis().await.get_kpi(authed(ask(other, false), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(shown(&got.kpi.unwrap()), (0.0, 0, 0.0, 0.0));
    // Two surveys are refused, as for the closed loop.
    let two =
        Some(pb::Filter { survey_ids: vec![nps.clone(), uuid::Uuid::now_v7().to_string()], ..Default::default() });
    let refused = s.kpis().await.get_kpi(authed(ask(two, false), &s.who.reader)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["filter"]);
}

/// An "Online order" map (browse, then order: the conversion step) where
/// five customers browse on 5 March 2026 and two of them order; its id.
async fn online_orders(s: &Suite) -> String {
    let mut journeys = JourneyServiceClient::new(s.cluster.server("journey").channel().await);
    let step = |key: &str, conversion: bool| journey::Step {
        key: key.into(),
        name: key.into(),
        phase: journey::Phase::During as i32,
        importance: 1,
        target_score: 7.0,
        conversion,
        ..Default::default()
    };
    let map = journey::JourneyMap {
        name: "Online order".into(),
        customer_type: "anyone".into(),
        meta_journey: journey::MetaJourney::Chore as i32,
        steps: vec![step("browse", false), step("order", true)],
        ..Default::default()
    };
    let request = authed(journey::CreateJourneyMapRequest { journey_map: Some(map) }, &s.who.admin);
    let map = journeys.create_journey_map(request).await.unwrap().into_inner().journey_map.unwrap().id;
    // Five customers browse on 5 March 2026; two of them order: 2 of 5.
    let mut touchpoints = Vec::new();
    for (i, name) in ["ana", "bob", "cy", "dee", "eli"].iter().enumerate() {
        let steps: &[&str] = if i < 2 { &["browse", "order"] } else { &["browse"] };
        for (k, key) in steps.iter().enumerate() {
            let identity =
                profile::Identity { kind: profile::IdentityKind::Email as i32, value: format!("{name}@example.com") };
            touchpoints.push(journey::Touchpoint {
                id: format!("{name}-{key}"),
                customer: Some(journey::touchpoint::Customer::Identity(identity)),
                channel: Channel::Web as i32,
                occur_time: Some(cx_proto::timestamp(format!("2026-03-05T10:0{k}:00Z").parse().unwrap())),
                kind: cx_proto::common::v1::InteractionKind::Informative as i32,
                initiator: cx_proto::common::v1::Initiator::Pull as i32,
                map_id: map.clone(),
                step_key: (*key).into(),
                instance_id: format!("order-{name}"),
                ..Default::default()
            });
        }
    }
    let request = journey::IngestTouchpointsRequest { touchpoints, all_or_nothing: true };
    assert_eq!(journeys.ingest_touchpoints(authed(request, &s.who.writer)).await.unwrap().into_inner().accepted, 7);
    map
}

async fn conversion_is_the_share_of_a_maps_instances_that_reached_its_conversion_step(backend: Backend) {
    let s = Suite::start(backend).await;
    let map = online_orders(&s).await;
    // 2 of 5: 0.4, Wilson 0.117618 to 0.769280.
    let on = |map: &str| Some(pb::Filter { map_id: map.into(), ..Default::default() });
    let conversion = s.get(pb::Metric::Conversion, on(&map), &s.who.reader).await.unwrap();
    assert_eq!(shown(&conversion), (0.4, 5, 0.117618, 0.76928));
    // A map the tenant does not have; a conversion without a map.
    let unknown = s.get(pb::Metric::Conversion, on("0190c1d2-0000-7000-8000-000000000001"), &s.who.reader).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    let refused = s.get(pb::Metric::Conversion, None, &s.who.reader).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["filter"]);
}

async fn clv_is_worked_from_the_purchases_the_customers_exposure_and_the_annual_churn(backend: Backend) {
    let s = Suite::start(backend).await;
    // March 2026 (31 days), amounts in EUR unless said.
    for (name, bought) in [
        ("a", &[("2025-03-01", 1, 50, "EUR")][..]),
        ("b", &[("2025-06-10", 1, 50, "EUR"), ("2026-03-10", 1, 40, "EUR")]),
        ("c", &[("2026-01-10", 1, 50, "EUR"), ("2026-03-15", 1, 60, "EUR")]),
        ("d", &[("2026-03-20", 1, 80, "EUR")]),
        // Two purchases in one record of 40: each counts as 20.
        ("e", &[("2024-01-01", 1, 50, "EUR"), ("2026-03-05", 2, 40, "EUR")]),
        ("f", &[("2026-03-12", 1, 30, "USD")]),
        ("g", &[("2025-02-01", 1, 50, "EUR"), ("2025-12-01", 1, 50, "EUR")]),
        ("h", &[("2025-01-15", 1, 50, "EUR")]),
        ("i", &[("2025-03-20", 1, 50, "EUR"), ("2026-02-01", 1, 50, "EUR")]),
    ] {
        spender(&s, name, bought).await;
    }
    // Purchases of March in EUR (5 against 1 in USD): 40, 60, 80, 20, 20:
    // n 5, mean 44, squares 1,600 + 3,600 + 6,400 + 2 × 400 = 12,400,
    // variance (12,400 − 220² / 5) / 4 = 680, Var(m) = 136.
    // Customers at the start (last purchase on or after 1 March 2025): a, b,
    // c, g, i = 5; at the end (on or after 1 April 2025): b, c, d, e, f, g,
    // i = 7; exposure (5 + 7) / 2 × 31 / 365 = 186 / 365 = 0.509589 years:
    // r = 5 / 0.509589 = 9.811828, Var(r) = 5 / 0.509589² = 19.254394.
    // The year 1 April 2025 to 31 March 2026: customers at its start (a
    // purchase on or after 1 April 2024 and before 1 April 2025): a, g, h,
    // i = 4; lost by 31 March 2026 (none since 31 March 2025): a, h = 2:
    // q 0.5, Y = 2, dY/dq = −4, Var(q) = 0.25 / 4 = 0.0625.
    // CLV = 44 × 9.811828 × 2 − 40 = 823.440860;
    // Var = (9.811828 × 2)² × 136 + (44 × 2)² × 19.254394
    //     + (44 × 9.811828 × 4)² × 0.0625
    //     = 52,371.951 + 149,106.024 + 186,382.530 = 387,860.504,
    // √ 622.784476, half 1,220.657574: −397.216714 to 2,044.098434.
    let ask = |cost: Option<cx_proto::common::v1::Money>| pb::GetKpiRequest {
        metric: pb::Metric::Clv as i32,
        start_day: MARCH.0.into(),
        end_day: MARCH.1.into(),
        filter: None,
        compare_previous: false,
        acquisition_cost: cost,
    };
    let get = |request| async { s.kpis().await.get_kpi(authed(request, &s.who.reader)).await };
    let clv = get(ask(Some(cx_proto::money("EUR", 40_000_000)))).await.unwrap().into_inner().kpi.unwrap();
    assert_eq!(shown(&clv), (823.44086, 5, -397.216714, 2044.098434));
    assert_eq!((clv.interval_method.as_str(), clv.currency.as_str()), ("delta-method", "EUR"));
    // Without a cost: 40 more, in the busiest currency.
    let free = get(ask(None)).await.unwrap().into_inner().kpi.unwrap();
    assert_eq!((shown(&free), free.currency.as_str()), ((863.44086, 5, -357.216714, 2084.098434), "EUR"));
    // In USD, cost 10: f's 30 alone, n 1 (no spread): 30 × 1.962366 × 2 − 10
    // = 107.741935; Var = 60² × 1 / 0.509589² + (30 × 1.962366 × 4)² × 0.0625
    // = 13,863.163 + 3,465.791 = 17,328.954, half 258.013392.
    let usd = get(ask(Some(cx_proto::money("USD", 10_000_000)))).await.unwrap().into_inner().kpi.unwrap();
    assert_eq!((shown(&usd), usd.currency.as_str()), ((107.741935, 1, -150.271457, 365.755328), "USD"));

    // The tenant's setting of 40 EUR stands for a request without a cost:
    // the 823.44086 above; a request's own cost still wins.
    let s = &s;
    let update = |cost: Option<cx_proto::common::v1::Money>, token: &str| {
        let request = pb::UpdateKpiSettingsRequest {
            settings: Some(pb::KpiSettings { acquisition_cost: cost, update_time: None }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["acquisition_cost".into()] }),
        };
        let request = authed(request, token);
        async move { s.kpis().await.update_kpi_settings(request).await.map(|r| r.into_inner()) }
    };
    let set = update(Some(cx_proto::money("EUR", 40_000_000)), &s.who.admin).await.unwrap().settings.unwrap();
    assert!(set.update_time.is_some());
    let request = authed(pb::GetKpiSettingsRequest {}, &s.who.reader);
    let read = s.kpis().await.get_kpi_settings(request).await.unwrap().into_inner().settings.unwrap();
    assert_eq!(read, set);
    let by_setting = get(ask(None)).await.unwrap().into_inner().kpi.unwrap();
    assert_eq!(shown(&by_setting), (823.44086, 5, -397.216714, 2044.098434));
    let own = get(ask(Some(cx_proto::money("EUR", 0)))).await.unwrap().into_inner().kpi.unwrap();
    assert_eq!(shown(&own), (863.44086, 5, -357.216714, 2084.098434));
    // Admins only; a bad currency and an unknown path are named; unset again.
    assert_eq!(update(None, &s.who.writer).await.unwrap_err().code(), Code::PermissionDenied);
    let refused = update(Some(cx_proto::money("eur", 1)), &s.who.admin).await.unwrap_err();
    assert_eq!(
        field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(),
        ["settings.acquisition_cost.currency_code"]
    );
    let unknown = pb::UpdateKpiSettingsRequest {
        settings: None,
        update_mask: Some(prost_types::FieldMask { paths: vec!["alpha".into()] }),
    };
    let refused = s.kpis().await.update_kpi_settings(authed(unknown, &s.who.admin)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["update_mask"]);
    update(None, &s.who.admin).await.unwrap();
    assert_eq!(shown(&get(ask(None)).await.unwrap().into_inner().kpi.unwrap()), shown(&free));

    // A target is an amount: 500 lies inside the interval (at risk).
    s.set(pb::Metric::Clv, None, 500.0).await.unwrap();
    let clv = get(ask(Some(cx_proto::money("EUR", 40_000_000)))).await.unwrap().into_inner().kpi.unwrap();
    assert_eq!(clv.target_status, pb::TargetStatus::AtRisk as i32);
    let refused = s.set(pb::Metric::Clv, None, f64::INFINITY).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["target.value"]);

    // CLV takes no filter, and only CLV takes a cost, in a known currency.
    let filtered = pb::GetKpiRequest {
        filter: Some(pb::Filter { channels: vec![Channel::Web as i32], ..Default::default() }),
        ..ask(Some(cx_proto::money("eur", 1)))
    };
    let refused = get(filtered).await.unwrap_err();
    let fields = field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>();
    assert_eq!(fields, ["filter", "acquisition_cost.currency_code"]);
    let churn = pb::GetKpiRequest { metric: pb::Metric::Churn as i32, ..ask(Some(cx_proto::money("EUR", 1))) };
    let refused = get(churn).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["acquisition_cost"]);

    // Profile sums purchases for the kpi service alone.
    let mut internal = ProfileInternalServiceClient::new(s.cluster.server("profile").channel().await);
    let march = vec![cx_proto::common::v1::DayRange { start_day: MARCH.0.into(), end_day: MARCH.1.into() }];
    let request = |currency: &str| profile::AggregatePurchasesRequest {
        periods: march.clone(),
        currency: currency.into(),
        ..Default::default()
    };
    let segmentation = cx_testkit::service_token("segmentation", &s.who.tenant);
    let denied = internal.aggregate_purchases(authed(request(""), &segmentation)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let kpi = cx_testkit::service_token("kpi", &s.who.tenant);
    let refused = internal.aggregate_purchases(authed(request("euro"), &kpi)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["currency"]);
    let summed = internal.aggregate_purchases(authed(request(""), &kpi)).await.unwrap().into_inner();
    let p = &summed.periods[0];
    assert_eq!(
        (summed.currency.as_str(), p.purchases, p.amount_micros, p.amount_squares),
        ("EUR", 5, 220_000_000, 12_400.0)
    );
}

/// A customer who had one touchpoint on `channel` (pull, no purchase) now.
async fn visitor(s: &Suite, name: &str, channel: Channel) {
    let mut profiles = ProfileServiceClient::new(s.cluster.server("profile").channel().await);
    let identity =
        profile::Identity { kind: profile::IdentityKind::Email as i32, value: format!("{name}@example.com") };
    let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
    let id = profiles.resolve_profile(authed(request, &s.who.writer)).await.unwrap().into_inner().profile.unwrap().id;
    let record = profile::ActivityRecord {
        profile_id: id,
        occur_time: Some(cx_proto::timestamp(chrono::Utc::now())),
        channel: channel as i32,
        initiator: cx_proto::common::v1::Initiator::Pull as i32,
        kind: cx_proto::common::v1::InteractionKind::Transactional as i32,
        touchpoints: 1,
        ..Default::default()
    };
    let request = profile::RecordActivityRequest { batch_id: format!("{name}-visit"), records: vec![record] };
    profiles.record_activity(authed(request, &s.who.writer)).await.unwrap();
}

async fn profile_counts_customers_per_stage_as_of_a_day_and_per_intensity_category_and_band(backend: Backend) {
    let s = Suite::start(backend).await;
    // As of 31 March 2026:
    // - a: 1 March 2025 only, 395 idle days: lost;
    // - b: 10 June 2025 and 10 March 2026 (a gap of 273 days, no comeback): active;
    // - c: 1 December 2025, 120 idle days: at risk;
    // - e: 1 January 2024 and 5 March 2026 (a gap of 794 days, 26 days ago): reactivated;
    // - w and t, created now with no purchase: not yet customers on that day.
    for (name, days) in [
        ("a", &["2025-03-01"][..]),
        ("b", &["2025-06-10", "2026-03-10"]),
        ("c", &["2025-12-01"]),
        ("e", &["2024-01-01", "2026-03-05"]),
    ] {
        buyer(&s, name, days).await;
    }
    // Intensity now: w's one web pull touchpoint: share 1, breadth 1/8, no
    // device, self-service 1: 100 × (0.5 + 0.2 × 0.125 + 0.15) = 67.5 → 68,
    // connected, band 60–69. t's one store touchpoint: 0, traditional, band
    // 0–9. a, b, c, e touched nothing in the 180 days ending today: no index.
    visitor(&s, "w", Channel::Web).await;
    visitor(&s, "t", Channel::Store).await;

    let mut internal = ProfileInternalServiceClient::new(s.cluster.server("profile").channel().await);
    let kpi = cx_testkit::service_token("kpi", &s.who.tenant);
    let ask = |day: &str| profile::AggregateDistributionsRequest { as_of_day: day.into() };
    let d = internal.aggregate_distributions(authed(ask("2026-03-31"), &kpi)).await.unwrap().into_inner();
    assert_eq!(d.as_of_day, "2026-03-31");
    assert_eq!((d.prospect, d.active, d.at_risk, d.lost, d.reactivated), (0, 1, 1, 1, 1));
    assert_eq!((d.traditional, d.hybrid, d.connected, d.digital_native, d.without_index), (1, 0, 1, 0, 4));
    assert_eq!(d.index_bands, [1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    // Today: w and t are prospects; the four buyers have some stage.
    let today = internal.aggregate_distributions(authed(ask(""), &kpi)).await.unwrap().into_inner();
    assert_eq!(today.as_of_day, chrono::Utc::now().date_naive().to_string());
    assert_eq!((today.prospect, today.active + today.at_risk + today.lost + today.reactivated), (2, 4));

    let refused = internal.aggregate_distributions(authed(ask("2026-3-31"), &kpi)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["as_of_day"]);
    let segmentation = cx_testkit::service_token("segmentation", &s.who.tenant);
    let denied = internal.aggregate_distributions(authed(ask(""), &segmentation)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn targets_are_named_by_metric_and_canonical_filter_and_give_a_status(backend: Backend) {
    let s = Suite::start(backend).await;
    let nps_survey = s.answered(survey::SurveyType::Nps, &[10, 10, 9, 9, 8, 7, 6, 3]).await;
    let csat_survey = s.answered(survey::SurveyType::Csat, &[5, 5, 4, 4, 4, 3, 2, 1, 5, 4]).await;
    let other = "0190c1d2-0000-7000-8000-000000000001".to_owned();
    let both = |first: &str, second: &str| {
        Some(pb::Filter { survey_ids: vec![first.into(), second.into()], channels: vec![9, 1], ..Default::default() })
    };

    // NPS −32.5 to 82.5 against 0: at risk; CSAT 0.397 to 0.892 against 0.35:
    // met, against 0.95: missed.
    let nps_target = s.set(pb::Metric::Nps, both(&nps_survey, &other), 0.0).await.unwrap();
    let nps = s.get(pb::Metric::Nps, both(&other, &nps_survey), &s.who.reader).await.unwrap();
    assert_eq!(nps.target.as_ref().map(|t| &t.id), Some(&nps_target.id), "the same filter, written otherwise");
    assert_eq!((nps.n, nps.target_status), (8, pb::TargetStatus::AtRisk as i32));
    let mut sorted = [nps_survey.clone(), other.clone()];
    sorted.sort();
    assert_eq!(
        nps.filter.unwrap(),
        pb::Filter { survey_ids: sorted.to_vec(), channels: vec![1, 9], ..Default::default() }
    );

    let csat_filter = || Some(pb::Filter { survey_ids: vec![csat_survey.clone()], ..Default::default() });
    let first = s.set(pb::Metric::Csat, csat_filter(), 0.35).await.unwrap();
    let csat = s.get(pb::Metric::Csat, csat_filter(), &s.who.reader).await.unwrap();
    assert_eq!(csat.target_status, pb::TargetStatus::Met as i32);
    // Set again: the same target, its new value.
    let again = s.set(pb::Metric::Csat, csat_filter(), 0.95).await.unwrap();
    assert_eq!((again.id.as_str(), again.value), (first.id.as_str(), 0.95));
    let csat = s.get(pb::Metric::Csat, csat_filter(), &s.who.reader).await.unwrap();
    assert_eq!(csat.target_status, pb::TargetStatus::Missed as i32);
    // No filter is another target: none set.
    let unfiltered = s.get(pb::Metric::Csat, None, &s.who.reader).await.unwrap();
    assert_eq!((unfiltered.n, unfiltered.target_status), (10, pb::TargetStatus::Unspecified as i32));
    // A target over days without answers: no data.
    s.set(pb::Metric::Ces, None, 5.0).await.unwrap();
    let ces = s.get(pb::Metric::Ces, None, &s.who.reader).await.unwrap();
    assert_eq!((ces.n, ces.target_status), (0, pb::TargetStatus::NoData as i32));

    // Listed a page at a time, in id (creation) order.
    let list = |token: String| pb::ListTargetsRequest { page_size: 2, page_token: token };
    let page = s.kpis().await.list_targets(authed(list(String::new()), &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(page.targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), [&nps_target.id, &first.id]);
    assert!(close(page.targets[1].value, 0.95));
    let rest = s.kpis().await.list_targets(authed(list(page.next_page_token), &s.who.reader)).await.unwrap();
    let rest = rest.into_inner();
    assert_eq!((rest.targets.len(), rest.next_page_token.as_str()), (1, ""));

    let delete = || pb::DeleteTargetRequest { id: first.id.clone() };
    s.kpis().await.delete_target(authed(delete(), &s.who.admin)).await.unwrap();
    let gone = s.kpis().await.delete_target(authed(delete(), &s.who.admin)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let csat = s.get(pb::Metric::Csat, csat_filter(), &s.who.reader).await.unwrap();
    assert_eq!((csat.target, csat.target_status), (None, pb::TargetStatus::Unspecified as i32));
}

async fn requests_are_checked_roles_enforced_and_tenants_kept_apart(backend: Backend) {
    let s = Suite::start(backend).await;
    s.answered(survey::SurveyType::Nps, &[10, 3]).await;
    s.set(pb::Metric::Nps, None, 10.0).await.unwrap();

    // Another tenant sees neither the answers nor the target.
    let theirs = s.get(pb::Metric::Nps, None, &s.who.stranger).await.unwrap();
    assert_eq!((theirs.n, theirs.target_status), (0, pb::TargetStatus::Unspecified as i32));

    let bad = pb::GetKpiRequest {
        metric: 99,
        start_day: "2026-03-31".into(),
        end_day: "2016-03-01".into(),
        filter: Some(pb::Filter { map_id: "x".repeat(10_000), step_key: "s".into(), ..Default::default() }),
        compare_previous: false,
        acquisition_cost: None,
    };
    let refused = s.kpis().await.get_kpi(authed(bad, &s.who.reader)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&refused).into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["metric", "end_day", "filter.map_id"]);
    assert!(refused.message().len() < 1_000, "the error does not echo the input");

    let target = pb::Target { metric: pb::Metric::Csat as i32, value: 80.0, ..Default::default() };
    let request = pb::SetTargetRequest { target: Some(target) };
    let refused = s.kpis().await.set_target(authed(request.clone(), &s.who.admin)).await.unwrap_err();
    let violations: Vec<(String, String)> =
        field_violations(&refused).into_iter().map(|v| (v.field, v.description)).collect();
    assert_eq!(violations, [("target.value".to_owned(), "must be a number from 0 to 1".to_owned())]);

    // Readers read; only admins set and delete.
    let denied = s.kpis().await.set_target(authed(request, &s.who.writer)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let delete = pb::DeleteTargetRequest { id: "0190c1d2-0000-7000-8000-000000000001".into() };
    let denied = s.kpis().await.delete_target(authed(delete, &s.who.reader)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let anonymous = s.kpis().await.get_kpi(pb::GetKpiRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

async fn the_dashboard_shows_the_owners_own_figures_and_is_worked_out_again_only_after_a_write(backend: Backend) {
    let s = Suite::start(backend).await;
    let nps_survey = s.answered(survey::SurveyType::Nps, &[10, 10, 9, 9, 8, 7, 6, 3]).await;
    let map = online_orders(&s).await;
    // The touchpoints' activity reaches profile through journey's outbox: a
    // write of profile's data, awaited so that the calls below see none.
    let profiles = ProfileServiceClient::new(s.cluster.server("profile").channel().await);
    let touched = || {
        let (mut profiles, token) = (profiles.clone(), s.who.reader.clone());
        async move {
            let request = authed(profile::ListProfilesRequest { page_size: 10, ..Default::default() }, &token);
            let listed = profiles.list_profiles(request).await.unwrap().into_inner().profiles;
            listed.iter().filter(|p| p.last_touch_time.is_some()).count()
        }
    };
    cx_testkit::eventually("the five customers' activity in profile", touched, |n| *n == 5).await;
    s.set(pb::Metric::Nps, None, 0.0).await.unwrap();
    let dashboard = || async {
        let request = pb::GetDashboardRequest {
            start_day: MARCH.0.into(),
            end_day: MARCH.1.into(),
            trend_granularity: pb::Granularity::Month as i32,
        };
        s.kpis().await.get_dashboard(authed(request, &s.who.reader)).await.unwrap().into_inner()
    };
    let first = dashboard().await;

    // Every headline KPI is GetKpi's own answer for March, compared with
    // 29 January to 28 February.
    let metrics: Vec<i32> = first.headline.iter().map(|h| h.kpi.as_ref().unwrap().metric).collect();
    let expected = [
        pb::Metric::Nps,
        pb::Metric::Csat,
        pb::Metric::Ces,
        pb::Metric::Churn,
        pb::Metric::Retention,
        pb::Metric::Reactivation,
        pb::Metric::Clv,
        pb::Metric::ClosedLoopSla,
        pb::Metric::ResolutionTime,
    ];
    assert_eq!(metrics, expected.map(|m| m as i32));
    for (shown_here, metric) in first.headline.iter().zip(expected) {
        let request = pb::GetKpiRequest {
            metric: metric as i32,
            start_day: MARCH.0.into(),
            end_day: MARCH.1.into(),
            filter: None,
            compare_previous: true,
            acquisition_cost: None,
        };
        let own = s.kpis().await.get_kpi(authed(request, &s.who.reader)).await.unwrap().into_inner();
        assert_eq!(shown_here, &own, "{metric:?}");
    }
    // NPS 25 ± 57.457593 (as in the first test) straddles the target 0.
    let nps = first.headline[0].kpi.as_ref().unwrap();
    assert_eq!(shown(nps), (25.0, 8, -32.457593, 82.457593));
    assert_eq!(nps.target_status, pb::TargetStatus::AtRisk as i32);

    // Trends: the 12 months April 2025 to March 2026, GetKpiTrend's own.
    assert_eq!(first.trends.len(), 3);
    let request = pb::GetKpiTrendRequest {
        metric: pb::Metric::Nps as i32,
        start_day: "2025-04-01".into(),
        end_day: MARCH.1.into(),
        filter: None,
        granularity: pb::Granularity::Month as i32,
        acquisition_cost: None,
    };
    let own = s.kpis().await.get_kpi_trend(authed(request, &s.who.reader)).await.unwrap().into_inner();
    assert_eq!(first.trends[0], own);
    assert_eq!(own.points.len(), 12);
    assert_eq!((own.points[11].value, own.points[11].n), (25.0, 8));

    // The map: conversion 2 of 5 as GetKpi gives it; the funnel browse 5
    // (all), order 2 (0.4 of browse, 3 dropped); nothing scored, no plan.
    assert_eq!(first.maps.len(), 1);
    let summary = &first.maps[0];
    let on = Some(pb::Filter { map_id: map.clone(), ..Default::default() });
    assert_eq!(summary.conversion.as_ref().unwrap(), &s.get(pb::Metric::Conversion, on, &s.who.reader).await.unwrap());
    let funnel: Vec<_> =
        summary.funnel.iter().map(|f| (f.step_key.as_str(), f.instances, f.rate_from_previous, f.drop_off)).collect();
    assert_eq!(funnel, [("browse", 5, 1.0, 0), ("order", 2, 0.4, 3)]);
    assert!(summary.plan.is_empty());
    // Anonymous answers open no case.
    assert_eq!(first.cases, Some(pb::OpenCases { open: 0, overdue: 0, next_due_time: None }));
    assert!(first.missing_services.is_empty());
    // Stages as of 31 March count customers who existed then: the five
    // browsers were created today, so none; intensity is today's, and their
    // touchpoints are older than 180 days: five without an index.
    let d = first.distributions.as_ref().unwrap();
    let stages: Vec<_> = d.lifecycle.iter().map(|c| (c.name.as_str(), c.customers, c.share)).collect();
    assert_eq!(
        stages,
        [("prospect", 0, 0.0), ("active", 0, 0.0), ("at_risk", 0, 0.0), ("lost", 0, 0.0), ("reactivated", 0, 0.0)]
    );
    assert_eq!((d.as_of_day.as_str(), d.lifecycle_n, d.with_index, d.without_index), ("2026-03-31", 0, 0, 5));
    let request = authed(pb::GetDistributionsRequest { as_of_day: String::new() }, &s.who.reader);
    let today = s.kpis().await.get_distributions(request).await.unwrap().into_inner().distributions.unwrap();
    // Today they are five prospects: 5 of 5, Wilson 0.565509 to 1.
    let prospects = &today.lifecycle[0];
    assert_eq!((today.lifecycle_n, prospects.customers, prospects.share), (5, 5, 1.0));
    assert_eq!(((prospects.low * 1e6).round() / 1e6, prospects.high.min(1.0)), (0.565509, 1.0));
    assert!(first.experiments.is_empty());

    // No write: the cached answer, worked out at the same instant.
    assert_eq!(dashboard().await, first);
    // An answer is a write of survey's: NPS 10 makes 5 promoters and 2
    // detractors of 9, (5 − 2) / 9 × 100 = 33.333333.
    s.answer(&nps_survey, &[10], "2026-03-03").await;
    let second = dashboard().await;
    assert_ne!(second.compute_time, first.compute_time);
    let nps = second.headline[0].kpi.as_ref().unwrap();
    assert_eq!((nps.value * 1e6).round() / 1e6, 33.333333);
    assert_eq!(nps.n, 9);
    // A target is a write of kpi's own: the next answer has it.
    assert_eq!(dashboard().await, second);
    s.set(pb::Metric::Nps, None, 90.0).await.unwrap();
    let third = dashboard().await;
    let nps = third.headline[0].kpi.as_ref().unwrap();
    assert_eq!(nps.target.as_ref().unwrap().value, 90.0);
    assert_eq!(nps.target_status, pb::TargetStatus::Missed as i32);
    // An experiment and an exposure are writes of kpi's: the running
    // experiment shows with its one exposure.
    let experiment = pb::Experiment {
        name: "Green checkout button".into(),
        conversion: "checkout_completed".into(),
        variants: vec![
            pb::Variant { key: "control".into(), weight: 1 },
            pb::Variant { key: "green".into(), weight: 1 },
        ],
        planned_sample_size: 1000,
        ..Default::default()
    };
    let request = authed(pb::CreateExperimentRequest { experiment: Some(experiment) }, &s.who.admin);
    let id = s.kpis().await.create_experiment(request).await.unwrap().into_inner().experiment.unwrap().id;
    let assign = pb::AssignVariantRequest { experiment_id: id.clone(), customer_id: uuid::Uuid::now_v7().to_string() };
    s.kpis().await.assign_variant(authed(assign, &s.who.writer)).await.unwrap();
    let fourth = dashboard().await;
    assert_eq!(fourth.experiments.len(), 1);
    let results = &fourth.experiments[0];
    assert_eq!(results.experiment.as_ref().unwrap().id, id);
    assert_eq!(results.variants.iter().map(|v| v.exposures).sum::<i64>(), 1);
    // Fewer than the 1,000 planned a variant: peeking.
    assert!(results.peeking);
    // Bad days are named.
    let request = pb::GetDashboardRequest { start_day: MARCH.1.into(), end_day: MARCH.0.into(), trend_granularity: 0 };
    let refused = s.kpis().await.get_dashboard(authed(request, &s.who.reader)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["end_day"]);
}

async fn snapshots_keep_each_days_kpis_as_they_were_computed(backend: Backend) {
    let suite = Suite::start(backend).await;
    let s = &suite;
    let nps_survey = s.answered(survey::SurveyType::Nps, &[10, 10, 9, 9, 8, 7, 6, 3]).await;
    let map = online_orders(s).await;
    let on_map = Some(pb::Filter { map_id: map.clone(), ..Default::default() });
    s.set(pb::Metric::Conversion, on_map.clone(), 0.5).await.unwrap();
    let take = |day: &str, token: &str| {
        let request = authed(pb::TakeSnapshotsRequest { day: day.into() }, token);
        async move { s.kpis().await.take_snapshots(request).await.map(|r| r.into_inner()) }
    };
    let list = |metric: pb::Metric, filter: Option<pb::Filter>, end_day: &str| {
        let request = pb::ListSnapshotsRequest {
            metric: metric as i32,
            filter,
            start_day: "2026-03-01".into(),
            end_day: end_day.into(),
        };
        let request = authed(request, &s.who.reader);
        async move { s.kpis().await.list_snapshots(request).await.unwrap().into_inner().snapshots }
    };

    // 31 March: the nine headline KPIs and the map's conversion (its
    // target's), each over 2 to 31 March.
    let first = take("2026-03-31", &s.who.admin).await.unwrap();
    assert_eq!((first.taken.len(), first.kept), (10, 0));
    let nps = first.taken[0].kpi.as_ref().unwrap();
    assert_eq!(
        (nps.metric, nps.start_day.as_str(), nps.end_day.as_str()),
        (pb::Metric::Nps as i32, "2026-03-02", "2026-03-31")
    );
    assert_eq!(shown(nps), (25.0, 8, -32.457593, 82.457593));
    assert_eq!(first.taken[0].definition_version, 1);
    let conversion = first.taken[9].kpi.as_ref().unwrap();
    assert_eq!((conversion.metric, conversion.value, conversion.n), (pb::Metric::Conversion as i32, 0.4, 5));

    // A later answer in March changes the KPI, not the day's snapshot: a
    // second take keeps all ten.
    s.answer(&nps_survey, &[10], "2026-03-03").await;
    assert_eq!(s.get(pb::Metric::Nps, None, &s.who.reader).await.unwrap().n, 9);
    let again = take("2026-03-31", &s.who.admin).await.unwrap();
    assert_eq!((again.taken.len(), again.kept), (0, 10));
    let kept = list(pb::Metric::Nps, None, "2026-03-31").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0], first.taken[0]);
    assert_eq!(list(pb::Metric::Conversion, on_map.clone(), "2026-03-31").await, [first.taken[9].clone()]);

    // 1 April covers 3 March to 1 April: the one answer of 10 there, NPS 100
    // (margin 196 × sqrt((1 − 1) / 1) = 0).
    take("2026-04-01", &s.who.admin).await.unwrap();
    let history: Vec<_> = list(pb::Metric::Nps, None, "2026-04-30")
        .await
        .iter()
        .map(|snap| (snap.day.clone(), shown(snap.kpi.as_ref().unwrap())))
        .collect();
    assert_eq!(
        history,
        [
            ("2026-03-31".to_owned(), (25.0, 8, -32.457593, 82.457593)),
            ("2026-04-01".to_owned(), (100.0, 1, 100.0, 100.0))
        ]
    );

    // Today is not over; readers do not take snapshots; bad requests are named.
    let today = chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let refused = take(&today, &s.who.admin).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["day"]);
    assert_eq!(take("2026-03-30", &s.who.reader).await.unwrap_err().code(), Code::PermissionDenied);
    let request =
        pb::ListSnapshotsRequest { metric: 0, filter: None, start_day: "2026-03-01".into(), end_day: "x".into() };
    let refused = s.kpis().await.list_snapshots(authed(request, &s.who.reader)).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["metric", "end_day"]);
}

async fn kpis_of_a_segment_or_a_digital_category_count_its_customers_only(backend: Backend) {
    use cx_proto::segmentation::v1 as seg;
    use cx_proto::segmentation::v1::segmentation_internal_service_client::SegmentationInternalServiceClient;
    use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
    let s = Suite::start_with(WITH_SEGMENTS, backend).await;
    // Five customers; a, b and c have the persona "gold". Purchases, for
    // March 2026's churn (lost at the end: last purchase on or before 31
    // March 2025; at the start: not lost on 28 February 2026):
    // - a: 10 March 2025: in S, lost by the end; b: 1 February 2026: in S,
    //   kept; c: nothing, not a customer; d: 5 March 2025: in S, lost; e:
    //   nothing.
    let mut ids = std::collections::BTreeMap::new();
    for (name, days) in
        [("a", &["2025-03-10"][..]), ("b", &["2026-02-01"]), ("c", &[]), ("d", &["2025-03-05"]), ("e", &[])]
    {
        ids.insert(name, buyer(&s, name, days).await);
    }
    let mut profiles = ProfileServiceClient::new(s.cluster.server("profile").channel().await);
    for name in ["a", "b", "c"] {
        let gold = profile::Profile { id: ids[name].clone(), persona: "gold".into(), ..Default::default() };
        let mask = prost_types::FieldMask { paths: vec!["persona".into()] };
        let request = profile::UpdateProfileRequest { profile: Some(gold), update_mask: Some(mask) };
        profiles.update_profile(authed(request, &s.who.writer)).await.unwrap();
    }
    // Intensity now: a's one web pull touchpoint makes her connected (68,
    // as §4.5's example of one web visit); d's one store visit traditional.
    visitor(&s, "a", Channel::Web).await;
    visitor(&s, "d", Channel::Store).await;

    // Today, each answers the NPS survey: a 10, b 3, c 0, d 9, e 8.
    let nps = s.survey(survey::SurveyType::Nps).await;
    for (name, score) in [("a", 10), ("b", 3), ("c", 0), ("d", 9), ("e", 8)] {
        let invited = invitation(&s, &nps, ids[name].parse().unwrap()).await;
        let response = survey::Response {
            id: format!("{name}-nps"),
            survey_id: nps.clone(),
            invitation_id: invited.to_string(),
            score,
            ..Default::default()
        };
        let request = authed(survey::SubmitResponseRequest { response: Some(response) }, &s.who.writer);
        s.surveys().await.submit_response(request).await.unwrap();
    }

    // The facts reach segmentation; the segment of gold customers is
    // refreshed once they have.
    let mut segments = SegmentationServiceClient::new(s.cluster.server("segmentation").channel().await);
    let count = |rule: &'static str| {
        let (mut client, reader) = (segments.clone(), s.who.reader.clone());
        async move {
            let request = seg::EvaluateSegmentRequest {
                target: Some(seg::evaluate_segment_request::Target::Rule(rule.into())),
                ..Default::default()
            };
            client.evaluate_segment(authed(request, &reader)).await.unwrap().into_inner().count
        }
    };
    cx_testkit::eventually("the personas reach segmentation", || count(r#"profile.persona = "gold""#), |n| *n == 3)
        .await;
    let categories = r#"digital.category IN ["connected", "traditional"]"#;
    cx_testkit::eventually("the intensities reach segmentation", || count(categories), |n| *n == 2).await;
    let gold = seg::Segment {
        name: "Gold".into(),
        rule: r#"profile.persona = "gold""#.into(),
        refresh_interval: Some(prost_types::Duration { seconds: 7 * 24 * 3600, nanos: 0 }),
        ..Default::default()
    };
    let created = segments.create_segment(authed(seg::CreateSegmentRequest { segment: Some(gold) }, &s.who.writer));
    let segment = created.await.unwrap().into_inner().segment.unwrap().id;
    let refresh = seg::RefreshSegmentRequest { segment_id: segment.clone() };
    assert_eq!(segments.refresh_segment(authed(refresh, &s.who.writer)).await.unwrap().into_inner().member_count, 3);

    let today = chrono::Utc::now().date_naive().to_string();
    let ask = |metric: pb::Metric, days: (&str, &str), segment_id: &str, categories: &[&str]| pb::GetKpiRequest {
        metric: metric as i32,
        start_day: days.0.into(),
        end_day: days.1.into(),
        filter: Some(pb::Filter {
            segment_id: segment_id.into(),
            digital_categories: categories.iter().map(|&c| c.to_owned()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let get = |request: pb::GetKpiRequest| {
        let (s, reader) = (&s, s.who.reader.clone());
        async move { s.kpis().await.get_kpi(authed(request, &reader)).await.map(|r| r.into_inner().kpi.unwrap()) }
    };
    let day = (today.as_str(), today.as_str());
    // Everyone: 2 promoters (10, 9), 2 detractors (3, 0) of 5: NPS 0.
    assert_eq!((get(ask(pb::Metric::Nps, day, "", &[])).await.unwrap().value, 5), (0.0, 5));
    // The segment: a 10, b 3, c 0: 1 promoter, 2 detractors of 3; NPS
    // (1 − 2) / 3 × 100 = −33.333333; margin 196 × sqrt((1 − (1/3)²) / 3)
    // = 106.688887: −140.02 to 73.355553, cut to −100 (§9.7).
    let gold = get(ask(pb::Metric::Nps, day, &segment, &[])).await.unwrap();
    assert_eq!(shown(&gold), (-33.333333, 3, -100.0, 73.355553));
    // Connected now: a alone, NPS 100; traditional: d, a promoter too; the
    // segment's connected: a; its traditional: nobody (d is not gold).
    assert_eq!(shown(&get(ask(pb::Metric::Nps, day, "", &["connected"])).await.unwrap()).0, 100.0);
    assert_eq!(get(ask(pb::Metric::Nps, day, "", &["traditional", "connected"])).await.unwrap().n, 2);
    assert_eq!(get(ask(pb::Metric::Nps, day, &segment, &["connected"])).await.unwrap().n, 1);
    assert_eq!(shown(&get(ask(pb::Metric::Nps, day, &segment, &["traditional"])).await.unwrap()), (0.0, 0, 0.0, 0.0));

    // Churn in March 2026: everyone S = {a, b, d}, lost {a, d}: 2/3; the
    // segment S = {a, b}, lost {a}: 1/2.
    let churn = get(ask(pb::Metric::Churn, MARCH, "", &[])).await.unwrap();
    assert_eq!((churn.n, (churn.value * 1e6).round() / 1e6), (3, 0.666667));
    let churn = get(ask(pb::Metric::Churn, MARCH, &segment, &[])).await.unwrap();
    assert_eq!((churn.n, churn.value), (2, 0.5));

    // Conversion and the closed loop take no population; an unknown
    // segment is NOT_FOUND, a category not of §4.6 named.
    let refused = get(ask(pb::Metric::ClosedLoopSla, day, &segment, &[])).await.unwrap_err();
    assert_eq!(field_violations(&refused).into_iter().map(|v| v.field).collect::<Vec<_>>(), ["filter"]);
    let unknown = get(ask(pb::Metric::Nps, day, "0190c1d2-0000-7000-8000-000000000001", &[])).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let refused = get(ask(pb::Metric::Nps, day, "", &["online"])).await.unwrap_err();
    let fields: Vec<String> = field_violations(&refused).into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["filter.digital_categories[0]"]);

    // Segmentation hands populations to the kpi service alone.
    let mut internal = SegmentationInternalServiceClient::new(s.cluster.server("segmentation").channel().await);
    let page = seg::ListPopulationRequest { segment_id: segment.clone(), page_size: 2, ..Default::default() };
    let survey_token = cx_testkit::service_token("survey", &s.who.tenant);
    let denied = internal.list_population(authed(page.clone(), &survey_token)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = internal.list_population(authed(page.clone(), &s.who.admin)).await.unwrap_err();
    assert!(matches!(denied.code(), Code::PermissionDenied | Code::Unauthenticated), "{denied:?}");
    let kpi = cx_testkit::service_token("kpi", &s.who.tenant);
    let first = internal.list_population(authed(page.clone(), &kpi)).await.unwrap().into_inner();
    let mut gold_ids = [ids["a"].clone(), ids["b"].clone(), ids["c"].clone()];
    gold_ids.sort();
    assert_eq!((first.customer_ids.as_slice(), first.more), (&gold_ids[..2], true));
    let next = seg::ListPopulationRequest { after_customer_id: gold_ids[1].clone(), ..page };
    let rest = internal.list_population(authed(next, &kpi)).await.unwrap().into_inner();
    assert_eq!((rest.customer_ids.as_slice(), rest.more), (&gold_ids[2..], false));
}
