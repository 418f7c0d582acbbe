//! The fact feeds as segmentation receives them (docs/DOMAIN.md §8.5):
//! consent decisions and profile facts from profile, scores and open-case
//! counts from survey. Each handler checks the message and hands it to its
//! store module; a customer merged away is the survivor's, an erased one
//! takes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cx_proto::common::v1::{AttributeValue, attribute_value};
use cx_proto::profile::v1::{
    ConsentChanged, ConsentPurpose, DigitalCategory, Identity, IdentityKind, Lifecycle, ProfileFactsChanged, purpose,
};
use cx_proto::survey::v1::{OpenCasesChanged, ScoreRecorded, SurveyType};
use cx_runtime::TenantId;
use cx_runtime::consent::StandardPurpose;
use cx_runtime::days::day_number;
use cx_runtime::error::{FieldViolation, ServiceError};
use cx_runtime::outbox::inbox::{AfterCommit, Handlers, Receive};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::store::consents::{self, Decision, Purpose};
use crate::store::profiles::{self, Contact, Facts, Value};
use crate::store::{cases, scores};

/// The service announcing consent decisions and profile facts.
pub const PROFILE: &str = "profile";
/// The service announcing scores and open cases.
pub const SURVEY: &str = "survey";

/// The feeds of profile and survey.
pub fn routes(handlers: Handlers) -> Handlers {
    handlers
        .on::<ConsentChanged>(PROFILE, Arc::new(Feeds))
        .on::<ProfileFactsChanged>(PROFILE, Arc::new(Feeds))
        .on::<ScoreRecorded>(SURVEY, Arc::new(Feeds))
        .on::<OpenCasesChanged>(SURVEY, Arc::new(Feeds))
}

/// Applies every fact feed's messages.
struct Feeds;

/// The customer a message names, as kept here: the survivor of a merge;
/// `None` when erased.
pub(crate) async fn customer(txn: &DatabaseTransaction, t: &TenantId, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    let id = Uuid::parse_str(raw).map_err(|_| FieldViolation::new("profile_id", "is not a UUID"))?;
    let id = cx_runtime::gdpr::survivors(txn, t, &[id]).await?.get(&id).copied().unwrap_or(id);
    if !cx_runtime::gdpr::erased(txn, t, &[id]).await?.is_empty() {
        return Ok(None);
    }
    Ok(Some(id))
}

fn instant(ts: Option<&prost_types::Timestamp>, field: &str) -> Result<DateTime<Utc>, FieldViolation> {
    ts.and_then(cx_proto::from_timestamp).ok_or_else(|| FieldViolation::new(field, "is not a valid instant"))
}

#[async_trait]
impl Receive<ConsentChanged> for Feeds {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        m: ConsentChanged,
    ) -> Result<AfterCommit, ServiceError> {
        consent_changed(txn, t, m).await?;
        Ok(None)
    }
}

/// Keeps a consent decision unless a later one is kept (the feed and a
/// load of profile's consents).
pub(crate) async fn consent_changed(
    txn: &DatabaseTransaction,
    t: &TenantId,
    m: ConsentChanged,
) -> Result<(), ServiceError> {
    let purpose = match m.purpose.and_then(|p| p.kind) {
        Some(purpose::Kind::Standard(code)) => Purpose::Standard(standard(code)?),
        Some(purpose::Kind::Custom(name)) if (1..=64).contains(&name.chars().count()) => Purpose::Custom(name),
        _ => return Err(FieldViolation::new("purpose", "is not a purpose").into()),
    };
    let (occurred_at, recorded_at) = cx_runtime::error::all2(
        instant(m.occur_time.as_ref(), "occur_time"),
        instant(m.record_time.as_ref(), "record_time"),
    )?;
    let Some(customer) = customer(txn, t, &m.profile_id).await? else { return Ok(()) };
    let decision = Decision { customer, purpose, granted: m.granted, occurred_at, recorded_at };
    let in_force = consents::apply(txn, t, &decision).await?;
    tracing::debug!(in_force, "consent decision received");
    Ok(())
}

