//! `databank-couchbase-testserver [--kv-port P] [--query-port Q] [--bucket B] [--user U]
//! [--password W] [--data-file F]`: runs the Couchbase protocol test server (not a Couchbase Server) until
//! killed, after printing `ready kv=<port> query=<port>` on stdout.

use std::process::ExitCode;

use databank_couchbase_testserver::{start, Config};

fn parse(args: &[String]) -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u16>()
                .map_err(|_| format!("{flag}: {value:?} is not a port"))
        };
        match flag.as_str() {
            "--kv-port" => config.kv_port = number()?,
            "--query-port" => config.query_port = number()?,
            "--bucket" => config.bucket = value.clone(),
            "--user" => config.user = value.clone(),
            "--password" => config.password = value.clone(),
            "--host" => config.host = value.clone(),
            "--data-file" => config.data_file = Some(value.into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("databank-couchbase-testserver: {why}");
            return ExitCode::FAILURE;
        }
    };
    let running = match start(&config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("databank-couchbase-testserver: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ready kv={} query={}", running.kv_port, running.query_port);
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
