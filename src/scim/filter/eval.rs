//! Filter evaluation, compiled against a resource type.
//!
//! Compiling resolves every attribute path to its canonical key, `caseExact` and type
//! once, lower-cases case-insensitive operands once, and rejects comparisons the RFC
//! forbids (`gt` on a boolean, §3.4.2.2), so a scan over a large store costs only the
//! comparisons themselves.

use serde_json::Value;
use std::cmp::Ordering;
use time::OffsetDateTime;

use super::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType, ResourceTypeDef};
use crate::scim::value::{parse_datetime, str_eq, str_lower};

/// What a filter is evaluated against: a resource's attributes, plus the members of a
/// group, which a server may keep outside the JSON for O(1) membership changes.
pub trait FilterTarget {
    /// The value of a top-level attribute (`container` is an extension URN or `None`).
    fn attribute(&self, container: Option<&str>, key: &str) -> Option<&Value>;
    /// Whether the group has this member; `None` when members are in `attribute`.
    fn has_member(&self, _id: &str) -> Option<bool> {
        None
    }
    /// The members as a JSON array, for the rare filter that needs more than `value eq`.
    fn members_json(&self) -> Option<Value> {
        None
    }
}

impl FilterTarget for serde_json::Map<String, Value> {
    fn attribute(&self, container: Option<&str>, key: &str) -> Option<&Value> {
        match container {
            None => self.get(key),
            Some(urn) => self.get(urn)?.get(key),
        }
    }
}

#[derive(Debug, Clone)]
struct Getter {
    container: Option<&'static str>,
    key: &'static str,
    sub: Option<&'static str>,
    /// `true` inside a value path: `key` is looked up in the element, not the resource.
    element: bool,
    /// `Group.members`, answered by [`FilterTarget::has_member`] where possible.
    members: bool,
}

#[derive(Debug, Clone)]
enum Operand {
    Null,
    Bool(bool),
    Num(f64),
    /// Original and, when the attribute is case-insensitive, lower-cased.
    Str(String, Option<String>),
    Time(OffsetDateTime),
}

#[derive(Debug, Clone)]
enum Node {
    Cmp {
        get: Getter,
        op: CompareOp,
        rhs: Operand,
        case_exact: bool,
    },
    Present(Getter),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    ValuePath(Getter, Box<Node>),
    /// `members[value eq "x"]` or `members.value eq "x"`: one hash lookup.
    MemberEq(String),
}

/// A filter resolved against a resource type, ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
}

struct Compiler<'a> {
    rt: &'a ResourceTypeDef,
    eq_and_only: bool,
}

impl CompiledFilter {
    /// Compiles `f` for resources of type `rt`.
    pub fn compile(rt: &ResourceTypeDef, f: &Filter) -> Result<Self, ScimError> {
        Self::compile_with(rt, f, false)
    }

    /// Like [`compile`](Self::compile); with `eq_and_only` every operator other than `eq`
    /// and `and` is refused, as some providers (AWS IAM Identity Center) do.
    pub fn compile_with(
        rt: &ResourceTypeDef,
        f: &Filter,
        eq_and_only: bool,
    ) -> Result<Self, ScimError> {
        let c = Compiler { rt, eq_and_only };
        Ok(CompiledFilter {
            root: c.node(f, None)?,
        })
    }

    /// Compiles a filter whose paths are sub-attributes of `parent` (a value filter of a
    /// PATCH path), to be evaluated with [`matches_element`](Self::matches_element).
    pub fn compile_element(
        rt: &ResourceTypeDef,
        parent: &'static AttrDef,
        f: &Filter,
    ) -> Result<Self, ScimError> {
        let c = Compiler {
            rt,
            eq_and_only: false,
        };
        Ok(CompiledFilter {
            root: c.node(f, Some(parent))?,
        })
    }

    pub fn matches(&self, target: &dyn FilterTarget) -> bool {
        eval(&self.root, target, None)
    }

    /// Evaluates a filter compiled with [`compile_element`](Self::compile_element).
    pub fn matches_element(&self, element: &Value) -> bool {
        eval(&self.root, &EmptyTarget, Some(element))
    }

    /// The value of a filter that is exactly `userName eq "x"`, `externalId eq "x"`,
    /// `id eq "x"` or `displayName eq "x"`: such lookups are answered from an index.
    pub fn indexed_eq(&self) -> Option<(&'static str, &str)> {
        match &self.root {
            Node::Cmp {
                get:
                    Getter {
                        container: None,
                        key,
                        sub: None,
                        element: false,
                        ..
                    },
                op: CompareOp::Eq,
                rhs: Operand::Str(s, _),
                ..
            } => Some((key, s.as_str())),
            _ => None,
        }
    }

    /// The member id of a filter that is exactly a membership test.
    pub fn member_eq(&self) -> Option<&str> {
        match &self.root {
            Node::MemberEq(id) => Some(id),
            _ => None,
        }
    }
}

struct EmptyTarget;
impl FilterTarget for EmptyTarget {
    fn attribute(&self, _: Option<&str>, _: &str) -> Option<&Value> {
        None
    }
}

