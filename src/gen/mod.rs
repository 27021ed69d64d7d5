//! `scimload gen`: deterministic synthetic HR exports, streamed in constant memory.
//!
//! Row i depends only on (seed, i) and a few fixed-size tables, so 10 million rows take
//! the memory of one. The content is shaped like real exports: a Workday worker report
//! (CSV), a BambooHR employee list (JSON array) or plain NDJSON; names with accents, CJK and
//! right-to-left scripts; emails deduplicated the way HR systems do (john.smith,
//! john.smith2, …); a manager tree; departments and locations of very unequal sizes;
//! terminated workers. `--dirty RATE` injects the defects real exports carry and writes a
//! manifest of them, so tests can check the rejects row by row.

pub mod names;

use std::io::{self, Write};

use names::{DEPARTMENTS, DOMAIN, FIRST, LAST, LOCATIONS, TITLES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Workday,
    Bamboohr,
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
    Json,
}

impl Shape {
    /// The format a real system of this shape exports.
    pub fn default_format(self) -> Format {
        match self {
            Shape::Workday => Format::Csv,
            Shape::Bamboohr => Format::Json,
            Shape::Generic => Format::Ndjson,
        }
    }
}

/// What a worker record holds, whatever the column is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    EmployeeId,
    EmployeeNumber,
    First,
    Last,
    Preferred,
    Display,
    Email,
    Phone,
    Title,
    Department,
    Division,
    CostCenter,
    Manager,
    Location,
    HireDate,
    Status,
    ActiveBool,
    WorkerType,
}

fn columns(shape: Shape) -> &'static [(&'static str, Field)] {
    use Field::*;
    match shape {
        Shape::Workday => &[
            ("Employee_ID", EmployeeId),
            ("Legal_First_Name", First),
            ("Legal_Last_Name", Last),
            ("Preferred_Name", Preferred),
            ("Email_Work", Email),
            ("Phone_Work", Phone),
            ("Business_Title", Title),
            ("Supervisory_Organization", Department),
            ("Cost_Center", CostCenter),
            ("Manager_Employee_ID", Manager),
            ("Location", Location),
            ("Hire_Date", HireDate),
            ("Worker_Status", Status),
            ("Worker_Type", WorkerType),
        ],
        Shape::Bamboohr => &[
            ("id", EmployeeId),
            ("employeeNumber", EmployeeNumber),
            ("firstName", First),
            ("lastName", Last),
            ("preferredName", Preferred),
            ("displayName", Display),
            ("workEmail", Email),
            ("mobilePhone", Phone),
            ("jobTitle", Title),
            ("department", Department),
            ("division", Division),
            ("location", Location),
            ("supervisorEid", Manager),
            ("hireDate", HireDate),
            ("status", Status),
        ],
        Shape::Generic => &[
            ("employee_id", EmployeeId),
            ("given_name", First),
            ("family_name", Last),
            ("preferred_name", Preferred),
            ("display_name", Display),
            ("email", Email),
            ("phone", Phone),
            ("title", Title),
            ("department", Department),
            ("location", Location),
            ("cost_center", CostCenter),
            ("manager_id", Manager),
            ("start_date", HireDate),
            ("active", ActiveBool),
            ("employment_type", WorkerType),
        ],
    }
}

/// The header of a shape, in order.
pub fn header(shape: Shape) -> Vec<&'static str> {
    columns(shape).iter().map(|(n, _)| *n).collect()
}

/// The generator of every seeded file.
pub use crate::rng::Rng;

/// A defect `--dirty` can inject, and the reject it must cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    MissingRequired,
    MalformedEmail,
    DuplicateUserName,
    DuplicateEmployeeId,
    OverlongValue,
    BadDate,
    StrayQuote,
    WrongFieldCount,
    InvalidUtf8,
}

impl Defect {
    pub fn name(self) -> &'static str {
        match self {
            Defect::MissingRequired => "missing_required",
            Defect::MalformedEmail => "malformed_email",
            Defect::DuplicateUserName => "duplicate_username",
            Defect::DuplicateEmployeeId => "duplicate_employee_id",
            Defect::OverlongValue => "overlong_value",
            Defect::BadDate => "bad_date",
            Defect::StrayQuote => "stray_quote",
            Defect::WrongFieldCount => "wrong_field_count",
            Defect::InvalidUtf8 => "invalid_utf8",
        }
    }
    const ALL: [Defect; 9] = [
        Defect::MissingRequired,
        Defect::MalformedEmail,
        Defect::DuplicateUserName,
        Defect::DuplicateEmployeeId,
        Defect::OverlongValue,
        Defect::BadDate,
        Defect::StrayQuote,
        Defect::WrongFieldCount,
        Defect::InvalidUtf8,
    ];
}

