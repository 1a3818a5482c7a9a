//! The gateway's link to its node: one mutually authenticated gRPC channel to the node's local
//! API, made with the gateway's own certificate and checking that the server is the node named in
//! the configuration. Node statuses become [`GatewayError`]s here, once.

use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tracenet_proto::v1::node_api_client::NodeApiClient;

use crate::config::GatewayConfig;
use crate::error::{FieldProblem, GatewayError};

/// Why the node link cannot be set up. Not retryable without fixing the configuration.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{0}")]
    Pem(String),
    /// The node address is not usable.
    #[error("invalid node address '{0}'")]
    Address(String),
}

/// The largest status trailer the gateway reads from the node (every row problem of a batch).
pub const NODE_MAX_HEADER_LIST: u32 = 32 * 1024 * 1024;

/// A client of the node's local API (cheap to clone: clones share one HTTP/2 connection).
#[derive(Debug, Clone)]
pub struct NodeLink {
    client: NodeApiClient<Channel>,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, LinkError> {
    std::fs::read(path).map_err(|source| LinkError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl NodeLink {
    /// Reads and checks the certificates, and prepares a channel (connected on first use, and
    /// reconnected after the node restarts).
    pub fn new(cfg: &GatewayConfig) -> Result<NodeLink, LinkError> {
        let (ca, cert, key) = (
            read(&cfg.node.ca)?,
            read(&cfg.node.cert)?,
            read(&cfg.node.key)?,
        );
        for (what, pem) in [("node.ca", &ca), ("node.cert", &cert)] {
            let n = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LinkError::Pem(format!("{what}: {e}")))?
                .len();
            if n == 0 {
                return Err(LinkError::Pem(format!("{what} holds no certificate")));
            }
        }
        PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| LinkError::Pem(format!("node.key: {e}")))?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key))
            .domain_name(cfg.node_dns_name());
        let channel = Endpoint::from_shared(format!("https://{}", cfg.node.address))
            .map_err(|_| LinkError::Address(cfg.node.address.clone()))?
            .tls_config(tls)
            .map_err(|_| LinkError::Address(cfg.node.address.clone()))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            // The node lists every problem of a refused batch in the status trailer (5,000
            // records can carry a few MB of problems); the 16 KiB default turned such an answer
            // into a protocol error, shown as "node unavailable".
            .http2_max_header_list_size(NODE_MAX_HEADER_LIST)
            .connect_lazy();
        Ok(NodeLink {
            client: NodeApiClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
        })
    }

    /// A client for one call.
    pub fn api(&self) -> NodeApiClient<Channel> {
        self.client.clone()
    }
}

// Lives here, beside the node client, so that `error` depends on nothing above it.
impl From<tonic::Status> for GatewayError {
    fn from(s: tonic::Status) -> Self {
        from_status(s)
    }
}

/// Converts a node status into the gateway's error, keeping every field problem the node listed.
pub fn from_status(s: tonic::Status) -> GatewayError {
    use tonic::Code;
    match s.code() {
        Code::InvalidArgument => {
            // The standard details (google.rpc.Status with a BadRequest), as the node sends them.
            let problems: Vec<FieldProblem> = tracenet_proto::rpc::field_errors(s.details())
                .into_iter()
                .map(|e| FieldProblem {
                    field: e.field,
                    line: e.line,
                    reason: e.reason,
                })
                .collect();
            if problems.is_empty() {
                GatewayError::BadRequest(s.message().to_owned())
            } else {
                GatewayError::Invalid(problems)
            }
        }
        Code::NotFound => GatewayError::NotFound(s.message().to_owned()),
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => {
            GatewayError::Conflict(s.message().to_owned())
        }
        Code::OutOfRange if s.message().contains("message length too large") => {
            tracing::warn!(status = %s.message(), "node refused a message as too large");
            GatewayError::TooLarge(format!(
                "the node takes at most {} bytes per message; send less at once",
                crate::ops::NODE_MAX_MESSAGE
            ))
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
            tracing::warn!(status = %s.message(), "node unavailable");
            GatewayError::NodeUnavailable
        }
        _ => {
            tracing::error!(code = ?s.code(), status = %s.message(), "node call failed");
            GatewayError::Internal
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use prost::Message as _;
    use tracenet_proto::google::rpc::{BadRequest, Status, bad_request::FieldViolation};

    fn invalid(details: Vec<u8>) -> GatewayError {
        from_status(tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            "invalid",
            details.into(),
        ))
    }

    #[test]
    fn field_errors_are_read_from_the_standard_details() {
        // As the node sends them: line numbers kept.
        let node = tracenet_proto::rpc::field_error_details(
            3,
            "invalid",
            &[tracenet_proto::v1::RowError {
                line: 4,
                field: "event.date".into(),
                reason: "not a date".into(),
            }],
        );
        let GatewayError::Invalid(p) = invalid(node) else {
            panic!("field problems expected")
        };
        assert_eq!((p[0].field.as_str(), p[0].line), ("event.date", 4));

        // As any standard gRPC server sends them: a BadRequest alone.
        let standard = Status {
            code: 3,
            message: "invalid".into(),
            details: vec![prost_types::Any {
                type_url: tracenet_proto::rpc::BAD_REQUEST_TYPE.into(),
                value: BadRequest {
                    field_violations: vec![FieldViolation {
                        field: "reason".into(),
                        description: "is longer than 2000 characters".into(),
                    }],
                }
                .encode_to_vec(),
            }],
        }
        .encode_to_vec();
        let GatewayError::Invalid(p) = invalid(standard) else {
            panic!("field problems expected")
        };
        assert_eq!(p[0].field, "reason");

        // No details: the message alone.
        assert!(matches!(invalid(Vec::new()), GatewayError::BadRequest(_)));
    }
}
