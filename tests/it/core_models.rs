//! RFC 7643 examples survive a round trip through the typed models unchanged.

use crate::harness::fixture_json;
use scimload::scim::error::ErrorBody;
use scimload::scim::model::*;
use serde::{de::DeserializeOwned, Serialize};

fn roundtrip<T: DeserializeOwned + Serialize>(rel: &str) {
    let original = fixture_json(rel);
    let typed: T =
        serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, original, "{rel} changed in a round trip");
}

#[test]
fn rfc7643_examples_roundtrip_through_models() {
    roundtrip::<User>("rfc7643/user-minimal.json");
    roundtrip::<User>("rfc7643/user-full.json");
    roundtrip::<User>("rfc7643/user-enterprise.json");
    roundtrip::<Group>("rfc7643/group.json");
    roundtrip::<ServiceProviderConfig>("rfc7643/service-provider-config.json");
    roundtrip::<Vec<ResourceType>>("rfc7643/resource-types.json");
    roundtrip::<PatchRequest>("rfc7643/patch-request.json");
    roundtrip::<BulkRequest>("rfc7643/bulk-request.json");
    roundtrip::<ErrorBody>("rfc7643/error.json");
    roundtrip::<ListResponse<User>>("rfc7643/list-response.json");
}

#[test]
fn typed_user_reads_the_enterprise_extension() {
    let u: User = serde_json::from_value(fixture_json("rfc7643/user-enterprise.json")).unwrap();
    let e = u.enterprise.unwrap();
    assert_eq!(e.employee_number.as_deref(), Some("701984"));
    assert_eq!(
        e.manager.unwrap().display_name.as_deref(),
        Some("John Smith")
    );
}
