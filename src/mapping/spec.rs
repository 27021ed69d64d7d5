//! The mapping file (TOML) as the user writes it, before it is checked against a file's
//! columns. See `datasets/mappings/*.toml` for complete examples.
//!
//! ```toml
//! [user]
//! userName = { template = "{Email_Work}", transform = ["lowercase"] }
//! displayName = "{Preferred_Name|Legal_First_Name} {Legal_Last_Name}"
//! active = { template = "{Worker_Status}", map = { Active = "true", Terminated = "false" }, default = "true" }
//!
//! [[groups]]
//! name = "Dept: {Supervisory_Organization}"
//!
//! [validate]
//! required = ["userName", "name.givenName", "name.familyName", "displayName"]
//! max_length = 256
//! dates = ["Hire_Date"]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// SCIM attribute → how to compute it.
    pub user: BTreeMap<String, ValueSpec>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    #[serde(default)]
    pub validate: ValidateSpec,
    /// With `[columns]`, only the columns it lists are needed: another column the
    /// mapping uses that a file lacks is a warning, and what it feeds is left unset.
    /// Without it, every column the mapping names must be in the file.
    #[serde(default)]
    pub columns: Option<ColumnsSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsSpec {
    /// Columns without which the mapping makes no sense (the ids, names, email).
    pub required: Vec<String>,
}

/// A template string, or a table with transforms, a default and a value map.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ValueSpec {
    Template(String),
    Full(FullValue),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullValue {
    pub template: String,
    #[serde(default)]
    pub transform: Vec<String>,
    /// Used when the template comes out empty.
    pub default: Option<String>,
    /// Replaces whole values (after transforms): `{ Active = "true" }`.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// For custom attributes: string (default), boolean, integer, decimal, dateTime or
    /// reference; each row's value is converted, and rejected when it cannot be.
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
    /// For custom and multi-valued attributes: the column holds several values
    /// separated by this (`"; "` in `"admin; auditor"`).
    #[serde(default)]
    pub split: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Group displayName template: one group per distinct value, or a fixed name.
    pub name: String,
    /// Only rows whose `active` maps to true join (default: every row).
    #[serde(default)]
    pub active_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSpec {
    #[serde(default = "default_required")]
    pub required: Vec<String>,
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Columns that must hold dates (YYYY-MM-DD, or MM/DD/YYYY).
    #[serde(default)]
    pub dates: Vec<String>,
}

/// The strictest well-known provider (Entra ID's gallery rules, AWS) needs all four.
fn default_required() -> Vec<String> {
    [
        "userName",
        "name.givenName",
        "name.familyName",
        "displayName",
    ]
    .map(String::from)
    .to_vec()
}

fn default_max_length() -> usize {
    256
}

impl Default for ValidateSpec {
    fn default() -> Self {
        ValidateSpec {
            required: default_required(),
            max_length: default_max_length(),
            dates: Vec::new(),
        }
    }
}