impl Compiler<'_> {
    fn node(&self, f: &Filter, parent: Option<&'static AttrDef>) -> Result<Node, ScimError> {
        Ok(match f {
            Filter::And(a, b) => Node::And(
                Box::new(self.node(a, parent)?),
                Box::new(self.node(b, parent)?),
            ),
            Filter::Or(a, b) => {
                self.refuse("or")?;
                Node::Or(
                    Box::new(self.node(a, parent)?),
                    Box::new(self.node(b, parent)?),
                )
            }
            Filter::Not(a) => {
                self.refuse("not")?;
                Node::Not(Box::new(self.node(a, parent)?))
            }
            Filter::Present(p) => {
                self.refuse("pr")?;
                Node::Present(self.getter(p, parent, true)?.0)
            }
            Filter::Compare(p, op, v) => {
                if *op != CompareOp::Eq {
                    self.refuse(op.as_str())?;
                }
                let (get, leaf) = self.getter(p, parent, true)?;
                if get.members && get.sub.is_some_and(|s| s == "value") && *op == CompareOp::Eq {
                    if let CompValue::Str(s) = v {
                        return Ok(Node::MemberEq(s.clone()));
                    }
                }
                let rhs = operand(leaf, *op, v, p)?;
                Node::Cmp {
                    get,
                    op: *op,
                    rhs,
                    case_exact: leaf.case_exact,
                }
            }
            Filter::ValuePath(p, inner) => {
                self.refuse("[...]")?;
                if parent.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "value filters cannot be nested ('{p}[...]')"
                    )));
                }
                let (get, def) = self.getter(p, None, false)?;
                if !def.is_complex() {
                    return Err(ScimError::invalid_filter(format!(
                        "'{p}' is not complex; a value filter needs sub-attributes"
                    )));
                }
                let inner = self.node(inner, Some(def))?;
                if get.members {
                    if let Node::Cmp {
                        get: Getter { key: "value", .. },
                        op: CompareOp::Eq,
                        rhs: Operand::Str(s, _),
                        ..
                    } = &inner
                    {
                        return Ok(Node::MemberEq(s.clone()));
                    }
                }
                Node::ValuePath(get, Box::new(inner))
            }
        })
    }

    fn refuse(&self, what: &str) -> Result<(), ScimError> {
        if self.eq_and_only {
            return Err(ScimError::invalid_filter(format!(
                "this server supports only 'eq' and 'and' in filters, not '{what}'"
            )));
        }
        Ok(())
    }

    fn getter(
        &self,
        p: &AttrPath,
        parent: Option<&'static AttrDef>,
        implicit_value: bool,
    ) -> Result<(Getter, &'static AttrDef), ScimError> {
        let to_filter_err = |e: ScimError| ScimError::invalid_filter(e.detail);
        if let Some(parent) = parent {
            let def = parent.sub_attr(&p.name).ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "'{}' has no sub-attribute '{}'",
                    parent.name, p.name
                ))
            })?;
            return Ok((
                Getter {
                    container: None,
                    key: def.name,
                    sub: None,
                    element: true,
                    members: false,
                },
                def,
            ));
        }
        let r = self
            .rt
            .resolve(p.urn.as_deref(), &p.name, p.sub.as_deref())
            .map_err(to_filter_err)?;
        // A complex multi-valued attribute compared without a sub-attribute compares its
        // `value` (e.g. `emails co "@example.com"`).
        let sub = match r.sub {
            Some(s) => Some(s),
            None if implicit_value && r.def.is_complex() && r.def.multi => r.def.sub_attr("value"),
            None => None,
        };
        let leaf = sub.unwrap_or(r.def);
        Ok((
            Getter {
                container: r.container,
                key: r.def.name,
                sub: sub.map(|s| s.name),
                element: false,
                members: r.container.is_none()
                    && r.def.name == "members"
                    && self.rt.name == "Group",
            },
            leaf,
        ))
    }
}

fn operand(
    def: &AttrDef,
    op: CompareOp,
    v: &CompValue,
    p: &AttrPath,
) -> Result<Operand, ScimError> {
    let ordering = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if ordering && matches!(def.ty, AttrType::Boolean | AttrType::Binary) {
        return Err(ScimError::invalid_filter(format!(
            "'{}' cannot be used with '{p}', a {:?} attribute (RFC 7644 §3.4.2.2)",
            op.as_str(),
            def.ty
        )));
    }
    Ok(match (def.ty, v) {
        (_, CompValue::Null) => Operand::Null,
        (AttrType::Boolean, CompValue::Bool(b)) => Operand::Bool(*b),
        // Several IdPs quote booleans ("True"); accept them as booleans.
        (AttrType::Boolean, CompValue::Str(s)) if s.eq_ignore_ascii_case("true") => {
            Operand::Bool(true)
        }
        (AttrType::Boolean, CompValue::Str(s)) if s.eq_ignore_ascii_case("false") => {
            Operand::Bool(false)
        }
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(n)) if !substring => {
            Operand::Num(n.as_f64().unwrap_or(f64::NAN))
        }
        (AttrType::DateTime, CompValue::Str(s)) if !substring => match parse_datetime(s) {
            Some(t) => Operand::Time(t),
            None => {
                return Err(ScimError::invalid_filter(format!(
                    "'{s}' is not a dateTime for '{p}'; use RFC 3339, e.g. \"2011-05-13T04:42:34Z\""
                )))
            }
        },
        (_, CompValue::Str(s)) => {
            let lower = (!def.case_exact).then(|| str_lower(s));
            Operand::Str(s.clone(), lower)
        }
        (_, CompValue::Bool(b)) => Operand::Str(b.to_string(), None),
        (_, CompValue::Number(n)) => Operand::Str(n.to_string(), None),
    })
}

