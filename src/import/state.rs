//! Import state (SQLite): which externalId became which SCIM id, with which content, so
//! that a re-run skips unchanged rows without a request, updates changed ones, and an
//! import killed at any point — SIGKILL included — finishes on the next run without a
//! duplicate (what was created but not yet recorded answers 409 and is upserted).
//!
//! Results are written by one thread in transactions of a few hundred rows: a crash
//! loses at most the last uncommitted batch, which the next run repairs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot open the state file {path}: {source}; check the path, or delete it to start afresh"
    )]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the state file {path} belongs to target {recorded}, not {target}; give another --state for this target")]
    OtherTarget {
        path: String,
        recorded: String,
        target: String,
    },
    #[error("state file {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
}

/// A user as the state remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownUser {
    pub scim_id: String,
    pub content_hash: u64,
    /// Sent to an asynchronous target (Entra's inbound `/bulkUpload`) and not yet
    /// confirmed: the id of the request that carried it. The SCIM id is empty then.
    pub request_id: Option<String>,
    /// Where that request's outcome is read (path below the target's host), if known.
    pub status_path: Option<String>,
}

/// What the writer thread records.
#[derive(Debug)]
pub enum Record {
    User {
        external_id: String,
        scim_id: String,
        content_hash: u64,
        outcome: &'static str,
    },
    /// A user deleted from the target: forget it.
    ForgetUser { external_id: String },
    /// A user accepted by an asynchronous target (202) and not yet confirmed: the
    /// request that carried it, so a re-run asks after it instead of sending it again.
    Pending {
        external_id: String,
        content_hash: u64,
        request_id: String,
        status_path: Option<String>,
    },
    /// A group and the hash of the member ids it was last given.
    Group {
        name: String,
        scim_id: String,
        members_hash: u64,
    },
}

pub struct State {
    path: PathBuf,
    pub users: HashMap<String, KnownUser>,
    /// displayName → (SCIM id, hash of the members last sent).
    pub groups: HashMap<String, (String, u64)>,
    /// The previous run never finished (killed): creates it had sent may have been
    /// applied without being recorded.
    pub unclean: bool,
    tx: Option<mpsc::Sender<Record>>,
    writer: Option<JoinHandle<Result<(), StateError>>>,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StateError + '_ {
    move |source| StateError::Sql {
        path: path.display().to_string(),
        source,
    }
}

fn connect(path: &Path) -> Result<Connection, StateError> {
    let c = Connection::open(path).map_err(|source| StateError::Open {
        path: path.display().to_string(),
        source,
    })?;
    // WAL + NORMAL: durable across process crashes (what resume needs), cheap per commit.
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL, file TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS users (external_id TEXT PRIMARY KEY, scim_id TEXT NOT NULL,
             content_hash INTEGER NOT NULL, outcome TEXT NOT NULL, run INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, scim_id TEXT NOT NULL, members_hash INTEGER NOT NULL DEFAULT 0,
             run INTEGER NOT NULL);",
    )
    .map_err(sql(path))?;
    // Whether a run ended: states written before this column was added have none.
    let has_finished: bool = c
        .prepare("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'finished'")
        .and_then(|mut st| st.exists([]))
        .map_err(sql(path))?;
    if !has_finished {
        c.execute_batch("ALTER TABLE runs ADD COLUMN finished TEXT;")
            .map_err(sql(path))?;
    }
    // The request of a user still pending at an asynchronous target (added later too).
    let has_request: bool = c
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'request_id'")
        .and_then(|mut st| st.exists([]))
        .map_err(sql(path))?;
    if !has_request {
        c.execute_batch(
            "ALTER TABLE users ADD COLUMN request_id TEXT; ALTER TABLE users ADD COLUMN status_path TEXT;",
        )
        .map_err(sql(path))?;
    }
    Ok(c)
}

