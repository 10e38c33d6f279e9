//! Operations: `/metrics` (Prometheus text: requests by route and status, latency
//! histograms, storage, realtime and process figures), the per-IP rate limit of the auth
//! endpoints (429 with `Retry-After`), CORS (any origin, a list, or none; preflights), and
//! the OpenAPI document, whose every operation is a route the server answers; connections:
//! the header-read timeout (slow and idle clients) and the cap on connections.

use super::server::TestServer;
use super::sse::SseClient;
use serde_json::{json, Value as Json};
use std::time::Duration;

fn metrics(server: &TestServer) -> String {
    let response = server.get("/metrics").send();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    String::from_utf8(response.body).unwrap()
}

/// The value of the sample line starting with `series ` (its full name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_requests_by_route_and_status_with_storage_and_process_figures() {
    let server = TestServer::start();
    for _ in 0..3 {
        assert_eq!(server.get("/api/health").send().status, 200);
    }
    assert_eq!(server.get("/nowhere").send().status, 404);
    assert_eq!(server.get("/api/collections/users/records").send().status, 200);
    assert_eq!(server.get("/api/collections/nope/records/x").send().status, 404);
    // An idle connection counts as open, beside the scrape's own.
    let idle = std::net::TcpStream::connect(server.address).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let text = metrics(&server);
    assert!(sample(&text, "nanodb_http_connections_open").unwrap() >= 2.0, "{text}");
    assert!(sample(&text, "nanodb_http_connections_accepted_total").unwrap() >= 8.0, "{text}");
    let connections_max = nanodb_server::config::CONNECTIONS_MAX_DEFAULT as f64;
    assert_eq!(sample(&text, "nanodb_http_connections_max"), Some(connections_max));
    drop(idle);
    // Closed connections are counted out: only the scrape's stays.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sample(&metrics(&server), "nanodb_http_connections_open") != Some(1.0) {
        assert!(std::time::Instant::now() < deadline, "{}", metrics(&server));
        std::thread::sleep(Duration::from_millis(20));
    }
    let health = "nanodb_http_requests_total{route=\"/api/health\",method=\"GET\",status=\"200\"}";
    assert!(sample(&text, health).unwrap() >= 3.0, "{text}");
    let unmatched = "nanodb_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}";
    assert_eq!(sample(&text, unmatched), Some(1.0));
    let record = "nanodb_http_requests_total{route=\"/api/collections/{collection}/records/{id}\",method=\"GET\",status=\"404\"}";
    assert_eq!(sample(&text, record), Some(1.0), "routes are labelled by template, not path");
    let count = "nanodb_http_request_duration_seconds_count{route=\"/api/health\"}";
    let inf = "nanodb_http_request_duration_seconds_bucket{route=\"/api/health\",le=\"+Inf\"}";
    assert_eq!(sample(&text, count), sample(&text, inf));
    for series in [
        "nanodb_storage_seqno_last",
        "nanodb_storage_write_ops_total",
        "nanodb_storage_block_cache_capacity_bytes",
        "nanodb_storage_pinned_bytes",
        "nanodb_storage_sst_files{level=\"0\"}",
        "nanodb_realtime_clients",
        "nanodb_auth_rate_limited_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(sample(&text, series).is_some(), "no {series} in\n{text}");
    }
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    // Every line is a comment or `name{labels} number`; every name has HELP and TYPE.
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        let family =
            name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {name} "))
                || text.contains(&format!("# TYPE {family} histogram")),
            "{name} has no TYPE"
        );
    }
}