fn eval(n: &Node, t: &dyn FilterTarget, el: Option<&Value>) -> bool {
    match n {
        Node::And(a, b) => eval(a, t, el) && eval(b, t, el),
        Node::Or(a, b) => eval(a, t, el) || eval(b, t, el),
        Node::Not(a) => !eval(a, t, el),
        Node::MemberEq(id) => match t.has_member(id) {
            Some(b) => b,
            None => t
                .attribute(None, "members")
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|m| m.get("value").and_then(Value::as_str) == Some(id))
                }),
        },
        Node::Present(g) => any_value(g, t, el, &mut |v| present(v)),
        Node::Cmp {
            get,
            op,
            rhs,
            case_exact,
        } => {
            let hit = any_value(get, t, el, &mut |v| compare(v, *op, rhs, *case_exact));
            // `ne` with no value at all matches: the attribute is not equal to anything.
            if *op == CompareOp::Ne {
                let any = any_value(get, t, el, &mut |v| !v.is_null());
                return hit || !any;
            }
            if let (CompareOp::Eq, Operand::Null) = (op, rhs) {
                return !any_value(get, t, el, &mut present);
            }
            hit
        }
        Node::ValuePath(g, inner) => {
            let owned;
            let top = if g.members {
                owned = t.members_json();
                owned.as_ref().or_else(|| t.attribute(None, g.key))
            } else {
                t.attribute(g.container, g.key)
            };
            match top {
                Some(Value::Array(items)) => {
                    items.iter().any(|e| eval(inner, &EmptyTarget, Some(e)))
                }
                Some(v @ Value::Object(_)) => eval(inner, &EmptyTarget, Some(v)),
                _ => false,
            }
        }
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Calls `f` on each value the getter designates until it returns true.
fn any_value(
    g: &Getter,
    t: &dyn FilterTarget,
    el: Option<&Value>,
    f: &mut dyn FnMut(&Value) -> bool,
) -> bool {
    let owned;
    let top = if g.element {
        el.and_then(|e| e.get(g.key))
    } else if g.members {
        owned = t.members_json();
        owned.as_ref().or_else(|| t.attribute(None, g.key))
    } else {
        t.attribute(g.container, g.key)
    };
    let Some(top) = top else { return false };
    let mut visit = |v: &Value| -> bool {
        match g.sub {
            Some(s) => v.get(s).is_some_and(&mut *f),
            None => f(v),
        }
    };
    match top {
        Value::Array(items) => items.iter().any(&mut visit),
        v => visit(v),
    }
}

fn compare(v: &Value, op: CompareOp, rhs: &Operand, case_exact: bool) -> bool {
    match (v, rhs) {
        (_, Operand::Null) => false,
        (Value::Bool(a), Operand::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        (Value::Number(a), Operand::Num(b)) => {
            let Some(a) = a.as_f64() else { return false };
            ordered(a.partial_cmp(b), op)
        }
        (Value::String(a), Operand::Time(b)) => match parse_datetime(a) {
            Some(a) => ordered(Some(a.cmp(b)), op),
            None => false,
        },
        (Value::String(a), Operand::Str(b, lower)) => {
            compare_str(a, b, lower.as_deref(), op, case_exact)
        }
        _ => false,
    }
}

fn ordered(o: Option<Ordering>, op: CompareOp) -> bool {
    let Some(o) = o else { return false };
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        _ => false,
    }
}

fn compare_str(a: &str, b: &str, b_lower: Option<&str>, op: CompareOp, case_exact: bool) -> bool {
    if case_exact {
        return match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            CompareOp::Co => a.contains(b),
            CompareOp::Sw => a.starts_with(b),
            CompareOp::Ew => a.ends_with(b),
            _ => ordered(Some(a.cmp(b)), op),
        };
    }
    let bl = b_lower.unwrap_or(b);
    match op {
        CompareOp::Eq => str_eq(a, bl),
        CompareOp::Ne => !str_eq(a, bl),
        _ => {
            let al = str_lower(a);
            match op {
                CompareOp::Co => al.contains(bl),
                CompareOp::Sw => al.starts_with(bl),
                CompareOp::Ew => al.ends_with(bl),
                _ => ordered(Some(al.as_str().cmp(bl)), op),
            }
        }
    }
}
