//! One self-contained HTML file: inline CSS and inline SVG charts, no scripts and no
//! network access, so it opens from a CI artifact or an e-mail attachment as it is.

use super::charts::{self, Chart};
use super::compare::Comparison;
use super::tables::{self, Table};
use super::{ReportData, ReportError, SpectrumPoint};

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
p.lead { margin: .3rem 0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f6f6; }
ul.notes { font-size: .9rem; color: #444; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
.wide { overflow-x: auto; }
.bad { color: #b00; font-weight: 600; }
.good { color: #080; }
footer { margin-top: 3rem; font-size: .8rem; color: #777; }
"#;

/// Escapes text for HTML content and attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn class_of(cell: &str) -> &'static str {
    if cell.starts_with("FAIL") || cell == "MISSED" || cell == "REGRESSION" {
        " class=\"bad\""
    } else if cell == "pass" || cell == "ok" || cell == "better" {
        " class=\"good\""
    } else {
        ""
    }
}

fn table(out: &mut String, t: &Table) {
    out.push_str(&format!("<section>\n<h2>{}</h2>\n", esc(&t.title)));
    for l in &t.lead {
        out.push_str(&format!("<p class=\"lead\">{}</p>\n", esc(l)));
    }
    if !t.headers.is_empty() {
        out.push_str("<div class=\"wide\"><table>\n<tr>");
        for h in &t.headers {
            out.push_str(&format!("<th>{}</th>", esc(h)));
        }
        out.push_str("</tr>\n");
        for r in &t.rows {
            out.push_str("<tr>");
            for c in r {
                out.push_str(&format!("<td{}>{}</td>", class_of(c), esc(c)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table></div>\n");
    }
    if !t.notes.is_empty() {
        out.push_str("<ul class=\"notes\">\n");
        for n in &t.notes {
            out.push_str(&format!("<li>{}</li>\n", esc(n)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn figure(out: &mut String, c: &Chart) {
    out.push_str(&format!(
        "<figure class=\"chart\" data-title=\"{}\" aria-label=\"{}\">\n{}\n</figure>\n",
        esc(&c.title),
        esc(&c.title),
        // plotters writes an XML prolog-free <svg>; it can go inline as it is.
        c.svg
    ));
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}<footer>Written by {tool}. Percentiles come from HdrHistogram interval logs; merged shards add histograms, never average percentiles.</footer>\n</body>\n</html>\n",
        t = esc(title),
        tool = concat!("scimload ", env!("CARGO_PKG_VERSION")),
    )
}

pub fn report(r: &ReportData) -> Result<String, ReportError> {
    let mut body = String::new();
    let sections = tables::report(r);
    let charts = charts::all(r)?;
    let mut it = sections.iter();
    // Overview and operations first, then the charts, then the rest.
    for t in it.by_ref().take(2) {
        table(&mut body, t);
    }
    if !charts.is_empty() {
        body.push_str("<section>\n<h2>Charts</h2>\n");
        for c in &charts {
            figure(&mut body, c);
        }
        body.push_str("</section>\n");
    }
    for t in it {
        table(&mut body, t);
    }
    Ok(page(&r.title, &body))
}

pub fn comparison(
    c: &Comparison,
    base: &ReportData,
    new: &ReportData,
) -> Result<String, ReportError> {
    let mut body = String::new();
    for t in tables::comparison(c) {
        table(&mut body, &t);
    }
    body.push_str("<section>\n<h2>Charts</h2>\n");
    for b in &base.operations {
        let Some(n) = new.operations.iter().find(|o| o.name == b.name) else {
            continue;
        };
        let series: Vec<(String, &[SpectrumPoint])> = vec![
            ("base".into(), b.spectrum.as_slice()),
            ("new".into(), n.spectrum.as_slice()),
        ];
        figure(
            &mut body,
            &charts::spectrum(&format!("{}: latency by percentile", b.name), &series)?,
        );
    }
    body.push_str("</section>\n");
    Ok(page("scimload comparison", &body))
}
