//! The TLS listener: accepts TCP connections, runs the TLS 1.3 handshake (client certificate
//! required and verified against the federation CA), reads the caller's identity from the
//! verified certificate once per connection, and hands the connection to tonic carrying that
//! identity as its connect info.
//!
//! Owning the acceptor (rather than tonic's built-in TLS) gives us TLS 1.3 only, TCP_NODELAY on
//! every accepted socket (tonic's `serve_with_incoming` ignores its own nodelay setting), a
//! handshake deadline, and one place to refuse connections later (revocation).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::ids::PeerIdentity;
use crate::tls::{cert_fingerprint, identity_of_cert};

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server knows about a connection, available to every request on it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The identity in the client's verified certificate, or why it has none.
    pub identity: Result<PeerIdentity, String>,
    /// SHA-256 of the client's certificate, hex (checked against revocations on every request).
    pub fingerprint: Option<String>,
}

/// A TLS connection whose client certificate has been verified.
#[derive(Debug)]
pub struct AuthedStream {
    inner: TlsStream<TcpStream>,
    info: ConnInfo,
}

impl Connected for AuthedStream {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for AuthedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AuthedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts connections on `listener` until `shutdown` is cancelled, yielding the ones that
/// complete a mutually authenticated handshake.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
    name: &'static str,
) -> ReceiverStream<Result<AuthedStream, io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => r,
            };
            let (tcp, remote) = match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let leaf = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first());
                        let identity = leaf
                            .ok_or_else(|| "no client certificate".to_owned())
                            .and_then(|leaf| identity_of_cert(leaf).map_err(|e| e.to_string()));
                        let info = ConnInfo {
                            remote_addr: Some(remote),
                            identity,
                            fingerprint: leaf.map(|l| cert_fingerprint(l)),
                        };
                        let _ = tx
                            .send(Ok(AuthedStream {
                                inner: stream,
                                info,
                            }))
                            .await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(listener = name, %remote, error = %e, "TLS handshake refused")
                    }
                    Err(_) => tracing::info!(listener = name, %remote, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
