//! The schema check before an import sends anything: the attributes the mapping writes
//! that the target's `/Schemas` does not declare, with the number of rows that carry
//! each. Several SaaS servers answer 201 to a user with the enterprise extension and keep
//! none of it; this says so while nothing has been sent yet.

use std::path::Path;

use serde::Serialize;

use super::ingest::{IngestError, IngestOptions};
use crate::client::schemas::{Declared, Published};
use crate::mapping::target::{self, Place, TARGETS};
use crate::mapping::MappingSpec;
pub use crate::results::import::{SchemaFindings, Undeclared};

/// `--schema-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaCheck {
    /// Name what the target will not store, then send.
    Warn,
    /// Exit 2 before anything is sent when the target would drop something.
    Strict,
    /// Do not read the target's schemas.
    Off,
}

/// Types a mapping writes as JSON strings.
fn takes_string(ty: &str) -> bool {
    matches!(ty, "string" | "reference" | "datetime" | "binary")
}

/// Compares the mapping's attributes with what the target published.
pub fn compare(spec: &MappingSpec, published: &Published) -> SchemaFindings {
    let mut f = SchemaFindings {
        notes: published.notes.clone(),
        ..SchemaFindings::default()
    };
    let Some(user) = &published.user else {
        f.notes.push(
            "the target publishes no usable /Schemas: what it stores can only be seen by reading users back (--verify)".into(),
        );
        return f;
    };
    f.checked = true;
    // Custom extension attributes, roles, entitlements: declared, and with the type
    // the mapping converts to?
    for (name, v) in &spec.user {
        if target::index_of(name).is_some() {
            continue;
        }
        let Some(ct) = crate::mapping::custom::CustomTarget::parse(name) else {
            continue;
        };
        let ty = match v {
            crate::mapping::spec::ValueSpec::Full(full) => full.ty.as_deref(),
            _ => None,
        }
        .and_then(|t| crate::mapping::custom::ValueType::parse(t).ok())
        .unwrap_or(crate::mapping::custom::ValueType::String);
        let urn = ct.schema.as_deref();
        let why = match user.declares(urn, &ct.attr, ct.sub.as_deref()) {
            Declared::Yes => {
                let d = user.attr(urn, &ct.attr);
                let declared_ty = match (&ct.sub, d) {
                    (None, Some(d)) if urn.is_some() => Some(d.ty.clone()),
                    _ => None,
                };
                declared_ty
                    .filter(|t| {
                        *t != ty.scim_name() && !(ty.scim_name() == "string" && takes_string(t))
                    })
                    .map(|t| format!("declared as {t}, the mapping writes {}", ty.scim_name()))
            }
            Declared::NoSchema => Some(format!(
                "the User resource type has no schema {}",
                urn.unwrap_or(crate::scim::urns::USER)
            )),
            Declared::NoAttribute => Some("not declared".into()),
            Declared::Unknown => {
                f.unchecked.push(ct.path());
                None
            }
        };
        if let Some(why) = why {
            f.undeclared.push(Undeclared {
                mapping: name.clone(),
                attribute: ct.path(),
                why,
                rows: 0,
            });
        }
    }
    let mut targets: Vec<usize> = spec
        .user
        .keys()
        .filter_map(|k| target::index_of(k))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    for t in targets {
        let place = TARGETS[t].place;
        let (urn, attr, sub) = place.scim_attr();
        let why = match user.declares(urn, attr, sub) {
            Declared::Yes => {
                // Declared: is it declared as what the mapping writes?
                let d = user.attr(urn, attr);
                match (place, d) {
                    (Place::Active, Some(d)) if d.ty != "boolean" => Some(format!(
                        "declared as {}, the mapping writes a boolean",
                        d.ty
                    )),
                    (Place::Manager, _) | (Place::Active, _) | (_, None) => None,
                    (_, Some(d)) if sub.is_none() && !takes_string(&d.ty) => {
                        Some(format!("declared as {}, the mapping writes a string", d.ty))
                    }
                    _ => None,
                }
            }
            Declared::NoSchema => Some(format!(
                "the User resource type has no schema {}",
                urn.unwrap_or(crate::scim::urns::USER)
            )),
            Declared::NoAttribute => Some(match sub {
                Some(s) if user.attr(urn, attr).is_some() => format!("{attr} has no {s}"),
                _ => "not declared".to_string(),
            }),
            Declared::Unknown => {
                f.unchecked.push(place.path());
                None
            }
        };
        if let Some(why) = why {
            f.undeclared.push(Undeclared {
                mapping: TARGETS[t].name.to_string(),
                attribute: place.path(),
                why,
                rows: 0,
            });
        }
    }
    f
}

