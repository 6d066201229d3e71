//! A Couchbase Server for the tests, in Docker: the community image, initialised through its
//! REST API (services, memory quotas, administrator, index storage, bucket), waited on until
//! the bucket and the query service answer.
//!
//! Done by hand it is:
//!
//! ```text
//! docker run -d --rm -p 8091-8096:8091-8096 -p 11210:11210 couchbase/server:community
//! curl -X POST localhost:8091/node/controller/setupServices -d services=kv,n1ql,index
//! curl -X POST localhost:8091/pools/default -d memoryQuota=512 -d indexMemoryQuota=256
//! curl -X POST localhost:8091/settings/web -d port=8091 -d username=Administrator -d password=databank
//! curl -u Administrator:databank -X POST localhost:8091/settings/indexes -d storageMode=forestdb
//! curl -u Administrator:databank -X POST localhost:8091/pools/default/buckets \
//!      -d name=databank -d ramQuota=256 -d bucketType=couchbase
//! export DATABANK_TEST_COUCHBASE_URL=couchbase://Administrator:databank@127.0.0.1/databank
//! ```
//!
//! The ports are fixed (not free ports like the other servers) because a Couchbase client
//! learns the data port from the cluster map the server sends, which names the container's own
//! ports: a remapped port would not be reachable.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::Error;

/// The image `cargo xtask` starts.
pub const IMAGE: &str = "couchbase/server:community";

/// Why there is no Couchbase when neither the variable nor Docker gives one.
pub const UNAVAILABLE: &str = "no Couchbase Server can run on this machine (no Docker engine, no \
     package); set DATABANK_TEST_COUCHBASE_URL=couchbase://user:password@host/bucket, or run \
     where Docker works";

const ADMIN: &str = "Administrator";
const PASSWORD: &str = "databank";
const BUCKET: &str = "databank";
const REST: &str = "http://127.0.0.1:8091";

/// Starts and initialises the container; returns the URL for the tests and the container id.
pub fn docker_run() -> Result<(String, String), Error> {
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "-p",
            "127.0.0.1:8091-8096:8091-8096",
            "-p",
            "127.0.0.1:11210:11210",
            IMAGE,
        ])
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .to_string()
            .into());
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let container = crate::docker::Container(id);
    initialise()?;
    let url = format!("couchbase://{ADMIN}:{PASSWORD}@127.0.0.1/{BUCKET}");
    let id = container.0.clone();
    std::mem::forget(container); // the caller's guard removes it from here on
    Ok((url, id))
}

fn initialise() -> Result<(), Error> {
    wait("the REST API", Duration::from_secs(120), || {
        curl(&["-o", "/dev/null", &format!("{REST}/ui/index.html")])
    })?;
    curl(&[
        "-X",
        "POST",
        &format!("{REST}/node/controller/setupServices"),
        "--data-urlencode",
        "services=kv,n1ql,index",
    ])?;
    curl(&[
        "-X",
        "POST",
        &format!("{REST}/pools/default"),
        "-d",
        "memoryQuota=512",
        "-d",
        "indexMemoryQuota=256",
    ])?;
    curl(&[
        "-X",
        "POST",
        &format!("{REST}/settings/web"),
        "-d",
        "port=8091",
        "-d",
        &format!("username={ADMIN}"),
        "-d",
        &format!("password={PASSWORD}"),
    ])?;
    let auth = format!("{ADMIN}:{PASSWORD}");
    curl(&[
        "-u",
        &auth,
        "-X",
        "POST",
        &format!("{REST}/settings/indexes"),
        "-d",
        "storageMode=forestdb",
    ])?;
    curl(&[
        "-u",
        &auth,
        "-X",
        "POST",
        &format!("{REST}/pools/default/buckets"),
        "-d",
        &format!("name={BUCKET}"),
        "-d",
        "ramQuota=256",
        "-d",
        "bucketType=couchbase",
    ])?;
    wait("the bucket", Duration::from_secs(120), || {
        let body = curl(&[
            "-u",
            &auth,
            &format!("{REST}/pools/default/buckets/{BUCKET}"),
        ])?;
        if body.contains("\"status\":\"healthy\"") {
            Ok(body)
        } else {
            Err("not healthy yet".into())
        }
    })?;
    wait("the query service", Duration::from_secs(120), || {
        curl(&["-u", &auth, "http://127.0.0.1:8093/admin/ping"])
    })?;
    Ok(())
}

/// Runs curl (failing on HTTP errors) and returns the body.
fn curl(args: &[&str]) -> Result<String, Error> {
    let out = Command::new("curl")
        .args(["-sS", "-f"])
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "curl {}: {}",
            args.last().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into())
    }
}

fn wait(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Result<String, Error>,
) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("{what} was not ready within {limit:?}: {e}").into())
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}
