//! Mapping one record: column values → attribute values → checks → the packed User.
//!
//! This runs once per row of exports with millions of rows, so it allocates once per
//! row (the [`MappedUser`]): column values stay slices of the record, composed values
//! ("{First} {Last}", lower-cased emails) are written into one per-thread text buffer,
//! and the body is written straight into the user's buffer, sized from the last row.

use std::cell::RefCell;

use smallvec::SmallVec;

use super::target::{self, TARGETS};
use super::template::{
    fast_trim, json_plain, slot_of, Cache, JsonProblem, KeySeen, Record, SlotValues, Transform,
};
use super::user::{Packer, GROUP_SEP};
use super::{
    build, custom, parse_bool, valid_date, valid_email, MappedUser, Mapping, RejectCode, Rejected,
};
use crate::source::flat_json;

/// Buffers reused from row to row on each mapping thread.
#[derive(Default)]
struct Scratch {
    /// Composed attribute values of the current row.
    text: String,
    /// Bytes of the last packed User: the next one's buffer starts at about that size.
    last: usize,
    /// Slot of the key at each position of the last JSON record.
    hints: Vec<u32>,
    /// JSON values that are not text in the record (numbers, nested values), written out.
    owned: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// An attribute value while its rule runs: text of the record or of the mapping (a
/// value map's target, a default), or a span of the row's text buffer, which is read
/// only once every rule has written to it.
#[derive(Debug, Clone, Copy)]
enum Val<'v> {
    Empty,
    Str(&'v str),
    Text(usize, usize),
}

impl<'v> Val<'v> {
    fn read<'s>(self, text: &'s str) -> Option<&'s str>
    where
        'v: 's,
    {
        match self {
            Val::Empty => None,
            Val::Str(s) => Some(s),
            Val::Text(a, b) => Some(&text[a..b]),
        }
    }
}

fn transform<'v>(t: Transform, v: Val<'v>, text: &mut String) -> Val<'v> {
    match v {
        Val::Empty => v,
        Val::Str(x) if !t.changes(x) => v,
        Val::Str(x) => {
            let start = text.len();
            t.push(x, text);
            Val::Text(start, text.len())
        }
        Val::Text(a, b) if !t.changes(&text[a..b]) => v,
        // The span belongs to this value alone: change it where it is.
        Val::Text(a, b) if text[a..b].is_ascii() => {
            match t {
                Transform::Lowercase => text[a..b].make_ascii_lowercase(),
                Transform::Uppercase => text[a..b].make_ascii_uppercase(),
                Transform::Trim => {}
            }
            v
        }
        Val::Text(a, b) => {
            let owned = text[a..b].to_string();
            let start = text.len();
            t.push(&owned, text);
            Val::Text(start, text.len())
        }
    }
}

/// A rule's value for a row: the template (or its one column), the transforms, the
/// value map; the default is applied by the caller.
fn rule_value<'v>(r: &'v super::ValueRule, cache: &Cache<'v>, text: &mut String) -> Val<'v> {
    // A blank column is `Str("")` here, empty like `Empty`: one less branch on
    // data that is blank for some rows and not others (measured).
    let mut v = match (r.column, r.template.single()) {
        (Some(c), _) => Val::Str(cache[c]),
        (None, Some(alts)) => alts
            .iter()
            .map(|&c| cache[c])
            .find(|v| !v.is_empty())
            .map_or(Val::Empty, Val::Str),
        (None, None) => r
            .template
            .eval_text(cache, text)
            .map_or(Val::Empty, |(a, b)| Val::Text(a, b)),
    };
    for &t in &r.transforms {
        v = transform(t, v, text);
    }
    if !r.map.is_empty() {
        if let Some(x) = v.read(text).filter(|x| !x.is_empty()) {
            if let Some((_, to)) = r.map.iter().find(|(from, _)| from.eq_ignore_ascii_case(x)) {
                v = Val::Str(to);
            }
        }
    }
    v
}

