//! Attribute definitions of the RFC 7643 schemas (core User, Group, enterprise User) as
//! static tables.
//!
//! One table serves every purpose: the filter evaluator reads `caseExact` and types from it,
//! the PATCH engine and the request normaliser read mutability and multi-valuedness, the
//! renderer reads `returned`, and `/Schemas` is printed from it, so what the server does
//! and what it advertises cannot drift apart.

use serde_json::{json, Map, Value};

use super::error::ScimError;
use super::urns;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Copy)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical: &'static [&'static str],
    pub ref_types: &'static [&'static str],
    pub sub: &'static [AttrDef],
    pub description: &'static str,
}

impl AttrDef {
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        AttrDef {
            name,
            ty,
            multi: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical: &[],
            ref_types: &[],
            sub: &[],
            description,
        }
    }
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    const fn canonical(mut self, c: &'static [&'static str]) -> Self {
        self.canonical = c;
        self
    }
    const fn refs(mut self, r: &'static [&'static str]) -> Self {
        self.ref_types = r;
        self
    }
    const fn sub(mut self, s: &'static [AttrDef]) -> Self {
        self.sub = s;
        self
    }

    /// Finds a sub-attribute by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub_attr(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.sub, name)
    }

    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }

    /// The attribute definition as `/Schemas` prints it (RFC 7643 §7).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(type_name(self.ty)));
        m.insert("multiValued".into(), json!(self.multi));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if !self.is_complex() {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical));
        }
        if !self.ref_types.is_empty() {
            m.insert("referenceTypes".into(), json!(self.ref_types));
        }
        m.insert("mutability".into(), json!(mutability_name(self.mutability)));
        m.insert("returned".into(), json!(returned_name(self.returned)));
        if !self.is_complex() {
            m.insert(
                "uniqueness".into(),
                json!(match self.uniqueness {
                    Uniqueness::None => "none",
                    Uniqueness::Server => "server",
                    Uniqueness::Global => "global",
                }),
            );
        }
        if self.is_complex() {
            m.insert(
                "subAttributes".into(),
                Value::Array(self.sub.iter().map(AttrDef::to_json).collect()),
            );
        }
        Value::Object(m)
    }
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
    }
}
fn mutability_name(m: Mutability) -> &'static str {
    match m {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    }
}
fn returned_name(r: Returned) -> &'static str {
    match r {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    }
}

