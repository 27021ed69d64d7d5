//! Mapping HR records to SCIM Users and Groups: a [`MappingSpec`] (TOML) is compiled
//! against the columns of a file into a [`Mapping`], which turns each record into a
//! [`MappedUser`] (SCIM JSON, group names, manager reference) or a [`Rejected`] row that
//! says which field is wrong and why.

pub(crate) mod build;
pub(crate) mod bytes;
pub(crate) mod custom;
mod eval;
pub mod presets;
pub(crate) mod spec;
pub(crate) mod target;
pub(crate) mod template;
mod user;

use std::hash::BuildHasher;

pub use spec::MappingSpec;
use target::{Place, TARGETS};
pub use template::{Col, Record};
use template::{Template, Transform};
pub use user::{MappedUser, GROUP_SEP};

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read the mapping file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the mapping file {path} is not valid: {detail}")]
    Parse { path: String, detail: String },
    #[error("the mapping refers to column '{column}', which the file does not have; its columns are: {available}")]
    UnknownColumn { column: String, available: String },
    #[error("'{0}' is not an attribute a mapping can set; use one of: {1}")]
    UnknownTarget(String, String),
    #[error("in template '{template}': {detail}")]
    Template { template: String, detail: String },
    #[error("unknown transform '{0}'; use lowercase, uppercase or trim")]
    Transform(String),
    #[error("the mapping must set {0}: every SCIM user needs it")]
    Missing(&'static str),
    #[error("unknown preset '{0}'; use workday, bamboohr or generic")]
    Preset(String),
}

/// Why a row was rejected, in a form that can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    Unreadable,
    WrongFieldCount,
    InvalidUtf8,
    BrokenJson,
    NotAnObject,
    MissingRequired,
    InvalidCharacter,
    InvalidEmail,
    TooLong,
    InvalidDate,
    InvalidValue,
    DuplicateUserName,
    DuplicateExternalId,
    /// A JSON value of the wrong kind (an object or array where text is expected).
    WrongType,
    /// A JSON object with the same key twice: parsers disagree on which value wins.
    DuplicateKey,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Unreadable => "unreadable",
            RejectCode::WrongFieldCount => "wrong_field_count",
            RejectCode::InvalidUtf8 => "invalid_utf8",
            RejectCode::BrokenJson => "broken_json",
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::MissingRequired => "missing_required",
            RejectCode::InvalidCharacter => "invalid_character",
            RejectCode::InvalidEmail => "invalid_email",
            RejectCode::TooLong => "too_long",
            RejectCode::InvalidDate => "invalid_date",
            RejectCode::InvalidValue => "invalid_value",
            RejectCode::DuplicateUserName => "duplicate_username",
            RejectCode::DuplicateExternalId => "duplicate_external_id",
            RejectCode::WrongType => "wrong_type",
            RejectCode::DuplicateKey => "duplicate_key",
        }
    }
}

/// A rejected row: where, what, why, and the row as it was.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub row: u64,
    pub external_id: Option<String>,
    pub field: String,
    pub code: RejectCode,
    pub reason: String,
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone)]
struct ValueRule {
    target: usize,
    /// The column slot when the template is one column and nothing else.
    column: Option<usize>,
    template: Template,
    transforms: Vec<Transform>,
    default: Option<String>,
    map: Vec<(String, String)>,
}

/// A rule for an attribute outside the fixed table ([`custom`]).
#[derive(Debug, Clone)]
struct ExtraRule {
    target: custom::CustomTarget,
    ty: custom::ValueType,
    split: Option<String>,
    rule: ValueRule,
}

impl ValueRule {
    fn new(
        target: usize,
        template: Template,
        transforms: Vec<Transform>,
        default: Option<String>,
        map: Vec<(String, String)>,
    ) -> Self {
        ValueRule {
            target,
            // The fast path: a template that is one column and nothing else.
            column: match template.single() {
                Some(&[c]) => Some(c),
                _ => None,
            },
            template,
            transforms,
            default,
            map,
        }
    }
}

