//! The whole conformance kit against a real MongoDB-protocol server (`DATABANK_TEST_MONGO_URL`,
//! which `cargo xtask test` provides), each behaviour in a fresh database.

use databank_core::testkit::{server_url, unique_name, Harness};
use databank_core::{Bank, Result, Schema};
use databank_mongo::{MongoBank, MongoConfig};

struct Mongo {
    url: String,
}

#[databank_core::driver::async_trait]
impl Harness for Mongo {
    async fn open(&self, schema: Schema) -> Result<Bank> {
        let config = MongoConfig::from_url(&self.url)?;
        Ok(Bank::new(MongoBank::connect(config, schema).await?))
    }

    async fn cleanup(&self) {
        let Ok(config) = MongoConfig::from_url(&self.url) else {
            return;
        };
        if let Ok(client) = mongodb::Client::with_uri_str(&config.server_url).await {
            let _ = client.database(&config.database).drop().await;
        }
    }
}

fn harness() -> Option<Mongo> {
    let base = server_url("DATABANK_TEST_MONGO_URL", "cargo xtask services up mongo")?;
    let mut url = match url::Url::parse(&base) {
        Ok(url) => url,
        Err(e) => panic!("DATABANK_TEST_MONGO_URL {base:?}: {e}"),
    };
    url.set_path(&format!("/{}", unique_name("kit")));
    Some(Mongo {
        url: url.to_string(),
    })
}

databank_core::conformance_tests!(harness);
