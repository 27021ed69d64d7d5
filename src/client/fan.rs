//! Many independent requests on a few tasks: seeding a benchmark, deleting what an
//! import or a benchmark created. Results come back in input order.

use std::sync::Arc;

use hyper::Method;

use super::retry::execute;
use super::{RetryPolicy, ScimClient};
use crate::dispatch::InFlight;

/// Runs `f(k)` for k in 0..n, at most `workers` at a time (the one in-flight bound every
/// phase uses); results by k. On the first error nothing more starts, and what is still
/// in flight is dropped (a JoinSet aborts its tasks when dropped).
pub async fn fan_out<T, E, F, Fut>(n: usize, workers: usize, f: F) -> Result<Vec<T>, E>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    E: Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
{
    let f = Arc::new(f);
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut flight = InFlight::new(workers);
    let mut failed: Option<E> = None;
    let mut keep = |(k, r): (usize, Result<T, E>), failed: &mut Option<E>| match r {
        Ok(v) => out[k] = Some(v),
        Err(e) => {
            failed.get_or_insert(e);
        }
    };
    for k in 0..n {
        if failed.is_some() {
            break;
        }
        let f = f.clone();
        let task = async move { (k, f(k).await) };
        flight.start(task, |d| keep(d, &mut failed)).await;
    }
    while failed.is_none() {
        match flight.next().await {
            Some(d) => keep(d, &mut failed),
            None => break,
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(out.into_iter().flatten().collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Results come back by k whatever order the tasks finish in, never more than
    /// `workers` run at once, and the first error ends the fan-out.
    #[tokio::test]
    async fn results_in_input_order_within_the_bound_and_errors_stop_it() {
        let gauge = crate::dispatch::inflight::Gauge::default();
        let g = gauge.clone();
        let got = fan_out(50, 4, move |k| {
            // Later k finish sooner: order must come from k, not from completion.
            let held = g.task(5 - (k % 5) as u64);
            async move {
                held.await;
                Ok::<_, String>(k * 10)
            }
        })
        .await
        .unwrap();
        assert_eq!(got, (0..50).map(|k| k * 10).collect::<Vec<_>>());
        assert_eq!(gauge.peak(), 4);

        let started = Arc::new(AtomicUsize::new(0));
        let s2 = started.clone();
        let err = fan_out(1000, 2, move |k| {
            s2.fetch_add(1, Ordering::SeqCst);
            async move {
                if k == 3 {
                    Err(format!("row {k}"))
                } else {
                    Ok(k)
                }
            }
        })
        .await
        .unwrap_err();
        assert_eq!(err, "row 3");
        assert!(
            started.load(Ordering::SeqCst) < 1000,
            "nothing more starts after an error"
        );
    }
}