#[derive(Debug, Clone)]
struct GroupRule {
    template: Template,
    active_only: bool,
}

/// A mapping compiled against a file's columns.
#[derive(Debug, Clone)]
pub struct Mapping {
    rules: Vec<ValueRule>,
    /// Custom extension attributes, roles and entitlements.
    extras: Vec<ExtraRule>,
    groups: Vec<GroupRule>,
    required: Vec<usize>,
    max_length: usize,
    dates: Vec<(String, usize)>,
    /// The distinct columns the mapping reads; templates refer to them by position.
    slots: Vec<Col>,
    /// Which targets are set at all (for the required message).
    columns_of: Vec<Vec<String>>,
    plan: build::WritePlan,
    /// Mapped targets to check: (target, is a person name, is an email).
    checks: Vec<(usize, bool, bool)>,
    /// Whether every fixed text the mapping writes into a User (template text, mapped
    /// values, defaults) is plain, so a plain record makes plain values.
    literals_plain: bool,
    /// Optional columns the file does not have.
    absent: Vec<String>,
}

/// Fingerprints are stable across runs and machines (fixed seed).
pub fn fingerprint(s: &str) -> u64 {
    fingerprint_bytes(s.as_bytes())
}

pub fn fingerprint_bytes(b: &[u8]) -> u64 {
    foldhash::quality::FixedState::with_seed(0x5c1a_10ad).hash_one(b)
}

