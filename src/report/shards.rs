//! Gathering the shards of one run from a shared directory (`scimload report --shards N
//! DIR`): the merge step of a Kubernetes Indexed Job, started beside the shards, waits
//! until each of the N has left a complete result (a `summary.json`, written last and
//! renamed into place) or a `failed.json`, and names the shard that failed or never came
//! rather than merging a part of the run as if it were the whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::results::bench::{ShardFailure, FAILED_FILE};

#[derive(Debug, thiserror::Error)]
pub enum ShardsError {
    #[error("shard {shard} of run {run_id} failed: {error} (see {dir}); fix the cause and run the whole Job again")]
    Failed {
        shard: String,
        run_id: String,
        error: String,
        dir: PathBuf,
    },
    #[error("{} of {count} shards missing after waiting {waited:.0} s in {}: {}; each needs a complete summary.json there (raise --wait if they are still running)", missing.len(), root.display(), missing.join(", "))]
    Missing {
        missing: Vec<String>,
        count: u64,
        waited: f64,
        root: PathBuf,
    },
    #[error("{0}")]
    Mixed(String),
    #[error(
        "cannot read {path}: {source}; give the directory the shards write their results under"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a shard's `summary.json` says about where it belongs.
#[derive(serde::Deserialize)]
struct Identity {
    run_id: String,
    shard: String,
}

/// One look at the directory: each shard's result directory, by 1-based index.
#[derive(Debug, Default)]
struct Seen {
    complete: BTreeMap<u64, PathBuf>,
    run_ids: BTreeMap<String, PathBuf>,
}

fn look(root: &Path, count: u64) -> Result<Seen, ShardsError> {
    let read = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| ShardsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut seen = Seen::default();
    let mut dirs: Vec<PathBuf> = read(root)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        if let Ok(raw) = std::fs::read(dir.join(FAILED_FILE)) {
            if let Ok(f) = serde_json::from_slice::<ShardFailure>(&raw) {
                return Err(ShardsError::Failed {
                    shard: f.shard,
                    run_id: f.run_id,
                    error: f.error,
                    dir,
                });
            }
        }
        // A summary still being renamed into place, or a directory of something else
        // (the merged report itself), is not a shard.
        let Ok(raw) = std::fs::read(dir.join("summary.json")) else {
            continue;
        };
        let Ok(id) = serde_json::from_slice::<Identity>(&raw) else {
            continue;
        };
        let Some((i, n)) = id.shard.split_once('/') else {
            continue;
        };
        let (Ok(i), Ok(n)) = (i.parse::<u64>(), n.parse::<u64>()) else {
            continue;
        };
        if i == 0 || i > n {
            continue;
        }
        if n != count {
            return Err(ShardsError::Mixed(format!(
                "{} holds shard {i}/{n}, but --shards says {count}; give the Job's completions, or clear results of other runs from {}",
                dir.display(),
                root.display()
            )));
        }
        seen.run_ids.entry(id.run_id).or_insert_with(|| dir.clone());
        if let Some(other) = seen.complete.insert(i, dir.clone()) {
            return Err(ShardsError::Mixed(format!(
                "{} and {} both hold shard {i}/{n}; keep one result per shard",
                other.display(),
                dir.display()
            )));
        }
    }
    if seen.run_ids.len() > 1 {
        let ids: Vec<String> = seen
            .run_ids
            .iter()
            .map(|(id, d)| format!("{id} ({})", d.display()))
            .collect();
        return Err(ShardsError::Mixed(format!(
            "{} holds shards of different runs: {}; give each run its own directory",
            root.display(),
            ids.join(", ")
        )));
    }
    Ok(seen)
}

/// Waits up to `wait` (polling every `poll`) for shards 1..=count under `root`; returns
/// their directories in shard order.
pub fn gather(
    root: &Path,
    count: u64,
    wait: Duration,
    poll: Duration,
) -> Result<Vec<PathBuf>, ShardsError> {
    let start = Instant::now();
    loop {
        let seen = look(root, count)?;
        if seen.complete.len() as u64 == count {
            return Ok(seen.complete.into_values().collect());
        }
        if start.elapsed() >= wait {
            let missing = (1..=count)
                .filter(|i| !seen.complete.contains_key(i))
                .map(|i| format!("{i}/{count} (JOB_COMPLETION_INDEX={})", i - 1))
                .collect();
            return Err(ShardsError::Missing {
                missing,
                count,
                waited: start.elapsed().as_secs_f64(),
                root: root.to_path_buf(),
            });
        }
        std::thread::sleep(poll.min(wait.saturating_sub(start.elapsed())));
    }
}
