//! Triggers, each stored as its `cx.survey.v1.Trigger` message, and the
//! form the matching reads ([`crate::domain::trigger::Trigger`]).

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use prost::Message;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{survey, trigger};
use super::{Result, SurveyError};
use crate::domain::trigger::{Condition, Trigger};

/// Decodes a stored trigger.
pub fn decode(body: &[u8], id: Uuid) -> Result<pb::Trigger> {
    pb::Trigger::decode(body).map_err(|e| SurveyError::Corrupt(format!("trigger {id}: {e}")))
}

/// Stores a new trigger: `trigger` is valid, with its id and times set.
pub async fn insert(conn: &impl ConnectionTrait, t: &TenantId, trigger: &pb::Trigger) -> Result<()> {
    let parse = |s: &str| Uuid::parse_str(s).map_err(|e| SurveyError::Corrupt(format!("trigger: {e}")));
    trigger::Entity::insert(trigger::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(parse(&trigger.id)?),
        survey_id: Set(parse(&trigger.survey_id)?),
        body: Set(trigger.encode_to_vec()),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// The triggers that invite now: enabled, of surveys not archived.
pub async fn active(conn: &impl ConnectionTrait, t: &TenantId) -> Result<Vec<Trigger>> {
    let live: std::collections::HashSet<Uuid> = scoped::<survey::Entity>(t)
        .filter(survey::Column::Archived.eq(false))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut out = Vec::new();
    for row in scoped::<trigger::Entity>(t).all(conn).await? {
        if !live.contains(&row.survey_id) {
            continue;
        }
        let matching = matching(&decode(&row.body, row.id)?)?;
        if matching.enabled {
            out.push(matching);
        }
    }
    Ok(out)
}

/// The matching form of a valid stored trigger.
pub fn matching(p: &pb::Trigger) -> Result<Trigger> {
    let corrupt = |what: &str| SurveyError::Corrupt(format!("trigger {}: {what}", p.id));
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|_| corrupt("bad id"));
    let duration = |d: &Option<prost_types::Duration>, default: chrono::Duration| {
        d.as_ref()
            .map_or(default, |d| chrono::Duration::seconds(d.seconds) + chrono::Duration::nanoseconds(d.nanos.into()))
    };
    let c = p.condition.clone().unwrap_or_default();
    let condition = Condition {
        map_id: (!c.map_id.is_empty()).then(|| uuid(&c.map_id)).transpose()?,
        step_key: (!c.step_key.is_empty()).then_some(c.step_key),
        channels: c.channels,
        kind: (c.kind != 0).then_some(c.kind),
        score_below: c.experience_score_below,
        purchase_above: c.purchase_above.map(|m| (m.currency_code, m.units * 1_000_000 + i64::from(m.nanos) / 1_000)),
        lifecycles: c.lifecycles,
        digital_categories: c.digital_categories,
    };
    Ok(Trigger {
        id: uuid(&p.id)?,
        survey_id: uuid(&p.survey_id)?,
        enabled: p.enabled,
        condition,
        sampling_rate: p.sampling_rate,
        delay: duration(&p.delay, chrono::Duration::zero()),
        expiry: duration(&p.expiry, chrono::Duration::days(7)),
    })
}
