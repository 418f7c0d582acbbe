//! The daily roll-ups against the responses they count, and the aggregates
//! read from them, on PostgreSQL and SQLite (docs/DOMAIN.md §7.8).
//!
//! The roll-ups are checked three ways after shuffled, concurrent and
//! replayed submissions and an anonymisation: against a tally worked out
//! here from what was sent, and against `scan_rollups`, the same figures by
//! one query over the responses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod responding;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_internal_service_client::SurveyInternalServiceClient;
use cx_runtime::TenantId;
use cx_runtime::days::day_number;
use cx_runtime::error::Violations;
use cx_runtime::store::Db;
use cx_survey::domain::aggregates::Counts;
use cx_survey::domain::survey::SurveyType;
use cx_survey::store::feeds::Feeds;
use cx_survey::store::migration::Migrator;
use cx_survey::store::rollups::{self, Cell, CellKey};
use cx_survey::store::submit::{self, Draft};
use cx_survey::store::{SurveyError, responses};
use cx_testkit::{ServiceDb, authed, service_token};
use responding::{Backend, Invite, at, create, invite, reason, suite, survey};
use uuid::Uuid;

/// A small deterministic generator (64-bit LCG): the same data every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::try_from(self.next(from.len() as u64)).unwrap()]
    }
}

/// One planned response and where it must count.
#[derive(Clone, Debug)]
struct Plan {
    draft: Draft,
    customer: Option<Uuid>,
    survey_type: SurveyType,
    key: CellKey,
}

fn draft(id: &str, survey: Uuid, invitation: Option<Uuid>, score: i32, when: DateTime<Utc>, nps: bool) -> Draft {
    Draft {
        id: id.into(),
        survey_id: survey,
        invitation_id: invitation,
        anonymous: invitation.is_none(),
        score,
        verbatim: format!("answer {id}"),
        answers: if nps { vec![reason("price")] } else { vec![] },
        language: String::new(),
        respond_time: Some(when),
        digest: format!("{id}/{score}/{}", when.timestamp_micros()).into_bytes(),
        violations: Violations::new(),
    }
}

/// 240 responses to an NPS, a CSAT and a CES survey over ten days of March
/// 2026 (a few in the last microsecond of a day): 40 % anonymous (the web,
/// no map), the rest through invitations of six customers on two maps and
/// three steps (or none) by email, SMS or app. Invited scores are happy
/// ones, so no follow-up case is opened.
async fn plans(db: &Db, t: &TenantId) -> Vec<Plan> {
    let types = [
        (pb::SurveyType::Nps, SurveyType::Nps),
        (pb::SurveyType::Csat, SurveyType::Csat),
        (pb::SurveyType::Ces, SurveyType::Ces),
    ];
    let mut surveys = Vec::new();
    for (proto, domain) in types {
        surveys.push((create(db, t, &survey(proto, true)).await, domain));
    }
    let customers: Vec<Uuid> = (1..=6).map(|i| Uuid::from_u128(0xC0 + i)).collect();
    let maps = [None, Some(Uuid::from_u128(0xA1)), Some(Uuid::from_u128(0xA2))];
    let steps = [None, Some("browse"), Some("order"), Some("delivery")];
    let channels = [Channel::Email, Channel::Sms, Channel::MobileApp];
    let base = at("2026-03-01T00:00:00Z");
    let mut rng = Lcg(2026);
    let mut out = Vec::new();
    for i in 0..240 {
        let (survey, survey_type) = surveys[i % 3];
        let when = if i % 40 == 0 {
            base + Duration::days(i64::try_from(i / 40).unwrap() + 1) - Duration::microseconds(1)
        } else {
            base + Duration::minutes(i64::try_from(rng.next(10 * 24 * 60)).unwrap())
        };
        let (low, high) = survey_type.range();
        let id = format!("r{i:03}");
        let plan = if rng.next(10) < 4 {
            let score = low + i32::try_from(rng.next(u64::try_from(high - low + 1).unwrap())).unwrap();
            let key = CellKey {
                day: day_number(when),
                survey_id: survey,
                map_id: Uuid::nil(),
                step_key: String::new(),
                channel: 1,
            };
            Plan { draft: draft(&id, survey, None, score, when, i % 3 == 0), customer: None, survey_type, key }
        } else {
            let happy = if survey_type == SurveyType::Nps { 7 } else { 3 };
            let score = happy + i32::try_from(rng.next(u64::try_from(high - happy + 1).unwrap())).unwrap();
            let customer = rng.pick(&customers);
            let map = rng.pick(&maps);
            let step = map.and(rng.pick(&steps)).map(str::to_owned);
            let channel = rng.pick(&channels);
            let invitation = Invite {
                map,
                step: step.clone(),
                channel,
                created: at("2026-02-01T00:00:00Z"),
                ..Invite::to(survey, customer)
            };
            let invitation = invite(db, t, &invitation).await;
            let key = CellKey {
                day: day_number(when),
                survey_id: survey,
                map_id: map.unwrap_or_default(),
                step_key: step.unwrap_or_default(),
                channel: channel as i16,
            };
            Plan {
                draft: draft(&id, survey, Some(invitation), score, when, i % 3 == 0),
                customer: Some(customer),
                survey_type,
                key,
            }
        };
        out.push(plan);
    }
    out
}

