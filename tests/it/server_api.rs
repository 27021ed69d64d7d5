//! Every endpoint, status code and error shape of `scimload serve`, over a real socket.

use std::time::Duration;

use crate::assert_scim_error;
use crate::harness::Srv;
use scimload::server::ServerConfig;
use serde_json::{json, Value};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

#[tokio::test]
async fn create_user_answers_201_with_location_etag_and_media_type() {
    let s = Srv::default().await;
    let r = s
        .post("/Users", json!({"schemas": [CORE_USER], "userName": "bjensen", "externalId": "e1", "password": "secret", "meta": {"resourceType": "User"}, "roles": []}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/scim+json");
    let id = r.body["id"].as_str().unwrap();
    let loc = r.headers["location"].to_str().unwrap();
    assert_eq!(loc, format!("{}/Users/{id}", s.base));
    assert_eq!(r.body["meta"]["location"], loc);
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(
        r.headers["etag"].to_str().unwrap(),
        r.body["meta"]["version"].as_str().unwrap()
    );
    assert!(
        r.body.get("password").is_none(),
        "password is returned: never"
    );
    assert_eq!(r.body["schemas"], json!([CORE_USER]));
}

#[tokio::test]
async fn uniqueness_is_409_for_username_any_case_and_for_external_id() {
    let s = Srv::default().await;
    s.post("/Users", json!({"userName": "BJensen", "externalId": "x1"}))
        .await;
    let r = s.post("/Users", json!({"userName": "bjensen"})).await;
    assert_scim_error!(r, 409, Some("uniqueness"));
    let r = s
        .post("/Users", json!({"userName": "other", "externalId": "x1"}))
        .await;
    assert_scim_error!(r, 409, Some("uniqueness"));
    // externalId is case-exact: a different case is a different value.
    assert_eq!(
        s.post("/Users", json!({"userName": "third", "externalId": "X1"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn bad_bodies_get_400_with_what_to_fix() {
    let s = Srv::default().await;
    assert_scim_error!(
        s.post("/Users", json!({"displayName": "no user name"}))
            .await,
        400,
        Some("invalidValue")
    );
    assert_scim_error!(
        s.post("/Users", json!({"userName": "a", "active": "perhaps"}))
            .await,
        400,
        Some("invalidValue")
    );
    assert_scim_error!(
        s.post("/Users", json!(["not", "an", "object"])).await,
        400,
        Some("invalidSyntax")
    );
    let r = s
        .http
        .post(format!("{}/Users", s.base))
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(b["scimType"], "invalidSyntax");
    assert_scim_error!(
        s.post("/Groups", json!({"members": []})).await,
        400,
        Some("invalidValue")
    );
}

#[tokio::test]
async fn get_by_id_honours_attributes_and_excluded_attributes() {
    let s = Srv::default().await;
    let id = s.user("alice").await;
    let r = s
        .get(&format!("/Users/{id}?attributes=userName,name.givenName"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["userName"], "alice");
    assert_eq!(r.body["name"], json!({"givenName": "G"}));
    assert_eq!(r.body["id"], id, "id is returned always");
    assert!(r.body.get("displayName").is_none() && r.body.get("meta").is_none());
    let r = s
        .get(&format!(
            "/Users/{id}?excludedAttributes=name,displayName,id"
        ))
        .await;
    assert!(r.body.get("name").is_none() && r.body.get("displayName").is_none());
    assert_eq!(r.body["id"], id, "returned:always cannot be excluded");
    assert_scim_error!(s.get("/Users/nope").await, 404, None);
}

#[tokio::test]
async fn list_filters_by_index_and_by_scan_and_rejects_bad_filters() {
    let s = Srv::default().await;
    for n in ["ann", "bob", "bea", "carl"] {
        s.user(n).await;
    }
    let r = s.get("/Users?filter=userName%20eq%20%22BOB%22").await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "bob");
    let r = s
        .get("/Users?filter=userName%20sw%20%22b%22%20or%20userName%20ew%20%22rl%22")
        .await;
    assert_eq!(r.body["totalResults"], 3);
    // Missing value: 200 with an empty list (Entra quarantines a 404 here).
    let r = s.get("/Users?filter=userName%20eq%20%22nobody%22").await;
    assert_eq!((r.status, r.body["totalResults"].clone()), (200, json!(0)));
    assert_eq!(r.body["Resources"], json!([]));
    let r = s.get("/Users?filter=userName%20ex%20%22x%22").await;
    assert_scim_error!(r, 400, Some("invalidFilter"));
    assert!(r.body["detail"].as_str().unwrap().contains("column 10"));
    assert_scim_error!(s.get("/Users?count=ten").await, 400, Some("invalidValue"));
}

#[tokio::test]
async fn index_paging_is_one_based_and_stable() {
    let s = Srv::default().await;
    for i in 0..25 {
        s.user(&format!("u{i:02}")).await;
    }
    let r = s.get("/Users?startIndex=11&count=10").await;
    assert_eq!(r.body["totalResults"], 25);
    assert_eq!(r.body["startIndex"], 11);
    assert_eq!(r.body["itemsPerPage"], 10);
    assert_eq!(r.body["Resources"][0]["userName"], "u10");
    let r = s.get("/Users?startIndex=21&count=10").await;
    assert_eq!(
        r.body["itemsPerPage"], 5,
        "itemsPerPage counts what is returned"
    );
    let r = s.get("/Users?startIndex=0&count=0").await;
    assert_eq!(
        (r.body["totalResults"].clone(), r.body["Resources"].clone()),
        (json!(25), json!([]))
    );
    let r = s.get("/Users?startIndex=100").await;
    assert_eq!(r.body["itemsPerPage"], 0);
    // Deleting shifts later pages: index paging counts live resources.
    let first = s.get("/Users?count=1").await.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.send("DELETE", &format!("/Users/{first}"), None, &[])
            .await
            .status,
        204
    );
    assert_eq!(
        s.get("/Users?startIndex=1&count=1").await.body["Resources"][0]["userName"],
        "u01"
    );
}

#[tokio::test]
async fn cursor_paging_walks_everything_once() {
    let s = Srv::default().await;
    for i in 0..23 {
        s.user(&format!("c{i:02}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let r = s.get(&format!("/Users?count=5&cursor={cursor}")).await;
        assert_eq!(r.body["totalResults"], 23);
        assert!(r.body.get("startIndex").is_none());
        for u in r.body["Resources"].as_array().unwrap() {
            seen.push(u["userName"].as_str().unwrap().to_string());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let want: Vec<String> = (0..23).map(|i| format!("c{i:02}")).collect();
    assert_eq!(seen, want);
    assert_scim_error!(
        s.get("/Users?cursor=garbage").await,
        400,
        Some("invalidCursor")
    );
    // With a filter too.
    let r = s
        .get("/Users?filter=userName%20sw%20%22c1%22&count=4&cursor=")
        .await;
    assert_eq!(
        (
            r.body["totalResults"].clone(),
            r.body["itemsPerPage"].clone()
        ),
        (json!(10), json!(4))
    );
    assert!(r.body["nextCursor"].is_string());
}

#[tokio::test]
async fn sort_by_orders_case_insensitively_both_ways() {
    let s = Srv::default().await;
    for n in ["bravo", "Alpha", "charlie"] {
        s.user(n).await;
    }
    let names = |r: &Value| -> Vec<String> {
        r["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let r = s.get("/Users?sortBy=userName").await;
    assert_eq!(names(&r.body), ["Alpha", "bravo", "charlie"]);
    let r = s
        .get("/Users?sortBy=userName&sortOrder=descending&count=2")
        .await;
    assert_eq!(names(&r.body), ["charlie", "bravo"]);
}

#[tokio::test]
async fn search_endpoints_take_a_search_request() {
    let s = Srv::default().await;
    s.user("sam").await;
    s.group("sam-team", &[]).await;
    let r = s
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"sam\"", "attributes": ["userName"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("meta").is_none());
    let r = s
        .post(
            "/.search",
            json!({"filter": "displayName sw \"sam\"", "count": 10}),
        )
        .await;
    assert_eq!(
        r.body["totalResults"], 2,
        "root search spans users and groups: {}",
        r.body
    );
}

#[tokio::test]
async fn put_replaces_and_etags_guard_concurrent_writers() {
    let s = Srv::default().await;
    let id = s.user("pat").await;
    let r = s.get(&format!("/Users/{id}")).await;
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let r = s
        .send(
            "GET",
            &format!("/Users/{id}"),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, 304);
    let put = json!({"schemas": [CORE_USER], "userName": "pat", "title": "Boss"});
    let r = s
        .send(
            "PUT",
            &format!("/Users/{id}"),
            Some(put.clone()),
            &[("if-match", "W/\"999999\"")],
        )
        .await;
    assert_scim_error!(r, 412, None);
    let r = s
        .send(
            "PUT",
            &format!("/Users/{id}"),
            Some(put),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["title"], "Boss");
    assert!(
        r.body.get("name").is_none(),
        "PUT replaces: attributes not sent are cleared"
    );
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let other = s.user("other").await;
    let r = s
        .send(
            "PUT",
            &format!("/Users/{other}"),
            Some(json!({"userName": "PAT"})),
            &[],
        )
        .await;
    assert_scim_error!(r, 409, Some("uniqueness"));
    assert_scim_error!(
        s.send("PUT", "/Users/missing", Some(json!({"userName": "x"})), &[])
            .await,
        404,
        None
    );
}

#[tokio::test]
async fn patch_is_atomic_and_answers_by_resource_type() {
    let s = Srv::default().await;
    let id = s.user("pam").await;
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "T"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["title"], "T");
    // The second operation fails, so the first must not stick.
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "changed"}, {"op": "replace", "path": "id", "value": "x"}]),
        )
        .await;
    assert_scim_error!(r, 400, Some("mutability"));
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["title"], "T");
    // Removing a required attribute is refused.
    let r = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "remove", "path": "userName"}]),
        )
        .await;
    assert_scim_error!(r, 400, Some("invalidValue"));
    let g = s.group("g", &[]).await;
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    assert_eq!(
        r.status, 204,
        "a group PATCH does not echo the members back"
    );
    let r = s
        .patch(
            &format!("/Groups/{g}?attributes=members"),
            json!([{"op": "replace", "path": "displayName", "value": "h"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["members"][0]["value"], id);
    let r = s
        .patch(&format!("/Users/{id}"), json!([{"op": "remove"}]))
        .await;
    assert_scim_error!(r, 400, Some("noTarget"));
    let r = s
        .send(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"no": "operations"})),
            &[],
        )
        .await;
    assert_scim_error!(r, 400, Some("invalidSyntax"));
}

#[tokio::test]
async fn memberships_follow_users_and_groups() {
    let s = Srv::default().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s.group("team", &[&a, &b]).await;
    let r = s.get(&format!("/Groups/{g}")).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.body["members"][0]["$ref"],
        format!("{}/Users/{a}", s.base)
    );
    assert_eq!(r.body["members"][0]["type"], "User");
    let r = s.get(&format!("/Users/{a}")).await;
    assert_eq!(r.body["groups"][0]["value"], g);
    assert_eq!(r.body["groups"][0]["display"], "team");
    let r = s
        .get(&format!(
            "/Groups?filter=members%5Bvalue%20eq%20%22{a}%22%5D&excludedAttributes=members"
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    // Deleting a user removes its memberships.
    assert_eq!(
        s.send("DELETE", &format!("/Users/{a}"), None, &[])
            .await
            .status,
        204
    );
    let r = s.get(&format!("/Groups/{g}")).await;
    assert_eq!(
        r.body["members"],
        json!([{"value": b, "type": "User", "display": "b", "$ref": format!("{}/Users/{b}", s.base)}])
    );
    assert_scim_error!(s.get(&format!("/Users/{a}")).await, 404, None);
    // Members must exist.
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}]),
        )
        .await;
    assert_scim_error!(r, 400, Some("invalidValue"));
    // Nested groups are members too, and deleting a group frees its own memberships.
    let inner = s.group("inner", &[&b]).await;
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "add", "path": "members", "value": [{"value": inner}]}]),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        s.get(&format!("/Groups/{g}")).await.body["members"][1]["type"],
        "Group"
    );
    assert_eq!(
        s.send("DELETE", &format!("/Groups/{inner}"), None, &[])
            .await
            .status,
        204
    );
    assert_eq!(
        s.get(&format!("/Groups/{g}")).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get(&format!("/Users/{b}")).await.body["groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn concurrent_member_adds_lose_nothing() {
    let s = Srv::default().await;
    let g = s.group("big", &[]).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(s.user(&format!("m{i}")).await);
    }
    // One member per PATCH, all at once: Entra ID's pattern, which loses members on
    // servers that read-modify-write.
    let mut set = tokio::task::JoinSet::new();
    for id in ids {
        let (http, url) = (s.http.clone(), format!("{}/Groups/{g}", s.base));
        set.spawn(async move {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]});
            http.patch(url).body(body.to_string()).send().await.unwrap().status().as_u16()
        });
    }
    while let Some(st) = set.join_next().await {
        assert_eq!(st.unwrap(), 204);
    }
    let r = s.get(&format!("/Groups/{g}")).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 60);
}

