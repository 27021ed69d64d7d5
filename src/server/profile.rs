//! Target profiles: the limits of real service providers, as data.
//!
//! `scimload serve --profile aws` behaves like AWS IAM Identity Center as its developer
//! guide documents it, `entra-api` like the Entra ID SCIM API; `rfc` is everything RFC 7644
//! offers. Client code can test itself against those limits without an account anywhere.
//! One table; handlers read fields, never the profile's name.

use std::fmt;

use super::store::Kind;
use crate::scim::schema::{ResourceTypeDef, SchemaDef, CORE_USER_TYPE, USER_TYPE};

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    /// Filters limited to `eq` joined by `and` (AWS, Entra SCIM API).
    pub eq_and_only: bool,
    pub index_paging: bool,
    pub cursor_paging: bool,
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// Whether GET on a group returns its members (AWS: never).
    pub members_in_reads: bool,
    /// Most member additions plus removals in one PATCH request.
    pub max_member_changes_per_patch: Option<usize>,
    /// Most members added by one PATCH operation (Entra SCIM API: 20).
    pub max_member_adds_per_op: Option<usize>,
    /// Most members removed by one PATCH request (Entra SCIM API: 1).
    pub max_member_removes_per_patch: Option<usize>,
    /// Whether `remove path:members` (all) and `replace path:members` are accepted.
    pub replace_all_members: bool,
    /// Most members in a POST /Groups (AWS: 100).
    pub max_members_on_create: Option<usize>,
    pub bulk: bool,
    pub sort: bool,
    pub etag: bool,
    /// `attributes` / `excludedAttributes` honoured on list requests.
    pub list_projection: bool,
    /// What a 429 says, to look like the provider's throttling error.
    pub throttle_detail: &'static str,
    /// The User resource type: with the enterprise extension, or core only. Attributes
    /// of a schema it does not declare are dropped on create and PUT (201, nothing
    /// kept) and a PATCH path into one answers 400 `invalidPath`, as several SaaS
    /// servers do.
    pub user_type: &'static ResourceTypeDef,
}

pub static RFC: Profile = Profile {
    name: "rfc",
    eq_and_only: false,
    index_paging: true,
    cursor_paging: true,
    default_page_size: 100,
    max_page_size: 1000,
    members_in_reads: true,
    max_member_changes_per_patch: None,
    max_member_adds_per_op: None,
    max_member_removes_per_patch: None,
    replace_all_members: true,
    max_members_on_create: None,
    bulk: true,
    sort: true,
    etag: true,
    list_projection: true,
    throttle_detail: "too many requests",
    user_type: &USER_TYPE,
};

/// AWS IAM Identity Center (developer guide: ListUsers, PatchGroup, CreateGroup, limitations).
pub static AWS: Profile = Profile {
    name: "aws",
    eq_and_only: true,
    index_paging: false,
    cursor_paging: true,
    default_page_size: 100,
    max_page_size: 100,
    members_in_reads: false,
    max_member_changes_per_patch: Some(100),
    max_member_adds_per_op: None,
    max_member_removes_per_patch: None,
    replace_all_members: false,
    max_members_on_create: Some(100),
    bulk: false,
    sort: false,
    etag: false,
    list_projection: false,
    throttle_detail: "ThrottlingException: rate exceeded",
    user_type: &USER_TYPE,
};

/// Entra ID SCIM API (entra-id-scim-api-reference): cursor paging, 20 adds, 1 remove.
pub static ENTRA_API: Profile = Profile {
    name: "entra-api",
    eq_and_only: true,
    index_paging: false,
    cursor_paging: true,
    default_page_size: 100,
    max_page_size: 1000,
    members_in_reads: true,
    max_member_changes_per_patch: None,
    max_member_adds_per_op: Some(20),
    max_member_removes_per_patch: Some(1),
    replace_all_members: false,
    max_members_on_create: None,
    bulk: false,
    sort: false,
    etag: false,
    list_projection: true,
    throttle_detail: "TooManyRequests: the request was throttled",
    user_type: &USER_TYPE,
};

/// A server that declares only the core User and Group schemas (RFC 7643 §4) and keeps
/// nothing else: the enterprise extension and the manager answer 201 and vanish, a
/// PATCH of the manager answers 400 `invalidPath`. Otherwise as `rfc`.
pub static CORE_ONLY: Profile = Profile {
    name: "core-only",
    user_type: &CORE_USER_TYPE,
    ..RFC
};

pub static ALL: [&Profile; 4] = [&RFC, &AWS, &ENTRA_API, &CORE_ONLY];

impl Profile {
    /// The resource type this profile serves for `kind`.
    pub fn rt(&self, kind: Kind) -> &'static ResourceTypeDef {
        match kind {
            Kind::User => self.user_type,
            Kind::Group => kind.rt(),
        }
    }

    /// The schemas `/Schemas` publishes: the resource types' own and their extensions.
    pub fn schemas(&self) -> Vec<&'static SchemaDef> {
        let mut out = Vec::new();
        for rt in [self.rt(Kind::User), self.rt(Kind::Group)] {
            for s in std::iter::once(rt.schema).chain(rt.extensions.iter().copied()) {
                if !out.iter().any(|o: &&SchemaDef| o.id == s.id) {
                    out.push(s);
                }
            }
        }
        out
    }

    pub fn by_name(name: &str) -> Option<&'static Profile> {
        ALL.iter()
            .copied()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Profiles are statics named once: the name is the identity.
impl PartialEq for Profile {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Profile {}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