#[test]
fn the_realtime_feed_runs_only_while_clients_are_connected() {
    let server = TestServer::start_with(|config| {
        config.realtime_feed_linger = Duration::from_millis(200);
        config.realtime_ping_interval = Duration::from_millis(50);
    });
    assert_eq!(sample(&metrics(&server), "nanodb_realtime_feed_running"), Some(0.0));
    let client = SseClient::connect(server.address);
    let text = metrics(&server);
    assert_eq!(sample(&text, "nanodb_realtime_feed_running"), Some(1.0));
    assert_eq!(sample(&text, "nanodb_realtime_clients"), Some(1.0));
    drop(client);
    for _ in 0..100 {
        let text = metrics(&server);
        if sample(&text, "nanodb_realtime_feed_running") == Some(0.0) {
            assert_eq!(sample(&text, "nanodb_realtime_clients"), Some(0.0));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the feed kept running without clients");
}

#[test]
fn auth_endpoints_are_rate_limited_per_address() {
    let server = TestServer::start_with(|config| {
        config.auth_rate_limit_burst = 3;
        config.auth_rate_limit_per_minute = 60;
    });
    let bad_login = || server.login("users", "nobody@example.com", "wrong-password");
    for _ in 0..3 {
        assert_eq!(bad_login().status, 400, "a burst of 3 passes");
    }
    let limited = bad_login();
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json(),
        json!({"data": {}, "message": "Too many requests, try again later.", "status": 429})
    );
    assert_eq!(limited.header("retry-after"), Some("1"));
    let alias =
        server.post("/api/auth/login").json(&json!({"email": "a@b.co", "password": "x"})).send();
    assert_eq!(alias.status, 429, "every auth route shares the address's bucket");
    assert_eq!(server.post("/api/collections/users/auth-refresh").send().status, 429);
    assert_eq!(
        server.get("/api/collections/users/records").send().status,
        200,
        "others are not limited"
    );
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(bad_login().status, 400, "a token is back after a second");
    assert_eq!(bad_login().status, 429);
    let text = metrics(&server);
    assert_eq!(sample(&text, "nanodb_auth_rate_limited_total"), Some(4.0));
}

/// By default the limit goes by the peer address, whatever `X-Forwarded-For` says; with
/// `trusted_proxy` it goes by the header's last address.
#[test]
fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let login = |server: &TestServer, forwarded: &str| {
        server
            .post("/api/collections/users/auth-with-password")
            .header("x-forwarded-for", forwarded)
            .json(&json!({"identity": "nobody@example.com", "password": "wrong-password"}))
            .send()
            .status
    };
    let limit = |config: &mut nanodb_server::ServerConfig| {
        config.auth_rate_limit_burst = 1;
        config.auth_rate_limit_per_minute = 1;
    };
    let direct = TestServer::start_with(limit);
    assert_eq!(login(&direct, "10.0.0.1"), 400);
    assert_eq!(login(&direct, "10.0.0.2"), 429, "the header is ignored: one peer, one bucket");
    let proxied = TestServer::start_with(|config| {
        limit(config);
        config.trusted_proxy = true;
    });
    assert_eq!(login(&proxied, "203.0.113.9, 10.0.0.1"), 400);
    assert_eq!(login(&proxied, "10.0.0.2"), 400, "another client behind the proxy");
    assert_eq!(login(&proxied, "198.51.100.7, 10.0.0.1"), 429, "the last address counts");
    assert_eq!(login(&proxied, "not an address"), 400, "unreadable: the peer's own bucket");
}

/// With a metrics token, `/metrics` needs it as a bearer token.
#[test]
fn metrics_can_require_a_bearer_token() {
    let server = TestServer::start_with(|config| config.metrics_token = Some("s3cret".into()));
    let page = |token: Option<&str>| {
        server.get("/metrics").header("authorization", token.unwrap_or("")).send()
    };
    let refused = page(None);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["status"], 401);
    assert_eq!(page(Some("Bearer wrong")).status, 401);
    assert_eq!(page(Some("s3cret")).status, 401, "only as a bearer token");
    assert_eq!(page(Some("Bearer s3cret")).status, 200);
    assert_eq!(TestServer::start().get("/metrics").send().status, 200, "open by default");
}

