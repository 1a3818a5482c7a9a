//! Operational metrics of one node, in the Prometheus text format, and the small plain-HTTP
//! listener that serves them (`GET /metrics`, `/healthz`, `/readyz`; `[metrics] listen`).
//!
//! Counters move where things happen (each gRPC call in [`crate::routes`], each disclosure and
//! denial when its audit entry is written); gauges (outbox, directory, store, audit) are read
//! when scraped, by a sampler the server supplies, so this module depends on nothing else of the
//! node. Metrics are per node, not process-global, because tests run several nodes in one
//! process.
//!
//! Labels carry only method names (from a fixed list, so a caller cannot invent label values),
//! gRPC codes, peer node ids and policy rule ids: never request fields or key material.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Every gRPC method the node serves, by path. A path not listed is counted as `unknown`.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/tracenet.v1.PeerExchange/Ping",
    "/tracenet.v1.PeerExchange/Lookup",
    "/tracenet.v1.PeerExchange/QueryRecords",
    "/tracenet.v1.PeerExchange/SubmitTraceRequest",
    "/tracenet.v1.PeerExchange/SubmitTraceResponse",
    "/tracenet.v1.PeerExchange/SubmitTraceInformation",
    "/tracenet.v1.PeerExchange/Retract",
    "/tracenet.v1.PeerExchange/ShareForwarded",
    "/tracenet.v1.PeerExchange/StatisticsTables",
    "/tracenet.v1.PeerExchange/AggregateStatistics",
    "/tracenet.v1.DirectoryRaft/AppendEntries",
    "/tracenet.v1.DirectoryRaft/Vote",
    "/tracenet.v1.DirectoryRaft/InstallSnapshot",
    "/tracenet.v1.DirectoryRaft/Propose",
    "/tracenet.v1.DirectoryRaft/ReadIndex",
    "/tracenet.v1.DirectoryRaft/StateDigest",
    "/tracenet.v1.NodeApi/GetNodeInfo",
    "/tracenet.v1.NodeApi/CreateRecord",
    "/tracenet.v1.NodeApi/GetRecord",
    "/tracenet.v1.NodeApi/UpdateRecord",
    "/tracenet.v1.NodeApi/ListRecords",
    "/tracenet.v1.NodeApi/SearchBySerial",
    "/tracenet.v1.NodeApi/ImportBatch",
    "/tracenet.v1.NodeApi/CheckPeer",
    "/tracenet.v1.NodeApi/FederatedLookup",
    "/tracenet.v1.NodeApi/FederatedQuery",
    "/tracenet.v1.NodeApi/ListAudit",
    "/tracenet.v1.NodeApi/SendTraceRequest",
    "/tracenet.v1.NodeApi/AnswerTraceRequest",
    "/tracenet.v1.NodeApi/ListTraceRequests",
    "/tracenet.v1.NodeApi/ProvideTraceInformation",
    "/tracenet.v1.NodeApi/AddWatch",
    "/tracenet.v1.NodeApi/ListWatches",
    "/tracenet.v1.NodeApi/RemoveWatch",
    "/tracenet.v1.NodeApi/ListWatchAlerts",
    "/tracenet.v1.NodeApi/AcknowledgeWatchAlert",
    "/tracenet.v1.NodeApi/RetractRecord",
    "/tracenet.v1.NodeApi/ListReceived",
    "/tracenet.v1.NodeApi/ListOutbox",
    "/tracenet.v1.NodeApi/ForwardReceived",
    "/tracenet.v1.NodeApi/GetDirectory",
    "/tracenet.v1.NodeApi/ProposeDirectory",
    "/tracenet.v1.NodeApi/PreviewDisclosure",
    "/tracenet.v1.NodeApi/StatisticsTables",
    "/tracenet.v1.NodeApi/AssistanceBoard",
];

/// The method label for a request path: `Service/Method` if the node serves it, else `unknown`.
pub fn method_label(path: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == path)
        .map_or("unknown", |m| m.trim_start_matches('/'))
}

