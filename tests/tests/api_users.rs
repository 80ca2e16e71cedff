//! People on `ioc-api` over real HTTP, on both storage back-ends (`_sqlite` / `_postgres`
//! pairs, like `api_http`): users made with `Store::create_user` (what `ioc-api users create`
//! does; the CLI itself is run at the end), signing in with a password, the session cookie
//! (flags, expiry, logout), login throttling, CSRF protection of cookie-authenticated
//! changes, roles (a viewer may not acknowledge) and site scopes (a user or key limited to
//! site A never sees site B: 404 for its incident, snapshot and camera; absent from every
//! list, count, CSV and the live stream), and the audit trail naming the user.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use ioc_api::store::{Role, Store};
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use reqwest::{RequestBuilder, StatusCode};
use roadsight_tests::ioc::{Backend, InProcessIoc};
use roadsight_tests::on_both_backends;
use serde_json::{json, Value};
use uuid::Uuid;

const CSRF: (&str, &str) = ("x-requested-with", "roadsight");
const PASSWORD: &str = "correct horse battery staple";

/// A running `ioc-api` (in-process, `--no-mqtt`) with an unscoped admin key, and its store.
struct Ioc {
    server: InProcessIoc,
    base: String,
    http: reqwest::Client,
    store: Store,
    admin: String,
    database_url: String,
}

/// A signed-in browser: the cookie it got.
#[derive(Debug, Clone)]
struct Browser {
    /// `name=value`, as a browser sends it back.
    cookie: String,
    /// The `Set-Cookie` header of the login response.
    set_cookie: String,
    token: String,
}