/// The cells the plans must make, worked out here.
fn tally(plans: &[Plan]) -> Vec<Cell> {
    let mut cells: BTreeMap<CellKey, (i16, Counts)> = BTreeMap::new();
    for p in plans {
        let cell = cells.entry(p.key.clone()).or_insert((p.survey_type.code(), Counts::default()));
        cell.1.add(&Counts::of(p.survey_type, p.draft.score));
    }
    cells.into_iter().map(|(key, (survey_type, counts))| Cell { key, survey_type, counts }).collect()
}

const MARCH: (i32, i32) = (20_513, 20_543);

async fn roll_ups_equal_a_scan_after_shuffled_batches_replays_and_anonymisation(backend: Backend) {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();
    let t = TenantId::parse("rollups").unwrap();
    let mut all = plans(&db, &t).await;
    let mut rng = Lcg(7);
    for i in (1..all.len()).rev() {
        all.swap(i, usize::try_from(rng.next(u64::try_from(i + 1).unwrap())).unwrap());
    }

    // Four writers at once, each also sending the first five of the next
    // writer's share: the same ids race each other.
    let shares: Vec<Vec<Plan>> = all.chunks(60).map(<[Plan]>::to_vec).collect();
    let writers = (0..4).map(|w| {
        let (db, t) = (db.clone(), t.clone());
        let mut mine: Vec<Plan> = shares[(w + 1) % 4].iter().take(5).cloned().collect();
        mine.extend(shares[w].iter().cloned());
        async move {
            let mut created = 0;
            for plan in mine {
                let (response, new) = submit::submit(&db, &Feeds::default(), &t, plan.draft.clone()).await.unwrap();
                assert_eq!(response.id, plan.draft.id);
                created += usize::from(new);
            }
            created
        }
    });
    let created: usize = futures::future::join_all(writers).await.into_iter().sum();
    assert_eq!(created, 240, "each id stored once, however many times it raced");

    // Replays add nothing; another content under a stored id is refused.
    for plan in all.iter().step_by(7) {
        let (_, new) = submit::submit(&db, &Feeds::default(), &t, plan.draft.clone()).await.unwrap();
        assert!(!new, "{} replayed", plan.draft.id);
    }
    for plan in all.iter().step_by(11) {
        let mut changed = plan.draft.clone();
        changed.digest.push(b'!');
        let refused = submit::submit(&db, &Feeds::default(), &t, changed).await.unwrap_err();
        assert!(matches!(refused, SurveyError::AlreadyExists(_)), "{refused:?}");
    }

    let expected = tally(&all);
    let rolled = rollups::cells(&db, &t, MARCH.0, MARCH.1).await.unwrap();
    let scanned = responses::scan_rollups(&db, &t, MARCH.0, MARCH.1).await.unwrap();
    assert_eq!(rolled.iter().map(|c| c.counts.n).sum::<i64>(), 240);
    assert_eq!(rolled, expected, "roll-ups against the tally");
    assert_eq!(scanned, expected, "the scan against the tally");
    // The first microsecond-before-midnight answers stay on their day: the
    // roll-ups (Rust's day) and the scan (the database's) agree above.
    assert!(expected.len() > 50, "{} cells: the data spreads", expected.len());

    // An erasure anonymises two customers' responses: the counts stay.
    let erased = [Uuid::from_u128(0xC1), Uuid::from_u128(0xC2)];
    let theirs = all.iter().filter(|p| p.customer.is_some_and(|c| erased.contains(&c))).count();
    assert!(theirs > 0);
    let done = responses::anonymise(&db, &t, &erased).await.unwrap();
    assert_eq!(done, u64::try_from(theirs).unwrap());
    assert_eq!(responses::scan_rollups(&db, &t, MARCH.0, MARCH.1).await.unwrap(), expected, "after anonymisation");
    assert_eq!(rollups::cells(&db, &t, MARCH.0, MARCH.1).await.unwrap(), expected);
    let other = TenantId::parse("someone-else").unwrap();
    assert_eq!(responses::scan_rollups(&db, &other, MARCH.0, MARCH.1).await.unwrap(), vec![]);
}

