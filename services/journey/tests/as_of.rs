//! GetProfile's `as_of` evaluates the whole UTC day it falls in, not the
//! instant (docs/DOMAIN.md §4.7), for activity journey sent profile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, NaiveTime, Utc};
use common::{Backend, email, purchase, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::profile::v1 as profile;
use cx_testkit::authed;

cx_testkit::on_both_backends!(as_of_counts_the_utc_day_not_the_instant);

/// One purchase at noon (UTC) 200 days ago, day D. Idle days count whole
/// days: at 23:59:59 on D + 89 she is active (89 idle days); at 00:00:00 on
/// D + 90 at risk (90), although only 89½ × 24 hours have passed.
async fn as_of_counts_the_utc_day_not_the_instant(backend: Backend) {
    let s = common::suite_on(backend).await;
    let day = Utc::now().date_naive() - Duration::days(200);
    let noon = day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap()).and_utc();
    let mut bought = purchase(touchpoint("p1", email("ida@example.com"), Channel::Store, Initiator::Pull, 0), 40);
    bought.occur_time = Some(cx_proto::timestamp(noon));
    assert_eq!(s.ingest(vec![bought]).await.accepted, 1);
    let ida = s.id_of("ida@example.com").await;
    s.eventually_profile(&ida, |p| p.last_touch_time.is_some()).await;

    let at = |days: i64, time: NaiveTime| (day + Duration::days(days)).and_time(time).and_utc();
    let mut profiles = s.profile_client().await;
    let mut lifecycle = async |as_of: chrono::DateTime<Utc>| {
        let request = profile::GetProfileRequest { id: ida.clone(), as_of: Some(cx_proto::timestamp(as_of)) };
        profiles.get_profile(authed(request, &s.writer)).await.unwrap().into_inner().profile.unwrap().lifecycle
    };
    let (last_second, midnight) = (NaiveTime::from_hms_opt(23, 59, 59).unwrap(), NaiveTime::MIN);
    assert_eq!(
        lifecycle(at(0, midnight)).await,
        profile::Lifecycle::Active as i32,
        "the purchase's own day, before noon"
    );
    assert_eq!(lifecycle(at(89, last_second)).await, profile::Lifecycle::Active as i32);
    assert_eq!(lifecycle(at(90, midnight)).await, profile::Lifecycle::AtRisk as i32);
    assert_eq!(lifecycle(at(-1, last_second)).await, profile::Lifecycle::Prospect as i32, "the day before");
}
