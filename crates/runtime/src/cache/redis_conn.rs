//! The Redis connection of the cache: one server through a connection
//! manager, or a Redis Cluster (docs/DECISIONS.md, Cache), made on first use
//! in both cases so that a Redis down at start does not stop the service.
//!
//! Every key of the cache carries its tenant as a hash tag, so the commands
//! and pipelines of one tenant go to one node of a cluster; a pipeline over
//! several tenants is cut into one per tenant ([`by_tenant`]).

use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How the cache reaches Redis.
#[derive(Clone)]
pub(super) enum Target {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

/// A cluster client and its connection, made on first use.
pub(super) struct LazyCluster {
    pub(super) client: redis::cluster::ClusterClient,
    pub(super) connection: tokio::sync::OnceCell<ClusterConnection>,
}

impl Target {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// A live connection (a clone of the shared one).
    pub(super) async fn connect(&self) -> redis::RedisResult<Live> {
        match self {
            Self::Single(manager) => Ok(Live::Single(manager.clone())),
            Self::Cluster(cluster) => {
                let made = cluster.connection.get_or_try_init(|| cluster.client.get_async_connection()).await?;
                Ok(Live::Cluster(made.clone()))
            }
        }
    }
}

/// A connection commands are sent on.
#[derive(Clone)]
pub(super) enum Live {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Live {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The hash tag of a cache key (`cx:{tenant}:…` → `tenant`).
fn tag(key: &str) -> &str {
    key.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map_or(key, |(tag, _)| tag)
}

/// The indexes of `keys` in groups sent as one pipeline each: all together
/// on one server, one group per tenant (hash tag) on a cluster, in order.
pub(super) fn by_tenant<'a>(cluster: bool, keys: impl Iterator<Item = &'a str>) -> Vec<Vec<usize>> {
    let keys: Vec<&str> = keys.collect();
    if !cluster {
        return if keys.is_empty() { Vec::new() } else { vec![(0..keys.len()).collect()] };
    }
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match groups.iter_mut().find(|(t, _)| *t == tag(key)) {
            Some((_, members)) => members.push(i),
            None => groups.push((tag(key), vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_together_on_one_server_and_by_tenant_on_a_cluster() {
        let keys = ["cx:{acme}:a:1", "cx:{globex}:a:1", "cx:{acme}:a:2"];
        assert_eq!(by_tenant(false, keys.iter().copied()), [vec![0, 1, 2]]);
        assert_eq!(by_tenant(true, keys.iter().copied()), [vec![0, 2], vec![1]]);
        assert!(by_tenant(true, std::iter::empty()).is_empty());
        assert_eq!(tag("cx:{acme}:a:1"), "acme");
    }
}