/// The gRPC code name for a `grpc-status` value (`OK` when absent: a unary success carries its
/// status in the trailers, an error in the headers).
pub fn code_label(grpc_status: Option<&[u8]>) -> &'static str {
    let code = match grpc_status {
        None => return "OK",
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .unwrap_or(2),
    };
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What a scrape reads from the node at that moment (filled by the server's sampler).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Outbox items still to deliver.
    pub outbox_depth: u64,
    /// Seconds since the oldest pending outbox item was queued (0 when empty).
    pub outbox_oldest_age_secs: u64,
    /// Trace requests this node sent that are past their due date and not answered.
    pub overdue_outgoing: u64,
    /// Trace requests this node received that are past their due date and not answered.
    pub overdue_incoming: u64,
    /// Sequence number of the last audit entry.
    pub audit_entries: u64,
    /// Records in the store.
    pub store_records: u64,
    /// The directory replica, if the node runs one.
    pub directory: Option<DirectorySample>,
}

/// The directory replica's Raft state, as its metrics watch reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectorySample {
    /// Current term.
    pub term: u64,
    /// The leader's node id, if one is known.
    pub leader: Option<String>,
    /// Highest index in this replica's log (0 if none). openraft 0.9 does not report the commit
    /// index in its metrics; applied trails commit only briefly, so the two bound it.
    pub last_log_index: u64,
    /// Highest log index applied (0 if none).
    pub applied_index: u64,
}

/// The metrics of one node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    latency: HistogramVec,
    disclosures: IntCounterVec,
    denials: IntCounterVec,
    outbox_depth: IntGauge,
    outbox_oldest: IntGauge,
    overdue: IntGaugeVec,
    audit_entries: IntGauge,
    store_records: IntGauge,
    dir_term: IntGauge,
    dir_leader: IntGaugeVec,
    dir_last_log: IntGauge,
    dir_applied: IntGauge,
    up: Gauge,
    ready: AtomicBool,
}

