//! RFM in SQL (`store::rfm`) on PostgreSQL and SQLite: a hand-worked
//! population as of two days and in two currencies, the default currency,
//! pages, and equality with the pure domain functions over a generated
//! population.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use cx_runtime::TenantId;
use cx_runtime::store::Db;
use cx_segmentation::rfm::{CustomerRfm, PurchaseDay, Scores, Segment, Values, score_population};
use cx_segmentation::store::migration::Migrator;
use cx_segmentation::store::{purchases, rfm};
use cx_testkit::{Backend, ServiceDb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

cx_testkit::on_both_backends!(
    the_hand_worked_population_as_of_two_days,
    monetary_counts_only_the_chosen_currency,
    the_default_currency_has_the_most_purchases,
    pages_follow_customer_ids,
    sql_equals_the_domain_functions,
    rfm_is_written_into_the_facts_rules_read,
);

/// A migrated segmentation store on one backend, dropped with the test.
async fn migrated(backend: Backend) -> (Db, ServiceDb) {
    let service = ServiceDb::open(backend, "segmentation").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "segmentation").await.unwrap();
    (db, service)
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// The first as-of day of the hand-worked population.
const A: NaiveDate = NaiveDate::from_ymd_opt(2026, 5, 30).unwrap();
/// 100 days later: purchases 265 or more days before A leave the window.
const B: NaiveDate = NaiveDate::from_ymd_opt(2026, 9, 7).unwrap();

fn c(i: u128) -> Uuid {
    Uuid::from_u128(i)
}

/// A purchase day `k` days before A (negative: after A), `units` whole
/// units of `currency`.
fn at(k: i64, currency: &str, purchases: i64, units: i64) -> PurchaseDay {
    PurchaseDay { day: A - Duration::days(k), currency: currency.into(), purchases, amount_micros: units * 1_000_000 }
}

/// Ten customers scored as of A; c11 only outside the window then.
///
/// | cust | days before A: currency purchases units        |
/// | c1   | 0: EUR 1 50                                     |
/// | c2   | 0: EUR 2 150; 5: EUR 2 250; 20: USD 2 80        |
/// | c3   | 10: EUR 1 70; 40: EUR 1 50                      |
/// | c4   | 30: USD 3 300; 90: USD 2 200                    |
/// | c5   | 60: EUR 2 120 (added as two rows of 1 and 60)   |
/// | c6   | 100: EUR 4 400; 150: EUR 5 500                  |
/// | c7   | 200: EUR 1 20; 400: EUR 7 700 (out)             |
/// | c8   | 200: EUR 2 100; 280: EUR 2 150                  |
/// | c9   | 300: EUR 1 25; 330: EUR 2 50                    |
/// | c10  | 364: GBP 1 30                                   |
/// | c11  | 365: EUR 3 999 (out); −50 (after A): EUR 1 60   |
async fn hand_worked(db: &Db, t: &TenantId) {
    let rows = vec![
        (c(1), at(0, "EUR", 1, 50)),
        (c(2), at(0, "EUR", 2, 150)),
        (c(2), at(5, "EUR", 2, 250)),
        (c(2), at(20, "USD", 2, 80)),
        (c(3), at(10, "EUR", 1, 70)),
        (c(3), at(40, "EUR", 1, 50)),
        (c(4), at(30, "USD", 3, 300)),
        (c(4), at(90, "USD", 2, 200)),
        (c(5), at(60, "EUR", 1, 60)),
        (c(6), at(100, "EUR", 4, 400)),
        (c(6), at(150, "EUR", 5, 500)),
        (c(7), at(200, "EUR", 1, 20)),
        (c(7), at(400, "EUR", 7, 700)),
        (c(8), at(200, "EUR", 2, 100)),
        (c(8), at(280, "EUR", 2, 150)),
        (c(9), at(300, "EUR", 1, 25)),
        (c(9), at(330, "EUR", 2, 50)),
        (c(10), at(364, "GBP", 1, 30)),
        (c(11), at(365, "EUR", 3, 999)),
        (c(11), at(-50, "EUR", 1, 60)),
    ];
    purchases::add(db, t, &rows).await.unwrap();
    // c5's second purchase of the day adds to the row.
    purchases::add(db, t, &[(c(5), at(60, "EUR", 1, 60))]).await.unwrap();
}

/// (customer, recency days, frequency, monetary units, R, F, M, segment).
type Row = (u128, i64, i64, i64, u8, u8, u8, Segment);

fn rows(scored: &[CustomerRfm]) -> Vec<Row> {
    scored
        .iter()
        .map(|s| {
            let Values { recency_days, frequency, monetary_micros } = s.values;
            let Scores { r, f, m } = s.scores;
            (s.customer_id.as_u128(), recency_days, frequency, monetary_micros / 1_000_000, r, f, m, s.segment)
        })
        .collect()
}

async fn the_hand_worked_population_as_of_two_days(backend: Backend) {
    use Segment::*;
    let (db, _service) = migrated(backend).await;
    let t = tenant("rfm-hand");
    hand_worked(&db, &t).await;
    // Another tenant's purchases by the same ids change nothing.
    purchases::add(&db, &tenant("rfm-other"), &[(c(1), at(0, "EUR", 100, 1)), (c(12), at(1, "EUR", 1, 1))])
        .await
        .unwrap();

    // As of A, n = 10: score = 1 + floor(w/2), so w 0–1 → 1, 2–3 → 2,
    // 4–5 → 3, 6–7 → 4, 8–9 → 5.
    // R (w = customers with more days): 0 days (c1, c2) w 8 → 5; 10 w 7 → 4;
    //   30 w 6 → 4; 60 w 5 → 3; 100 w 4 → 3; 200 (c7, c8) w 2 → 2;
    //   300 w 1 → 1; 364 w 0 → 1.
    // F (w = fewer purchases), sorted 1 1 1 2 2 3 4 5 6 9: 1 w 0 → 1;
    //   2 w 3 → 2; 3 w 5 → 3; 4 w 6 → 4; 5 w 7 → 4; 6 w 8 → 5; 9 w 9 → 5.
    // M in EUR, sorted 0 0 20 50 75 120 120 250 400 900: 0 (c4 USD only,
    //   c10 GBP only) w 0 → 1; 20 w 2 → 2; 50 w 3 → 2; 75 w 4 → 3;
    //   120 w 5 → 3; 250 w 7 → 4; 400 w 8 → 5; 900 w 9 → 5.
    let as_of_a = rfm::compute(&db, &t, A, "EUR").await.unwrap();
    assert_eq!(
        rows(&as_of_a),
        vec![
            (1, 0, 1, 50, 5, 1, 2, NewCustomer),
            (2, 0, 6, 400, 5, 5, 5, Champions),
            (3, 10, 2, 120, 4, 2, 3, PotentialLoyalist),
            (4, 30, 5, 0, 4, 4, 1, Champions),
            (5, 60, 2, 120, 3, 2, 3, NeedAttention),
            (6, 100, 9, 900, 3, 5, 5, Loyal),
            (7, 200, 1, 20, 2, 1, 2, Hibernating),
            (8, 200, 4, 250, 2, 4, 4, AtRisk),
            (9, 300, 3, 75, 1, 3, 3, AtRisk),
            (10, 364, 1, 0, 1, 1, 1, Lost),
        ]
    );

    // As of B = A + 100, window [A − 264, A + 100]: c9 and c10 leave, c8
    // keeps only day 200, c11 enters with its purchase 50 days before B.
    // n = 9: score = 1 + floor(5w/9), so w 0–1 → 1, 2–3 → 2, 4–5 → 3,
    // 6–7 → 4, 8 → 5.
    // R, sorted 50 100 100 110 130 160 200 300 300: 50 w 8 → 5; 100 w 6 → 4;
    //   110 w 5 → 3; 130 w 4 → 3; 160 w 3 → 2; 200 w 2 → 2; 300 w 0 → 1.
    // F, sorted 1 1 1 2 2 2 5 6 9: 1 w 0 → 1; 2 w 3 → 2; 5 w 6 → 4;
    //   6 w 7 → 4; 9 w 8 → 5.
    // M, sorted 0 20 50 60 100 120 120 400 900: 0 w 0 → 1; 20 w 1 → 1;
    //   50 w 2 → 2; 60 w 3 → 2; 100 w 4 → 3; 120 w 5 → 3; 400 w 7 → 4;
    //   900 w 8 → 5.
    let as_of_b = rfm::compute(&db, &t, B, "EUR").await.unwrap();
    assert_eq!(
        rows(&as_of_b),
        vec![
            (1, 100, 1, 50, 4, 1, 2, NewCustomer),
            (2, 100, 6, 400, 4, 4, 4, Champions),
            (3, 110, 2, 120, 3, 2, 3, NeedAttention),
            (4, 130, 5, 0, 3, 4, 1, Loyal),
            (5, 160, 2, 120, 2, 2, 3, Hibernating),
            (6, 200, 9, 900, 2, 5, 5, AtRisk),
            (7, 300, 1, 20, 1, 1, 1, Lost),
            (8, 300, 2, 100, 1, 2, 3, Lost),
            (11, 50, 1, 60, 5, 1, 2, NewCustomer),
        ]
    );

    // A tenant without purchases has no RFM.
    assert_eq!(rfm::compute(&db, &tenant("rfm-empty"), A, "EUR").await.unwrap(), vec![]);
}

async fn monetary_counts_only_the_chosen_currency(backend: Backend) {
    use Segment::*;
    let (db, _service) = migrated(backend).await;
    let t = tenant("rfm-usd");
    hand_worked(&db, &t).await;
    // As of A in USD: R, F and segments as in EUR; M sorted 0 ×8, 80, 500:
    // 0 w 0 → 1; 80 (c2) w 8 → 5; 500 (c4) w 9 → 5.
    let usd = rfm::compute(&db, &t, A, "USD").await.unwrap();
    assert_eq!(
        rows(&usd),
        vec![
            (1, 0, 1, 0, 5, 1, 1, NewCustomer),
            (2, 0, 6, 80, 5, 5, 5, Champions),
            (3, 10, 2, 0, 4, 2, 1, PotentialLoyalist),
            (4, 30, 5, 500, 4, 4, 5, Champions),
            (5, 60, 2, 0, 3, 2, 1, NeedAttention),
            (6, 100, 9, 0, 3, 5, 1, Loyal),
            (7, 200, 1, 0, 2, 1, 1, Hibernating),
            (8, 200, 4, 0, 2, 4, 1, AtRisk),
            (9, 300, 3, 0, 1, 3, 1, AtRisk),
            (10, 364, 1, 0, 1, 1, 1, Lost),
        ]
    );
}

async fn the_default_currency_has_the_most_purchases(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("rfm-default");
    hand_worked(&db, &t).await;
    // Purchases in the window as of A: EUR 1 + 4 + 2 + 2 + 9 + 1 + 4 + 3 = 26,
    // USD 2 + 5 = 7, GBP 1.
    assert_eq!(rfm::default_currency(&db, &t, A).await.unwrap().as_deref(), Some("EUR"));

    // A tie (AUD 2, CHF 2 in the window) goes to the first alphabetically;
    // CHF's 5 purchases 365 days before A are out of the window.
    let tied = tenant("rfm-tied");
    let rows = [
        (c(1), at(3, "CHF", 1, 10)),
        (c(2), at(4, "CHF", 1, 10)),
        (c(1), at(5, "AUD", 2, 10)),
        (c(3), at(365, "CHF", 5, 10)),
    ];
    purchases::add(&db, &tied, &rows).await.unwrap();
    assert_eq!(rfm::default_currency(&db, &tied, A).await.unwrap().as_deref(), Some("AUD"));
    // One day earlier the CHF purchases of day 365 count: CHF 7 (days
    // 364, 2 and 3 before it), AUD 2.
    let before = A - Duration::days(1);
    assert_eq!(rfm::default_currency(&db, &tied, before).await.unwrap().as_deref(), Some("CHF"));
    assert_eq!(rfm::default_currency(&db, &tenant("rfm-none"), A).await.unwrap(), None);
}

async fn pages_follow_customer_ids(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("rfm-pages");
    hand_worked(&db, &t).await;
    let all = rfm::compute(&db, &t, A, "EUR").await.unwrap();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = rfm::page(&db, &t, A, "EUR", after, Some(3)).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.customer_id);
        paged.extend(page);
    }
    // Pages of 3, 3, 3 and 1, each scored among all ten.
    assert_eq!(paged, all);
    let second = rfm::page(&db, &t, A, "EUR", Some(c(3)), Some(3)).await.unwrap();
    assert_eq!(second.iter().map(|s| s.customer_id).collect::<Vec<_>>(), vec![c(4), c(5), c(6)]);
}

