//! Report sections: a markdown table and the same rows as JSON.

use std::path::Path;

use serde_json::{Map, Value};

/// One table of the report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// Paragraphs shown under the heading (what was measured, sizes, targets).
    pub notes: Vec<String>,
    /// Column keys, in order; each row is an object with (some of) these keys.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Map<String, Value>>,
}

impl Section {
    /// A section with these columns.
    pub fn new(title: &str, columns: &[&str]) -> Self {
        Section {
            title: title.into(),
            notes: Vec::new(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A section comparing ours with an anchor: the `leading` columns, then ours and the
    /// anchor's ops/s, p50 and p99, the ratio ours ÷ anchor, the target and whether it was met.
    pub fn comparison(title: &str, leading: &[&str]) -> Self {
        let mut columns = leading.to_vec();
        columns.extend(COMPARISON);
        Section::new(title, &columns)
    }

    /// Adds a [`comparison`](Section::comparison) row: `leading` cells, then the two runs.
    pub fn compare(
        &mut self,
        mut leading: Vec<(&str, Value)>,
        ours: crate::Stats,
        anchor_name: &str,
        anchor: crate::Stats,
        target: f64,
    ) {
        let ratio = ours.per_sec / anchor.per_sec.max(f64::MIN_POSITIVE);
        leading.extend([
            ("ours ops/s", Value::from(ours.per_sec)),
            ("ours p50 µs", Value::from(ours.p50_us)),
            ("ours p99 µs", Value::from(ours.p99_us)),
            ("anchor", Value::from(anchor_name)),
            ("anchor ops/s", Value::from(anchor.per_sec)),
            ("anchor p50 µs", Value::from(anchor.p50_us)),
            ("anchor p99 µs", Value::from(anchor.p99_us)),
            ("ratio", Value::from(ratio)),
            ("target", Value::from(format!("≥ {target:.1}"))),
            ("met", Value::from(ratio >= target)),
        ]);
        self.row(leading);
    }

    /// Adds a paragraph under the heading.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Adds a row from (column, value) pairs; prints it as it comes, so a long run shows
    /// progress.
    pub fn row(&mut self, cells: Vec<(&str, Value)>) {
        let row: Map<String, Value> = cells.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        // A key the columns do not name becomes a column, so no figure is silently dropped.
        for key in row.keys() {
            if !self.columns.contains(key) {
                self.columns.push(key.clone());
            }
        }
        let line: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{c}={}", cell(row.get(c))))
            .collect();
        println!("[{}] {}", self.title, line.join(" "));
        self.rows.push(row);
    }

    /// The section as markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        for note in &self.notes {
            out.push_str(note);
            out.push_str("\n\n");
        }
        out.push_str(&format!("| {} |\n", self.columns.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(self.columns.len())));
        for row in &self.rows {
            let cells: Vec<String> = self.columns.iter().map(|c| cell(row.get(c))).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
        out
    }
}

/// A value as a table cell: numbers rounded for reading.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "yes".into(),
        Some(Value::Bool(false)) => "**no**".into(),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => u.to_string(),
            (None, Some(f)) if f.abs() >= 100.0 => format!("{f:.0}"),
            (None, Some(f)) if f.abs() >= 10.0 => format!("{f:.1}"),
            (None, Some(f)) => format!("{f:.2}"),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// The columns [`Section::compare`] fills.
const COMPARISON: [&str; 10] = [
    "ours ops/s",
    "ours p50 µs",
    "ours p99 µs",
    "anchor",
    "anchor ops/s",
    "anchor p50 µs",
    "anchor p99 µs",
    "ratio",
    "target",
    "met",
];

/// The sections one benchmark binary produced.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// In order.
    pub sections: Vec<Section>,
}

impl Report {
    /// Writes `<name>.md` and `<name>.json` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let md: String = self.sections.iter().map(Section::markdown).collect();
        std::fs::write(dir.join(format!("{name}.md")), md)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{name}.json")), json)
    }
}

