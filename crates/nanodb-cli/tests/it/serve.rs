//! `nanodb serve`: flags and environment, the first-run install token, graceful shutdown on
//! SIGTERM with the databases closed.

use super::process::{nanodb, run, Served};
use serde_json::{json, Value as Json};

#[test]
fn first_serve_prints_a_usable_one_time_install_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path());
    let line = served.wait_for("one-time install token");
    let token = line
        .split("\\\"token\\\":\\\"")
        .nth(1)
        .or_else(|| line.split("\"token\":\"").nth(1))
        .unwrap();
    let token: String = token.chars().take_while(char::is_ascii_alphanumeric).collect();
    assert_eq!(token.len(), 40, "{line}");
    let body =
        json!({"token": token, "email": "root@example.com", "password": "password-1"}).to_string();
    let (status, answer) = served.request("POST", "/api/install", &body);
    assert_eq!(status, 200, "{answer}");
    let answer: Json = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["record"]["email"], "root@example.com");
    let (again, _) = served.request("POST", "/api/install", &body);
    assert_eq!(again, 400, "the token is used up");
    assert!(served.terminate(), "{:#?}", served.log);
}

#[test]
fn sigterm_stops_gracefully_and_data_persists() {
    let dir = tempfile::tempdir().unwrap();
    let created = run(&[
        "superuser",
        "create",
        "root@example.com",
        "password-1",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(created.status.success(), "{created:?}");
    let mut served = Served::start(dir.path());
    let (status, health) = served.request("GET", "/api/health", "");
    assert_eq!(status, 200);
    assert!(health.contains("API is healthy."));
    let login = json!({"identity": "root@example.com", "password": "password-1"}).to_string();
    assert_eq!(
        served.request("POST", "/api/collections/_superusers/auth-with-password", &login).0,
        200
    );
    let locked = run(&[
        "superuser",
        "create",
        "x@example.com",
        "password-1",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!locked.status.success(), "the directory is locked while served");
    assert!(served.terminate(), "{:#?}", served.log);
    assert!(
        served.log.iter().any(|line| line.contains("databases closed cleanly")),
        "{:#?}",
        served.log
    );
    assert!(!served.log.iter().any(|line| line.contains("install token")), "a superuser exists");
    let mut again = Served::start(dir.path());
    assert_eq!(
        again.request("POST", "/api/collections/_superusers/auth-with-password", &login).0,
        200
    );
    assert!(again.terminate());
}

#[test]
fn a_busy_address_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["serve", "--http", &address, "--dir", dir.path().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot listen on"), "{output:?}");
}

/// glibc's malloc is tuned at start (one arena per core, a fixed mmap threshold), unless the
/// environment sets the same option; freed memory is trimmed every second unless told not to.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn malloc_is_tuned_unless_the_environment_says_otherwise() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let args = ["serve", "--http", &address, "--dir", dir.path().to_str().unwrap()];
    let log = |output: std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    let plain = || {
        let mut command = nanodb();
        command
            .args(args)
            .env_remove("MALLOC_ARENA_MAX")
            .env_remove("MALLOC_MMAP_THRESHOLD_")
            .env_remove("NANODB_MALLOC_TRIM_MS");
        command
    };
    let tuned = log(plain().output().unwrap());
    let cores = std::thread::available_parallelism().unwrap().get();
    let expected = format!("glibc malloc tuned: arenas {cores}, mmap threshold {}", 4 << 20);
    assert!(tuned.contains(&expected), "{tuned}");
    let told = log(plain().env("MALLOC_ARENA_MAX", "3").output().unwrap());
    assert!(
        told.contains("glibc malloc tuned: mmap threshold") && !told.contains("arenas"),
        "{told}"
    );
    // Freed memory goes back every second by default; `--malloc-trim-ms 0` turns that off.
    let trims = "freed heap memory returned to the system every";
    assert!(tuned.contains(&format!("{trims} 1s")), "{tuned}");
    let untrimmed = log(plain().env("NANODB_MALLOC_TRIM_MS", "0").output().unwrap());
    assert!(!untrimmed.contains(trims), "{untrimmed}");
    let fast = log(plain().args(["--malloc-trim-ms", "1"]).output().unwrap());
    assert!(fast.contains(&format!("{trims} 10ms")), "{fast}");
}

#[test]
fn serve_flags_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start_with(
        dir.path(),
        &[
            "--origins",
            "https://app.example,https://admin.example",
            "--auth-rate-burst",
            "2",
            "--blocking-threads",
            "4",
            "--memory-mib",
            "24",
        ],
    );
    let (_, head, _) =
        served.request_with("GET", "/api/health", "Origin: https://admin.example\r\n", "");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: https://admin.example"), "{head}");
    let (_, head, _) =
        served.request_with("GET", "/api/health", "Origin: https://evil.example\r\n", "");
    assert!(!head.to_ascii_lowercase().contains("access-control-allow-origin"), "{head}");
    let (_, metrics) = served.request("GET", "/metrics", "");
    let capacity: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("nanodb_storage_block_cache_capacity_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(capacity > 0.0 && capacity <= 24.0 * 1024.0 * 1024.0, "the memory flag: {capacity}");
    let login = json!({"identity": "x@example.com", "password": "password-1"}).to_string();
    let path = "/api/collections/users/auth-with-password";
    let statuses: Vec<u16> = (0..3).map(|_| served.request("POST", path, &login).0).collect();
    assert_eq!(statuses, [400, 400, 429]);
    assert!(served.terminate(), "{:#?}", served.log);
}

#[test]
fn concurrent_logins_keep_resident_memory_to_the_hashing_slots() {
    let status = std::path::Path::new("/proc/self/status");
    if !status.exists() {
        return; // resident memory is read from /proc
    }
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    let created =
        run(&["superuser", "create", "root@example.com", "password-1", "--dir", dir_text]);
    assert!(created.status.success(), "{created:?}");
    let mut served = Served::start(dir.path());
    let login = json!({"identity": "root@example.com", "password": "password-1"}).to_string();
    let path = "/api/collections/_superusers/auth-with-password";
    let address = served.address;
    for _ in 0..2 {
        std::thread::scope(|scope| {
            let logins: Vec<_> =
                (0..8).map(|_| scope.spawn(|| post(address, path, &login))).collect();
            for login in logins {
                assert_eq!(login.join().unwrap(), 200);
            }
        });
    }
    let pid = served.child.id();
    let rss_kib = || -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap()
    };
    // Two hashing slots of 19 MiB each, plus the server: 16 logins on as many threads used to
    // leave a hash's memory in each thread's allocator arena (240 MB).
    let after_logins = rss_kib();
    assert!(after_logins < 100 * 1024, "resident memory after 16 logins: {after_logins} KiB");
    // Idle hashing threads give their 19 MiB back (HASH_MEMORY_IDLE_RELEASE, 1 s, per thread
    // in turn): at least one slot's worth within half a minute.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rss_kib() + 19 * 1024 > after_logins {
        assert!(
            std::time::Instant::now() < deadline,
            "idle hashers kept their memory: {after_logins} KiB then {} KiB",
            rss_kib()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(served.terminate(), "{:#?}", served.log);
}

/// One POST with a JSON body; the status.
fn post(address: std::net::SocketAddr, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).unwrap().parse().unwrap()
}
