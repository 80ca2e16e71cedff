//! Traffic-signal phases as the incident rules use them.

pub use roadsight_events::SignalPhase;
