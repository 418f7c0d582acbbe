//! The services this binary runs: the suite's one registry. A new service is
//! one more line here (docs/ADDING_A_SERVICE.md).

use cx_runtime::registry::{Registry, ServiceDef};

const SERVICES: &[ServiceDef] = &[cx_profile::SERVICE, cx_journey::SERVICE, cx_survey::SERVICE];

/// Every service of the suite, in the order `cx serve all` starts them.
pub const REGISTRY: Registry = Registry::new(SERVICES);
