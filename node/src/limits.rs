//! Bounds on what peers send, checked at the peer edge before anything is stored or audited.
//!
//! The listener's message limit (4 MiB) bounds a message, not what a node keeps: a peer could
//! otherwise store megabytes of `reason` per trace request, forever, and break every list that
//! shows them. So every text field a peer delivers is bounded like the local send path bounds
//! it (short fields 200 characters, free text 2000, ids 128 bytes), repeated fields by count,
//! and nested records by encoded size. Pure; every problem is reported at once.

use prost::Message;
use tracenet_proto::v1 as pb;

use crate::model::FieldError;

/// Characters of a short field (names, references, serial numbers, legal basis).
pub const MAX_SHORT: usize = 200;
/// Characters of a free-text field (reason, remarks, details).
pub const MAX_LONG: usize = 2000;
/// Bytes of an id (request ids, record references, node ids).
pub const MAX_ID: usize = 128;
/// Links in a trace response's chain of custody.
pub const MAX_CUSTODY_LINKS: usize = 100;
/// Other markings on one firearm.
pub const MAX_MARKINGS: usize = 50;
/// Items in one trace request (firearms, ammunition lots, parts), and in one information message.
pub const MAX_TRACE_ITEMS: usize = 50;
/// Encoded bytes of one trace item: whatever fields ammunition and parts grow, an item stays
/// small.
pub const MAX_ITEM_BYTES: usize = 8 * 1024;
/// Messages a responder sends on one request (interim and final), and information messages a
/// requester sends.
pub const MAX_TRACE_MESSAGES: u32 = 50;
/// Encoded bytes of a record passed on by a peer (a policy view of one seizure record).
pub const MAX_FORWARDED_BYTES: usize = 256 * 1024;

/// What a peer sent is out of bounds. Not retryable as is: the same content is refused again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) out of bounds", .0.len())]
pub struct LimitError(pub Vec<FieldError>);

#[derive(Default)]
struct Check(Vec<FieldError>);

impl Check {
    fn fail(&mut self, field: &str, reason: String) {
        self.0.push(FieldError {
            field: field.to_owned(),
            reason,
        });
    }

    /// At most `max` characters, no control characters but line breaks.
    fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().nth(max).is_some() {
            self.fail(field, format!("is longer than {max} characters"));
        } else if value.chars().any(|c| c.is_control() && c != '\n') {
            self.fail(field, "has control characters".into());
        }
    }

    fn id(&mut self, field: &str, value: &str) {
        if value.len() > MAX_ID {
            self.fail(field, format!("is longer than {MAX_ID} bytes"));
        }
    }

    fn count(&mut self, field: &str, n: usize, max: usize) {
        if n > max {
            self.fail(field, format!("has more than {max} entries"));
        }
    }

    fn done(self) -> Result<(), LimitError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(LimitError(self.0))
        }
    }

    fn firearm(&mut self, prefix: &str, f: &pb::FirearmIdentification) {
        let p = |n: &str| format!("{prefix}.{n}");
        for (name, value) in [
            ("serial_number", &f.serial_number),
            ("manufacturer", &f.manufacturer),
            ("country_of_manufacture", &f.country_of_manufacture),
            ("model", &f.model),
            ("calibre", &f.calibre),
        ] {
            self.text(&p(name), value, MAX_SHORT);
        }
        if let Some(m) = &f.import_marking {
            self.text(&p("import_marking.country"), &m.country, MAX_SHORT);
        }
        self.count(&p("other_markings"), f.other_markings.len(), MAX_MARKINGS);
        for (i, m) in f.other_markings.iter().take(MAX_MARKINGS).enumerate() {
            self.text(&p(&format!("other_markings[{i}].text")), &m.text, MAX_SHORT);
            self.text(
                &p(&format!("other_markings[{i}].location")),
                &m.location,
                MAX_SHORT,
            );
        }
    }

    fn items(&mut self, prefix: &str, items: &[pb::TraceItem]) {
        self.count(prefix, items.len(), MAX_TRACE_ITEMS);
        for (i, item) in items.iter().take(MAX_TRACE_ITEMS).enumerate() {
            let p = format!("{prefix}[{i}]");
            if item.encoded_len() > MAX_ITEM_BYTES {
                self.fail(&p, format!("is larger than {MAX_ITEM_BYTES} bytes"));
                continue;
            }
            match &item.item {
                Some(pb::trace_item::Item::Firearm(f)) => self.firearm(&format!("{p}.firearm"), f),
                Some(pb::trace_item::Item::Ammunition(a)) => {
                    self.text(&format!("{p}.ammunition.calibre"), &a.calibre, MAX_SHORT);
                    self.text(
                        &format!("{p}.ammunition.manufacturer"),
                        &a.manufacturer,
                        MAX_SHORT,
                    );
                }
                Some(pb::trace_item::Item::Part(part)) => {
                    self.text(&format!("{p}.part.kind"), &part.kind, MAX_SHORT);
                    self.text(
                        &format!("{p}.part.serial_number"),
                        &part.serial_number,
                        MAX_SHORT,
                    );
                }
                None => self.fail(&p, "is empty".into()),
            }
        }
    }

    fn handling(&mut self, prefix: &str, h: &pb::Handling) {
        self.text(
            &format!("{prefix}.other_restrictions"),
            &h.other_restrictions,
            MAX_LONG,
        );
        self.text(&format!("{prefix}.legal_basis"), &h.legal_basis, MAX_SHORT);
    }
}

