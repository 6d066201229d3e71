//! The whole conformance kit against a real local Redis Cluster
//! (`DATABANK_TEST_REDIS_CLUSTER_URL`, a `redis-cluster://` URL that `cargo xtask test` provides:
//! 3 masters and 3 replicas of Debian's redis-server), each behaviour under a fresh key prefix,
//! and what only a cluster shows: records spread over its masters.

mod redis_cluster {
    use databank_core::testkit::{server_url, unique_name, Harness};
    use databank_core::{json, Bank, Result, Schema};
    use databank_redis::{RedisBank, RedisConfig};

    pub struct Cluster {
        pub url: String,
    }

    /// Direct connections to each master, from `CLUSTER NODES` of the first node.
    pub async fn masters(config: &RedisConfig) -> Vec<redis::aio::MultiplexedConnection> {
        let Ok(client) = redis::Client::open(config.server_url.as_str()) else {
            return Vec::new();
        };
        let Ok(mut con) = client.get_multiplexed_async_connection().await else {
            return Vec::new();
        };
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut con)
            .await
            .unwrap_or_default();
        let mut masters = Vec::new();
        for node in databank_testservers::parse_cluster_nodes(&nodes) {
            if !node.is_master() || !node.serves_slots {
                continue;
            }
            let url = format!("redis://{}:{}", node.host, node.port);
            if let Ok(client) = redis::Client::open(url) {
                if let Ok(con) = client.get_multiplexed_async_connection().await {
                    masters.push(con);
                }
            }
        }
        masters
    }

    /// The keys under `prefix` on one node.
    pub async fn keys_on(
        con: &mut redis::aio::MultiplexedConnection,
        prefix: &str,
    ) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        let Ok(mut iter) =
            redis::AsyncCommands::scan_match::<_, Vec<u8>>(con, format!("{prefix}:*")).await
        else {
            return found;
        };
        while let Some(Ok(key)) = futures_util::StreamExt::next(&mut iter).await {
            found.push(key);
        }
        found
    }

    #[databank_core::driver::async_trait]
    impl Harness for Cluster {
        async fn open(&self, schema: Schema) -> Result<Bank> {
            let config = RedisConfig::from_url(&self.url)?;
            Ok(Bank::new(RedisBank::connect(config, schema).await?))
        }

        async fn cleanup(&self) {
            let Ok(config) = RedisConfig::from_url(&self.url) else {
                return;
            };
            for mut con in masters(&config).await {
                let keys = keys_on(&mut con, &config.prefix).await;
                // One key a command: keys of different slots cannot share one.
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.del(key).ignore();
                }
                let _: redis::RedisResult<()> = pipe.query_async(&mut con).await;
            }
        }
    }

    pub fn harness() -> Option<Cluster> {
        let base = server_url(
            "DATABANK_TEST_REDIS_CLUSTER_URL",
            "cargo xtask services up redis-cluster",
        )?;
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(Cluster {
            url: format!("{base}{separator}prefix={}", unique_name("kit")),
        })
    }

    databank_core::conformance_tests!(harness);

    /// A type's records land on every master (no node holds a type), and the bank counts,
    /// searches and lists types across all of them.
    #[tokio::test]
    async fn records_spread_over_every_master() -> Result<()> {
        let Some(cluster) = harness() else {
            return Ok(());
        };
        let bank = cluster
            .open(Schema::new().index("person", ["team"]))
            .await?;
        for i in 0..300 {
            bank.save("person", &format!("p{i}"), json!({"team": i % 3}))
                .await?;
        }
        bank.save("other", "o", json!({})).await?;
        assert_eq!(bank.count("person").await?, 300);
        let hits = bank
            .search("person", &databank_core::Criteria::new().eq("team", 1))
            .await?;
        assert_eq!(hits.len(), 100);
        assert_eq!(bank.kinds().await?, ["other", "person"]);
        let config = RedisConfig::from_url(&cluster.url)?;
        let mut per_master = Vec::new();
        for mut con in masters(&config).await {
            per_master.push(keys_on(&mut con, &config.prefix).await.len());
        }
        assert_eq!(per_master.len(), 3, "three masters");
        assert!(
            per_master.iter().all(|n| *n > 30),
            "keys per master: {per_master:?}"
        );
        cluster.cleanup().await;
        Ok(())
    }
}