impl Metrics {
    /// A fresh set of metrics, registered in a registry of its own.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let calls = IntCounterVec::new(
            Opts::new(
                "tracenet_grpc_calls_total",
                "gRPC calls served, by listener, method and gRPC code",
            ),
            &["api", "method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tracenet_grpc_call_duration_seconds",
                "Time until the response headers of a gRPC call, by listener and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["api", "method"],
        )?;
        let disclosures = IntCounterVec::new(
            Opts::new(
                "tracenet_disclosures_total",
                "Records disclosed, by requesting peer and policy rule",
            ),
            &["peer", "rule"],
        )?;
        let denials = IntCounterVec::new(
            Opts::new(
                "tracenet_denials_total",
                "Denial audit entries (records withheld or requests refused), by requesting peer and rule",
            ),
            &["peer", "rule"],
        )?;
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let outbox_depth = gauge("tracenet_outbox_depth", "Outbox items still to deliver")?;
        let outbox_oldest = gauge(
            "tracenet_outbox_oldest_age_seconds",
            "Age of the oldest pending outbox item (0 when empty)",
        )?;
        let overdue = IntGaugeVec::new(
            Opts::new(
                "tracenet_traces_overdue",
                "Trace requests past their due date, by direction",
            ),
            &["direction"],
        )?;
        let audit_entries = gauge("tracenet_audit_entries", "Entries in the audit log")?;
        let store_records = gauge("tracenet_store_records", "Records in the store")?;
        let dir_term = gauge(
            "tracenet_directory_term",
            "Raft term of the directory replica",
        )?;
        let dir_leader = IntGaugeVec::new(
            Opts::new(
                "tracenet_directory_leader",
                "1 for the directory leader this replica knows",
            ),
            &["node"],
        )?;
        let dir_last_log = gauge(
            "tracenet_directory_last_log_index",
            "Highest Raft log index held by this replica",
        )?;
        let dir_applied = gauge(
            "tracenet_directory_applied_index",
            "Highest applied Raft log index",
        )?;
        let up = Gauge::new("tracenet_up", "1 while the node serves")?;
        for c in [
            Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(disclosures.clone()),
            Box::new(denials.clone()),
            Box::new(outbox_depth.clone()),
            Box::new(outbox_oldest.clone()),
            Box::new(overdue.clone()),
            Box::new(audit_entries.clone()),
            Box::new(store_records.clone()),
            Box::new(dir_term.clone()),
            Box::new(dir_leader.clone()),
            Box::new(dir_last_log.clone()),
            Box::new(dir_applied.clone()),
            Box::new(up.clone()),
        ] {
            registry.register(c)?;
        }
        up.set(1.0);
        Ok(Metrics {
            registry,
            calls,
            latency,
            disclosures,
            denials,
            outbox_depth,
            outbox_oldest,
            overdue,
            audit_entries,
            store_records,
            dir_term,
            dir_leader,
            dir_last_log,
            dir_applied,
            up,
            ready: AtomicBool::new(false),
        })
    }

    /// Counts one gRPC call on listener `api` (`peer` or `local`) for request path `path`.
    pub fn observe_call(&self, api: &str, path: &str, code: &str, elapsed: Duration) {
        let method = method_label(path);
        self.calls.with_label_values(&[api, method, code]).inc();
        self.latency
            .with_label_values(&[api, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an audited disclosure to `peer` under policy rule `rule`.
    pub fn disclosure(&self, peer: &str, rule: &str) {
        self.disclosures
            .with_label_values(&[peer, or_none(rule)])
            .inc();
    }

    /// Counts an audited denial to `peer` (under `rule`, usually none).
    pub fn denial(&self, peer: &str, rule: &str) {
        self.denials.with_label_values(&[peer, or_none(rule)]).inc();
    }

    /// Marks the node ready (both listeners serving) or not (stopping, or the directory replica
    /// diverged).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Sets the gauges from a sample and renders everything in the Prometheus text format.
    pub fn render(&self, sample: &Sample) -> String {
        let gauge = |g: &IntGauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.outbox_depth, sample.outbox_depth);
        gauge(&self.outbox_oldest, sample.outbox_oldest_age_secs);
        gauge(
            &self.overdue.with_label_values(&["outgoing"]),
            sample.overdue_outgoing,
        );
        gauge(
            &self.overdue.with_label_values(&["incoming"]),
            sample.overdue_incoming,
        );
        gauge(&self.audit_entries, sample.audit_entries);
        gauge(&self.store_records, sample.store_records);
        self.dir_leader.reset();
        if let Some(d) = &sample.directory {
            gauge(&self.dir_term, d.term);
            gauge(&self.dir_last_log, d.last_log_index);
            gauge(&self.dir_applied, d.applied_index);
            if let Some(leader) = &d.leader {
                self.dir_leader.with_label_values(&[leader.as_str()]).set(1);
            }
        }
        self.up.set(1.0);
        let mut out = Vec::new();
        // Encoding into memory fails only on invalid metric families, which `new` rules out.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn or_none(rule: &str) -> &str {
    if rule.is_empty() { "none" } else { rule }
}

/// Reads the node's state for one scrape (runs on the blocking pool: it reads the store).
pub type Sampler = Arc<dyn Fn() -> Sample + Send + Sync>;

/// The longest request head the scrape listener reads.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client gets to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    sampler: Sampler,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics listener accept failed");
                    // Back off a little on e.g. too many open files.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (metrics, sampler) = (metrics.clone(), sampler.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, metrics, sampler).await {
                tracing::debug!(error = %e, "metrics request failed");
            }
        });
    }
}

/// What to answer a request line with: status line, content type, body.
#[derive(Debug, PartialEq)]
enum Reply {
    Metrics,
    Text(&'static str, &'static str),
}

/// Routes one request head (pure).
fn route(head: &str, ready: bool) -> Reply {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return Reply::Text("405 Method Not Allowed", "method not allowed\n");
    }
    match path {
        "/metrics" => Reply::Metrics,
        "/healthz" => Reply::Text("200 OK", "ok\n"),
        "/readyz" if ready => Reply::Text("200 OK", "ready\n"),
        "/readyz" => Reply::Text("503 Service Unavailable", "not ready\n"),
        _ => Reply::Text("404 Not Found", "not found\n"),
    }
}

