//! The in-memory resource store and its indexes.
//!
//! Every lookup the provisioning traffic of an IdP makes is O(1): by id, by userName
//! (case-insensitive, RFC 7643 §4.1.1), by externalId, by group displayName, and the
//! reverse membership index (member id → groups) that makes deleting a user and
//! `members[value eq "id"]` cheap. Group members live in an insertion-ordered hash map
//! outside the JSON, so adding or removing k members costs O(k) whatever the group's size.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::order::OrderIndex;
use crate::scim::error::ScimError;
use crate::scim::schema::{ResourceTypeDef, GROUP_TYPE, USER_TYPE};
use crate::scim::value::str_lower;

pub type Hasher = foldhash::fast::RandomState;
pub type FastMap<K, V> = HashMap<K, V, Hasher>;
pub type FastSet<K> = HashSet<K, Hasher>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn rt(self) -> &'static ResourceTypeDef {
        match self {
            Kind::User => &USER_TYPE,
            Kind::Group => &GROUP_TYPE,
        }
    }
    pub fn name(self) -> &'static str {
        self.rt().name
    }
    pub fn endpoint(self) -> &'static str {
        self.rt().endpoint
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub kind: Kind,
    pub display: Option<String>,
}

pub type Members = IndexMap<String, Member, Hasher>;

#[derive(Debug, Clone)]
pub struct Entry {
    pub slot: usize,
    /// Canonical attributes, including `id` and `meta` (without `location`, which depends
    /// on the address the client used).
    pub attrs: Map<String, Value>,
    /// Group members; `None` for users.
    pub members: Option<Members>,
    pub version: u64,
    /// Set while an asynchronously created resource is not visible yet.
    pub visible_at: Option<Instant>,
}

impl Entry {
    pub fn visible(&self, now: Instant) -> bool {
        self.visible_at.is_none_or(|t| t <= now)
    }
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

#[derive(Debug)]
pub struct Table {
    pub kind: Kind,
    /// Boxed so that growing the table moves pointers, not whole resources: with
    /// inline entries a rehash at 250k users held the write lock for ~100 ms.
    pub by_id: FastMap<String, Box<Entry>>,
    /// Users: lower-cased userName → id (unique).
    by_user_name: FastMap<String, String>,
    /// Groups: lower-cased displayName → ids (not unique).
    by_display_name: FastMap<String, Vec<String>>,
    /// externalId → id (unique, case-exact).
    by_external_id: FastMap<String, String>,
    /// `serve --allow-duplicates`: no uniqueness on userName and externalId, as some
    /// real servers behave. The maps above keep the first holder of a value; later ones
    /// wait here (keyed `u\0name` / `x\0externalId`), so the usual path costs nothing.
    allow_duplicates: bool,
    more: FastMap<String, Vec<String>>,
    pub order: OrderIndex,
    /// Resources created asynchronously and not visible yet.
    pub pending: usize,
    /// When each pending resource becomes visible, soonest first.
    pending_queue: BinaryHeap<Reverse<(Instant, String)>>,
}

fn str_attr<'a>(attrs: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    attrs.get(k).and_then(Value::as_str)
}

