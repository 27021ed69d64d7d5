//! The duplicate screen: the first row with a userName or externalId wins, a later one is
//! rejected naming the row it repeats. Keys live in a spilling index (dedup.rs) so a
//! million-row export stays within its memory budget.

use std::path::Path;

use super::dedup::SpillIndex;
use super::ingest::RowOutcome;
use crate::mapping::{RejectCode, Rejected};

/// Duplicate checks over accepted rows: the first userName / externalId wins.
#[derive(Default)]
pub struct Duplicates {
    user_names: SpillIndex,
    external_ids: SpillIndex,
}

impl Duplicates {
    /// For reading `path`: the default budget, filters sized for the file's rows.
    pub fn for_input(path: &Path) -> Self {
        let expect = crate::source::RowEstimate::start(path);
        Duplicates {
            user_names: SpillIndex::default().expecting(expect),
            external_ids: SpillIndex::default().expecting(expect),
        }
    }

    /// At most `budget` keys of each kind in memory (the rest on disk).
    #[cfg(test)]
    pub fn with_budget(budget: usize) -> Self {
        Duplicates {
            user_names: SpillIndex::with_budget(budget),
            external_ids: SpillIndex::with_budget(budget),
        }
    }

    /// `Some(reject)` if the row repeats an accepted userName or externalId.
    pub fn check(&mut self, u: &crate::mapping::MappedUser) -> Option<Rejected> {
        let dup = |code, field: &str, reason: String| {
            Some(Rejected {
                row: u.row,
                external_id: Some(u.external_id().to_string()),
                field: field.into(),
                code,
                reason,
                raw: Vec::new(),
            })
        };
        if let Some(first) = self.external_ids.get(u.ext_key) {
            return dup(
                RejectCode::DuplicateExternalId,
                "externalId",
                format!(
                    "externalId '{}' is already used by row {first}",
                    u.external_id()
                ),
            );
        }
        if let Some(first) = self.user_names.get(u.user_key) {
            return dup(
                RejectCode::DuplicateUserName,
                "userName",
                format!(
                    "userName '{}' is already used by row {first} (userNames are case-insensitive)",
                    u.user_name()
                ),
            );
        }
        self.external_ids.insert_new(u.ext_key, u.row);
        self.user_names.insert_new(u.user_key, u.row);
        None
    }

    /// A user that repeats an accepted one becomes a rejected row.
    pub fn screen(&mut self, o: RowOutcome) -> RowOutcome {
        match o {
            RowOutcome::User(u) => match self.check(&u) {
                Some(mut r) => {
                    r.raw = u.body().to_vec();
                    RowOutcome::Rejected(Box::new(r))
                }
                None => RowOutcome::User(u),
            },
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{Format, GenConfig, Generator, Shape};
    use crate::import::ingest::{ingest, IngestOptions};
    use crate::mapping::presets;

    /// 30,000 Workday rows with 3% defects (repeated userNames and employee ids among
    /// them): a 1,024-key index that spills ~30 runs to disk answers exactly as one that
    /// holds every key.
    #[test]
    fn duplicates_found_after_spilling_match_the_in_memory_answer() {
        let path = std::env::temp_dir().join(format!("scimload-dups-{}.csv", std::process::id()));
        let mut data = Vec::new();
        Generator::new(GenConfig {
            rows: 30_000,
            shape: Shape::Workday,
            format: Format::Csv,
            seed: 7,
            dirty: 0.03,
        })
        .write_all(&mut data)
        .unwrap();
        std::fs::write(&path, data).unwrap();
        let (mut small, mut whole) = (
            Duplicates::with_budget(1024),
            Duplicates::with_budget(1 << 20),
        );
        let mut dups = 0;
        ingest(
            &path,
            &presets::load("workday").unwrap(),
            &IngestOptions::default(),
            |batch| {
                for o in batch {
                    if let RowOutcome::User(u) = o {
                        let a = small.check(&u).map(|r| (r.code, r.reason));
                        let b = whole.check(&u).map(|r| (r.code, r.reason));
                        assert_eq!(a, b, "row {}", u.row);
                        dups += a.is_some() as usize;
                    }
                }
                Ok(())
            },
        )
        .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            small.external_ids.spilled > 25_000,
            "{}",
            small.external_ids.spilled
        );
        assert!(dups > 100, "the export repeats keys: {dups}");
    }
}
