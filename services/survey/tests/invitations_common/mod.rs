//! What the invitation tests share: a migrated survey store, surveys and
//! triggers written through the store, touchpoints offered as journey
//! offers them, and the rows read back.

#![allow(dead_code)]

pub mod suite;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::store::{Db, scoped};
use cx_survey::domain::matching::{Offered, Standing};
use cx_survey::store::entity::{invitation, settings};
use cx_survey::store::invitations::offer::{self, Outcome};
use cx_survey::store::migration::Migrator;
use cx_testkit::{Backend, ServiceDb};
use prost::Message;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, TransactionTrait};
use uuid::Uuid;

/// A migrated survey store on one backend, for one tenant.
pub struct Fixture {
    pub db: ServiceDb,
    pub t: TenantId,
}

/// The cache the active triggers are read through: a new one per batch, so
/// triggers written straight to the store are always seen.
pub fn cache() -> Cache {
    Cache::in_memory(std::time::Duration::from_secs(300))
}

impl Fixture {
    pub async fn new(backend: Backend) -> Self {
        let db = ServiceDb::open(backend, "survey").await;
        cx_runtime::store::migrate::<Migrator>(&db.conn, "survey").await.unwrap();
        Self { db, t: TenantId::parse(&cx_testkit::unique_tenant("survey")).unwrap() }
    }

    pub fn conn(&self) -> &Db {
        &self.db.conn
    }

    /// A new NPS survey sent by `channel`, at version 1.
    pub async fn survey(&self, channel: Channel) -> Uuid {
        write_survey(self.conn(), &self.t, channel).await
    }

    /// A new enabled trigger of `survey`.
    pub async fn trigger(&self, survey: Uuid, rule: Rule) -> Uuid {
        write_trigger(self.conn(), &self.t, Uuid::now_v7(), survey, rule).await
    }

    /// The tenant's fatigue windows: `(max, days)` each.
    pub async fn budget(&self, windows: &[(i32, i64)]) {
        write_budget(self.conn(), &self.t, windows).await;
    }

    /// Offers `touchpoints` as one batch, the profile service answering
    /// `standing`; commits.
    pub async fn offer(&self, touchpoints: Vec<Offered>, standing: &HashMap<Uuid, Standing>) -> Outcome {
        offer_in(self.conn(), &self.t, touchpoints, standing).await
    }

    /// Every invitation of the tenant, by touchpoint then trigger.
    pub async fn rows(&self) -> Vec<invitation::Model> {
        let mut rows = scoped::<invitation::Entity>(&self.t)
            .order_by_asc(invitation::Column::TouchpointId)
            .all(self.conn())
            .await
            .unwrap();
        rows.sort_by(|a, b| (&a.touchpoint_id, a.trigger_id).cmp(&(&b.touchpoint_id, b.trigger_id)));
        rows
    }
}

pub async fn write_survey(conn: &Db, t: &TenantId, channel: Channel) -> Uuid {
    let id = Uuid::now_v7();
    let survey = pb::Survey {
        id: id.to_string(),
        name: "After checkout".into(),
        r#type: pb::SurveyType::Nps as i32,
        version: 1,
        language: "en".into(),
        title: "How did we do?".into(),
        score_question: "How likely are you to recommend us?".into(),
        channel: channel as i32,
        state: pb::SurveyState::Active as i32,
        create_time: Some(cx_proto::timestamp(Utc::now())),
        ..Default::default()
    };
    cx_survey::store::surveys::insert(conn, t, &survey).await.unwrap();
    id
}

/// A trigger's rule: its condition, rate, delay and expiry.
#[derive(Clone, Debug)]
pub struct Rule {
    pub condition: pb::TouchpointCondition,
    pub sampling_rate: f64,
    pub delay: Duration,
    pub expiry: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            condition: pb::TouchpointCondition::default(),
            sampling_rate: 1.0,
            delay: Duration::zero(),
            expiry: Duration::days(7),
        }
    }
}

