//! Any id the input rules accept maps to a path inside the type directory, made of lower-case
//! names no longer than a file name may be, and maps back to itself.
#![no_main]

use std::path::{Component, Path};

use databank_disk::path::{id_of, record_path, CHUNK, SUFFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|id: &str| {
    if databank_core::validate::id(id).is_err() {
        return; // `Bank` refuses it before any driver sees it
    }
    let dir = Path::new("/bank/type");
    let path = record_path(dir, id);
    assert!(path.starts_with(dir));
    let relative = path.strip_prefix(dir).expect("inside the directory");
    for part in relative.components() {
        let Component::Normal(name) = part else {
            panic!("{id:?} gave a path component {part:?}");
        };
        let name = name.to_str().expect("UTF-8 names");
        assert!(name.len() <= CHUNK + SUFFIX.len(), "{id:?}: a name of {} bytes", name.len());
        assert_eq!(name, name.to_lowercase(), "{id:?}: a name that differs by case");
    }
    assert_eq!(id_of(dir, &path).as_deref(), Some(id));
});