/// Merges the parts (`<part>.json` in `dir`) into `report.md` and `report.json`, sections in
/// the order of their numbers, under a header naming the machine, with a chart of each section
/// in `charts/` linked under its table. Returns the markdown.
pub fn merge(dir: &Path, parts: &[&str]) -> std::io::Result<String> {
    let mut sections = Vec::new();
    let mut mode = String::new();
    for part in parts {
        let text = std::fs::read_to_string(dir.join(format!("{part}.json")))?;
        let report: Report = serde_json::from_str(&text).map_err(std::io::Error::other)?;
        mode = report.mode;
        sections.extend(report.sections);
    }
    sections.sort_by(|a, b| a.title.cmp(&b.title));
    let machine = machine();
    let commit = commit();
    let mut md = format!(
        "# databank benchmarks\n\ncommit {commit}\n\nMode: **{mode}** (`cargo xtask bench{}`). \
         Machine: {machine}. Every table below comes from this one run of this commit. Medians \
         of alternate runs; ratio = ours ÷ anchor (higher is better for ours). Benchmarks, not \
         tests: no timing is asserted anywhere. What earlier runs tried and gave is in \
         [HISTORY.md](HISTORY.md).\n\n",
        if mode == "quick" { " --quick" } else { "" }
    );
    md.push_str(&summary(&sections));
    // A chart per section, linked under its table.
    let charts = crate::charts::write(&sections, &dir.join("charts"))
        .map_err(|e| std::io::Error::other(format!("cannot draw the charts: {e}")))?;
    for section in &sections {
        md.push_str(&section.markdown());
        if let Some((_, path)) = charts.iter().find(|(title, _)| *title == section.title) {
            if let Some(name) = path.file_name() {
                md.push_str(&format!(
                    "![{}](charts/{})\n\n",
                    section.title,
                    name.to_string_lossy()
                ));
            }
        }
    }
    std::fs::write(dir.join("report.md"), &md)?;
    let json = serde_json::json!({
        "commit": commit,
        "mode": mode,
        "machine": machine,
        "sections": sections,
    });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?,
    )?;
    Ok(md)
}

/// The commit the benchmarks were built from (`git rev-parse HEAD`), marked when the work
/// tree had uncommitted changes to tracked files.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(sha) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if changes.is_empty() => sha,
            _ => format!("{sha} (with uncommitted changes)"),
        },
        None => "unknown (not a git checkout)".into(),
    }
}

/// The one-screen summary: every row that carries a target, rows that differ only in
/// concurrency on one line.
pub fn summary(sections: &[Section]) -> String {
    struct Line {
        section: String,
        case: String,
        measured: Vec<String>,
        target: String,
        met: bool,
    }
    let mut lines: Vec<Line> = Vec::new();
    for section in sections {
        let number = section
            .title
            .split(['.', ' '])
            .next()
            .unwrap_or("")
            .to_owned();
        for row in &section.rows {
            let Some(met) = row.get("met").and_then(Value::as_bool) else {
                continue;
            };
            let case = crate::charts::label_without(row, "concurrency");
            // What the target is about: ours ÷ the anchor, a growth, or a peak RSS.
            let ratio = section
                .columns
                .iter()
                .filter(|c| {
                    c.starts_with("ratio")
                        || c.contains('÷')
                        || c.starts_with("vs ")
                        || c.starts_with("peak")
                })
                .map(|c| cell(row.get(c)))
                .find(|text| !text.is_empty())
                .unwrap_or_else(|| "see table".into());
            let measured = match row.get("concurrency") {
                Some(c) => format!("c={}: {ratio}", cell(Some(c))),
                None => ratio,
            };
            let target = cell(row.get("target"));
            match lines
                .iter_mut()
                .find(|l| l.section == number && l.case == case && l.target == target)
            {
                Some(line) => {
                    line.measured.push(measured);
                    line.met &= met;
                }
                None => lines.push(Line {
                    section: number.clone(),
                    case,
                    measured: vec![measured],
                    target,
                    met,
                }),
            }
        }
    }
    let mut out = String::from(
        "## Summary\n\nEvery target of the sections below, measured in this run (ours ÷ the \
         anchor unless the target says otherwise); a line is met when all its cases are.\n\n\
         | section | case | measured | target | met |\n|---|---|---|---|---|\n",
    );
    for line in &lines {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            line.section,
            line.case,
            line.measured.join(" · "),
            line.target,
            if line.met { "yes" } else { "**no**" }
        ));
    }
    let met = lines.iter().filter(|l| l.met).count();
    out.push_str(&format!("\n{met} of {} targets met.\n\n", lines.len()));
    out
}

/// Cores, CPU model, memory and kernel of this machine, from `/proc` (Linux).
pub fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kb: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{cores} cores ({model}), {:.0} GiB, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markdown_rounds_numbers_and_flags_misses() {
        let mut s = Section::new("t", &["case", "ops/s", "ratio", "met"]);
        s.row(vec![
            ("case", json!("read")),
            ("ops/s", json!(12345.678)),
            ("ratio", json!(0.8765)),
            ("met", json!(false)),
        ]);
        let md = s.markdown();
        assert!(md.contains("| read | 12346 | 0.88 | **no** |"), "{md}");
        s.row(vec![("case", json!("x")), ("extra", json!(1))]);
        assert_eq!(s.columns.last().map(String::as_str), Some("extra"));
    }
}
