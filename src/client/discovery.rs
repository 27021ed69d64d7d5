//! What a target says it can do: `GET /ServiceProviderConfig` (RFC 7643 §5, RFC 9865 for
//! pagination), read once before an import so requests are sized from it. A target
//! that does not answer, or answers something else, is treated as offering nothing
//! beyond the basics; explicit flags always win over what is discovered.

use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use super::retry::execute;
use super::{RetryPolicy, ScimClient, TransportError};

/// The parts of a ServiceProviderConfig an import uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    /// The target answered with a ServiceProviderConfig.
    pub discovered: bool,
    /// `/Bulk`: (maxOperations, maxPayloadSize in bytes), when supported.
    pub bulk: Option<(usize, usize)>,
    pub patch: bool,
    /// Most resources a filtered list returns (`filter.maxResults`).
    pub filter_max_results: Option<u64>,
    pub index_paging: Option<bool>,
    pub cursor_paging: Option<bool>,
}

impl Capabilities {
    /// From a ServiceProviderConfig document.
    pub fn from_config(v: &Value) -> Self {
        let num = |x: &Value| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        };
        let yes = |x: &Value| {
            x.as_bool()
                .or_else(|| x.as_str().map(|s| s.eq_ignore_ascii_case("true")))
        };
        let bulk = &v["bulk"];
        Capabilities {
            discovered: v.is_object(),
            bulk: match (
                yes(&bulk["supported"]),
                num(&bulk["maxOperations"]),
                num(&bulk["maxPayloadSize"]),
            ) {
                (Some(true), Some(ops), Some(bytes)) if ops > 1 && bytes > 0 => {
                    Some((ops as usize, bytes as usize))
                }
                _ => None,
            },
            patch: yes(&v["patch"]["supported"]).unwrap_or(false),
            filter_max_results: num(&v["filter"]["maxResults"]),
            index_paging: yes(&v["pagination"]["index"]),
            cursor_paging: yes(&v["pagination"]["cursor"]),
        }
    }
}

/// Reads the target's ServiceProviderConfig (a few quick attempts, never fatal).
/// Reads /ServiceProviderConfig; a server without one gets the defaults. Fails when the
/// target gives no HTTP answer at all (no connection, a refused TLS certificate or
/// credential, a connection closed or timed out three times), which no later request
/// would survive either.
pub async fn discover(client: &ScimClient) -> Result<Capabilities, TransportError> {
    // A token endpoint that refuses the client stops the command here, before a row.
    client.authenticate().await?;
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let e = execute(
        client,
        &policy,
        Method::GET,
        "/ServiceProviderConfig",
        None,
        false,
        3,
    )
    .await;
    match e.outcome {
        // No HTTP answer at all after three tries: no later request would get one
        // either (a server that answers 404 here is fine and gets the defaults).
        Err(TransportError::Reset(m))
            if client.options().version == crate::client::HttpVersion::Http2
                && !client.base_url().is_tls() =>
        {
            Err(TransportError::Reset(format!(
                "{m}; the target closed HTTP/2 (prior knowledge) connections, so it probably speaks only HTTP/1.1 on http://: drop --http2"
            )))
        }
        Err(t) => Err(t),
        outcome => Ok(outcome
            .ok()
            .filter(|r| r.is_success())
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .map(|v| Capabilities::from_config(&v))
            .unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_limits_and_tolerates_strings() {
        let c = Capabilities::from_config(&json!({
            "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": "1048576"},
            "patch": {"supported": true},
            "filter": {"supported": true, "maxResults": 200},
            "pagination": {"cursor": true, "index": false}
        }));
        assert_eq!(c.bulk, Some((1000, 1_048_576)));
        assert_eq!((c.patch, c.filter_max_results), (true, Some(200)));
        assert_eq!((c.index_paging, c.cursor_paging), (Some(false), Some(true)));
        let none =
            Capabilities::from_config(&json!({"bulk": {"supported": false, "maxOperations": 0}}));
        assert_eq!(none.bulk, None);
    }
}
