//! A server on 127.0.0.1:0 in a temporary directory, on its own thread and tokio runtime,
//! with one superuser; stopped (gracefully) when dropped.

use super::client::{Request, Response};
use nanodb_server::ServerConfig;
use serde_json::{json, Value as Json};
use std::net::SocketAddr;
use std::path::Path;
use std::thread::JoinHandle;
use tempfile::TempDir;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// A config with cheap password hashing (the tests hash hundreds of passwords on 2 cores;
/// the shipped cost is tested by the unit tests of `auth::password`) and no auth rate limit.
pub fn test_config(dir: &Path) -> ServerConfig {
    ServerConfig {
        password_hash_memory_kib: 256,
        password_hash_passes: 1,
        sync_writes: false,
        // Tests log in many times from one address; `ops` tests the limit on its own.
        auth_rate_limit_burst: 0,
        ..ServerConfig::new(dir)
    }
}

pub struct TestServer {
    pub address: SocketAddr,
    pub config: ServerConfig,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<nanodb_server::Result<()>>>,
    temp: Option<TempDir>,
}

impl TestServer {
    /// A fresh server with the superuser `ADMIN_EMAIL`.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A fresh server with the superuser, its config changed by `edit`.
    pub fn start_with(edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let temp = tempfile::tempdir().unwrap();
        let mut config = test_config(temp.path());
        edit(&mut config);
        nanodb_server::create_superuser(config.clone(), ADMIN_EMAIL, ADMIN_PASSWORD).unwrap();
        TestServer::spawn(config, Some(temp))
    }

    /// A server on `config` as it is (no superuser added).
    pub fn spawn(config: ServerConfig, temp: Option<TempDir>) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let run_config = config.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                nanodb_server::run(listener, run_config, async move {
                    let _ = signal.await;
                })
                .await
            })
        });
        let server =
            TestServer { address, config, shutdown: Some(shutdown), thread: Some(thread), temp };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        for _ in 0..500 {
            if std::net::TcpStream::connect(self.address).is_ok()
                && self.get("/api/health").send().status == 200
            {
                return;
            }
            assert!(!self.thread.as_ref().unwrap().is_finished(), "the server stopped at start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the server did not become healthy");
    }

    /// Stops the server gracefully; its result.
    pub fn stop(&mut self) -> nanodb_server::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().expect("the server thread panicked"),
            None => Ok(()),
        }
    }

    /// Stops the server and starts another on the same directory.
    pub fn restart(mut self) -> TestServer {
        self.stop().unwrap();
        let temp = self.temp.take();
        TestServer::spawn(self.config.clone(), temp)
    }

    pub fn request(&self, method: &str, path: &str) -> Request {
        Request::new(self.address, method, path)
    }

    pub fn get(&self, path: &str) -> Request {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Request {
        self.request("POST", path)
    }

    pub fn patch(&self, path: &str) -> Request {
        self.request("PATCH", path)
    }

    pub fn delete(&self, path: &str) -> Request {
        self.request("DELETE", path)
    }

    /// Logs in to auth collection `collection`; the response.
    pub fn login(&self, collection: &str, email: &str, password: &str) -> Response {
        self.post(&format!("/api/collections/{collection}/auth-with-password"))
            .json(&json!({"identity": email, "password": password}))
            .send()
    }

    /// A superuser token.
    pub fn admin(&self) -> String {
        let response = self.login("_superusers", ADMIN_EMAIL, ADMIN_PASSWORD);
        assert_eq!(response.status, 200, "{:?}", response.json());
        response.json()["token"].as_str().unwrap().to_string()
    }

    /// Creates a collection as superuser; its JSON.
    pub fn create_collection(&self, admin: &str, definition: Json) -> Json {
        let response = self.post("/api/collections").auth(Some(admin)).json(&definition).send();
        assert_eq!(response.status, 200, "{}", response.json());
        response.json()
    }

    /// Creates a record (as `token`, or a guest); asserts 200, returns its JSON.
    pub fn create_record(&self, collection: &str, token: Option<&str>, body: Json) -> Json {
        let response = self
            .post(&format!("/api/collections/{collection}/records"))
            .auth(token)
            .json(&body)
            .send();
        assert_eq!(response.status, 200, "{}", response.json());
        response.json()
    }

    /// Signs up a user of `collection` (`users` lets anyone) and logs in: (token, record).
    pub fn user(&self, collection: &str, email: &str, password: &str) -> (String, Json) {
        let admin = self.admin();
        self.create_record(
            collection,
            Some(&admin),
            json!({"email": email, "password": password, "passwordConfirm": password}),
        );
        let response = self.login(collection, email, password);
        assert_eq!(response.status, 200, "{}", response.json());
        let body = response.json();
        (body["token"].as_str().unwrap().to_string(), body["record"].clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let result = self.stop();
        if !std::thread::panicking() {
            result.unwrap();
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
