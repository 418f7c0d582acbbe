//! The services of the suite, as the binary lists them once
//! (`crates/cx/src/services.rs`). The runtime knows no service by name: peers,
//! `cx serve <name>` and the GDPR fan-out are all read off this list, so a new
//! service is its own crate plus one line there (docs/ADDING_A_SERVICE.md).

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::ConfigError;
use crate::context::ServiceContext;
use crate::server::ServiceModule;

/// Builds a service over the process's shared pieces.
pub type Build = for<'a> fn(&'a ServiceContext) -> BoxFuture<'a, Result<Arc<dyn ServiceModule>, ConfigError>>;

/// One service of the suite.
#[derive(Clone, Copy)]
pub struct ServiceDef {
    /// Short name: `cx serve <name>`, `CX_<NAME>_ENDPOINT`, the outbox
    /// destination and the sender of its messages. Lowercase ASCII letters.
    pub name: &'static str,
    /// Holds customer data, so takes part in merges and erasures: the profile
    /// service asks it, and an erasure completes only once it confirmed.
    pub customer_data: bool,
    /// The change feeds it takes from the other services: each sender
    /// writes the feed's messages for every deployed service taking it.
    pub feeds: &'static [Feed],
    pub build: Build,
}

/// A stream of changes one service sends the services that take it, through
/// its outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Every consent decision profile records (`cx.profile.v1.ConsentChanged`):
    /// for the services that enforce consent (survey invitations, campaign
    /// exports).
    Consents,
    /// Every batch of touchpoints journey stores
    /// (`cx.journey.v1.TouchpointsOffered`).
    Touchpoints,
    /// Every survey answer's score (`cx.survey.v1.ScoreRecorded`).
    Scores,
    /// A customer's count of unresolved cases, whenever it changes
    /// (`cx.survey.v1.OpenCasesChanged`).
    Cases,
    /// A customer's lifecycle, persona, attributes and digital intensity,
    /// whenever one changes (`cx.profile.v1.ProfileFactsChanged`).
    ProfileFacts,
}

impl Feed {
    /// Why a service taking this feed must be reachable: for errors.
    pub fn why(self) -> &'static str {
        match self {
            Feed::Consents => "enforces consent and must hear of its changes",
            Feed::Touchpoints => "takes the touchpoints journey stores",
            Feed::Scores => "takes the scores of survey answers",
            Feed::Cases => "takes the customers' counts of open cases",
            Feed::ProfileFacts => "takes the customers' profile facts",
        }
    }
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef")
            .field("name", &self.name)
            .field("customer_data", &self.customer_data)
            .field("feeds", &self.feeds)
            .finish()
    }
}

impl ServiceDef {
    /// The line of a service this process never runs, as the others read it
    /// (its name and flags): how a test of one service names its peers.
    /// Building it is a configuration error.
    pub const fn elsewhere(name: &'static str, customer_data: bool, feeds: &'static [Feed]) -> Self {
        Self { name, customer_data, feeds, build: not_here }
    }

    /// The environment variable naming this service's endpoint.
    pub fn endpoint_setting(&self) -> String {
        format!("CX_{}_ENDPOINT", self.name.to_ascii_uppercase())
    }
}

fn not_here(_: &ServiceContext) -> BoxFuture<'_, Result<Arc<dyn ServiceModule>, ConfigError>> {
    Box::pin(async { Err(ConfigError::new("SERVICE", "not run in this process")) })
}

/// The services one binary knows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Registry(&'static [ServiceDef]);

impl Registry {
    pub const fn new(services: &'static [ServiceDef]) -> Self {
        Self(services)
    }

    pub fn services(&self) -> &'static [ServiceDef] {
        self.0
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        self.0.iter().map(|s| s.name)
    }

    pub fn get(&self, name: &str) -> Option<&'static ServiceDef> {
        self.0.iter().find(|s| s.name == name)
    }

    /// The services holding customer data, except `asking` (the service that
    /// fans out merges and erasures).
    pub fn participants(&self, asking: &str) -> Vec<&'static str> {
        self.0.iter().filter(|s| s.customer_data && s.name != asking).map(|s| s.name).collect()
    }

    /// The services taking `feed`, except `asking` (its sender).
    pub fn fed(&self, feed: Feed, asking: &str) -> Vec<&'static str> {
        self.0.iter().filter(|s| s.feeds.contains(&feed) && s.name != asking).map(|s| s.name).collect()
    }

    /// The services `which` names: `all`, or one name.
    pub fn select(&self, which: &str) -> Result<Vec<&'static ServiceDef>, ConfigError> {
        if which == "all" {
            return Ok(self.0.iter().collect());
        }
        self.get(which).map(|s| vec![s]).ok_or_else(|| {
            let names: Vec<_> = self.names().collect();
            ConfigError::new(
                "SERVICE",
                format!(
                    "unknown service '{}' (expected all or one of: {})",
                    crate::error::clip(which),
                    names.join(", ")
                ),
            )
        })
    }

    /// Builds the services `which` names, in registry order.
    pub async fn build(&self, which: &str, ctx: &ServiceContext) -> Result<Vec<Arc<dyn ServiceModule>>, ConfigError> {
        let mut modules = Vec::new();
        for def in self.select(which)? {
            modules.push((def.build)(ctx).await?);
        }
        Ok(modules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &[ServiceDef] = &[
        ServiceDef::elsewhere("accounts", false, &[]),
        ServiceDef::elsewhere("orders", true, &[Feed::Consents, Feed::Scores]),
        ServiceDef::elsewhere("tickets", true, &[Feed::Scores]),
    ];

    #[test]
    fn selects_all_or_one_and_names_the_choices_otherwise() {
        let registry = Registry::new(SERVICES);
        assert_eq!(registry.select("all").unwrap().len(), 3);
        assert_eq!(registry.select("orders").unwrap()[0].name, "orders");
        let err = registry.select("order").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SERVICE: unknown service 'order' (expected all or one of: accounts, orders, tickets)"
        );
    }

    #[test]
    fn participants_are_the_customer_data_services_but_the_asking_one() {
        let registry = Registry::new(SERVICES);
        assert_eq!(registry.participants("accounts"), ["orders", "tickets"]);
        assert_eq!(registry.participants("orders"), ["tickets"]);
        assert_eq!(SERVICES[1].endpoint_setting(), "CX_ORDERS_ENDPOINT");
    }

    #[test]
    fn a_feed_goes_to_the_services_taking_it_but_the_asking_one() {
        let registry = Registry::new(SERVICES);
        assert_eq!(registry.fed(Feed::Consents, "accounts"), ["orders"]);
        assert!(registry.fed(Feed::Consents, "orders").is_empty());
        assert_eq!(registry.fed(Feed::Scores, "accounts"), ["orders", "tickets"]);
        assert!(registry.fed(Feed::Touchpoints, "accounts").is_empty());
    }
}
