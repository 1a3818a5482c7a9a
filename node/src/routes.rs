//! gRPC routing by service name, for the node's two listeners.
//!
//! A listener serves several gRPC services (peer exchange, directory Raft transport and health
//! on the peer listener; the local API and health on the local one). tonic's own router is
//! built on axum, an HTTP framework the node has no other use for; routing a gRPC request needs
//! only the service name at the start of its path (`/tracenet.v1.PeerExchange/Lookup`), so this
//! small router does that and answers UNIMPLEMENTED for anything else.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tonic::body::Body;
use tonic::server::NamedService;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::metrics::{Metrics, code_label};

type Route = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// The services of one listener, found by the gRPC service name in the request path.
#[derive(Clone, Default)]
pub struct Routes {
    routes: Arc<Vec<(String, Route)>>,
    /// Where each call is counted, and under which listener name.
    metrics: Option<(Arc<Metrics>, &'static str)>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|(prefix, _)| prefix))
            .finish()
    }
}

impl Routes {
    /// Adds a gRPC service under its own name (`NamedService::NAME`).
    pub fn with<S, B>(mut self, svc: S) -> Routes
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let route = BoxCloneSyncService::new(svc.map_response(|r: Response<B>| r.map(Body::new)));
        let prefix = format!("/{}/", S::NAME);
        Arc::make_mut(&mut self.routes).push((prefix, route));
        self
    }

    /// Counts every call of this listener (method, gRPC code, time to response headers) as
    /// `api` in `metrics`.
    pub fn observed(mut self, metrics: Arc<Metrics>, api: &'static str) -> Routes {
        self.metrics = Some((metrics, api));
        self
    }

    fn find(&self, path: &str) -> Option<Route> {
        self.routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, route)| route.clone())
    }
}

impl Service<Request<Body>> for Routes {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call clones its route and waits for that route to be ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let answer: Self::Future = match self.find(&path) {
            Some(route) => Box::pin(route.oneshot(req)),
            None => {
                let status = tonic::Status::unimplemented("no such gRPC service on this listener");
                Box::pin(async move { Ok(status.into_http()) })
            }
        };
        let Some((metrics, api)) = self.metrics.clone() else {
            return answer;
        };
        let started = Instant::now();
        Box::pin(async move {
            let response = answer.await;
            // Errors travel in the headers (trailers-only); a success's status is in trailers.
            let code = match &response {
                Ok(r) => code_label(r.headers().get("grpc-status").map(|v| v.as_bytes())),
                Err(never) => match *never {},
            };
            metrics.observe_call(api, &path, code, started.elapsed());
            response
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Named(&'static str);

    impl NamedService for Named {
        const NAME: &'static str = "test.v1.Echo";
    }

    impl Service<Request<Body>> for Named {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _req: Request<Body>) -> Self::Future {
            let mut r = Response::new(Body::empty());
            r.headers_mut()
                .insert("x-route", http::HeaderValue::from_static(self.0));
            std::future::ready(Ok(r))
        }
    }

    fn request(path: &str) -> Request<Body> {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn routes_by_service_name_and_refuses_the_rest() {
        let routes = Routes::default().with(Named("echo"));
        let r = routes
            .clone()
            .oneshot(request("/test.v1.Echo/Say"))
            .await
            .unwrap();
        assert_eq!(r.headers()["x-route"], "echo");
        for path in [
            "/test.v1.EchoX/Say",
            "/test.v1/Echo/Say",
            "/",
            "/other.Svc/M",
        ] {
            let r = routes.clone().oneshot(request(path)).await.unwrap();
            assert!(r.headers().get("x-route").is_none(), "{path} was routed");
            assert_eq!(r.headers()["grpc-status"], "12", "{path}");
        }
    }
}
