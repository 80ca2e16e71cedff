//! `proptest` strategies for events (feature `proptest`, for tests): valid events, the same
//! with one field broken, arbitrary JSON, and the check that a decode error names the field
//! that was broken. The event decoder's and the IOC's HTTP ingest property tests share them.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::decode::DecodeError;
use crate::*;

/// Ids that pass the IOC's checks: mostly a few fixed ones (so that events share cameras and
/// exercise sequence gaps and duplicates), sometimes any valid one up to the longest.
pub fn id(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(pool).prop_map(str::to_owned),
        1 => "[A-Za-z0-9_-]{1,128}",
    ]
}

/// Sequence numbers the store can keep, the extremes included.
pub fn seq() -> impl Strategy<Value = u64> {
    let max = i64::MAX as u64;
    prop_oneof![4 => 1..=1000u64, 1 => Just(max), 1 => Just(max - 1), 1 => 1..=max]
}

/// Times from 1970 to 2100, to the millisecond.
pub fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0..=4_102_444_800_000i64).prop_map(|ms| DateTime::from_timestamp_millis(ms).expect("in chrono's range"))
}

/// Any finite f32 (what JSON can carry).
pub fn finite_f32() -> impl Strategy<Value = f32> {
    use proptest::num::f32::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    (NORMAL | SUBNORMAL | ZERO | POSITIVE | NEGATIVE).prop_filter("finite", |v| v.is_finite())
}

/// Free text: any Unicode, control characters included (cheaper to draw than a regex).
pub fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter)
}

pub fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

pub fn object() -> impl Strategy<Value = ObjectRef> {
    (any::<u64>(), select(ObjectClass::ALL.to_vec()), 0.0f32..=1.0, [finite_f32(), finite_f32(), finite_f32(), finite_f32()], any::<Option<u8>>())
        .prop_map(|(track_id, class, confidence, bbox, riders)| ObjectRef { track_id, class, confidence, bbox, riders })
}

fn zone() -> impl Strategy<Value = ZoneTransition> {
    (text(), object(), any::<u32>(), any::<Option<u64>>())
        .prop_map(|(zone_id, object, occupancy, dwell_ms)| ZoneTransition { zone_id, object, occupancy, dwell_ms })
}

fn measures() -> impl Strategy<Value = IncidentMeasures> {
    let f = || proptest::option::of(finite_f32());
    (any::<Option<u64>>(), f(), f(), f(), f(), f(), any::<Option<u32>>(), any::<Option<u64>>()).prop_map(
        |(duration_ms, speed_kmh, limit_kmh, distance_px, occupancy, queue_length_m, passed_by, red_for_ms)| IncidentMeasures {
            duration_ms,
            speed_kmh,
            limit_kmh,
            distance_px,
            occupancy,
            queue_length_m,
            passed_by,
            red_for_ms,
        },
    )
}

fn incident() -> impl Strategy<Value = IncidentEvent> {
    use IncidentState::*;
    use Severity::*;
    let snapshot = (uuid(), text(), any::<u64>()).prop_map(|(snapshot_id, content_type, bytes)| SnapshotRef { snapshot_id, content_type, bytes });
    (
        uuid(),
        select(IncidentKind::ALL.to_vec()),
        select(vec![Started, Updated, Ended]),
        select(vec![Info, Warning, Critical]),
        proptest::option::of(text()),
        proptest::option::of(object()),
        measures(),
        (proptest::collection::vec(object(), 0..3), proptest::option::of(snapshot), proptest::option::of(clip())),
    )
        .prop_map(|(incident_id, kind, state, severity, zone_id, object, measures, (related, snapshot, clip))| IncidentEvent {
            incident_id,
            kind,
            state,
            severity,
            zone_id,
            object,
            measures,
            related,
            snapshot,
            clip,
        })
}

fn clip() -> impl Strategy<Value = ClipRef> {
    (uuid(), 1..=crate::clip::MAX_BYTES, any::<[u8; 32]>(), time(), any::<u32>()).prop_map(|(clip_id, bytes, digest, starts_at, duration_ms)| {
        ClipRef {
            clip_id,
            content_type: crate::clip::CONTENT_TYPE.into(),
            bytes,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
            starts_at,
            duration_ms: duration_ms.into(),
            chunks: crate::clip::chunks(bytes),
        }
    })
}

fn counts() -> impl Strategy<Value = Counts> {
    let row = (text(), text(), select(ObjectClass::ALL.to_vec()), any::<u64>())
        .prop_map(|(line_id, direction, class, count)| CountRow { line_id, direction, class, count });
    (time(), any::<u64>(), proptest::collection::vec(row, 0..4))
        .prop_map(|(interval_start, interval_ms, rows)| Counts { interval_start, interval_ms, rows })
}

fn camera_status() -> impl Strategy<Value = CameraStatus> {
    use CameraState::*;
    let location = (-90.0f64..=90.0, -180.0f64..=180.0, proptest::option::of(text())).prop_map(|(lat, lon, road)| Location { lat, lon, road });
    (
        select(vec![Connecting, Running, Retrying, Stopped]),
        proptest::option::of(text()),
        any::<Option<u32>>(),
        proptest::option::of(finite_f32()),
        proptest::option::of(text()),
        proptest::option::of(location),
    )
        .prop_map(|(state, reason, attempt, fps, name, location)| CameraStatus { state, reason, attempt, fps, name, location })
}

