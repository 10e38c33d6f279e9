//! `nanodb`: the command-line entry point. `nanodb serve` runs the PocketBase-compatible
//! server; `nanodb superuser create EMAIL [PASSWORD]` creates (or resets the password of) a
//! superuser, the password from the argument, `NANODB_SUPERUSER_PASSWORD` or standard input.
//! Logs go to stderr (`NANODB_LOG`: error, warn, info, debug or trace).
//!
//! Thread safety: one tokio runtime for `serve`; the other commands run on the main thread.

mod malloc_tuning;
mod open_files;
mod serve;
mod superuser;

use clap::{Parser, Subcommand};
use nanodb_server::config::BLOCKING_TASKS_MAX_DEFAULT;
use std::path::PathBuf;
use std::process::ExitCode;

/// Default address `serve` listens on.
pub const HTTP_ADDRESS_DEFAULT: &str = "127.0.0.1:8090";
/// Default data directory.
pub const DATA_DIR_DEFAULT: &str = "./nanodb_data";
/// The environment variable `superuser create` reads the password from.
pub const SUPERUSER_PASSWORD_ENV: &str = "NANODB_SUPERUSER_PASSWORD";
/// Threads of tokio's blocking pool beyond `--blocking-tasks` when `--blocking-threads` is not
/// given: room for the short blocking work outside the document slots (starting the realtime
/// feed, opening and closing the databases).
/// The pool is not left at tokio's 512: a thread that has run document work keeps glibc's
/// per-thread cache of freed chunks and its stack, and tokio starts a new thread whenever a
/// task arrives before a finished thread is counted idle, so 64 tasks kept 150 to 170 threads
/// (43 to 45 MiB resident under creates, against 40 to 42 with the pool capped at 68;
/// docs/benchmarks.md, issue 7). Work outside the slots that still needs a blocking thread is
/// short (registering the first realtime client starts the feed; later ones register on the
/// event loop), so a few threads suffice; it may still wait behind document work when
/// every thread is busy.
pub const BLOCKING_THREADS_SPARE: usize = 4;

#[derive(Debug, Parser)]
#[command(name = "nanodb", version, about = "NanoDB: an embedded, crash-safe document database")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the PocketBase-compatible HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "NANODB_HTTP", default_value = HTTP_ADDRESS_DEFAULT)]
        http: String,
        /// Data directory (created if missing).
        #[arg(long, env = "NANODB_DIR", default_value = DATA_DIR_DEFAULT)]
        dir: PathBuf,
        /// Browser origins allowed to call the API, comma-separated (`*`: any; empty: no
        /// CORS headers).
        #[arg(long, env = "NANODB_ORIGINS", default_value = "*")]
        origins: String,
        /// Requests in a burst per client IP on the auth endpoints (0: no limit).
        #[arg(long, env = "NANODB_AUTH_RATE_BURST", default_value_t = nanodb_server::config::AUTH_RATE_LIMIT_BURST_DEFAULT)]
        auth_rate_burst: u32,
        /// Refill of the auth endpoints' limit, in requests per minute per client IP.
        #[arg(long, env = "NANODB_AUTH_RATE_PER_MINUTE", default_value_t = nanodb_server::config::AUTH_RATE_LIMIT_PER_MINUTE_DEFAULT)]
        auth_rate_per_minute: u32,
        /// Memory shared by the memtables and the block cache, in MiB.
        #[arg(long, env = "NANODB_MEMORY_MIB", default_value_t = nanodb_server::config::MEMORY_BYTES_DEFAULT >> 20)]
        memory_mib: u64,
        /// Most threads of the blocking pool, which runs document work (more work waits for
        /// one) [default: --blocking-tasks + 4].
        #[arg(long, env = "NANODB_BLOCKING_THREADS")]
        blocking_threads: Option<usize>,
        /// Most document tasks (requests' database work) running at once; more wait.
        #[arg(long, env = "NANODB_BLOCKING_TASKS", default_value_t = BLOCKING_TASKS_MAX_DEFAULT)]
        blocking_tasks: usize,
        /// Most entries a list or view examines per find or count on the event loop before
        /// it moves to a blocking thread (0: every read goes to a blocking thread).
        #[arg(long, env = "NANODB_INLINE_READ_ENTRIES", default_value_t = nanodb_server::config::INLINE_READ_ENTRIES_MAX_DEFAULT)]
        inline_read_entries: u64,
        /// Bearer token `GET /metrics` requires (unset: the metrics are open to anyone who
        /// can reach the server). Prefer the environment variable: arguments show in `ps`.
        #[arg(long, env = "NANODB_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        /// Take the client IP (auth rate limit, realtime) from X-Forwarded-For's last
        /// address: only behind a reverse proxy that sets it, or clients choose their IP.
        #[arg(long, env = "NANODB_TRUSTED_PROXY")]
        trusted_proxy: bool,
        /// Most connections served at once (at least 1); more wait in the listen backlog.
        #[arg(long, env = "NANODB_CONNECTIONS_MAX", default_value_t = nanodb_server::config::CONNECTIONS_MAX_DEFAULT)]
        connections_max: usize,
        /// Seconds a connection may take to send a request head (or sit idle between
        /// requests) before it is closed (at least 1).
        #[arg(long, env = "NANODB_HEADER_TIMEOUT_SECONDS", default_value_t = nanodb_server::config::HEADER_READ_TIMEOUT_DEFAULT.as_secs())]
        header_timeout_seconds: u64,
        /// Milliseconds between two returns of freed heap memory to the system (glibc's
        /// `malloc_trim`; 0: never).
        #[arg(long, env = "NANODB_MALLOC_TRIM_MS", default_value_t = malloc_tuning::TRIM_INTERVAL_MS_DEFAULT)]
        malloc_trim_ms: u64,
    },
    /// Manage superusers (the server must not be running on the directory).
    Superuser {
        #[command(subcommand)]
        action: SuperuserAction,
    },
}