/// A trace request delivered by a peer.
pub fn trace_request(req: &pb::TraceRequest) -> Result<(), LimitError> {
    let mut c = Check::default();
    c.id("id", &req.id);
    c.id("requester_node", &req.requester_node);
    c.text("requested_country", &req.requested_country, MAX_SHORT);
    if let Some(f) = &req.firearm {
        c.firearm("firearm", f);
    }
    c.items("items", &req.items);
    c.id("follows_on", &req.follows_on);
    c.text("reason", &req.reason, MAX_LONG);
    c.text("legal_basis", &req.legal_basis, MAX_SHORT);
    c.text("case_reference", &req.case_reference, MAX_SHORT);
    c.done()
}

/// A trace response delivered by a peer.
pub fn trace_response(resp: &pb::TraceResponse) -> Result<(), LimitError> {
    let mut c = Check::default();
    c.id("request_id", &resp.request_id);
    c.id("responder_node", &resp.responder_node);
    c.text("remarks", &resp.remarks, MAX_LONG);
    c.text("next_country", &resp.next_country, MAX_SHORT);
    if resp.part > MAX_TRACE_MESSAGES {
        c.fail("part", format!("is above {MAX_TRACE_MESSAGES}"));
    }
    c.count(
        "chain_of_custody",
        resp.chain_of_custody.len(),
        MAX_CUSTODY_LINKS,
    );
    for (i, l) in resp
        .chain_of_custody
        .iter()
        .take(MAX_CUSTODY_LINKS)
        .enumerate()
    {
        let p = |n: &str| format!("chain_of_custody[{i}].{n}");
        c.text(&p("role"), &l.role, MAX_SHORT);
        c.text(&p("name"), &l.name, MAX_SHORT);
        c.text(&p("country"), &l.country, MAX_SHORT);
        c.text(&p("date"), &l.date, MAX_SHORT);
        c.text(&p("details"), &l.details, MAX_LONG);
    }
    if let Some(h) = &resp.handling {
        c.handling("handling", h);
    }
    c.done()
}

/// More information for a trace request, delivered by its requester.
pub fn trace_information(info: &pb::TraceInformation) -> Result<(), LimitError> {
    let mut c = Check::default();
    c.id("request_id", &info.request_id);
    c.id("requester_node", &info.requester_node);
    c.text("text", &info.text, MAX_LONG);
    if info.part == 0 || info.part > MAX_TRACE_MESSAGES {
        c.fail("part", format!("must be 1 to {MAX_TRACE_MESSAGES}"));
    }
    c.items("items", &info.items);
    c.done()
}

