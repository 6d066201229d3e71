//! Whatever bytes a record file holds, parsing answers a record or `Corrupt`, never a panic.
#![no_main]

use std::path::Path;

use databank_core::Error;
use databank_disk::codec::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match parse(Path::new("/bank/type/x.json"), bytes) {
        Ok(loaded) => {
            // A record that parsed serializes again.
            serde_json::to_vec(&loaded.record.value).expect("a parsed value serializes");
        }
        Err(Error::Corrupt { .. }) => {}
        Err(other) => panic!("parse gave {other:?}, not Corrupt"),
    }
});
