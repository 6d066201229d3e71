//! The whole conformance kit against the memory driver.

use databank_core::testkit::Harness;
use databank_core::{Bank, Result, Schema};
use databank_memory::MemoryBank;

struct Memory;

#[databank_core::driver::async_trait]
impl Harness for Memory {
    async fn open(&self, schema: Schema) -> Result<Bank> {
        Ok(Bank::new(MemoryBank::new(schema)))
    }
}

databank_core::conformance_tests!(|| Memory, does_not_apply: [reopen_keeps_records]);
