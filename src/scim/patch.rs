//! The PATCH engine (RFC 7644 §3.5.2): add, remove and replace, with or without a path,
//! value-path filters, sub-attributes and URN-qualified paths.
//!
//! It works on a copy of the resource's attributes that the caller commits only when
//! every operation succeeded, which makes a request atomic. It also accepts what real
//! identity providers send (see the dialect reference): op names in any case, booleans
//! as strings, path-less values keyed by attribute paths (Entra ID), a path-less replace
//! that repeats `id` (Okta), and Entra's legacy member removal — `remove` with
//! `path: "members"` and a value list removes only the listed members.
//!
//! Group members may live outside the JSON map so that a membership change costs O(k)
//! however large the group is; operations on them go to a [`MemberStage`].

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{parse_attr_path, parse_patch_path, CompValue, CompiledFilter, Filter};
use super::model::PatchOperation;
use super::schema::{AttrDef, Mutability, Resolved, ResourceTypeDef};
use super::value::{normalize_single, normalize_value, ReadOnly};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    /// Op names are case-insensitive: Entra ID sends `Add`, `Replace`, `Remove`.
    pub fn parse(s: &str) -> Result<Self, ScimError> {
        if s.eq_ignore_ascii_case("add") {
            Ok(OpKind::Add)
        } else if s.eq_ignore_ascii_case("remove") {
            Ok(OpKind::Remove)
        } else if s.eq_ignore_ascii_case("replace") {
            Ok(OpKind::Replace)
        } else {
            Err(ScimError::invalid_syntax(format!(
                "unknown PATCH op '{s}'; use add, remove or replace"
            )))
        }
    }
}

/// Receives membership changes for a multi-valued attribute kept outside the map
/// (`Group.members`). Implementations stage them and validate (member exists, limits).
pub trait MemberStage {
    fn add(&mut self, members: Vec<Value>) -> Result<(), ScimError>;
    fn remove_ids(&mut self, ids: Vec<String>) -> Result<(), ScimError>;
    fn remove_where(&mut self, filter: &CompiledFilter) -> Result<(), ScimError>;
    fn clear(&mut self) -> Result<(), ScimError>;
}

/// Applies `ops` in order to `attrs`. On error `attrs` may be partly changed: callers
/// apply to a copy and keep it only on success.
pub fn apply(
    rt: &'static ResourceTypeDef,
    attrs: &mut Map<String, Value>,
    ops: &[PatchOperation],
    mut members: Option<&mut dyn MemberStage>,
) -> Result<(), ScimError> {
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax(
            "'Operations' is empty; send at least one operation",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        let kind = OpKind::parse(&op.op)?;
        apply_one(
            rt,
            attrs,
            kind,
            op.path.as_deref(),
            op.value.clone(),
            reborrow(&mut members),
        )
        .map_err(|mut e| {
            e.detail = format!("operation {} ({}): {}", i + 1, op.op, e.detail);
            e
        })?;
    }
    Ok(())
}

fn apply_one(
    rt: &'static ResourceTypeDef,
    attrs: &mut Map<String, Value>,
    kind: OpKind,
    path: Option<&str>,
    value: Option<Value>,
    mut members: Option<&mut dyn MemberStage>,
) -> Result<(), ScimError> {
    let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
        if kind == OpKind::Remove {
            return Err(ScimError::no_target(
                "'remove' needs a 'path' (RFC 7644 §3.5.2.2)",
            ));
        }
        let Some(Value::Object(m)) = value else {
            return Err(ScimError::invalid_syntax(
                "an operation without 'path' needs an object 'value' of attributes",
            ));
        };
        // Okta repeats `id` in its path-less group replace; server-set attributes in a
        // path-less value are ignored, as in a PUT.
        for (k, v) in m.into_iter().filter(|(k, _)| !server_set(k)) {
            apply_keyed(rt, attrs, kind, &k, v, reborrow(&mut members))?;
        }
        return Ok(());
    };
    if let Some(ext) = rt.extension(path) {
        return match (kind, value) {
            (OpKind::Remove, _) => {
                attrs.remove(ext.id);
                Ok(())
            }
            (_, Some(Value::Object(m))) => {
                for (k, v) in m.into_iter().filter(|(k, _)| !server_set(k)) {
                    let r = rt.resolve(Some(ext.id), &k, None)?;
                    apply_target(rt, attrs, kind, r, None, None, Some(v), None)?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "the value for '{path}' must be an object"
            ))),
        };
    }
    let pp = parse_patch_path(path)?;
    let r = rt.resolve(
        pp.attr.urn.as_deref(),
        &pp.attr.name,
        pp.attr.sub.as_deref(),
    )?;
    apply_target(
        rt,
        attrs,
        kind,
        r,
        pp.filter.as_ref(),
        pp.filter_sub.as_deref(),
        value,
        members,
    )
}