/// Case-insensitive lookup of an attribute in a table.
pub fn find(attrs: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

use AttrType::*;
use Mutability::*;

const fn s(name: &'static str, d: &'static str) -> AttrDef {
    AttrDef::new(name, String, d)
}
const fn primary() -> AttrDef {
    AttrDef::new("primary", Boolean, "Whether this is the primary value.")
}
const fn display() -> AttrDef {
    s(
        "display",
        "A human-readable name, primarily used for display purposes.",
    )
}

/// A multi-valued attribute with the usual value/display/type/primary sub-attributes.
const fn plural(name: &'static str, sub: &'static [AttrDef], d: &'static str) -> AttrDef {
    AttrDef::new(name, Complex, d).multi().sub(sub)
}

const EMAIL_SUB: &[AttrDef] = &[
    s("value", "Email address for the user."),
    display(),
    s("type", "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
    primary(),
];
const PHONE_SUB: &[AttrDef] = &[
    s("value", "Phone number of the user."),
    display(),
    s("type", "A label indicating the attribute's function.")
        .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    primary(),
];
const IMS_SUB: &[AttrDef] = &[
    s("value", "Instant messaging address for the user."),
    display(),
    s("type", "A label indicating the attribute's function.")
        .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    primary(),
];
const PHOTO_SUB: &[AttrDef] = &[
    AttrDef::new("value", Reference, "URL of a photo of the user.").refs(&["external"]),
    display(),
    s("type", "A label indicating the attribute's function.").canonical(&["photo", "thumbnail"]),
    primary(),
];
const ADDRESS_SUB: &[AttrDef] = &[
    s(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    s("streetAddress", "The full street address component."),
    s("locality", "The city or locality component."),
    s("region", "The state or region component."),
    s("postalCode", "The zip code or postal code component."),
    s("country", "The country name component."),
    s("type", "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
    primary(),
];
const USER_GROUPS_SUB: &[AttrDef] = &[
    s("value", "The identifier of the User's group.").mutability(ReadOnly),
    AttrDef::new(
        "$ref",
        Reference,
        "The URI of the corresponding 'Group' resource.",
    )
    .refs(&["User", "Group"])
    .mutability(ReadOnly),
    display().mutability(ReadOnly),
    s("type", "Whether the membership is direct or indirect.")
        .canonical(&["direct", "indirect"])
        .mutability(ReadOnly),
];
const GENERIC_PLURAL_SUB: &[AttrDef] = &[
    s("value", "The value."),
    display(),
    s("type", "A label indicating the attribute's function."),
    primary(),
];
const CERT_SUB: &[AttrDef] = &[
    AttrDef::new("value", Binary, "The value of an X.509 certificate."),
    display(),
    s("type", "A label indicating the attribute's function."),
    primary(),
];
const NAME_SUB: &[AttrDef] = &[
    s("formatted", "The full name, formatted for display."),
    s("familyName", "The family name of the User."),
    s("givenName", "The given name of the User."),
    s("middleName", "The middle name(s) of the User."),
    s("honorificPrefix", "The honorific prefix(es) of the User."),
    s("honorificSuffix", "The honorific suffix(es) of the User."),
];

/// RFC 7643 §4.1 / §8.7.1, core User.
pub static USER_ATTRS: &[AttrDef] = &[
    s(
        "userName",
        "Unique identifier for the User, used to authenticate.",
    )
    .required()
    .unique(),
    AttrDef::new("name", Complex, "The components of the user's real name.").sub(NAME_SUB),
    s(
        "displayName",
        "The name of the User, suitable for display to end-users.",
    ),
    s(
        "nickName",
        "The casual way to address the user in real life.",
    ),
    AttrDef::new(
        "profileUrl",
        Reference,
        "A fully qualified URL pointing to a page representing the User's online profile.",
    )
    .refs(&["external"]),
    s("title", "The user's title, such as \"Vice President\"."),
    s(
        "userType",
        "Used to identify the relationship between the organization and the user.",
    ),
    s(
        "preferredLanguage",
        "Indicates the User's preferred written or spoken language.",
    ),
    s(
        "locale",
        "Used to indicate the User's default location for localization.",
    ),
    s(
        "timezone",
        "The User's time zone in the 'Olson' time zone database format.",
    ),
    AttrDef::new(
        "active",
        Boolean,
        "A Boolean value indicating the User's administrative status.",
    ),
    s("password", "The User's cleartext password.")
        .mutability(WriteOnly)
        .returned(Returned::Never),
    plural("emails", EMAIL_SUB, "Email addresses for the user."),
    plural("phoneNumbers", PHONE_SUB, "Phone numbers for the User."),
    plural("ims", IMS_SUB, "Instant messaging addresses for the User."),
    plural("photos", PHOTO_SUB, "URLs of photos of the User."),
    plural(
        "addresses",
        ADDRESS_SUB,
        "A physical mailing address for this User.",
    ),
    AttrDef::new(
        "groups",
        Complex,
        "A list of groups to which the user belongs.",
    )
    .multi()
    .mutability(ReadOnly)
    .sub(USER_GROUPS_SUB),
    plural(
        "entitlements",
        GENERIC_PLURAL_SUB,
        "A list of entitlements for the User.",
    ),
    plural("roles", GENERIC_PLURAL_SUB, "A list of roles for the User."),
    plural(
        "x509Certificates",
        CERT_SUB,
        "A list of certificates issued to the User.",
    ),
];

const MEMBER_SUB: &[AttrDef] = &[
    s("value", "Identifier of the member of this Group.").mutability(Immutable),
    AttrDef::new(
        "$ref",
        Reference,
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .refs(&["User", "Group"])
    .mutability(Immutable),
    s(
        "type",
        "A label indicating the type of resource, e.g., 'User' or 'Group'.",
    )
    .canonical(&["User", "Group"])
    .mutability(Immutable),
    display(),
];

/// RFC 7643 §4.2 / §8.7.1, core Group.
pub static GROUP_ATTRS: &[AttrDef] = &[
    s("displayName", "A human-readable name for the Group.").required(),
    AttrDef::new("members", Complex, "A list of members of the Group.")
        .multi()
        .sub(MEMBER_SUB),
];

const MANAGER_SUB: &[AttrDef] = &[
    s(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    ),
    AttrDef::new(
        "$ref",
        Reference,
        "The URI of the SCIM resource representing the User's manager.",
    )
    .refs(&["User"]),
    s("displayName", "The displayName of the User's manager.").mutability(ReadOnly),
];

/// RFC 7643 §4.3, the enterprise User extension.
pub static ENTERPRISE_ATTRS: &[AttrDef] = &[
    s(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person.",
    ),
    s("costCenter", "Identifies the name of a cost center."),
    s("organization", "Identifies the name of an organization."),
    s("division", "Identifies the name of a division."),
    s("department", "Identifies the name of a department."),
    AttrDef::new("manager", Complex, "The User's manager.").sub(MANAGER_SUB),
];

const META_SUB: &[AttrDef] = &[
    s(
        "resourceType",
        "The name of the resource type of the resource.",
    )
    .case_exact()
    .mutability(ReadOnly),
    AttrDef::new(
        "created",
        DateTime,
        "The DateTime that the resource was added.",
    )
    .mutability(ReadOnly),
    AttrDef::new(
        "lastModified",
        DateTime,
        "The most recent DateTime that the details of this resource were updated.",
    )
    .mutability(ReadOnly),
    AttrDef::new(
        "location",
        Reference,
        "The URI of the resource being returned.",
    )
    .case_exact()
    .mutability(ReadOnly),
    s("version", "The version of the resource being returned.")
        .case_exact()
        .mutability(ReadOnly),
];

/// Common attributes of every resource (RFC 7643 §3.1); not part of any published schema.
pub static COMMON_ATTRS: &[AttrDef] = &[
    s(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
    )
    .case_exact()
    .mutability(ReadOnly)
    .returned(Returned::Always)
    .unique(),
    s(
        "externalId",
        "An identifier for the resource as defined by the provisioning client.",
    )
    .case_exact(),
    AttrDef::new("meta", Complex, "Resource metadata.")
        .mutability(ReadOnly)
        .sub(META_SUB),
];

/// A published schema.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attrs: &'static [AttrDef],
}

pub static USER_SCHEMA: SchemaDef = SchemaDef {
    id: urns::USER,
    name: "User",
    description: "User Account",
    attrs: USER_ATTRS,
};
pub static GROUP_SCHEMA: SchemaDef = SchemaDef {
    id: urns::GROUP,
    name: "Group",
    description: "Group",
    attrs: GROUP_ATTRS,
};
pub static ENTERPRISE_SCHEMA: SchemaDef = SchemaDef {
    id: urns::ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attrs: ENTERPRISE_ATTRS,
};

impl SchemaDef {
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urns::SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attrs.iter().map(AttrDef::to_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base_url}/Schemas/{}", self.id),
            }
        })
    }
}

