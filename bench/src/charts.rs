//! SVG charts of a report's sections, drawn with `plotters` (its SVG backend only: text is left
//! to whoever displays the file, so no font is read and nothing is fetched).
//!
//! - A section with a `ratio` column: one bar per row, ours ÷ anchor, with the 1.0 line marked
//!   (green where the row met its target, orange where it did not).
//! - Section 5 (cleanup at scale): cleanup time against the number of sessions, per backend,
//!   both axes logarithmic.
//! - A section with `ops/s` and no anchor: one bar per row, operations per second (log scale).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::{Map, Value};

use crate::Section;

type Row = Map<String, Value>;
type Failure = Box<dyn std::error::Error>;

/// The columns whose cells name a row in a chart, in the order they are joined.
const LABEL_COLUMNS: [&str; 9] = [
    "backend",
    "shape",
    "case",
    "store",
    "session at start",
    "operation",
    "command",
    "concurrency",
    "anchor",
];

/// A number from a cell (a JSON number, or text that parses as one).
fn number(cell: Option<&Value>) -> Option<f64> {
    match cell? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The text that names a row: its label columns, `c=` before a concurrency, `vs` before an
/// anchor.
fn label(row: &Row) -> String {
    label_without(row, "")
}

/// The text that names a row (its label columns joined), without the cells of column
/// `left_out`.
pub fn label_without(row: &Row, left_out: &str) -> String {
    LABEL_COLUMNS
        .iter()
        .filter(|column| **column != left_out)
        .filter_map(|column| {
            let cell = row.get(*column)?;
            let text = match cell {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some(match *column {
                "concurrency" => format!("c={text}"),
                "anchor" => format!("vs {text}"),
                _ => text,
            })
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A file name for a section: its number and its first words, lower case.
pub fn file_name(title: &str) -> String {
    let slug: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let words: Vec<&str> = slug.split('-').filter(|w| !w.is_empty()).take(5).collect();
    format!("{}.svg", words.join("-"))
}

/// Draws the charts of `sections` into `dir`; returns each charted section's title and file.
pub fn write(sections: &[Section], dir: &Path) -> Result<Vec<(String, PathBuf)>, Failure> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    // Numbered sections only (not the closing summaries).
    let numbered = sections
        .iter()
        .filter(|s| s.title.starts_with(|c: char| c.is_ascii_digit()));
    for section in numbered {
        let path = dir.join(file_name(&section.title));
        let drawn = if let Some(column) = ratio_column(section) {
            ratios(section, column, &path)?
        } else if section.columns.iter().any(|c| c == "cleanup ms (1%)") {
            cleanup(section, &path)?
        } else if section.columns.iter().any(|c| c == "ops/s") {
            rates(section, &path)?
        } else {
            false
        };
        if drawn {
            written.push((section.title.clone(), path));
        }
    }
    Ok(written)
}

/// One horizontal bar per labelled value; `log` draws the axis logarithmic.
struct Bars<'a> {
    title: &'a str,
    axis: &'a str,
    bars: Vec<(String, f64, bool)>,
    /// Where to draw the "as fast as the anchor" line, if anywhere.
    one: bool,
}

fn draw_bars(path: &Path, mut bars: Bars, log: bool) -> Result<bool, Failure> {
    if bars.bars.is_empty() {
        return Ok(false);
    }
    // The y axis counts upwards: reversed, the table's first row is the top bar.
    bars.bars.reverse();
    let height = 120 + 26 * bars.bars.len() as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = bars.bars.len();
    let max = bars.bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let labels: Vec<String> = bars.bars.iter().map(|b| b.0.clone()).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10) as u32;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(bars.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size((longest * 7).clamp(80, 520));
    let y = (0..n).into_segmented();
    let y_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let bar = |i: usize, value: f64, met: bool, from: f64| {
        let color = if met {
            RGBColor(46, 139, 87)
        } else {
            RGBColor(230, 126, 34)
        };
        let mut rect = Rectangle::new(
            [
                (from, SegmentValue::Exact(i)),
                (value, SegmentValue::Exact(i + 1)),
            ],
            color.filled(),
        );
        rect.set_margin(3, 3, 0, 0);
        rect
    };
    if log {
        let low = bars
            .bars
            .iter()
            .map(|b| b.1)
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min)
            .min(1.0);
        let mut chart = builder.build_cartesian_2d((low..max * 2.0).log_scale(), y)?;
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&y_label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc(bars.axis)
            .disable_y_mesh()
            .draw()?;
        chart.draw_series(
            bars.bars
                .iter()
                .enumerate()
                .map(|(i, b)| bar(i, b.1.max(low), b.2, low)),
        )?;
    } else {
        let mut chart = builder.build_cartesian_2d(0.0..(max.max(1.0) * 1.15), y)?;
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&y_label)
            .x_desc(bars.axis)
            .disable_y_mesh()
            .draw()?;
        chart.draw_series(
            bars.bars
                .iter()
                .enumerate()
                .map(|(i, b)| bar(i, b.1, b.2, 0.0)),
        )?;
        if bars.one {
            chart
                .draw_series(LineSeries::new(
                    [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
                    BLACK.stroke_width(2),
                ))?
                .label("1.0: as fast as the anchor")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
    }
    root.present()?;
    Ok(true)
}

/// The column holding ours ÷ anchor: `ratio`, or one whose name starts so.
fn ratio_column(section: &Section) -> Option<&str> {
    section
        .columns
        .iter()
        .find(|c| c.starts_with("ratio"))
        .map(String::as_str)
}

/// Ours ÷ anchor per row; green where the target was met.
fn ratios(section: &Section, column: &str, path: &Path) -> Result<bool, Failure> {
    let bars = section
        .rows
        .iter()
        .filter_map(|row| {
            let ratio = number(row.get(column))?;
            let met = row
                .get("met")
                .and_then(Value::as_bool)
                .unwrap_or(ratio >= 1.0);
            Some((label(row), ratio, met))
        })
        .collect();
    draw_bars(
        path,
        Bars {
            title: &section.title,
            axis: "ours ÷ anchor (higher is better for ours)",
            bars,
            one: true,
        },
        false,
    )
}

/// Operations per second per row (no anchor), on a log scale.
fn rates(section: &Section, path: &Path) -> Result<bool, Failure> {
    let bars = section
        .rows
        .iter()
        .filter_map(|row| Some((label(row), number(row.get("ops/s"))?, true)))
        .collect();
    draw_bars(
        path,
        Bars {
            title: &section.title,
            axis: "operations per second (log scale)",
            bars,
            one: false,
        },
        true,
    )
}

/// Cleanup time against sessions held, one line per backend, for both expired counts.
fn cleanup(section: &Section, path: &Path) -> Result<bool, Failure> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for row in &section.rows {
        let (Some(Value::String(backend)), Some(sessions)) =
            (row.get("backend"), number(row.get("sessions")))
        else {
            continue;
        };
        for (column, what) in [
            ("cleanup ms (1%)", "1% expired"),
            ("cleanup ms (1,000 expired)", "1,000 expired"),
        ] {
            let Some(ms) = number(row.get(column)) else {
                continue;
            };
            let name = format!("{backend}, {what}");
            match series.iter_mut().find(|(n, _)| *n == name) {
                Some((_, points)) => points.push((sessions, ms)),
                None => series.push((name, vec![(sessions, ms)])),
            }
        }
    }
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::MAX, 0.0f64);
    for (x, y) in points {
        x_max = x_max.max(*x);
        y_min = y_min.min(*y);
        y_max = y_max.max(*y);
    }
    if series.is_empty() || y_max <= 0.0 {
        return Ok(false);
    }
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&section.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (5_000.0..x_max * 2.0).log_scale(),
            ((y_min / 2.0).max(0.01)..y_max * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .x_desc("sessions held (log scale)")
        .y_desc("cleanup ms (log scale)")
        .draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let dashed = name.ends_with("1,000 expired");
        let style = if dashed {
            color.stroke_width(1)
        } else {
            color.stroke_width(3)
        };
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(
            points
                .iter()
                .map(|(x, y)| Circle::new((*x, *y), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

/// The sections of a report as markdown (`report.md`, `bench/REPORT.md`): each `## ` heading and
/// its first table; cells that parse as numbers become numbers, `yes` and `**no**` booleans.
pub fn sections_from_markdown(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    // Whether the current section's first table has ended (later tables are not read).
    let mut done = false;
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            sections.push(Section::new(title.trim(), &[]));
            done = false;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        let cells: Option<Vec<&str>> = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
            .map(|inner| inner.split('|').map(str::trim).collect());
        let Some(cells) = cells else {
            done |= !section.columns.is_empty();
            continue;
        };
        if done {
            continue;
        }
        if section.columns.is_empty() {
            section.columns = cells.iter().map(|c| c.to_string()).collect();
        } else if !cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
            let row: Row = section
                .columns
                .iter()
                .zip(&cells)
                .filter(|(_, cell)| !cell.is_empty())
                .map(|(column, cell)| {
                    let value = match *cell {
                        "yes" => Value::Bool(true),
                        "**no**" => Value::Bool(false),
                        text => match (text.parse::<i64>(), text.parse::<f64>()) {
                            (Ok(n), _) => Value::from(n),
                            (_, Ok(x)) => Value::from(x),
                            _ => Value::from(text),
                        },
                    };
                    (column.clone(), value)
                })
                .collect();
            section.rows.push(row);
        }
    }
    sections.retain(|s| !s.rows.is_empty());
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_report_and_draws_its_charts() -> Result<(), Failure> {
        let report = "# r\n\n## 3. Session store\n\nnote\n\n| backend | concurrency | anchor | ratio | met |\n|---|---|---|---|---|\n| redis | 32 | fred | 0.29 | **no** |\n| memory | 32 | moka | 1.13 | yes |\n\n## 5. Session cleanup at scale\n\n| backend | sessions | cleanup ms (1%) | cleanup ms (1,000 expired) |\n|---|---|---|---|\n| redis | 10000 | 1.05 | 5.09 |\n| redis | 100000 | 5.73 | 5.71 |\n";
        let sections = sections_from_markdown(report);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].rows.len(), 2);
        assert_eq!(sections[0].rows[0]["ratio"], Value::from(0.29));
        assert_eq!(sections[0].rows[0]["met"], Value::Bool(false));
        assert_eq!(label(&sections[0].rows[1]), "memory · c=32 · vs moka");
        let dir = tempfile::tempdir()?;
        let written = write(&sections, dir.path())?;
        assert_eq!(written.len(), 2);
        let svg = std::fs::read_to_string(&written[0].1)?;
        assert!(
            svg.contains("<svg") && svg.contains("redis · c=32 · vs fred"),
            "{svg}"
        );
        assert!(svg.contains("1.0: as fast as the anchor"));
        Ok(())
    }
}
