//! The kinds of audit log entries, as one closed vocabulary. The log stores each kind as its
//! text ([`EventKind::as_str`]) and people and tools filter on that text, so the spellings here
//! are part of the stored format: never rename one, only add.

use std::fmt;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A peer's lookup, query, or trace request arrived (before anything is answered).
    RequestReceived,
    /// Records (or a trace result) were disclosed to a peer, with the policy rule that allowed it.
    Disclosure,
    /// Matching records were withheld: no policy rule shares them with the requester.
    Denial,
    /// A peer's request was refused before it was read (bad, stale or replayed signed context).
    Refusal,
    /// A delivery went out from the outbox, or one came in from a peer.
    Delivery,
    /// This node sent a federated lookup or query to its peers.
    RequestSent,
    /// This node sent a trace request.
    TraceRequestSent,
    /// This node restricted or declined a trace request (an answer is a disclosure).
    TraceResponse,
    /// This node withdrew one of its records and notified the peers that received it.
    Retraction,
    /// A peer's retraction was applied to the copy held here.
    RetractionApplied,
    /// A received record was passed on to another node.
    OnwardTransmission,
    /// A received copy deleted because its owner's retention period ended.
    RetentionPurge,
    /// A hub carried a sealed message (routing metadata only: sender, recipient, kind, size).
    Relayed,
    /// An officer put a value on the watch list or took one off.
    WatchChange,
    /// A watched value had a new hit at a peer: an alert was raised.
    WatchAlert,
}

impl EventKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: [EventKind; 15] = [
        EventKind::RequestReceived,
        EventKind::Disclosure,
        EventKind::Denial,
        EventKind::Refusal,
        EventKind::Delivery,
        EventKind::RequestSent,
        EventKind::TraceRequestSent,
        EventKind::TraceResponse,
        EventKind::Retraction,
        EventKind::RetractionApplied,
        EventKind::OnwardTransmission,
        EventKind::RetentionPurge,
        EventKind::Relayed,
        EventKind::WatchChange,
        EventKind::WatchAlert,
    ];

    /// The stored and displayed spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::RequestReceived => "request_received",
            EventKind::Disclosure => "disclosure",
            EventKind::Denial => "denial",
            EventKind::Refusal => "refusal",
            EventKind::Delivery => "delivery",
            EventKind::RequestSent => "request_sent",
            EventKind::TraceRequestSent => "trace_request_sent",
            EventKind::TraceResponse => "trace_response",
            EventKind::Retraction => "retraction",
            EventKind::RetractionApplied => "retraction_applied",
            EventKind::OnwardTransmission => "onward_transmission",
            EventKind::RetentionPurge => "retention_purge",
            EventKind::Relayed => "relayed",
            EventKind::WatchChange => "watch_change",
            EventKind::WatchAlert => "watch_alert",
        }
    }

    /// The kind spelled `s`, if any.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_distinct_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            assert!(seen.insert(k.as_str()), "{k:?} spelled twice");
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("Disclosure"), None);
    }

    #[test]
    fn stored_spellings_never_change() {
        // These strings are in every node's audit log; changing one orphans old entries.
        let stored: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            stored,
            [
                "request_received",
                "disclosure",
                "denial",
                "refusal",
                "delivery",
                "request_sent",
                "trace_request_sent",
                "trace_response",
                "retraction",
                "retraction_applied",
                "onward_transmission",
                "retention_purge",
                "relayed",
                "watch_change",
                "watch_alert",
            ]
        );
    }
}