/// 2,000 customers of random purchase days (seeded): in and out of the
/// window, after the as-of day, three currencies, amounts from a few
/// values so that ties are common.
fn generated() -> Vec<(Uuid, PurchaseDay)> {
    let mut rng = StdRng::seed_from_u64(16);
    let currencies = ["EUR", "USD", "GBP"];
    let mut rows = Vec::new();
    for i in 0..2_000u128 {
        let customer = Uuid::from_u128(rng.random::<u128>() ^ i);
        for _ in 0..rng.random_range(1..=6) {
            rows.push((
                customer,
                at(
                    rng.random_range(-30..=500),
                    currencies[rng.random_range(0..currencies.len())],
                    rng.random_range(1..=4),
                    rng.random_range(0..=40) * 5,
                ),
            ));
        }
    }
    rows
}

/// What the domain functions give for `rows` as of `as_of` in `currency`.
fn expected(rows: &[(Uuid, PurchaseDay)], as_of: NaiveDate, currency: &str) -> Vec<CustomerRfm> {
    let mut by_customer: BTreeMap<Uuid, Vec<PurchaseDay>> = BTreeMap::new();
    for (customer, day) in rows {
        by_customer.entry(*customer).or_default().push(day.clone());
    }
    let population: Vec<(Uuid, Values)> = by_customer
        .iter()
        .filter_map(|(customer, days)| Values::of(as_of, currency, days).map(|v| (*customer, v)))
        .collect();
    score_population(&population)
}

