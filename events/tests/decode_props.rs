//! Property test of the event decoder over untrusted input (`roadsight_events::decode`):
//! generated valid events round-trip; the same with one field removed, replaced by an odd
//! value or joined by an unknown key either decode to an event that itself round-trips or
//! fail with an error naming that field; arbitrary bytes never panic it. Fixed seed, no
//! failure files: a run is reproducible. Prints one line of figures (cases, seconds, errors).

use std::cell::Cell;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use roadsight_events::decode::decode;
use roadsight_events::strategies::{event, json, mutated_event, Mutated};
use roadsight_events::Event;

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { failure_persistence: None, rng_seed: RngSeed::Fixed(0x5eed_0001), ..Config::with_cases(cases) })
}

/// An accepted event must come back the same after serialising it (as the IOC stores it).
fn round_trips(e: &Event) -> Result<(), TestCaseError> {
    let again = serde_json::to_value(e).map_err(|err| TestCaseError::fail(format!("serialise: {err}")))?;
    let back = decode(&again).map_err(|err| TestCaseError::fail(format!("re-decoding {again}: {err}")))?;
    prop_assert_eq!(&back, e);
    Ok(())
}

const VALID: u32 = 20_000;
const MUTATED: u32 = 60_000;
const BYTES: u32 = 20_000;

#[test]
fn decoder_survives_untrusted_input_and_names_the_field() {
    let started = Instant::now();

    runner(VALID)
        .run(&event(), |e| {
            round_trips(&e)?;
            // Through text as well, as it arrives over HTTP and MQTT.
            let text = serde_json::to_string(&e).map_err(|err| TestCaseError::fail(err.to_string()))?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| TestCaseError::fail(err.to_string()))?;
            let back = decode(&value).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
            prop_assert_eq!(back, e);
            Ok(())
        })
        .expect("valid events decode to themselves");

    let valid_secs = started.elapsed().as_secs_f64();
    let (accepted, rejected) = (Cell::new(0u32), Cell::new(0u32));
    runner(MUTATED)
        .run(&mutated_event(), |m: Mutated| {
            match decode(&m.value) {
                Ok(e) => {
                    accepted.set(accepted.get() + 1);
                    round_trips(&e)?;
                }
                Err(err) => {
                    rejected.set(rejected.get() + 1);
                    prop_assert!(m.is_named_by(&err), "{:?} at {:?}: the error does not name it: {}", m.mutation, m.path, err);
                }
            }
            Ok(())
        })
        .expect("a broken field is named, an accepted event round-trips");

    let mutated_secs = started.elapsed().as_secs_f64() - valid_secs;
    // Bytes: mostly a valid event's JSON with bytes overwritten or cut, sometimes any JSON
    // value, sometimes noise.
    let corrupted = (event(), proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), any::<prop::sample::Index>())
        .prop_map(|(e, flips, cut)| {
            let mut bytes = serde_json::to_vec(&e).expect("serialise");
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1).max(1));
            bytes
        });
    let bytes = prop_oneof![
        6 => corrupted,
        2 => json().prop_map(|v| serde_json::to_vec(&v).expect("serialise")),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let (parsed, decoded) = (Cell::new(0u32), Cell::new(0u32));
    runner(BYTES)
        .run(&bytes, |bytes| {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                parsed.set(parsed.get() + 1);
                match decode(&value) {
                    Ok(e) => {
                        decoded.set(decoded.get() + 1);
                        round_trips(&e)?;
                    }
                    Err(err) => prop_assert!(!err.field.is_empty() && !err.message.is_empty(), "{err:?}"),
                }
            }
            Ok(())
        })
        .expect("no input panics the decoder");

    println!(
        "fuzz events decoder: {} cases in {:.1} s — {VALID} valid (all round-trip, {valid_secs:.1} s), {MUTATED} broken ({} rejected naming the field, {} still valid and round-tripping, {mutated_secs:.1} s), {BYTES} byte strings ({} JSON, {} decoded)",
        VALID + MUTATED + BYTES,
        started.elapsed().as_secs_f64(),
        rejected.get(),
        accepted.get(),
        parsed.get(),
        decoded.get(),
    );
}