/// A rule firing on touchpoints at `step` of any map.
pub fn at_step(step: &str) -> Rule {
    Rule { condition: pb::TouchpointCondition { step_key: step.into(), ..Default::default() }, ..Rule::default() }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.num_seconds(), nanos: 0 }
}

pub async fn write_trigger(conn: &Db, t: &TenantId, id: Uuid, survey: Uuid, rule: Rule) -> Uuid {
    let trigger = pb::Trigger {
        id: id.to_string(),
        survey_id: survey.to_string(),
        name: "trigger".into(),
        enabled: true,
        condition: Some(rule.condition),
        sampling_rate: rule.sampling_rate,
        delay: Some(duration(rule.delay)),
        expiry: Some(duration(rule.expiry)),
        create_time: Some(cx_proto::timestamp(Utc::now())),
        update_time: Some(cx_proto::timestamp(Utc::now())),
    };
    cx_survey::store::triggers::insert(conn, t, &trigger).await.unwrap();
    id
}

pub async fn write_budget(conn: &Db, t: &TenantId, windows: &[(i32, i64)]) {
    let body = pb::SurveySettings {
        fatigue_windows: windows
            .iter()
            .map(|&(max, days)| pb::FatigueWindow {
                max_invitations: max,
                window: Some(duration(Duration::days(days))),
            })
            .collect(),
        ..Default::default()
    };
    let row = settings::ActiveModel { tenant_id: Set(t.to_string()), body: Set(body.encode_to_vec()) };
    settings::Entity::insert(row).exec(conn).await.unwrap();
}

pub async fn offer_in(
    conn: &Db,
    t: &TenantId,
    touchpoints: Vec<Offered>,
    standing: &HashMap<Uuid, Standing>,
) -> Outcome {
    let txn = conn.begin().await.unwrap();
    let outcome = match offer::plan(&txn, &cache(), t, touchpoints).await.unwrap() {
        Some(plan) => offer::record(&txn, t, &plan, standing, cx_runtime::store::now()).await.unwrap(),
        None => Outcome::default(),
    };
    txn.commit().await.unwrap();
    outcome
}

/// A touchpoint of `customer` at `step`, `minutes_ago` minutes ago, on the web.
pub fn touchpoint(id: &str, customer: Uuid, step: &str, minutes_ago: i64) -> Offered {
    Offered {
        id: id.into(),
        customer,
        at: cx_runtime::store::stored_instant(Utc::now() - Duration::minutes(minutes_ago)),
        channel: Channel::Web as i32,
        kind: cx_proto::common::v1::InteractionKind::Transactional as i32,
        map: None,
        step: Some(step.into()),
        score: None,
        purchase: None,
    }
}

/// Each customer consents (or not), active, without a digital category.
pub fn standing(customers: &[(Uuid, bool)]) -> HashMap<Uuid, Standing> {
    let active = cx_proto::profile::v1::Lifecycle::Active as i32;
    customers.iter().map(|&(c, consent)| (c, Standing { consent, lifecycle: active, category: 0 })).collect()
}

/// (state, reason) of rows, as the proto names them, without prefixes.
pub fn states(rows: &[invitation::Model]) -> Vec<(&'static str, &'static str)> {
    rows.iter().map(|r| (state_name(r.state), reason_name(r.reason))).collect()
}

pub fn state_name(code: i16) -> &'static str {
    match code {
        1 => "pending",
        2 => "sent",
        3 => "answered",
        4 => "expired",
        5 => "suppressed",
        _ => "?",
    }
}

pub fn reason_name(code: i16) -> &'static str {
    match code {
        0 => "",
        1 => "budget",
        2 => "consent",
        3 => "sampling",
        4 => "expired",
        5 => "duplicate",
        _ => "?",
    }
}

/// `at` as the store keeps it.
pub fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
    cx_runtime::store::stored_instant(at)
}
