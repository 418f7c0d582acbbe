//! The services this binary can run. Each later service is one more entry.

use std::sync::Arc;

use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::server::ServiceModule;

/// Names accepted by `cx serve` and `cx migrate`, besides `all`.
pub const NAMES: &[&str] = &[cx_profile::NAME, cx_journey::NAME];

/// The services `which` names (`all` or one service).
pub fn selected(which: &str) -> Result<Vec<&'static str>, ConfigError> {
    match which {
        "all" => Ok(NAMES.to_vec()),
        name => NAMES.iter().find(|n| **n == name).map(|n| vec![*n]).ok_or_else(|| {
            ConfigError::new(
                "SERVICE",
                format!("unknown service '{name}' (expected all or one of: {})", NAMES.join(", ")),
            )
        }),
    }
}

/// Builds the modules that `which` names (`all` or one service).
pub async fn build(which: &str, ctx: &ServiceContext) -> Result<Vec<Arc<dyn ServiceModule>>, ConfigError> {
    let wanted = selected(which)?;
    let mut modules = Vec::with_capacity(wanted.len());
    for name in wanted {
        let module = match name {
            cx_profile::NAME => cx_profile::ProfileModule::arc(ctx).await?,
            cx_journey::NAME => cx_journey::JourneyModule::arc(ctx).await?,
            other => {
                return Err(ConfigError::new("SERVICE", format!("service '{other}' is listed but not built")));
            }
        };
        modules.push(module);
    }
    Ok(modules)
}
