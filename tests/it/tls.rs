//! HTTPS end to end: `scimload serve` with a certificate, an import that trusts it through
//! --ca-cert, and the clear refusal when the certificate is not trusted.

use std::path::PathBuf;
use std::process::Command;

use scimload::server::{spawn, tls, ServerConfig};

fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_over_https_trusts_the_given_ca_and_refuses_an_unknown_one() {
    let dir = std::env::temp_dir().join(format!("scimload-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = certificate(&dir);
    let srv = spawn(
        ServerConfig {
            tls: Some(tls::server_config(&cert, &key, None, false).unwrap()),
            ..ServerConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = srv.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = std::fs::read(&cert).unwrap();
    let opts = scimload::client::ClientOptions {
        tls: scimload::client::tls::TlsOptions {
            ca: Some(("cert.pem".into(), pem)),
            ..Default::default()
        },
        ..Default::default()
    };
    let client = scimload::client::ScimClient::connect(&url, &opts, 2).unwrap();
    let users = || async {
        let r = client
            .send(reqwest::Method::GET, "/Users?count=0", None, None)
            .await
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["totalResults"]
            .as_u64()
            .unwrap()
    };
    let sample = crate::harness::fixture_path("../../datasets/workday-1k.csv");
    let import = |extra: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_scimload"))
            .args(["import", "--quiet", "--json", "--target", &url, "--state"])
            .arg(dir.join("state.sqlite"))
            .args(extra)
            .arg(&sample)
            .output()
            .unwrap()
    };
    // Not trusted: a fatal error (exit 2) that names the fix, and nothing sent.
    let refused = tokio::task::block_in_place(|| import(&[]));
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--ca-cert") && err.contains("certificate"),
        "{err}"
    );
    assert_eq!(users().await, 0);
    // Trusted through --ca-cert: every row provisioned over TLS.
    let ok = tokio::task::block_in_place(|| import(&["--ca-cert".as_ref(), cert.as_os_str()]));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        (s["rows"].as_u64(), s["created"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(users().await, 1000);
    // And cleanup over the same channel.
    let clean = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_scimload"))
            .args(["cleanup", "--state"])
            .arg(dir.join("state.sqlite"))
            .arg("--ca-cert")
            .arg(&cert)
            .output()
            .unwrap()
    });
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert_eq!(users().await, 0);
    srv.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_a_key_that_is_not_one() {
    let dir = std::env::temp_dir().join(format!("scimload-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, _) = certificate(&dir);
    let e = tls::server_config(&cert, &cert, None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("private key") && e.contains("PEM"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