#[derive(Debug, Clone)]
pub struct GenConfig {
    pub rows: u64,
    pub shape: Shape,
    pub format: Format,
    pub seed: u64,
    /// Fraction of rows given one defect.
    pub dirty: f64,
}

/// One generated worker, before it is written in a shape.
#[derive(Debug, Default, Clone)]
struct Worker {
    id: String,
    number: String,
    first: String,
    last: String,
    preferred: String,
    display: String,
    email: String,
    phone: String,
    title: String,
    department: &'static str,
    division: &'static str,
    cost_center: String,
    manager: String,
    location: &'static str,
    hire_date: String,
    status: &'static str,
    active: bool,
    worker_type: &'static str,
}

/// A line of the defect manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestEntry {
    /// 1-based data row (the header is not a row).
    pub row: u64,
    pub defect: &'static str,
    pub column: &'static str,
    /// For duplicates: the earlier row whose value was reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clashes_with: Option<u64>,
}

/// The first index in `list` with the same romanised form as `list[i]`.
fn canonical(list: &[(&str, &str)], i: usize) -> usize {
    list.iter().position(|(_, a)| *a == list[i].1).unwrap_or(i)
}

fn employee_id(i: u64) -> String {
    format!("E{:07}", 100_000 + i)
}

/// `YYYY-MM-DD` for days since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// The generator: call [`Generator::write_all`] once.
pub struct Generator {
    cfg: GenConfig,
    /// Occurrences of each (first, last) pair so far: email collisions resolved as HR
    /// systems do, in memory bounded by the name lists, not the row count.
    pair_counts: Vec<u32>,
    /// Recent clean rows (row, email, id) to copy for duplicate defects.
    recent: Vec<(u64, String, String)>,
    pub manifest: Vec<ManifestEntry>,
}

impl Generator {
    pub fn new(cfg: GenConfig) -> Self {
        Generator {
            cfg,
            pair_counts: vec![0; FIRST.len() * LAST.len()],
            recent: Vec::with_capacity(64),
            manifest: Vec::new(),
        }
    }

    fn worker(&mut self, i: u64) -> Worker {
        let mut r = Rng::new(self.cfg.seed ^ i.wrapping_mul(0xA076_1D64_78BD_642F));
        let fi = r.skewed(FIRST.len());
        let li = r.skewed(LAST.len());
        let (first, first_ascii) = FIRST[fi];
        let (last, last_ascii) = LAST[li];
        // Count by the romanised pair: "Wei" and "伟" share an email base.
        let (cf, cl) = (canonical(FIRST, fi), canonical(LAST, li));
        let n = &mut self.pair_counts[cf * LAST.len() + cl];
        *n += 1;
        let email = if *n == 1 {
            format!("{first_ascii}.{last_ascii}@{DOMAIN}")
        } else {
            format!("{first_ascii}.{last_ascii}{n}@{DOMAIN}")
        };
        let preferred = if r.f64() < 0.12 {
            FIRST[r.skewed(FIRST.len())].0.to_string()
        } else {
            String::new()
        };
        let display = format!(
            "{} {last}",
            if preferred.is_empty() {
                first
            } else {
                &preferred
            }
        );
        let status_roll = r.f64();
        let (status, active) = match (self.cfg.shape, status_roll) {
            (_, x) if x < 0.04 => (
                if self.cfg.shape == Shape::Workday {
                    "Terminated"
                } else {
                    "Inactive"
                },
                false,
            ),
            (Shape::Workday, x) if x < 0.06 => ("On Leave", true),
            _ => ("Active", true),
        };
        let dept = r.skewed(DEPARTMENTS.len());
        Worker {
            id: employee_id(i),
            number: format!("{}", 10_000 + i),
            first: first.to_string(),
            last: last.to_string(),
            preferred,
            display,
            email,
            phone: format!("+1 555 {:03} {:04}", r.below(1000), r.below(10_000)),
            title: TITLES[r.skewed(TITLES.len())].to_string(),
            department: DEPARTMENTS[dept],
            division: DEPARTMENTS[dept / 6],
            cost_center: format!("CC-{}", 1000 + r.skewed(60)),
            // An 8-ary manager tree: row 0 reports to no one.
            manager: if i == 0 {
                String::new()
            } else {
                employee_id((i - 1) / 8)
            },
            location: LOCATIONS[r.skewed(LOCATIONS.len())],
            hire_date: civil(9131 + r.below(11_000) as i64),
            status,
            active,
            worker_type: if r.f64() < 0.1 {
                "Contractor"
            } else {
                "Employee"
            },
        }
    }

