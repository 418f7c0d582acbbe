//! Which answers a KPI reads, checked against the same bounds as the owning
//! service's aggregates, and written in one canonical form (lists sorted,
//! without repeats) so that one filter, however it is written, names one
//! target.

use cx_proto::kpi::v1 as pb;
use cx_runtime::channel::Channel;
use cx_runtime::error::{FieldViolation, Violations};
use cx_runtime::input::{optional_uuid, parse_uuid};
use cx_runtime::population;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::metric::Metric;

/// Most surveys one filter names (survey's aggregates take as many).
pub const MAX_SURVEYS: usize = 1_000;
/// Most channels: each one once.
pub const MAX_CHANNELS: usize = 12;
/// Longest step key, in characters.
pub const MAX_STEP_KEY: usize = 64;

/// A checked filter, in canonical form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub surveys: Vec<Uuid>,
    pub map: Option<Uuid>,
    pub step: Option<String>,
    pub channels: Vec<Channel>,
    /// The population: a segment's members, customers of these digital
    /// categories, or both (docs/DOMAIN.md §9.11).
    pub segment: Option<Uuid>,
    pub categories: Vec<&'static str>,
}

impl Filter {
    /// `given` (absent: no filter) checked, each violation named under
    /// `field` (`filter`, `target.filter`).
    pub fn parse(given: Option<&pb::Filter>, field: &str) -> Result<Self, Violations> {
        let Some(given) = given else { return Ok(Self::default()) };
        let mut out = Violations::new();
        let at = |name: &str| format!("{field}.{name}");
        // A list over its bound is one violation, its items not read.
        if given.survey_ids.len() > MAX_SURVEYS {
            out.add(at("survey_ids"), format!("has at most {MAX_SURVEYS} ids"));
        }
        let n = if given.survey_ids.len() > MAX_SURVEYS { 0 } else { given.survey_ids.len() };
        let mut surveys: Vec<Uuid> = given.survey_ids[..n]
            .iter()
            .enumerate()
            .filter_map(|(i, id)| out.check(parse_uuid(id, &at(&format!("survey_ids[{i}]")), "a survey id")))
            .collect();
        let map = match given.map_id.as_str() {
            "" => None,
            raw => out.check(parse_uuid(raw, &at("map_id"), "a journey map id")),
        };
        if given.step_key.chars().count() > MAX_STEP_KEY {
            out.add(at("step_key"), format!("has at most {MAX_STEP_KEY} characters"));
        } else if !given.step_key.is_empty() && given.map_id.is_empty() {
            out.add(at("step_key"), "needs a map_id");
        }
        let mut channels = Vec::new();
        if given.channels.len() > MAX_CHANNELS {
            out.add(at("channels"), format!("has at most {MAX_CHANNELS} channels"));
        } else {
            for (i, &code) in given.channels.iter().enumerate() {
                match Channel::from_code(code) {
                    Some(channel) => channels.push(channel),
                    None => out.add(at(&format!("channels[{i}]")), format!("{code} is not a known channel")),
                }
            }
        }
        let segment = out.check(optional_uuid(&given.segment_id, &at("segment_id"), "a segment id")).flatten();
        let categories =
            out.check(population::categories(&given.digital_categories, &at("digital_categories"))).unwrap_or_default();
        out.finish()?;
        surveys.sort_unstable();
        surveys.dedup();
        channels.sort_unstable_by_key(|c| c.code());
        channels.dedup();
        let step = (!given.step_key.is_empty()).then(|| given.step_key.clone());
        Ok(Self { surveys, map, step, channels, segment, categories })
    }

    /// Whether the filter names a population: a segment or categories.
    pub fn has_population(&self) -> bool {
        self.segment.is_some() || !self.categories.is_empty()
    }

    /// `given` read as [`Self::parse`] and held to `metric` (when that was
    /// readable) as [`Self::for_metric`], each violation put in `out`.
    pub fn check(
        out: &mut Violations,
        metric: Option<Metric>,
        given: Option<&pb::Filter>,
        field: &str,
    ) -> Option<Self> {
        let filter = out.check(Self::parse(given, field))?;
        match metric {
            Some(metric) => out.check(filter.for_metric(metric, field)),
            None => Some(filter),
        }
    }

    /// The filter if `metric` takes it, in `field`: lifecycle metrics count
    /// customers and take a population only; the closed loop takes at most
    /// one survey; conversion one map.
    pub fn for_metric(self, metric: Metric, field: &str) -> Result<Self, FieldViolation> {
        let only_population = Self { segment: self.segment, categories: self.categories.clone(), ..Self::default() };
        if metric.of_lifecycle() && self != only_population {
            return Err(FieldViolation::new(
                field,
                "takes a segment_id and digital_categories only for CHURN, RETENTION, REACTIVATION and CLV: \
                 they count customers, not answers",
            ));
        }
        let only_surveys = Self { surveys: self.surveys.clone(), ..Self::default() };
        if metric.of_cases() && (self != only_surveys || self.surveys.len() > 1) {
            let why = "takes at most one survey id, nothing else, for CLOSED_LOOP_SLA and RESOLUTION_TIME";
            return Err(FieldViolation::new(field, why));
        }
        let only_map = Self { map: self.map, ..Self::default() };
        if metric == Metric::Conversion && (self.map.is_none() || self != only_map) {
            return Err(FieldViolation::new(field, "takes a map_id, and nothing else, for CONVERSION"));
        }
        Ok(self)
    }

