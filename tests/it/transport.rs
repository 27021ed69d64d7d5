//! The one client against real servers on port 0: HTTPS through a private CA, HTTP/2
//! (ALPN and prior knowledge), mutual TLS, OAuth tokens that expire mid-run, and the
//! certificate problems that must stop a command before anything is sent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use scimload::server::journal::Journal;
use scimload::server::oauth::Issuer;
use scimload::server::{spawn, tls, ServerConfig, ServerHandle};
use serde_json::Value;

/// A private CA and the certificates the tests need, as PEM files in `dir`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("scimload-pki-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "scimload test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let leaf = |file: &str, names: &[&str], eku: ExtendedKeyUsagePurpose, expired: bool| {
            let mut p =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            p.extended_key_usages = vec![eku];
            if expired {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        };
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        leaf("server", &["localhost", "127.0.0.1"], ServerAuth, false);
        leaf("other-name", &["scim.example.org"], ServerAuth, false);
        leaf("expired", &["localhost", "127.0.0.1"], ServerAuth, true);
        leaf("client", &["importer"], ClientAuth, false);
        Pki { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    fn tls(
        &self,
        leaf: &str,
        client_ca: bool,
        http2: bool,
    ) -> Arc<tokio_rustls::rustls::ServerConfig> {
        let ca = self.path("ca.pem");
        tls::server_config(
            &self.path(&format!("{leaf}.pem")),
            &self.path(&format!("{leaf}.key")),
            client_ca.then_some(ca.as_path()),
            http2,
        )
        .unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn server(cfg: ServerConfig) -> (ServerHandle, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    let h = spawn(
        ServerConfig {
            journal: Some(journal.clone()),
            ..cfg
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    (h, journal)
}

fn scimload(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scimload"));
    c.args(args).env_remove("SCIM_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::task::block_in_place(|| c.output().unwrap())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
}

/// `scimload bench get` against `url` with `extra` flags, results in `report`: its
/// summary, after checking it exited 0.
fn bench_get(url: &str, report: &Path, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let report = report.display().to_string();
    let mut args = vec![
        "bench", "get", "--target", url, "--quiet", "--json", "--report", &report,
    ];
    args.extend_from_slice(extra);
    let o = scimload(&args, env);
    assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", stderr(&o));
    json(&o)
}

/// Every bench scenario against `url` with `extra` connection flags: a short closed run
/// each, what it seeded and created cleaned up, no errors, spoken over `protocol`.
fn every_scenario(url: &str, dir: &Path, extra: &[&str], env: &[(&str, &str)], protocol: &str) {
    for scenario in [
        "create",
        "get",
        "filter",
        "paginate",
        "group-members",
        "update",
        "mixed",
        "replay",
    ] {
        let report = dir.join(format!("bench-{scenario}")).display().to_string();
        let mut args = vec![
            "bench",
            scenario,
            "--target",
            url,
            "--closed",
            "--connections",
            "4",
            "--requests",
            "60",
            "--users",
            "50",
            "--group-size",
            "200",
            "--member-batch",
            "50",
            "--run-id",
            "every",
            "--cleanup",
            "--quiet",
            "--json",
            "--report",
            &report,
        ];
        args.extend_from_slice(extra);
        let o = scimload(&args, env);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{scenario} {extra:?}: {}",
            stderr(&o)
        );
        let s = json(&o);
        assert_eq!(s["errors"].as_u64(), Some(0), "{scenario}: {s}");
        // group-members is as long as its group needs (17 requests here).
        assert!(s["ok"].as_u64().unwrap() >= 15, "{scenario}: {s}");
        assert_eq!(
            s["params"]["connection"]["negotiated"], protocol,
            "{scenario} {extra:?}"
        );
    }
}

/// `scimload cleanup` of what the import with state in `dir` created, with `extra`
/// connection flags; afterwards the server has no users.
fn cleanup(h: &ServerHandle, dir: &Path, extra: &[&str], env: &[(&str, &str)]) {
    let state = dir.join("state.sqlite").display().to_string();
    let mut args = vec!["cleanup", "--state", &state];
    args.extend_from_slice(extra);
    let o = scimload(&args, env);
    assert_eq!(
        o.status.code(),
        Some(0),
        "cleanup {extra:?}: {}",
        stderr(&o)
    );
    assert_eq!(users(h), 0, "cleanup {extra:?}");
}

fn sample() -> String {
    crate::harness::fixture_path("../../datasets/workday-1k.csv")
        .display()
        .to_string()
}

fn import(url: &str, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let state = dir.join("state.sqlite").display().to_string();
    let mut args = vec![
        "import", "--quiet", "--json", "--target", url, "--state", &state,
    ];
    args.extend_from_slice(extra);
    let s = sample();
    args.push(&s);
    scimload(&args, env)
}

fn users(h: &ServerHandle) -> usize {
    h.state
        .store
        .read()
        .table(scimload::server::store::Kind::User)
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_through_a_private_ca_for_import_cleanup_and_every_bench_scenario() {
    let pki = Pki::new("https");
    let (srv, journal) = server(ServerConfig {
        tls: Some(pki.tls("server", false, false)),
        ..ServerConfig::default()
    })
    .await;
    let url = srv.url();
    let ca = pki.path("ca.pem").display().to_string();
    let ok = import(&url, &pki.dir, &["--ca-cert", &ca], &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let s = json(&ok);
    assert_eq!(
        (s["rows"].as_u64(), s["created"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(users(&srv), 1000);
    assert!(journal.entries().iter().all(|r| r.version == "HTTP/1.1"));
    let state = pki.path("state.sqlite").display().to_string();
    let clean = scimload(&["cleanup", "--state", &state, "--ca-cert", &ca], &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert_eq!(users(&srv), 0);

    every_scenario(&url, &pki.dir, &["--ca-cert", &ca], &[], "HTTP/1.1");
    assert_eq!(users(&srv), 0, "the scenarios' --cleanup left users behind");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_alpn_on_tls_and_by_prior_knowledge_on_plain_connections() {
    let pki = Pki::new("h2");
    let ca = pki.path("ca.pem").display().to_string();
    // TLS: ALPN settles on h2 without any flag.
    let (srv, journal) = server(ServerConfig {
        tls: Some(pki.tls("server", false, true)),
        http2: true,
        ..ServerConfig::default()
    })
    .await;
    let o = import(&srv.url(), &pki.dir, &["--ca-cert", &ca], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["created"].as_u64(), Some(1000));
    let seen = journal.entries();
    assert!(!seen.is_empty() && seen.iter().all(|r| r.version == "HTTP/2"));
    let url = srv.url();
    let s = bench_get(
        &url,
        &pki.path("b1"),
        &[
            "--ca-cert",
            &ca,
            "--closed",
            "--connections",
            "2",
            "--streams",
            "8",
            "--requests",
            "400",
            "--users",
            "50",
            "--cleanup",
        ],
        &[],
    );
    assert_eq!(
        (s["errors"].as_u64(), s["ok"].as_u64()),
        (Some(0), Some(400))
    );
    assert_eq!(s["params"]["connection"]["negotiated"], "HTTP/2");
    assert_eq!(s["params"]["connection"]["streams"], 8);
    // --http1 forces HTTP/1.1 on the same server.
    let before = journal.entries().len();
    let o = import(&url, &pki.dir, &["--ca-cert", &ca, "--http1"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = &journal.entries()[before..];
    assert!(!after.is_empty() && after.iter().all(|r| r.version == "HTTP/1.1"));
    cleanup(&srv, &pki.dir, &["--ca-cert", &ca], &[]);
    every_scenario(
        &url,
        &pki.path("alpn"),
        &["--ca-cert", &ca, "--streams", "4"],
        &[],
        "HTTP/2",
    );
    srv.shutdown().await;

    // Plain HTTP: h2c by prior knowledge with --http2; HTTP/1.1 otherwise.
    let (srv, journal) = server(ServerConfig {
        http2: true,
        ..ServerConfig::default()
    })
    .await;
    let url = srv.url();
    let dir2 = pki.path("h2c");
    std::fs::create_dir_all(&dir2).unwrap();
    let o = import(&url, &dir2, &["--http2"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["created"].as_u64(), Some(1000));
    let seen = journal.entries();
    assert!(!seen.is_empty() && seen.iter().all(|r| r.version == "HTTP/2"));
    let s = bench_get(
        &url,
        &pki.path("b2"),
        &[
            "--http2",
            "--closed",
            "--connections",
            "2",
            "--streams",
            "8",
            "--requests",
            "400",
            "--users",
            "50",
            "--cleanup",
        ],
        &[],
    );
    assert_eq!(
        (
            s["errors"].as_u64(),
            s["params"]["connection"]["negotiated"].as_str()
        ),
        (Some(0), Some("HTTP/2"))
    );
    cleanup(&srv, &dir2, &["--http2"], &[]);
    every_scenario(&url, &dir2, &["--http2", "--streams", "4"], &[], "HTTP/2");
    srv.shutdown().await;

    // Streams need HTTP/2: an HTTP/1.1-only server is refused with the fix.
    let (srv, _) = server(ServerConfig::default()).await;
    let url = srv.url();
    let o = scimload(
        &[
            "bench",
            "get",
            "--target",
            &url,
            "--closed",
            "--streams",
            "4",
            "--requests",
            "10",
            "--users",
            "5",
            "--quiet",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs HTTP/2"), "{}", stderr(&o));
    assert_eq!(users(&srv), 0, "seeded before refusing --streams");
    // Prior knowledge against it: refused at discovery, quickly, with the fix; not a
    // run of rows that each fail on a closed connection.
    let dir3 = pki.path("h1only");
    std::fs::create_dir_all(&dir3).unwrap();
    let t0 = std::time::Instant::now();
    let o = import(&url, &dir3, &["--http2"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("drop --http2"), "{}", stderr(&o));
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(users(&srv), 0, "the import created users");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new("mtls");
    let (srv, journal) = server(ServerConfig {
        tls: Some(pki.tls("server", true, false)),
        ..ServerConfig::default()
    })
    .await;
    let url = srv.url();
    let ca = pki.path("ca.pem").display().to_string();
    let refused = import(&url, &pki.dir, &["--ca-cert", &ca], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--client-cert"),
        "{}",
        stderr(&refused)
    );
    assert!(journal.entries().is_empty());
    let (cert, key) = (
        pki.path("client.pem").display().to_string(),
        pki.path("client.key").display().to_string(),
    );
    let ok = import(
        &url,
        &pki.dir,
        &[
            "--ca-cert",
            &ca,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ],
        &[],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(json(&ok)["created"].as_u64(), Some(1000));
    let s = bench_get(
        &url,
        &pki.path("b"),
        &[
            "--ca-cert",
            &ca,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
            "--closed",
            "--requests",
            "100",
            "--users",
            "20",
            "--cleanup",
        ],
        &[],
    );
    assert_eq!(
        s["params"]["connection"]["tls"],
        "verified, client certificate"
    );
    let mtls = [
        "--ca-cert",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    cleanup(&srv, &pki.dir, &mtls, &[]);
    every_scenario(&url, &pki.path("every"), &mtls, &[], "HTTP/1.1");
    srv.shutdown().await;
}

/// Every file under `dir`, read as bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_tokens_that_live_two_seconds_are_renewed_through_a_long_import() {
    const SECRET: &str = "s3cr3t-client-value-7f3a";
    let dir = std::env::temp_dir().join(format!("scimload-oauth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let issuer = Issuer::new("importer".into(), SECRET.into(), Duration::from_secs(2));
    let (srv, _) = server(ServerConfig {
        oauth: Some(issuer.clone()),
        ..ServerConfig::default()
    })
    .await;
    let url = srv.url();
    let token_url = format!("{url}/oauth2/token");
    let env = [
        ("SCIM_OAUTH_CLIENT_ID", "importer"),
        ("SCIM_OAUTH_CLIENT_SECRET", SECRET),
    ];
    // A wrong secret: refused before any row, with the fix and without the secret.
    let wrong = import(
        &url,
        &dir,
        &["--oauth-token-url", &token_url],
        &[
            ("SCIM_OAUTH_CLIENT_ID", "importer"),
            ("SCIM_OAUTH_CLIENT_SECRET", "nope-nope"),
        ],
    );
    assert_eq!(wrong.status.code(), Some(2));
    let e = stderr(&wrong);
    assert!(
        e.contains("invalid_client") && e.contains("SCIM_OAUTH_CLIENT_SECRET"),
        "{e}"
    );
    assert!(!e.contains("nope-nope"), "{e}");
    assert_eq!(users(&srv), 0);

    // 1,000 users at 150/s: about 7 s, so the token expires three times or more. Basic
    // client authentication (the default) here, post for the bench below.
    let report = dir.join("report").display().to_string();
    let t0 = std::time::Instant::now();
    let o = import(
        &url,
        &dir,
        &[
            "--oauth-token-url",
            &token_url,
            "--rate",
            "150",
            "--report",
            &report,
        ],
        &env,
    );
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        took >= Duration::from_secs(6),
        "the import took only {took:?}"
    );
    let s = json(&o);
    assert_eq!(
        (s["rows"].as_u64(), s["created"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(users(&srv), 1000);
    let fetched = issuer.issued();
    assert!(
        fetched >= 3,
        "only {fetched} tokens were fetched in {took:?}"
    );
    // Renewed ahead of expiry: the server never saw an expired token, and no request
    // failed for one.
    assert_eq!(issuer.refused_expired(), 0);
    assert!(!s.to_string().contains("\"401"), "{s}");
    // The secret and the tokens appear nowhere.
    let out = [o.stdout.clone(), o.stderr.clone()].concat();
    assert!(!String::from_utf8_lossy(&out).contains(SECRET));
    assert!(!String::from_utf8_lossy(&out).contains("sl."));
    for (p, bytes) in files_under(&dir) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(SECRET), "{} holds the secret", p.display());
    }

    // The bench shares the same credentials: 3 s at 200/s across a renewal, post auth.
    let before = issuer.issued();
    let s = bench_get(
        &url,
        &dir.join("bench"),
        &[
            "--oauth-token-url",
            &token_url,
            "--oauth-auth",
            "post",
            "--rate",
            "200",
            "--duration",
            "3s",
            "--users",
            "20",
            "--cleanup",
        ],
        &env,
    );
    assert_eq!(s["errors"].as_u64(), Some(0), "{s}");
    assert_eq!(
        s["params"]["connection"]["credentials"],
        "oauth2 client credentials"
    );
    assert!(issuer.issued() >= before + 2);
    assert_eq!(issuer.refused_expired(), 0);
    let oauth = ["--oauth-token-url", token_url.as_str()];
    cleanup(&srv, &dir, &oauth, &env);
    every_scenario(&url, &dir.join("every"), &oauth, &env, "HTTP/1.1");
    assert_eq!(issuer.refused_expired(), 0);
    srv.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_renews_the_token_once_and_sends_again_then_is_final() {
    use scimload::client::auth::{ClientAuthMethod, Credentials, OAuthClient, Secret};
    use scimload::client::{ClientOptions, ScimClient};
    let issuer = Issuer::new("c".into(), "s".into(), Duration::from_secs(3600));
    let (srv, _) = server(ServerConfig {
        oauth: Some(issuer.clone()),
        ..ServerConfig::default()
    })
    .await;
    let oauth = |secret: &str| ClientOptions {
        credentials: Credentials::OAuth(OAuthClient {
            token_url: format!("{}/oauth2/token", srv.url()),
            client_id: "c".into(),
            client_secret: Secret::new(secret),
            scope: None,
            audience: None,
            resource: None,
            method: ClientAuthMethod::Post,
        }),
        ..ClientOptions::default()
    };
    let c = ScimClient::connect(&srv.url(), &oauth("s"), 4).unwrap();
    let get = || c.send(hyper::Method::GET, "/Users?count=0", None, None);
    assert_eq!(get().await.unwrap().status, 200);
    assert_eq!((issuer.issued(), c.auth().fetches()), (1, 1));
    // Revoked behind the client's back: one 401, one renewal, the same request again.
    issuer.revoke_all();
    assert_eq!(get().await.unwrap().status, 200);
    assert_eq!((issuer.issued(), c.auth().fetches()), (2, 2));
    // A static token the server does not know: the 401 is final, nothing is renewed.
    let s = ScimClient::new(
        &srv.url(),
        Some(&Secret::new("wrong")),
        Duration::from_secs(5),
        1,
    )
    .unwrap();
    let r = s
        .send(hyper::Method::GET, "/Users?count=0", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    // A refused secret is an error that names the fix, not a 401 to retry.
    let bad = ScimClient::connect(&srv.url(), &oauth("nope"), 1).unwrap();
    let e = bad
        .send(hyper::Method::GET, "/Users", None, None)
        .await
        .unwrap_err();
    assert!(
        e.is_fatal() && e.to_string().contains("invalid_client"),
        "{e}"
    );
    assert!(!e.to_string().contains("nope"));
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_command_and_extra_headers_reach_the_target() {
    let dir = std::env::temp_dir().join(format!("scimload-tokcmd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (srv, journal) = server(ServerConfig {
        token: Some("from-a-command".into()),
        ..ServerConfig::default()
    })
    .await;
    let url = srv.url();
    let o = import(
        &url,
        &dir,
        &[
            "--token-command",
            "printf 'from-a-command\\n'",
            "--header",
            "X-Tenant: acme",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["created"].as_u64(), Some(1000));
    // The token came from the command (the server takes no other), and every request
    // carried the extra header and the default User-Agent.
    let seen = journal.entries();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(
            r.header("x-tenant"),
            Some("acme"),
            "{} {}",
            r.method,
            r.target
        );
        assert!(r
            .header("user-agent")
            .is_some_and(|u| u.starts_with("scimload/")));
        if !r.target.starts_with("/ServiceProviderConfig") {
            assert_eq!(r.header("authorization"), Some("***"));
        }
    }
    // A User-Agent of one's own replaces the default.
    journal.clear();
    let o = import(
        &url,
        &dir,
        &[
            "--token-command",
            "printf 'from-a-command\\n'",
            "--header",
            "User-Agent: acme-sync/2",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(journal
        .entries()
        .iter()
        .all(|r| r.header("user-agent") == Some("acme-sync/2")));
    // A command that fails stops the run with what it said.
    let o = import(
        &url,
        &dir,
        &["--token-command", "echo 'not logged in' >&2; exit 3"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not logged in"), "{}", stderr(&o));
    let o = import(&url, &dir, &["--header", "no colon here"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Name: value"), "{}", stderr(&o));
    srv.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_problems_stop_import_and_bench_before_anything_is_sent() {
    let pki = Pki::new("badcert");
    let ca = pki.path("ca.pem").display().to_string();
    // (server certificate, whether the client trusts the CA, what the message must name)
    for (leaf, trust, fix) in [
        ("server", false, "--ca-cert"),
        ("other-name", true, "host name '127.0.0.1'"),
        ("expired", true, "expired"),
    ] {
        let (srv, journal) = server(ServerConfig {
            tls: Some(pki.tls(leaf, false, false)),
            ..ServerConfig::default()
        })
        .await;
        let url = srv.url();
        let extra: Vec<&str> = if trust {
            vec!["--ca-cert", &ca]
        } else {
            vec![]
        };
        let o = import(&url, &pki.dir, &extra, &[]);
        assert_eq!(o.status.code(), Some(2), "{leaf}: {}", stderr(&o));
        assert!(stderr(&o).contains(fix), "{leaf}: {}", stderr(&o));
        let mut args = vec![
            "bench",
            "get",
            "--target",
            &url,
            "--requests",
            "5",
            "--quiet",
        ];
        args.extend_from_slice(&extra);
        let o = scimload(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{leaf}: {}", stderr(&o));
        assert!(stderr(&o).contains(fix), "{leaf}: {}", stderr(&o));
        assert!(
            journal.entries().is_empty(),
            "{leaf}: requests reached the server"
        );
        assert_eq!(users(&srv), 0);
        // --insecure gets through, warns, and says so in the results.
        let report = pki.path(&format!("insecure-{leaf}")).display().to_string();
        let o = scimload(
            &[
                "bench",
                "get",
                "--target",
                &url,
                "--insecure",
                "--closed",
                "--requests",
                "20",
                "--users",
                "5",
                "--quiet",
                "--json",
                "--report",
                &report,
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(0), "{leaf}: {}", stderr(&o));
        assert!(stderr(&o).contains("WARNING: --insecure"));
        assert_eq!(json(&o)["params"]["connection"]["insecure"], true);
        if leaf == "expired" {
            let dir = pki.path("insecure-import");
            std::fs::create_dir_all(&dir).unwrap();
            let o = import(&url, &dir, &["--insecure"], &[]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            assert!(stderr(&o).contains("WARNING: --insecure"));
            let s = json(&o);
            assert_eq!(s["connection"]["insecure"], true);
            assert_eq!(s["connection"]["tls"], "NOT VERIFIED (--insecure)");
        }
        srv.shutdown().await;
    }
}