#[derive(Debug, Subcommand)]
enum SuperuserAction {
    /// Create a superuser, or set the password of an existing one.
    ///
    /// The password is read, in this order, from the PASSWORD argument, the
    /// NANODB_SUPERUSER_PASSWORD environment variable, or the first line of standard input
    /// (when PASSWORD is `-` or omitted). An argument is visible to every user of the
    /// machine (`ps`, /proc) while the command runs: prefer standard input or the variable.
    Create {
        /// The superuser's email.
        email: String,
        /// The password (at least 8 characters); `-` or omitted: read standard input.
        #[arg(env = SUPERUSER_PASSWORD_ENV, hide_env_values = true)]
        password: Option<String>,
        /// Data directory.
        #[arg(long, env = "NANODB_DIR", default_value = DATA_DIR_DEFAULT)]
        dir: PathBuf,
    },
}

/// The blocking pool's size for `--blocking-threads` (`flag`) and `tasks` document tasks: the
/// flag when given (at least one thread), else the tasks and `BLOCKING_THREADS_SPARE`.
fn blocking_threads_for(flag: Option<usize>, tasks: usize) -> usize {
    flag.unwrap_or(tasks.saturating_add(BLOCKING_THREADS_SPARE)).max(1)
}

fn init_logs() {
    let level = match std::env::var("NANODB_LOG").unwrap_or_default().to_ascii_lowercase().as_str()
    {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let malloc_settings = malloc_tuning::apply();
    let cli = Cli::parse();
    init_logs();
    let outcome = match cli.command {
        Command::Serve {
            http,
            dir,
            origins,
            auth_rate_burst,
            auth_rate_per_minute,
            blocking_threads,
            blocking_tasks,
            inline_read_entries,
            metrics_token,
            trusted_proxy,
            memory_mib,
            malloc_trim_ms,
            connections_max,
            header_timeout_seconds,
        } => {
            if !malloc_settings.is_empty() {
                tracing::info!("glibc malloc tuned: {}", malloc_settings.join(", "));
            }
            if let Some(interval) = malloc_tuning::start_trimming(malloc_trim_ms) {
                tracing::info!("freed heap memory returned to the system every {interval:?}");
            }
            let mut config = nanodb_server::ServerConfig::new(dir);
            config.cors_origins = origins.split(',').map(str::to_string).collect();
            config.auth_rate_limit_burst = auth_rate_burst;
            config.auth_rate_limit_per_minute = auth_rate_per_minute;
            config.memory_bytes = memory_mib.saturating_mul(1 << 20);
            config.blocking_tasks_max = blocking_tasks.max(1);
            config.inline_read_entries_max = inline_read_entries;
            config.metrics_token = metrics_token.filter(|token| !token.is_empty());
            config.trusted_proxy = trusted_proxy;
            let soft_limit = open_files::raise();
            config.connections_max = open_files::connections_within(connections_max, soft_limit);
            if config.connections_max < connections_max {
                tracing::warn!(
                    "serving at most {} connections at once, not {connections_max}: the open-file \
                     limit is {} and {} files stay for the databases (raise it: ulimit -n, \
                     systemd's LimitNOFILE)",
                    config.connections_max,
                    soft_limit.unwrap_or_default(),
                    open_files::OPEN_FILES_RESERVE
                );
            }
            config.header_read_timeout =
                std::time::Duration::from_secs(header_timeout_seconds.max(1));
            let blocking_threads =
                blocking_threads_for(blocking_threads, config.blocking_tasks_max);
            if blocking_threads < config.blocking_tasks_max {
                tracing::warn!(
                    "--blocking-threads {blocking_threads} is below --blocking-tasks {}: \
                     document tasks past the threads wait for one",
                    config.blocking_tasks_max
                );
            }
            serve::serve(&http, config, blocking_threads)
        }
        Command::Superuser { action: SuperuserAction::Create { email, password, dir } } => {
            superuser::password(password, std::io::stdin().lock())
                .and_then(|password| superuser::create(dir, &email, &password))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nanodb: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_leaves_the_blocking_threads_to_the_tasks_unless_told() {
        let parsed = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Serve { blocking_threads, blocking_tasks, .. } => {
                (blocking_threads, blocking_tasks)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(parsed(&["nanodb", "serve"]), (None, BLOCKING_TASKS_MAX_DEFAULT));
        assert_eq!(
            parsed(&["nanodb", "serve", "--blocking-threads", "7", "--blocking-tasks", "3"]),
            (Some(7), 3)
        );
    }

    #[test]
    fn blocking_threads_default_to_the_tasks_and_the_spare() {
        assert_eq!(
            blocking_threads_for(None, BLOCKING_TASKS_MAX_DEFAULT),
            BLOCKING_TASKS_MAX_DEFAULT + 4
        );
        assert_eq!(blocking_threads_for(None, 1), 1 + BLOCKING_THREADS_SPARE);
        assert_eq!(blocking_threads_for(None, usize::MAX), usize::MAX);
        assert_eq!(blocking_threads_for(Some(0), 32), 1);
        assert_eq!(blocking_threads_for(Some(1), 32), 1);
        assert_eq!(blocking_threads_for(Some(512), 32), 512);
    }
}
