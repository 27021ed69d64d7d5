//! Each target profile's limits, as a client of AWS IAM Identity Center or the Entra ID
//! SCIM API would meet them.

use crate::assert_scim_error;
use crate::harness::Srv;
use scimload::server::profile::{Profile, AWS, CORE_ONLY, ENTRA_API};
use scimload::server::ServerConfig;
use serde_json::{json, Value};

async fn with(p: &'static Profile) -> Srv {
    Srv::start(ServerConfig {
        profile: p,
        ..ServerConfig::default()
    })
    .await
}

fn members(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|i| json!({"value": i})).collect())
}

#[tokio::test]
async fn aws_profile_limits() {
    let s = with(&AWS).await;
    let mut ids = Vec::new();
    for i in 0..150 {
        ids.push(s.user(&format!("u{i:03}")).await);
    }
    // eq/and only.
    assert_scim_error!(
        s.get("/Users?filter=userName%20co%20%22u%22").await,
        400,
        Some("invalidFilter")
    );
    assert_scim_error!(
        s.get("/Users?filter=userName%20eq%20%22a%22%20or%20userName%20eq%20%22b%22")
            .await,
        400,
        Some("invalidFilter")
    );
    assert_eq!(
        s.get("/Users?filter=userName%20eq%20%22u001%22").await.body["totalResults"],
        1
    );
    // Cursor paging, at most 100 per page, no startIndex.
    assert_scim_error!(
        s.get("/Users?startIndex=1").await,
        400,
        Some("invalidValue")
    );
    let r = s.get("/Users?count=500").await;
    assert_eq!(r.body["itemsPerPage"], 100);
    let next = r.body["nextCursor"]
        .as_str()
        .expect("a next cursor")
        .to_string();
    let r = s.get(&format!("/Users?count=500&cursor={next}")).await;
    assert_eq!(r.body["itemsPerPage"], 50);
    assert!(r.body.get("nextCursor").is_none());
    // At most 100 members on create and per PATCH; never returned on reads.
    let r = s
        .post(
            "/Groups",
            json!({"displayName": "too big", "members": members(&ids[..101])}),
        )
        .await;
    assert_scim_error!(r, 400, Some("invalidValue"));
    let g = s
        .group(
            "g",
            &ids[..100].iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    let r = s.get(&format!("/Groups/{g}")).await;
    assert!(
        r.body.get("members").is_none(),
        "AWS never returns members: {}",
        r.body
    );
    let r = s.patch(&format!("/Groups/{g}"), json!([{"op": "add", "path": "members", "value": members(&ids[100..150])},
                                                      {"op": "remove", "path": "members", "value": members(&ids[..51])}])).await;
    assert_scim_error!(r, 400, Some("invalidValue"));
    let r = s.patch(&format!("/Groups/{g}"), json!([{"op": "add", "path": "members", "value": members(&ids[100..150])},
                                                      {"op": "remove", "path": "members", "value": members(&ids[..50])}])).await;
    assert_eq!(r.status, 204, "exactly 100 changes are fine: {}", r.body);
    let r = s
        .get(&format!(
            "/Groups?filter=id%20eq%20%22{g}%22%20and%20members%20eq%20%22{}%22",
            ids[120]
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    // No remove-all, no bulk.
    assert_scim_error!(
        s.patch(
            &format!("/Groups/{g}"),
            json!([{"op": "remove", "path": "members"}])
        )
        .await,
        400,
        Some("invalidValue")
    );
    assert_scim_error!(s.post("/Bulk", json!({"Operations": []})).await, 501, None);
    let spc = s.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["pagination"]["index"], false);
    assert_eq!(spc["pagination"]["maxPageSize"], 100);
    assert_eq!(spc["filter"]["maxResults"], 100);
}

#[tokio::test]
async fn aws_profile_throttles_like_aws() {
    let cfg = ServerConfig {
        profile: &AWS,
        faults: scimload::server::faults::FaultConfig {
            error_429: 1.0,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let s = Srv::start(cfg).await;
    let r = s.get("/Users").await;
    assert_scim_error!(r, 429, None);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("ThrottlingException"));
    assert_eq!(r.headers["retry-after"], "1");
}

#[tokio::test]
async fn entra_api_profile_limits() {
    let s = with(&ENTRA_API).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(s.user(&format!("e{i}")).await);
    }
    let g = s.group("g", &[]).await;
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": members(&ids[..21])}]),
        )
        .await;
    assert_scim_error!(r, 400, Some("invalidValue"));
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": members(&ids[..20])}]),
        )
        .await;
    assert_eq!(r.status, 204);
    let two = json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
                     {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}]);
    assert_scim_error!(
        s.patch(&format!("/Groups/{g}"), two).await,
        400,
        Some("invalidValue")
    );
    let one = json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]);
    assert_eq!(s.patch(&format!("/Groups/{g}"), one).await.status, 204);
    assert_eq!(
        s.get(&format!("/Groups/{g}")).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        19
    );
    assert_scim_error!(
        s.get("/Users?startIndex=2").await,
        400,
        Some("invalidValue")
    );
    assert!(s.get("/Users?count=10").await.body["nextCursor"].is_string());
}

#[tokio::test]
async fn core_only_profile_drops_what_it_does_not_declare() {
    let s = with(&CORE_ONLY).await;
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    // Discovery declares the core schemas only.
    let schemas = s.get("/Schemas").await.body;
    let ids: Vec<&str> = schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group"
        ]
    );
    let rt = s.get("/ResourceTypes/User").await.body;
    assert_eq!(rt["schemaExtensions"], json!([]));
    assert_eq!(s.get(&format!("/Schemas/{ent}")).await.status, 404);
    // A user with the extension and an unknown attribute: 201, neither kept.
    let r = s
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ent],
                   "userName": "kept", "title": "Engineer", "costCenter": "4130",
                   ent: {"department": "R&D", "employeeNumber": "7"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let got = s.get(&format!("/Users/{id}")).await.body;
    assert_eq!(got["title"], "Engineer");
    assert!(got.get(ent).is_none(), "{got}");
    assert!(got.get("costCenter").is_none(), "{got}");
    assert_eq!(
        got["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    // A PATCH of the manager: 400 invalidPath.
    let other = s.user("boss").await;
    assert_scim_error!(
        s.patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": format!("{ent}:manager"), "value": {"value": other}}])
        )
        .await,
        400,
        Some("invalidPath")
    );
    // The ServiceProviderConfig is rfc's.
    assert_eq!(
        s.get("/ServiceProviderConfig").await.body["bulk"]["supported"],
        true
    );
}