/// Keys a client may echo back that the server sets itself.
fn server_set(k: &str) -> bool {
    ["schemas", "id", "meta"]
        .iter()
        .any(|x| k.eq_ignore_ascii_case(x))
}

/// A key of a path-less value: an attribute name, or an attribute path as Entra ID's
/// compliant mode sends (`"name.givenName"`, `"urn:...:User:employeeNumber"`).
fn apply_keyed(
    rt: &'static ResourceTypeDef,
    attrs: &mut Map<String, Value>,
    kind: OpKind,
    key: &str,
    v: Value,
    members: Option<&mut dyn MemberStage>,
) -> Result<(), ScimError> {
    if let Some(ext) = rt.extension(key) {
        let Value::Object(m) = v else {
            return Err(ScimError::invalid_value(format!(
                "'{key}' must be an object"
            )));
        };
        for (k, x) in m.into_iter().filter(|(k, _)| !server_set(k)) {
            let r = rt.resolve(Some(ext.id), &k, None)?;
            apply_target(rt, attrs, kind, r, None, None, Some(x), None)?;
        }
        return Ok(());
    }
    let p = parse_attr_path(key)?;
    let r = rt.resolve(p.urn.as_deref(), &p.name, p.sub.as_deref())?;
    apply_target(rt, attrs, kind, r, None, None, Some(v), members)
}

/// Reborrows the stage for one call; `as_deref_mut` cannot shorten the trait object's
/// lifetime inside the `Option`.
fn reborrow<'a>(m: &'a mut Option<&mut dyn MemberStage>) -> Option<&'a mut dyn MemberStage> {
    match m {
        Some(x) => Some(&mut **x),
        None => None,
    }
}

fn is_members(rt: &ResourceTypeDef, r: &Resolved) -> bool {
    rt.name == "Group" && r.container.is_none() && r.def.name == "members"
}

#[allow(clippy::too_many_arguments)]
fn apply_target(
    rt: &'static ResourceTypeDef,
    attrs: &mut Map<String, Value>,
    kind: OpKind,
    r: Resolved,
    filter: Option<&Filter>,
    filter_sub: Option<&str>,
    value: Option<Value>,
    members: Option<&mut dyn MemberStage>,
) -> Result<(), ScimError> {
    if is_members(rt, &r) {
        if let Some(stage) = members {
            return members_op(rt, stage, kind, r, filter, filter_sub, value);
        }
    }
    let def = r.def;
    if def.mutability == Mutability::ReadOnly
        || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    {
        return Err(ScimError::mutability(format!(
            "'{}' is read-only",
            r.leaf().name
        )));
    }
    // `"value": null` arrives as no value; for replace it means unassign (RFC 7644 §3.5.1).
    if kind == OpKind::Add && value.is_none() {
        return Err(ScimError::invalid_syntax("'add' needs a 'value'"));
    }
    let container = container_mut(attrs, r.container);
    if def.mutability == Mutability::Immutable
        && (kind != OpKind::Add || container.contains_key(def.name))
    {
        return Err(ScimError::mutability(format!(
            "'{}' is immutable once set",
            def.name
        )));
    }
    if let Some(f) = filter {
        if !(def.is_complex() && def.multi) {
            return Err(ScimError::invalid_path(format!(
                "a value filter needs a multi-valued complex attribute; '{}' is not one",
                def.name
            )));
        }
        let sub = match filter_sub {
            Some(s) => Some(def.sub_attr(s).ok_or_else(|| {
                ScimError::invalid_path(format!("'{}' has no sub-attribute '{s}'", def.name))
            })?),
            None => None,
        };
        let cf = CompiledFilter::compile_element(rt, def, f)?;
        return filtered(container, def, kind, f, &cf, sub, value);
    }
    match r.sub {
        Some(sub) => sub_op(container, def, sub, kind, value),
        None => whole_op(container, def, kind, value),
    }
}

fn container_mut<'a>(
    attrs: &'a mut Map<String, Value>,
    container: Option<&'static str>,
) -> &'a mut Map<String, Value> {
    match container {
        None => attrs,
        Some(urn) => {
            let e = attrs
                .entry(urn.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            e.as_object_mut().expect("just made an object")
        }
    }
}

