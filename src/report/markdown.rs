//! Markdown: short enough for a pull-request comment, GitHub-flavoured tables, the curves
//! folded away in <details>.

use super::compare::Comparison;
use super::tables::{self, Table};
use super::ReportData;

/// Pipes inside a cell would split it.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn table(out: &mut String, t: &Table, level: &str) {
    out.push_str(&format!("{level} {}\n\n", t.title));
    for l in &t.lead {
        out.push_str(&format!("{}\n\n", cell(l)));
    }
    if !t.headers.is_empty() {
        let head: Vec<String> = t.headers.iter().map(|h| cell(h)).collect();
        out.push_str(&format!("| {} |\n", head.join(" | ")));
        // The first column is a name, the others are numbers: right-aligned.
        let align: Vec<&str> = (0..t.headers.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        out.push_str(&format!("|{}|\n", align.join("|")));
        for r in &t.rows {
            let row: Vec<String> = r.iter().map(|c| cell(c)).collect();
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out.push('\n');
    }
    for n in &t.notes {
        out.push_str(&format!("- {}\n", cell(n)));
    }
    if !t.notes.is_empty() {
        out.push('\n');
    }
}

pub fn report(r: &ReportData) -> String {
    let mut out = format!("## {}\n\n", r.title);
    let sections = tables::report(r);
    let (main, details): (Vec<&Table>, Vec<&Table>) = sections.iter().partition(|t| {
        !r.curves
            .iter()
            .any(|c| t.title == format!("{} by {}", c.op, c.x_label))
    });
    for t in main {
        table(&mut out, t, "###");
    }
    if !details.is_empty() {
        out.push_str("<details><summary>Latency curves in detail</summary>\n\n");
        for t in details {
            table(&mut out, t, "####");
        }
        out.push_str("</details>\n");
    }
    out
}

pub fn comparison(c: &Comparison) -> String {
    let mut out = String::from("## scimload comparison\n\n");
    for t in tables::comparison(c) {
        table(&mut out, &t, "###");
    }
    out
}
