//! Machine-readable stdout events: one JSON object per line, tagged by
//! `event`. `vilokanam daemon` prints [`OutputEvent::Ready`] once it
//! listens; `vilokanam publish` prints the rest as its stream goes. Logs go
//! to stderr, so stdout carries only these lines.

use serde::{Deserialize, Serialize};

/// A line on stdout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputEvent {
    /// The daemon listens on every address and serves its API.
    Ready {
        /// API address (`127.0.0.1:port`).
        api: String,
        /// libp2p peer id.
        peer_id: String,
        /// Creator key (hex).
        creator_key: String,
        /// Listen multiaddrs, with `/p2p/<peer id>`.
        listen: Vec<String>,
    },
    /// A stream started (or resumed after its encoder stopped).
    Started {
        /// Stream id.
        stream: String,
        /// Sequence number of its next segment.
        next_seq: u64,
    },
    /// A segment was published.
    Segment {
        /// Sequence number.
        seq: u64,
        /// Payload CID.
        cid: String,
        /// Payload size.
        size: usize,
    },
    /// The input went silent: what was complete was published and the
    /// stream announced as ended; it resumes when input comes back.
    Idle {
        /// Stream id.
        stream: String,
        /// How long the input had been silent (ms).
        silent_ms: u64,
    },
    /// The publisher stopped.
    Ended {
        /// Stream id.
        stream: String,
        /// Segments published by this run.
        segments: u64,
    },
}

impl OutputEvent {
    /// The JSON line (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a line; `None` for anything that is not an event.
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim()).ok()
    }

    /// Prints the event as one line on stdout.
    pub fn print(&self) {
        println!("{}", self.to_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_tagged_lines() {
        let e = OutputEvent::Ready {
            api: "127.0.0.1:1".into(),
            peer_id: "p".into(),
            creator_key: "00".into(),
            listen: vec!["/ip4/127.0.0.1/tcp/2/p2p/p".into()],
        };
        let line = e.to_line();
        assert!(line.starts_with(r#"{"event":"ready""#), "{line}");
        assert_eq!(OutputEvent::parse(&line), Some(e));
        assert_eq!(OutputEvent::parse("2026-01-01 INFO not json"), None);
        let s = OutputEvent::Segment {
            seq: 3,
            cid: "bafk".into(),
            size: 10,
        };
        assert_eq!(OutputEvent::parse(&s.to_line()), Some(s));
    }
}