/// The key a multi-valued element is identified by when removing by value.
fn same_element(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// RFC 7643 §2.4: `primary` true at most once; a newly set primary demotes the others.
fn demote_primaries(items: &mut [Value], keep: usize) {
    for (i, it) in items.iter_mut().enumerate() {
        if i != keep {
            if let Some(p) = it.get_mut("primary") {
                if p == &Value::Bool(true) {
                    *p = Value::Bool(false);
                }
            }
        }
    }
}

fn whole_op(
    c: &mut Map<String, Value>,
    def: &'static AttrDef,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if kind == OpKind::Remove {
        match (value, def.multi) {
            // A value list on remove selects what to remove: Entra ID's legacy form, and
            // harmless for any other multi-valued attribute.
            (Some(v), true) if !v.is_null() => {
                let gone =
                    normalize_value(def, v, ReadOnly::Ignore)?.unwrap_or(Value::Array(vec![]));
                if let Some(Value::Array(items)) = c.get_mut(def.name) {
                    let gone = gone.as_array().cloned().unwrap_or_default();
                    items.retain(|it| !gone.iter().any(|g| same_element(it, g)));
                    if items.is_empty() {
                        c.remove(def.name);
                    }
                }
            }
            _ => {
                c.remove(def.name);
            }
        }
        return Ok(());
    }
    let v = normalize_value(def, value.unwrap_or(Value::Null), ReadOnly::Reject)?;
    let Some(v) = v else {
        // `replace` with null or [] unassigns (RFC 7644 §3.5.1 semantics); `add` of nothing
        // is a no-op.
        if kind == OpKind::Replace {
            c.remove(def.name);
        }
        return Ok(());
    };
    if def.multi {
        let new = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        let items = match (kind, c.get_mut(def.name)) {
            (OpKind::Add, Some(Value::Array(items))) => {
                for n in new {
                    // Adding a value that is already there is a no-op (RFC 7644 §3.5.2.1).
                    if !items.iter().any(|it| same_element(it, &n)) {
                        items.push(n);
                    }
                }
                items
            }
            _ => {
                c.insert(def.name.to_string(), Value::Array(new));
                c.get_mut(def.name)
                    .and_then(Value::as_array_mut)
                    .expect("inserted")
            }
        };
        if let Some(last) = items
            .iter()
            .rposition(|it| it.get("primary") == Some(&Value::Bool(true)))
        {
            demote_primaries(items, last);
        }
        return Ok(());
    }
    match (def.is_complex(), c.get_mut(def.name), v) {
        (true, Some(Value::Object(existing)), Value::Object(m)) => {
            existing.extend(m);
        }
        (_, _, v) => {
            c.insert(def.name.to_string(), v);
        }
    }
    Ok(())
}

fn sub_op(
    c: &mut Map<String, Value>,
    def: &'static AttrDef,
    sub: &'static AttrDef,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let v = match kind {
        OpKind::Remove => None,
        _ => normalize_single(sub, value.unwrap_or(Value::Null))?,
    };
    if def.multi {
        let items = match c.get_mut(def.name) {
            Some(Value::Array(a)) => a,
            _ => {
                if let Some(v) = v {
                    c.insert(def.name.to_string(), Value::Array(vec![obj1(sub.name, v)]));
                }
                return Ok(());
            }
        };
        for it in items.iter_mut() {
            set_sub(it, sub.name, v.clone());
        }
        return Ok(());
    }
    match (c.get_mut(def.name), v) {
        (Some(o @ Value::Object(_)), v) => {
            set_sub(o, sub.name, v);
            if o.as_object().is_some_and(Map::is_empty) {
                c.remove(def.name);
            }
        }
        (_, Some(v)) => {
            c.insert(def.name.to_string(), obj1(sub.name, v));
        }
        (_, None) => {}
    }
    Ok(())
}

fn obj1(k: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(k.to_string(), v);
    Value::Object(m)
}

fn set_sub(o: &mut Value, k: &str, v: Option<Value>) {
    if let Value::Object(m) = o {
        match v {
            Some(v) => {
                m.insert(k.to_string(), v);
            }
            None => {
                m.remove(k);
            }
        }
    }
}

/// An element built from a filter of `eq` terms, for add/replace that match nothing:
/// Entra ID replaces `emails[type eq "work"].value` on users that have no work email yet.
fn element_from_terms(
    def: &'static AttrDef,
    f: &Filter,
) -> Result<Option<Map<String, Value>>, ScimError> {
    let Some(terms) = f.eq_terms() else {
        return Ok(None);
    };
    let mut m = Map::new();
    for (name, v) in terms {
        let Some(sd) = def.sub_attr(name) else {
            return Ok(None);
        };
        let jv = match v {
            CompValue::Null => continue,
            CompValue::Bool(b) => Value::Bool(*b),
            CompValue::Number(n) => Value::Number(n.clone()),
            CompValue::Str(s) => Value::String(s.clone()),
        };
        if let Some(x) = normalize_single(sd, jv)? {
            m.insert(sd.name.to_string(), x);
        }
    }
    Ok(Some(m))
}