#[tokio::test]
async fn bulk_resolves_bulk_ids_including_forward_references() {
    let s = Srv::default().await;
    let r = s
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "alice"}},
                {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"userName": "bob"}},
                {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"Operations": [{"op": "add", "path": "title", "value": "Guide"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "ALICE"}},
                {"method": "DELETE", "path": "/Users/does-not-exist"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let ops = r.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "201", "200", "409", "404"]);
    assert_eq!(ops[4]["response"]["scimType"], "uniqueness");
    let gid = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let g = s.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g.body["members"].as_array().unwrap().len(), 2);
    let alice = s.get("/Users?filter=userName%20eq%20%22alice%22").await;
    assert_eq!(alice.body["Resources"][0]["title"], "Guide");
}

#[tokio::test]
async fn bulk_fail_on_errors_and_limits() {
    let cfg = ServerConfig {
        bulk_max_operations: 3,
        bulk_max_payload: 2000,
        ..ServerConfig::default()
    };
    let s = Srv::start(cfg).await;
    let post =
        |n: &str| json!({"method": "POST", "path": "/Users", "bulkId": n, "data": {"userName": n}});
    let r = s
        .post(
            "/Bulk",
            json!({"Operations": [post("a"), post("b"), post("c"), post("d")]}),
        )
        .await;
    assert_scim_error!(r, 413, Some("tooMany"));
    let big = "x".repeat(3000);
    let r = s.post("/Bulk", json!({"Operations": [{"method": "POST", "path": "/Users", "bulkId": "q", "data": {"userName": big}}]})).await;
    assert_scim_error!(r, 413, Some("tooMany"));
    let r = s
        .post(
            "/Bulk",
            json!({"failOnErrors": 1, "Operations": [
                {"method": "POST", "path": "/Users", "data": {"userName": "no-bulk-id"}},
                post("e"), post("f")]}),
        )
        .await;
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(
        ops.len(),
        1,
        "processing stops after failOnErrors errors: {}",
        r.body
    );
    assert_eq!(ops[0]["status"], "400");
    let r = s.post("/Bulk", json!({"Operations": [{"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "g", "members": [{"value": "bulkId:nobody"}]}}]})).await;
    assert_eq!(r.body["Operations"][0]["status"], "409");
}

#[tokio::test]
async fn discovery_reflects_the_configuration() {
    let s = Srv::default().await;
    let r = s.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576})
    );
    assert_eq!(r.body["etag"]["supported"], true);
    assert_eq!(r.body["pagination"]["cursor"], true);
    assert_eq!(r.body["pagination"]["index"], true);
    let r = s.get("/Schemas").await;
    assert_eq!(r.body["totalResults"], 3);
    let r = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    let user_name = r.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(
        (
            user_name["required"].clone(),
            user_name["uniqueness"].clone()
        ),
        (json!(true), json!("server"))
    );
    let r = s.get("/ResourceTypes").await;
    assert_eq!(
        r.body["Resources"][0]["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    assert_eq!(
        s.get("/ResourceTypes/Group").await.body["endpoint"],
        "/Groups"
    );
    assert_scim_error!(s.get("/Schemas/urn:nope").await, 404, None);
}

#[tokio::test]
async fn bearer_token_is_required_and_errors_are_scim() {
    let s = Srv::start(ServerConfig {
        token: Some("s3cret".into()),
        ..ServerConfig::default()
    })
    .await;
    let r = s.get("/Users").await;
    assert_scim_error!(r, 401, None);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"scimload\"");
    assert_eq!(
        s.send("GET", "/Users", None, &[("authorization", "Bearer wrong")])
            .await
            .status,
        401
    );
    assert_eq!(
        s.send("GET", "/Users", None, &[("authorization", "Bearer s3cret")])
            .await
            .status,
        200
    );
    assert_eq!(
        s.get("/ServiceProviderConfig").await.status,
        200,
        "discovery stays open"
    );
}

#[tokio::test]
async fn oversized_bodies_unknown_paths_and_methods() {
    let s = Srv::start(ServerConfig {
        max_body: 1000,
        ..ServerConfig::default()
    })
    .await;
    let r = s
        .post("/Users", json!({"userName": "x".repeat(2000)}))
        .await;
    assert_scim_error!(r, 413, None);
    assert_scim_error!(s.get("/Nope").await, 404, None);
    assert_scim_error!(s.send("DELETE", "/Users", None, &[]).await, 405, None);
    assert_scim_error!(
        s.send("PUT", "/ServiceProviderConfig", Some(json!({})), &[])
            .await,
        405,
        None
    );
}

#[tokio::test]
async fn async_creation_answers_202_and_the_user_appears_later() {
    let s = Srv::start(ServerConfig {
        async_create: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    })
    .await;
    let r = s.post("/Users", json!({"userName": "invitee"})).await;
    assert_eq!(r.status, 202);
    assert!(r.body.is_null() && r.headers.get("location").is_none());
    assert_eq!(
        s.get("/Users?filter=userName%20eq%20%22invitee%22")
            .await
            .body["totalResults"],
        0
    );
    assert_eq!(s.get("/Users").await.body["totalResults"], 0);
    // The userName is taken even while pending.
    assert_scim_error!(
        s.post("/Users", json!({"userName": "invitee"})).await,
        409,
        Some("uniqueness")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = s.get("/Users?filter=userName%20eq%20%22invitee%22").await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(s.get("/Users").await.body["totalResults"], 1);
}

#[tokio::test]
async fn app_router_works_without_a_socket() {
    use tower::ServiceExt;
    let app = scimload::server::app(scimload::server::App::new(ServerConfig::default()));
    let req = axum::http::Request::builder()
        .uri("/ServiceProviderConfig")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
}
