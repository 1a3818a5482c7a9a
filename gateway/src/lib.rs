//! The tracenet gateway: a web console for officers and analysts and a JSON API for national
//! systems, in front of exactly one node, which it reaches over the node's local API with its own
//! gateway certificate (mutual TLS).
//!
//! [`run`] serves a checked [`GatewayConfig`] on a bound listener until `shutdown` fires; `main`
//! only parses the command line. Layers, each depending only on those below it:
//!
//! - `web` (console pages) and `api` (JSON, problem+json): parse input, present output; errors
//!   become HTTP statuses there, once.
//! - `ops`: every operation once: capability check, node call, access log.
//! - `auth` (roles, passwords, throttling), `store` (users, sessions, tokens, access log),
//!   `node` (the local API client), `jobs` (bulk imports), `charts`, `i18n`.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod app;
pub mod auth;
pub mod charts;
pub mod cli;
pub mod config;
pub mod error;
pub mod i18n;
pub mod jobs;
pub mod metrics;
pub mod node;
pub mod ops;
pub mod store;
mod tls;
pub mod web;

pub use app::App;
pub use config::GatewayConfig;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    /// The node link (certificates, address) is unusable. Fix the configuration.
    #[error("node link: {0}")]
    Link(#[from] node::LinkError),
    /// The store could not be opened (locked by another process, unreadable). Retrying helps
    /// only once the other process stops or the disk is fixed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The HTTPS certificate or key is unusable. Fix the configuration.
    #[error("https: {0}")]
    Tls(String),
    /// The metrics registry could not be built.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the shared state from a checked configuration (opens the store, reads certificates).
pub fn build(cfg: GatewayConfig, clock: app::Clock) -> Result<Arc<App>, GatewayStartError> {
    let node = node::NodeLink::new(&cfg)?;
    let store = store::GatewayStore::open(&cfg.data_dir)?;
    Ok(Arc::new(App {
        throttle: Mutex::new(auth::throttle::Throttle::new(cfg.login.clone())),
        login_gate: auth::LoginGate::for_this_machine(),
        secure_cookies: cfg.tls.is_some(),
        jobs: jobs::Jobs::default(),
        node,
        store,
        clock,
        metrics: Arc::new(metrics::GatewayMetrics::new()?),
        cfg,
    }))
}

/// The strict headers every response carries: no inline script or style, nothing from another
/// origin, no framing, no sniffing, and no caching of pages that hold case data. Over HTTPS,
/// `Strict-Transport-Security` too.
async fn security_headers(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let static_asset = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await;
    add_security_headers(resp.headers_mut(), static_asset, app.secure_cookies);
    resp
}

/// Sets the security headers on a response (`https`: the gateway itself serves TLS).
fn add_security_headers(h: &mut HeaderMap, static_asset: bool, https: bool) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !static_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The address a request came from (the TCP peer: behind a proxy, the proxy's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The whole HTTP application: console, API, and the middleware around them.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(web::router())
        .layer(middleware::from_fn_with_state(
            app.clone(),
            web::session::csrf_guard,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            security_headers,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(80 * 1024 * 1024))
        .layer(middleware::from_fn_with_state(
            app.metrics.clone(),
            metrics::count,
        ))
        .with_state(app)
}

/// Serves the gateway on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), GatewayStartError> {
    let addr: SocketAddr = listener.local_addr()?;
    let routes = router(app.clone());
    let stop = shutdown.clone();
    if let Some(m) = &app.cfg.metrics {
        let scrape = TcpListener::bind(m.listen).await?;
        tracing::info!(addr = %m.listen, "gateway metrics endpoint serving");
        tokio::spawn(metrics::serve(
            scrape,
            app.metrics.clone(),
            shutdown.clone(),
        ));
    }
    match &app.cfg.tls {
        Some(files) => {
            let acceptor = tls::acceptor(files).map_err(GatewayStartError::Tls)?;
            tracing::info!(%addr, node = %app.node_id(), "gateway serving HTTPS");
            let listener = tls::TlsListener::new(listener, acceptor, shutdown.clone());
            axum::serve(
                listener,
                routes.into_make_service_with_connect_info::<ClientAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await?;
        }
        None => {
            tracing::info!(%addr, node = %app.node_id(), "gateway serving HTTP (loopback)");
            axum::serve(
                listener,
                routes.into_make_service_with_connect_info::<ClientAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_over_https_and_the_csp_everywhere() {
        let mut plain = HeaderMap::new();
        add_security_headers(&mut plain, false, false);
        assert!(plain.get(header::STRICT_TRANSPORT_SECURITY).is_none());
        assert!(plain.get(header::CONTENT_SECURITY_POLICY).is_some());
        let mut tls = HeaderMap::new();
        add_security_headers(&mut tls, true, true);
        assert_eq!(
            tls.get(header::STRICT_TRANSPORT_SECURITY)
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000")
        );
        assert!(tls.get(header::CACHE_CONTROL).is_none());
    }
}