    /// As clients read it: canonical.
    pub fn proto(&self) -> pb::Filter {
        pb::Filter {
            survey_ids: self.surveys.iter().map(Uuid::to_string).collect(),
            map_id: self.map.map(|m| m.to_string()).unwrap_or_default(),
            step_key: self.step.clone().unwrap_or_default(),
            channels: self.channels.iter().map(|c| i32::from(c.code())).collect(),
            segment_id: self.segment.map(|s| s.to_string()).unwrap_or_default(),
            digital_categories: self.categories.iter().map(|&c| c.to_owned()).collect(),
        }
    }

    /// What names the filter among a tenant's targets: a digest of its
    /// canonical form, whose parts are each written with their length (a
    /// step key may hold any character).
    pub fn key(&self) -> String {
        let mut hash = Sha256::new();
        for survey in &self.surveys {
            hash.update(survey.as_bytes());
        }
        hash.update(b"|");
        if let Some(map) = self.map {
            hash.update(map.as_bytes());
        }
        hash.update(b"|");
        let step = self.step.as_deref().unwrap_or_default();
        hash.update(step.len().to_be_bytes());
        hash.update(step.as_bytes());
        for channel in &self.channels {
            hash.update(channel.code().to_be_bytes());
        }
        // Only when named: the keys of filters written before populations
        // existed stay as they were.
        if self.has_population() {
            hash.update(b"|population|");
            hash.update([u8::from(self.segment.is_some())]);
            if let Some(segment) = self.segment {
                hash.update(segment.as_bytes());
            }
            for category in &self.categories {
                hash.update(category.len().to_be_bytes());
                hash.update(category.as_bytes());
            }
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0190c1d2-0000-7000-8000-000000000001";
    const B: &str = "0190c1d2-0000-7000-8000-000000000002";

    fn violations(f: &pb::Filter) -> Vec<FieldViolation> {
        Filter::parse(Some(f), "filter").err().map(Vec::from).unwrap_or_default()
    }

    #[test]
    fn one_filter_however_written_is_one_canonical_form_and_key() {
        let written = pb::Filter {
            survey_ids: vec![B.into(), A.into(), B.into()],
            map_id: A.into(),
            step_key: "order".into(),
            channels: vec![9, 1, 9],
            segment_id: B.into(),
            digital_categories: vec!["hybrid".into(), "connected".into(), "hybrid".into()],
        };
        let filter = Filter::parse(Some(&written), "filter").unwrap();
        let canonical = pb::Filter {
            survey_ids: vec![A.into(), B.into()],
            map_id: A.into(),
            step_key: "order".into(),
            channels: vec![1, 9],
            segment_id: B.into(),
            digital_categories: vec!["connected".into(), "hybrid".into()],
        };
        assert_eq!(filter.proto(), canonical);
        assert_eq!(Filter::parse(Some(&canonical), "filter").unwrap().key(), filter.key());
        assert_eq!(filter.key().len(), 64);
        // No filter, an empty one: the same; a step of another map: another.
        assert_eq!(
            Filter::parse(None, "f").unwrap().key(),
            Filter::parse(Some(&pb::Filter::default()), "f").unwrap().key()
        );
        let other = pb::Filter { step_key: "orde".into(), ..canonical.clone() };
        assert_ne!(Filter::parse(Some(&other), "filter").unwrap().key(), filter.key());
        // A population is part of the key, and a filter without one keeps
        // the key it had before populations (SHA-256 of "||" and a zero
        // step length): targets set then are still found.
        let everyone = pb::Filter { segment_id: String::new(), digital_categories: Vec::new(), ..canonical };
        assert_ne!(Filter::parse(Some(&everyone), "filter").unwrap().key(), filter.key());
        assert_eq!(
            Filter::parse(None, "f").unwrap().key(),
            "1e6179d45b10b3a4132b4ec920a71180d80daf7daffabad3282dbbaba04da970"
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = pb::Filter {
            survey_ids: vec!["x".into()],
            map_id: String::new(),
            step_key: "order".into(),
            channels: vec![0, 13],
            segment_id: "s".into(),
            digital_categories: vec!["online".into()],
        };
        let expected = [
            ("filter.survey_ids[0]", "must be a survey id (a UUID)"),
            ("filter.step_key", "needs a map_id"),
            ("filter.channels[0]", "0 is not a known channel"),
            ("filter.channels[1]", "13 is not a known channel"),
            ("filter.segment_id", "must be a segment id (a UUID)"),
            ("filter.digital_categories[0]", "must be one of traditional, hybrid, connected, digital_native"),
        ];
        assert_eq!(violations(&bad), expected.map(|(f, d)| FieldViolation::new(f, d)));
        let long = pb::Filter {
            survey_ids: vec![A.into(); MAX_SURVEYS + 1],
            map_id: A.into(),
            step_key: "é".repeat(MAX_STEP_KEY + 1),
            channels: vec![1; MAX_CHANNELS + 1],
            ..Default::default()
        };
        let expected = [
            ("filter.survey_ids", "has at most 1000 ids"),
            ("filter.step_key", "has at most 64 characters"),
            ("filter.channels", "has at most 12 channels"),
        ];
        assert_eq!(violations(&long), expected.map(|(f, d)| FieldViolation::new(f, d)));
    }
}
