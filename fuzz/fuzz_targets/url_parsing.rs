//! Any text given as a bank URL is parsed or refused with a typed error, never a panic, and a
//! password never shows in what the configs print.
#![no_main]

use databank_mongo::MongoConfig;
use databank_redis::RedisConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let redacted = databank_core::redact(text);
    if let Ok(url) = url::Url::parse(text) {
        if url.password().is_some() {
            let again = url::Url::parse(&redacted).expect("a redacted URL parses");
            assert_eq!(again.password(), Some("***"), "redact kept the password");
        }
        let _ = databank_disk::root_of(&url);
    }
    if let Ok(config) = RedisConfig::from_url(text) {
        assert!(!config.prefix.contains(':'));
        let _ = format!("{config:?}");
    }
    if let Ok(config) = MongoConfig::from_url(text) {
        assert!(!config.database.is_empty());
        let _ = format!("{config:?}");
    }
});