/// The default currency by counting in Rust.
fn expected_currency(rows: &[(Uuid, PurchaseDay)], as_of: NaiveDate) -> Option<String> {
    let (first, last) = cx_segmentation::rfm::window(as_of);
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, d) in rows.iter().filter(|(_, d)| d.day >= first && d.day <= last) {
        *counts.entry(&d.currency).or_default() += d.purchases;
    }
    // max_by_key keeps the last of equals: reverse so that is the first name.
    counts.into_iter().rev().max_by_key(|(_, n)| *n).map(|(c, _)| c.to_owned())
}

async fn sql_equals_the_domain_functions(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("rfm-generated");
    let rows = generated();
    purchases::add(&db, &t, &rows).await.unwrap();
    for (as_of, currency) in [(A, "EUR"), (A, "GBP"), (B, "USD")] {
        let sql = rfm::compute(&db, &t, as_of, currency).await.unwrap();
        let want = expected(&rows, as_of, currency);
        assert!(want.len() > 1_000, "most customers are scored: {}", want.len());
        assert_eq!(sql.len(), want.len(), "{as_of} {currency}");
        for (got, want) in sql.iter().zip(&want) {
            assert_eq!(got, want, "{as_of} {currency}");
        }
        assert_eq!(rfm::default_currency(&db, &t, as_of).await.unwrap(), expected_currency(&rows, as_of));
    }
}

