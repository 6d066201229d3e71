//! The reliability suite lives in `tests/`; `reliability-child` is the process it crashes.
#![forbid(unsafe_code)]
