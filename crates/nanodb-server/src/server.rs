//! `run`: serve the API on a listener until a shutdown signal, then close the databases.
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
    let serving = serve(Arc::clone(&state), listener, address, shutdown);
    close_after(state, serving).await?;
    tracing::info!("databases closed cleanly");
    Ok(())
}

/// Serves until `shutdown` completes (or serving fails).
async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    address: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    announce_install_token(&state, &address.to_string())?;
    let stopping = Arc::clone(&state);
    let shutdown = async move {
        shutdown.await;
        // Realtime streams never end by themselves: end them so the shutdown can finish.
        stopping.realtime.close_all();
    };
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| Error::io("serve the API", error))
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