    fn value(w: &Worker, f: Field) -> &str {
        match f {
            Field::EmployeeId => &w.id,
            Field::EmployeeNumber => &w.number,
            Field::First => &w.first,
            Field::Last => &w.last,
            Field::Preferred => &w.preferred,
            Field::Display => &w.display,
            Field::Email => &w.email,
            Field::Phone => &w.phone,
            Field::Title => &w.title,
            Field::Department => w.department,
            Field::Division => w.division,
            Field::CostCenter => &w.cost_center,
            Field::Manager => &w.manager,
            Field::Location => w.location,
            Field::HireDate => &w.hire_date,
            Field::Status => w.status,
            Field::ActiveBool => {
                if w.active {
                    "true"
                } else {
                    "false"
                }
            }
            Field::WorkerType => w.worker_type,
        }
    }

    fn column_of(&self, f: Field) -> &'static str {
        columns(self.cfg.shape)
            .iter()
            .find(|(_, x)| *x == f)
            .map(|(n, _)| *n)
            .unwrap_or("")
    }

    /// Applies a defect to `w`; returns the manifest entry, or `None` if it cannot apply
    /// to this row (no earlier clean row to duplicate yet).
    fn spoil(&mut self, w: &mut Worker, row: u64, d: Defect) -> Option<ManifestEntry> {
        let mut clashes_with = None;
        let column = match d {
            Defect::MissingRequired => {
                w.last.clear();
                w.display = w.display.split(' ').next().unwrap_or("").to_string();
                self.column_of(Field::Last)
            }
            Defect::MalformedEmail => {
                w.email = w.email.replacen('@', "@@", 1).replace(".com", "");
                self.column_of(Field::Email)
            }
            Defect::DuplicateUserName => {
                let (r, email, _) = self
                    .recent
                    .get(self.recent.len().checked_sub(1 + (row as usize % 7))?)?
                    .clone();
                w.email = email;
                clashes_with = Some(r);
                self.column_of(Field::Email)
            }
            Defect::DuplicateEmployeeId => {
                let (r, _, id) = self
                    .recent
                    .get(self.recent.len().checked_sub(1 + (row as usize % 5))?)?
                    .clone();
                w.id = id;
                clashes_with = Some(r);
                self.column_of(Field::EmployeeId)
            }
            Defect::OverlongValue => {
                w.title = "Senior Principal Distinguished ".repeat(10);
                self.column_of(Field::Title)
            }
            Defect::BadDate => {
                w.hire_date = "2021-02-30".into();
                self.column_of(Field::HireDate)
            }
            // Stray quotes, field counts and encoding are written by the format writers.
            Defect::StrayQuote => self.column_of(Field::First),
            Defect::WrongFieldCount => "",
            Defect::InvalidUtf8 => self.column_of(Field::First),
        };
        Some(ManifestEntry {
            row,
            defect: d.name(),
            column,
            clashes_with,
        })
    }

    /// Writes the whole export. Returns the number of data rows written.
    pub fn write_all(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        let cols = columns(self.cfg.shape);
        let mut line: Vec<u8> = Vec::with_capacity(512);
        match self.cfg.format {
            Format::Csv => {
                line.extend_from_slice(header(self.cfg.shape).join(",").as_bytes());
                line.extend_from_slice(b"\r\n");
                out.write_all(&line)?;
            }
            Format::Json => out.write_all(b"[\n")?,
            Format::Ndjson => {}
        }
        for i in 0..self.cfg.rows {
            let row = i + 1;
            let mut w = self.worker(i);
            let mut roll = Rng::new(self.cfg.seed.rotate_left(17) ^ row);
            let defect = if self.cfg.dirty > 0.0 && roll.f64() < self.cfg.dirty {
                let d = Defect::ALL[roll.below(Defect::ALL.len())];
                self.spoil(&mut w, row, d).map(|m| {
                    self.manifest.push(m);
                    d
                })
            } else {
                None
            };
            if defect.is_none() {
                if self.recent.len() == 64 {
                    self.recent.remove(0);
                }
                self.recent.push((row, w.email.clone(), w.id.clone()));
            }
            line.clear();
            match self.cfg.format {
                Format::Csv => write_csv(&mut line, cols, &w, defect),
                Format::Ndjson | Format::Json => {
                    write_json(&mut line, cols, &w, defect, self.cfg.format)
                }
            }
            if self.cfg.format == Format::Json && i + 1 < self.cfg.rows {
                line.push(b',');
            }
            line.extend_from_slice(if self.cfg.format == Format::Csv {
                b"\r\n"
            } else {
                b"\n"
            });
            out.write_all(&line)?;
        }
        if self.cfg.format == Format::Json {
            out.write_all(b"]\n")?;
        }
        out.flush()?;
        Ok(self.cfg.rows)
    }
}

