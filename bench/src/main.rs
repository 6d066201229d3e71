//! `databank-bench`: core operations per driver, overhead against the raw clients, and session
//! cleanup at scale. Run by `cargo xtask bench [--quick]`, which starts the servers and passes
//! their URLs (`DATABANK_TEST_REDIS_URL`, `DATABANK_TEST_MONGO_URL`).

mod backends;
mod core_ops;
mod migrate;
mod overhead;
mod scale;

use std::process::ExitCode;

use databank_bench::{out_dir, Error, Mode, Report};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("databank-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    // `--charts REPORT.md --out DIR`: the charts of a report already written (bench/REPORT.md).
    let args: Vec<String> = std::env::args().collect();
    if let Some(report) = args
        .iter()
        .position(|a| a == "--charts")
        .and_then(|i| args.get(i + 1))
    {
        let text = std::fs::read_to_string(report)?;
        let sections = databank_bench::charts::sections_from_markdown(&text);
        let written = databank_bench::charts::write(&sections, &out_dir())
            .map_err(|e| format!("cannot draw the charts: {e}"))?;
        for (title, path) in written {
            println!("{title}: {}", path.display());
        }
        return Ok(());
    }
    if std::env::args().any(|a| a == "--merge") {
        let md = databank_bench::merge(&out_dir(), &["core", "anchors"])?;
        println!("{md}");
        return Ok(());
    }
    let mode = Mode::from_args();
    let env = backends::Env::from_env()?;
    databank_memory::register()?;
    databank_disk::register()?;
    databank_redis::register()?;
    databank_mongo::register()?;
    databank_sql::register()?;
    let mut report = Report {
        mode: mode.name().into(),
        ..Report::default()
    };
    let only: Vec<String> = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    // `--backend redis,mongo,disk` narrows sections 1, 2 and 5 (for profiling one backend; the
    // report is then partial).
    let backends: Vec<String> = std::env::args()
        .skip_while(|a| a != "--backend")
        .nth(1)
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    if wanted("core") {
        report
            .sections
            .push(core_ops::run(mode, &env, &backends).await?);
    }
    if wanted("overhead") {
        report
            .sections
            .extend(overhead::run(mode, &env, &backends).await?);
    }
    if wanted("scale") {
        report
            .sections
            .push(scale::run(mode, &env, &backends).await?);
    }
    if wanted("migrate") {
        report.sections.push(migrate::run(mode, &env).await?);
    }
    report.write(&out_dir(), "core")?;
    Ok(())
}
