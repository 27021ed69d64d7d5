//! Sharded runs as a Kubernetes Indexed Job runs them: `--shard auto` from the Job's
//! environment, one `--start-at` for every shard, results in one shared directory, and
//! `report --shards N` as the gate that names a shard that failed or never came.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use scimload::server::{spawn, ServerConfig};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scimload"));
    for v in [
        "SCIM_TOKEN",
        "SCIM_TARGET",
        "JOB_COMPLETION_INDEX",
        "SCIMLOAD_SHARDS",
    ] {
        c.env_remove(v);
    }
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn rfc3339(t: SystemTime) -> String {
    scimload::units::rfc3339(t)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scimload-shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Flags, environment, and what the refusal must say.
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn shard_settings_that_cannot_run_exit_2_and_say_what_to_set() {
    let cases: [Case; 5] = [
        (
            &["--start-at", "2020-01-01T00:00:00Z"],
            &[],
            "set a time ahead",
        ),
        (&["--start-at", "tomorrow"], &[], "RFC 3339"),
        (&["--shard", "auto"], &[], "JOB_COMPLETION_INDEX"),
        (
            &["--shard", "auto"],
            &[("JOB_COMPLETION_INDEX", "0"), ("SCIMLOAD_SHARDS", "0")],
            "at least one shard",
        ),
        (
            &["--shard", "auto"],
            &[("JOB_COMPLETION_INDEX", "3"), ("SCIMLOAD_SHARDS", "3")],
            "out of range",
        ),
    ];
    for (args, env, says) in cases {
        let out = bin()
            .args(["bench", "get", "--quiet", "--duration", "1s"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(says), "{args:?} {env:?}: {err}");
        assert!(!err.contains("embedded"), "nothing may start: {err}");
    }
}

/// Runs shard `index` (0-based, as the Job sets it) of 3 with the pods' flags.
fn shard(target: &str, index: u32, start: SystemTime, root: &Path) -> std::process::Child {
    bin()
        .args(["bench", "get", "--shard", "auto", "--start-at"])
        .arg(rfc3339(start))
        .args(["--run-id", "k8s", "--rate", "600", "--duration", "2s"])
        .args(["--users", "30", "--connections", "4", "--quiet", "--report"])
        .arg(root.join(format!("shard-{index}")))
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .env("SCIMLOAD_SHARDS", "3")
        .env("SCIM_TARGET", target)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn merge(root: &Path, wait: &str) -> Output {
    bin()
        .args(["report", "--shards", "3", "--wait", wait, "--json"])
        .arg(root)
        .arg("--out")
        .arg(root.join("merged"))
        .output()
        .unwrap()
}

/// [`merge`] on a blocking thread: the server it reads from runs on this runtime.
async fn merge_off_runtime(root: &Path, wait: &'static str) -> Output {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || merge(&root, wait))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_started_at_one_instant_merge_and_the_merge_names_what_is_missing() {
    let h = spawn(ServerConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = h.url();
    let root = tmp("run");
    let start = SystemTime::now() + Duration::from_secs(4);
    let outs = tokio::task::spawn_blocking({
        let (url, root) = (url.clone(), root.clone());
        move || {
            let children: Vec<_> = (0..3).map(|i| shard(&url, i, start, &root)).collect();
            children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect::<Vec<_>>()
        }
    })
    .await
    .unwrap();
    for o in &outs {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
        assert!(!stderr(o).contains(&url), "the target stays out of the log");
    }
    // Every shard's schedule starts at the one instant: shard k's first send is k/600 s
    // after it (the global schedule's k-th request).
    for i in 0..3u32 {
        let s = summary(&root.join(format!("shard-{i}")));
        assert_eq!(s["shard"], format!("{}/3", i + 1));
        let first =
            scimload::units::parse_rfc3339(s["first_intended_send"].as_str().unwrap()).unwrap();
        let want = start + Duration::from_secs_f64(i as f64 / 600.0);
        let off = match first.duration_since(want) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(off < Duration::from_micros(10), "shard {i} off by {off:?}");
        assert_eq!(s["planned"], 400, "{s}");
    }

    let out = merge_off_runtime(&root, "5s").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let merged = summary(&root.join("merged"));
    assert_eq!(merged["shards"], 3);
    assert_eq!(
        merged["planned"], 1200,
        "the single-run plan: 600/s for 2 s"
    );
    // A second merge ignores the merged result beside the shards.
    let again = merge_off_runtime(&root, "0s").await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));

    // A shard that never finished: the merge waits, then names it.
    std::fs::remove_file(root.join("shard-1/summary.json")).unwrap();
    let t = std::time::Instant::now();
    let out = merge_off_runtime(&root, "3s").await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2/3 (JOB_COMPLETION_INDEX=1)") && err.contains("missing"),
        "{err}"
    );
    assert!(t.elapsed() >= Duration::from_secs(3), "it waited --wait");

    // A shard that could not run: its failed.json ends the wait at once, named.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let failed = tokio::task::spawn_blocking({
        let root = root.clone();
        move || {
            shard(&dead, 1, SystemTime::now() + Duration::from_secs(1), &root)
                .wait_with_output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(root.join("shard-1/failed.json").exists());
    let t = std::time::Instant::now();
    let out = merge_off_runtime(&root, "60s").await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("shard 2/3 of run k8s failed") && err.contains("cannot reach"),
        "{err}"
    );
    assert!(
        !err.contains("http://127.0.0.1:"),
        "the target stays out: {err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "no wait for a failure"
    );
    let _ = std::fs::remove_dir_all(&root);
}
