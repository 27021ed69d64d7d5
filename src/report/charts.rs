//! The report's charts, drawn with plotters into SVG strings that the HTML report inlines
//! (no scripts, no network): the percentile spectrum on HdrHistogram's log axis, latency
//! and throughput over time, the knee (offered vs achieved rate, p99 vs rate against the
//! SLO), latency against group size and page position, and errors over time.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::{Curve, ReportData, ReportError, SpectrumPoint};
use crate::results::knee::KneeResult;

const SIZE: (u32, u32) = (880, 400);
const FONT: &str = "sans-serif";

/// A chart: its title (also the figure caption in HTML) and its SVG.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub svg: String,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A named series of a chart: its label, how to read y from a point, its colour.
type Line<T> = (&'static str, fn(&T) -> f64, RGBColor);

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const SLO_RED: RGBColor = RGBColor(200, 0, 0);

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

fn draw(
    title: &str,
    f: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<Chart, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let run = || -> DrawResult {
            root.fill(&WHITE)?;
            f(&root)?;
            root.present()?;
            Ok(())
        };
        run().map_err(|e| ReportError::Chart(title.to_string(), e.to_string()))?;
    }
    Ok(Chart {
        title: title.to_string(),
        svg,
    })
}

/// A chart in a drawing area: its title as caption, room for axis labels.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64);
    b
}

/// Seconds from the window's start to the end of its last interval.
fn span_seconds(r: &ReportData) -> f64 {
    r.intervals
        .last()
        .map_or(1.0, |i| i.t + r.run.interval_ms as f64 / 1000.0)
}

/// The legend's mark of a line series.
fn mark(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
}

/// The legend box, on a white background that lets the lines show through.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    at: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Room above and below a range of positive values, for a log axis.
fn log_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let lo = (lo.max(0.001) / 1.5).max(0.001);
    let hi = (hi.max(lo * 10.0)) * 1.5;
    lo..hi
}

/// HdrHistogram's percentile axis: x = log10(1 / (1 − q)), so 90%, 99%, 99.9% … are
/// evenly spaced and the tail gets the room it deserves.
fn spectrum_x(p: &SpectrumPoint) -> f64 {
    if p.percentile >= 100.0 {
        6.0
    } else {
        (-(1.0 - p.percentile / 100.0).log10()).min(5.5)
    }
}

fn spectrum_label(x: &f64) -> String {
    match x.round() as i64 {
        _ if (x - x.round()).abs() > 1e-6 => String::new(),
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        5 => "99.999%".into(),
        _ => "max".into(),
    }
}

/// Every numeric axis label: a round number with at most three significant digits and
/// no trailing zeros. plotters prints ticks as the floats it computed, so a log axis
/// showed "0.30000000000000004" and linear ones "10000.0".
fn tick(v: &f64) -> String {
    let v = *v;
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Latency by percentile, one line per series (operations, or two runs compared).
pub fn spectrum(title: &str, series: &[(String, &[SpectrumPoint])]) -> Result<Chart, ReportError> {
    let values = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.ms));
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    draw(title, |root| {
        let mut chart =
            frame(root, title).build_cartesian_2d(0f64..6f64, log_range(lo, hi).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(7)
            .x_label_formatter(&spectrum_label)
            .y_label_formatter(&tick)
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .draw()?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (spectrum_x(p), p.ms.max(0.001))),
                    c.stroke_width(2),
                ))?
                .label(name.as_str())
                .legend(mark(c));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// p50, p99 and max per interval, with throughput on the right axis.
