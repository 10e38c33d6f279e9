//! A blocking SSE client for the tests: `GET /api/realtime` on its own connection, the
//! chunked body decoded as it arrives, messages split at blank lines.

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One SSE message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl Message {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// What the stream gave next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Message(Message),
    /// Nothing within the wait.
    Nothing,
    /// The server ended the stream.
    End,
}

pub struct SseClient {
    reader: BufReader<TcpStream>,
    pub head: String,
    pub client_id: String,
    pending: String,
    pub pings: usize,
    ended: bool,
}

impl SseClient {
    /// Connects; panics unless the answer is a 200 stream that starts with `PB_CONNECT`.
    pub fn connect(address: SocketAddr) -> SseClient {
        let (status, head, client) = SseClient::open(address);
        assert_eq!(status, 200, "{head}");
        let mut client = client.unwrap();
        let connect = match client.next(Duration::from_secs(10)) {
            Next::Message(message) => message,
            other => panic!("no PB_CONNECT: {other:?}"),
        };
        assert_eq!(connect.event, "PB_CONNECT");
        assert_eq!(connect.json()["clientId"], connect.id.as_str());
        client.client_id = connect.id;
        client
    }

    /// Sends the request; the status, the head and, for a 200, the client.
    pub fn open(address: SocketAddr) -> (u16, String, Option<SseClient>) {
        let mut stream = TcpStream::connect(address).unwrap();
        write!(
            stream,
            "GET /api/realtime HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\
             Cache-Control: no-cache\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let client = (status == 200).then(|| SseClient {
            reader,
            head: head.clone(),
            client_id: String::new(),
            pending: String::new(),
            pings: 0,
            ended: false,
        });
        (status, head, client)
    }

    /// The next message, waiting at most `wait`.
    pub fn next(&mut self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(message) = self.take_message() {
                return Next::Message(message);
            }
            if self.ended {
                return Next::End;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Nothing;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.read_chunk() {
                Ok(true) => {}
                Ok(false) => self.ended = true,
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Nothing
                }
                Err(_) => self.ended = true,
            }
        }
    }

    /// The next message; panics if none comes within 10 s.
    pub fn expect(&mut self) -> Message {
        match self.next(Duration::from_secs(10)) {
            Next::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Asserts that no message comes within `wait`.
    pub fn expect_nothing(&mut self, wait: Duration) {
        match self.next(wait) {
            Next::Nothing => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    /// Reads until the stream ends (within `wait`); the messages read on the way.
    pub fn read_to_end(&mut self, wait: Duration) -> Vec<Message> {
        let deadline = Instant::now() + wait;
        let mut messages = Vec::new();
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Next::Message(message) => messages.push(message),
                Next::End => return messages,
                Next::Nothing => panic!("the stream did not end in {wait:?}"),
            }
        }
    }

    /// Reads one chunk into `pending`; false at the end of the body.
    fn read_chunk(&mut self) -> std::io::Result<bool> {
        let mut size_line = String::new();
        if self.reader.read_line(&mut size_line)? == 0 {
            return Ok(false);
        }
        let size = usize::from_str_radix(size_line.trim(), 16).unwrap_or(0);
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(false);
        }
        self.pending.push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        Ok(true)
    }

    fn take_message(&mut self) -> Option<Message> {
        loop {
            let end = self.pending.find("\n\n")?;
            let block: String = self.pending.drain(..end + 2).collect();
            let mut message = Message::default();
            let mut comment = true;
            for line in block.lines().filter(|line| !line.is_empty()) {
                if let Some(value) = line.strip_prefix("id:") {
                    message.id = value.to_string();
                } else if let Some(value) = line.strip_prefix("event:") {
                    message.event = value.to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    message.data = value.to_string();
                }
                comment &= line.starts_with(':');
            }
            if comment {
                self.pings += 1;
                continue;
            }
            return Some(message);
        }
    }
}