pub fn body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        (text(), text(), object()).prop_map(|(line_id, direction, object)| EventBody::LineCrossing(LineCrossing { line_id, direction, object })),
        zone().prop_map(EventBody::ZoneEnter),
        zone().prop_map(EventBody::ZoneExit),
        incident().prop_map(EventBody::Incident),
        counts().prop_map(EventBody::Counts),
        camera_status().prop_map(EventBody::CameraStatus),
        (id(&["main", "near_left_turn", "s-2"]), select(vec![SignalPhase::Red, SignalPhase::Amber, SignalPhase::Green, SignalPhase::Unknown]), select(vec![SignalSource::Camera, SignalSource::Controller]))
            .prop_map(|(signal_id, phase, source)| EventBody::SignalPhase(SignalPhaseChange { signal_id, phase, source })),
    ]
}

/// An event the IOC accepts.
pub fn event() -> impl Strategy<Value = Event> {
    (
        uuid(),
        seq(),
        id(&["hanoi", "da-nang"]),
        id(&["cam-1", "cam-2", "cam_3"]),
        id(&["edge-1", "edge-2"]),
        time(),
        any::<u64>(),
        body(),
    )
        .prop_map(|(event_id, seq, site_id, camera_id, agent_id, occurred_at, pts_ms, body)| Event {
            schema: SCHEMA_VERSION,
            event_id,
            seq,
            site_id,
            camera_id,
            agent_id,
            occurred_at,
            pts_ms,
            body,
        })
}

/// Any JSON value, up to a few levels deep.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(text(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values a field should not hold (wrong types, out-of-range and NaN-like numbers, huge and
/// odd strings), and some it may.
pub fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        select(vec![json!(-1), json!(0), json!(1.5), json!(1e300), json!(-1e300), json!(u64::MAX), json!(i64::MIN), json!(2), json!(256)]),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(vec!["NaN", "inf", "-Infinity", "", "1e400", "2020-13-45T25:61:00Z", "null", "ünïcødé 🚗", "\u{0}", "car", "started"])
            .prop_map(Value::from),
        text().prop_map(Value::from),
        (1usize..40_000).prop_map(|n| Value::from("x".repeat(n))),
        Just(json!([])),
        Just(json!({})),
        json(),
    ]
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// `object.bbox[2]` (the notation of [`DecodeError::field`]).
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[derive(Debug, Clone)]
pub enum Mutation {
    Remove,
    Replace(Value),
    /// A key no event type has, added to the object at the path.
    AddKey(String, Value),
}

/// A valid event's JSON with one thing changed at `path`.
#[derive(Debug, Clone)]
pub struct Mutated {
    pub value: Value,
    /// Where the change is (for `AddKey`, the new key's path).
    pub path: Vec<Seg>,
    pub mutation: Mutation,
}

impl Mutated {
    /// True when `err` blames the changed field: its path is the change's path, a parent of it
    /// (`event`: the event itself) or a path inside the new value, and the message names the
    /// changed field.
    pub fn is_named_by(&self, err: &DecodeError) -> bool {
        let at = path_string(&self.path);
        let below = |long: &str, short: &str| {
            long.strip_prefix(short).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
        };
        let under = err.field == "event" || below(&at, &err.field) || below(&err.field, &at);
        let leaf = self.path.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        });
        under && leaf.is_none_or(|leaf| err.to_string().contains(leaf))
    }
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, bool)>) {
    match v {
        Value::Object(m) => {
            out.push((prefix.clone(), true));
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            out.push((prefix.clone(), false));
            for (i, child) in a.iter().enumerate() {
                prefix.push(Seg::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push((prefix.clone(), false)),
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[Seg]) -> &'v mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::Index(i) => &mut v[*i],
    })
}

fn mutate(event: &Event, pick: Index, mutation: Mutation) -> Mutated {
    let mut value = serde_json::to_value(event).expect("an event serialises");
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    let candidates: Vec<Vec<Seg>> = all
        .into_iter()
        .filter(|(p, is_object)| match mutation {
            Mutation::AddKey(..) => *is_object,
            _ => !p.is_empty(),
        })
        .map(|(p, _)| p)
        .collect();
    let mut path = pick.get(&candidates).clone();
    match &mutation {
        Mutation::Replace(new) => *at_mut(&mut value, &path) = new.clone(),
        Mutation::Remove => {
            let last = path.last().cloned().expect("not the root");
            match (at_mut(&mut value, &path[..path.len() - 1]), last) {
                (Value::Object(m), Seg::Key(k)) => {
                    m.remove(&k);
                }
                (Value::Array(a), Seg::Index(i)) => {
                    a.remove(i);
                }
                _ => unreachable!("a path's parent holds it"),
            }
        }
        Mutation::AddKey(k, new) => {
            if let Value::Object(m) = at_mut(&mut value, &path) {
                m.insert(k.clone(), new.clone());
            }
            path.push(Seg::Key(k.clone()));
        }
    }
    Mutated { value, path, mutation }
}

/// A valid event with one field removed, replaced by an odd value, or an unknown key added.
pub fn mutated_event() -> impl Strategy<Value = Mutated> {
    let mutation = prop_oneof![
        1 => Just(Mutation::Remove),
        3 => odd_value().prop_map(Mutation::Replace),
        1 => ("zz_[a-z0-9_]{0,12}|zz_.{1,8}", odd_value()).prop_map(|(k, v)| Mutation::AddKey(k, v)),
    ];
    (event(), any::<Index>(), mutation).prop_map(|(e, pick, m)| mutate(&e, pick, m))
}