fn standard(code: i32) -> Result<StandardPurpose, FieldViolation> {
    let p = match ConsentPurpose::try_from(code) {
        Ok(ConsentPurpose::Email) => StandardPurpose::Email,
        Ok(ConsentPurpose::Sms) => StandardPurpose::Sms,
        Ok(ConsentPurpose::Push) => StandardPurpose::Push,
        Ok(ConsentPurpose::Phone) => StandardPurpose::Phone,
        Ok(ConsentPurpose::Post) => StandardPurpose::Post,
        Ok(ConsentPurpose::Survey) => StandardPurpose::Survey,
        Ok(ConsentPurpose::Profiling) => StandardPurpose::Profiling,
        Ok(ConsentPurpose::Personalization) => StandardPurpose::Personalization,
        Ok(ConsentPurpose::Unspecified) | Err(_) => {
            return Err(FieldViolation::new("purpose.standard", "is not a standard purpose"));
        }
    };
    Ok(p)
}

#[async_trait]
impl Receive<ScoreRecorded> for Feeds {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        m: ScoreRecorded,
    ) -> Result<AfterCommit, ServiceError> {
        score_recorded(txn, t, m, false).await?;
        Ok(None)
    }
}

/// Counts an answer's score and keeps it if it is the latest of its type;
/// `loaded`: a load read it ([`scores::load`]).
pub(crate) async fn score_recorded(
    txn: &DatabaseTransaction,
    t: &TenantId,
    m: ScoreRecorded,
    loaded: bool,
) -> Result<(), ServiceError> {
    let range = match SurveyType::try_from(m.survey_type) {
        Ok(SurveyType::Nps) => 0..=10,
        Ok(SurveyType::Csat) => 1..=5,
        Ok(SurveyType::Ces) => 1..=7,
        _ => return Err(FieldViolation::new("survey_type", "is not a survey type").into()),
    };
    if !range.contains(&m.score) {
        return Err(FieldViolation::new("score", format!("is outside {}–{}", range.start(), range.end())).into());
    }
    if m.response_id.is_empty() || m.response_id.chars().count() > 128 {
        return Err(FieldViolation::new("response_id", "has 1 to 128 characters").into());
    }
    let respond_time = instant(m.respond_time.as_ref(), "respond_time")?;
    let Some(customer) = customer(txn, t, &m.profile_id).await? else { return Ok(()) };
    let score = scores::Score {
        customer,
        // Both checked above: a type code and a score of its range.
        survey_type: i16::try_from(m.survey_type).unwrap_or_default(),
        score: i16::try_from(m.score).unwrap_or_default(),
        respond_time,
        response_id: m.response_id,
    };
    if loaded {
        scores::load(txn, t, &score).await?;
    } else {
        scores::apply(txn, t, &score).await?;
    }
    Ok(())
}

#[async_trait]
impl Receive<OpenCasesChanged> for Feeds {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        m: OpenCasesChanged,
    ) -> Result<AfterCommit, ServiceError> {
        open_cases_changed(txn, t, m).await?;
        Ok(None)
    }
}

/// Keeps a customer's open-case count unless a later one is kept.
pub(crate) async fn open_cases_changed(
    txn: &DatabaseTransaction,
    t: &TenantId,
    m: OpenCasesChanged,
) -> Result<(), ServiceError> {
    if m.open_cases < 0 {
        return Err(FieldViolation::new("open_cases", "is negative").into());
    }
    let at = instant(m.change_time.as_ref(), "change_time")?;
    let Some(customer) = customer(txn, t, &m.profile_id).await? else { return Ok(()) };
    cases::apply(txn, t, customer, m.open_cases, at).await?;
    Ok(())
}

#[async_trait]
impl Receive<ProfileFactsChanged> for Feeds {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        m: ProfileFactsChanged,
    ) -> Result<AfterCommit, ServiceError> {
        profile_facts_changed(txn, t, m).await?;
        Ok(None)
    }
}