fn filtered(
    c: &mut Map<String, Value>,
    def: &'static AttrDef,
    kind: OpKind,
    f: &Filter,
    cf: &CompiledFilter,
    sub: Option<&'static AttrDef>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let mut items = match c.remove(def.name) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let hits: Vec<usize> = (0..items.len())
        .filter(|&i| cf.matches_element(&items[i]))
        .collect();
    let result = (|| {
        match kind {
            OpKind::Remove => {
                // Removing what is not there succeeds: deprovisioning must be idempotent.
                match sub {
                    Some(s) => hits
                        .iter()
                        .for_each(|&i| set_sub(&mut items[i], s.name, None)),
                    None => {
                        let mut i = 0;
                        items.retain(|_| {
                            i += 1;
                            !hits.contains(&(i - 1))
                        });
                    }
                }
            }
            OpKind::Add | OpKind::Replace => {
                let new: Map<String, Value> = match sub {
                    Some(s) => match normalize_single(s, value.unwrap_or(Value::Null))? {
                        Some(v) => {
                            let mut m = Map::new();
                            m.insert(s.name.to_string(), v);
                            m
                        }
                        None => Map::new(),
                    },
                    None => match normalize_single(def, value.unwrap_or(Value::Null))? {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    },
                };
                if hits.is_empty() {
                    let base = match element_from_terms(def, f)? {
                        Some(b) => b,
                        None if kind == OpKind::Add && sub.is_none() => Map::new(),
                        None => {
                            return Err(ScimError::no_target(format!(
                                "no value of '{}' matches the filter [{f}]",
                                def.name
                            )))
                        }
                    };
                    let mut el = base;
                    el.extend(new);
                    items.push(Value::Object(el));
                    let last = items.len() - 1;
                    if items[last].get("primary") == Some(&Value::Bool(true)) {
                        demote_primaries(&mut items, last);
                    }
                } else {
                    for &i in &hits {
                        if let Value::Object(m) = &mut items[i] {
                            m.extend(new.clone());
                        }
                    }
                    if new.get("primary") == Some(&Value::Bool(true)) {
                        demote_primaries(&mut items, hits[0]);
                    }
                }
            }
        }
        Ok(())
    })();
    if !items.is_empty() {
        c.insert(def.name.to_string(), Value::Array(items));
    }
    result
}

fn members_op(
    rt: &'static ResourceTypeDef,
    stage: &mut dyn MemberStage,
    kind: OpKind,
    r: Resolved,
    filter: Option<&Filter>,
    filter_sub: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if r.sub.is_some() || filter_sub.is_some() {
        return Err(ScimError::mutability(
            "member sub-attributes are immutable; remove and add the member instead",
        ));
    }
    let list = |v: Option<Value>| -> Result<Vec<Value>, ScimError> {
        match normalize_value(r.def, v.unwrap_or(Value::Null), ReadOnly::Ignore)? {
            Some(Value::Array(a)) => Ok(a),
            _ => Ok(Vec::new()),
        }
    };
    let ids_of = |items: Vec<Value>| -> Result<Vec<String>, ScimError> {
        items
            .into_iter()
            .map(|m| match m.get("value").and_then(Value::as_str) {
                Some(s) => Ok(s.to_string()),
                None => Err(ScimError::invalid_value(
                    "each member needs a 'value' (the member's id)",
                )),
            })
            .collect()
    };
    match (kind, filter) {
        (OpKind::Add, None) => {
            if value.is_none() {
                return Err(ScimError::invalid_syntax(
                    "add needs a 'value' with the members to add",
                ));
            }
            stage.add(list(value)?)
        }
        (OpKind::Add, Some(_)) => Err(ScimError::invalid_path("add to 'members' takes no filter")),
        (OpKind::Remove, None) => match value {
            Some(v) if !v.is_null() => stage.remove_ids(ids_of(list(Some(v))?)?),
            _ => stage.clear(),
        },
        (OpKind::Remove, Some(f)) => match single_value_eq(f) {
            Some(id) => stage.remove_ids(vec![id]),
            None => stage.remove_where(&CompiledFilter::compile_element(rt, r.def, f)?),
        },
        (OpKind::Replace, None) => {
            stage.clear()?;
            stage.add(list(value)?)
        }
        (OpKind::Replace, Some(f)) => {
            stage.remove_where(&CompiledFilter::compile_element(rt, r.def, f)?)?;
            stage.add(list(value)?)
        }
    }
}

/// `value eq "id"`: the member filter every IdP uses, answered without a scan.
fn single_value_eq(f: &Filter) -> Option<String> {
    match f.eq_terms()?.as_slice() {
        [(name, CompValue::Str(s))] if name.eq_ignore_ascii_case("value") => Some(s.clone()),
        _ => None,
    }
}
