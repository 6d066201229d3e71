//! Section 7: the `databank` tool moving records (`copy`, `import`), beside the destination's
//! own bulk-load rate measured in the same run, and the tool's peak memory at a million records.
//!
//! The tool is the release binary `cargo xtask bench` builds and names in `DATABANK_CLI`; each
//! case runs it as a child process, timed from spawn to exit, its peak RSS read from
//! `/proc/<pid>/status` (`VmHWM`) while it runs.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use databank_bench::{median, unique, Error, Mode, Section, Stats};
use databank_core::{Bank, Schema};
use serde_json::Value;

use crate::backends::{flush_redis, Env, Namespace};
use crate::core_ops::{load, value};

const KIND: &str = "item";
/// The issue's target: a copy at this fraction of the destination's own bulk-load rate.
const COPY_TARGET: f64 = 0.8;
/// The issue's bound on the tool's peak RSS for a million records.
const RSS_LIMIT_MIB: f64 = 100.0;

/// What one run of the tool took.
struct ToolRun {
    elapsed: Duration,
    peak_rss_kib: u64,
}

/// Runs the tool with `args` to completion; fails with its stderr when it fails.
fn run_tool(cli: &Path, args: &[&str]) -> Result<ToolRun, Error> {
    let started = Instant::now();
    let mut child = Command::new(cli)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss_kib = 0;
    let status = loop {
        // VmHWM is the peak so far: the last reading before exit misses at most one interval.
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|status| vm_hwm_kib(&status))
        {
            peak_rss_kib = peak_rss_kib.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let mut why = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut why);
        }
        return Err(format!("databank {} failed ({status}): {why}", args.join(" ")).into());
    }
    Ok(ToolRun {
        elapsed,
        peak_rss_kib,
    })
}

/// The `VmHWM` line of a `/proc/<pid>/status`, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The tool's run as [`Stats`] over `records` (one run: no per-record latencies).
fn as_stats(run: &ToolRun, records: usize) -> Stats {
    let secs = run.elapsed.as_secs_f64();
    Stats {
        ops: records as u64,
        secs,
        per_sec: records as f64 / secs.max(f64::MIN_POSITIVE),
        ..Stats::default()
    }
}

async fn open(url: &str) -> Result<Arc<Bank>, Error> {
    Ok(Arc::new(
        databank_core::open(url, Schema::new().index(KIND, ["tag"])).await?,
    ))
}

/// Writes an export of `n` records (the tool's format, FORMAT.md) to a new file.
fn write_export(dir: &Path, n: usize) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.jsonl", unique("export")));
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    writeln!(out, r#"{{"format":"databank-export","version":1}}"#)?;
    for i in 0..n {
        let line = serde_json::json!({
            "type": KIND, "id": format!("r{i}"), "value": value(i), "expires_at": null,
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(path)
}

pub async fn run(mode: Mode, env: &Env) -> Result<Section, Error> {
    let cli = PathBuf::from(std::env::var_os("DATABANK_CLI").ok_or(
        "DATABANK_CLI is not set: run `cargo xtask bench`, which builds the `databank` tool",
    )?);
    let n = mode.pick(100_000, 2_000);
    let big = mode.pick(1_000_000, 10_000);
    let mut section = Section::new(
        "7. Migration with the `databank` tool",
        &[
            "case",
            "records",
            "seconds",
            "records/s",
            "anchor records/s",
            "ratio",
            "target",
            "met",
            "peak RSS MiB",
        ],
    );
    section.note(format!(
        "Each case runs the release `databank` binary as a child process, timed from spawn to \
         exit (connecting, counting, the copy itself and its closing check that every record \
         arrived). The anchor is the destination's own bulk-load rate in the same run: {n} \
         saves through `Bank` into Redis, 32 at a time (section 1's `save (loading)` case). \
         Records are section 1's (about 130 bytes). Medians of {} alternate runs.",
        mode.reps()
    ));
    section.note(format!(
        "Peak RSS is the tool's `VmHWM` at {big} records, read every 10 ms while it runs. A \
         `memory://` bank lives inside one process, so a tool run cannot copy from one that \
         holds records: the million-record cases read a JSON Lines export (`import`) and a \
         Redis bank (`copy`) instead, both streaming into Redis."
    ));
    let (mut anchors, mut from_disk, mut from_redis) = (Vec::new(), Vec::new(), Vec::new());
    let (mut disk_rss, mut redis_rss) = (0u64, 0u64);
    let disk = Namespace::new("disk", env)?;
    load(&open(&disk.url).await?, n).await?;
    for _ in 0..mode.reps() {
        flush_redis(env).await?;
        let source = Namespace::new("redis", env)?;
        anchors.push(load(&open(&source.url).await?, n).await?);
        for (from, runs, rss) in [
            (&disk.url, &mut from_disk, &mut disk_rss),
            (&source.url, &mut from_redis, &mut redis_rss),
        ] {
            let to = Namespace::new("redis", env)?;
            let run = tokio::task::block_in_place(|| {
                run_tool(&cli, &["copy", "--quiet", from.as_str(), to.url.as_str()])
            })?;
            *rss = (*rss).max(run.peak_rss_kib);
            runs.push(as_stats(&run, n));
        }
    }
    disk.remove().await;
    let anchor = median(anchors);
    for (case, runs, rss) in [
        ("copy disk → Redis", from_disk, disk_rss),
        ("copy Redis → Redis", from_redis, redis_rss),
    ] {
        let ours = median(runs);
        let ratio = ours.per_sec / anchor.per_sec.max(f64::MIN_POSITIVE);
        section.row(vec![
            ("case", Value::from(case)),
            ("records", Value::from(n)),
            ("seconds", Value::from(ours.secs)),
            ("records/s", Value::from(ours.per_sec)),
            ("anchor records/s", Value::from(anchor.per_sec)),
            ("ratio", Value::from(ratio)),
            ("target", Value::from(format!("≥ {COPY_TARGET:.1}"))),
            ("met", Value::from(ratio >= COPY_TARGET)),
            ("peak RSS MiB", Value::from(rss as f64 / 1024.0)),
        ]);
    }
    flush_redis(env).await?;
    let scratch = std::env::current_dir()?
        .join("target")
        .join("bench")
        .join("tmp");
    let export = write_export(&scratch, big)?;
    let export_arg = export.display().to_string();
    let imported = Namespace::new("redis", env)?;
    let copied = Namespace::new("redis", env)?;
    let import_run = tokio::task::block_in_place(|| {
        run_tool(&cli, &["import", "--quiet", &imported.url, &export_arg])
    })?;
    let copy_run = tokio::task::block_in_place(|| {
        run_tool(&cli, &["copy", "--quiet", &imported.url, &copied.url])
    })?;
    let _ = std::fs::remove_file(&export);
    flush_redis(env).await?;
    for (case, run) in [
        ("import JSONL → Redis", import_run),
        ("copy Redis → Redis", copy_run),
    ] {
        let stats = as_stats(&run, big);
        let mib = run.peak_rss_kib as f64 / 1024.0;
        section.row(vec![
            ("case", Value::from(case)),
            ("records", Value::from(big)),
            ("seconds", Value::from(stats.secs)),
            ("records/s", Value::from(stats.per_sec)),
            ("peak RSS MiB", Value::from(mib)),
            ("target", Value::from(format!("RSS < {RSS_LIMIT_MIB} MiB"))),
            ("met", Value::from(mib < RSS_LIMIT_MIB)),
        ]);
    }
    Ok(section)
}