/// A resource type (RFC 7643 §6): endpoint, core schema and extensions.
#[derive(Debug)]
pub struct ResourceTypeDef {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub schema: &'static SchemaDef,
    pub extensions: &'static [&'static SchemaDef],
}

pub static USER_TYPE: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    schema: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_SCHEMA],
};
/// A User without extensions: what servers that declare only RFC 7643's core schemas
/// publish (and `serve --profile core-only` imitates).
pub static CORE_USER_TYPE: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    schema: &USER_SCHEMA,
    extensions: &[],
};
pub static GROUP_TYPE: ResourceTypeDef = ResourceTypeDef {
    name: "Group",
    endpoint: "/Groups",
    schema: &GROUP_SCHEMA,
    extensions: &[],
};

/// Where a resolved attribute lives in a resource's JSON.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// `Some(urn)` for an extension attribute, stored under the URN key.
    pub container: Option<&'static str>,
    pub def: &'static AttrDef,
    pub sub: Option<&'static AttrDef>,
}

impl Resolved {
    /// The definition of the leaf the path designates.
    pub fn leaf(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.def)
    }
}

impl ResourceTypeDef {
    /// The extension schema whose URN equals `urn` (case-insensitively).
    pub fn extension(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions
            .iter()
            .copied()
            .find(|e| e.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves `[urn:]name[.sub]` to its definition. Extension attributes may be named
    /// without their URN: several clients do, and the names do not collide.
    pub fn resolve(
        &self,
        urn: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> Result<Resolved, ScimError> {
        let (container, def) = match urn {
            Some(u) if u.eq_ignore_ascii_case(self.schema.id) => (
                None,
                find(self.schema.attrs, name).or_else(|| find(COMMON_ATTRS, name)),
            ),
            Some(u) => match self.extension(u) {
                Some(ext) => (Some(ext.id), find(ext.attrs, name)),
                None => {
                    return Err(ScimError::invalid_path(format!(
                        "unknown schema '{u}' for {}; use one of {}",
                        self.name,
                        self.schema_ids().join(", ")
                    )))
                }
            },
            None => match find(COMMON_ATTRS, name).or_else(|| find(self.schema.attrs, name)) {
                Some(d) => (None, Some(d)),
                None => self
                    .extensions
                    .iter()
                    .find_map(|e| find(e.attrs, name).map(|d| (Some(e.id), Some(d))))
                    .unwrap_or((None, None)),
            },
        };
        let Some(def) = def else {
            return Err(ScimError::invalid_path(format!(
                "'{name}' is not an attribute of {}",
                self.name
            )));
        };
        let sub = match sub {
            None => None,
            Some(s) => Some(def.sub_attr(s).ok_or_else(|| {
                ScimError::invalid_path(format!("'{}' has no sub-attribute '{s}'", def.name))
            })?),
        };
        Ok(Resolved {
            container,
            def,
            sub,
        })
    }

    pub fn schema_ids(&self) -> Vec<&'static str> {
        std::iter::once(self.schema.id)
            .chain(self.extensions.iter().map(|e| e.id))
            .collect()
    }

    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urns::RESOURCE_TYPE],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.schema.description,
            "schema": self.schema.id,
            "schemaExtensions": self.extensions.iter().map(|e| json!({"schema": e.id, "required": false})).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base_url}/ResourceTypes/{}", self.name),
            }
        })
    }
}

/// Every schema the server publishes.
pub fn all_schemas() -> [&'static SchemaDef; 3] {
    [&USER_SCHEMA, &GROUP_SCHEMA, &ENTERPRISE_SCHEMA]
}
