//! `run`: serve the API on a listener until a shutdown signal, then close the databases.
//!
//! Connections: HTTP/1 through hyper, one task each, at most `ServerConfig::connections_max`
//! at once (past it the listener waits), each closed when a request head takes longer than
//! `ServerConfig::header_read_timeout` to arrive (also the idle limit of a kept-alive
//! connection between requests), so slow or idle clients cannot hold connections without
//! bound. A realtime stream, once its request is read, is not subject to it (its own idle
//! timeout and pings apply). A shutdown waits at most `ServerConfig::shutdown_grace` for the
//! open connections (a client that does not read its response would hold one forever), then
//! closes the databases anyway.
//!
//! Start: open the data directory (blocking), and if no superuser exists, hold a one-time
//! install token and print it to the log with the request that uses it. Stop: when
//! `shutdown` completes, stop accepting connections, let requests in flight finish (hyper's
//! graceful shutdown), then close every database so every acknowledged write is durable.
//! The databases are closed on every path once opened, a failure to serve included
//! (`close_after`).
//!
//! Thread safety: runs on the caller's tokio runtime; database work goes to blocking
//! threads.

use crate::api::router;
use crate::auth::superusers::any_exists;
use crate::config::{ServerConfig, HEADER_READ_TIMEOUT_MAX, HEADER_READ_TIMEOUT_MIN};
use crate::error::{Error, Result};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long the accept loop waits after an accept fails for another reason than the peer
/// (out of file descriptors, most likely) before it tries again.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// Serves the API on `listener` until `shutdown` completes, then closes the databases.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let address =
        listener.local_addr().map_err(|error| Error::io("read the listener's address", error))?;
    let data_dir = config.data_dir.clone();
    let state =
        tokio::task::spawn_blocking(move || AppState::open(config)).await.map_err(|error| {
            Error::Internal(format!("opening the data directory failed: {error}"))
        })??;
    let state = Arc::new(state);
    tracing::info!(address = %address, data_dir = %data_dir.display(), "serving the API on http://{address}");
    let serving = serve(Arc::clone(&state), listener, address, shutdown);
    close_after(state, serving).await?;
    tracing::info!("databases closed cleanly");
    Ok(())
}

/// Serves until `shutdown` completes (or serving fails): one task per connection, at most
/// `ServerConfig::connections_max` at once (past it the listener is not polled, so new
/// connections wait in the kernel's backlog), each closed when a request head (the first,
/// or the next on a kept-alive connection) takes longer than
/// `ServerConfig::header_read_timeout` to arrive.
async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    address: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    announce_install_token(&state, &address.to_string())?;
    let connections = Arc::new(crate::state::slots(state.config.connections_max));
    let header_read_timeout = header_read_timeout_of(&state.config);
    let app = router(Arc::clone(&state));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => {
                permit.map_err(|_| Error::Internal("the connection slots closed".into()))?
            }
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tokio::select! {
                        () = accept_failed(error) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let open = state.metrics.connection_opened();
        let app = app.clone();
        // The `ConnectInfo` extractor reads the peer's address from the request.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(request.map(Body::new))
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let (_slot, _open) = (permit, open);
            if let Err(error) = connection.await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Realtime streams never end by themselves: end them so the shutdown can finish.
    state.realtime.close_all();
    let grace = state.config.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            "connections still open {grace:?} after the shutdown began (clients not reading \
             their responses or sending slowly); closing the databases anyway"
        );
    }
    Ok(())
}

/// The header-read timeout `config` asks for, within `HEADER_READ_TIMEOUT_MIN` and
/// `HEADER_READ_TIMEOUT_MAX` (hyper adds it to the current instant: `Duration::MAX` would
/// overflow).
fn header_read_timeout_of(config: &ServerConfig) -> Duration {
    config.header_read_timeout.clamp(HEADER_READ_TIMEOUT_MIN, HEADER_READ_TIMEOUT_MAX)
}

/// After a failed accept: a connection the peer gave up before it was accepted is skipped;
/// anything else (out of file descriptors, most likely) is logged and the loop waits a
/// second, so it does not spin while the condition lasts.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in {ACCEPT_RETRY:?}");
    tokio::time::sleep(ACCEPT_RETRY).await;
}

/// Runs `serving`, then, whatever it returned, ends the realtime streams and closes the
/// databases; the first error of the two.
async fn close_after(
    state: Arc<AppState>,
    serving: impl Future<Output = Result<()>>,
) -> Result<()> {
    let served = serving.await;
    if let Err(error) = &served {
        tracing::error!(%error, "serving failed");
    }
    tracing::info!("stopped accepting requests; closing the databases");
    state.realtime.close_all();
    let closed = tokio::task::spawn_blocking(move || state.close())
        .await
        .map_err(|error| Error::Internal(format!("closing the databases failed: {error}")))
        .and_then(|closed| closed);
    served.and(closed)
}

/// With no superuser yet, holds an install token and logs how to use it.
fn announce_install_token(state: &AppState, address: &str) -> Result<()> {
    if any_exists(&state.definitions)? {
        return Ok(());
    }
    let token = state.install.issue()?;
    tracing::warn!(
        "no superuser exists yet. Create the first one with `nanodb superuser create EMAIL` \
         (the password on standard input), \
         or once with this one-time install token: curl -X POST http://{address}/api/install \
         -H 'Content-Type: application/json' \
         -d '{{\"token\":\"{token}\",\"email\":\"you@example.com\",\"password\":\"at least 8 characters\"}}'"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestState;

    #[test]
    fn the_header_read_timeout_is_kept_within_its_bounds() {
        let mut config = crate::test_support::config(std::path::Path::new("unused"));
        for (asked, used) in [
            (Duration::ZERO, HEADER_READ_TIMEOUT_MIN),
            (HEADER_READ_TIMEOUT_MIN, HEADER_READ_TIMEOUT_MIN),
            (Duration::from_secs(30), Duration::from_secs(30)),
            (HEADER_READ_TIMEOUT_MAX, HEADER_READ_TIMEOUT_MAX),
            (HEADER_READ_TIMEOUT_MAX + Duration::from_nanos(1), HEADER_READ_TIMEOUT_MAX),
            (Duration::MAX, HEADER_READ_TIMEOUT_MAX),
        ] {
            config.header_read_timeout = asked;
            assert_eq!(header_read_timeout_of(&config), used, "{asked:?}");
        }
    }

    #[test]
    fn the_databases_close_even_when_serving_fails() {
        let test = TestState::new();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let failing = async { Err(Error::Internal("injected".into())) };
        let result = runtime.block_on(close_after(Arc::clone(&test.state), failing));
        assert!(result.unwrap_err().to_string().contains("injected"));
        let write = test.state.database().collection("after");
        let error = write.expect_err("the database is closed");
        assert!(error.to_string().contains("closed"), "{error}");
        assert!(test.state.realtime.is_closed());
    }
}