#[test]
fn cors_for_any_origin_a_list_or_none() {
    let any = TestServer::start();
    let response = any.get("/api/health").header("Origin", "https://app.example").send();
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let preflight = any
        .request("OPTIONS", "/api/collections/posts/records")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type")
        .send();
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("86400"));
    let refused = any.get("/api/nowhere").header("Origin", "https://app.example").send();
    assert_eq!((refused.status, refused.header("access-control-allow-origin")), (404, Some("*")));
    assert_eq!(
        any.get("/api/health").send().header("access-control-allow-origin"),
        None,
        "no Origin"
    );

    let list =
        TestServer::start_with(|config| config.cors_origins = vec!["https://app.example".into()]);
    let allowed = list.get("/api/health").header("Origin", "https://app.example").send();
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    let other = list.get("/api/health").header("Origin", "https://evil.example").send();
    assert_eq!((other.status, other.header("access-control-allow-origin")), (200, None));
    let preflight = list
        .request("OPTIONS", "/api/health")
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send();
    assert_eq!((preflight.status, preflight.header("access-control-allow-methods")), (204, None));

    let none = TestServer::start_with(|config| config.cors_origins = Vec::new());
    let plain = none.get("/api/health").header("Origin", "https://app.example").send();
    assert_eq!(plain.header("access-control-allow-origin"), None);
    let preflight = none
        .request("OPTIONS", "/api/health")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .send();
    assert_eq!(preflight.status, 405, "without CORS, OPTIONS is just another method");
}

#[test]
fn every_documented_operation_is_served() {
    let server = TestServer::start();
    let admin = server.admin();
    let response = server.get("/api/openapi.json").send();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let document: Json = response.json();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{}", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            if method == "GET" && path == "/api/realtime" {
                continue; // a stream; `realtime` tests it
            }
            let concrete = path.replace("{collection}", "users").replace("{id}", "aaaaaaaaaaaaaaa");
            let answer = server.request(&method, &concrete).auth(Some(&admin)).send();
            assert_ne!(answer.status, 405, "{method} {path}");
            operations += 1;
        }
    }
    assert!(operations >= 20, "{operations}");
    let text = metrics(&server);
    assert!(!text.contains("route=\"unmatched\""), "a documented path fell through:\n{text}");
}

/// Reads from `stream` until the peer closes it (`Ok(bytes read)`) or `wait` passes (`Err`).
fn read_until_closed(stream: &mut std::net::TcpStream, wait: Duration) -> Result<usize, String> {
    use std::io::Read;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut total = 0;
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => total += read,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return Ok(total),
            Err(error) => return Err(format!("still open after {wait:?} ({error})")),
        }
    }
}