/// The same answer sent eight times at once, anonymous and through an
/// invitation: each stored once, counted once.
async fn the_same_answer_sent_at_once_is_stored_once(backend: Backend) {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();
    let t = TenantId::parse("races").unwrap();
    let id = create(&db, &t, &survey(pb::SurveyType::Csat, true)).await;
    let invitation = invite(&db, &t, &Invite::to(id, Uuid::now_v7())).await;
    let when = at("2026-03-01T10:00:00Z");
    let drafts = [draft("anon", id, None, 5, when, false), draft("invited", id, Some(invitation), 4, when, false)];
    let sends = drafts.iter().flat_map(|d| std::iter::repeat_n(d.clone(), 8)).map(|d| {
        let (db, t) = (db.clone(), t.clone());
        async move { submit::submit(&db, &Feeds::default(), &t, d).await.unwrap().1 }
    });
    let created = futures::future::join_all(sends).await;
    assert_eq!(created.iter().filter(|&&new| new).count(), 2, "{created:?}");
    let cells = rollups::cells(&db, &t, MARCH.0, MARCH.1).await.unwrap();
    // Two cells of 1 March (day 20,513): the web's (5: satisfied) and email's (4: satisfied).
    let counted: Vec<_> = cells.iter().map(|c| (c.key.day, c.key.channel, c.counts.n, c.counts.satisfied)).collect();
    assert_eq!(counted, [(20_513, 1, 1, 1), (20_513, 3, 1, 1)]);
}

cx_testkit::on_both_backends!(
    roll_ups_equal_a_scan_after_shuffled_batches_replays_and_anonymisation,
    the_same_answer_sent_at_once_is_stored_once,
    aggregates_are_worked_by_hand,
    long_filter_lists_are_refused_whole,
    the_kpi_service_reads_the_same_aggregates,
);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-6
}

async fn aggregates(s: &responding::Suite, r: pb::GetScoreAggregatesRequest) -> Vec<pb::ScoreGroup> {
    let request = authed(r, &s.reader);
    s.client().await.get_score_aggregates(request).await.unwrap().into_inner().groups
}

fn range(start: &str, end: &str) -> pb::GetScoreAggregatesRequest {
    pb::GetScoreAggregatesRequest { start_day: start.into(), end_day: end.into(), ..Default::default() }
}

