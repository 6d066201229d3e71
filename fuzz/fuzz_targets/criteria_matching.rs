//! Criteria built from any JSON never panic when matched, equality is typed and exact, and the
//! canonical form used as an index key agrees with JSON equality.
#![no_main]

use databank_core::criteria::{canonical, lookup};
use databank_core::Criteria;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: (&str, &str)| {
    let (Ok(criteria), Ok(record)) = (serde_json::from_str::<Value>(input.0), serde_json::from_str::<Value>(input.1)) else {
        return;
    };
    assert_eq!(canonical(&record) == canonical(&criteria), record == criteria);
    if let Ok(c) = Criteria::try_from(criteria) {
        let matched = c.matches(&record);
        let by_hand = c.fields().all(|(field, value)| lookup(&record, field) == Some(value));
        assert_eq!(matched, by_hand);
    }
});