fn csv_field(out: &mut Vec<u8>, v: &[u8]) {
    if v.iter().any(|&c| matches!(c, b',' | b'"' | b'\r' | b'\n')) {
        out.push(b'"');
        for &c in v {
            if c == b'"' {
                out.push(b'"');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

/// Raw bytes for the first name of a defective row, if the defect lives there.
fn first_name_bytes(w: &Worker, defect: Option<Defect>) -> Option<Vec<u8>> {
    let mut b = w.first.as_bytes().to_vec();
    // After the first character, so a multi-byte first letter stays whole.
    let at = w.first.chars().next().map_or(0, char::len_utf8);
    match defect? {
        // A quote in the middle of an unquoted field: the hand-edited export classic.
        Defect::StrayQuote => b.insert(at, b'"'),
        Defect::InvalidUtf8 => b.insert(at, 0xff),
        _ => return None,
    }
    Some(b)
}

fn write_csv(out: &mut Vec<u8>, cols: &[(&str, Field)], w: &Worker, defect: Option<Defect>) {
    let n = if defect == Some(Defect::WrongFieldCount) {
        cols.len() - 1
    } else {
        cols.len()
    };
    for (k, (_, f)) in cols.iter().take(n).enumerate() {
        if k > 0 {
            out.push(b',');
        }
        match (f, first_name_bytes(w, defect)) {
            // Written raw, unquoted: that is the defect.
            (Field::First, Some(raw)) => out.extend_from_slice(&raw),
            _ => csv_field(out, Generator::value(w, *f).as_bytes()),
        }
    }
}

fn write_json(
    out: &mut Vec<u8>,
    cols: &[(&str, Field)],
    w: &Worker,
    defect: Option<Defect>,
    format: Format,
) {
    if defect == Some(Defect::WrongFieldCount) {
        // NDJSON: a line cut short; a JSON array: an element that is not an object.
        match format {
            Format::Ndjson => {
                out.extend_from_slice(
                    format!("{{\"{}\":\"{}\",\"{}\":\"", cols[0].0, w.id, cols[1].0).as_bytes(),
                );
            }
            _ => out.extend_from_slice(format!("[\"{}\", \"{}\"]", w.id, w.email).as_bytes()),
        }
        return;
    }
    out.push(b'{');
    for (k, (name, f)) in cols.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(serde_json::to_string(name).unwrap_or_default().as_bytes());
        out.push(b':');
        match (f, first_name_bytes(w, defect)) {
            (Field::First, Some(raw)) if defect == Some(Defect::InvalidUtf8) => {
                out.push(b'"');
                out.extend_from_slice(&raw);
                out.push(b'"');
            }
            (Field::First, Some(_)) => {
                // In JSON a stray quote is an escaped quote inside the name.
                let v = format!(
                    "{}\"{}",
                    &w.first[..w.first.chars().next().map_or(0, char::len_utf8)],
                    &w.first[w.first.chars().next().map_or(0, char::len_utf8)..]
                );
                out.extend_from_slice(serde_json::to_string(&v).unwrap_or_default().as_bytes());
            }
            (Field::ActiveBool, _) => out.extend_from_slice(Generator::value(w, *f).as_bytes()),
            _ => out.extend_from_slice(
                serde_json::to_string(Generator::value(w, *f))
                    .unwrap_or_default()
                    .as_bytes(),
            ),
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), "1970-01-01");
        assert_eq!(civil(19_723), "2024-01-01");
        assert_eq!(civil(11_016), "2000-02-29");
    }

    #[test]
    fn same_seed_same_bytes_and_dirty_rows_are_listed() {
        let run = |seed| {
            let mut g = Generator::new(GenConfig {
                rows: 500,
                shape: Shape::Workday,
                format: Format::Csv,
                seed,
                dirty: 0.1,
            });
            let mut out = Vec::new();
            g.write_all(&mut out).unwrap();
            (out, g.manifest)
        };
        let (a, ma) = run(7);
        let (b, _) = run(7);
        assert_eq!(a, b);
        assert!((25..=80).contains(&ma.len()), "{}", ma.len());
        let (c, _) = run(8);
        assert_ne!(a, c);
    }
}
