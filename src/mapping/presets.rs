//! Built-in mappings for the export shapes `scimload gen` produces and real HR systems
//! export. The same files are in `datasets/mappings/` for users to copy and adapt.

use super::{MappingError, MappingSpec};

pub const WORKDAY: &str = include_str!("../../datasets/mappings/workday.toml");
pub const BAMBOOHR: &str = include_str!("../../datasets/mappings/bamboohr.toml");
pub const GENERIC: &str = include_str!("../../datasets/mappings/generic.toml");

pub fn text(name: &str) -> Result<&'static str, MappingError> {
    match name.to_ascii_lowercase().as_str() {
        "workday" => Ok(WORKDAY),
        "bamboohr" => Ok(BAMBOOHR),
        "generic" => Ok(GENERIC),
        other => Err(MappingError::Preset(other.to_string())),
    }
}

pub fn parse(text: &str, path: &str) -> Result<MappingSpec, MappingError> {
    toml::from_str(text).map_err(|e| MappingError::Parse {
        path: path.to_string(),
        detail: e.to_string(),
    })
}

pub fn load(name: &str) -> Result<MappingSpec, MappingError> {
    parse(text(name)?, &format!("preset {name}"))
}

pub fn load_file(path: &std::path::Path) -> Result<MappingSpec, MappingError> {
    let p = path.display().to_string();
    let t = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
        path: p.clone(),
        source,
    })?;
    parse(&t, &p)
}