impl Mapping {
    /// Maps one record; a row that breaks a rule comes back as [`Rejected`] naming the
    /// field and the reason.
    pub fn map(&self, rec: &Record<'_>, row: u64) -> Result<MappedUser, Rejected> {
        SCRATCH.with(|s| {
            let mut guard = s.borrow_mut();
            let Scratch {
                text,
                last,
                hints,
                owned,
            } = &mut *guard;
            let mut cache = SlotValues::new();
            let plain = rec
                .fill(&self.slots, hints, owned, &mut cache)
                .map_err(|p| p.rejected(row))?
                && self.literals_plain;
            self.map_values(&cache, plain, row, text, last)
        })
    }

    /// Maps a JSON record if it is a flat object ([`crate::source::flat_json`]), read in
    /// place with no tape; `None` for any other record.
    pub fn map_flat_json(&self, json: &str, row: u64) -> Option<Result<MappedUser, Rejected>> {
        SCRATCH.with(|s| {
            let mut guard = s.borrow_mut();
            let Scratch {
                text, last, hints, ..
            } = &mut *guard;
            let mut cache = SlotValues::new();
            cache.resize(self.slots.len(), "");
            let mut seen = KeySeen::default();
            let mut duplicate = None;
            let flat = flat_json::parse(json, |pos, key, value| {
                if !seen.insert(key) && duplicate.is_none() {
                    duplicate = Some(key);
                }
                if let Some(slot) = slot_of(key, pos, &self.slots, hints) {
                    cache[slot] = value.map_or("", fast_trim);
                }
            });
            if let (true, Some(k)) = (flat, duplicate) {
                return Some(Err(JsonProblem::Duplicate(k.to_string()).rejected(row)));
            }
            let plain = json_plain(json.as_bytes()) && self.literals_plain;
            flat.then(|| self.map_values(&cache, plain, row, text, last))
        })
    }

    fn map_values(
        &self,
        cache: &Cache<'_>,
        plain: bool,
        row: u64,
        text: &mut String,
        last: &mut usize,
    ) -> Result<MappedUser, Rejected> {
        text.clear();
        let mut values: [Option<&str>; TARGETS.len()] = [None; TARGETS.len()];
        let mut spans: SmallVec<[(usize, usize, usize); 8]> = SmallVec::new();
        for r in &self.rules {
            let v = rule_value(r, cache, text);
            match v {
                Val::Str(s) => {
                    values[r.target] = if s.is_empty() {
                        r.default.as_deref()
                    } else {
                        Some(s)
                    }
                }
                Val::Text(a, b) => spans.push((r.target, a, b)),
                Val::Empty => values[r.target] = r.default.as_deref(),
            }
        }
        // Custom attributes: evaluated like the others, converted to their type below.
        let mut extra_vals: SmallVec<[Val; 4]> = SmallVec::new();
        for e in &self.extras {
            let v = match rule_value(&e.rule, cache, text) {
                Val::Str("") | Val::Empty => e.rule.default.as_deref().map_or(Val::Empty, Val::Str),
                v => v,
            };
            extra_vals.push(v);
        }
        let text: &str = text;
        for (t, a, b) in spans {
            values[t] = Some(&text[a..b]);
        }
        self.check(&values, cache, plain, row)?;
        let mut extra = Vec::new();
        let mut extra_urns = Vec::new();
        if !self.extras.is_empty() {
            let filled: SmallVec<[custom::Filled; 4]> = self
                .extras
                .iter()
                .zip(&extra_vals)
                .filter_map(|(e, v)| {
                    let value = v.read(text)?;
                    Some(custom::Filled {
                        target: &e.target,
                        ty: e.ty,
                        split: e.split.as_deref(),
                        value,
                    })
                })
                .collect();
            if let Err((field, why)) = custom::write(&filled, &mut extra, &mut extra_urns) {
                return Err(self.reject(&values, row, RejectCode::InvalidValue, &field, why));
            }
        }
        let active = match values[target::ACTIVE] {
            None => None,
            Some(v) => match parse_bool(v) {
                Some(b) => Some(b),
                None => {
                    return Err(self.reject(
                        &values,
                        row,
                        RejectCode::InvalidValue,
                        "active",
                        format!(
                            "cannot read active from '{v}'; add it to the mapping's map for active"
                        ),
                    ))
                }
            },
        };
        // A little over the last row: most rows fit without growing, and an import
        // holding tens of thousands of users in flight does not pay much slack.
        let mut p = Packer::new(*last + *last / 16 + 32);
        build::write_user(
            p.buf(),
            &self.plan,
            &values,
            active,
            !plain,
            (&extra, &extra_urns),
        );
        p.end_part();
        for t in [target::EXTERNAL_ID, target::USER_NAME, target::MANAGER] {
            p.buf()
                .extend_from_slice(values[t].unwrap_or_default().as_bytes());
            p.end_part();
        }
        let buf = p.buf();
        let groups_start = buf.len();
        for g in &self.groups {
            if g.active_only && active == Some(false) {
                continue;
            }
            let mark = buf.len();
            if mark > groups_start {
                buf.push(GROUP_SEP as u8);
            }
            if !g.template.eval_into(cache, buf) {
                buf.truncate(mark);
            }
        }
        let user = p.finish(row, active, values[target::MANAGER].is_some());
        *last = user.packed_len();
        Ok(user)
    }