impl State {
    /// Opens (or creates) the state for `target`, loads what it knows, starts a run.
    pub fn open(path: &Path, target: &str, file: &str) -> Result<Self, StateError> {
        let c = connect(path)?;
        let e = sql(path);
        let recorded: Option<String> = c
            .query_row("SELECT value FROM meta WHERE key = 'target'", [], |r| {
                r.get(0)
            })
            .map(Some)
            .or_else(|err| {
                if err == rusqlite::Error::QueryReturnedNoRows {
                    Ok(None)
                } else {
                    Err(err)
                }
            })
            .map_err(&e)?;
        match recorded {
            Some(r) if r != target => {
                return Err(StateError::OtherTarget {
                    path: path.display().to_string(),
                    recorded: r,
                    target: target.to_string(),
                })
            }
            Some(_) => {}
            None => {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ('target', ?1)",
                    params![target],
                )
                .map_err(&e)?;
            }
        }
        let unclean = c
            .query_row(
                "SELECT finished IS NULL FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get::<_, bool>(0),
            )
            .or_else(|err| {
                if err == rusqlite::Error::QueryReturnedNoRows {
                    Ok(false)
                } else {
                    Err(err)
                }
            })
            .map_err(&e)?;
        let now = crate::scim::value::format_datetime(time::OffsetDateTime::now_utc());
        c.execute(
            "INSERT INTO runs (started, file) VALUES (?1, ?2)",
            params![now, file],
        )
        .map_err(&e)?;
        let run = c.last_insert_rowid();
        let (users, groups) = load(&c, path)?;
        let (tx, rx) = mpsc::channel::<Record>();
        let wpath = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("scimload-state".into())
            .spawn(move || write_loop(c, rx, run, &wpath))
            .map_err(|err| StateError::Sql {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(err)),
            })?;
        Ok(State {
            path: path.to_path_buf(),
            users,
            groups,
            unclean,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    pub fn record(&self, r: Record) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(r);
        }
    }

    /// Flushes everything recorded and stops the writer.
    pub fn close(mut self) -> Result<(), StateError> {
        drop(self.tx.take());
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(StateError::Sql {
                path: self.path.display().to_string(),
                source: rusqlite::Error::InvalidQuery,
            }),
            None => Ok(()),
        }
    }

    /// Everything a state file holds, for `cleanup`: (user SCIM ids, group SCIM ids).
    pub fn contents(path: &Path) -> Result<(String, Vec<String>, Vec<String>), StateError> {
        let c = connect(path)?;
        let e = sql(path);
        let target: String = c
            .query_row("SELECT value FROM meta WHERE key = 'target'", [], |r| {
                r.get(0)
            })
            .map_err(&e)?;
        let ids = |q: &str| -> Result<Vec<String>, StateError> {
            let mut st = c.prepare(q).map_err(&e)?;
            let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(&e)?;
            rows.collect::<Result<_, _>>().map_err(&e)
        };
        Ok((
            target,
            ids("SELECT scim_id FROM users WHERE scim_id != ''")?,
            ids("SELECT scim_id FROM groups")?,
        ))
    }

    /// Forgets resources that `cleanup` deleted.
    pub fn forget(path: &Path, users: &[String], groups: &[String]) -> Result<(), StateError> {
        let mut c = connect(path)?;
        let e = sql(path);
        let tx = c.transaction().map_err(&e)?;
        for id in users {
            tx.execute("DELETE FROM users WHERE scim_id = ?1", params![id])
                .map_err(&e)?;
        }
        for id in groups {
            tx.execute("DELETE FROM groups WHERE scim_id = ?1", params![id])
                .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }
}

type Loaded = (HashMap<String, KnownUser>, HashMap<String, (String, u64)>);

fn load(c: &Connection, path: &Path) -> Result<Loaded, StateError> {
    let e = sql(path);
    let mut users = HashMap::new();
    let mut q = c
        .prepare("SELECT external_id, scim_id, content_hash, request_id, status_path FROM users")
        .map_err(&e)?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(&e)?;
    for row in rows {
        let (ext, id, h, request_id, status_path) = row.map_err(&e)?;
        users.insert(
            ext,
            KnownUser {
                scim_id: id,
                content_hash: h as u64,
                request_id,
                status_path,
            },
        );
    }
    let mut q = c
        .prepare("SELECT name, scim_id, members_hash FROM groups")
        .map_err(&e)?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(&e)?;
    let mut groups = HashMap::new();
    for row in rows {
        let (n, id, h) = row.map_err(&e)?;
        groups.insert(n, (id, h as u64));
    }
    Ok((users, groups))
}

fn write_loop(
    mut c: Connection,
    rx: mpsc::Receiver<Record>,
    run: i64,
    path: &Path,
) -> Result<(), StateError> {
    let e = sql(path);
    let mut open = true;
    while open {
        // Block for the first record, then let the others gather for 20 ms and take
        // them all in one transaction: waking for every record (as recv_timeout does)
        // cost a futex round trip per user on cores the target shares.
        let first = match rx.recv() {
            Ok(r) => r,
            Err(_) => break,
        };
        let mut batch = vec![first];
        std::thread::sleep(Duration::from_millis(20));
        loop {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let tx = c.transaction().map_err(&e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO users (external_id, scim_id, content_hash, outcome, run, request_id, status_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(external_id) DO UPDATE SET scim_id = ?2, content_hash = ?3, outcome = ?4, run = ?5, request_id = ?6, status_path = ?7",
                )
                .map_err(&e)?;
            let mut gp = tx
                .prepare_cached(
                    "INSERT INTO groups (name, scim_id, members_hash, run) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO UPDATE SET scim_id = ?2, members_hash = ?3, run = ?4",
                )
                .map_err(&e)?;
            for r in batch {
                match r {
                    Record::User {
                        external_id,
                        scim_id,
                        content_hash,
                        outcome,
                    } => {
                        up.execute(params![
                            external_id,
                            scim_id,
                            content_hash as i64,
                            outcome,
                            run,
                            None::<String>,
                            None::<String>
                        ])
                        .map_err(&e)?;
                    }
                    Record::Pending {
                        external_id,
                        content_hash,
                        request_id,
                        status_path,
                    } => {
                        up.execute(params![
                            external_id,
                            "",
                            content_hash as i64,
                            "pending",
                            run,
                            request_id,
                            status_path
                        ])
                        .map_err(&e)?;
                    }
                    Record::ForgetUser { external_id } => {
                        tx.execute(
                            "DELETE FROM users WHERE external_id = ?1",
                            params![external_id],
                        )
                        .map_err(&e)?;
                    }
                    Record::Group {
                        name,
                        scim_id,
                        members_hash,
                    } => {
                        gp.execute(params![name, scim_id, members_hash as i64, run])
                            .map_err(&e)?;
                    }
                }
            }
        }
        tx.commit().map_err(&e)?;
    }
    // Everything this run recorded is in: it finished (a killed run never gets here).
    let now = crate::scim::value::format_datetime(time::OffsetDateTime::now_utc());
    c.execute(
        "UPDATE runs SET finished = ?1 WHERE id = ?2",
        params![now, run],
    )
    .map_err(&e)?;
    Ok(())
}
