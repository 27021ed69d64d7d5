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
    /// A sub-attribute of the work address.
    WorkAddress(&'static str),
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
    t("addresses.work.streetAddress", WorkAddress("streetAddress")),
    t("addresses.work.locality", WorkAddress("locality")),
    t("addresses.work.region", WorkAddress("region")),
    t("addresses.work.postalCode", WorkAddress("postalCode")),
    t("addresses.work.country", WorkAddress("country")),
    t("addresses.work.formatted", WorkAddress("formatted")),
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

impl Target {
    /// Person names: a quote or control character in one is a broken export, not a name.
    pub fn is_person_name(&self) -> bool {
        matches!(self.place, Name(_)) || matches!(self.place, Top("displayName" | "nickName"))
    }
}