/// Counts, in one pass over the export, the rows that carry each undeclared attribute
/// (rejected rows and duplicates are not sent, so not counted).
pub fn count_rows(
    path: &Path,
    spec: &MappingSpec,
    opts: &IngestOptions,
    f: &mut SchemaFindings,
) -> Result<(), IngestError> {
    if f.undeclared.is_empty() {
        return Ok(());
    }
    // Aligned with `f.undeclared`: a fixed place, or a custom attribute.
    let places: Vec<Result<Place, crate::mapping::custom::CustomTarget>> = f
        .undeclared
        .iter()
        .map(|u| match target::index_of(&u.mapping) {
            Some(t) => Ok(TARGETS[t].place),
            None => Err(
                crate::mapping::custom::CustomTarget::parse(&u.mapping).unwrap_or(
                    crate::mapping::custom::CustomTarget {
                        schema: None,
                        attr: u.mapping.clone(),
                        sub: None,
                    },
                ),
            ),
        })
        .collect();
    let needs_body = places.iter().any(|p| *p != Ok(Place::Manager));
    let mut counts = vec![0u64; places.len()];
    super::readback::each_accepted(path, spec, opts, |_, u| {
        let body: Option<serde_json::Value> = needs_body
            .then(|| serde_json::from_slice(u.body()).ok())
            .flatten();
        for (i, p) in places.iter().enumerate() {
            let has = match p {
                Ok(Place::Manager) => u.manager().is_some(),
                Ok(p) => body.as_ref().is_some_and(|b| p.get(b).is_some()),
                Err(c) => body.as_ref().is_some_and(|b| {
                    let at = match &c.schema {
                        Some(s) => b.get(s.as_str()).and_then(|x| x.get(c.attr.as_str())),
                        None => b.get(c.attr.as_str()),
                    };
                    match &c.sub {
                        Some(sub) => at.and_then(|x| x.get(sub.as_str())).is_some(),
                        None => at.is_some(),
                    }
                }),
            };
            counts[i] += has as u64;
        }
        Ok(())
    })?;
    for (u, n) in f.undeclared.iter_mut().zip(counts) {
        u.rows = n;
    }
    // An attribute no row carries loses nothing.
    f.undeclared.retain(|u| u.rows > 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::schemas::from_documents;
    use serde_json::json;

    #[test]
    fn undeclared_attributes_and_wrong_types_are_named() {
        let acme = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        let spec = crate::mapping::presets::parse(
            &format!(
                "[user]\nuserName = \"{{e}}\"\nexternalId = \"{{id}}\"\ntitle = \"{{t}}\"\n\"enterprise.department\" = \"{{d}}\"\n\"{acme}:badgeNumber\" = {{ template = \"{{b}}\", type = \"integer\" }}\n\"{acme}:remote\" = {{ template = \"{{r}}\", type = \"boolean\" }}\n\"{acme}:floor\" = \"{{f}}\"\n"
            ),
            "t",
        )
        .unwrap();
        let published = from_documents(
            Ok(
                json!({"totalResults": 1, "Resources": [{"name": "User", "endpoint": "/Users",
                "schema": crate::scim::urns::USER, "schemaExtensions": [{"schema": acme}]}]}),
            ),
            Ok(json!({"totalResults": 2, "Resources": [
                {"id": crate::scim::urns::USER, "attributes": [{"name": "userName", "type": "string"}, {"name": "title", "type": "string"}]},
                {"id": acme, "attributes": [{"name": "badgeNumber", "type": "string"}, {"name": "remote", "type": "boolean"}]}
            ]})),
        );
        let f = compare(&spec, &published);
        let why: std::collections::BTreeMap<&str, &str> = f
            .undeclared
            .iter()
            .map(|u| (u.mapping.as_str(), u.why.as_str()))
            .collect();
        assert_eq!(
            why.get(format!("{acme}:badgeNumber").as_str()),
            Some(&"declared as string, the mapping writes integer")
        );
        assert_eq!(
            why.get(format!("{acme}:floor").as_str()),
            Some(&"not declared")
        );
        assert!(why["enterprise.department"].contains("has no schema"));
        // Declared with the type the mapping writes: not named.
        assert!(
            !why.contains_key(format!("{acme}:remote").as_str()),
            "{why:?}"
        );
        assert!(
            !why.contains_key("title") && !why.contains_key("userName"),
            "{why:?}"
        );
        assert_eq!(f.undeclared.len(), 3, "{why:?}");
    }
}