impl Mapping {
    /// Resolves `spec` against `columns`; `json` selects key lookup over column index.
    pub fn compile(
        spec: &MappingSpec,
        columns: &[String],
        json: bool,
    ) -> Result<Self, MappingError> {
        // A column the spec does not require may be missing from the file.
        let optional = |name: &str| {
            spec.columns
                .as_ref()
                .is_some_and(|c| !c.required.iter().any(|r| r.eq_ignore_ascii_case(name)))
        };
        let find_col = |name: &str| -> Result<Col, MappingError> {
            let pos = columns
                .iter()
                .position(|c| c == name)
                .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)));
            match pos {
                Some(i) if json => Ok(Col::Key(columns[i].clone().into_boxed_str())),
                Some(i) => Ok(Col::Index(i)),
                // JSON records need not all carry every key; trust the mapping if the
                // first record had no keys at all.
                None if json && columns.is_empty() => Ok(Col::Key(name.into())),
                // Later JSON records may carry it; a CSV header is the whole truth.
                None if optional(name) && json => Ok(Col::Key(name.into())),
                None if optional(name) => Ok(Col::Absent),
                None => Err(MappingError::UnknownColumn {
                    column: name.to_string(),
                    available: columns.join(", "),
                }),
            }
        };
        let mut slots: Vec<Col> = Vec::new();
        let mut slot_names: Vec<String> = Vec::new();
        let mut absent: Vec<String> = Vec::new();
        let mut resolve = |name: &str| -> Result<usize, MappingError> {
            let col = find_col(name)?;
            let key = match &col {
                Col::Index(i) => columns[*i].clone(),
                Col::Key(k) => k.to_string(),
                Col::Absent => name.to_string(),
            };
            if let Some(p) = slot_names.iter().position(|n| *n == key) {
                return Ok(p);
            }
            let missing = matches!(col, Col::Absent)
                || (json
                    && !columns.is_empty()
                    && !columns.iter().any(|c| c.eq_ignore_ascii_case(name)));
            if missing {
                absent.push(name.to_string());
            }
            slot_names.push(key);
            slots.push(col);
            Ok(slots.len() - 1)
        };
        let mut rules = Vec::new();
        let mut columns_of = vec![Vec::new(); TARGETS.len()];
        let mut extras = Vec::new();
        for (name, v) in &spec.user {
            let fixed = target::index_of(name);
            let custom = match fixed {
                Some(_) => None,
                None => Some(custom::CustomTarget::parse(name).ok_or_else(|| {
                    MappingError::UnknownTarget(
                        name.clone(),
                        format!(
                            "{}, roles, entitlements, or an attribute of a schema extension as urn:…:User:attribute[.sub]",
                            target::names().join(", ")
                        ),
                    )
                })?),
            };
            let (text, transforms, default, map) = match v {
                spec::ValueSpec::Template(t) => (t.as_str(), Vec::new(), None, Vec::new()),
                spec::ValueSpec::Full(f) => (
                    f.template.as_str(),
                    f.transform
                        .iter()
                        .map(|s| Transform::parse(s))
                        .collect::<Result<_, _>>()?,
                    f.default.clone(),
                    f.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ),
            };
            let (ty, split) = match v {
                spec::ValueSpec::Full(f) => (f.ty.as_deref(), f.split.clone()),
                _ => (None, None),
            };
            if let Some(ct) = custom {
                let template = Template::parse(text, &mut resolve)?;
                extras.push(ExtraRule {
                    target: ct,
                    ty: ty
                        .map(custom::ValueType::parse)
                        .transpose()?
                        .unwrap_or(custom::ValueType::String),
                    split: split.filter(|s| !s.is_empty()),
                    rule: ValueRule::new(usize::MAX, template, transforms, default, map),
                });
                continue;
            }
            let target = fixed.expect("fixed when not custom");
            if ty.is_some() || split.is_some() {
                return Err(MappingError::Template {
                    template: name.clone(),
                    detail: "type and split apply to custom attributes (urn:…), roles and entitlements; this attribute's type is fixed".into(),
                });
            }
            let template = Template::parse(text, &mut resolve)?;
            columns_of[target] = template.columns.clone();
            rules.push(ValueRule::new(target, template, transforms, default, map));
        }
        for (idx, what) in [
            (target::USER_NAME, "userName"),
            (target::EXTERNAL_ID, "externalId"),
        ] {
            if !rules.iter().any(|r| r.target == idx) {
                return Err(MappingError::Missing(what));
            }
        }
        let groups = spec
            .groups
            .iter()
            .map(|g| {
                Ok(GroupRule {
                    template: Template::parse(&g.name, &mut resolve)?,
                    active_only: g.active_only,
                })
            })
            .collect::<Result<_, MappingError>>()?;
        let required = spec
            .validate
            .required
            .iter()
            .map(|n| {
                target::index_of(n).ok_or_else(|| {
                    MappingError::UnknownTarget(n.clone(), target::names().join(", "))
                })
            })
            .collect::<Result<_, _>>()?;
        let dates = spec
            .validate
            .dates
            .iter()
            .map(|d| Ok((d.clone(), resolve(d)?)))
            .collect::<Result<_, MappingError>>()?;
        // An attribute every row needs cannot come from columns the file lacks.
        let needed: Vec<usize> = [target::USER_NAME, target::EXTERNAL_ID]
            .into_iter()
            .chain(
                spec.validate
                    .required
                    .iter()
                    .filter_map(|n| target::index_of(n)),
            )
            .collect();
        for t in needed {
            let cols = &columns_of[t];
            if !cols.is_empty()
                && cols
                    .iter()
                    .all(|c| absent.iter().any(|a| a.eq_ignore_ascii_case(c)))
            {
                return Err(MappingError::UnknownColumn {
                    column: format!(
                        "{} (needed for {}, which every user must have)",
                        cols.join("' or '"),
                        TARGETS[t].name
                    ),
                    available: columns.join(", "),
                });
            }
        }
        let plan = build::WritePlan::new(rules.iter().map(|r| r.target));
        let mut checks: Vec<(usize, bool, bool)> = rules
            .iter()
            .map(|r| {
                (
                    r.target,
                    TARGETS[r.target].is_person_name(),
                    matches!(TARGETS[r.target].place, Place::Email(_)),
                )
            })
            .collect();
        checks.sort_unstable();
        let plain = |s: &str| !bytes::has_control_or(s.as_bytes(), bytes::PLAIN);
        let literals_plain = rules.iter().all(|r| {
            r.template.literals_plain()
                && r.default.as_deref().is_none_or(plain)
                && r.map.iter().all(|(_, to)| plain(to))
        });
        Ok(Mapping {
            rules,
            extras,
            groups,
            required,
            max_length: spec.validate.max_length,
            dates,
            slots,
            columns_of,
            plan,
            checks,
            literals_plain,
            absent,
        })
    }

    /// Optional columns the file lacks, each with the attributes it would have fed.
    pub fn absent_columns(&self) -> Vec<(String, Vec<&'static str>)> {
        self.absent
            .iter()
            .map(|c| {
                let fed = self
                    .columns_of
                    .iter()
                    .enumerate()
                    .filter(|(_, cols)| cols.iter().any(|x| x.eq_ignore_ascii_case(c)))
                    .map(|(t, _)| TARGETS[t].name)
                    .collect();
                (c.clone(), fed)
            })
            .collect()
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(v));
    if is(&["true", "yes", "y", "1", "active", "enabled"]) {
        Some(true)
    } else if is(&[
        "false",
        "no",
        "n",
        "0",
        "inactive",
        "disabled",
        "terminated",
    ]) {
        Some(false)
    } else {
        None
    }
}