pub fn over_time(r: &ReportData) -> Result<Chart, ReportError> {
    let title = "Latency and throughput over time";
    let iv = &r.intervals;
    let tmax = span_seconds(r);
    let ymax = iv.iter().map(|i| i.max_ms).fold(0.0, f64::max).max(0.01) * 1.1;
    let rmax = iv.iter().map(|i| i.per_second).fold(0.0, f64::max).max(1.0) * 1.1;
    draw(title, |root| {
        let mut chart = frame(root, title)
            .right_y_label_area_size(64)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax)?
            .set_secondary_coord(0f64..tmax, 0f64..rmax);
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc("seconds")
            .y_desc("latency (ms)")
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_label_formatter(&tick)
            .y_desc("requests/s")
            .draw()?;
        let lines: [Line<super::Interval>; 3] = [
            ("p50", |i| i.p50_ms, colour(0)),
            ("p99", |i| i.p99_ms, colour(1)),
            ("max", |i| i.max_ms, colour(3)),
        ];
        for (name, f, c) in lines {
            chart
                .draw_series(LineSeries::new(
                    iv.iter().map(|i| (i.t, f(i))),
                    c.stroke_width(2),
                ))?
                .label(name)
                .legend(mark(c));
        }
        let g = colour(2);
        chart
            .draw_secondary_series(LineSeries::new(
                iv.iter().map(|i| (i.t, i.per_second)),
                g.mix(0.7).stroke_width(1),
            ))?
            .label("requests/s (right)")
            .legend(mark(g));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Offered against achieved rate, and the SLO percentile against rate.
pub fn knee(k: &KneeResult, slo_ms: f64) -> Result<Chart, ReportError> {
    let title = "Knee: offered vs achieved rate, latency vs rate";
    let mut steps = k.steps.clone();
    steps.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    let rmax = steps
        .iter()
        .map(|s| s.offered.max(s.achieved))
        .fold(1.0, f64::max)
        * 1.1;
    let lmax = steps
        .iter()
        .map(|s| s.slo_ms)
        .fold(slo_ms, f64::max)
        .max(0.01);
    let pname = k.slo.split(['<', '>']).next().unwrap_or("p99").to_string();
    draw(title, |root| {
        let root = root.titled(title, (FONT, 20))?;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        let mut a = ChartBuilder::on(&left)
            .caption("offered vs achieved (requests/s)", (FONT, 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..rmax, 0f64..rmax)?;
        a.configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc("offered")
            .y_desc("achieved")
            .draw()?;
        a.draw_series(LineSeries::new(
            [(0.0, 0.0), (rmax, rmax)],
            BLACK.mix(0.3).stroke_width(1),
        ))?;
        a.draw_series(LineSeries::new(
            steps.iter().map(|s| (s.offered, s.achieved)),
            colour(0).stroke_width(2),
        ))?;
        a.draw_series(steps.iter().map(|s| {
            let c = if s.passed { colour(2) } else { SLO_RED };
            Circle::new((s.offered, s.achieved), 4, c.filled())
        }))?;
        let mut b = ChartBuilder::on(&right)
            .caption(
                format!("{pname} vs offered rate (SLO {})", k.slo),
                (FONT, 15),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..rmax, log_range(0.05, lmax).log_scale())?;
        b.configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc("offered (requests/s)")
            .y_desc(format!("{pname} (ms)"))
            .draw()?;
        b.draw_series(LineSeries::new(
            [(0.0, slo_ms), (rmax, slo_ms)],
            SLO_RED.stroke_width(2),
        ))?
        .label(format!("SLO {slo_ms} ms"))
        .legend(mark(SLO_RED));
        b.draw_series(LineSeries::new(
            steps.iter().map(|s| (s.offered, s.slo_ms.max(0.05))),
            colour(1).stroke_width(2),
        ))?
        .label(pname.clone())
        .legend(mark(colour(1)));
        b.draw_series(steps.iter().map(|s| {
            let c = if s.passed { colour(2) } else { SLO_RED };
            Circle::new((s.offered, s.slo_ms.max(0.05)), 4, c.filled())
        }))?;
        legend(&mut b, SeriesLabelPosition::UpperLeft)
    })
}

/// Latency against a request property: group size, page position.
pub fn curve(c: &Curve, slo_ms: Option<f64>) -> Result<Chart, ReportError> {
    let title = format!("{} latency against {}", c.op, c.x_label);
    let xmax = c.points.iter().map(|p| p.x).max().unwrap_or(1) as f64 * 1.05;
    let ymax = c
        .points
        .iter()
        .map(|p| p.max_ms)
        .fold(0.0, f64::max)
        .max(0.01)
        * 1.1;
    let ymax = slo_ms.map_or(ymax, |s| {
        if s < ymax * 3.0 {
            ymax.max(s * 1.1)
        } else {
            ymax
        }
    });
    draw(&title, |root| {
        let mut chart = frame(root, &title).build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc(c.x_label.as_str())
            .y_desc("latency (ms)")
            .draw()?;
        let lines: [Line<crate::metrics::stats::CurvePoint>; 3] = [
            ("p50", |p| p.p50_ms, colour(0)),
            ("p99", |p| p.p99_ms, colour(1)),
            ("max", |p| p.max_ms, colour(7)),
        ];
        for (name, f, col) in lines {
            chart
                .draw_series(LineSeries::new(
                    c.points.iter().map(|p| (p.x as f64, f(p))),
                    col.stroke_width(2),
                ))?
                .label(name)
                .legend(mark(col));
            chart.draw_series(
                c.points
                    .iter()
                    .map(|p| Circle::new((p.x as f64, f(p)), 3, col.filled())),
            )?;
        }
        if let Some(s) = slo_ms.filter(|s| *s <= ymax) {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, s), (xmax, s)],
                    SLO_RED.stroke_width(2),
                ))?
                .label(format!("SLO {s} ms"))
                .legend(mark(SLO_RED));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Error answers per interval, one line per status.
pub fn errors_over_time(r: &ReportData) -> Result<Chart, ReportError> {
    let title = "Errors by status over time";
    let mut statuses: Vec<&String> = r.intervals.iter().flat_map(|i| i.errors.keys()).collect();
    statuses.sort();
    statuses.dedup();
    let tmax = span_seconds(r);
    let ymax = r
        .intervals
        .iter()
        .flat_map(|i| i.errors.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    draw(title, |root| {
        let mut chart = frame(root, title).build_cartesian_2d(0f64..tmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc("seconds")
            .y_desc("errors per interval")
            .draw()?;
        for (k, status) in statuses.iter().enumerate() {
            let c = colour(k + 3);
            chart
                .draw_series(LineSeries::new(
                    r.intervals
                        .iter()
                        .map(|i| (i.t, i.errors.get(*status).copied().unwrap_or(0) as f64)),
                    c.stroke_width(2),
                ))?
                .label(status.as_str())
                .legend(mark(c));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Intervals a chart over time needs to draw a line.
pub const MIN_INTERVALS: usize = 3;

/// Every chart that applies to the report, in reading order.
pub fn all(r: &ReportData) -> Result<Vec<Chart>, ReportError> {
    let mut out = Vec::new();
    let series: Vec<(String, &[SpectrumPoint])> = r
        .operations
        .iter()
        .filter(|o| !o.spectrum.is_empty())
        .map(|o| (o.name.clone(), o.spectrum.as_slice()))
        .collect();
    if !series.is_empty() {
        out.push(spectrum("Latency by percentile", &series)?);
    }
    // A line over time needs a few intervals: a run shorter than that (the README's
    // 0.2 s quick start has one 1 s interval) gets no such chart, not an empty frame.
    if r.intervals.len() >= MIN_INTERVALS {
        out.push(over_time(r)?);
    }
    if let Some(k) = r.knee.as_ref().filter(|k| !k.steps.is_empty()) {
        out.push(knee(k, r.capacity.slo_ms)?);
    }
    for c in r.curves.iter().filter(|c| !c.points.is_empty()) {
        let slo = c
            .name
            .ends_with(".by_group_size")
            .then_some(r.capacity.slo_ms);
        out.push(curve(c, slo)?);
    }
    if r.intervals.len() >= MIN_INTERVALS && r.intervals.iter().any(|i| !i.errors.is_empty()) {
        out.push(errors_over_time(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_are_round_numbers() {
        for (v, want) in [
            (0.30000000000000004, "0.3"),
            (1e-12, "0"),
            (-1.1102230246251565e-16, "0"),
            (0.001, "0.001"),
            (1.0, "1"),
            (2.5, "2.5"),
            (12.3456, "12.3"),
            (0.0123456, "0.0123"),
            (10000.0, "10000"),
            (70000.00000000001, "70000"),
        ] {
            assert_eq!(tick(&v), want, "{v}");
        }
    }
}
