//! `nanodb serve`: binds the address, runs the server until SIGINT or SIGTERM, and exits
//! once the server has stopped accepting, finished the requests in flight and closed the
//! databases.
//!
//! Thread safety: one multi-threaded tokio runtime owns the server.

use nanodb_server::ServerConfig;

/// Runs the server on `http` with `config`, document work on at most `blocking_threads`
/// threads; an error is a message for the user.
pub fn serve(http: &str, config: ServerConfig, blocking_threads: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking_threads)
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(http)
            .await
            .map_err(|error| format!("cannot listen on {http}: {error}"))?;
        nanodb_server::run(listener, config, shutdown_signal())
            .await
            .map_err(|error| error.to_string())
    })
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
