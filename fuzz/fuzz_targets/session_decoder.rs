//! Any stored bytes decode to session data or `Corrupt`, never a panic; what decodes encodes
//! and decodes to the same data.
#![no_main]

use databank_session_store::format::{decode, encode};
use databank_session_store::{Session, SessionError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice(bytes) else {
        return;
    };
    match decode(value) {
        Ok(data) => {
            let again = decode(encode(&Session::with_data(data.clone(), None))).expect("re-decodes");
            assert_eq!(again, data);
        }
        Err(SessionError::Corrupt(_)) => {}
        Err(other) => panic!("decode gave {other:?}, not Corrupt"),
    }
});