impl Ioc {
    async fn start(backend: Backend, test: &str, flags: &[&str]) -> Ioc {
        let server = InProcessIoc::start(backend, &format!("users_{test}"), flags).await;
        let store = server.store.clone();
        let admin = store.create_key("admin-key", Role::Admin, "test-setup").await.expect("admin key").1;
        let mut ioc = Ioc {
            base: server.base(),
            database_url: server.database_url.clone(),
            server,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client"),
            store,
            admin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(ioc.http.get(ioc.url("/health")).send().await, Ok(r) if r.status() == StatusCode::OK) {
            assert!(Instant::now() < deadline, "ioc-api ({backend:?}) not healthy within 30 s");
            ioc.server.panic_if_exited().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ioc
    }

    async fn stop(mut self) {
        self.http = reqwest::Client::new();
        self.server.stop().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn user(&self, name: &str, role: Role, sites: Option<&[&str]>) {
        let sites: Option<Vec<String>> = sites.map(|s| s.iter().map(|x| (*x).to_owned()).collect());
        self.store.create_user(name, role, sites.as_deref(), PASSWORD, "test-setup").await.expect("create user");
    }

    /// POST /api/v1/session as a browser would (with the CSRF header).
    async fn login_raw(&self, name: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/session"))
            .header(CSRF.0, CSRF.1)
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .expect("POST /api/v1/session")
    }

    async fn login(&self, name: &str) -> Browser {
        let r = self.login_raw(name, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "login {name}");
        let set_cookie = r.headers().get(SET_COOKIE).expect("Set-Cookie").to_str().expect("ascii").to_owned();
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        let token = cookie.split_once('=').expect("name=value").1.to_owned();
        Browser { cookie, set_cookie, token }
    }

    /// A request carrying the session cookie (and the CSRF header, as the dashboard sends).
    fn as_user(&self, method: reqwest::Method, path: &str, b: &Browser) -> RequestBuilder {
        self.http.request(method, self.url(path)).header(COOKIE, &b.cookie).header(CSRF.0, CSRF.1)
    }

    fn get_as(&self, path: &str, b: &Browser) -> RequestBuilder {
        self.as_user(reqwest::Method::GET, path, b)
    }

    fn admin_post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(&self.admin)
    }

    async fn ingest(&self, events: &[Value]) {
        let (s, body) = send(self.admin_post("/api/v1/events").json(events)).await;
        assert_eq!(s, StatusCode::OK, "ingest: {body}");
        assert_eq!(body["accepted"].as_u64(), Some(events.len() as u64), "{body}");
    }
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, needle: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "expected {status}, got {s}: {body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "error message {msg:?} should mention {needle:?}");
}

// ---------------------------------------------------------------------------------------------
// Events (JSON, as an agent sends them)
// ---------------------------------------------------------------------------------------------

fn event(site: &str, camera: &str, seq: u64, secs: i64, body: Value) -> Value {
    let at = chrono::DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("time").to_rfc3339();
    let mut e = json!({
        "schema": 1, "event_id": Uuid::now_v7(), "seq": seq, "site_id": site, "camera_id": camera,
        "agent_id": format!("agent-{site}"), "occurred_at": at, "pts_ms": seq * 40,
    });
    e.as_object_mut().expect("object").extend(body.as_object().expect("body object").clone());
    e
}

fn crossing(class: &str) -> Value {
    json!({"type": "line_crossing", "line_id": "stop_line", "direction": "north",
           "object": {"track_id": 1, "class": class, "confidence": 0.8, "bbox": [1, 1, 5, 5]}})
}

fn incident(id: Uuid, snapshot: Uuid) -> Value {
    json!({"type": "incident", "incident_id": id, "kind": "stopped_vehicle", "state": "started", "severity": "warning",
           "zone_id": "carriageway", "object": {"track_id": 9, "class": "car", "confidence": 0.9, "bbox": [1, 1, 8, 6]},
           "measures": {"duration_ms": 12000},
           "snapshot": {"snapshot_id": snapshot, "content_type": "image/jpeg", "bytes": 6}})
}

fn status(name: &str) -> Value {
    json!({"type": "camera_status", "state": "running", "name": name})
}

const FAKE_JPEG: [u8; 6] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];

/// One site's data: a camera with a status, crossings, a sequence gap, an incident with its
/// snapshot. Returns (incident id, snapshot id).
async fn site_data(ioc: &Ioc, site: &str, crossings: u64) -> (Uuid, Uuid) {
    let camera = format!("cam-{site}");
    let (incident_id, snapshot_id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut events = vec![event(site, &camera, 1, 0, status(&format!("{site} junction")))];
    // seq 2 is never sent: a gap.
    for n in 0..crossings {
        events.push(event(site, &camera, 3 + n, 10 + n as i64, crossing(if n % 2 == 0 { "car" } else { "motorcycle" })));
    }
    events.push(event(site, &camera, 3 + crossings, 100, incident(incident_id, snapshot_id)));
    ioc.ingest(&events).await;
    let put = ioc
        .http
        .put(ioc.url(&format!("/api/v1/snapshots/{snapshot_id}")))
        .query(&[("site", site), ("camera", camera.as_str())])
        .bearer_auth(&ioc.admin)
        .header("content-type", "image/jpeg")
        .body(FAKE_JPEG.to_vec());
    assert_eq!(put.send().await.expect("PUT snapshot").status(), StatusCode::NO_CONTENT);
    (incident_id, snapshot_id)
}

/// Reads an SSE response until `done` holds for the text so far (generous timeout).
async fn read_sse_until(resp: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&text) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "SSE: condition not met within 20 s; got {text}");
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => panic!("SSE stream ended: {text}"),
            Ok(Err(e)) => panic!("SSE read: {e}"),
            Err(_) => {}
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A viewer reads but may not acknowledge (403); an operator acknowledges, and the incident
/// and the audit trail name the user; a cookie-authenticated change without the CSRF header
/// is refused and changes nothing.
async fn roles_csrf_and_audit(backend: Backend) {
    let ioc = Ioc::start(backend, "roles", &[]).await;
    ioc.user("vera", Role::Viewer, None).await;
    ioc.user("olga", Role::Operator, None).await;
    let (incident_id, _) = site_data(&ioc, "site-a", 2).await;
    let viewer = ioc.login("vera").await;
    let operator = ioc.login("olga").await;
    let ack_path = format!("/api/v1/incidents/{incident_id}/acknowledge");
    let note = json!({"note": "Patrol 7 dispatched"});

    let (s, list) = send(ioc.get_as("/api/v1/incidents", &viewer)).await;
    assert_eq!(s, StatusCode::OK, "a viewer reads: {list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let refused = send(ioc.as_user(reqwest::Method::POST, &ack_path, &viewer).json(&note)).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "role viewer");
    let resolve = format!("/api/v1/incidents/{incident_id}/resolve");
    assert_error(&send(ioc.as_user(reqwest::Method::POST, &resolve, &viewer).json(&note)).await, StatusCode::FORBIDDEN, "role viewer");
    assert_error(&send(ioc.get_as("/api/v1/keys", &viewer)).await, StatusCode::FORBIDDEN, "role viewer");

    // The cookie alone (what a cross-site form could make a browser send) changes nothing.
    let no_header = ioc.http.post(ioc.url(&ack_path)).header(COOKIE, &operator.cookie).json(&note);
    assert_error(&send(no_header).await, StatusCode::FORBIDDEN, "x-requested-with");
    let (_, detail) = send(ioc.get_as(&format!("/api/v1/incidents/{incident_id}"), &operator)).await;
    assert!(detail["acknowledged_by"].is_null(), "nothing changed: {detail}");

    let (s, acked) = send(ioc.as_user(reqwest::Method::POST, &ack_path, &operator).json(&note)).await;
    assert_eq!(s, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledged_by"], "user olga");
    let (s, audit) = send(ioc.get_as("/api/v1/audit", &viewer)).await;
    assert_eq!(s, StatusCode::OK);
    let row = audit.as_array().expect("audit").iter().find(|r| r["action"] == "incident.acknowledge").expect("audited");
    assert_eq!((row["actor"].as_str(), row["target"].as_str()), (Some("user olga"), Some(incident_id.to_string().as_str())), "{row}");
    assert_eq!(row["detail"], "Patrol 7 dispatched");
    let logins = audit.as_array().expect("audit").iter().filter(|r| r["action"] == "session.login").count();
    assert_eq!(logins, 2, "sign-ins are audited: {audit}");
    assert!(!audit.to_string().contains(PASSWORD));

    // Who am I.
    let (s, me) = send(ioc.get_as("/api/v1/session", &operator)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me, json!({"kind": "user", "name": "olga", "role": "operator", "sites": null}));
    let (_, me) = send(ioc.http.get(ioc.url("/api/v1/session")).bearer_auth(&ioc.admin)).await;
    assert_eq!((me["kind"].as_str(), me["name"].as_str()), (Some("key"), Some("admin-key")));

    // The admin manages users over HTTP too (an operator may not).
    let new_user = json!({"name": "nam", "role": "viewer", "sites": ["site-a"], "password": "another good password"});
    assert_error(&send(ioc.as_user(reqwest::Method::POST, "/api/v1/users", &operator).json(&new_user)).await, StatusCode::FORBIDDEN, "role operator");
    let (s, created) = send(ioc.admin_post("/api/v1/users").json(&new_user)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!((created["name"].as_str(), created["role"].as_str()), (Some("nam"), Some("viewer")));
    assert!(!created.to_string().contains("another good password") && !created.to_string().contains("argon2"), "{created}");
    assert_eq!(send(ioc.admin_post("/api/v1/users").json(&new_user)).await.0, StatusCode::CONFLICT);
    let short = json!({"name": "x", "role": "viewer", "password": "short"});
    assert_error(&send(ioc.admin_post("/api/v1/users").json(&short)).await, StatusCode::BAD_REQUEST, "password");
    let (_, users) = send(ioc.http.get(ioc.url("/api/v1/users")).bearer_auth(&ioc.admin)).await;
    assert_eq!(users.as_array().map(Vec::len), Some(3), "{users}");
    assert_eq!(ioc.login_raw("nam", "another good password").await.status(), StatusCode::OK);
    let del = ioc.http.delete(ioc.url("/api/v1/users/nam")).bearer_auth(&ioc.admin);
    assert_eq!(send(del).await.0, StatusCode::NO_CONTENT);
    assert_eq!(ioc.login_raw("nam", "another good password").await.status(), StatusCode::UNAUTHORIZED, "disabled");
    ioc.stop().await;
}

/// Scoped callers — a user and an API key, both operators for site A — never see site B:
/// its incident, snapshot and camera are 404 (also for the workflow), and its data is in no
/// list, page, count, CSV, gap list, audit entry or live stream; an unscoped caller sees both.
async fn site_scope_hides_other_sites(backend: Backend) {
    let ioc = Ioc::start(backend, "scope", &[]).await;
    ioc.user("anna", Role::Operator, Some(&["site-a"])).await;
    ioc.user("root", Role::Operator, None).await;
    let scoped_key =
        ioc.store.create_scoped_key("site-a-integration", Role::Operator, &["site-a".to_owned()], "test-setup").await.expect("key").1;
    let (a_incident, a_snapshot) = site_data(&ioc, "site-a", 4).await;
    let (b_incident, b_snapshot) = site_data(&ioc, "site-b", 6).await;
    // Site B's incident is acknowledged by an unscoped operator: that audit entry is B's.
    let b_ack = ioc.admin_post(&format!("/api/v1/incidents/{b_incident}/acknowledge")).json(&json!({"note": "B handled"}));
    assert_eq!(send(b_ack).await.0, StatusCode::OK);

    let anna = ioc.login("anna").await;
    let root = ioc.login("root").await;
    let as_anna = |path: &str| ioc.get_as(path, &anna);
    let as_key = |path: &str| ioc.http.get(ioc.url(path)).header("x-api-key", &scoped_key);
    let post_anna = |path: &str| ioc.as_user(reqwest::Method::POST, path, &anna);
    let post_key = |path: &str| ioc.http.post(ioc.url(path)).header("x-api-key", &scoped_key);
    type Req<'a> = &'a dyn Fn(&str) -> RequestBuilder;
    let callers: [(&str, Req<'_>, Req<'_>); 2] = [("user anna", &as_anna, &post_anna), ("scoped key", &as_key, &post_key)];
    for (who, get, post) in callers {
        // By id: A's are there, B's are "not found".
        assert_eq!(send(get(&format!("/api/v1/incidents/{a_incident}"))).await.0, StatusCode::OK, "{who}");
        assert_error(&send(get(&format!("/api/v1/incidents/{b_incident}"))).await, StatusCode::NOT_FOUND, "no incident");
        let snap = get(&format!("/api/v1/snapshots/{a_snapshot}")).send().await.expect("snapshot");
        assert_eq!(snap.status(), StatusCode::OK, "{who}");
        assert_eq!(snap.bytes().await.expect("bytes").to_vec(), FAKE_JPEG.to_vec());
        assert_error(&send(get(&format!("/api/v1/snapshots/{b_snapshot}"))).await, StatusCode::NOT_FOUND, "no snapshot");
        assert_eq!(send(get("/api/v1/cameras/site-a/cam-site-a")).await.0, StatusCode::OK, "{who}");
        assert_error(&send(get("/api/v1/cameras/site-b/cam-site-b")).await, StatusCode::NOT_FOUND, "no camera");

        // Lists.
        let (_, incidents) = send(get("/api/v1/incidents")).await;
        let ids: Vec<&str> = incidents.as_array().expect("incidents").iter().filter_map(|i| i["incident_id"].as_str()).collect();
        assert_eq!(ids, [a_incident.to_string()], "{who}: {incidents}");
        let (_, cameras) = send(get("/api/v1/cameras")).await;
        let sites: Vec<&str> = cameras.as_array().expect("cameras").iter().filter_map(|c| c["site_id"].as_str()).collect();
        assert_eq!(sites, ["site-a"], "{who}: {cameras}");
        let (_, gaps) = send(get("/api/v1/gaps")).await;
        let gap_sites: Vec<&str> = gaps.as_array().expect("gaps").iter().filter_map(|g| g["site_id"].as_str()).collect();
        assert_eq!(gap_sites, ["site-a"], "{who}: {gaps}");

        // Events, page by page (the scope holds across cursors), and with an explicit site.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = get("/api/v1/events").query(&[("limit", "2")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let (s, page) = send(req).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            seen.extend(page["events"].as_array().expect("events").iter().map(|e| e["site_id"].as_str().unwrap_or("?").to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 1 + 4 + 1, "{who}: site A's status, 4 crossings and the incident: {seen:?}");
        assert!(seen.iter().all(|s| s == "site-a"), "{who}: {seen:?}");
        let (_, other) = send(get("/api/v1/events").query(&[("site", "site-b")])).await;
        assert_eq!(other["events"], json!([]), "{who}: asking for site B explicitly finds nothing");

        // Counts and their CSV.
        let (_, counts) = send(get("/api/v1/counts").query(&[("bucket", "1d")])).await;
        let rows = counts.as_array().expect("counts");
        assert!(rows.iter().all(|r| r["site_id"] == "site-a"), "{who}: {counts}");
        assert_eq!(rows.iter().filter_map(|r| r["count"].as_i64()).sum::<i64>(), 4, "{who}: {counts}");
        let csv = get("/api/v1/counts").query(&[("format", "csv"), ("bucket", "1d")]).send().await.expect("csv").text().await.expect("text");
        assert!(csv.contains("site-a") && !csv.contains("site-b"), "{who}: {csv}");

        // The workflow on B's incident is "not found" too, and changes nothing.
        let resolve = post(&format!("/api/v1/incidents/{b_incident}/resolve")).json(&json!({"note": "not mine"}));
        assert_error(&send(resolve).await, StatusCode::NOT_FOUND, "no incident");
    }
    let (_, b) = send(ioc.get_as(&format!("/api/v1/incidents/{b_incident}"), &root)).await;
    assert!(b["resolved_by"].is_null(), "B's incident untouched: {b}");

    // Audit: anna acknowledges A's incident; she sees that entry, never B's.
    let ack = ioc.as_user(reqwest::Method::POST, &format!("/api/v1/incidents/{a_incident}/acknowledge"), &anna);
    let (s, acked) = send(ack.json(&json!({"note": "A handled"}))).await;
    assert_eq!(s, StatusCode::OK, "{acked}");
    let (_, audit) = send(as_anna("/api/v1/audit")).await;
    let targets: Vec<&str> = audit.as_array().expect("audit").iter().filter_map(|r| r["target"].as_str()).collect();
    assert_eq!(targets, [a_incident.to_string()], "only site A's incident entries: {audit}");

    // The live stream: B's events are filtered out before A's arrive.
    let mut stream = as_anna("/api/v1/stream").send().await.expect("open SSE");
    assert_eq!(stream.status(), StatusCode::OK);
    let mut root_stream = ioc.get_as("/api/v1/stream", &root).send().await.expect("open SSE");
    let b_live = event("site-b", "cam-site-b", 50, 500, crossing("bus"));
    let a_live = event("site-a", "cam-site-a", 50, 501, crossing("truck"));
    ioc.ingest(std::slice::from_ref(&b_live)).await;
    ioc.ingest(std::slice::from_ref(&a_live)).await;
    let a_id = a_live["event_id"].as_str().expect("id").to_owned();
    let b_id = b_live["event_id"].as_str().expect("id").to_owned();
    let text = read_sse_until(&mut stream, |t| t.contains(&a_id)).await;
    assert!(!text.contains(&b_id) && !text.contains("site-b"), "site B never reaches anna's stream: {text}");
    let text = read_sse_until(&mut root_stream, |t| t.contains(&a_id)).await;
    assert!(text.contains(&b_id), "an unscoped user sees both sites live: {text}");
    drop((stream, root_stream));

    // The unscoped user sees both sites (the data above was there to be hidden).
    let (_, all) = send(ioc.get_as("/api/v1/incidents", &root)).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let (_, cams) = send(ioc.get_as("/api/v1/cameras", &root)).await;
    assert_eq!(cams.as_array().map(Vec::len), Some(2));
    assert_eq!(send(ioc.get_as(&format!("/api/v1/snapshots/{b_snapshot}"), &root)).await.0, StatusCode::OK);

    // A scoped admin may not manage keys (it could mint itself a wider one).
    ioc.user("site-admin", Role::Admin, Some(&["site-a"])).await;
    let site_admin = ioc.login("site-admin").await;
    let mint = ioc.as_user(reqwest::Method::POST, "/api/v1/keys", &site_admin).json(&json!({"name": "wide", "role": "admin"}));
    assert_error(&send(mint).await, StatusCode::FORBIDDEN, "limited to some sites");
    ioc.stop().await;
}

/// Five failed sign-ins for a name block it (429 with `Retry-After`, even with the right
/// password) while other names still sign in; twenty failures from one address block that
/// address for every name. Unknown names and wrong passwords get the same answer.
async fn login_throttling(backend: Backend) {
    let ioc = Ioc::start(backend, "throttle", &[]).await;
    for name in ["alice", "bob", "carol"] {
        ioc.user(name, Role::Operator, None).await;
    }
    let wrong = send_login(&ioc, "alice", "wrong password 1").await;
    let unknown = send_login(&ioc, "nobody-by-that-name", "wrong password 1").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "wrong user name or password");
    assert_eq!(wrong, unknown, "an unknown name is answered exactly like a wrong password");
    for n in 2..=5 {
        assert_eq!(send_login(&ioc, "alice", &format!("wrong password {n}")).await.0, StatusCode::UNAUTHORIZED);
    }
    let r = ioc.login_raw("alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the sixth attempt is refused, right password or not");
    let retry: u64 = r.headers().get(RETRY_AFTER).expect("Retry-After").to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=900).contains(&retry), "Retry-After {retry} within the 15-minute window");
    assert!(r.headers().get(SET_COOKIE).is_none(), "no session while blocked");
    let body: Value = r.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "too_many_requests");
    ioc.login("bob").await; // another name signs in from the same address

