//! A real Redis Cluster for tests: three `redis-server` nodes (cluster mode, no persistence)
//! on free loopback ports, each owning a third of the slots, ready once every node says
//! `cluster_state:ok`. Killed on drop, with their node files.
//!
//! Uses `support_redis` for the processes and its blocking RESP client.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support_redis::{RedisServer, free_port};

/// Bound for the cluster to agree on its slots.
const FORMED: Duration = Duration::from_secs(30);

/// The slots of each node.
const SLOTS: [(u32, u32); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Start three nodes and form the cluster; panics if it does not form within 30 s.
    pub fn start() -> RedisCluster {
        static CLUSTERS: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tower-mail-cluster-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let nodes: Vec<RedisServer> = (0..SLOTS.len()).map(|_| node(&dir)).collect();
        let cluster = RedisCluster { nodes, dir };
        let first = &cluster.nodes[0];
        for other in &cluster.nodes[1..] {
            first.cmd(&["CLUSTER", "MEET", "127.0.0.1", &other.port().to_string()]);
        }
        for (node, (from, to)) in cluster.nodes.iter().zip(SLOTS) {
            // ADDSLOTS (not Redis 7's ADDSLOTSRANGE): any Redis with cluster mode will do.
            let slots: Vec<String> = (from..=to).map(|slot| slot.to_string()).collect();
            let mut args = vec!["CLUSTER", "ADDSLOTS"];
            args.extend(slots.iter().map(String::as_str));
            node.cmd(&args);
        }
        let deadline = Instant::now() + FORMED;
        while !cluster.formed() {
            assert!(
                Instant::now() < deadline,
                "the cluster did not form within {FORMED:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn formed(&self) -> bool {
        self.nodes.iter().all(|node| {
            let info = node.bulk(&["CLUSTER", "INFO"]).unwrap_or_default();
            info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
        })
    }

    /// `redis+cluster://` with two of the nodes as seeds.
    pub fn url(&self) -> String {
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
            self.nodes[0].port(),
            self.nodes[1].port()
        )
    }

    /// The node that owns `key`.
    pub fn node_for(&self, key: &str) -> &RedisServer {
        let slot = self.nodes[0].int(&["CLUSTER", "KEYSLOT", key]) as u32;
        let owner = SLOTS
            .iter()
            .position(|&(from, to)| (from..=to).contains(&slot))
            .expect("every slot has an owner");
        &self.nodes[owner]
    }

    /// Which node owns `key`: 0, 1 or 2.
    pub fn owner(&self, key: &str) -> usize {
        let node = self.node_for(key);
        self.nodes
            .iter()
            .position(|n| n.port() == node.port())
            .unwrap()
    }

    /// [`RedisServer::int`] on the node that owns `key` (the key as the command's second
    /// word).
    pub fn int(&self, args: &[&str]) -> i64 {
        self.node_for(args[1]).int(args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One cluster-mode node on a free port, with its node file in `dir`.
fn node(dir: &std::path::Path) -> RedisServer {
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join(format!("nodes-{port}.conf"));
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            config.to_str().expect("a UTF-8 temp dir"),
            "--cluster-node-timeout",
            "5000",
            "--dir",
            dir.to_str().expect("a UTF-8 temp dir"),
        ];
        if let Some(node) = RedisServer::start_on_with(port, &args) {
            return node;
        }
    }
    panic!("no cluster node started on any of 5 free ports");
}