/// Pragmatic address check: one `@`, a local part, a dotted domain, no spaces.
pub fn valid_email(s: &str) -> bool {
    let b = s.as_bytes();
    // One pass; the domain's facts restart at each '@' (more than one fails anyway).
    let (mut at, mut ats, mut bad, mut wide) = (0, 0, false, false);
    let (mut dot, mut double, mut prev) = (false, false, 0u8);
    for (i, &c) in b.iter().enumerate() {
        if c == b'@' {
            at = i;
            ats += 1;
            dot = false;
            double = false;
        }
        dot |= c == b'.';
        double |= c == b'.' && prev == b'.';
        bad |= c <= b' ' || c == 0x7f;
        wide |= c >= 0x80;
        prev = c;
    }
    ats == 1
        && !bad
        && at != 0
        && at <= 64
        && dot
        && !double
        && b.get(at + 1) != Some(&b'.')
        && b.last() != Some(&b'.')
        && (!wide || !s.chars().any(char::is_whitespace))
}

/// `YYYY-MM-DD` (ISO 8601, what Workday exports) or `MM/DD/YYYY`, with a real day.
pub fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    let iso = b.contains(&b'-');
    let sep = if iso { b'-' } else { b'/' };
    // Three parts of one to four digits, read in one pass.
    let (mut parts, mut k, mut len) = ([0u32; 3], 0, 0);
    for &c in b {
        if c == sep {
            if len == 0 || k == 2 {
                return false;
            }
            k += 1;
            len = 0;
        } else if c.is_ascii_digit() && len < 4 {
            parts[k] = parts[k] * 10 + (c - b'0') as u32;
            len += 1;
        } else {
            return false;
        }
    }
    if k != 2 || len == 0 {
        return false;
    }
    let (y, m, d) = if iso {
        (parts[0], parts[1], parts[2])
    } else {
        (parts[2], parts[0], parts[1])
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1000..=9999).contains(&y) && (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_dates() {
        assert!(valid_email("jane.doe@example.com"));
        assert!(!valid_email("jane.doe@@example"));
        assert!(!valid_email("jane doe@example.com"));
        assert!(!valid_email("jane@example"));
        for bad in [
            "",
            "@x.io",
            "a@",
            "a@.io",
            "a@x.",
            "a@x..io",
            "a@b@c.io",
            "a b@x.io",
            "a@x\u{7f}.io",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(
            valid_email("a..b@x.io"),
            "dots before the @ are the local part's business"
        );
        assert!(valid_email("zoë@exämple.de"));
        assert!(valid_date("2024-02-29") && valid_date("02/28/2023"));
        assert!(!valid_date("2021-02-30") && !valid_date("2021-13-01") && !valid_date("yesterday"));
        for bad in [
            "",
            "2021-01",
            "2021-01-01-01",
            "-01-01",
            "2021--01",
            "2021-01-",
            "12021-01-01",
        ] {
            assert!(!valid_date(bad), "{bad}");
        }
        assert!(valid_date("2020-2-9") && valid_date("1/31/1999") && !valid_date("1/32/1999"));
    }
}