/// A record reference (a retraction, or the reference of a passed-on record).
pub fn record_ref(field: &str, r: &pb::RecordRef) -> Result<(), LimitError> {
    let mut c = Check::default();
    c.id(&format!("{field}.owner_node"), &r.owner_node);
    c.id(&format!("{field}.reference"), &r.reference);
    c.done()
}

/// A record a peer passes on: its reference, handling and rule bounded, the record by size.
pub fn forwarded(copy: &pb::ReceivedRecord) -> Result<(), LimitError> {
    let mut c = Check::default();
    if let Some(r) = &copy.reference {
        c.id("record.reference.owner_node", &r.owner_node);
        c.id("record.reference.reference", &r.reference);
    }
    if let Some(h) = &copy.handling {
        c.handling("record.handling", h);
    }
    c.text("record.policy_rule", &copy.policy_rule, MAX_SHORT);
    c.id("record.request_id", &copy.request_id);
    if copy.record.as_ref().map_or(0, Message::encoded_len) > MAX_FORWARDED_BYTES {
        c.fail(
            "record.record",
            format!("is larger than {MAX_FORWARDED_BYTES} bytes"),
        );
    }
    c.done()
}

/// The search terms of a peer's lookup.
pub fn lookup(serial_number: &str, manufacturer: &str) -> Result<(), LimitError> {
    let mut c = Check::default();
    c.text("serial_number", serial_number, MAX_SHORT);
    c.text("manufacturer", manufacturer, MAX_SHORT);
    c.done()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fields(e: LimitError) -> Vec<String> {
        e.0.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_trace_request_within_bounds_passes_and_every_excess_is_named() {
        let ok = pb::TraceRequest {
            id: "r1".into(),
            requester_node: "DEU-CUS".into(),
            requested_country: "FRA".into(),
            reason: "é".repeat(MAX_LONG),
            legal_basis: "x".repeat(MAX_SHORT),
            firearm: Some(pb::FirearmIdentification {
                serial_number: "AB1234".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        trace_request(&ok).unwrap();
        let bad = pb::TraceRequest {
            id: "i".repeat(MAX_ID + 1),
            reason: "x".repeat(2_500_000),
            case_reference: "a\u{0}b".into(),
            firearm: Some(pb::FirearmIdentification {
                model: "m".repeat(MAX_SHORT + 1),
                other_markings: vec![pb::Marking::default(); MAX_MARKINGS + 1],
                ..Default::default()
            }),
            ..ok
        };
        assert_eq!(
            fields(trace_request(&bad).unwrap_err()),
            [
                "id",
                "firearm.model",
                "firearm.other_markings",
                "reason",
                "case_reference"
            ]
        );
    }

    #[test]
    fn responses_references_forwarded_records_and_lookups_are_bounded() {
        let resp = pb::TraceResponse {
            remarks: "r".repeat(MAX_LONG + 1),
            chain_of_custody: vec![
                pb::CustodyLink {
                    details: "d".repeat(MAX_LONG + 1),
                    ..Default::default()
                };
                MAX_CUSTODY_LINKS + 1
            ],
            ..Default::default()
        };
        let f = fields(trace_response(&resp).unwrap_err());
        assert_eq!(f[0], "remarks");
        assert_eq!(f[1], "chain_of_custody");
        assert_eq!(f.len(), 2 + MAX_CUSTODY_LINKS, "each link at most once");
        assert!(
            record_ref(
                "reference",
                &pb::RecordRef {
                    owner_node: "x".repeat(129),
                    reference: "r".into()
                }
            )
            .is_err()
        );
        let big = pb::ReceivedRecord {
            record: Some(pb::SeizureRecord {
                notes: "n".repeat(MAX_FORWARDED_BYTES),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fields(forwarded(&big).unwrap_err()), ["record.record"]);
        lookup("AB-1234", "Acme").unwrap();
        assert!(lookup(&"*".repeat(MAX_SHORT + 1), "").is_err());
    }
}
