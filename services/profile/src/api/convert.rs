//! Requests into domain values (collecting every field violation), and
//! domain values into responses. Messages are destructured field by field so
//! that a new proto field breaks the build here instead of being dropped.

use cx_proto::common::v1 as common;
use cx_proto::profile::v1 as pb;
use cx_proto::timestamp;
use cx_runtime::error::FieldViolation;
use uuid::Uuid;

use crate::domain::consent::{Purpose, StandardPurpose, check_custom_name};
use crate::domain::identity::{Identity, IdentityKind};
use crate::domain::intensity::{Category, Components, Intensity, IntensityModel};
use crate::domain::lifecycle::Lifecycle;
use crate::domain::scores::{Score, SurveyKind};
use crate::store::{ConsentRecord, ProfileRecord, PurposeRecord};
pub use cx_runtime::attributes::{parse_attributes, value_to_proto};

pub fn parse_id(raw: &str, field: &str) -> Result<Uuid, FieldViolation> {
    cx_runtime::input::parse_uuid(raw, field, "a profile id")
}

fn kind_of(raw: i32) -> Option<IdentityKind> {
    Some(match pb::IdentityKind::try_from(raw).ok()? {
        pb::IdentityKind::Unspecified => return None,
        pb::IdentityKind::Email => IdentityKind::Email,
        pb::IdentityKind::Phone => IdentityKind::Phone,
        pb::IdentityKind::LoyaltyCard => IdentityKind::LoyaltyCard,
        pb::IdentityKind::WebCookie => IdentityKind::WebCookie,
        pb::IdentityKind::AppInstall => IdentityKind::AppInstall,
        pb::IdentityKind::CrmId => IdentityKind::CrmId,
    })
}

fn kind_to_proto(kind: IdentityKind) -> pb::IdentityKind {
    match kind {
        IdentityKind::Email => pb::IdentityKind::Email,
        IdentityKind::Phone => pb::IdentityKind::Phone,
        IdentityKind::LoyaltyCard => pb::IdentityKind::LoyaltyCard,
        IdentityKind::WebCookie => pb::IdentityKind::WebCookie,
        IdentityKind::AppInstall => pb::IdentityKind::AppInstall,
        IdentityKind::CrmId => pb::IdentityKind::CrmId,
    }
}

pub fn parse_identity(identity: Option<pb::Identity>, field: &str) -> Result<Identity, FieldViolation> {
    let Some(pb::Identity { kind, value }) = identity else {
        return Err(FieldViolation::new(field, "is required"));
    };
    let kind = kind_of(kind).ok_or_else(|| {
        FieldViolation::new(
            format!("{field}.kind"),
            "must be one of EMAIL, PHONE, LOYALTY_CARD, WEB_COOKIE, APP_INSTALL, CRM_ID",
        )
    })?;
    Identity::normalize(kind, &value).map_err(|why| FieldViolation::new(format!("{field}.value"), why))
}

pub fn identity_to_proto(identity: &Identity) -> pb::Identity {
    pb::Identity { kind: kind_to_proto(identity.kind) as i32, value: identity.value.clone() }
}

fn standard_of(raw: i32) -> Option<StandardPurpose> {
    Some(match pb::ConsentPurpose::try_from(raw).ok()? {
        pb::ConsentPurpose::Unspecified => return None,
        pb::ConsentPurpose::Email => StandardPurpose::Email,
        pb::ConsentPurpose::Sms => StandardPurpose::Sms,
        pb::ConsentPurpose::Push => StandardPurpose::Push,
        pb::ConsentPurpose::Phone => StandardPurpose::Phone,
        pb::ConsentPurpose::Post => StandardPurpose::Post,
        pb::ConsentPurpose::Survey => StandardPurpose::Survey,
        pb::ConsentPurpose::Profiling => StandardPurpose::Profiling,
        pb::ConsentPurpose::Personalization => StandardPurpose::Personalization,
    })
}