/// NPS, CSAT and CES of a small hand-worked set, whole, by day, by map step
/// and channel, filtered by survey and channel, and over empty days.
async fn aggregates_are_worked_by_hand(backend: Backend) {
    let s = suite(backend).await;
    let nps = create(&s.db, &s.t, &survey(pb::SurveyType::Nps, true)).await;
    let csat = create(&s.db, &s.t, &survey(pb::SurveyType::Csat, true)).await;
    let ces = create(&s.db, &s.t, &survey(pb::SurveyType::Ces, true)).await;
    let customer = Uuid::now_v7();
    let send = async |id: &str, survey: Uuid, invited: bool, score: i32, when: &str| {
        let invitation = if invited { Some(invite(&s.db, &s.t, &Invite::to(survey, customer)).await) } else { None };
        let mut r = responding::answer(id, survey, invitation, score, when);
        if survey == nps {
            r.answers = vec![reason("price")];
        }
        s.submit(r).await.unwrap();
    };
    // NPS: 10, 9, 8, 3 anonymous on 1 March (web); 10, 7 invited on 2 March
    // (email, map 0x3A9, step delivery); 0 on 28 February.
    send("n1", nps, false, 10, "2026-03-01T09:00:00Z").await;
    send("n2", nps, false, 9, "2026-03-01T23:59:59.999999Z").await;
    send("n3", nps, false, 8, "2026-03-01T12:00:00Z").await;
    send("n4", nps, false, 3, "2026-03-01T15:00:00Z").await;
    send("n5", nps, true, 10, "2026-03-02T00:00:00Z").await;
    send("n6", nps, true, 7, "2026-03-02T18:00:00Z").await;
    send("n0", nps, false, 0, "2026-02-28T23:59:59Z").await;
    // CSAT: 5, 4 on 1 March, 2 on 2 March, all anonymous.
    send("s1", csat, false, 5, "2026-03-01T10:00:00Z").await;
    send("s2", csat, false, 4, "2026-03-01T11:00:00Z").await;
    send("s3", csat, false, 2, "2026-03-02T10:00:00Z").await;
    // CES: 7, 5, 1 anonymous and 4 invited, all on 2 March.
    send("e1", ces, false, 7, "2026-03-02T10:00:00Z").await;
    send("e2", ces, false, 5, "2026-03-02T11:00:00Z").await;
    send("e3", ces, false, 1, "2026-03-02T12:00:00Z").await;
    send("e4", ces, true, 4, "2026-03-02T13:00:00Z").await;

    // 1–2 March, one group.
    let groups = aggregates(&s, range("2026-03-01", "2026-03-02")).await;
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(
        (g.survey_id.as_str(), g.map_id.as_str(), g.step_key.as_str(), g.channel, g.day.as_str()),
        ("", "", "", 0, "")
    );
    // NPS of 10, 9, 8, 3, 10, 7: 3 promoters, 2 passives, 1 detractor of 6.
    // p = 0.5, d = 1/6: NPS = 100 × (0.5 − 0.166667) = 33.3333;
    // margin = 196 × sqrt((0.666667 − 0.111111) / 6) = 196 × sqrt(0.0925926) = 196 × 0.304290 = 59.6409.
    let n = g.nps.unwrap();
    assert_eq!((n.n, n.promoters, n.passives, n.detractors), (6, 3, 2, 1));
    assert!(close(n.nps, 33.333_333) && close(n.margin_of_error, 59.640_901), "{n:?}");
    // CSAT 5, 4, 2: 2 of 3 satisfied. z²/n = 1.280533, 1 + z²/n = 2.280533;
    // centre = (0.666667 + 0.640267) / 2.280533 = 0.573082;
    // half = 1.96 / 2.280533 × sqrt(0.074074 + 0.106711) = 0.859449 × 0.425188 = 0.365427;
    // 0.207655 to 0.938510.
    let c = g.csat.unwrap();
    assert_eq!((c.n, c.satisfied), (3, 2));
    assert!(close(c.csat, 0.666_667) && close(c.wilson_low, 0.207_655) && close(c.wilson_high, 0.938_510), "{c:?}");
    // CES 7, 5, 1, 4: sum 17, mean 4.25; low effort 7 and 5: 2 of 4, 0.5.
    // z²/n = 0.9604; centre = (0.5 + 0.4802) / 1.9604 = 0.5;
    // half = 1.96 / 1.9604 × sqrt(0.0625 + 0.060025) = 0.999796 × 0.350036 = 0.349964: 0.150036 to 0.849964.
    // Squares 49 + 25 + 1 + 16 = 91; variance (91 − 17² / 4) / 3 = 18.75 / 3 = 6.25, s = 2.5;
    // t(0.975, 3) = 3.182446; half = 3.182446 × 2.5 / √4 = 3.978058: 0.271942 to 8.228058.
    let e = g.ces.unwrap();
    assert_eq!((e.n, e.score_sum, e.score_squares, e.low_effort), (4, 17, 91, 2));
    assert!(close(e.mean, 4.25) && close(e.low_effort_share, 0.5), "{e:?}");
    assert!(close(e.mean_low, 0.271_942) && close(e.mean_high, 8.228_058), "{e:?}");
    assert!(close(e.low_effort_low, 0.150_036) && close(e.low_effort_high, 0.849_964), "{e:?}");

    // By day (n2 at 23:59:59.999999 stays on 1 March; n5 at midnight is 2 March).
    let by_day = pb::GetScoreAggregatesRequest {
        group_by: vec![pb::Dimension::Day as i32],
        ..range("2026-03-01", "2026-03-02")
    };
    let groups = aggregates(&s, by_day).await;
    assert_eq!(groups.iter().map(|g| g.day.as_str()).collect::<Vec<_>>(), ["2026-03-01", "2026-03-02"]);
    // 1 March: NPS 10, 9, 8, 3: p = 0.5, d = 0.25: 25 ± 196 × sqrt(0.6875 / 4) = 81.2573;
    // CSAT 5, 4: 2 of 2: centre = (1 + 0.9604) / 2.9208 = 0.671186,
    // half = 1.96 / 2.9208 × sqrt(3.8416 / 16) = 0.671049 × 0.49 = 0.328814: 0.342372 to 1; no CES.
    let (first, second) = (&groups[0], &groups[1]);
    let n = first.nps.unwrap();
    assert_eq!((n.n, n.promoters, n.passives, n.detractors), (4, 2, 1, 1));
    assert!(close(n.nps, 25.0) && close(n.margin_of_error, 81.257_307), "{n:?}");
    let c = first.csat.unwrap();
    assert!(c.n == 2 && close(c.csat, 1.0) && close(c.wilson_low, 0.342_372) && c.wilson_high == 1.0, "{c:?}");
    assert_eq!(first.ces.unwrap(), pb::CesAggregate::default(), "no CES answer: every figure 0");
    // 2 March: NPS 10, 7: p = 0.5, d = 0: 50 ± 196 × sqrt(0.25 / 2) = 69.2965;
    // CSAT 2: 0 of 1: centre = 1.9208 / 4.8416 = 0.396728, half = 1.96 / 4.8416 × sqrt(0.9604) = 0.396728: 0 to 0.793457.
    let n = second.nps.unwrap();
    assert_eq!((n.n, n.promoters, n.passives, n.detractors), (2, 1, 1, 0));
    assert!(close(n.nps, 50.0) && close(n.margin_of_error, 69.296_465), "{n:?}");
    let c = second.csat.unwrap();
    assert!(c.n == 1 && c.csat == 0.0 && c.wilson_low == 0.0 && close(c.wilson_high, 0.793_457), "{c:?}");
    assert_eq!(second.ces.unwrap().n, 4);

    // The invitations' map and step, by map step and channel: NPS 10, 7 and CES 4, by email.
    let map = Uuid::from_u128(0x3A9);
    let request = pb::GetScoreAggregatesRequest {
        map_id: map.to_string(),
        group_by: vec![pb::Dimension::MapStep as i32, pb::Dimension::Channel as i32],
        ..range("2026-03-01", "2026-03-02")
    };
    let groups = aggregates(&s, request).await;
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(
        (g.map_id.as_str(), g.step_key.as_str(), g.channel),
        (map.to_string().as_str(), "delivery", Channel::Email as i32)
    );
    assert_eq!((g.nps.unwrap().n, g.csat.unwrap().n, g.ces.unwrap().n), (2, 0, 1));
    // CES 4 alone: mean 4 with no interval (n < 2), not low effort: 0 of 1, 0 to 0.793457.
    let e = g.ces.unwrap();
    assert!(close(e.mean, 4.0) && e.low_effort == 0 && close(e.low_effort_high, 0.793_457), "{e:?}");
    assert_eq!((e.score_squares, e.mean_low, e.mean_high), (16, 0.0, 0.0));

    // The NPS survey on the web, by survey; then every survey on the web by
    // survey, in the order of their ids.
    let request = pb::GetScoreAggregatesRequest {
        survey_ids: vec![nps.to_string()],
        channels: vec![Channel::Web as i32],
        group_by: vec![pb::Dimension::Survey as i32],
        ..range("2026-03-01", "2026-03-02")
    };
    let groups = aggregates(&s, request).await;
    assert_eq!(
        groups.iter().map(|g| (g.survey_id.clone(), g.nps.unwrap().n)).collect::<Vec<_>>(),
        [(nps.to_string(), 4)]
    );
    let request = pb::GetScoreAggregatesRequest {
        channels: vec![Channel::Web as i32],
        group_by: vec![pb::Dimension::Survey as i32],
        ..range("2026-03-01", "2026-03-02")
    };
    let groups = aggregates(&s, request).await;
    let per_survey: Vec<_> =
        groups.iter().map(|g| (g.survey_id.clone(), g.nps.unwrap().n, g.csat.unwrap().n, g.ces.unwrap().n)).collect();
    let mut expected = vec![(nps, 4, 0, 0), (csat, 0, 3, 0), (ces, 0, 0, 3)];
    expected.sort();
    let expected: Vec<_> = expected.into_iter().map(|(id, a, b, c)| (id.to_string(), a, b, c)).collect();
    assert_eq!(per_survey, expected);

    // 28 February alone: one detractor, NPS −100 with no margin (p + d − (p − d)² = 1 − 1 = 0).
    let request = pb::GetScoreAggregatesRequest {
        group_by: vec![pb::Dimension::Day as i32],
        ..range("2026-02-28", "2026-02-28")
    };
    let groups = aggregates(&s, request).await;
    assert_eq!(groups.len(), 1);
    let n = groups[0].nps.unwrap();
    assert_eq!(
        (groups[0].day.as_str(), n.n, n.detractors, n.nps, n.margin_of_error),
        ("2026-02-28", 1, 1, -100.0, 0.0)
    );

    // Days without answers: one group of zeros, or no group when grouped.
    let groups = aggregates(&s, range("2026-03-03", "2026-03-04")).await;
    assert_eq!(
        groups,
        [pb::ScoreGroup {
            nps: Some(pb::NpsAggregate::default()),
            csat: Some(pb::CsatAggregate::default()),
            ces: Some(pb::CesAggregate::default()),
            ..Default::default()
        }]
    );
    let request = pb::GetScoreAggregatesRequest {
        group_by: vec![pb::Dimension::Day as i32],
        ..range("2026-03-03", "2026-03-04")
    };
    assert_eq!(aggregates(&s, request).await, []);

    // Another tenant reads nothing of these.
    let stranger = cx_testkit::token(&cx_testkit::unique_tenant("stranger"), cx_runtime::auth::Role::Reader);
    let request = authed(range("2026-03-01", "2026-03-02"), &stranger);
    let groups = s.client().await.get_score_aggregates(request).await.unwrap().into_inner().groups;
    assert_eq!(groups[0].nps.unwrap().n, 0);
}