    fn reject(
        &self,
        values: &[Option<&str>],
        row: u64,
        code: RejectCode,
        field: &str,
        reason: String,
    ) -> Rejected {
        Rejected {
            row,
            external_id: values[target::EXTERNAL_ID].map(str::to_string),
            field: field.to_string(),
            code,
            reason,
            raw: Vec::new(),
        }
    }

    /// Required attributes, person names, emails, lengths and dates.
    fn check(
        &self,
        values: &[Option<&str>],
        cache: &Cache<'_>,
        plain: bool,
        row: u64,
    ) -> Result<(), Rejected> {
        let reject = |code, field: &str, reason| self.reject(values, row, code, field, reason);
        for &t in &self.required {
            if values[t].is_none() {
                let cols = &self.columns_of[t];
                let why = if cols.is_empty() {
                    format!(
                        "{} is required but the mapping does not set it",
                        TARGETS[t].name
                    )
                } else {
                    format!(
                        "{} is required but column {} is empty",
                        TARGETS[t].name,
                        cols.join(" / ")
                    )
                };
                return Err(reject(RejectCode::MissingRequired, TARGETS[t].name, why));
            }
        }
        for &(ti, person, email) in &self.checks {
            let Some(v) = values[ti] else { continue };
            let t = &TARGETS[ti];
            // Most names hold none of these: one word scan, then the exact look.
            if person && !plain && super::bytes::has_control_or(v.as_bytes(), [b'"', 0x7f, 0xc2]) {
                let (mut quote, mut control) = (false, false);
                for b in v.bytes() {
                    quote |= b == b'"';
                    control |= b < 0x20 || b == 0x7f;
                }
                if quote {
                    return Err(reject(
                        RejectCode::InvalidCharacter,
                        t.name,
                        format!(
                            "stray quote (\") in {} '{v}'; fix the quoting in the export",
                            t.name
                        ),
                    ));
                }
                if control || v.chars().any(char::is_control) {
                    return Err(reject(
                        RejectCode::InvalidCharacter,
                        t.name,
                        format!("control character in {}", t.name),
                    ));
                }
            }
            if email && !valid_email(v) {
                return Err(reject(
                    RejectCode::InvalidEmail,
                    t.name,
                    format!("'{v}' is not a valid email address"),
                ));
            }
            // Bytes bound characters from above: count characters only when it matters.
            if v.len() > self.max_length {
                let n = v.chars().count();
                if n > self.max_length {
                    return Err(reject(
                        RejectCode::TooLong,
                        t.name,
                        format!(
                            "{} is {n} characters long, more than {}",
                            t.name, self.max_length
                        ),
                    ));
                }
            }
        }
        for (name, col) in &self.dates {
            let v = cache[*col];
            if !v.is_empty() && !valid_date(v) {
                return Err(reject(
                    RejectCode::InvalidDate,
                    name,
                    format!("{name} '{v}' is not a valid date (YYYY-MM-DD or MM/DD/YYYY)"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::import::ingest::{map_batch, RowOutcome};
    use crate::mapping::{presets, Mapping, Record};
    use crate::source::{CsvSource, NdjsonSource, RecordSource, Records};

    /// Maps every row of a CSV text: the User as JSON, or the reject code.
    fn map_all(
        spec: &str,
        csv: &'static [u8],
        delim: u8,
    ) -> Vec<Result<serde_json::Value, String>> {
        let spec = presets::parse(spec, "t.toml").unwrap();
        let mut src = CsvSource::new(Box::new(csv), delim, "t.csv".into()).unwrap();
        let m = Mapping::compile(&spec, src.columns(), false).unwrap();
        let mut b = src.new_batch();
        let mut out = Vec::new();
        while src.fill(&mut b, 100).unwrap() {
            let Records::Csv(recs) = &b.records else {
                panic!()
            };
            for (r, row) in recs.iter().zip(&b.rows) {
                out.push(match m.map(&Record::Csv(r), *row) {
                    Ok(u) => Ok(serde_json::from_slice(u.body()).expect("valid JSON")),
                    Err(r) => Err(r.code.as_str().to_string()),
                });
            }
        }
        out
    }

    /// Plain fixed text: whether values are checked depends on the record alone.
    const SPEC: &str = r#"
        [user]
        userName = "{email}"
        externalId = "{id}"
        "name.givenName" = "{first}"
        "name.familyName" = "{last}"
        title = "{first} / {last}"
        [validate]
        required = ["userName"]
    "#;

    #[test]
    fn plain_records_skip_the_checks_and_others_still_get_them() {
        let rows = map_all(
            SPEC,
            b"id,first,last,email\n1,Ann,Lee,a@x.io\n2,B\\o,Lee,b@x.io\n3,\"Ja\"\"ne\",Lee,c@x.io\n4,Tab\tbed,Lee,d@x.io\n",
            b',',
        );
        let user = |i: usize| rows[i].as_ref().unwrap();
        assert_eq!(user(0)["title"], "Ann / Lee");
        assert_eq!(user(1)["name"]["givenName"], "B\\o");
        assert_eq!(
            rows[2],
            Err("invalid_character".into()),
            "a quote in a name"
        );
        assert_eq!(rows[3], Err("invalid_character".into()), "a tab in a name");
        // Tab-separated: every line holds a control byte, values are looked at one by one.
        let tsv = map_all(
            SPEC,
            b"id\tfirst\tlast\temail\n1\tAnn\tLee\ta@x.io\n",
            b'\t',
        );
        assert_eq!(tsv[0].as_ref().unwrap()["name"]["familyName"], "Lee");
        // The mapping's own quote and backslash are escaped even for a plain record.
        let quoted = SPEC.replace("{first} / {last}", r#"\"{first}\" \\ {last}"#);
        let rows = map_all(&quoted, b"id,first,last,email\n1,Ann,Lee,a@x.io\n", b',');
        assert_eq!(rows[0].as_ref().unwrap()["title"], "\"Ann\" \\ Lee");
    }

    #[test]
    fn json_strings_with_escapes_are_checked_and_written_escaped() {
        let spec = presets::parse(SPEC, "t.toml").unwrap();
        let data: &'static [u8] = br#"{"id":"1","first":"Ann","last":"Lee","email":"a@x.io"}
{"id":2,"first":"B\\o","last":"Lee","email":"b@x.io"}
{"id":"3","first":"Ja\"ne","last":"Lee","email":"c@x.io"}
{"id":"4","first":"Cy","last":{"nested":"x"},"email":"d@x.io"}
"#;
        let mut src = NdjsonSource::new(Box::new(data), "t.ndjson".into()).unwrap();
        let m = Mapping::compile(&spec, src.columns(), true).unwrap();
        let mut b = src.new_batch();
        let mut rows = Vec::new();
        while src.fill(&mut b, 100).unwrap() {
            for o in map_batch(&m, &b) {
                rows.push(match o {
                    RowOutcome::User(u) => {
                        Ok(serde_json::from_slice::<serde_json::Value>(u.body())
                            .expect("valid JSON"))
                    }
                    RowOutcome::Rejected(r) => Err(r.code.as_str().to_string()),
                });
            }
        }
        let user = |i: usize| rows[i].as_ref().unwrap();
        assert_eq!(user(0)["title"], "Ann / Lee");
        assert_eq!(user(1)["name"]["givenName"], "B\\o");
        assert_eq!(user(1)["externalId"], "2", "a number is its text");
        assert_eq!(
            rows[2],
            Err("invalid_character".into()),
            "an escaped quote in a name"
        );
        assert_eq!(
            rows[3],
            Err("wrong_type".into()),
            "a nested value is not text: rejected, never stringified"
        );
    }
}
