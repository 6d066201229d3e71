//! The whole conformance kit against the Couchbase that `DATABANK_TEST_COUCHBASE_URL` names,
//! which `cargo xtask test` provides: that variable, a Docker container of Couchbase Server, or
//! else the Couchbase protocol test server (`couchbase-testserver/`, not a Couchbase Server).
//! Each behaviour gets its own `?prefix=`, so behaviours running side by side in one collection
//! never see each other's records; `cleanup` deletes what a behaviour wrote.

use databank_core::testkit::{server_url, unique_name, Harness};
use databank_core::{Bank, Result, Schema};
use databank_couchbase::{CouchbaseBank, CouchbaseConfig};

struct Couchbase {
    url: String,
}

#[databank_core::driver::async_trait]
impl Harness for Couchbase {
    async fn open(&self, schema: Schema) -> Result<Bank> {
        let config = CouchbaseConfig::from_url(&self.url)?;
        Ok(Bank::new(CouchbaseBank::connect(config, schema).await?))
    }

    async fn cleanup(&self) {
        // Every record of this behaviour carries its prefix in `t`.
        let Ok(config) = CouchbaseConfig::from_url(&self.url) else {
            return;
        };
        if let Ok(bank) = CouchbaseBank::connect(config.clone(), Schema::new()).await {
            let _ = bank.delete_prefixed().await;
        }
    }
}

fn harness() -> Option<Couchbase> {
    let url = server_url(
        "DATABANK_TEST_COUCHBASE_URL",
        "cargo xtask services up couchbase",
    )?;
    let join = if url.contains('?') { '&' } else { '?' };
    Some(Couchbase {
        url: format!("{url}{join}prefix={}", unique_name("kit")),
    })
}

mod couchbase_server {
    // The driver does not count expired documents (`supports_count_expired` is off; a SQL++ count
    // like its purge's would do it).
    databank_core::conformance_tests!(
        super::harness,
        does_not_apply: [count_expired_counts_what_a_purge_removes]
    );
}
