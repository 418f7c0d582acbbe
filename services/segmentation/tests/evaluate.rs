//! Segment evaluation (`evaluate`, `store::evaluate`) on PostgreSQL and
//! SQLite: over 100,000 generated customers, each rule's compiled statement
//! selects, page by page and in its count, the same members as SQL written
//! by hand for it here; on PostgreSQL, equality on a closed text field is
//! served by its index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::Db;
use cx_segmentation::evaluate as compile;
use cx_segmentation::rules::{CHANNELS, Catalog, Checked, RFM_SEGMENTS, validate};
use cx_segmentation::store::evaluate;
use cx_segmentation::store::migration::{Migrator, consent_column};
use cx_testkit::{Backend, ServiceDb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use uuid::Uuid;

cx_testkit::on_both_backends!(compiled_rules_select_what_hand_written_sql_selects);

/// The day the rules are evaluated at: 2026-05-28.
const TODAY: i32 = 20_600;
const CUSTOMERS: usize = 100_000;
const TENANT: &str = "ev";
/// Another tenant with the first 1,000 ids, matching most rules: none of
/// its rows may leak into `TENANT`'s segments.
const OTHER: &str = "ev-other";
const PAGE: u64 = 30_000;

/// (rule, the same rule written by hand as a condition on a
/// `segment_facts` row of tenant 'ev', literals inline).
const RULES: &[(&str, &str)] = &[
    (r#"profile.lifecycle = "lost""#, "lifecycle = 'lost'"),
    // A missing category: the test is false, its NOT true.
    (r#"NOT digital.category = "hybrid""#, "digital_category IS NULL OR digital_category <> 'hybrid'"),
    (
        r#"digital.category != "hybrid" AND profile.persona IN ["saver", "explorer"]"#,
        "digital_category <> 'hybrid' AND persona IN ('saver', 'explorer')",
    ),
    // NPS 7+ fails the first, 0–6 (detractor) the second: only the missing pass.
    (r#"NOT (survey.last_nps >= 7) AND NOT survey.nps_category = "detractor""#, "last_nps IS NULL"),
    (
        "digital.index BETWEEN 25.5 AND 60 OR NOT digital.index EXISTS",
        "(digital_index >= 25.5 AND digital_index <= 60) OR digital_index IS NULL",
    ),
    // 500.0000005 units = 500,000,000.5 micros: the first whole one is 500,000,001.
    (
        "rfm.monetary >= 500.0000005 AND rfm.monetary <= 1500.25",
        "rfm_monetary_micros >= 500000001 AND rfm_monetary_micros <= 1500250000",
    ),
    // 0.0000001 units are 0.1 micros: nobody.
    (
        "rfm.monetary = 500 OR rfm.monetary IN [1500.250001, 0.0000001]",
        "rfm_monetary_micros IN (500000000, 1500250001)",
    ),
    // r < 2.5 is r ≤ 2; f = 4.5 and m = 2.5 match nobody, so NOT of it everybody.
    ("rfm.r < 2.5 AND rfm.f IN [1, 3, 5, 4.5] AND NOT rfm.m = 2.5", "rfm_r <= 2 AND rfm_f IN (1, 3, 5)"),
    (
        r#"rfm.segment IN ["champions", "loyal"] OR survey.nps_category = "promoter""#,
        "rfm_segment IN ('champions', 'loyal') OR nps_category = 'promoter'",
    ),
    (
        "rfm.recency_days < 30 AND rfm.frequency >= 10 OR journey.touchpoints_90d > 190",
        "(rfm_recency_days < 30 AND rfm_frequency >= 10) OR touchpoints_90d > 190",
    ),
    // web is bit 1, store bit 256.
    (
        r#"journey.channels CONTAINS "web" AND NOT journey.channels CONTAINS "store""#,
        "(channels_180d & 1) <> 0 AND (channels_180d & 256) = 0",
    ),
    (
        r#"NOT journey.channels EXISTS OR journey.last_channel IN ["sms", "email"]"#,
        "channels_180d = 0 OR last_channel IN ('sms', 'email')",
    ),
    (
        "journey.days_since_last_touch BETWEEN 30 AND 90",
        "last_touch_day IS NOT NULL AND (20600 - last_touch_day) BETWEEN 30 AND 90",
    ),
    // < 60.5 is ≤ 60; its NOT, > 60 or never touched.
    ("NOT journey.days_since_last_touch < 60.5", "last_touch_day IS NULL OR (20600 - last_touch_day) > 60"),
    (
        "profile.days_since_created >= 365 AND profile.days_since_created != 1000",
        "(20600 - created_day) >= 365 AND (20600 - created_day) <> 1000",
    ),
    (
        r#"profile.attributes.tier = "gold""#,
        "customer_id IN (SELECT customer_id FROM segment_attributes \
         WHERE tenant_id = 'ev' AND key = 'tier' AND text_value = 'gold')",
    ),
    // An instant matches no literal, only EXISTS: every born passes.
    (
        r#"profile.attributes.born EXISTS AND NOT profile.attributes.born = "2001-02-03T04:05:06Z""#,
        "customer_id IN (SELECT customer_id FROM segment_attributes WHERE tenant_id = 'ev' AND key = 'born')",
    ),
    (
        r#"profile.attributes.score BETWEEN 20 AND 40.5 OR profile.attributes.tier IN [1, 2] OR profile.attributes.tier < "h""#,
        "customer_id IN (SELECT customer_id FROM segment_attributes WHERE tenant_id = 'ev' AND ( \
           (key = 'score' AND number_value >= 20 AND number_value <= 40.5) \
           OR (key = 'tier' AND number_value IN (1, 2)) \
           OR (key = 'tier' AND text_value IN ('gold', 'bronze'))))",
    ),
    // A missing score or a text one ("high") is not > 50: NOT of it is true.
    (
        "NOT profile.attributes.score > 50",
        "customer_id NOT IN (SELECT customer_id FROM segment_attributes \
         WHERE tenant_id = 'ev' AND key = 'score' AND number_value > 50)",
    ),
    (
        "profile.attributes.vip = true AND consent.loyalty_club",
        "customer_id IN (SELECT customer_id FROM segment_attributes \
           WHERE tenant_id = 'ev' AND key = 'vip' AND bool_value = TRUE) \
         AND customer_id IN (SELECT customer_id FROM segment_consents \
           WHERE tenant_id = 'ev' AND purpose = 'loyalty_club' AND granted = TRUE)",
    ),
    // No decision and a refusal are both not granted.
    (
        "NOT consent.loyalty_club AND consent.email AND NOT consent.sms",
        "customer_id NOT IN (SELECT customer_id FROM segment_consents \
           WHERE tenant_id = 'ev' AND purpose = 'loyalty_club' AND granted = TRUE) \
         AND consent_email = TRUE AND consent_sms = FALSE",
    ),
    (
        "survey.last_csat <= 2 OR survey.last_ces > 5.5 OR survey.responses = 0",
        "last_csat <= 2 OR last_ces >= 6 OR responses = 0",
    ),
    (
        "consent.partners = false AND profile.attributes.vip != true",
        "customer_id NOT IN (SELECT customer_id FROM segment_consents \
           WHERE tenant_id = 'ev' AND purpose = 'partners' AND granted = TRUE) \
         AND customer_id IN (SELECT customer_id FROM segment_attributes \
           WHERE tenant_id = 'ev' AND key = 'vip' AND bool_value = FALSE)",
    ),
];

async fn compiled_rules_select_what_hand_written_sql_selects(backend: Backend) {
    let (db, _service) = populated(backend).await;
    let tenant = TenantId::parse(TENANT).unwrap();
    let catalog = Catalog { custom_purposes: vec!["loyalty_club".into(), "partners".into()] };
    for (rule, hand) in RULES {
        let checked = validate(rule, &catalog).unwrap_or_else(|e| panic!("{rule}: {e:?}"));
        let mut members = Vec::new();
        let mut after = None;
        loop {
            let page = evaluate::page(&db, &tenant, &checked, TODAY, after, PAGE).await.unwrap();
            members.extend_from_slice(&page);
            after = page.last().copied();
            if (page.len() as u64) < PAGE {
                break;
            }
        }
        assert!(members.windows(2).all(|w| w[0] < w[1]), "{rule}: pages in increasing id order");
        let count = evaluate::count(&db, &tenant, &checked, TODAY).await.unwrap();
        assert_eq!(count, members.len() as u64, "{rule}: count against pages");
        // The same members: as many as by hand, and as many by both at once
        // (|C| = |H| = |C ∩ H|), counted in SQL rather than read back.
        let by_hand = hand_written(&db, hand, None).await;
        assert_eq!(count, by_hand, "{rule}: members against {hand}");
        let both = hand_written(&db, hand, Some(&checked)).await;
        assert_eq!(both, by_hand, "{rule}: the members differ from those of {hand}");
        // Every rule here is selective, so a compiler matching all or none fails.
        assert!(0 < count && count < CUSTOMERS as u64, "{rule}: {count} of {CUSTOMERS} is not selective");
    }
}

/// On PostgreSQL, with statistics, equality on a closed text field reads its
/// index, both for a page and for the count.
#[tokio::test]
async fn postgres_plans_read_the_closed_field_indexes() {
    let (db, _service) = populated(Backend::Postgres).await;
    let tenant = TenantId::parse(TENANT).unwrap();
    for (rule, index) in [
        (r#"profile.lifecycle = "lost""#, "segment_facts_lifecycle"),
        (r#"rfm.segment = "champions""#, "segment_facts_rfm_segment"),
    ] {
        let checked = validate(rule, &Catalog::default()).unwrap();
        for statement in [
            compile::members(&checked, DbBackend::Postgres, &tenant, TODAY, None, 1_000),
            compile::count(&checked, DbBackend::Postgres, &tenant, TODAY),
        ] {
            let explain = Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("EXPLAIN {}", statement.sql),
                statement.values.map(|v| v.0).unwrap_or_default(),
            );
            let plan: Vec<String> = db
                .query_all_raw(explain)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap())
                .collect();
            let plan = plan.join("\n");
            assert!(plan.contains(index), "{rule}: {}\nreads no {index}:\n{plan}", statement.sql);
        }
    }
}

/// How many customers of tenant 'ev' the hand-written condition selects,
/// and with `compiled`, how many of them the compiled rule selects too.
async fn hand_written(db: &Db, condition: &str, compiled: Option<&Checked>) -> u64 {
    let backend = db.get_database_backend();
    let (also, values) = compiled.map(|rule| compile::condition(rule, backend, TODAY)).unwrap_or_default();
    let also = if compiled.is_some() { format!(" AND ({also})") } else { String::new() };
    let sql = format!("SELECT count(*) AS n FROM segment_facts f WHERE f.tenant_id = 'ev' AND ({condition}){also}");
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap().unwrap();
    u64::try_from(row.try_get::<i64>("", "n").unwrap()).unwrap()
}

/// A migrated store holding the generated population, dropped with the test.
async fn populated(backend: Backend) -> (Db, ServiceDb) {
    let service = ServiceDb::open(backend, "segmentation").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "segmentation").await.unwrap();
    let mut rng = StdRng::seed_from_u64(0x5e9);
    let ids: Vec<Uuid> = (0..CUSTOMERS).map(|_| Uuid::from_u128(rng.random())).collect();
    let population = Population::generate(&mut rng, TENANT, &ids, false);
    let other = Population::generate(&mut rng, OTHER, &ids[..1_000], true);
    let txn = db.begin().await.unwrap();
    for p in [population, other] {
        insert(&txn, "segment_facts", fact_columns().as_slice(), p.facts).await;
        insert(&txn, "segment_attributes", &ATTRIBUTE_COLUMNS[..], p.attributes).await;
        insert(&txn, "segment_consents", &CONSENT_COLUMNS[..], p.consents).await;
    }
    txn.commit().await.unwrap();
    // Statistics, as a store in use has: without them PostgreSQL may loop
    // over a freshly filled table as if it were empty.
    db.execute_unprepared("ANALYZE").await.unwrap();
    (db, service)
}

const ATTRIBUTE_COLUMNS: [&str; 7] =
    ["tenant_id", "customer_id", "key", "text_value", "number_value", "bool_value", "is_instant"];
const CONSENT_COLUMNS: [&str; 6] = ["tenant_id", "customer_id", "purpose", "granted", "occur_time", "record_time"];

fn fact_columns() -> Vec<String> {
    let mut columns: Vec<String> =
        ["tenant_id", "customer_id", "lifecycle", "persona", "created_day", "digital_index", "digital_category"]
            .map(String::from)
            .to_vec();
    columns.extend(cx_runtime::consent::StandardPurpose::ALL.map(consent_column));
    columns.extend(
        [
            "rfm_day",
            "rfm_recency_days",
            "rfm_frequency",
            "rfm_monetary_micros",
            "rfm_r",
            "rfm_f",
            "rfm_m",
            "rfm_segment",
            "channels_180d",
            "last_touch_day",
            "last_channel",
            "touchpoints_90d",
            "last_nps",
            "nps_category",
            "last_csat",
            "last_ces",
            "responses",
        ]
        .map(String::from),
    );
    columns
}

/// Rows of the three tables, each a row of values in their columns' order.
struct Population {
    facts: Vec<Vec<Value>>,
    attributes: Vec<Vec<Value>>,
    consents: Vec<Vec<Value>>,
}

/// One of `choices`, by weight out of 100.
fn pick<T: Copy>(rng: &mut StdRng, choices: &[(u32, T)]) -> T {
    let mut at = rng.random_range(0..100);
    for (weight, choice) in choices {
        if at < *weight {
            return *choice;
        }
        at -= weight;
    }
    choices[choices.len() - 1].1
}

fn text(value: Option<&str>) -> Value {
    Value::from(value.map(str::to_owned))
}

impl Population {
    /// Facts with NULLs in every nullable column; attributes `tier` (text,
    /// some numbers), `score` (numbers, some text), `vip` (boolean) and
    /// `born` (an instant); custom consents `loyalty_club` and `partners`.
    /// `lavish`: every customer a gold tier and the loyalty club granted.
    fn generate(rng: &mut StdRng, tenant: &str, ids: &[Uuid], lavish: bool) -> Self {
        let mut p = Population { facts: Vec::new(), attributes: Vec::new(), consents: Vec::new() };
        for id in ids {
            p.facts.push(fact(rng, tenant, *id));
            let attribute =
                |key: &str, text: Option<&str>, number: Option<f64>, boolean: Option<bool>, instant: bool| {
                    vec![
                        tenant.into(),
                        (*id).into(),
                        key.into(),
                        self::text(text),
                        number.into(),
                        boolean.into(),
                        Value::from(instant),
                    ]
                };
            if lavish {
                p.attributes.push(attribute("tier", Some("gold"), None, None, false));
            } else if rng.random_bool(0.45) {
                p.attributes.push(if rng.random_bool(0.9) {
                    let tier = pick(rng, &[(34, "gold"), (33, "silver"), (33, "bronze")]);
                    attribute("tier", Some(tier), None, None, false)
                } else {
                    attribute("tier", None, Some(f64::from(rng.random_range(1..=3))), None, false)
                });
            }
            if rng.random_bool(0.5) {
                p.attributes.push(if rng.random_bool(0.9) {
                    attribute("score", None, Some(f64::from(rng.random_range(0..=200)) / 2.0), None, false)
                } else {
                    attribute("score", Some("high"), None, None, false)
                });
            }
            if rng.random_bool(0.3) {
                p.attributes.push(attribute("vip", None, None, Some(rng.random_bool(0.5)), false));
            }
            if rng.random_bool(0.2) {
                let born = if rng.random_bool(0.34) { "2001-02-03T04:05:06Z" } else { "1990-07-08T09:10:11Z" };
                p.attributes.push(attribute("born", Some(born), None, None, true));
            }
            let at: DateTime<Utc> = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
            let mut consent = |purpose: &str, granted: bool| {
                p.consents.push(vec![
                    tenant.into(),
                    (*id).into(),
                    purpose.into(),
                    granted.into(),
                    at.into(),
                    at.into(),
                ]);
            };
            if lavish {
                consent("loyalty_club", true);
            } else if rng.random_bool(0.35) {
                consent("loyalty_club", rng.random_bool(0.6));
            }
            if lavish || rng.random_bool(0.3) {
                consent("partners", lavish || rng.random_bool(0.5));
            }
        }
        p
    }
}

/// One `segment_facts` row in the order of [`fact_columns`].
fn fact(rng: &mut StdRng, tenant: &str, id: Uuid) -> Vec<Value> {
    let lifecycle = pick(
        rng,
        &[
            (10, None),
            (3, Some("lost")),
            (20, Some("prospect")),
            (15, Some("at_risk")),
            (12, Some("reactivated")),
            (40, Some("active")),
        ],
    );
    let persona = pick(
        rng,
        &[
            (30, None),
            (20, Some("saver")),
            (20, Some("explorer")),
            (15, Some("loyalist")),
            (15, Some("bargain_hunter")),
        ],
    );
    let created_day = rng.random_bool(0.95).then(|| TODAY - rng.random_range(0..3_000));
    // Tenths, so literals like 25.5 meet stored values exactly.
    let digital_index = rng.random_bool(0.8).then(|| f64::from(rng.random_range(0..=1_000)) / 10.0);
    let digital_category = digital_index.map(|i| match i {
        i if i < 25.0 => "traditional",
        i if i < 50.0 => "hybrid",
        i if i < 75.0 => "connected",
        _ => "digital_native",
    });
    let mut row: Vec<Value> = vec![
        tenant.into(),
        id.into(),
        text(lifecycle),
        text(persona),
        created_day.into(),
        digital_index.into(),
        text(digital_category),
    ];
    row.extend((0..8).map(|_| Value::from(rng.random_bool(0.5))));
    if rng.random_bool(0.75) {
        // Some amounts right at the rules' bounds, to the micro.
        let monetary = pick(
            rng,
            &[
                (2, Some(500_000_000_i64)),
                (2, Some(500_000_001)),
                (2, Some(1_500_250_000)),
                (2, Some(1_500_250_001)),
                (92, None),
            ],
        )
        .unwrap_or_else(|| rng.random_range(0..2_000_000_000));
        let segment_weights = [3, 15, 12, 15, 15, 15, 15, 10];
        let segments: Vec<(u32, &str)> = segment_weights.into_iter().zip(RFM_SEGMENTS.iter().copied()).collect();
        row.extend([
            Value::from(TODAY - 1),
            Value::from(rng.random_range(0..365_i32)),
            Value::from(rng.random_range(1..=50_i64)),
            Value::from(monetary),
            Value::from(rng.random_range(1..=5_i16)),
            Value::from(rng.random_range(1..=5_i16)),
            Value::from(rng.random_range(1..=5_i16)),
            text(Some(pick(rng, &segments))),
        ]);
    } else {
        row.extend([
            Value::Int(None),
            Value::Int(None),
            Value::BigInt(None),
            Value::BigInt(None),
            Value::SmallInt(None),
            Value::SmallInt(None),
            Value::SmallInt(None),
            text(None),
        ]);
    }
    let channels: i32 = if rng.random_bool(0.15) { 0 } else { rng.random_range(1..1 << CHANNELS.len()) };
    let last_touch_day = rng.random_bool(0.9).then(|| TODAY - rng.random_range(0..400));
    let last_channel = last_touch_day.map(|_| CHANNELS[rng.random_range(0..CHANNELS.len())]);
    let last_nps: Option<i16> = rng.random_bool(0.6).then(|| rng.random_range(0..=10));
    let nps_category = last_nps.map(|n| match n {
        9.. => "promoter",
        7..=8 => "passive",
        _ => "detractor",
    });
    row.extend([
        Value::from(channels),
        Value::from(last_touch_day),
        text(last_channel),
        Value::from(rng.random_range(0..200_i64)),
        Value::from(last_nps),
        text(nps_category),
        Value::from(rng.random_bool(0.5).then(|| rng.random_range(1..=5_i16))),
        Value::from(rng.random_bool(0.4).then(|| rng.random_range(1..=7_i16))),
        Value::from(rng.random_range(0..20_i64)),
    ]);
    row
}

/// Inserts `rows` with multi-row INSERTs of at most 30,000 parameters
/// (SQLite allows 32,766 a statement).
async fn insert<C: ConnectionTrait>(db: &C, table: &str, columns: &[impl AsRef<str>], rows: Vec<Vec<Value>>) {
    let backend = db.get_database_backend();
    let names: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
        let mut values: Vec<Value> = Vec::new();
        for (i, row) in rows.by_ref().take(30_000 / names.len()).enumerate() {
            assert_eq!(row.len(), names.len(), "a row of {table} has a value per column");
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                values.push(value);
                if j > 0 {
                    sql.push_str(", ");
                }
                if backend == DbBackend::Postgres {
                    sql.push_str(&format!("${}", values.len()));
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap();
    }
}
