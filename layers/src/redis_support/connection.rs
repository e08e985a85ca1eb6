//! One connection to one Redis server or to a Redis Cluster, made lazily, from a URL.
//!
//! - `redis://…`, `rediss://…`, `redis+unix://…`: one server, through the client's
//!   [`ConnectionManager`], which reconnects by itself.
//! - `redis+cluster://[user:password@]host:port[,host:port…]`, or several `redis://` URLs
//!   separated by commas or spaces: the seed nodes of a Redis Cluster, through its cluster
//!   client, which routes each command by its key's slot and follows the cluster's changes.
//!
//! Either way nothing is sent until the first command, so a server starts while Redis is down.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::Settings;

/// What a Redis URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server.
    Single(String),
    /// Seed nodes of a cluster, each a `redis://` URL.
    Cluster(Vec<String>),
}

impl Target {
    /// Read `url`: see the module docs for the forms.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim();
        for (scheme, node_scheme) in [
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ] {
            if let Some(rest) = url.strip_prefix(scheme) {
                return cluster_nodes(rest, node_scheme).map(Target::Cluster);
            }
        }
        let urls: Vec<&str> = url
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .collect();
        match urls.as_slice() {
            [] => Err("no Redis URL".to_owned()),
            [one] => Ok(Target::Single((*one).to_owned())),
            many => Ok(Target::Cluster(
                many.iter().map(|&u| u.to_owned()).collect(),
            )),
        }
    }
}

/// `[user:password@]host:port,host:port[/path][?query]` → one URL per host, each with the
/// credentials, path and query.
fn cluster_nodes(rest: &str, scheme: &str) -> Result<Vec<String>, String> {
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}{credentials}{host}{tail}"))
        .collect();
    if nodes.is_empty() {
        return Err("a redis+cluster:// URL names no node".to_owned());
    }
    Ok(nodes)
}

/// A connection to one server or to a cluster; clones share it.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A lazy connection to `target`: nothing is sent before the first command. Needs a Tokio
    /// runtime.
    pub(crate) fn open(target: &Target, settings: &Settings) -> RedisResult<Connection> {
        match target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(settings.connect_timeout))
                    .set_response_timeout(Some(settings.response_timeout))
                    // One attempt per command while Redis is down: a check should fail (and
                    // `fail_open` decide) in one connect time, not after a backoff loop.
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(client, config).map(Connection::Single)
            }
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    // Retries follow MOVED and ASK redirections (a slot moving); a few, quickly,
                    // and the response timeout bounds them all.
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .build()?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(settings.connect_timeout)
                    .set_response_timeout(settings.response_timeout);
                Ok(Connection::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
        }
    }

    /// Whether commands on different keys may go to different nodes: then a pipeline must not
    /// mix keys of different slots.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster(_))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_one_server() {
        assert_eq!(
            Target::parse(" redis://127.0.0.1:6379/2 ").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
        assert!(Target::parse("  ").is_err());
    }

    #[test]
    fn cluster_urls_name_every_seed_node() {
        assert_eq!(
            Target::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001").unwrap(),
            Target::Cluster(vec![
                "redis://:pw@10.0.0.1:7000".into(),
                "redis://:pw@10.0.0.2:7001".into()
            ])
        );
        assert_eq!(
            Target::parse("rediss+cluster://a:7000/?insecure").unwrap(),
            Target::Cluster(vec!["rediss://a:7000/?insecure".into()])
        );
        assert_eq!(
            Target::parse("redis://a:7000, redis://b:7001 redis://c:7002").unwrap(),
            Target::Cluster(vec![
                "redis://a:7000".into(),
                "redis://b:7001".into(),
                "redis://c:7002".into()
            ])
        );
        assert!(Target::parse("redis+cluster://u:p@").is_err());
    }
}
