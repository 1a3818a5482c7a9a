//! The gateway's operational metrics: HTTP requests per route template, method and status with
//! latency histograms, served in the Prometheus text format with `/healthz` and `/readyz` on a
//! listener of their own (`[metrics] listen`, plain HTTP, loopback by default), never on the
//! console's listener.
//!
//! Routes are labelled by their template (`/records/{id}`), never by the path as sent, so no
//! record id, user name or query reaches a label; a path no route matches is `unmatched`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The gateway's metrics, in a registry of their own (tests run several gateways per process).
#[derive(Debug)]
pub struct GatewayMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl GatewayMetrics {
    /// A fresh set of metrics.
    pub fn new() -> Result<GatewayMetrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tracenet_gateway_http_requests_total",
                "HTTP requests served, by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tracenet_gateway_http_request_duration_seconds",
                "Time until the response headers, by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(GatewayMetrics {
            registry,
            requests,
            latency,
        })
    }

    /// Counts one request.
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The method label: the standard methods by name, anything else `other` (bounded).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts each request under its route template.
pub async fn count(
    State(metrics): State<Arc<GatewayMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.observe(&route, method, resp.status().as_u16(), started.elapsed());
    resp
}

/// The scrape endpoints: `/metrics`, `/healthz`, `/readyz` (ready while the gateway serves).
pub fn router(metrics: Arc<GatewayMetrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<GatewayMetrics>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m.render(),
                )
                    .into_response()
            }),
        )
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(|| async { (StatusCode::OK, "ready\n") }))
        .with_state(metrics)
}

/// Serves the scrape endpoints on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<GatewayMetrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        raw
    }

    #[tokio::test]
    async fn counts_requests_by_route_template_and_serves_them() {
        let metrics = Arc::new(GatewayMetrics::new().unwrap());
        let app = Router::new()
            .route("/records/{id}", get(|| async { "record" }))
            .layer(axum::middleware::from_fn_with_state(metrics.clone(), count));
        let site = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let site_addr = site.local_addr().unwrap();
        let scrape = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scrape_addr = scrape.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(site, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
        });
        tokio::spawn(serve(scrape, metrics, stop.clone()));

        assert!(
            get_raw(site_addr, "/records/SECRET-ID-1")
                .await
                .contains(" 200 ")
        );
        assert!(get_raw(site_addr, "/nothing/here").await.contains(" 404 "));
        let text = get_raw(scrape_addr, "/metrics").await;
        assert!(
            text.contains(r#"tracenet_gateway_http_requests_total{method="GET",route="/records/{id}",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tracenet_gateway_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(!text.contains("SECRET-ID-1"), "a path reached a label");
        assert!(get_raw(scrape_addr, "/readyz").await.contains(" 200 "));
        assert!(get_raw(scrape_addr, "/healthz").await.contains(" 200 "));
        stop.cancel();
    }
}