async fn answer(
    mut stream: TcpStream,
    metrics: Arc<Metrics>,
    sampler: Sampler,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let head = String::from_utf8_lossy(&head);
    let (status, content_type, body) = match route(&head, metrics.is_ready()) {
        Reply::Metrics => {
            let m = metrics.clone();
            let body = tokio::task::spawn_blocking(move || m.render(&sampler()))
                .await
                .unwrap_or_default();
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
        }
        Reply::Text(status, body) => (status, "text/plain; charset=utf-8", body.to_owned()),
    };
    let head_only = head.starts_with("HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn method_list_is_every_rpc_in_the_contracts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/tracenet/v1");
        let mut found = Vec::new();
        for file in ["peer.proto", "local.proto", "directory.proto"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut service = "";
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("service ") {
                    service = rest.split_whitespace().next().unwrap();
                } else if let Some(rest) = line.strip_prefix("rpc ") {
                    let name = rest.split('(').next().unwrap().trim();
                    found.push(format!("/tracenet.v1.{service}/{name}"));
                }
            }
        }
        let listed: Vec<String> = METHODS
            .iter()
            .filter(|m| m.starts_with("/tracenet."))
            .map(|m| m.to_string())
            .collect();
        found.sort();
        let mut listed_sorted = listed.clone();
        listed_sorted.sort();
        assert_eq!(found, listed_sorted);
    }

    #[test]
    fn unknown_paths_and_codes_get_bounded_labels() {
        assert_eq!(
            method_label("/tracenet.v1.PeerExchange/Lookup"),
            "tracenet.v1.PeerExchange/Lookup"
        );
        assert_eq!(
            method_label("/tracenet.v1.PeerExchange/Anything"),
            "unknown"
        );
        assert_eq!(method_label("/x"), "unknown");
        assert_eq!(code_label(None), "OK");
        assert_eq!(code_label(Some(b"7")), "PERMISSION_DENIED");
        assert_eq!(code_label(Some(b"junk")), "UNKNOWN");
        assert_eq!(code_label(Some(b"99")), "UNKNOWN");
    }

    #[test]
    fn routes_the_three_paths() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\n\r\n", false),
            Reply::Metrics
        );
        assert_eq!(
            route("GET /healthz HTTP/1.1\r\n\r\n", false),
            Reply::Text("200 OK", "ok\n")
        );
        assert_eq!(
            route("GET /readyz HTTP/1.1\r\n\r\n", true),
            Reply::Text("200 OK", "ready\n")
        );
        assert!(matches!(
            route("GET /readyz HTTP/1.1\r\n\r\n", false),
            Reply::Text("503 Service Unavailable", _)
        ));
        assert!(
            matches!(route("POST /metrics HTTP/1.1\r\n\r\n", true), Reply::Text(s, _) if s.starts_with("405"))
        );
        assert!(
            matches!(route("GET /other HTTP/1.1\r\n\r\n", true), Reply::Text(s, _) if s.starts_with("404"))
        );
        assert!(matches!(route("", true), Reply::Text(s, _) if s.starts_with("405")));
    }

    #[test]
    fn renders_counters_and_sampled_gauges() {
        let m = Metrics::new().unwrap();
        m.observe_call(
            "peer",
            "/tracenet.v1.PeerExchange/Lookup",
            "OK",
            Duration::from_millis(3),
        );
        m.disclosure("FRA-POL", "share-all");
        m.denial("FRA-POL", "");
        let text = m.render(&Sample {
            outbox_depth: 2,
            directory: Some(DirectorySample {
                term: 3,
                leader: Some("BEL-POL".into()),
                last_log_index: 7,
                applied_index: 7,
            }),
            ..Sample::default()
        });
        for line in [
            "tracenet_grpc_calls_total{api=\"peer\",code=\"OK\",method=\"tracenet.v1.PeerExchange/Lookup\"} 1",
            "tracenet_disclosures_total{peer=\"FRA-POL\",rule=\"share-all\"} 1",
            "tracenet_denials_total{peer=\"FRA-POL\",rule=\"none\"} 1",
            "tracenet_outbox_depth 2",
            "tracenet_directory_term 3",
            "tracenet_directory_leader{node=\"BEL-POL\"} 1",
            "tracenet_directory_applied_index 7",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.contains("tracenet_grpc_call_duration_seconds_bucket{api=\"peer\""));
    }
}
