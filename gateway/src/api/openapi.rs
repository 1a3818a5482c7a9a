//! The OpenAPI 3.1 document of the JSON API, served at `/api/v1/openapi.json`. Records and
//! trace messages follow the proto3 JSON mapping of `proto/tracenet/v1/*.proto` (field names as
//! in the .proto files, enumerations by name), so their schemas here are deliberately open
//! objects pointing at those files rather than a second copy that could drift.

use serde_json::{Value, json};

fn op(summary: &str, role: &str, body: Option<&str>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "description": format!("Requires a token with the {role} role."),
        "security": [{"bearer": []}],
        "responses": {
            ok: {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"$ref": "#/components/responses/Problem"},
            "401": {"$ref": "#/components/responses/Problem"},
            "403": {"$ref": "#/components/responses/Problem"},
            "404": {"$ref": "#/components/responses/Problem"},
            "409": {"$ref": "#/components/responses/Problem"},
            "413": {"$ref": "#/components/responses/Problem"},
            "422": {"$ref": "#/components/responses/Problem"},
            "503": {"$ref": "#/components/responses/Problem"}
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
        });
    }
    o
}

fn param(name: &str, place: &str, description: &str) -> Value {
    json!({"name": name, "in": place, "required": place == "path", "description": description, "schema": {"type": "string"}})
}

fn paging() -> Vec<Value> {
    vec![
        json!({"name": "page_size", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 200}}),
        param(
            "page_token",
            "query",
            "The next_page_token of the previous page.",
        ),
    ]
}

/// The document.
pub fn document() -> Value {
    let mut list = op(
        "List this node's records",
        "officer or tracing_officer",
        None,
        "200",
    );
    let mut p = paging();
    p.push(param("order", "query", "oldest (default) or newest"));
    list["parameters"] = json!(p);
    let mut search = op(
        "Search this node's records by serial number",
        "officer or tracing_officer",
        None,
        "200",
    );
    search["parameters"] = json!([
        param("serial", "query", "The serial number"),
        param("match", "query", "exact or normalised (default)")
    ]);
    let mut traces = op("List trace requests", "tracing_officer", None, "200");
    let mut tp = paging();
    tp.push(param(
        "direction",
        "query",
        "outgoing, incoming, or empty for both",
    ));
    traces["parameters"] = json!(tp);
    let mut audit = op(
        "The node's audit entries, oldest first",
        "administrator",
        None,
        "200",
    );
    let mut ap = paging();
    ap.push(param("kind", "query", "Only entries of this kind"));
    ap.push(param("peer", "query", "Only entries with this peer"));
    audit["parameters"] = json!(ap);
    let id = json!([param("id", "path", "The record or request id")]);
    let with_id = |mut v: Value| {
        v["parameters"] = id.clone();
        v
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tracenet gateway API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON API of a tracenet gateway for national systems. Records follow the proto3 JSON mapping of proto/tracenet/v1/records.proto (64-bit numbers as strings, fields at their default value omitted). Errors are application/problem+json. Lists return {items, next_page_token}; an empty token means the last page."
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token created by an administrator (Administration → API tokens)."}},
            "responses": {
                "Problem": {"description": "An error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            },
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "line": {"type": "integer"}, "reason": {"type": "string"}}}}
                }},
                "SeizureRecord": {"type": "object", "description": "tracenet.v1.SeizureRecord in the proto3 JSON mapping.", "additionalProperties": true},
                "RecordUpdate": {"type": "object", "required": ["record"], "properties": {"record": {"$ref": "#/components/schemas/SeizureRecord"}, "expected_revision": {"type": "integer", "description": "The revision last read; 0 skips the check."}}},
                "RecordBatch": {"type": "object", "required": ["records"], "description": "At most 5000 records, and at most 4 MiB (4194304 bytes) once encoded for the node; a larger batch is refused with 413 and nothing is written. Request bodies are limited to 16 MiB.", "properties": {"records": {"type": "array", "minItems": 1, "maxItems": 5000, "items": {"$ref": "#/components/schemas/SeizureRecord"}}}},
                "Lookup": {"type": "object", "required": ["serial_number", "purpose", "legal_basis"], "properties": {
                    "serial_number": {"type": "string"}, "manufacturer": {"type": "string"},
                    "purpose": {"type": "string", "enum": ["criminal_investigation", "tracing", "border_risk_analysis", "statistics"]},
                    "legal_basis": {"type": "string"}, "case_reference": {"type": "string"}}},
                "TraceRequest": {"type": "object", "description": "tracenet.v1.SendTraceRequestRequest in the proto3 JSON mapping.", "additionalProperties": true},
                "TraceAnswer": {"type": "object", "description": "tracenet.v1.AnswerTraceRequestRequest (outcome TRACE_STATUS_ANSWERED, _RESTRICTED or _DECLINED).", "additionalProperties": true},
                "Analysis": {"type": "object", "required": ["purpose", "legal_basis"], "properties": {
                    "filter": {"type": "object", "description": "tracenet.v1.RecordFilter"}, "purpose": {"type": "string"}, "legal_basis": {"type": "string"}}},
                "Preview": {"type": "object", "description": "tracenet.v1.PreviewDisclosureRequest", "additionalProperties": true}
            }
        },
        "paths": {
            "/records": {
                "get": list,
                "post": op("Record a seizure", "officer", Some("SeizureRecord"), "201")
            },
            "/records/batch": {"post": op("Write a batch of records, all or none", "officer", Some("RecordBatch"), "200")},
            "/records/{id}": {
                "get": with_id(op("One record", "officer or tracing_officer", None, "200")),
                "put": with_id(op("Replace a record", "officer", Some("RecordUpdate"), "200"))
            },
            "/search": {"get": search},
            "/lookup": {"post": op("Hit/no-hit lookup across the federation", "officer or tracing_officer", Some("Lookup"), "200")},
            "/traces": {
                "get": traces,
                "post": op("Send a trace request", "tracing_officer", Some("TraceRequest"), "201")
            },
            "/traces/{id}": {"get": with_id(op("One trace request with its history", "tracing_officer", None, "200"))},
            "/traces/{id}/answer": {"post": with_id(op("Answer, restrict or decline an incoming trace request", "tracing_officer", Some("TraceAnswer"), "200"))},
            "/analysis": {"post": op("Route and concealment query across the federation (callers without the record-read role get only the analysis fields: date, route countries, transport mode, concealment method, weapon categories; each member answers at most `limit_per_member` records, and `limited_members` lists those that reached it)", "analyst", Some("Analysis"), "200")},
            "/directory/members": {"get": op("Members and their contact points", "any", None, "200")},
            "/audit": {"get": audit},
            "/policy/preview": {"post": op("What a member would receive of a record for a purpose", "administrator", Some("Preview"), "200")}
        }
    })
}