/// Filters are bounded before any is read: 40,000 channels (SQLite would
/// bind one variable each, past its limit: INTERNAL) and 100,000 dimensions
/// (one violation each) are one violation of the list's length.
async fn long_filter_lists_are_refused_whole(backend: Backend) {
    let s = suite(backend).await;
    let refused = |r: pb::GetScoreAggregatesRequest| {
        let s = &s;
        async move {
            let status = s.client().await.get_score_aggregates(authed(r, &s.reader)).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            cx_runtime::error::field_violations(&status)
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect::<Vec<_>>()
        }
    };
    let many_channels = pb::GetScoreAggregatesRequest {
        channels: vec![Channel::Web as i32; 40_000],
        ..range("2026-03-01", "2026-03-02")
    };
    assert_eq!(
        refused(many_channels).await,
        [("channels".to_owned(), "has at most 12 channels (has 40000)".to_owned())]
    );
    let many_dimensions =
        pb::GetScoreAggregatesRequest { group_by: vec![9; 100_000], ..range("2026-03-01", "2026-03-02") };
    assert_eq!(
        refused(many_dimensions).await,
        [("group_by".to_owned(), "has at most 4 dimensions (has 100000)".to_owned())]
    );
    // Twelve channels, repeats and all, are still a filter.
    let twelve =
        pb::GetScoreAggregatesRequest { channels: vec![Channel::Web as i32; 12], ..range("2026-03-01", "2026-03-02") };
    assert_eq!(aggregates(&s, twelve).await.len(), 1);
}

