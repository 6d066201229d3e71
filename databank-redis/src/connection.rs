//! One connection type for one server and for a cluster, so the driver has one code path:
//! the `redis` crate's self-reconnecting `ConnectionManager`, or its cluster connection, which
//! routes each command by its key's slot and follows `MOVED`/`ASK` and failovers.

use databank_core::Error;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::RedisConfig;
use crate::error::map_err;

/// A connection to one server or to a cluster. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub enum Connection {
    /// One server (or a primary behind a proxy).
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A command with room for `args` more arguments of `bytes` bytes in all, so that adding them
/// does not grow its buffers (commands are built on every call).
pub fn command(name: &str, args: usize, bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(args + 1, bytes + name.len());
    cmd.arg(name);
    cmd
}

fn bad_url(config: &RedisConfig, e: redis::RedisError) -> Error {
    Error::InvalidInput(format!(
        "bad Redis URL {}: {e}",
        databank_core::redact(&config.server_url)
    ))
}

/// Connects as a config says (not bounded in time: the caller bounds it).
pub async fn connect(config: &RedisConfig) -> Result<Connection, Error> {
    if config.cluster_nodes.is_empty() {
        let client =
            redis::Client::open(config.server_url.as_str()).map_err(|e| bad_url(config, e))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.timeout);
        let manager = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(map_err)?;
        return Ok(Connection::Single(manager));
    }
    // Redirections, `TRYAGAIN` during a slot's migration and a failover's refusals are retried
    // by the cluster client, quickly at first: the call as a whole stays bounded by our timeout.
    let client = ClusterClientBuilder::new(config.cluster_nodes.iter().map(String::as_str))
        .connection_timeout(config.timeout)
        .response_timeout(config.timeout)
        .retries(24)
        .min_retry_wait(5)
        .max_retry_wait(250)
        .retry_wait_formula(5, 2)
        .build()
        .map_err(|e| bad_url(config, e))?;
    let connection = client.get_async_connection().await.map_err(map_err)?;
    Ok(Connection::Cluster(connection))
}

impl Connection {
    /// Sends one command and decodes its reply. On one server the request is not boxed (the
    /// trait path through `ConnectionLike` boxes each one).
    pub async fn query<T: redis::FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        let value = match self {
            Connection::Single(c) => c.send_packed_command(cmd).await?,
            Connection::Cluster(c) => c.req_packed_command(cmd).await?,
        };
        Ok(redis::from_redis_value(value.extract_error()?)?)
    }

    /// The nodes a per-node command fans out to: `[None]` (the one server), or each master
    /// serving slots as `CLUSTER NODES` lists them.
    pub async fn masters(&self) -> RedisResult<Vec<Option<(String, u16)>>> {
        let Connection::Cluster(cluster) = self else {
            return Ok(vec![None]);
        };
        let mut cluster = cluster.clone();
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut cluster)
            .await?;
        Ok(masters(&nodes).into_iter().map(Some).collect())
    }

    /// Runs a command on one node (`None`: the one server).
    pub async fn on_node<T: redis::FromRedisValue>(
        &self,
        node: &Option<(String, u16)>,
        cmd: Cmd,
    ) -> RedisResult<T> {
        match (self, node) {
            (Connection::Cluster(cluster), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = cluster.clone().route_command(cmd, routing).await?;
                redis::from_redis_value(value).map_err(Into::into)
            }
            _ => cmd.query_async(&mut self.clone()).await,
        }
    }
}

/// The addresses of the masters serving slots in a `CLUSTER NODES` reply.
fn masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let serving = fields.len() > 8;
            if !serving || !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            // `ip:port@cport[,hostname]`
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::masters;

    #[test]
    fn finds_the_masters_serving_slots() {
        let nodes = "\
a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
c 127.0.0.1:7003@17003 slave a 0 0 1 connected
d 127.0.0.1:7002@17002,host master,fail - 0 0 3 disconnected 10923-16383
e 127.0.0.1:7004@17004 master - 0 0 4 connected
";
        assert_eq!(
            masters(nodes),
            [
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
    }
}
