//! Many independent requests on a few tasks: seeding a benchmark, deleting what an
//! import or a benchmark created. Results come back in input order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hyper::Method;

use super::retry::execute;
use super::{RetryPolicy, ScimClient};

/// Runs `f(k)` for k in 0..n on `workers` tasks; results by k.
pub async fn fan_out<T, E, F, Fut>(n: usize, workers: usize, f: F) -> Result<Vec<T>, E>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    E: Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let out: Arc<Mutex<Vec<Option<T>>>> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let f = Arc::new(f);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1).min(n.max(1)) {
        let (next, out, f) = (next.clone(), out.clone(), f.clone());
        set.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    return Ok(());
                }
                let v = f(k).await?;
                out.lock().expect("no panics while holding")[k] = Some(v);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            set.abort_all();
            return Err(e);
        }
    }
    let v = std::mem::take(&mut *out.lock().expect("no panics while holding"));
    Ok(v.into_iter().flatten().collect())
}

/// Deletes the given resources (`/Users/ID`, `/Groups/ID`) on `workers` tasks with the
/// retry policy; per path, whether it is gone (2xx, or 404: already gone).
pub async fn delete_all(client: &ScimClient, paths: Vec<String>, workers: usize) -> Vec<bool> {
    let n = paths.len();
    let paths = Arc::new(paths);
    let client = client.clone();
    fan_out(n, workers, move |k| {
        let (client, paths) = (client.clone(), paths.clone());
        async move {
            let e = execute(
                &client,
                &RetryPolicy::default(),
                Method::DELETE,
                &paths[k],
                None,
                false,
                k as u64,
            )
            .await;
            Ok::<_, std::convert::Infallible>(
                e.outcome.is_ok_and(|r| r.is_success() || r.status == 404),
            )
        }
    })
    .await
    .unwrap_or_else(|e| match e {})
}
