//! The whole conformance kit against a real Redis (`DATABANK_TEST_REDIS_URL`, which
//! `cargo xtask test` provides), each behaviour under a fresh key prefix.

use databank_core::testkit::{server_url, unique_name, Harness};
use databank_core::{Bank, Result, Schema};
use databank_redis::{RedisBank, RedisConfig};

struct Redis {
    url: String,
}

#[databank_core::driver::async_trait]
impl Harness for Redis {
    async fn open(&self, schema: Schema) -> Result<Bank> {
        let config = RedisConfig::from_url(&self.url)?;
        Ok(Bank::new(RedisBank::connect(config, schema).await?))
    }

    async fn cleanup(&self) {
        let Ok(config) = RedisConfig::from_url(&self.url) else {
            return;
        };
        let Ok(client) = redis::Client::open(config.server_url.as_str()) else {
            return;
        };
        let Ok(mut con) = client.get_multiplexed_async_connection().await else {
            return;
        };
        let pattern = format!("{}:*", config.prefix);
        let keys: Vec<Vec<u8>> = {
            let Ok(mut iter) =
                redis::AsyncCommands::scan_match::<_, Vec<u8>>(&mut con, pattern).await
            else {
                return;
            };
            let mut keys = Vec::new();
            while let Some(Ok(key)) = futures_util::StreamExt::next(&mut iter).await {
                keys.push(key);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<()> =
                redis::cmd("DEL").arg(chunk).query_async(&mut con).await;
        }
    }
}

fn harness() -> Option<Redis> {
    let base = server_url("DATABANK_TEST_REDIS_URL", "cargo xtask services up redis")?;
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(Redis {
        url: format!("{base}{separator}prefix={}", unique_name("kit")),
    })
}

databank_core::conformance_tests!(harness);
