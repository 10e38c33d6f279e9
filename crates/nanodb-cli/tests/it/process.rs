//! Running the `nanodb` binary: a served instance whose log is read until it says where it
//! listens, stopped with SIGTERM; and one-shot commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

pub fn nanodb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nanodb"))
}

/// Runs `nanodb args...` to the end.
pub fn run(args: &[&str]) -> Output {
    nanodb().args(args).env_remove("NANODB_HTTP").env_remove("NANODB_DIR").output().unwrap()
}

/// A running `nanodb serve` (killed if still running when dropped).
pub struct Served {
    pub child: Child,
    pub address: SocketAddr,
    pub log: Vec<String>,
    lines: Receiver<String>,
}

impl Served {
    /// Starts `nanodb serve` on port 0 with data in `dir` (given by env, to test it).
    pub fn start(dir: &Path) -> Served {
        Served::start_with(dir, &[])
    }

    /// Starts `nanodb serve` with `args` after `serve`.
    pub fn start_with(dir: &Path, args: &[&str]) -> Served {
        let mut child = nanodb()
            .args(["serve"])
            .args(args)
            .env("NANODB_HTTP", "127.0.0.1:0")
            .env("NANODB_DIR", dir)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut served =
            Served { child, address: "127.0.0.1:1".parse().unwrap(), log: Vec::new(), lines };
        let line = served.wait_for("serving the API on http://");
        let address = line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap();
        served.address = address.parse().unwrap();
        served
    }

    /// Reads the log until a line contains `text`; that line.
    pub fn wait_for(&mut self, text: &str) -> String {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
                panic!("no log line with {text:?}; log so far: {:#?}", self.log)
            });
            self.log.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Sends SIGTERM and waits for the exit; true if it exited with success.
    pub fn terminate(&mut self) -> bool {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        exit.success()
    }

    /// Sends one HTTP request; (status, body).
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = self.request_with(method, path, "", body);
        (status, body)
    }

    /// Sends one HTTP request with extra header lines (each ending in CRLF); (status, head,
    /// body).
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.address).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (status, head.to_string(), body.to_string())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
