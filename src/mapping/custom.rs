//! Attributes beyond the fixed table of [`super::target`]: any attribute of a schema
//! extension (`"urn:example:params:scim:schemas:extension:acme:2.0:User:badgeNumber"`,
//! sub-attributes as `…:User:office.building`), typed and converted per row, and the
//! core multi-valued `roles` and `entitlements` (a column split into several values).
//!
//! Real exports carry what the enterprise extension has no place for (badge numbers,
//! clearance levels, union membership); tenants declare custom extensions for them.
//! They are written into the User after the core attributes and before the enterprise
//! extension, which stays last for [`super::build::with_manager`].

use super::build::json_str;
use super::MappingError;

/// A SCIM attribute type (RFC 7643 §2.3) a value is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Boolean,
    Integer,
    Decimal,
    DateTime,
    Reference,
}

impl ValueType {
    pub fn parse(s: &str) -> Result<Self, MappingError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "string" => ValueType::String,
            "boolean" => ValueType::Boolean,
            "integer" => ValueType::Integer,
            "decimal" => ValueType::Decimal,
            "datetime" => ValueType::DateTime,
            "reference" => ValueType::Reference,
            other => {
                return Err(MappingError::Template {
                    template: s.to_string(),
                    detail: format!("unknown type '{other}'; use string, boolean, integer, decimal, dateTime or reference"),
                })
            }
        })
    }

    /// The SCIM name, as `/Schemas` writes it (lower-cased for comparing).
    pub fn scim_name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Boolean => "boolean",
            ValueType::Integer => "integer",
            ValueType::Decimal => "decimal",
            ValueType::DateTime => "datetime",
            ValueType::Reference => "reference",
        }
    }

    /// `v` as JSON of this type, or why it is not one.
    pub fn write(self, v: &str, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            ValueType::String | ValueType::Reference => json_str(out, v),
            ValueType::Boolean => match super::parse_bool(v) {
                Some(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                None => return Err(format!("'{v}' is not a boolean (true/false, yes/no, 1/0)")),
            },
            ValueType::Integer => match v.parse::<i64>() {
                Ok(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Err(_) => return Err(format!("'{v}' is not an integer")),
            },
            ValueType::Decimal => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    let n = serde_json::Number::from_f64(x).ok_or("not a number")?;
                    out.extend_from_slice(n.to_string().as_bytes())
                }
                _ => return Err(format!("'{v}' is not a decimal number")),
            },
            ValueType::DateTime => {
                // RFC 7643 §2.3.5: xsd:dateTime; a date alone is taken as midnight UTC.
                if super::valid_date(v) && v.len() == 10 && v.as_bytes()[4] == b'-' {
                    json_str(out, &format!("{v}T00:00:00Z"))
                } else if is_datetime(v) {
                    json_str(out, v)
                } else {
                    return Err(format!(
                        "'{v}' is not a date-time (2024-01-31T09:00:00Z or 2024-01-31)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `YYYY-MM-DDThh:mm:ss[.f](Z|±hh:mm)`.
fn is_datetime(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 20 || b[10] != b'T' || !super::valid_date(&v[..10]) {
        return false;
    }
    let t = &b[11..];
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if !(digits(&t[0..2]) && t[2] == b':' && digits(&t[3..5]) && t[5] == b':' && digits(&t[6..8])) {
        return false;
    }
    let mut rest = &t[8..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &rest[1 + n..];
    }
    rest == b"Z"
        || (rest.len() == 6
            && (rest[0] == b'+' || rest[0] == b'-')
            && digits(&rest[1..3])
            && rest[3] == b':'
            && digits(&rest[4..6]))
}

/// Where a custom attribute goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTarget {
    /// The extension schema URN; `None` for a core attribute (`roles`, `entitlements`).
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

/// Multi-valued core attributes of `{value, …}` objects a column can fill.
pub const CORE_MULTI: &[&str] = &["roles", "entitlements"];

impl CustomTarget {
    /// `urn:…:attr[.sub]` or a core multi-valued attribute; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(core) = CORE_MULTI.iter().find(|c| c.eq_ignore_ascii_case(name)) {
            return Some(CustomTarget {
                schema: None,
                attr: core.to_string(),
                sub: None,
            });
        }
        if !name.starts_with("urn:") {
            return None;
        }
        let (schema, path) = name.rsplit_once(':')?;
        if schema.eq_ignore_ascii_case(crate::scim::urns::USER)
            || schema.eq_ignore_ascii_case(crate::scim::urns::ENTERPRISE_USER)
        {
            // Those have names in the fixed table (and their own checks).
            return None;
        }
        let (attr, sub) = match path.split_once('.') {
            Some((a, s)) => (a.to_string(), Some(s.to_string())),
            None => (path.to_string(), None),
        };
        (!attr.is_empty() && !schema.ends_with(':')).then_some(CustomTarget {
            schema: Some(schema.to_string()),
            attr,
            sub,
        })
    }

    pub fn path(&self) -> String {
        let a = match &self.sub {
            Some(s) => format!("{}.{s}", self.attr),
            None => self.attr.clone(),
        };
        match &self.schema {
            Some(u) => format!("{u}:{a}"),
            None => a,
        }
    }
}

/// One custom attribute's values for the current row, to be written.
pub struct Filled<'a> {
    pub target: &'a CustomTarget,
    pub ty: ValueType,
    pub split: Option<&'a str>,
    pub value: &'a str,
}

/// Writes the custom attributes of a row (`,"key":…` fragments) into `out` and the
/// extension URNs they use into `urns`. The first attribute that cannot be converted
/// comes back as (its path, why).
pub fn write(
    filled: &[Filled<'_>],
    out: &mut Vec<u8>,
    urns: &mut Vec<String>,
) -> Result<(), (String, String)> {
    let one = |f: &Filled, v: &str, out: &mut Vec<u8>| {
        f.ty.write(v, out).map_err(|e| (f.target.path(), e))
    };
    let values = |f: &Filled, out: &mut Vec<u8>| -> Result<(), (String, String)> {
        match f.split {
            Some(sep) => {
                out.push(b'[');
                let parts = f.value.split(sep).map(str::trim).filter(|p| !p.is_empty());
                for (i, p) in parts.enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if f.target.schema.is_none() {
                        out.extend_from_slice(b"{\"value\":");
                        one(f, p, out)?;
                        out.push(b'}');
                    } else {
                        one(f, p, out)?;
                    }
                }
                out.push(b']');
                Ok(())
            }
            None if f.target.schema.is_none() => {
                out.extend_from_slice(b"[{\"value\":");
                one(f, f.value, out)?;
                out.extend_from_slice(b"}]");
                Ok(())
            }
            None => one(f, f.value, out),
        }
    };
    // Core multi-valued attributes at the top level.
    for f in filled.iter().filter(|f| f.target.schema.is_none()) {
        out.push(b',');
        json_str(out, &f.target.attr);
        out.push(b':');
        values(f, out)?;
    }
    // Extension attributes, one object per schema, sub-attributes grouped.
    let mut schemas: Vec<&str> = Vec::new();
    for f in filled {
        if let Some(s) = f.target.schema.as_deref() {
            if !schemas.contains(&s) {
                schemas.push(s);
            }
        }
    }
    for s in schemas {
        out.push(b',');
        json_str(out, s);
        out.extend_from_slice(b":{");
        let mine: Vec<&Filled> = filled
            .iter()
            .filter(|f| f.target.schema.as_deref() == Some(s))
            .collect();
        let mut done: Vec<&str> = Vec::new();
        let mut first = true;
        for f in &mine {
            if done.contains(&f.target.attr.as_str()) {
                continue;
            }
            done.push(&f.target.attr);
            if !first {
                out.push(b',');
            }
            first = false;
            json_str(out, &f.target.attr);
            out.push(b':');
            if f.target.sub.is_some() {
                out.push(b'{');
                let subs = mine.iter().filter(|g| g.target.attr == f.target.attr);
                for (i, g) in subs.enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_str(out, g.target.sub.as_deref().unwrap_or_default());
                    out.push(b':');
                    values(g, out)?;
                }
                out.push(b'}');
            } else {
                values(f, out)?;
            }
        }
        out.push(b'}');
        urns.push(s.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_types() {
        let t = CustomTarget::parse("urn:acme:scim:extension:2.0:User:office.building").unwrap();
        assert_eq!(
            t.schema.as_deref(),
            Some("urn:acme:scim:extension:2.0:User")
        );
        assert_eq!(
            (t.attr.as_str(), t.sub.as_deref()),
            ("office", Some("building"))
        );
        assert!(CustomTarget::parse("title").is_none());
        assert!(CustomTarget::parse("roles").is_some());
        let w = |ty: ValueType, v: &str| {
            let mut o = Vec::new();
            ty.write(v, &mut o).map(|_| String::from_utf8(o).unwrap())
        };
        assert_eq!(w(ValueType::Integer, "42"), Ok("42".into()));
        assert!(w(ValueType::Integer, "4x").is_err());
        assert_eq!(w(ValueType::Boolean, "Yes"), Ok("true".into()));
        assert_eq!(w(ValueType::Decimal, "2.50"), Ok("2.5".into()));
        assert_eq!(
            w(ValueType::DateTime, "2024-01-31"),
            Ok("\"2024-01-31T00:00:00Z\"".into())
        );
        assert_eq!(
            w(ValueType::DateTime, "2024-01-31T09:00:00+01:00"),
            Ok("\"2024-01-31T09:00:00+01:00\"".into())
        );
        assert!(w(ValueType::DateTime, "31/01/2024 9am").is_err());
    }
}
