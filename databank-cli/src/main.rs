//! `databank`: look into any bank by URL, read and write its records, export and import them.
//! See `databank --help`, and FORMAT.md for the export format.

mod cli;
mod copy;
mod format;
mod info;
mod records;
mod sessions;
mod transfer;
mod upgrade;

use std::process::ExitCode;

use clap::Parser;
use databank_core::driver::Url;
use databank_core::{Bank, Schema};

use cli::{Args, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What went wrong, as the one line the tool prints.
#[derive(Debug)]
pub struct Failure(pub String);

impl Failure {
    /// A result that could not be printed.
    pub fn output(e: impl std::fmt::Display) -> Self {
        Failure(format!("cannot print the result: {e}"))
    }
}

impl From<databank_core::Error> for Failure {
    fn from(e: databank_core::Error) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Command::Completions { shell } = args.command {
        let mut command = <Args as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "databank", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // Every URL on the command line, whose passwords no message may show.
    let urls = match &args.command {
        Command::Info { url }
        | Command::Get { url, .. }
        | Command::Put { url, .. }
        | Command::Delete { url, .. }
        | Command::Count { url, .. }
        | Command::Search { url, .. }
        | Command::Export { url, .. }
        | Command::Import { url, .. }
        | Command::Sessions { url, .. }
        | Command::Upgrade { url, .. } => vec![url.clone()],
        Command::Copy { from, to, .. } => vec![from.clone(), to.clone()],
        Command::Completions { .. } => Vec::new(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start: {e}"), &urls),
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => fail(&message, &urls),
    }
}

/// Prints `message` as one line, the URLs' passwords hidden, and exits with 1.
fn fail(message: &str, urls: &[String]) -> ExitCode {
    let message = urls
        .iter()
        .fold(message.to_owned(), |message, url| redact_all(&message, url));
    eprintln!("databank: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}

/// `message` with every form of the URL's password replaced by `***`.
fn redact_all(message: &str, url: &str) -> String {
    let mut message = message.replace(url, &databank_core::redact(url));
    if let Some(password) = Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        let decoded = percent_decode(&password);
        for secret in [password, decoded] {
            if !secret.is_empty() {
                message = message.replace(&secret, "***");
            }
        }
    }
    message
}

/// FNV-1a, 64 bits: a hash that is the same in every build and process (copy markers,
/// session labels).
pub fn fnv64(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Percent-decodes `text`, keeping what does not decode as it is.
fn percent_decode(text: &str) -> String {
    databank_core::driver::percent_decode(text).unwrap_or_else(|| text.to_owned())
}

async fn open(url: &str) -> Result<Bank, Failure> {
    // The drivers this build has (the tool's features are the `databank` crate's).
    Ok(databank::open(url, Schema::new()).await?)
}

async fn run(args: Args) -> Result<(), Failure> {
    let (json, quiet) = (args.json, args.quiet);
    match args.command {
        Command::Completions { .. } => Ok(()), // answered in `main`
        Command::Info { url } => info::info(&open(&url).await?, &url, json).await,
        Command::Upgrade { url, dry_run } => upgrade::upgrade(&url, dry_run, json).await,
        Command::Get { url, r#type, id } => {
            records::get(&open(&url).await?, &r#type, &id, json).await
        }
        Command::Put {
            url,
            r#type,
            id,
            value: text,
            expires_in,
        } => records::put(&open(&url).await?, &r#type, &id, &text, expires_in).await,
        Command::Delete { url, r#type, id } => {
            records::delete(&open(&url).await?, &r#type, &id).await
        }
        Command::Count { url, r#type } => records::count(&open(&url).await?, &r#type, json).await,
        Command::Search {
            url,
            r#type,
            criteria,
        } => records::search(&open(&url).await?, &r#type, &criteria, json).await,
        Command::Export { url, types, output } => {
            transfer::export(&open(&url).await?, &types, output.as_deref(), quiet, json).await
        }
        Command::Copy {
            from,
            to,
            types,
            on_conflict,
            verify,
            concurrency,
        } => {
            let (source, destination) = (open(&from).await?, open(&to).await?);
            let options = copy::CopyOptions {
                types,
                on_conflict,
                verify,
                concurrency: usize::from(concurrency),
                quiet,
                json,
            };
            copy::copy(&source, &destination, &from, options).await
        }
        Command::Sessions { url, kind, command } => {
            sessions::sessions(open(&url).await?, kind, command, json).await
        }
        Command::Import {
            url,
            file,
            on_conflict,
            concurrency,
        } => {
            let bank = open(&url).await?;
            transfer::import(&bank, &file, on_conflict, concurrency.into(), quiet, json).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_every_form() {
        let url = "redis://app:s%40cret@cache:6379/0";
        let message = format!("cannot reach {url}: auth as app with s@cret failed (s%40cret)");
        let shown = redact_all(&message, url);
        assert!(!shown.contains("cret"), "{shown}");
        assert!(shown.contains("redis://app:***@cache:6379/0"), "{shown}");
    }
}