/// Keeps a customer's profile facts unless later ones are kept.
pub(crate) async fn profile_facts_changed(
    txn: &DatabaseTransaction,
    t: &TenantId,
    m: ProfileFactsChanged,
) -> Result<(), ServiceError> {
    let changed_at = instant(m.change_time.as_ref(), "change_time")?;
    let created_day = match m.create_time.as_ref() {
        None => None,
        Some(ts) => Some(day_number(instant(Some(ts), "create_time")?)),
    };
    let mut attributes = Vec::with_capacity(m.attributes.len());
    for (key, value) in m.attributes {
        if cx_runtime::attributes::check_key(&key).is_err() {
            return Err(FieldViolation::new("attributes", "has a key that is not an attribute key").into());
        }
        if let Some(value) = attribute(value) {
            attributes.push((key, value));
        }
    }
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    let contacts = contacts(m.contacts)?;
    let intensity = m.digital_intensity.as_ref();
    let Some(customer) = customer(txn, t, &m.profile_id).await? else { return Ok(()) };
    let facts = Facts {
        customer,
        lifecycle: lifecycle(m.lifecycle).map(str::to_owned),
        persona: (!m.persona.is_empty()).then_some(m.persona),
        created_day,
        digital_index: intensity.map(|i| f64::from(i.index)),
        digital_category: intensity.and_then(|i| category(i.category)).map(str::to_owned),
        attributes,
        contacts,
        changed_at,
    };
    profiles::apply(txn, t, &facts).await?;
    Ok(())
}

/// The identities a campaign may use, once each; kinds this service does not
/// export with are left out.
fn contacts(identities: Vec<Identity>) -> Result<Vec<Contact>, FieldViolation> {
    let mut kept = std::collections::BTreeSet::new();
    for identity in identities {
        let kind = match IdentityKind::try_from(identity.kind) {
            Ok(kind @ (IdentityKind::Email | IdentityKind::Phone | IdentityKind::AppInstall)) => kind as i16,
            _ => continue,
        };
        if !(1..=profiles::CONTACT_MAX_CHARS).contains(&identity.value.chars().count()) {
            return Err(FieldViolation::new(
                "contacts",
                format!("has a value not of 1 to {} characters", profiles::CONTACT_MAX_CHARS),
            ));
        }
        kept.insert(Contact { kind, value: identity.value });
    }
    Ok(kept.into_iter().collect())
}

/// The rules' name of a lifecycle stage (`rules::fields::LIFECYCLE_STAGES`).
fn lifecycle(code: i32) -> Option<&'static str> {
    match Lifecycle::try_from(code).ok()? {
        Lifecycle::Prospect => Some("prospect"),
        Lifecycle::Active => Some("active"),
        Lifecycle::AtRisk => Some("at_risk"),
        Lifecycle::Lost => Some("lost"),
        Lifecycle::Reactivated => Some("reactivated"),
        Lifecycle::Unspecified => None,
    }
}

/// The rules' name of a digital category.
fn category(code: i32) -> Option<&'static str> {
    match DigitalCategory::try_from(code).ok()? {
        DigitalCategory::Traditional => Some("traditional"),
        DigitalCategory::Hybrid => Some("hybrid"),
        DigitalCategory::Connected => Some("connected"),
        DigitalCategory::DigitalNative => Some("digital_native"),
        DigitalCategory::Unspecified => None,
    }
}

/// An attribute value in the column of its type; `None` when it has none.
fn attribute(v: AttributeValue) -> Option<Value> {
    Some(match v.kind? {
        attribute_value::Kind::StringValue(s) => Value::Text(s),
        // Rules compare numbers as doubles (§8.4).
        #[allow(clippy::cast_precision_loss)]
        attribute_value::Kind::IntValue(n) => Value::Number(n as f64),
        attribute_value::Kind::DoubleValue(d) => Value::Number(d),
        attribute_value::Kind::BoolValue(b) => Value::Bool(b),
        attribute_value::Kind::TimestampValue(_) => Value::Instant,
    })
}
