//! The fields a rule may read (docs/DOMAIN.md §8.5) and the values of the
//! closed text fields.

use std::fmt;

use cx_runtime::consent::StandardPurpose;

use super::suggest::nearest;

/// The lifecycle stages of §4.3.
pub const LIFECYCLE_STAGES: &[&str] = &["prospect", "lost", "at_risk", "reactivated", "active"];
/// The digital categories of §4.6.
pub const DIGITAL_CATEGORIES: &[&str] = &cx_runtime::population::CATEGORIES;
/// The RFM segments of §8.3.
pub const RFM_SEGMENTS: &[&str] =
    &["champions", "potential_loyalist", "new_customer", "loyal", "need_attention", "at_risk", "hibernating", "lost"];
/// The channels of §4.1, digital first.
pub const CHANNELS: &[&str] = &[
    "web",
    "mobile_app",
    "email",
    "sms",
    "chat",
    "chatbot",
    "social",
    "kiosk",
    "store",
    "phone",
    "mail",
    "field_agent",
];
/// The NPS categories of §7.1.
pub const NPS_CATEGORIES: &[&str] = &["promoter", "passive", "detractor"];

/// What the caller knows of the tenant that the rule may name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Custom consent purposes the tenant declared (§3.1), without `custom:`.
    pub custom_purposes: Vec<String>,
}

/// A consent purpose (§3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Purpose {
    Standard(StandardPurpose),
    /// A purpose the tenant declared; never a standard name.
    Custom(String),
}

impl Purpose {
    /// The eight standard purposes, in their order.
    pub fn standard() -> [Purpose; 8] {
        StandardPurpose::ALL.map(Purpose::Standard)
    }

    pub fn name(&self) -> &str {
        match self {
            Purpose::Standard(p) => p.as_str(),
            Purpose::Custom(name) => name,
        }
    }
}

/// A field of §8.5.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Lifecycle,
    Persona,
    /// `profile.attributes.<key>`, the key as written.
    Attribute(String),
    DaysSinceCreated,
    Consent(Purpose),
    DigitalIndex,
    DigitalCategory,
    RfmRecencyDays,
    RfmFrequency,
    RfmMonetary,
    RfmR,
    RfmF,
    RfmM,
    RfmSegment,
    JourneyChannels,
    JourneyDaysSinceLastTouch,
    JourneyTouchpoints90d,
    JourneyLastChannel,
    SurveyLastNps,
    SurveyNpsCategory,
    SurveyLastCsat,
    SurveyLastCes,
    SurveyResponses,
    SurveyOpenCases,
}

/// The type of a field, as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Number,
    /// Text; `Some(values)` when only those values exist.
    Text(Option<&'static [&'static str]>),
    Boolean,
    /// A list of channel names (`journey.channels`).
    ChannelList,
    /// A profile attribute: typed per profile, so any literal type.
    Attribute,
}

impl FieldType {
    /// For messages: "rfm.r is a number".
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Number => "a number",
            FieldType::Text(_) => "text",
            FieldType::Boolean => "a boolean",
            FieldType::ChannelList => "a list of channels",
            FieldType::Attribute => "an attribute",
        }
    }
}

/// How the message of an unknown consent purpose begins.
pub(crate) const UNKNOWN_PURPOSE: &str = "unknown consent purpose";

const PREFIX_ATTRIBUTE: &str = "profile.attributes.";
const PREFIX_CONSENT: &str = "consent.";

/// The fields with fixed names, in the order of §8.5.
const FIXED: [(&str, Field); 22] = [
    ("profile.lifecycle", Field::Lifecycle),
    ("profile.persona", Field::Persona),
    ("profile.days_since_created", Field::DaysSinceCreated),
    ("digital.index", Field::DigitalIndex),
    ("digital.category", Field::DigitalCategory),
    ("rfm.recency_days", Field::RfmRecencyDays),
    ("rfm.frequency", Field::RfmFrequency),
    ("rfm.monetary", Field::RfmMonetary),
    ("rfm.r", Field::RfmR),
    ("rfm.f", Field::RfmF),
    ("rfm.m", Field::RfmM),
    ("rfm.segment", Field::RfmSegment),
    ("journey.channels", Field::JourneyChannels),
    ("journey.days_since_last_touch", Field::JourneyDaysSinceLastTouch),
    ("journey.touchpoints_90d", Field::JourneyTouchpoints90d),
    ("journey.last_channel", Field::JourneyLastChannel),
    ("survey.last_nps", Field::SurveyLastNps),
    ("survey.nps_category", Field::SurveyNpsCategory),
    ("survey.last_csat", Field::SurveyLastCsat),
    ("survey.last_ces", Field::SurveyLastCes),
    ("survey.responses", Field::SurveyResponses),
    ("survey.open_cases", Field::SurveyOpenCases),
];