/// The fact table's RFM columns of the tenant, by customer, as [`Row`]s
/// (`None` for a customer whose RFM was cleared).
async fn fact_rows(db: &Db, t: &TenantId) -> Vec<(u128, Option<Row>)> {
    use cx_runtime::store::scoped;
    use cx_segmentation::store::entity::fact;
    use sea_orm::QueryOrder;
    let rows = scoped::<fact::Entity>(t).order_by_asc(fact::Column::CustomerId).all(db).await.unwrap();
    rows.into_iter()
        .map(|f| {
            let scored = f.rfm_segment.as_deref().and_then(Segment::parse).map(|segment| {
                let score = |s: Option<i16>| u8::try_from(s.unwrap()).unwrap();
                (
                    f.customer_id.as_u128(),
                    i64::from(f.rfm_recency_days.unwrap()),
                    f.rfm_frequency.unwrap(),
                    f.rfm_monetary_micros.unwrap() / 1_000_000,
                    score(f.rfm_r),
                    score(f.rfm_f),
                    score(f.rfm_m),
                    segment,
                )
            });
            (f.customer_id.as_u128(), scored)
        })
        .collect()
}

async fn rfm_is_written_into_the_facts_rules_read(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("rfm-facts");
    hand_worked(&db, &t).await;
    // Purchases put the tenant on the RFM job's list, once.
    assert_eq!(rfm::take_due(&db).await.unwrap(), std::slice::from_ref(&t));
    assert_eq!(rfm::take_due(&db).await.unwrap(), Vec::<TenantId>::new());

    // As of A: the ten customers of the hand-worked table above, each in
    // its fact row (made for them); c11 has no purchase in the window.
    assert_eq!(rfm::write_facts(&db, &t, A, "EUR").await.unwrap(), 10);
    let expected_a: Vec<_> =
        rows(&rfm::compute(&db, &t, A, "EUR").await.unwrap()).into_iter().map(|r| (r.0, Some(r))).collect();
    assert_eq!(fact_rows(&db, &t).await, expected_a);

    // As of B: c9 and c10 are no longer scored and their RFM is cleared;
    // c11 enters. The job's write picks EUR itself (22 purchases in the
    // window against USD's 7).
    let noon_b = B.and_hms_opt(12, 0, 0).unwrap().and_utc();
    assert_eq!(cx_segmentation::rfm_facts::write(&db, &t, noon_b).await.unwrap(), 9);
    let mut expected_b: Vec<_> =
        rows(&rfm::compute(&db, &t, B, "EUR").await.unwrap()).into_iter().map(|r| (r.0, Some(r))).collect();
    expected_b.extend([(9, None), (10, None)]);
    expected_b.sort_by_key(|r| r.0);
    assert_eq!(fact_rows(&db, &t).await, expected_b);

    // A rule reads them: the lost of B are c7 and c8.
    let rule = cx_segmentation::rules::validate("rfm.segment = \"lost\"", &Default::default()).unwrap();
    let today = cx_runtime::days::day_number(noon_b);
    assert_eq!(cx_segmentation::store::evaluate::count(&db, &t, &rule, today).await.unwrap(), 2);
}
