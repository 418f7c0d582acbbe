//! Migration `m0006_rollup_squares` on a schema that held responses and
//! their roll-ups before it: each cell's sum of squared scores is filled
//! from its responses, per tenant, UTC day, survey, map, step and channel
//! (docs/DOMAIN.md §7.8), on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{Db, numbered};
use cx_survey::store::entity::response;
use cx_survey::store::migration::Migrator;
use cx_survey::store::responses;
use cx_survey::store::rollups::{self, Cell};
use cx_testkit::{Backend, ServiceDb};
use sea_orm::ConnectionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use uuid::Uuid;

/// The survey schema as it was before the squares.
struct UpToM0005;

impl MigratorTrait for UpToM0005 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = Migrator::migrations();
        all.truncate(5);
        all
    }
}

const CES: Uuid = Uuid::from_u128(0xCE5);
const NPS: Uuid = Uuid::from_u128(0x495);
const MAP: Uuid = Uuid::from_u128(0xA1);
const MARCH: (i32, i32) = (20_513, 20_543);

/// A response of tenant `t`: anonymous on the web, or at the map's "order"
/// step by email.
fn stored(t: &str, id: &str, survey: Uuid, score: i16, at: &str, at_step: bool) -> response::Model {
    let at: DateTime<Utc> = at.parse().unwrap();
    response::Model {
        tenant_id: t.into(),
        id: id.into(),
        survey_id: survey,
        survey_version: 1,
        survey_type: if survey == NPS { 1 } else { 3 },
        invitation_id: None,
        customer_id: None,
        touchpoint_id: None,
        map_id: at_step.then_some(MAP),
        step_key: at_step.then(|| "order".to_owned()),
        channel: if at_step { 3 } else { 1 },
        score,
        verbatim: None,
        answers: Vec::new(),
        language: String::new(),
        responded_at: at,
        recorded_at: at,
        case_id: None,
        content_digest: id.as_bytes().to_vec(),
    }
}

/// Writes `cells` of tenant `t` as the roll-ups before the migration held
/// them: every counter but the squares.
async fn old_rollups(db: &Db, t: &str, cells: &[Cell]) {
    for c in cells {
        let sql = "INSERT INTO survey_rollups (tenant_id, day, survey_id, map_id, step_key, channel, survey_type, \
                     n, promoters, passives, detractors, satisfied, score_sum, low_effort) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        let k = &c.key;
        let n = &c.counts;
        let values = vec![
            t.into(),
            k.day.into(),
            k.survey_id.into(),
            k.map_id.into(),
            k.step_key.as_str().into(),
            k.channel.into(),
            c.survey_type.into(),
            n.n.into(),
            n.promoters.into(),
            n.passives.into(),
            n.detractors.into(),
            n.satisfied.into(),
            n.score_sum.into(),
            n.low_effort.into(),
        ];
        db.execute_raw(numbered(db.get_database_backend(), sql, values)).await.unwrap();
    }
}

cx_testkit::on_both_backends!(each_cell_gets_the_squares_of_its_responses);

async fn each_cell_gets_the_squares_of_its_responses(backend: Backend) {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<UpToM0005>(&db, "survey").await.unwrap();
    let rows = [
        // acme, CES on the web: 7 and 5 on 1 March (the last microsecond
        // included), 1 at midnight: 2 March.
        stored("acme", "e1", CES, 7, "2026-03-01T10:00:00Z", false),
        stored("acme", "e2", CES, 5, "2026-03-01T23:59:59.999999Z", false),
        stored("acme", "e3", CES, 1, "2026-03-02T00:00:00Z", false),
        // acme, CES at the map's step by email on 1 March: 4 and 6.
        stored("acme", "e4", CES, 4, "2026-03-01T11:00:00Z", true),
        stored("acme", "e5", CES, 6, "2026-03-01T12:00:00Z", true),
        // acme, NPS on the web on 1 March: 9 (every type keeps squares).
        stored("acme", "n1", NPS, 9, "2026-03-01T13:00:00Z", false),
        // globex, CES 3 in acme's first cell but its own tenant.
        stored("globex", "e1", CES, 3, "2026-03-01T10:00:00Z", false),
    ];
    for row in &rows {
        responses::insert(&db, row, "simple").await.unwrap();
    }
    let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
    for t in [&acme, &globex] {
        let scanned = responses::scan_rollups(&db, t, MARCH.0, MARCH.1).await.unwrap();
        old_rollups(&db, t.as_str(), &scanned).await;
    }

    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();

    // Cells in key order (day, survey 0x495 before 0xCE5, nil map first):
    // 1 March NPS web 9² = 81; CES web 7² + 5² = 74; CES step 4² + 6² = 52;
    // 2 March CES web 1² = 1. globex: 3² = 9.
    let squares = |cells: &[Cell]| -> Vec<(i32, Uuid, Uuid, i16, i64, i64)> {
        cells
            .iter()
            .map(|c| (c.key.day, c.key.survey_id, c.key.map_id, c.key.channel, c.counts.n, c.counts.score_squares))
            .collect()
    };
    let cells = rollups::cells(&db, &acme, MARCH.0, MARCH.1).await.unwrap();
    assert_eq!(
        squares(&cells),
        [
            (20_513, NPS, Uuid::nil(), 1, 1, 81),
            (20_513, CES, Uuid::nil(), 1, 2, 74),
            (20_513, CES, MAP, 3, 2, 52),
            (20_514, CES, Uuid::nil(), 1, 1, 1),
        ]
    );
    assert_eq!(cells, responses::scan_rollups(&db, &acme, MARCH.0, MARCH.1).await.unwrap());
    let theirs = rollups::cells(&db, &globex, MARCH.0, MARCH.1).await.unwrap();
    assert_eq!(squares(&theirs), [(20_513, CES, Uuid::nil(), 1, 1, 9)]);
}
