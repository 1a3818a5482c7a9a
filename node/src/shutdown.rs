//! Shutdown signalling: a token cancelled on SIGINT or SIGTERM (or by a test or the demo), which
//! every listener and background task watches.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
///
/// On Unix the handlers are registered before this returns, not when the spawned task first
/// runs: a signal arriving in between would otherwise find the default action still in place
/// and kill the process instead of stopping it. (Elsewhere Ctrl-C is registered by the task.)
pub fn cancel_on_signal(token: CancellationToken) {
    let signals = Signals::register();
    tokio::spawn(async move {
        signals.recv().await;
        tracing::info!("shutdown signal received");
        token.cancel();
    });
}

/// Signal streams already registered with the OS.
#[cfg(unix)]
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let register = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|e| tracing::warn!(signal = name, error = %e, "signal not handled"))
                .ok()
        };
        Signals {
            interrupt: register(SignalKind::interrupt(), "SIGINT"),
            terminate: register(SignalKind::terminate(), "SIGTERM"),
        }
    }

    async fn recv(self) {
        let Signals {
            interrupt,
            terminate,
        } = self;
        // A stream that could not be registered never fires; the other still does.
        let interrupt = async {
            match interrupt {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let terminate = async {
            match terminate {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn register() -> Signals {
        Signals
    }

    async fn recv(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
