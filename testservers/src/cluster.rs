//! A local Redis Cluster: masters and replicas of Debian's `redis-server` on free loopback
//! ports, created with `redis-cli --cluster create`, stopped (and their directories removed) on
//! drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, which, Server};

/// How long the cluster may take to agree that every slot is served.
const FORMING: Duration = Duration::from_secs(60);
/// A node is marked failed after this long without an answer (`cluster-node-timeout`).
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// A running Redis Cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Server>,
}

/// A port whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> Result<u16, String> {
    for _ in 0..64 {
        let port = free_port()?;
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair (port and port + 10000) for a cluster node".into())
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each (3 and 1 make the usual six
    /// nodes), each with an append-only file, and waits until every node serves all slots.
    pub fn start(masters: usize, replicas: usize) -> Result<RedisCluster, String> {
        let cli = which("redis-cli").ok_or(
            "redis-cli is not on PATH (Debian: apt-get install redis-tools or redis-server)",
        )?;
        let timeout = NODE_TIMEOUT_MS.to_string();
        let extra = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            timeout.as_str(),
            // A replica may always take over: on a quiet test cluster its last contact with
            // the master can be older than the default validity window allows.
            "--cluster-replica-validity-factor",
            "0",
        ];
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            nodes.push(Server::redis_with(true, &extra, cluster_port()?)?);
        }
        let cluster = RedisCluster { nodes };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let created = Command::new(cli)
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
        if !created.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&created.stdout),
                String::from_utf8_lossy(&created.stderr)
            ));
        }
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// Waits until every running node says `cluster_state:ok` and every running replica has
    /// its link to its master up (so `WAIT` can be answered).
    pub fn wait_until_ok(&self) -> Result<(), String> {
        let deadline = Instant::now() + FORMING;
        loop {
            let ok = self.nodes.iter().filter(|n| n.pid().is_some()).all(|n| {
                let linked = bulk_reply(n.port(), "INFO replication").is_some_and(|i| {
                    !i.contains("role:slave") || i.contains("master_link_status:up")
                });
                linked && cluster_info(n.port()).is_some_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the cluster did not reach cluster_state:ok in {FORMING:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The nodes, masters and replicas, in the order they were created.
    pub fn nodes(&self) -> &[Server] {
        &self.nodes
    }

    /// The nodes, to stop, kill or pause one.
    pub fn nodes_mut(&mut self) -> &mut [Server] {
        &mut self.nodes
    }

    /// The databank URL of the cluster: `redis-cluster://127.0.0.1:<port>?node=...`, every
    /// node named.
    pub fn url(&self) -> String {
        let mut ports = self.nodes.iter().map(Server::port);
        let first = ports.next().unwrap_or_default();
        let rest: Vec<String> = ports.map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", rest.join("&"))
    }

    /// Leaves every node running when this value is dropped; their pids.
    pub fn detach(self) -> Vec<u32> {
        self.nodes.into_iter().map(Server::detach).collect()
    }

    /// `redis://` URLs of every node, comma-separated (a cluster client needs only one to find
    /// the others).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url().to_owned())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `CLUSTER INFO` of the node on `port`.
pub fn cluster_info(port: u16) -> Option<String> {
    bulk_reply(port, "CLUSTER INFO")
}

/// `CLUSTER NODES` of the node on `port`: a line a node, with its address, flags
/// (`myself`, `master`, `slave`, `fail`...) and slots.
pub fn cluster_nodes(port: u16) -> Option<String> {
    bulk_reply(port, "CLUSTER NODES")
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's id.
    pub id: String,
    /// The address it announces.
    pub host: String,
    /// Its client port.
    pub port: u16,
    /// `myself`, `master`, `slave`, `fail`, ... comma-separated.
    pub flags: String,
    /// The id of its master, `-` for a master.
    pub master_id: String,
    /// Whether it lists slots (a master serving some).
    pub serves_slots: bool,
}

impl ClusterNode {
    /// A master not marked failed.
    pub fn is_master(&self) -> bool {
        self.flags.split(',').any(|f| f == "master") && !self.flags.contains("fail")
    }
}

/// The nodes of a `CLUSTER NODES` reply (lines it cannot read are left out).
pub fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // `ip:port@cport[,hostname]`
            let address = f.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some(ClusterNode {
                id: f.first()?.to_string(),
                host: host.to_owned(),
                port: port.parse().ok()?,
                flags: f.get(2)?.to_string(),
                master_id: f.get(3)?.to_string(),
                serves_slots: f.len() > 8,
            })
        })
        .collect()
}

/// The nodes as the node on `port` sees them (empty if it does not answer).
pub fn cluster_nodes_of(port: u16) -> Vec<ClusterNode> {
    parse_cluster_nodes(&cluster_nodes(port).unwrap_or_default())
}

/// The text a command answers with a bulk string, over a plain connection.
fn bulk_reply(port: u16, command: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    // A bulk string: `$<len>\r\n<text>\r\n`; read until the whole of it is in.
    loop {
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((head, body)) = text.split_once("\r\n") {
            let len: usize = head.strip_prefix('$')?.parse().ok()?;
            if body.len() >= len {
                return Some(body[..len].to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_nodes() {
        let nodes = parse_cluster_nodes(
            "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
             c 127.0.0.1:7003@17003,h slave a 0 0 1 connected\n\
             d 127.0.0.1:7002@17002 master,fail - 0 0 3 disconnected 10923-16383\n",
        );
        assert_eq!(nodes.len(), 3);
        assert!(nodes[0].is_master() && nodes[0].serves_slots);
        assert_eq!((nodes[1].port, nodes[1].master_id.as_str()), (7003, "a"));
        assert!(!nodes[1].is_master() && !nodes[2].is_master());
    }

    /// Six nodes come up and agree; a killed master's replica takes over.
    #[test]
    fn a_local_cluster_forms_and_fails_over() -> Result<(), String> {
        if which("redis-server").is_none() {
            if std::env::var_os("CI").is_some() {
                return Err("redis-server is required (CI is set)".into());
            }
            // Straight to stderr (not captured): `cargo xtask test` counts the line as a skip.
            let _ = writeln!(
                std::io::stderr(),
                "databank-testkit: skipped cluster: redis-server is not installed"
            );
            return Ok(());
        }
        let mut cluster = RedisCluster::start(3, 1)?;
        assert_eq!(cluster.nodes().len(), 6);
        assert_eq!(cluster.urls().split(',').count(), 6);
        let first = cluster.nodes()[0].port();
        let info = cluster_info(first).ok_or("no CLUSTER INFO")?;
        assert!(info.contains("cluster_known_nodes:6"), "{info}");
        assert!(info.contains("cluster_size:3"), "{info}");
        cluster.nodes_mut()[0].kill();
        // The others mark it failed after the node timeout and promote its replica: three
        // serving masters again, every slot served.
        let survivor = cluster.nodes()[1].port();
        let deadline = Instant::now() + FORMING;
        loop {
            let nodes = cluster_nodes(survivor).ok_or("no CLUSTER NODES")?;
            let failed = nodes
                .lines()
                .any(|l| l.contains(&format!(":{first}@")) && l.contains("master,fail"));
            let serving = nodes
                .lines()
                .filter(|l| l.contains("master") && !l.contains("fail"))
                .count();
            if failed && serving == 3 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("no failover within {FORMING:?}:\n{nodes}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster.wait_until_ok()?;
        Ok(())
    }
}
