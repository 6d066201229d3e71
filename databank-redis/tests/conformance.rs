//! The whole conformance kit against a real Redis (`DATABANK_TEST_REDIS_URL`, which
//! `cargo xtask test` provides), each behaviour under a fresh key prefix.

use databank_core::testkit::{unique_name, Harness};
use databank_core::{Bank, Result, Schema};
use databank_redis::{RedisBank, RedisConfig};

struct Redis {
    url: String,
}

#[databank_core::async_trait]
impl Harness for Redis {
    async fn open(&self, schema: Schema) -> Result<Bank> {
        let config = RedisConfig::from_url(&self.url)?;
        Ok(Bank::new(RedisBank::connect(config, schema).await?))
    }
}

fn harness() -> Redis {
    let Ok(base) = std::env::var("DATABANK_TEST_REDIS_URL") else {
        panic!("DATABANK_TEST_REDIS_URL is not set: run `cargo xtask test`, or `cargo xtask services up redis` and export what it prints");
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    Redis {
        url: format!("{base}{separator}prefix={}", unique_name("kit")),
    }
}

databank_core::conformance_tests!(harness);