impl Table {
    fn new(kind: Kind, allow_duplicates: bool) -> Self {
        Table {
            kind,
            by_id: FastMap::default(),
            by_user_name: FastMap::default(),
            by_display_name: FastMap::default(),
            by_external_id: FastMap::default(),
            allow_duplicates,
            more: FastMap::default(),
            order: OrderIndex::default(),
            pending: 0,
            pending_queue: BinaryHeap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// 409 if `attrs` would collide with another resource's userName or externalId.
    pub fn check_unique(
        &self,
        attrs: &Map<String, Value>,
        except: Option<&str>,
    ) -> Result<(), ScimError> {
        if self.allow_duplicates {
            return Ok(());
        }
        if self.kind == Kind::User {
            if let Some(n) = str_attr(attrs, "userName") {
                if let Some(id) = self.by_user_name.get(&str_lower(n)) {
                    if Some(id.as_str()) != except {
                        return Err(ScimError::uniqueness(format!(
                            "userName '{n}' is already taken by User {id}; look it up and update it instead"
                        )));
                    }
                }
            }
        }
        if let Some(x) = str_attr(attrs, "externalId") {
            if let Some(id) = self.by_external_id.get(x) {
                if Some(id.as_str()) != except {
                    return Err(ScimError::uniqueness(format!(
                        "externalId '{x}' is already used by {} {id}",
                        self.kind.name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Records `id` as holding `key` in `map`; a second holder goes to `more`.
    fn hold(
        map: &mut FastMap<String, String>,
        more: &mut FastMap<String, Vec<String>>,
        tag: char,
        key: String,
        id: &str,
    ) {
        match map.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) if o.get() != id => {
                more.entry(format!("{tag}\0{}", o.key()))
                    .or_default()
                    .push(id.to_string());
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id.to_string());
            }
        }
    }

    /// Forgets that `id` holds `key`; the next holder, if any, takes its place.
    fn release(
        map: &mut FastMap<String, String>,
        more: &mut FastMap<String, Vec<String>>,
        tag: char,
        key: &str,
        id: &str,
    ) {
        let extra = format!("{tag}\0{key}");
        if map.get(key).is_some_and(|h| h == id) {
            map.remove(key);
            if let Some(v) = more.get_mut(&extra) {
                if let Some(next) = v.pop() {
                    map.insert(key.to_string(), next);
                }
                if v.is_empty() {
                    more.remove(&extra);
                }
            }
        } else if let Some(v) = more.get_mut(&extra) {
            v.retain(|x| x != id);
            if v.is_empty() {
                more.remove(&extra);
            }
        }
    }

    fn index(&mut self, id: &str, attrs: &Map<String, Value>) {
        match self.kind {
            Kind::User => {
                if let Some(n) = str_attr(attrs, "userName") {
                    Self::hold(
                        &mut self.by_user_name,
                        &mut self.more,
                        'u',
                        str_lower(n),
                        id,
                    );
                }
            }
            Kind::Group => {
                if let Some(n) = str_attr(attrs, "displayName") {
                    self.by_display_name
                        .entry(str_lower(n))
                        .or_default()
                        .push(id.to_string());
                }
            }
        }
        if let Some(x) = str_attr(attrs, "externalId") {
            Self::hold(
                &mut self.by_external_id,
                &mut self.more,
                'x',
                x.to_string(),
                id,
            );
        }
    }

    fn unindex(&mut self, id: &str, attrs: &Map<String, Value>) {
        match self.kind {
            Kind::User => {
                if let Some(n) = str_attr(attrs, "userName") {
                    Self::release(
                        &mut self.by_user_name,
                        &mut self.more,
                        'u',
                        &str_lower(n),
                        id,
                    );
                }
            }
            Kind::Group => {
                if let Some(n) = str_attr(attrs, "displayName") {
                    let key = str_lower(n);
                    if let Some(v) = self.by_display_name.get_mut(&key) {
                        v.retain(|x| x != id);
                        if v.is_empty() {
                            self.by_display_name.remove(&key);
                        }
                    }
                }
            }
        }
        if let Some(x) = str_attr(attrs, "externalId") {
            Self::release(&mut self.by_external_id, &mut self.more, 'x', x, id);
        }
    }

    /// The holders of `key` beyond the first (only with --allow-duplicates).
    fn others<'a>(&'a self, tag: char, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let v = if self.more.is_empty() {
            None
        } else {
            self.more.get(&format!("{tag}\0{key}"))
        };
        v.into_iter().flatten().map(String::as_str)
    }

    pub fn insert(&mut self, id: String, mut entry: Box<Entry>) {
        self.index(&id, &entry.attrs);
        entry.slot = self.order.push(id.clone());
        if let Some(t) = entry.visible_at {
            self.pending += 1;
            self.pending_queue.push(Reverse((t, id.clone())));
        }
        self.by_id.insert(id, entry);
    }

    pub fn remove(&mut self, id: &str) -> Option<Box<Entry>> {
        let e = self.by_id.remove(id)?;
        self.unindex(id, &e.attrs);
        self.order.remove(e.slot);
        if e.visible_at.is_some() {
            self.pending -= 1;
        }
        Some(e)
    }

    /// Replaces the attributes of `id`, keeping the indexes in step.
    pub fn update_attrs(&mut self, id: &str, attrs: Map<String, Value>, version: u64) {
        let Some(mut e) = self.by_id.remove(id) else {
            return;
        };
        self.unindex(id, &e.attrs);
        self.index(id, &attrs);
        e.attrs = attrs;
        e.version = version;
        self.by_id.insert(id.to_string(), e);
    }

    /// Ids answering an indexed `eq` (userName, externalId, id, displayName), or `None`
    /// when the attribute has no index.
    pub fn lookup_eq(&self, key: &str, value: &str) -> Option<Vec<&str>> {
        Some(match (self.kind, key) {
            (_, "id") => self
                .by_id
                .get_key_value(value)
                .map(|(k, _)| k.as_str())
                .into_iter()
                .collect(),
            (_, "externalId") => self
                .by_external_id
                .get(value)
                .map(String::as_str)
                .into_iter()
                .chain(self.others('x', value))
                .collect(),
            (Kind::User, "userName") => {
                let key = str_lower(value);
                self.by_user_name
                    .get(&key)
                    .map(String::as_str)
                    .into_iter()
                    .chain(self.others('u', &key))
                    .collect()
            }
            (Kind::Group, "displayName") => self
                .by_display_name
                .get(&str_lower(value))
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            _ => return None,
        })
    }

    /// Promotes asynchronously created resources whose time has come.
    pub fn settle(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.pending_queue.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, id))) = self.pending_queue.pop() else {
                break;
            };
            if let Some(e) = self.by_id.get_mut(&id) {
                if e.visible_at.take().is_some() {
                    self.pending -= 1;
                }
            }
        }
    }
}

#[derive(Debug)]
pub struct Inner {
    pub users: Table,
    pub groups: Table,
    /// Member id (user or group) → ids of the groups it belongs to.
    pub memberships: FastMap<String, FastSet<String>>,
    /// `serve --drop-members`: this fraction of member adds is answered as done and not
    /// kept, as a server that keeps half of what it was sent.
    pub drop_members: f64,
    pub seed: u64,
}

impl Inner {
    pub fn table(&self, k: Kind) -> &Table {
        match k {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }
    pub fn table_mut(&mut self, k: Kind) -> &mut Table {
        match k {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        }
    }

    /// The kind of resource `id` names, if it exists (visible or pending).
    pub fn kind_of(&self, id: &str) -> Option<Kind> {
        if self.users.by_id.contains_key(id) {
            Some(Kind::User)
        } else if self.groups.by_id.contains_key(id) {
            Some(Kind::Group)
        } else {
            None
        }
    }

    /// Whether `serve --drop-members` loses this add: a hash of group, member and seed,
    /// so the same adds are lost however often they are sent.
    pub fn drops_member(&self, group: Option<&str>, member: &str) -> bool {
        if self.drop_members <= 0.0 {
            return false;
        }
        use std::hash::BuildHasher;
        let h = foldhash::quality::FixedState::with_seed(self.seed).hash_one((group, member));
        ((h >> 11) as f64 / (1u64 << 53) as f64) < self.drop_members
    }

    pub fn add_membership(&mut self, group: &str, member: &str) {
        self.memberships
            .entry(member.to_string())
            .or_default()
            .insert(group.to_string());
    }

    pub fn remove_membership(&mut self, group: &str, member: &str) {
        if let Some(s) = self.memberships.get_mut(member) {
            s.remove(group);
            if s.is_empty() {
                self.memberships.remove(member);
            }
        }
    }

    /// Deletes a resource and every membership it takes part in.
    pub fn delete(&mut self, kind: Kind, id: &str) -> Option<Box<Entry>> {
        let e = self.table_mut(kind).remove(id)?;
        if let Some(groups) = self.memberships.remove(id) {
            for g in groups {
                if let Some(ge) = self.groups.by_id.get_mut(&g) {
                    if let Some(m) = ge.members.as_mut() {
                        m.swap_remove(id);
                    }
                }
            }
        }
        if let Some(members) = &e.members {
            for m in members.keys() {
                self.remove_membership(id, m);
            }
        }
        Some(e)
    }
}

/// The store: one lock over all tables, held only for index work, never while parsing
/// requests or writing responses.
#[derive(Debug)]
pub struct Store {
    pub inner: RwLock<Inner>,
    version: AtomicU64,
    id_counter: AtomicU64,
    id_salt: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn splitmix64(z: u64) -> u64 {
    crate::rng::mix(z.wrapping_add(crate::rng::GOLDEN))
}

impl Store {
    pub fn new() -> Self {
        Self::lax(false, 0.0, 0)
    }

    /// A store as a lax real server keeps one: with `allow` no uniqueness on userName
    /// and externalId (`--allow-duplicates`); `drop_members` of the member adds lost
    /// (`--drop-members`, chosen by `seed`).
    pub fn lax(allow: bool, drop_members: f64, seed: u64) -> Self {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        Store {
            inner: RwLock::new(Inner {
                users: Table::new(Kind::User, allow),
                groups: Table::new(Kind::Group, allow),
                memberships: FastMap::default(),
                drop_members,
                seed,
            }),
            version: AtomicU64::new(1),
            id_counter: AtomicU64::new(0),
            id_salt: splitmix64(salt),
        }
    }

    /// A new resource id, UUID-shaped: unique, opaque and case-stable (Okta requires that
    /// ids never contain the string "bulkId").
    pub fn new_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(self.id_salt ^ n);
        let b = splitmix64(a ^ n.rotate_left(32));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    pub fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::Relaxed)
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}