fn standard_to_proto(purpose: StandardPurpose) -> pb::ConsentPurpose {
    match purpose {
        StandardPurpose::Email => pb::ConsentPurpose::Email,
        StandardPurpose::Sms => pb::ConsentPurpose::Sms,
        StandardPurpose::Push => pb::ConsentPurpose::Push,
        StandardPurpose::Phone => pb::ConsentPurpose::Phone,
        StandardPurpose::Post => pb::ConsentPurpose::Post,
        StandardPurpose::Survey => pb::ConsentPurpose::Survey,
        StandardPurpose::Profiling => pb::ConsentPurpose::Profiling,
        StandardPurpose::Personalization => pb::ConsentPurpose::Personalization,
    }
}

/// A purpose as named in a request; a custom one is checked against the
/// tenant's definitions by the store.
pub fn parse_purpose(purpose: Option<pb::Purpose>, field: &str) -> Result<Purpose, FieldViolation> {
    match purpose.and_then(|p| p.kind) {
        None => Err(FieldViolation::new(field, "is required: a standard purpose or a custom one")),
        Some(pb::purpose::Kind::Standard(raw)) => standard_of(raw)
            .map(Purpose::Standard)
            .ok_or_else(|| FieldViolation::new(format!("{field}.standard"), "is not a known consent purpose")),
        Some(pb::purpose::Kind::Custom(name)) => check_custom_name(&name)
            .map(|()| Purpose::Custom(name))
            .map_err(|why| FieldViolation::new(format!("{field}.custom"), why)),
    }
}

pub fn purpose_to_proto(purpose: &Purpose) -> pb::Purpose {
    let kind = match purpose {
        Purpose::Standard(p) => pb::purpose::Kind::Standard(standard_to_proto(*p) as i32),
        Purpose::Custom(name) => pb::purpose::Kind::Custom(name.clone()),
    };
    pb::Purpose { kind: Some(kind) }
}

/// Channel key (`web`, …) or "" when unspecified.
pub fn parse_channel(raw: i32, field: &str) -> Result<String, FieldViolation> {
    let channel = common::Channel::try_from(raw).map_err(|_| FieldViolation::new(field, "is not a known channel"))?;
    Ok(channel.key().unwrap_or_default().to_owned())
}

pub fn lifecycle_to_proto(lifecycle: Lifecycle) -> pb::Lifecycle {
    match lifecycle {
        Lifecycle::Prospect => pb::Lifecycle::Prospect,
        Lifecycle::Active => pb::Lifecycle::Active,
        Lifecycle::AtRisk => pb::Lifecycle::AtRisk,
        Lifecycle::Lost => pb::Lifecycle::Lost,
        Lifecycle::Reactivated => pb::Lifecycle::Reactivated,
    }
}

/// A lifecycle filter: `None` for UNSPECIFIED (no filter).
pub fn parse_lifecycle(raw: i32, field: &str) -> Result<Option<Lifecycle>, FieldViolation> {
    let all = Lifecycle::ALL.into_iter().map(|l| (lifecycle_to_proto(l) as i32, l));
    match raw {
        0 => Ok(None),
        raw => all
            .into_iter()
            .find(|(v, _)| *v == raw)
            .map(|(_, l)| Some(l))
            .ok_or_else(|| FieldViolation::new(field, "is not a lifecycle state")),
    }
}

pub fn category_to_proto(category: Category) -> pb::DigitalCategory {
    match category {
        Category::Traditional => pb::DigitalCategory::Traditional,
        Category::Hybrid => pb::DigitalCategory::Hybrid,
        Category::Connected => pb::DigitalCategory::Connected,
        Category::DigitalNative => pb::DigitalCategory::DigitalNative,
    }
}

/// A category filter: `None` for UNSPECIFIED (no filter).
pub fn parse_category(raw: i32, field: &str) -> Result<Option<Category>, FieldViolation> {
    let all = Category::ALL.into_iter().map(|c| (category_to_proto(c) as i32, c));
    match raw {
        0 => Ok(None),
        raw => all
            .into_iter()
            .find(|(v, _)| *v == raw)
            .map(|(_, c)| Some(c))
            .ok_or_else(|| FieldViolation::new(field, "is not a digital category")),
    }
}

pub fn intensity_to_proto(i: &Intensity) -> pb::DigitalIntensity {
    pb::DigitalIntensity {
        index: i32::from(i.index),
        category: category_to_proto(i.category) as i32,
        digital_share: i.digital_share,
        digital_breadth: i.digital_breadth,
        device_factor: i.device_factor,
        self_service_share: i.self_service_share,
    }
}

