//! `export` and `import`: a bank's records to and from JSON Lines (FORMAT.md).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;

use chrono::Utc;
use databank_core::{Bank, Error};
use futures_util::stream::FuturesUnordered;
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::OnConflict;
use crate::format::{read_header, Header, Line};
use crate::Failure;

/// A progress bar on stderr, drawn only when stderr is a terminal and not `quiet`.
pub fn progress(len: Option<u64>, quiet: bool, what: &str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::no_length(),
    };
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = if len.is_some() {
        "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)"
    } else {
        "{msg} {pos} records ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// A progress bar over the live records of `kind`, which it counts (a pass over the records
/// on some backends) only when the bar will be drawn.
pub async fn progress_over(
    bank: &Bank,
    kind: &str,
    quiet: bool,
    what: &str,
) -> Result<ProgressBar, Error> {
    if quiet || !std::io::stderr().is_terminal() {
        return Ok(progress(None, true, what));
    }
    Ok(progress(Some(bank.count(kind).await?), false, what))
}

/// Writes the live records of `types` to `output` (standard output when `None`).
pub async fn export(
    bank: &Bank,
    types: &[String],
    output: Option<&Path>,
    quiet: bool,
    json: bool,
) -> Result<(), Failure> {
    let out: Box<dyn Write> = match output {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let write_err = |e: std::io::Error| Failure(format!("cannot write the export: {e}"));
    serde_json::to_writer(&mut out, &Header::current()).map_err(Failure::output)?;
    out.write_all(b"\n").map_err(write_err)?;
    let types = if types.is_empty() {
        bank.kinds().await?
    } else {
        types.to_vec()
    };
    let mut total = 0u64;
    for kind in &types {
        let bar = progress_over(bank, kind, quiet, &format!("export {kind}")).await?;
        let mut records = bank.scan_records(kind);
        while let Some((id, record)) = records.try_next().await? {
            let entry = Line {
                kind: kind.clone(),
                id,
                value: record.value,
                expires_at: record.expires_at,
            };
            // Straight into the buffered writer: no string per record.
            serde_json::to_writer(&mut out, &entry).map_err(Failure::output)?;
            out.write_all(b"\n").map_err(write_err)?;
            total += 1;
            bar.inc(1);
        }
        bar.finish();
    }
    out.flush().map_err(write_err)?;
    // Written to standard output, the export itself is what `--json` gets there.
    let json = json && output.is_some();
    summary(
        json,
        &format!("exported {total} records"),
        json!({"exported": total}),
    );
    Ok(())
}

/// Keeps `why` as the import's failure if line `number` comes before the one kept.
fn keep(failure: &mut Option<(usize, Failure)>, number: usize, why: Failure) {
    if failure.as_ref().is_none_or(|(first, _)| number < *first) {
        *failure = Some((number, why));
    }
}

/// What importing one line did.
enum Imported {
    Written,
    SkippedExisting,
    SkippedExpired,
}

/// Line `number` of an export: `None` for the header (checked) and blank lines.
fn parse_line(
    name: &str,
    number: usize,
    text: std::io::Result<String>,
) -> Result<Option<(usize, Line)>, Failure> {
    let at = |why: String| Failure(format!("{name}, line {number}: {why}"));
    let text = text.map_err(|e| at(format!("cannot read it: {e}")))?;
    if number == 1 {
        read_header(&text).map_err(at)?;
        return Ok(None);
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    let line = serde_json::from_str(&text).map_err(|e| at(format!("not a record: {e}")))?;
    Ok(Some((number, line)))
}

/// Writes one record of an export (line `number` of `name`) into `bank`.
async fn import_line(
    bank: &Bank,
    name: &str,
    number: usize,
    line: Line,
    on_conflict: OnConflict,
) -> Result<Imported, Failure> {
    if line.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Ok(Imported::SkippedExpired);
    }
    let written = match on_conflict {
        OnConflict::Overwrite => bank.save(&line.kind, &line.id, line.value),
        OnConflict::Skip | OnConflict::Fail => bank.create(&line.kind, &line.id, line.value),
    }
    .expires_at(line.expires_at)
    .await;
    let at = |why: String| Failure(format!("{name}, line {number}: {why}"));
    match written {
        Ok(_) => Ok(Imported::Written),
        Err(Error::AlreadyExists { .. }) if on_conflict == OnConflict::Skip => {
            Ok(Imported::SkippedExisting)
        }
        Err(Error::AlreadyExists { .. }) => Err(at(format!(
            "{} {:?} exists already (use --on-conflict skip or overwrite)",
            line.kind, line.id
        ))),
        Err(e) => Err(at(e.to_string())),
    }
}

/// Writes the records of the export `file` (`-`: standard input) into `bank`, `concurrency`
/// writes in flight; stops at the first line it cannot read or write, naming it.
pub async fn import(
    bank: &Bank,
    file: &Path,
    on_conflict: OnConflict,
    concurrency: usize,
    quiet: bool,
    json: bool,
) -> Result<(), Failure> {
    let input: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(BufReader::new(File::open(file).map_err(|e| {
            Failure(format!("cannot read {}: {e}", file.display()))
        })?))
    };
    let name = file.display().to_string();
    let bar = progress(None, quiet, "import");
    let (mut written, mut skipped_existing, mut skipped_expired) = (0u64, 0u64, 0u64);
    let name = name.as_str();
    // Lines go out in file order, `concurrency` at a time. After a failure no new line is
    // taken; the writes in flight finish, and the failure of the earliest line is the one
    // reported, so the message names the first line that could not be imported.
    let mut lines = input.lines().enumerate();
    let mut in_flight = FuturesUnordered::new();
    let mut failure: Option<(usize, Failure)> = None;
    loop {
        while failure.is_none() && in_flight.len() < concurrency.max(1) {
            let Some((index, text)) = lines.next() else {
                break;
            };
            match parse_line(name, index + 1, text) {
                Ok(Some((number, line))) => in_flight.push(async move {
                    (
                        number,
                        import_line(bank, name, number, line, on_conflict).await,
                    )
                }),
                Ok(None) => {}
                Err(why) => keep(&mut failure, index + 1, why),
            }
        }
        let Some((number, outcome)) = in_flight.next().await else {
            break;
        };
        match outcome {
            Ok(Imported::Written) => written += 1,
            Ok(Imported::SkippedExisting) => skipped_existing += 1,
            Ok(Imported::SkippedExpired) => skipped_expired += 1,
            Err(why) => keep(&mut failure, number, why),
        }
        bar.inc(1);
    }
    if let Some((_, why)) = failure {
        bar.abandon();
        return Err(why);
    }
    bar.finish();
    summary(
        json,
        &format!(
            "imported {written} records; skipped {skipped_existing} that existed and \
             {skipped_expired} expired"
        ),
        json!({
            "imported": written,
            "skipped_existing": skipped_existing,
            "skipped_expired": skipped_expired,
        }),
    );
    Ok(())
}

/// The closing line: on stderr for people, or as JSON on stdout with `--json`.
pub fn summary(json: bool, text: &str, value: serde_json::Value) {
    if json {
        println!("{value}");
    } else {
        eprintln!("{text}");
    }
}