    // 6 failures from this address so far (5 alice, 1 unknown name); 14 more reach 20.
    for n in 0..14 {
        assert_eq!(send_login(&ioc, &format!("guess-{n}"), "nope nope nope").await.0, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    let r = ioc.login_raw("carol", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the address is blocked for every name");
    assert!(r.headers().get(RETRY_AFTER).is_some());
    ioc.stop().await;
}

async fn send_login(ioc: &Ioc, name: &str, password: &str) -> (StatusCode, Value) {
    let r = ioc.login_raw(name, password).await;
    let status = r.status();
    (status, r.json().await.expect("JSON"))
}

/// The cookie's flags (no `Secure`/`__Host-` over plain HTTP: TLS is unit-tested in ioc-api),
/// sessions end when idle, at their absolute lifetime, on logout and when the user is
/// disabled; the store holds only hashes; `?key=` in a URL authenticates nothing.
async fn sessions_cookies_and_expiry(backend: Backend) {
    let ioc = Ioc::start(backend, "sessions", &["--session-idle", "3", "--session-lifetime", "8"]).await;
    ioc.user("sam", Role::Operator, None).await;

    // Cookie flags.
    let r = ioc.login_raw("sam", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let b = ioc.login("sam").await;
    let attrs: Vec<&str> = b.set_cookie.split("; ").collect();
    assert_eq!(attrs[0].split_once('=').map(|(n, _)| n), Some("roadsight_session"), "{}", b.set_cookie);
    assert_eq!(&attrs[1..], ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=8"], "{}", b.set_cookie);
    assert!(b.token.len() == 64 && b.token.chars().all(|c| c.is_ascii_hexdigit()), "a 256-bit random token: {}", b.token);
    let body = r.text().await.expect("body");
    assert!(body.contains("\"name\":\"sam\"") && !body.contains(PASSWORD), "{body}");

    // The store keeps hashes only.
    let pool = sqlx::AnyPool::connect(&ioc.database_url).await.expect("db");
    use sqlx::Row as _;
    let hash: String = sqlx::query("SELECT password_hash FROM users WHERE name = 'sam'").fetch_one(&pool).await.expect("row").get(0);
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD), "{hash}");
    let tokens: Vec<String> =
        sqlx::query("SELECT token_hash FROM sessions").fetch_all(&pool).await.expect("rows").iter().map(|r| r.get(0)).collect();
    assert!(!tokens.is_empty() && !tokens.contains(&b.token), "only token hashes are stored");
    pool.close().await;

    // Secrets in URLs authenticate nothing.
    for path in ["/api/v1/events", "/api/v1/stream", "/api/v1/cameras"] {
        let r = send(ioc.http.get(ioc.url(path)).query(&[("key", &ioc.admin)])).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "sign in");
    }

    // Idle: 3 s without a request ends it.
    assert_eq!(send(ioc.get_as("/api/v1/session", &b)).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_error(&send(ioc.get_as("/api/v1/session", &b)).await, StatusCode::UNAUTHORIZED, "session has ended");

    // Absolute: a session kept busy outlives the idle time, but not its 8 s lifetime.
    let started = Instant::now();
    let busy = ioc.login("sam").await;
    let mut last_ok = Duration::ZERO;
    let ended_after = loop {
        let s = send(ioc.get_as("/api/v1/cameras", &busy)).await.0;
        if s == StatusCode::UNAUTHORIZED {
            break started.elapsed();
        }
        assert_eq!(s, StatusCode::OK);
        last_ok = started.elapsed();
        assert!(last_ok < Duration::from_secs(40), "the session never ended");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(last_ok > Duration::from_secs(4), "kept busy, it lived past the idle time: last 200 at {last_ok:?}");
    assert!(ended_after >= Duration::from_millis(7900), "not before its lifetime: ended at {ended_after:?}");

    // Logout: needs the CSRF header, then the token is dead and the cookie cleared.
    let c = ioc.login("sam").await;
    let no_header = ioc.http.delete(ioc.url("/api/v1/session")).header(COOKIE, &c.cookie);
    assert_error(&send(no_header).await, StatusCode::FORBIDDEN, "x-requested-with");
    assert_eq!(send(ioc.get_as("/api/v1/session", &c)).await.0, StatusCode::OK, "still signed in");
    let r = ioc.as_user(reqwest::Method::DELETE, "/api/v1/session", &c).send().await.expect("logout");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cleared = r.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cleared.starts_with("roadsight_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_error(&send(ioc.get_as("/api/v1/session", &c)).await, StatusCode::UNAUTHORIZED, "session has ended");

    // Disabling a user ends their sessions and refuses new sign-ins.
    let d = ioc.login("sam").await;
    assert!(ioc.store.disable_user("sam", "test").await.expect("disable"));
    assert_eq!(send(ioc.get_as("/api/v1/session", &d)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(ioc.login_raw("sam", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    ioc.stop().await;
}

/// `ioc-api users create|list|disable`, the real binary: the password from a file or from
/// standard input, never echoed; a short one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cli() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let bin = common::edge_agent_bin().with_file_name("ioc-api");
    assert!(bin.exists(), "{} not built: cargo build --bins -p ioc-api", bin.display());
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ioc");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(&bin)
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running ioc-api");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.unwrap_or("").as_bytes()).expect("write stdin");
        drop(input);
        child.wait_with_output().expect("ioc-api output")
    };
    let file = dir.path().join("pw");
    std::fs::write(&file, "file password 123\n").expect("password file");
    let o = run(&["users", "create", "--name", "fiona", "--role", "viewer", "--password-file", file.to_str().expect("utf8")], None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = run(&["users", "create", "--name", "stan", "--role", "operator", "--sites", "site-a,site-b"], Some("stdin password 456\n"));
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("stan") && out.contains("site-a,site-b") && !out.contains("456"), "{out}");
    let o = run(&["users", "create", "--name", "shorty", "--role", "viewer"], Some("short\n"));
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("password") && !err.contains("short\n") && !err.contains(": short"), "{err}");
    let o = run(&["users", "create", "--name", "fiona", "--role", "viewer"], Some("another password\n"));
    assert!(!o.status.success() && common::stderr(&o).contains("exists already"), "{}", common::stderr(&o));
    let o = run(&["users", "list"], None);
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(list.contains("fiona") && list.contains("viewer") && list.contains("all sites"), "{list}");
    assert!(list.contains("stan") && list.contains("site-a,site-b") && !list.contains("argon2"), "{list}");

    // The passwords work (and only they).
    let store = Store::connect(&format!("sqlite://{}", data.join("ioc.sqlite").display())).await.expect("store");
    let policy = ioc_api::store::SessionPolicy { idle_ms: 60_000, lifetime_ms: 60_000 };
    let s = store.login("stan", "stdin password 456", policy).await.expect("login").expect("the stdin password");
    assert_eq!((s.user.role, s.user.sites.as_deref()), (Role::Operator, Some(&["site-a".to_owned(), "site-b".to_owned()][..])));
    assert!(store.login("fiona", "file password 123", policy).await.expect("login").is_some());
    assert!(store.login("fiona", "file password 124", policy).await.expect("login").is_none());

    let o = run(&["users", "disable", "fiona"], None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(store.login("fiona", "file password 123", policy).await.expect("login").is_none(), "disabled");
    assert!(String::from_utf8_lossy(&run(&["users", "list"], None).stdout).contains("disabled"));
}


on_both_backends!(roles_csrf_and_audit, site_scope_hides_other_sites, login_throttling, sessions_cookies_and_expiry);
