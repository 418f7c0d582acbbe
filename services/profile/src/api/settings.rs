//! Tenant settings in and out of their messages.

use cx_proto::profile::v1 as pb;
use cx_runtime::error::{FieldViolation, Violations, each};

use crate::domain::intensity::IntensityModel;

pub fn model_to_proto(m: &IntensityModel) -> pb::IntensityModel {
    let [hybrid, connected, native] = m.cuts;
    pb::IntensityModel {
        digital_share_weight: m.digital_share,
        digital_breadth_weight: m.digital_breadth,
        device_factor_weight: m.device_factor,
        self_service_share_weight: m.self_service_share,
        hybrid_from: i32::from(hybrid),
        connected_from: i32::from(connected),
        digital_native_from: i32::from(native),
    }
}

/// An update mask of the settings: `intensity_model` is the one setting.
pub fn check_mask(mask: Option<prost_types::FieldMask>) -> Result<(), Violations> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(FieldViolation::new("update_mask", "must name the settings to update (intensity_model)").into());
    }
    each(paths, |i, path| match path.as_str() {
        "intensity_model" => Ok(()),
        _ => Err(FieldViolation::new(
            format!("update_mask.paths[{i}]"),
            format!("'{path}' is not a setting (intensity_model)"),
        )),
    })
    .map(drop)
}

pub fn parse_model(model: Option<pb::IntensityModel>, field: &str) -> Result<IntensityModel, FieldViolation> {
    let Some(pb::IntensityModel {
        digital_share_weight,
        digital_breadth_weight,
        device_factor_weight,
        self_service_share_weight,
        hybrid_from,
        connected_from,
        digital_native_from,
    }) = model
    else {
        return Err(FieldViolation::new(field, "is required"));
    };
    let cut = |v: i32| u8::try_from(v).map_err(|_| FieldViolation::new(field, "category cuts lie within 1..=100"));
    let model = IntensityModel {
        digital_share: digital_share_weight,
        digital_breadth: digital_breadth_weight,
        device_factor: device_factor_weight,
        self_service_share: self_service_share_weight,
        cuts: [cut(hybrid_from)?, cut(connected_from)?, cut(digital_native_from)?],
    };
    model.validate().map_err(|why| FieldViolation::new(field, why))?;
    Ok(model)
}

pub fn settings_to_proto(model: &IntensityModel) -> pb::TenantSettings {
    pb::TenantSettings { intensity_model: Some(model_to_proto(model)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_round_trip_and_bad_ones_name_the_field() {
        let model = IntensityModel::default();
        assert_eq!(parse_model(Some(model_to_proto(&model)), "m"), Ok(model));
        let mut bad = model_to_proto(&model);
        bad.device_factor_weight = 0.5;
        assert_eq!(
            parse_model(Some(bad), "settings.intensity_model"),
            Err(FieldViolation::new("settings.intensity_model", "weights must add up to 1"))
        );
        let mut cuts = model_to_proto(&model);
        cuts.hybrid_from = 300;
        assert_eq!(parse_model(Some(cuts), "m").unwrap_err().description, "category cuts lie within 1..=100");
    }
}
