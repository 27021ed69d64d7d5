//! The terminal writer: the same sections as the other writers, as aligned plain text.

use super::compare::Comparison;
use super::tables::{self, Table};
use super::ReportData;

fn table(out: &mut String, t: &Table) {
    out.push_str(&format!("{}\n", t.title));
    for l in &t.lead {
        out.push_str(&format!("  {l}\n"));
    }
    if !t.headers.is_empty() {
        let widths: Vec<usize> = (0..t.headers.len())
            .map(|i| {
                t.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .chain(std::iter::once(&t.headers[i]))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("  ");
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(c.chars().count());
                if i == 0 {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str("  ");
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                }
            }
            s.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&t.headers));
        for r in &t.rows {
            out.push_str(&line(r));
        }
    }
    for n in &t.notes {
        out.push_str(&format!("  · {n}\n"));
    }
    out.push('\n');
}

pub fn report(r: &ReportData) -> String {
    let mut out = format!("{}\n\n", r.title);
    for t in tables::report(r) {
        table(&mut out, &t);
    }
    out
}

pub fn comparison(c: &Comparison) -> String {
    let mut out = String::new();
    for t in tables::comparison(c) {
        table(&mut out, &t);
    }
    out
}
