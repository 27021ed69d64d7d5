//! A record of every request the server received (method, path and query, body), kept
//! only when asked for: tests use it to check the exact requests a client sent — each
//! import dialect's shapes, each benchmark scenario's mix — as the server saw them.

use std::sync::Mutex;

use bytes::Bytes;

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query as sent, e.g. `/Users?filter=userName%20eq%20%22a%22`.
    pub target: String,
    pub body: Bytes,
    /// `HTTP/1.1` or `HTTP/2`, as the connection spoke.
    pub version: &'static str,
    /// Request headers, names in lowercase; `authorization` recorded as `***` (the
    /// journal must not become a place where tokens are kept).
    pub headers: Vec<(String, String)>,
    /// When it arrived (rates measured at the server side).
    pub at: std::time::Instant,
}

impl Received {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Received {
    /// The body as JSON (null when empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Default)]
pub struct Journal {
    entries: Mutex<Vec<Received>>,
}

impl Journal {
    pub fn push(&self, r: Received) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
    }

    /// Everything received so far, in arrival order.
    pub fn entries(&self) -> Vec<Received> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
