//! The demo's A/B test (DOMAIN §9.6): a green checkout button against the
//! control, sized by the sample-size calculator, with the first few thousand
//! customers exposed and a seeded subset converting at a real lift.

use anyhow::Context as _;
use cx_proto::kpi::v1 as kpi;

use super::data::Rng;
use super::load::{Api, run_all};
use super::progress::Phase;

pub const NAME: &str = "Green checkout button";
/// Customers exposed at most: the default size's 4,500, past the planned size.
const EXPOSED: usize = 5_000;
/// Conversion rates the data is drawn with: 10 % on the control, 15 % on
/// green, a lift the default size detects whatever the split.
const CONTROL_RATE: f64 = 0.10;
const GREEN_RATE: f64 = 0.15;
/// Names the experiment's stream of the generator.
const SALT: u64 = 0xAB7E;

/// Whether customer `i` converts in `variant`. One uniform draw per customer
/// against the variant's rate: the same customers convert whichever arm the
/// server's assignment puts them in, so only the split varies between runs.
pub fn converts(seed: u64, i: usize, variant: &str) -> bool {
    let rate = if variant == "green" { GREEN_RATE } else { CONTROL_RATE };
    Rng::derived(seed, SALT, i as u64).chance(rate)
}

/// Creates the experiment, exposes the customers and records their
/// conversions; returns (exposed, converted).
pub async fn run(api: &Api, seed: u64, ids: &[String]) -> anyhow::Result<(u64, u64)> {
    let experiment = kpi::Experiment {
        name: NAME.into(),
        conversion: "checkout_completed".into(),
        variants: ["control", "green"].map(|key| kpi::Variant { key: key.into(), weight: 1 }).to_vec(),
        // Planned from what it must detect: 10 % → 15 % at power 0.8.
        plan: Some(kpi::SampleSizePlan {
            baseline_rate: CONTROL_RATE,
            minimum_detectable_effect: GREEN_RATE - CONTROL_RATE,
            power: 0.8,
        }),
        ..Default::default()
    };
    let request = kpi::CreateExperimentRequest { experiment: Some(experiment) };
    let created = api.kpi.clone().create_experiment(api.req(request)).await.context("CreateExperiment")?.into_inner();
    let id = created.experiment.context("CreateExperiment returned no experiment")?.id;
    let exposed = ids.len().min(EXPOSED);
    let mut phase = Phase::start("experiment", exposed as u64);
    let converted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let calls = ids.iter().take(exposed).enumerate().map(|(i, customer)| {
        let (api, id, customer, converted) = (api.clone(), id.clone(), customer.clone(), converted.clone());
        async move {
            let request = kpi::AssignVariantRequest { experiment_id: id.clone(), customer_id: customer.clone() };
            let assigned = api.kpi.clone().assign_variant(api.req(request)).await.context("AssignVariant")?;
            if converts(seed, i, &assigned.into_inner().variant_key) {
                let request = kpi::RecordConversionRequest { experiment_id: id, customer_id: customer };
                api.kpi.clone().record_conversion(api.req(request)).await.context("RecordConversion")?;
                converted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        }
    });
    run_all(calls, |_| phase.add(1)).await?;
    let converted = converted.load(std::sync::atomic::Ordering::Relaxed);
    phase.finish(&format!(" ({converted} converted)"));
    Ok((exposed as u64, converted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_converts_everyone_the_control_does() {
        // One draw u per customer: u < 0.10 implies u < 0.15, so every
        // control conversion is a green one too, and the draw is fixed by
        // the seed (the same answer on every call).
        for i in 0..2_000 {
            if converts(17, i, "control") {
                assert!(converts(17, i, "green"), "customer {i}");
            }
            assert_eq!(converts(17, i, "green"), converts(17, i, "green"));
        }
    }
}
