//! Shared test helpers: fixture loading and a real embedded server on port 0.

use std::path::PathBuf;

use scimload::server::{spawn, ServerConfig, ServerHandle};
use serde_json::{json, Value};

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_str(&fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// Non-comment, non-empty lines of a fixture.
pub fn fixture_lines(rel: &str) -> Vec<String> {
    fixture(rel)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A server on 127.0.0.1:0 and a client for it.
pub struct Srv {
    /// Held for the test's lifetime; the server stops with the test's runtime.
    pub _handle: ServerHandle,
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Srv {
    pub async fn start(cfg: ServerConfig) -> Srv {
        let handle = spawn(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind port 0");
        let base = handle.url();
        Srv {
            _handle: handle,
            http: reqwest::Client::new(),
            base,
        }
    }

    pub async fn default() -> Srv {
        Self::start(ServerConfig::default()).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, ops: Value) -> Resp {
        self.send(
            "PATCH",
            path,
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})),
            &[],
        )
        .await
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, user_name: &str) -> String {
        let r = self
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                       "name": {"givenName": "G", "familyName": user_name}, "displayName": user_name}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    pub async fn group(&self, name: &str, members: &[&str]) -> String {
        let m: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        let r = self
            .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": m}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}

/// Asserts a SCIM Error response: status, status-as-string in the body, scimType.
#[macro_export]
macro_rules! assert_scim_error {
    ($resp:expr, $status:expr, $scim_type:expr) => {{
        let r = &$resp;
        assert_eq!(r.status, $status, "body: {}", r.body);
        assert_eq!(
            r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            r.body
        );
        assert_eq!(
            r.body["status"],
            $status.to_string(),
            "status must be a string: {}",
            r.body
        );
        let t: Option<&str> = $scim_type;
        assert_eq!(r.body["scimType"].as_str(), t, "{}", r.body);
        assert!(
            r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            r.body
        );
    }};
}
