//! The whole conformance kit against the disk driver, each behaviour in a fresh directory.

use databank_core::testkit::Harness;
use databank_core::{Bank, Error, Result, Schema};
use databank_disk::DiskBank;

struct Disk {
    dir: tempfile::TempDir,
}

#[databank_core::driver::async_trait]
impl Harness for Disk {
    async fn open(&self, _schema: Schema) -> Result<Bank> {
        Ok(Bank::new(DiskBank::open(self.dir.path())?))
    }
}

fn harness() -> Disk {
    match tempfile::tempdir().map_err(|e| Error::backend("test", e)) {
        Ok(dir) => Disk { dir },
        Err(e) => panic!("no temporary directory: {e}"),
    }
}

databank_core::conformance_tests!(harness);