/// Sets the index and category of `profile` from its components under
/// `model`: a cached profile may have been scored under an earlier model.
pub fn score_profile(profile: &mut pb::Profile, model: &IntensityModel) {
    if let Some(d) = profile.digital_intensity.as_mut() {
        let components = Components {
            digital_share: d.digital_share,
            digital_breadth: d.digital_breadth,
            device_factor: d.device_factor,
            self_service_share: d.self_service_share,
        };
        *d = intensity_to_proto(&model.intensity(&components));
    }
}

pub fn profile_to_proto(record: &ProfileRecord, model: &IntensityModel) -> pb::Profile {
    pb::Profile {
        lifecycle: lifecycle_to_proto(record.lifecycle) as i32,
        lifecycle_change_time: record.lifecycle_since.map(timestamp),
        digital_intensity: record.intensity(model).as_ref().map(intensity_to_proto),
        last_touch_time: record.last_touch_at.map(timestamp),
        id: record.id.to_string(),
        identities: record.identities.iter().map(identity_to_proto).collect(),
        persona: record.persona.clone(),
        attributes: record.attributes.iter().map(|(k, v)| (k.clone(), value_to_proto(v))).collect(),
        create_time: Some(timestamp(record.created_at)),
        update_time: Some(timestamp(record.updated_at)),
        version: record.version,
        latest_scores: latest_scores_to_proto(&record.latest_scores),
    }
}

/// The latest answers, absent until the customer answered a survey.
fn latest_scores_to_proto(scores: &[Score]) -> Option<pb::LatestScores> {
    let of = |kind: SurveyKind| {
        scores.iter().find(|s| s.kind == kind).map(|s| pb::SurveyScore {
            score: s.score,
            survey_id: s.survey_id.clone(),
            response_id: s.response_id.clone(),
            respond_time: Some(timestamp(s.responded_at)),
        })
    };
    (!scores.is_empty()).then(|| pb::LatestScores {
        nps: of(SurveyKind::Nps),
        csat: of(SurveyKind::Csat),
        ces: of(SurveyKind::Ces),
    })
}

pub fn consent_to_proto(record: &ConsentRecord) -> pb::ConsentEvent {
    pb::ConsentEvent {
        id: record.id.to_string(),
        purpose: Some(purpose_to_proto(&record.purpose)),
        granted: record.granted,
        source_channel: common::Channel::from_key(&record.source_channel).unwrap_or(common::Channel::Unspecified)
            as i32,
        actor: record.actor.clone(),
        occur_time: Some(timestamp(record.occurred_at)),
        record_time: Some(timestamp(record.recorded_at)),
    }
}

pub fn state_to_proto(purpose: &Purpose, decided_by: Option<&ConsentRecord>) -> pb::ConsentState {
    pb::ConsentState {
        purpose: Some(purpose_to_proto(purpose)),
        granted: decided_by.is_some_and(|d| d.granted),
        decided_by: decided_by.map(consent_to_proto),
    }
}

pub fn purpose_definition_to_proto(record: &PurposeRecord) -> pb::ConsentPurposeDefinition {
    pb::ConsentPurposeDefinition {
        name: record.name.clone(),
        description: record.description.clone(),
        create_time: Some(timestamp(record.created_at)),
    }
}

pub fn transition_to_proto(tr: &crate::store::sweep::Transition) -> pb::LifecycleTransition {
    pb::LifecycleTransition {
        profile_id: tr.customer.to_string(),
        from_state: lifecycle_to_proto(tr.from) as i32,
        to_state: lifecycle_to_proto(tr.to) as i32,
        change_time: Some(timestamp(tr.at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_violations_name_the_nested_field() {
        let missing = parse_identity(None, "identity").unwrap_err();
        assert_eq!(missing, FieldViolation::new("identity", "is required"));
        let bad_kind = parse_identity(Some(pb::Identity { kind: 0, value: "x".into() }), "identities[2]").unwrap_err();
        assert_eq!(bad_kind.field, "identities[2].kind");
        let bad_email = parse_identity(
            Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: "nope".into() }),
            "identity",
        )
        .unwrap_err();
        assert_eq!(bad_email, FieldViolation::new("identity.value", "an email address needs an '@'"));
    }
}
