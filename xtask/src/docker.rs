//! Docker, where the machine has a running engine: whether it does, and a container that is
//! removed when its guard is dropped.

use std::process::{Command, Stdio};

/// A container removed on drop.
#[derive(Debug)]
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", self.0.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether a Docker engine answers here.
pub fn available() -> bool {
    databank_testservers::which("docker").is_some()
        && Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}
