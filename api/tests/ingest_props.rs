//! Property test of `POST /api/v1/events` over untrusted input, through the real router and a
//! real SQLite store (in-process requests, no socket). Never a 5xx, never a panic; every
//! rejection is a 4xx with a JSON error `{"error": {"code", "message"}}` whose message names
//! the field (`events[3]: object.bbox[2]: …`, `body: …`); an accepted batch stores exactly
//! its new events. Fixed seed, no failure files. Prints one line of figures.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use roadsight_events::decode::decode;
use roadsight_events::strategies::{event, json, mutated_event, Mutated};
use serde_json::Value;
use tower::ServiceExt;

use ioc_api::http::{router, AppState, MAX_BODY_BYTES};
use ioc_api::ingest::Ingestor;
use ioc_api::metrics::Metrics;
use ioc_api::snapshots::SnapshotStore;
use ioc_api::store::{Role, Store};

struct Ioc {
    rt: tokio::runtime::Runtime,
    app: Router,
    store: Store,
    secret: String,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    json: Value,
}

impl Ioc {
    fn start() -> Ioc {
        // In memory where there is a tmpfs: the property is about the handler, not fsync.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("ioc.sqlite").display());
        let (store, secret) = rt.block_on(async {
            let store = Store::connect(&url).await.expect("store");
            let (_, secret) = store.create_key("fuzz-agent", Role::Agent, "test").await.expect("key");
            (store, secret)
        });
        let snapshots = SnapshotStore::new(dir.path().join("snapshots")).expect("snapshots dir");
        let clips = ioc_api::clips::ClipStore::new(dir.path().join("clips"), 1 << 30).expect("clips dir");
        let state = AppState {
            ingestor: Ingestor::new(store.clone(), Metrics::new()),
            snapshots,
            clips,
            tls: false,
            http_stopping: tokio::sync::watch::channel(false).1,
            sessions: ioc_api::cli::SessionArgs::default().policy(),
            throttle: ioc_api::http::throttle::LoginThrottle::new(ioc_api::http::throttle::ThrottlePolicy::default()),
        };
        let app = router(Arc::new(state));
        Ioc { rt, app, store, secret, _dir: dir }
    }

    fn post(&self, body: Vec<u8>, content_type: &str, key: Option<&str>) -> Reply {
        let mut req = Request::post("/api/v1/events").header("content-type", content_type);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(Body::from(body)).expect("request");
        self.rt.block_on(async {
            let resp = self.app.clone().oneshot(req).await.expect("the router is infallible");
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
            let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            Reply { status, json }
        })
    }

    fn event_count(&self) -> i64 {
        self.rt.block_on(self.store.event_count()).expect("count")
    }
}

/// A 4xx with `{"error": {"code", "message"}}`; returns the message.
fn rejection(r: &Reply) -> Result<String, TestCaseError> {
    prop_assert!(
        [400, 401, 403, 413, 422].contains(&r.status.as_u16()),
        "status {} is not a 4xx rejection: {}",
        r.status,
        r.json
    );
    let (code, message) = (&r.json["error"]["code"], &r.json["error"]["message"]);
    prop_assert!(code.is_string() && message.is_string(), "not a JSON error: {}", r.json);
    Ok(message.as_str().unwrap_or_default().to_owned())
}

/// Tally of statuses for the figures.
#[derive(Default)]
struct Statuses(RefCell<BTreeMap<u16, u32>>);

impl Statuses {
    fn add(&self, s: StatusCode) {
        *self.0.borrow_mut().entry(s.as_u16()).or_default() += 1;
    }

    fn show(&self) -> String {
        self.0.borrow().iter().map(|(s, n)| format!("{s}×{n}")).collect::<Vec<_>>().join(" ")
    }
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config { failure_persistence: None, rng_seed: RngSeed::Fixed(seed), ..Config::with_cases(cases) })
}

#[derive(Debug, Clone)]
enum Item {
    Valid(Value),
    Broken(Mutated),
}

impl Item {
    fn value(&self) -> &Value {
        match self {
            Item::Valid(v) => v,
            Item::Broken(m) => &m.value,
        }
    }
}

const BATCHES: u32 = 2_100;
const RAW: u32 = 1_000;