/// `SurveyInternalService.AggregateScores`: the kpi service, with its
/// service token, reads the groups a reader of the tenant reads and is
/// refused what a reader is refused; a user's token and another service's
/// are refused.
async fn the_kpi_service_reads_the_same_aggregates(backend: Backend) {
    let s = suite(backend).await;
    let ces = create(&s.db, &s.t, &survey(pb::SurveyType::Ces, true)).await;
    let csat = create(&s.db, &s.t, &survey(pb::SurveyType::Csat, true)).await;
    for (id, survey, score, when) in [
        ("e1", ces, 7, "2026-03-01T10:00:00Z"),
        ("e2", ces, 2, "2026-03-01T11:00:00Z"),
        ("e3", ces, 6, "2026-03-02T10:00:00Z"),
        ("s1", csat, 5, "2026-03-02T11:00:00Z"),
    ] {
        s.submit(responding::answer(id, survey, None, score, when)).await.unwrap();
    }
    let mut internal = SurveyInternalServiceClient::new(s.cluster.server("survey").channel().await);
    let kpi = service_token(cx_runtime::identity::KPI, s.t.as_str());
    let ask = |query| pb::AggregateScoresRequest { query: Some(query), customer_ids: Vec::new() };
    let by_day = pb::GetScoreAggregatesRequest {
        group_by: vec![pb::Dimension::Day as i32],
        ..range("2026-03-01", "2026-03-02")
    };
    for request in [range("2026-03-01", "2026-03-02"), by_day] {
        let public = aggregates(&s, request.clone()).await;
        let asked = internal.aggregate_scores(authed(ask(request), &kpi)).await.unwrap().into_inner().groups;
        assert_eq!(asked, public);
    }
    // The whole range: CES 7, 2, 6: sum 15, squares 49 + 4 + 36 = 89, mean 5;
    // variance (89 − 15² / 3) / 2 = 14 / 2 = 7, s = 2.645751;
    // t(0.975, 2) = 4.302653; half = 4.302653 × 2.645751 / √3 = 11.383748 / 1.732051 = 6.572411:
    // −1.572411 to 11.572411 (the interval of the mean, not cut to the 1–7 scale).
    let whole = internal.aggregate_scores(authed(ask(range("2026-03-01", "2026-03-02")), &kpi)).await.unwrap();
    let e = whole.into_inner().groups[0].ces.unwrap();
    assert_eq!((e.n, e.score_sum, e.score_squares), (3, 15, 89));
    assert!(close(e.mean, 5.0) && close(e.mean_low, -1.572_411) && close(e.mean_high, 11.572_411), "{e:?}");

    // The same checks of the request, every violation named.
    let status = internal.aggregate_scores(authed(ask(range("2026-3-1", "2026-03-02")), &kpi)).await.unwrap_err();
    let violations: Vec<_> =
        cx_runtime::error::field_violations(&status).into_iter().map(|v| (v.field, v.description)).collect();
    assert_eq!(
        (status.code(), violations),
        (tonic::Code::InvalidArgument, vec![("start_day".to_owned(), "must be a day written YYYY-MM-DD".to_owned())])
    );

    // Another tenant's kpi token reads that tenant's (nothing).
    let stranger = service_token(cx_runtime::identity::KPI, &cx_testkit::unique_tenant("stranger"));
    let theirs = internal.aggregate_scores(authed(ask(range("2026-03-01", "2026-03-02")), &stranger)).await.unwrap();
    assert_eq!(theirs.into_inner().groups[0].ces.unwrap().n, 0);

    // A reader's token is not a service identity; segmentation is not kpi.
    let user = internal.aggregate_scores(authed(ask(range("2026-03-01", "2026-03-02")), &s.reader)).await.unwrap_err();
    assert_eq!(user.code(), tonic::Code::Unauthenticated);
    let segmentation = service_token("segmentation", s.t.as_str());
    let other =
        internal.aggregate_scores(authed(ask(range("2026-03-01", "2026-03-02")), &segmentation)).await.unwrap_err();
    assert_eq!(
        (other.code(), other.message()),
        (tonic::Code::PermissionDenied, "only the kpi service makes this call")
    );
}
