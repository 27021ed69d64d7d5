//! `scimload cleanup --state FILE`: delete from the target what imports recorded in a
//! state file — groups first (so no group is left pointing at deleted users), then users —
//! and forget what is gone, so a cleanup interrupted halfway can simply be run again.

use std::path::Path;

use serde::Serialize;

use super::state::{State, StateError};
use crate::client::fan::delete_all;
use crate::client::{ClientOptions, ScimClient};

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Client(String),
}

/// What a cleanup did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CleanupSummary {
    pub target: String,
    pub users_deleted: u64,
    pub groups_deleted: u64,
    /// Deletes the target refused or never answered; they stay in the state file.
    pub users_failed: u64,
    pub groups_failed: u64,
}

impl CleanupSummary {
    pub fn human(&self) -> String {
        format!(
            "cleanup of {}: {} groups and {} users deleted; {} groups and {} users could not be deleted (kept in the state file; run cleanup again)\n",
            self.target, self.groups_deleted, self.users_deleted, self.groups_failed, self.users_failed
        )
    }
}

/// Deletes everything `state` recorded. `target` overrides the URL the state was made
/// for (the same server reached another way).
pub async fn cleanup(
    state: &Path,
    target: Option<&str>,
    opts: &ClientOptions,
    concurrency: usize,
) -> Result<CleanupSummary, CleanupError> {
    let (recorded, users, groups) = State::contents(state)?;
    let base = target
        .unwrap_or(&recorded)
        .trim_end_matches('/')
        .to_string();
    let client = ScimClient::connect(&base, opts, concurrency)
        .map_err(|e| CleanupError::Client(e.to_string()))?;
    // An unreachable target, a refused certificate or credential stops here, before
    // the first delete.
    crate::client::discovery::discover(&client)
        .await
        .map_err(|e| CleanupError::Client(format!("cannot reach the target {base}: {e}")))?;
    let gone = |ids: &[String], ok: &[bool]| -> Vec<String> {
        ids.iter()
            .zip(ok)
            .filter(|(_, ok)| **ok)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let ok_groups = delete_all(
        &client,
        groups.iter().map(|id| format!("/Groups/{id}")).collect(),
        concurrency,
    )
    .await;
    let deleted_groups = gone(&groups, &ok_groups);
    State::forget(state, &[], &deleted_groups)?;
    let ok_users = delete_all(
        &client,
        users.iter().map(|id| format!("/Users/{id}")).collect(),
        concurrency,
    )
    .await;
    let deleted_users = gone(&users, &ok_users);
    State::forget(state, &deleted_users, &[])?;
    Ok(CleanupSummary {
        target: base,
        users_deleted: deleted_users.len() as u64,
        groups_deleted: deleted_groups.len() as u64,
        users_failed: (users.len() - deleted_users.len()) as u64,
        groups_failed: (groups.len() - deleted_groups.len()) as u64,
    })
}
