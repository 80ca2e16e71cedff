//! The Roadsight video-analytics pipeline.
//!
//! `source` (GStreamer) → `detect` (ONNX Runtime) → `track` (ByteTrack) → `analytics`
//! (lines, zones, counts). Only `source` knows GStreamer and only `detect` knows `ort`;
//! `track` and `analytics` are pure and run on stream timestamps, never the wall clock.

pub mod analytics;
pub mod cadence;
pub mod colour;
pub mod detect;
pub mod frame;
pub mod geometry;
pub mod queue;
pub mod signal_lamp;
pub mod source;
pub mod track;
