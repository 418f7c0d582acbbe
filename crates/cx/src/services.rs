//! The services this binary runs: the suite's one registry. A new service is
//! one more line here (docs/ADDING_A_SERVICE.md).

use cx_runtime::registry::{Registry, ServiceDef};

const SERVICES: &[ServiceDef] =
    &[cx_profile::SERVICE, cx_journey::SERVICE, cx_survey::SERVICE, cx_segmentation::SERVICE, cx_kpi::SERVICE];

/// Every service of the suite, in the order `cx serve all` starts them.
pub const REGISTRY: Registry = Registry::new(SERVICES);

#[cfg(test)]
mod tests {
    use cx_runtime::registry::Feed;

    use super::REGISTRY;

    #[test]
    fn profile_fans_out_to_the_services_holding_customer_data_and_feeds_the_takers() {
        assert_eq!(REGISTRY.participants("profile"), ["journey", "survey", "segmentation", "kpi"]);
        assert_eq!(REGISTRY.fed(Feed::Consents, "profile"), ["survey", "segmentation"]);
        assert_eq!(REGISTRY.fed(Feed::Touchpoints, "journey"), ["survey", "segmentation"]);
        assert_eq!(REGISTRY.fed(Feed::Scores, "survey"), ["profile", "segmentation"]);
        assert_eq!(REGISTRY.fed(Feed::Cases, "survey"), ["segmentation"]);
        assert_eq!(REGISTRY.fed(Feed::ProfileFacts, "profile"), ["segmentation"]);
    }
}