impl Field {
    /// Every field with a fixed name, in the order of §8.5.
    pub fn fixed() -> impl Iterator<Item = &'static Field> {
        FIXED.iter().map(|(_, field)| field)
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Field::Lifecycle => FieldType::Text(Some(LIFECYCLE_STAGES)),
            Field::DigitalCategory => FieldType::Text(Some(DIGITAL_CATEGORIES)),
            Field::RfmSegment => FieldType::Text(Some(RFM_SEGMENTS)),
            Field::JourneyLastChannel => FieldType::Text(Some(CHANNELS)),
            Field::SurveyNpsCategory => FieldType::Text(Some(NPS_CATEGORIES)),
            Field::Persona => FieldType::Text(None),
            Field::Attribute(_) => FieldType::Attribute,
            Field::Consent(_) => FieldType::Boolean,
            Field::JourneyChannels => FieldType::ChannelList,
            _ => FieldType::Number,
        }
    }

    /// A boolean field alone is a condition; an attribute is not, even a boolean one.
    pub fn alone_is_condition(&self) -> bool {
        self.field_type() == FieldType::Boolean
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(key) => write!(f, "{PREFIX_ATTRIBUTE}{key}"),
            Field::Consent(purpose) => write!(f, "{PREFIX_CONSENT}{}", purpose.name()),
            fixed => {
                let name = FIXED.iter().find(|(_, field)| field == fixed).map_or("?", |(name, _)| name);
                f.write_str(name)
            }
        }
    }
}

/// The field named `name` (matched exactly: names are lower case), or the
/// message saying why there is none.
pub(crate) fn resolve(name: &str, catalog: &Catalog) -> Result<Field, String> {
    if let Some((_, field)) = FIXED.iter().find(|(known, _)| *known == name) {
        return Ok(field.clone());
    }
    if let Some(key) = name.strip_prefix(PREFIX_ATTRIBUTE) {
        return if cx_runtime::attributes::check_key(key).is_ok() {
            Ok(Field::Attribute(key.to_owned()))
        } else {
            Err(format!(
                "{} has no valid attribute key: a key is a letter followed by up to 63 letters, digits, _, - or .",
                super::error::shorten(name)
            ))
        };
    }
    if let Some(purpose) = name.strip_prefix(PREFIX_CONSENT) {
        if let Some(standard) = Purpose::standard().iter().find(|p| p.name() == purpose) {
            return Ok(Field::Consent(standard.clone()));
        }
        if catalog.custom_purposes.iter().any(|p| p == purpose) {
            return Ok(Field::Consent(Purpose::Custom(purpose.to_owned())));
        }
        return Err(unknown(UNKNOWN_PURPOSE, name, purposes(catalog)));
    }
    // `profile.attributes` or `consent` without what they need after the dot.
    for (prefix, what) in [(PREFIX_ATTRIBUTE, "key"), (PREFIX_CONSENT, "purpose")] {
        if prefix.strip_suffix('.') == Some(name) {
            return Err(format!("{name} needs a {what}: write {prefix}<{what}>"));
        }
    }
    let mut candidates: Vec<String> = FIXED.iter().map(|(n, _)| (*n).to_owned()).collect();
    candidates.extend(purposes(catalog));
    // `profile.atributes.vip`: offer the attribute of the same key.
    if let Some((_, key)) = name.split_once('.').and_then(|(_, rest)| rest.split_once('.')) {
        candidates.push(format!("{PREFIX_ATTRIBUTE}{key}"));
    }
    Err(unknown("unknown field", name, candidates))
}

fn purposes(catalog: &Catalog) -> Vec<String> {
    Purpose::standard()
        .iter()
        .map(|p| p.name())
        .chain(catalog.custom_purposes.iter().map(String::as_str))
        .map(|p| format!("{PREFIX_CONSENT}{p}"))
        .collect()
}

fn unknown(what: &str, name: &str, candidates: Vec<String>) -> String {
    let shown = super::error::shorten(name);
    match nearest(name, &candidates) {
        Some(near) if near == name.to_lowercase() => {
            format!("{what} {shown} — field names are lower case: did you mean {near}?")
        }
        Some(near) => format!("{what} {shown} — did you mean {near}?"),
        None => format!("{what} {shown}"),
    }
}
