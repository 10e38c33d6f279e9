//! `run`: serve the API on a listener until a shutdown signal, then close the databases.
//!
//! Start: open the data directory (blocking), and if no superuser exists, hold a one-time
//! install token and print it to the log with the request that uses it. Stop: when
//! `shutdown` completes, stop accepting connections, let requests in flight finish (hyper's
//! graceful shutdown), then close every database so every acknowledged write is durable.
//!
//! Thread safety: runs on the caller's tokio runtime; database work goes to blocking
//! threads.

use crate::api::router;
use crate::auth::superusers::any_exists;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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
    announce_install_token(&state, &address.to_string())?;
    let stopping = Arc::clone(&state);
    let shutdown = async move {
        shutdown.await;
        // Realtime streams never end by themselves: end them so the shutdown can finish.
        stopping.realtime.close_all();
    };
    let service = router(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| Error::io("serve the API", error));
    tracing::info!("stopped accepting requests; closing the databases");
    let closing = Arc::clone(&state);
    let closed = tokio::task::spawn_blocking(move || closing.close())
        .await
        .map_err(|error| Error::Internal(format!("closing the databases failed: {error}")))?;
    served?;
    closed?;
    tracing::info!("databases closed cleanly");
    Ok(())
}

/// With no superuser yet, holds an install token and logs how to use it.
fn announce_install_token(state: &AppState, address: &str) -> Result<()> {
    if any_exists(&state.definitions)? {
        return Ok(());
    }
    let token = state.install.issue()?;
    tracing::warn!(
        "no superuser exists yet. Create the first one with `nanodb superuser create EMAIL PASSWORD`, \
         or once with this one-time install token: curl -X POST http://{address}/api/install \
         -H 'Content-Type: application/json' \
         -d '{{\"token\":\"{token}\",\"email\":\"you@example.com\",\"password\":\"at least 8 characters\"}}'"
    );
    Ok(())
}