#[test]
fn ingest_never_fails_on_untrusted_input_and_names_the_field() {
    let ioc = Ioc::start();
    let started = Instant::now();
    let statuses = Statuses::default();
    let events_sent = Cell::new(0u64);
    let stored: RefCell<HashSet<String>> = RefCell::default();

    // Batches of generated events, a few of them broken: all-or-nothing, the first broken one
    // named by its index and field.
    let item = prop_oneof![
        24 => event().prop_map(|e| Item::Valid(serde_json::to_value(e).expect("serialise"))),
        1 => mutated_event().prop_map(Item::Broken),
    ];
    let batch = proptest::collection::vec(item, 1..100);
    runner(BATCHES, 0x5eed_0002)
        .run(&batch, |items| {
            events_sent.set(events_sent.get() + items.len() as u64);
            let before = ioc.event_count();
            let bytes = serde_json::to_vec(&items.iter().map(Item::value).collect::<Vec<_>>()).expect("serialise");
            // What the server reads (a float in text may come back one ulp off).
            let body: Vec<Value> = serde_json::from_slice(&bytes).expect("JSON");
            let reply = ioc.post(bytes, "application/json", Some(&ioc.secret));
            statuses.add(reply.status);
            let first_bad = body.iter().zip(&items).enumerate().find_map(|(i, (v, it))| decode(v).err().map(|e| (i, e, it)));
            match first_bad {
                _ if reply.status == StatusCode::FORBIDDEN => {
                    // The key may not send for that site (agent-scoped ingest): nothing stored.
                    rejection(&reply)?;
                    prop_assert_eq!(ioc.event_count(), before);
                }
                Some((i, err, it)) => {
                    let message = rejection(&reply)?;
                    prop_assert_eq!(reply.status, StatusCode::BAD_REQUEST);
                    prop_assert_eq!(&message, &format!("events[{i}]: {err}"));
                    if let Item::Broken(m) = it {
                        prop_assert!(m.is_named_by(&err), "{:?} at {:?} not named: {}", m.mutation, m.path, message);
                    }
                    prop_assert_eq!(ioc.event_count(), before, "a rejected batch stored something");
                }
                None => {
                    prop_assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
                    let mut stored = stored.borrow_mut();
                    let fresh = body.iter().filter(|v| stored.insert(v["event_id"].as_str().unwrap_or_default().to_owned())).count();
                    prop_assert_eq!(&reply.json["accepted"], &Value::from(fresh), "{}", reply.json);
                    prop_assert_eq!(&reply.json["duplicates"], &Value::from(items.len() - fresh), "{}", reply.json);
                    prop_assert_eq!(ioc.event_count(), before + fresh as i64);
                }
            }
            Ok(())
        })
        .expect("every batch is stored or rejected naming the field");
    let batch_statuses = statuses.show();

    // Raw bodies: any bytes, any JSON, a single event, too many events, too large, the wrong
    // content type, no key or a wrong one.
    let raw_statuses = Statuses::default();
    let too_many = (10_001usize..10_050).prop_map(|n| format!("[{}{{}}]", "{},".repeat(n - 1)).into_bytes());
    let too_large = (1usize..1000).prop_map(|extra| {
        let mut b = b"[".to_vec();
        b.resize(MAX_BODY_BYTES + extra, b' ');
        b.push(b']');
        b
    });
    let body = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..256),
        4 => json().prop_map(|v| serde_json::to_vec(&v).expect("serialise")),
        2 => proptest::collection::vec(json(), 0..4).prop_map(|v| serde_json::to_vec(&v).expect("serialise")),
        2 => mutated_event().prop_map(|m| serde_json::to_vec(&m.value).expect("serialise")),
        1 => too_many,
        1 => too_large,
    ];
    let content_type = prop_oneof![8 => Just("application/json"), 1 => Just("text/plain"), 1 => Just("application/json; charset=utf-8")];
    let key = prop_oneof![8 => Just(Some(ioc.secret.clone())), 1 => Just(None), 1 => "[ -~]{0,40}".prop_map(Some)];
    runner(RAW, 0x5eed_0003)
        .run(&(body, content_type, key), |(body, content_type, key)| {
            let before = ioc.event_count();
            let reply = ioc.post(body.clone(), content_type, key.as_deref());
            raw_statuses.add(reply.status);
            if reply.status == StatusCode::OK {
                prop_assert!(key.as_deref() == Some(ioc.secret.as_str()), "accepted without the key: {}", reply.json);
                let stored_now = ioc.event_count() - before;
                prop_assert_eq!(&reply.json["accepted"], &Value::from(stored_now), "{}", reply.json);
                return Ok(());
            }
            let message = rejection(&reply)?;
            prop_assert_eq!(ioc.event_count(), before, "a rejected request stored something");
            let named = match reply.status.as_u16() {
                401 => message.contains("API key"),
                403 => true,
                413 => message.contains("request body larger than"),
                _ => message.starts_with("body: ") || message.starts_with("events["),
            };
            prop_assert!(named, "{} {message}: names no field", reply.status);
            Ok(())
        })
        .expect("every raw body is stored or rejected with a 4xx naming what is wrong");

    println!(
        "fuzz HTTP ingest: {} requests ({BATCHES} batches of {} generated events: {batch_statuses}; {RAW} raw bodies: {}) in {:.1} s, {} events stored, no 5xx",
        BATCHES + RAW,
        events_sent.get(),
        raw_statuses.show(),
        started.elapsed().as_secs_f64(),
        ioc.event_count(),
    );
}
