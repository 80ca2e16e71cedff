//! Signal phases published by the site's signal controllers over MQTT
//! (`roadsight/v1/{site}/signals/{id}/phase`, retained [`ControllerPhase`] JSON), kept for the
//! cameras whose `[[cameras.signals]]` entry says `controller = true`. The delivery connection
//! subscribes (the broker's ACL lets an agent read only its own site's signals); each camera
//! worker takes a change at its next frame, on its own stream time.

use std::collections::HashMap;
use std::sync::Mutex;

use roadsight_events::topics::{self, Topic};
use roadsight_events::{ControllerPhase, SignalPhase};

#[derive(Debug, Default)]
pub struct SignalBoard {
    phases: Mutex<HashMap<String, SignalPhase>>,
}

impl SignalBoard {
    pub fn get(&self, signal_id: &str) -> Option<SignalPhase> {
        self.phases.lock().unwrap_or_else(|p| p.into_inner()).get(signal_id).copied()
    }

    /// Takes one message from the controller topic of `site`; the error says why it was not.
    pub fn accept(&self, site: &str, topic: &str, payload: &[u8]) -> Result<(String, SignalPhase), String> {
        let Some(Topic::SignalPhase { site: from, signal_id }) = topics::parse(topic) else {
            return Err(format!("{topic}: not a signal phase topic"));
        };
        if from != site {
            return Err(format!("{topic}: another site's signal"));
        }
        let phase = serde_json::from_slice::<ControllerPhase>(payload)
            .map_err(|e| format!("{topic}: expected {{\"phase\": \"red\"|\"amber\"|\"green\"|\"unknown\"}}: {e}"))?
            .phase;
        self.phases.lock().unwrap_or_else(|p| p.into_inner()).insert(signal_id.to_owned(), phase);
        Ok((signal_id.to_owned(), phase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_its_sites_phases_and_names_what_it_refuses() {
        let board = SignalBoard::default();
        assert_eq!(board.accept("s", &topics::signal_phase("s", "main"), br#"{"phase":"red"}"#), Ok(("main".into(), SignalPhase::Red)));
        assert_eq!(board.get("main"), Some(SignalPhase::Red));
        assert!(board.accept("s", &topics::signal_phase("t", "main"), br#"{"phase":"green"}"#).unwrap_err().contains("another site"));
        assert!(board.accept("s", &topics::signal_phase("s", "main"), br#"{"phase":"blue"}"#).unwrap_err().contains("expected"));
        assert_eq!(board.get("main"), Some(SignalPhase::Red), "refused messages change nothing");
    }
}
