//! A child process for the reliability suite.
//!
//! - `reliability-child write TARGET START`: saves records `r0`..`r19` and a session in a loop
//!   into the bank at TARGET (a directory: a disk bank; `sqlite://…`: a SQLite bank), values
//!   counting up from START, printing `ack KEY N` after each write is acknowledged, until
//!   killed.
//! - `reliability-child open DIR HOLD_MS`: tries to open the disk bank at DIR, prints `opened`
//!   or `refused: <error>`, holds it for HOLD_MS and exits.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use databank_core::{json, Bank};
use databank_disk::DiskBank;
use databank_session_store::DatabankStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", dir, start] => write(dir, start.parse().unwrap_or(0)).await,
        ["open", dir, hold] => open(dir, hold.parse().unwrap_or(0)).await,
        _ => Err("usage: reliability-child write DIR START | open DIR HOLD_MS".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reliability-child: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn write(target: &str, start: u64) -> Result<(), Box<dyn std::error::Error>> {
    let bank = if target.starts_with("sqlite:") {
        databank_sql::register()?;
        databank_core::open(target, databank_core::Schema::new()).await?
    } else {
        Bank::new(DiskBank::open(target)?)
    };
    let store = DatabankStore::new(bank.clone());
    let mut out = std::io::stdout().lock();
    let padding = "p".repeat(2000);
    let mut n = start;
    loop {
        if n % 5 == 4 {
            let mut session = store.get("crash-session").await?.unwrap_or_default();
            session.insert("n", n);
            session.insert("padding", padding.clone());
            store.set("crash-session", &mut session).await?;
            writeln!(out, "ack session {n}")?;
        } else {
            let key = format!("r{}", n % 20);
            bank.save("rec", &key, json!({"n": n, "padding": padding}))
                .await?;
            writeln!(out, "ack {key} {n}")?;
        }
        out.flush()?;
        n += 1;
    }
}

async fn open(dir: &str, hold_ms: u64) -> Result<(), Box<dyn std::error::Error>> {
    match DiskBank::open(dir).map(Bank::new) {
        Ok(bank) => {
            println!("opened");
            std::io::stdout().flush()?;
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
            bank.close().await?;
        }
        Err(e) => println!("refused: {e}"),
    }
    Ok(())
}
