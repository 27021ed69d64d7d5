//! The SCIM attributes a mapping can set, and how each is written into a User.
//!
//! One table: the names users put in mapping files, where the value lands in the SCIM
//! JSON, and which values are names (checked for stray quotes) or emails (checked for
//! syntax).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A top-level string attribute.
    Top(&'static str),
    /// A sub-attribute of `name`.
    Name(&'static str),
    Active,
    /// `emails[type eq X].value`.
    Email(&'static str),
    /// `phoneNumbers[type eq X].value`.
    Phone(&'static str),
    /// A sub-attribute of the address of a type (work, home, other).
    Address(&'static str, &'static str),
    /// An enterprise-extension string attribute.
    Enterprise(&'static str),
    /// The manager's externalId, resolved to a SCIM id when sending.
    Manager,
}

pub struct Target {
    pub name: &'static str,
    pub place: Place,
}

const fn t(name: &'static str, place: Place) -> Target {
    Target { name, place }
}

use Place::*;

pub const TARGETS: &[Target] = &[
    t("userName", Top("userName")),
    t("externalId", Top("externalId")),
    t("name.givenName", Name("givenName")),
    t("name.familyName", Name("familyName")),
    t("name.middleName", Name("middleName")),
    t("name.formatted", Name("formatted")),
    t("name.honorificPrefix", Name("honorificPrefix")),
    t("name.honorificSuffix", Name("honorificSuffix")),
    t("displayName", Top("displayName")),
    t("nickName", Top("nickName")),
    t("title", Top("title")),
    t("userType", Top("userType")),
    t("preferredLanguage", Top("preferredLanguage")),
    t("locale", Top("locale")),
    t("timezone", Top("timezone")),
    t("profileUrl", Top("profileUrl")),
    t("active", Active),
    t("emails.work", Email("work")),
    t("emails.home", Email("home")),
    t("emails.other", Email("other")),
    t("phoneNumbers.work", Phone("work")),
    t("phoneNumbers.mobile", Phone("mobile")),
    t("phoneNumbers.home", Phone("home")),
    t("phoneNumbers.fax", Phone("fax")),
    t(
        "addresses.work.streetAddress",
        Address("work", "streetAddress"),
    ),
    t("addresses.work.locality", Address("work", "locality")),
    t("addresses.work.region", Address("work", "region")),
    t("addresses.work.postalCode", Address("work", "postalCode")),
    t("addresses.work.country", Address("work", "country")),
    t("addresses.work.formatted", Address("work", "formatted")),
    t(
        "addresses.home.streetAddress",
        Address("home", "streetAddress"),
    ),
    t("addresses.home.locality", Address("home", "locality")),
    t("addresses.home.region", Address("home", "region")),
    t("addresses.home.postalCode", Address("home", "postalCode")),
    t("addresses.home.country", Address("home", "country")),
    t("addresses.home.formatted", Address("home", "formatted")),
    t(
        "addresses.other.streetAddress",
        Address("other", "streetAddress"),
    ),
    t("addresses.other.locality", Address("other", "locality")),
    t("addresses.other.region", Address("other", "region")),
    t("addresses.other.postalCode", Address("other", "postalCode")),
    t("addresses.other.country", Address("other", "country")),
    t("addresses.other.formatted", Address("other", "formatted")),
    t("enterprise.employeeNumber", Enterprise("employeeNumber")),
    t("enterprise.costCenter", Enterprise("costCenter")),
    t("enterprise.organization", Enterprise("organization")),
    t("enterprise.division", Enterprise("division")),
    t("enterprise.department", Enterprise("department")),
    t("enterprise.manager", Manager),
];

pub fn index_of(name: &str) -> Option<usize> {
    TARGETS
        .iter()
        .position(|t| t.name.eq_ignore_ascii_case(name))
}

pub fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|t| t.name).collect()
}

const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < TARGETS.len() {
        let (a, b) = (TARGETS[i].name.as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no such target")
}

pub const USER_NAME: usize = position("userName");
pub const EXTERNAL_ID: usize = position("externalId");
pub const ACTIVE: usize = position("active");
pub const MANAGER: usize = position("enterprise.manager");

impl Place {
    /// Where the value lands in a target's schema: (extension URN, or `None` for the core
    /// User schema; attribute; sub-attribute).
    pub fn scim_attr(self) -> (Option<&'static str>, &'static str, Option<&'static str>) {
        const ENT: Option<&str> = Some(crate::scim::urns::ENTERPRISE_USER);
        match self {
            Top(k) => (None, k, None),
            Name(k) => (None, "name", Some(k)),
            Active => (None, "active", None),
            Email(_) => (None, "emails", Some("value")),
            Phone(_) => (None, "phoneNumbers", Some("value")),
            Address(_, k) => (None, "addresses", Some(k)),
            Enterprise(k) => (ENT, k, None),
            Manager => (ENT, "manager", Some("value")),
        }
    }

    /// The value this place holds in a SCIM User document, if any (`type` matched
    /// case-insensitively for multi-valued attributes).
    pub fn get(self, user: &serde_json::Value) -> Option<&serde_json::Value> {
        let typed = |attr: &str, ty: &str| {
            user.get(attr)?.as_array()?.iter().find(|e| {
                e.get("type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.eq_ignore_ascii_case(ty))
            })
        };
        let ent = || user.get(crate::scim::urns::ENTERPRISE_USER);
        let v = match self {
            Top(k) => user.get(k),
            Name(k) => user.get("name")?.get(k),
            Active => user.get("active"),
            Email(t) => typed("emails", t)?.get("value"),
            Phone(t) => typed("phoneNumbers", t)?.get("value"),
            Address(t, k) => typed("addresses", t)?.get(k),
            Enterprise(k) => ent()?.get(k),
            Manager => ent()?.get("manager")?.get("value"),
        };
        v.filter(|v| !v.is_null())
    }

    /// The attribute as SCIM paths name it (RFC 7644 §3.10), for messages.
    pub fn path(self) -> String {
        let ent = crate::scim::urns::ENTERPRISE_USER;
        match self {
            Top(k) => k.to_string(),
            Name(k) => format!("name.{k}"),
            Active => "active".into(),
            Email(t) => format!("emails[type eq \"{t}\"].value"),
            Phone(t) => format!("phoneNumbers[type eq \"{t}\"].value"),
            Address(t, k) => format!("addresses[type eq \"{t}\"].{k}"),
            Enterprise(k) => format!("{ent}:{k}"),
            Manager => format!("{ent}:manager"),
        }
    }
}

impl Target {
    /// Person names: a quote or control character in one is a broken export, not a name.
    pub fn is_person_name(&self) -> bool {
        matches!(self.place, Name(_)) || matches!(self.place, Top("displayName" | "nickName"))
    }
}
