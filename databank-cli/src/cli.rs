//! The command line: subcommands, arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Look into any databank by URL, read and write its records, export and import them.
///
/// A bank is named by the URL its application uses: `disk:///var/lib/app/bank`,
/// `redis://:secret@cache:6379/0?prefix=app`, `mongodb://db/app`, `postgres://app@db/app`,
/// `sqlite://data/app.db`, `couchbase://user@cb/bucket`.
/// Passwords never appear in what this tool prints.
#[derive(Debug, Parser)]
#[command(
    name = "databank",
    version,
    after_help = "Examples:\n  \
        databank info redis://cache/0?prefix=app\n  \
        databank put disk:data person ada '{\"name\": \"Ada\"}' --expires-in 3600\n  \
        databank get disk:data person ada\n  \
        databank search redis://cache/0 person name=Ada age=36\n  \
        databank export redis://cache/0 --type person --type session -o bank.jsonl\n  \
        databank import disk:///srv/bank bank.jsonl --on-conflict skip\n  \
        databank copy disk:///srv/bank redis://cache/0?prefix=app --verify\n  \
        databank upgrade redis://cache/0?prefix=app --dry-run"
)]
pub struct Args {
    /// Print results as JSON, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a completion script for a shell: `databank completions bash > /etc/bash_completion.d/databank`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Move a bank written by an older databank into this version's layout (a Redis bank of
    /// databank 0.2, which does not open until then); other banks have nothing to move.
    Upgrade {
        /// The bank's URL.
        url: String,
        /// Say what would be moved, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the bank's driver, capabilities, and types with their live record counts.
    Info {
        /// The bank's URL.
        url: String,
    },
    /// Print one record's value (with --json: id, value, expiry and revision).
    Get {
        /// The bank's URL.
        url: String,
        /// The record's type.
        r#type: String,
        /// The record's id.
        id: String,
    },
    /// Write one record (created or replaced) from a JSON value.
    Put {
        /// The bank's URL.
        url: String,
        /// The record's type.
        r#type: String,
        /// The record's id.
        id: String,
        /// The value, as JSON.
        #[arg(value_name = "JSON")]
        value: String,
        /// The record expires this many seconds from now.
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
    },
    /// Delete one record.
    Delete {
        /// The bank's URL.
        url: String,
        /// The record's type.
        r#type: String,
        /// The record's id.
        id: String,
    },
    /// Count the live records of a type.
    Count {
        /// The bank's URL.
        url: String,
        /// The records' type.
        r#type: String,
    },
    /// Find the records of a type whose fields equal the given values.
    ///
    /// Each criterion is `field=value`, the field a dotted path; the value is read as JSON
    /// when it is JSON (`age=36`, `admin=true`, `tags=["a"]`) and as a string otherwise
    /// (`name=Ada`); write `name='"36"'` for the string "36".
    Search {
        /// The bank's URL.
        url: String,
        /// The records' type.
        r#type: String,
        /// `field=value` criteria, all of which must hold.
        #[arg(required = true)]
        criteria: Vec<String>,
    },
    /// Write the live records of a bank (or of the named types) as JSON Lines (see FORMAT.md).
    Export {
        /// The bank's URL.
        url: String,
        /// A type to export (repeat for several; default: every type the bank holds).
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        types: Vec<String>,
        /// The file to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Copy every live record (or those of the named types) from one bank into another, with
    /// its expiry: the migration between backends. Refuses a destination that holds records of
    /// those types unless --on-conflict says what to do; checks the counts at the end (with
    /// --verify, that every record arrived with an equal value). Interrupted (Ctrl-C, a crash), the
    /// same command run again finishes the copy.
    Copy {
        /// The source bank's URL.
        from: String,
        /// The destination bank's URL.
        to: String,
        /// A type to copy (repeat for several; default: every type the source holds).
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        types: Vec<String>,
        /// What to do with an id the destination holds already.
        #[arg(long, value_enum)]
        on_conflict: Option<OnConflict>,
        /// Read every record back at the end and compare its value, not only the counts.
        #[arg(long)]
        verify: bool,
        /// Records in flight at once.
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
    },
    /// The web sessions `databank-session-store` keeps in a bank: count, list, show one, clear
    /// them, or delete the expired ones. Ids are credentials: shown only with --show-ids.
    Sessions {
        /// The bank's URL.
        url: String,
        /// The type the store keeps its sessions under.
        #[arg(long, default_value = "session")]
        kind: String,
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Write the records of an export into a bank; expired ones are skipped.
    Import {
        /// The bank's URL.
        url: String,
        /// The export to read (`-` for standard input).
        file: PathBuf,
        /// What to do with a record whose id the bank already holds.
        #[arg(long, value_enum, default_value_t = OnConflict::Fail)]
        on_conflict: OnConflict,
        /// Writes in flight at once.
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
    },
}

/// What `import` does with a record the bank already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnConflict {
    /// Keep the bank's record.
    Skip,
    /// Replace it with the export's.
    Overwrite,
    /// Stop with an error naming the line.
    Fail,
}

/// What `sessions` does.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// How many live sessions there are.
    Count,
    /// Every live session: its label (or id), number of keys, size and expiry.
    List {
        /// Print session ids (they are credentials) instead of hashed labels.
        #[arg(long)]
        show_ids: bool,
    },
    /// One session's data, size and expiry.
    Show {
        /// The session id.
        id: String,
    },
    /// Delete every session.
    Clear,
    /// Delete the expired sessions the backend has not removed itself.
    Cleanup,
}
