//! Resource operations of the embedded server, independent of HTTP: create, read,
//! replace, patch, delete and list. The HTTP handlers and `/Bulk` both call these, so a
//! bulk operation behaves exactly like the request it stands for.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::members::{initial_members, MemberChanges, MemberOverlay};
use super::profile::Profile;
use super::render::{list_head, list_tail, render, Projection, ResourceView};
use super::store::{Entry, Inner, Kind, Members, Store, Table};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::{parse, CompiledFilter, FilterTarget};
use crate::scim::model::PatchRequest;
use crate::scim::patch;
use crate::scim::schema::{Mutability, ResourceTypeDef};
use crate::scim::value::{check_required, format_datetime, normalize_resource, str_lower};

/// What an operation needs besides its arguments.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub profile: &'static Profile,
    /// `scheme://host[:port]` as the client addressed us, for `meta.location` and `$ref`.
    pub base_url: &'a str,
    /// Invitation-style creation: POST answers 202 and the resource appears later.
    pub async_create: Option<Duration>,
}

/// A successful operation, ready to become an HTTP response or a Bulk result.
#[derive(Debug)]
pub struct Outcome {
    pub status: u16,
    pub body: Option<Vec<u8>>,
    pub etag: Option<String>,
    pub location: Option<String>,
}

/// An `If-Match` / `If-None-Match` precondition (RFC 7644 §3.14).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let strip = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let want = strip(etag);
    header
        .split(',')
        .any(|h| h.trim() == "*" || strip(h) == want)
}

fn now_string() -> String {
    // Formatting an RFC 3339 time costs more than the rest of a create's bookkeeping;
    // meta timestamps have one-second resolution, so each thread formats once a second.
    thread_local! {
        static NOW: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = OffsetDateTime::now_utc();
    let secs = now.unix_timestamp();
    NOW.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (
                secs,
                format_datetime(now.replace_nanosecond(0).unwrap_or(now)),
            );
        }
        c.1.clone()
    })
}

fn visible<'a>(t: &'a Table, id: &str, now: Instant) -> Result<&'a Entry, ScimError> {
    match t.by_id.get(id) {
        Some(e) if e.visible(now) => Ok(e),
        _ => Err(ScimError::not_found(format!(
            "{} {id} not found",
            t.kind.name()
        ))),
    }
}