#[test]
fn slow_request_heads_and_idle_connections_are_closed_at_the_header_timeout() {
    use std::io::{Read, Write};
    let timeout = Duration::from_millis(400);
    let server = TestServer::start_with(|config| config.header_read_timeout = timeout);
    // A head trickled a byte every 100 ms, never finished (slowloris): the bytes do not
    // extend the deadline; the connection is closed unanswered at the timeout.
    let mut slow = std::net::TcpStream::connect(server.address).unwrap();
    let started = std::time::Instant::now();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buffer = [0u8; 4096];
    let closed_after = loop {
        match slow.read(&mut buffer) {
            Ok(0) => break started.elapsed(),
            Ok(read) => panic!("answered a head never finished: {:?}", &buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                break started.elapsed()
            }
            Err(_) => {}
        }
        if slow.write_all(b"a").is_err() {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still open");
    };
    assert!(closed_after >= timeout, "{closed_after:?}");
    // A prompt request is answered and kept alive, then closed once idle for the timeout.
    let mut idle = std::net::TcpStream::connect(server.address).unwrap();
    let asked = std::time::Instant::now();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read = idle.read(&mut buffer).unwrap();
    let head = String::from_utf8_lossy(&buffer[..read]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && !head.contains("connection: close"), "{head}");
    assert_eq!(read_until_closed(&mut idle, Duration::from_secs(5)), Ok(0));
    assert!(asked.elapsed() >= timeout, "closed after {:?}", asked.elapsed());
    // A connection that never sends anything is closed the same way.
    let mut silent = std::net::TcpStream::connect(server.address).unwrap();
    assert_eq!(read_until_closed(&mut silent, Duration::from_secs(5)), Ok(0));
    // The server itself goes on serving.
    assert_eq!(server.get("/api/health").send().status, 200);
}

#[test]
fn connections_past_the_cap_wait_until_one_closes() {
    use std::io::{Read, Write};
    let request = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
    let answered = |stream: &mut std::net::TcpStream| {
        let mut buffer = [0u8; 4096];
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let read = stream.read(&mut buffer).unwrap();
        buffer[..read].starts_with(b"HTTP/1.1 200")
    };
    // A cap of 0 is taken as 1.
    let server = TestServer::start_with(|config| config.connections_max = 0);
    let mut only = std::net::TcpStream::connect(server.address).unwrap();
    only.write_all(request).unwrap();
    assert!(answered(&mut only));
    drop((only, server));
    let server = TestServer::start_with(|config| config.connections_max = 1);
    // The one connection, kept alive after its answer.
    let mut first = std::net::TcpStream::connect(server.address).unwrap();
    first.write_all(request).unwrap();
    assert!(answered(&mut first));
    // A second one waits (the kernel accepted it; the server does not serve it yet)...
    let mut second = std::net::TcpStream::connect(server.address).unwrap();
    second.write_all(request).unwrap();
    second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let waiting = second.read(&mut [0u8; 64]).map_err(|error| error.kind());
    assert!(
        matches!(waiting, Err(std::io::ErrorKind::WouldBlock) | Err(std::io::ErrorKind::TimedOut)),
        "not waiting past the cap: {waiting:?}"
    );
    // ...until the first closes.
    drop(first);
    assert!(answered(&mut second));
}

#[test]
fn a_shutdown_waits_for_unfinished_connections_at_most_its_grace() {
    use std::io::Write;
    let grace = Duration::from_millis(300);
    let mut server = TestServer::start_with(|config| {
        config.header_read_timeout = Duration::from_secs(60);
        config.shutdown_grace = grace;
    });
    // A connection stuck in its first request head: a graceful shutdown waits for it.
    let mut stuck = std::net::TcpStream::connect(server.address).unwrap();
    stuck.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    server.stop().unwrap();
    let stopped_after = started.elapsed();
    assert!(stopped_after >= grace, "did not wait: {stopped_after:?}");
    assert!(stopped_after < Duration::from_secs(10), "waited past the grace: {stopped_after:?}");
    drop(stuck);
}

/// The status of a failed login sent from a socket bound to `local` (a loopback address).
fn login_status_from(local: &str, server: &std::net::SocketAddr) -> u16 {
    use std::io::{Read, Write};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("{local}:0").parse().unwrap())?;
            socket.connect(*server).await
        })
        .unwrap()
        .into_std()
        .unwrap();
    drop(runtime);
    let mut stream = stream;
    stream.set_nonblocking(false).unwrap();
    let body = r#"{"identity":"nobody@example.com","password":"wrong-password"}"#;
    let request = format!(
        "POST /api/collections/users/auth-with-password HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).and_then(|status| status.parse().ok()).unwrap()
}

/// The peer's address reaches the handlers (the rate limit's bucket is per address).
#[test]
fn each_peer_address_has_its_own_auth_bucket() {
    let server = TestServer::start_with(|config| {
        config.auth_rate_limit_burst = 1;
        config.auth_rate_limit_per_minute = 1;
    });
    assert_eq!(login_status_from("127.0.0.1", &server.address), 400);
    assert_eq!(login_status_from("127.0.0.1", &server.address), 429);
    assert_eq!(login_status_from("127.0.0.2", &server.address), 400, "another address");
    assert_eq!(login_status_from("127.0.0.2", &server.address), 429);
}