impl Ctx<'_> {
    fn location(&self, kind: Kind, id: &str) -> String {
        format!("{}{}/{id}", self.base_url, kind.endpoint())
    }

    fn render_one(
        &self,
        inner: Option<&Inner>,
        kind: Kind,
        attrs: &Map<String, Value>,
        members: Option<&Members>,
        proj: &Projection,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        render(
            &mut out,
            &ResourceView {
                kind,
                attrs,
                members,
                members_in_reads: self.profile.members_in_reads,
            },
            inner,
            proj,
            self.base_url,
        );
        out
    }

    /// POST /Users, POST /Groups.
    pub fn create(&self, kind: Kind, body: Value, proj: &Projection) -> Result<Outcome, ScimError> {
        let rt = self.profile.rt(kind);
        let mut attrs = normalize_resource(rt, body)?;
        let members_value = if kind == Kind::Group {
            attrs.remove("members")
        } else {
            None
        };
        let id = self.store.new_id();
        let now = now_string();
        let version = self.store.next_version();
        let mut full = Map::with_capacity(attrs.len() + 2);
        full.insert("id".into(), Value::String(id.clone()));
        full.extend(attrs);
        full.insert(
            "meta".into(),
            serde_json::json!({
                "resourceType": rt.name,
                "created": now,
                "lastModified": now,
                "version": super::store::etag(version),
            }),
        );
        // Invitation-style providers create users later; groups exist at once.
        let visible_at = self
            .async_create
            .filter(|_| kind == Kind::User)
            .map(|d| Instant::now() + d);
        // A new user belongs to no group yet, so its answer can be written before the
        // lock is taken; a group's needs its members, resolved under the lock.
        let mut body = (kind == Kind::User && visible_at.is_none())
            .then(|| self.render_one(None, kind, &full, None, proj));
        let mut inner = self.store.write();
        inner.table_mut(kind).settle(Instant::now());
        inner.table(kind).check_unique(&full, None)?;
        let members = match kind {
            Kind::Group => Some(initial_members(
                &inner,
                self.profile,
                Some(&id),
                members_value,
            )?),
            Kind::User => None,
        };
        if kind == Kind::Group && visible_at.is_none() {
            body = Some(self.render_one(Some(&inner), kind, &full, members.as_ref(), proj));
        }
        if let Some(m) = &members {
            let ids: Vec<String> = m.keys().cloned().collect();
            for mid in ids {
                inner.add_membership(&id, &mid);
            }
        }
        inner.table_mut(kind).insert(
            id.clone(),
            Box::new(Entry {
                slot: 0,
                attrs: full,
                members,
                version,
                visible_at,
            }),
        );
        drop(inner);
        if visible_at.is_some() {
            return Ok(Outcome {
                status: 202,
                body: None,
                etag: None,
                location: None,
            });
        }
        Ok(Outcome {
            status: 201,
            body,
            etag: Some(super::store::etag(version)),
            location: Some(self.location(kind, &id)),
        })
    }

    /// GET /Users/{id}; `if_none_match` answers 304 when the client's copy is current.
    pub fn get(
        &self,
        kind: Kind,
        id: &str,
        proj: &Projection,
        if_none_match: Option<&str>,
    ) -> Result<Outcome, ScimError> {
        self.settle(kind);
        let inner = self.store.read();
        let e = visible(inner.table(kind), id, Instant::now())?;
        let etag = e.etag();
        if if_none_match.is_some_and(|h| self.profile.etag && etag_matches(h, &etag)) {
            return Ok(Outcome {
                status: 304,
                body: None,
                etag: Some(etag),
                location: None,
            });
        }
        let body = self.render_one(Some(&inner), kind, &e.attrs, e.members.as_ref(), proj);
        Ok(Outcome {
            status: 200,
            body: Some(body),
            etag: Some(etag),
            location: Some(self.location(kind, id)),
        })
    }

    fn check_if_match(&self, e: &Entry, if_match: Option<&str>) -> Result<(), ScimError> {
        if let Some(h) = if_match {
            if self.profile.etag && !etag_matches(h, &e.etag()) {
                return Err(ScimError::new(
                    412,
                    None,
                    format!(
                        "the resource changed (now {}); GET it again and retry with the new ETag",
                        e.etag()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn touch(&self, attrs: &mut Map<String, Value>) -> u64 {
        let version = self.store.next_version();
        if let Some(Value::Object(m)) = attrs.get_mut("meta") {
            m.insert("lastModified".into(), Value::String(now_string()));
            m.insert("version".into(), Value::String(super::store::etag(version)));
        }
        version
    }

    /// PUT: replaces every writable attribute (RFC 7644 §3.5.1).
    pub fn replace(
        &self,
        kind: Kind,
        id: &str,
        body: Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Outcome, ScimError> {
        let rt = self.profile.rt(kind);
        let mut attrs = normalize_resource(rt, body)?;
        let members_value = if kind == Kind::Group {
            attrs.remove("members")
        } else {
            None
        };
        let mut inner = self.store.write();
        let now = Instant::now();
        let e = visible(inner.table(kind), id, now)?;
        self.check_if_match(e, if_match)?;
        check_immutable(rt, &e.attrs, &attrs)?;
        let mut full = Map::with_capacity(attrs.len() + 2);
        full.insert("id".into(), Value::String(id.to_string()));
        full.extend(attrs);
        if let Some(m) = e.attrs.get("meta") {
            full.insert("meta".into(), m.clone());
        }
        inner.table(kind).check_unique(&full, Some(id))?;
        let changes = match kind {
            Kind::Group => {
                let new = initial_members(&inner, self.profile, Some(id), members_value)?;
                let old = e.members.as_ref();
                let mut ch = MemberChanges::default();
                if let Some(old) = old {
                    for k in old.keys().filter(|k| !new.contains_key(*k)) {
                        ch.changes.insert(k.clone(), None);
                    }
                }
                for (k, m) in new {
                    ch.changes.insert(k, Some(m));
                }
                Some(ch)
            }
            Kind::User => None,
        };
        let version = self.touch(&mut full);
        inner.table_mut(kind).update_attrs(id, full, version);
        if let Some(ch) = changes {
            ch.commit(&mut inner, id);
        }
        let e = visible(inner.table(kind), id, now)?;
        let body = self.render_one(Some(&inner), kind, &e.attrs, e.members.as_ref(), proj);
        Ok(Outcome {
            status: 200,
            body: Some(body),
            etag: Some(e.etag()),
            location: Some(self.location(kind, id)),
        })
    }

    /// PATCH (RFC 7644 §3.5.2). A group PATCH answers 204 unless the client asked for
    /// attributes: writing a 100,000-member group back after each membership change
    /// would cost more than the change.
    pub fn patch(
        &self,
        kind: Kind,
        id: &str,
        req: PatchRequest,
        if_match: Option<&str>,
        proj: &Projection,
        want_body: bool,
    ) -> Result<Outcome, ScimError> {
        let rt = self.profile.rt(kind);
        let mut inner = self.store.write();
        let now = Instant::now();
        let e = visible(inner.table(kind), id, now)?;
        self.check_if_match(e, if_match)?;
        let mut attrs = e.attrs.clone();
        let staged = {
            let mut overlay =
                MemberOverlay::new(&inner, e.members.as_ref(), self.profile, Some(id));
            let stage: Option<&mut dyn patch::MemberStage> = if kind == Kind::Group {
                Some(&mut overlay)
            } else {
                None
            };
            patch::apply(rt, &mut attrs, &req.operations, stage)?;
            overlay.staged
        };
        check_required(rt, &attrs)?;
        inner.table(kind).check_unique(&attrs, Some(id))?;
        let changed = attrs != e.attrs || !staged.is_empty();
        if changed {
            let version = self.touch(&mut attrs);
            inner.table_mut(kind).update_attrs(id, attrs, version);
            staged.commit(&mut inner, id);
        }
        let e = visible(inner.table(kind), id, now)?;
        let etag = Some(e.etag());
        if kind == Kind::Group && !want_body {
            return Ok(Outcome {
                status: 204,
                body: None,
                etag,
                location: None,
            });
        }
        let body = self.render_one(Some(&inner), kind, &e.attrs, e.members.as_ref(), proj);
        Ok(Outcome {
            status: 200,
            body: Some(body),
            etag,
            location: Some(self.location(kind, id)),
        })
    }

    /// DELETE; memberships of the deleted resource go with it.
    pub fn delete(
        &self,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Outcome, ScimError> {
        let mut inner = self.store.write();
        let e = visible(inner.table(kind), id, Instant::now())?;
        self.check_if_match(e, if_match)?;
        inner.delete(kind, id);
        Ok(Outcome {
            status: 204,
            body: None,
            etag: None,
            location: None,
        })
    }

    fn settle(&self, kind: Kind) {
        if self.store.read().table(kind).pending > 0 {
            self.store.write().table_mut(kind).settle(Instant::now());
        }
    }

    /// GET /Users?…, POST /Users/.search.
    pub fn list(&self, kind: Kind, q: &ListQuery) -> Result<Outcome, ScimError> {
        let rt = self.profile.rt(kind);
        let p = self.profile;
        if q.start_index.is_some() && !p.index_paging {
            return Err(ScimError::invalid_value(
                "this server pages with cursors only (RFC 9865); drop startIndex and follow nextCursor",
            ));
        }
        if q.cursor.is_some() && !p.cursor_paging {
            return Err(ScimError::invalid_value(
                "this server does not support cursor paging; use startIndex",
            ));
        }
        let use_cursor = q.cursor.is_some() || !p.index_paging;
        let count = match q.count {
            None => p.default_page_size,
            Some(c) if c < 0 => 0,
            Some(c) => (c as usize).min(p.max_page_size),
        };
        let start = q.start_index.unwrap_or(1).max(1) as usize;
        let filter = match q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => Some(CompiledFilter::compile_with(rt, &parse(f)?, p.eq_and_only)?),
            None => None,
        };
        let sort = match (&q.sort_by, p.sort) {
            (Some(s), true) if !s.trim().is_empty() => {
                let ap = crate::scim::filter::parse_attr_path(s)?;
                let r = rt.resolve(ap.urn.as_deref(), &ap.name, ap.sub.as_deref())?;
                let desc = q
                    .sort_order
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case("descending"));
                Some((r, desc))
            }
            _ => None,
        };
        let proj = if p.list_projection {
            Projection::parse(
                rt,
                q.attributes.as_deref(),
                q.excluded_attributes.as_deref(),
            )?
        } else {
            Projection::default_view()
        };
        self.settle(kind);
        let inner = self.store.read();
        let table = inner.table(kind);
        let now = Instant::now();

        // One ListResponse writer for both paths below.
        let respond = |total: usize, ids: &[&str], next: Option<String>| -> Outcome {
            let mut out = Vec::with_capacity(256 + ids.len() * 400);
            list_head(
                &mut out,
                total,
                (!use_cursor).then_some(start),
                ids.len(),
                next.as_deref(),
            );
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let e = &table.by_id[*id];
                render(
                    &mut out,
                    &ResourceView {
                        kind,
                        attrs: &e.attrs,
                        members: e.members.as_ref(),
                        members_in_reads: p.members_in_reads,
                    },
                    Some(&inner),
                    &proj,
                    self.base_url,
                );
            }
            list_tail(&mut out);
            json_outcome(out)
        };

        // Fast path: no filter, no sort. The order index answers any page in O(log n + count).
        if filter.is_none() && sort.is_none() && table.pending == 0 {
            let total = table.order.len();
            let from_slot = if use_cursor {
                parse_slot_cursor(q.cursor.as_deref())?
            } else {
                table.order.nth_slot(start - 1).unwrap_or(table.order.end())
            };
            let mut it = table.order.iter_from(from_slot);
            let page: Vec<&str> = it.by_ref().take(count).map(|(_, id)| id).collect();
            let next = if use_cursor {
                it.next().map(|(s, _)| s.to_string())
            } else {
                None
            };
            return Ok(respond(total, &page, next));
        }

        // Candidates: from an index when the filter allows, else a scan in order.
        let candidates: Vec<(usize, &str)> = match filter
            .as_ref()
            .and_then(|f| index_candidates(&inner, kind, f))
        {
            Some(mut c) => {
                c.sort_unstable();
                c
            }
            None => table.order.iter_from(0).collect(),
        };
        let mut hits: Vec<(usize, &str)> = candidates
            .into_iter()
            .filter(|(_, id)| {
                let Some(e) = table.by_id.get(*id) else {
                    return false;
                };
                e.visible(now)
                    && filter.as_ref().is_none_or(|f| {
                        f.matches(&EntryView {
                            entry: e,
                            inner: &inner,
                            groups: std::cell::OnceCell::new(),
                        })
                    })
            })
            .collect();
        let total = hits.len();
        if let Some((r, desc)) = sort {
            let key = |id: &str| -> Option<String> {
                let e = &table.by_id[id];
                let v = e.attrs.attribute(r.container, r.def.name)?;
                let v = match r.sub {
                    Some(s) => match v {
                        Value::Array(a) => a
                            .iter()
                            .find(|x| x.get("primary") == Some(&Value::Bool(true)))
                            .or(a.first())?
                            .get(s.name)?,
                        other => other.get(s.name)?,
                    },
                    None => v,
                };
                Some(match v {
                    Value::String(s) if !r.leaf().case_exact => str_lower(s),
                    other => other.to_string(),
                })
            };
            let mut keyed: Vec<(Option<String>, usize, &str)> =
                hits.iter().map(|(s, id)| (key(id), *s, *id)).collect();
            // Resources without the sort attribute go last either way (RFC 7644 §3.4.2.3).
            keyed.sort_by(|a, b| match (&a.0, &b.0) {
                (Some(x), Some(y)) => {
                    if desc {
                        y.cmp(x)
                    } else {
                        x.cmp(y)
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.1.cmp(&b.1),
            });
            // After sorting, positions replace slots: a cursor is an offset.
            hits = keyed
                .into_iter()
                .enumerate()
                .map(|(i, (_, _, id))| (i, id))
                .collect();
        }
        let first = if use_cursor {
            let from = parse_slot_cursor(q.cursor.as_deref())?;
            hits.partition_point(|(s, _)| *s < from)
        } else {
            start - 1
        };
        let page: Vec<&str> = hits
            .iter()
            .skip(first)
            .take(count)
            .map(|(_, id)| *id)
            .collect();
        let next = if use_cursor {
            hits.get(first + page.len()).map(|(s, _)| s.to_string())
        } else {
            None
        };
        Ok(respond(total, &page, next))
    }
}

fn json_outcome(body: Vec<u8>) -> Outcome {
    Outcome {
        status: 200,
        body: Some(body),
        etag: None,
        location: None,
    }
}

/// Cursors are positions in the store's insertion order, so they stay valid while other
/// resources are created or deleted. An empty cursor asks for the first page (RFC 9865 §3).
fn parse_slot_cursor(c: Option<&str>) -> Result<usize, ScimError> {
    match c.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s.parse().map_err(|_| {
            ScimError::bad_request(
                ScimType::InvalidCursor,
                format!("'{s}' is not a cursor this server issued; start again without one"),
            )
        }),
    }
}

/// Candidates answered from an index for filters that are a single indexed `eq` or a
/// membership test; `None` when a scan is needed.
fn index_candidates<'a>(
    inner: &'a Inner,
    kind: Kind,
    f: &CompiledFilter,
) -> Option<Vec<(usize, &'a str)>> {
    let table = inner.table(kind);
    let slot_of = |id: &'a str| table.by_id.get(id).map(|e| (e.slot, id));
    if let Some((key, value)) = f.indexed_eq() {
        let ids = table.lookup_eq(key, value)?;
        return Some(ids.into_iter().filter_map(slot_of).collect());
    }
    if kind == Kind::Group {
        if let Some(member) = f.member_eq() {
            let groups = inner.memberships.get(member);
            return Some(
                groups
                    .into_iter()
                    .flatten()
                    .filter_map(|g| slot_of(g.as_str()))
                    .collect(),
            );
        }
    }
    None
}

/// A stored resource as a filter sees it: members from the member map, `groups` from the
/// reverse index (computed only if the filter asks).
struct EntryView<'a> {
    entry: &'a Entry,
    inner: &'a Inner,
    groups: std::cell::OnceCell<Option<Value>>,
}

impl FilterTarget for EntryView<'_> {
    fn attribute(&self, container: Option<&str>, key: &str) -> Option<&Value> {
        if container.is_none() && key == "groups" && self.entry.members.is_none() {
            let id = self.entry.attrs.get("id")?.as_str()?;
            return self
                .groups
                .get_or_init(|| {
                    let gids = self.inner.memberships.get(id)?;
                    Some(Value::Array(
                        gids.iter()
                            .map(|g| {
                                let d = self
                                    .inner
                                    .groups
                                    .by_id
                                    .get(g)
                                    .and_then(|e| e.attrs.get("displayName"))
                                    .cloned();
                                serde_json::json!({"value": g, "display": d, "type": "direct"})
                            })
                            .collect(),
                    ))
                })
                .as_ref();
        }
        self.entry.attrs.attribute(container, key)
    }
    fn has_member(&self, id: &str) -> Option<bool> {
        self.entry.members.as_ref().map(|m| m.contains_key(id))
    }
    fn members_json(&self) -> Option<Value> {
        let m = self.entry.members.as_ref()?;
        Some(Value::Array(
            m.iter()
                .map(|(id, m)| super::members::member_json(id, m))
                .collect(),
        ))
    }
}

/// RFC 7643 §7: an immutable attribute, once set, keeps its value on PUT.
fn check_immutable(
    rt: &ResourceTypeDef,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<(), ScimError> {
    for d in rt
        .schema
        .attrs
        .iter()
        .filter(|d| d.mutability == Mutability::Immutable)
    {
        if let (Some(a), Some(b)) = (old.get(d.name), new.get(d.name)) {
            if a != b {
                return Err(ScimError::mutability(format!(
                    "'{}' is immutable and cannot be changed",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

/// Query parameters of a list or search (RFC 7644 §3.4.2, RFC 9865).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub cursor: Option<String>,
}
