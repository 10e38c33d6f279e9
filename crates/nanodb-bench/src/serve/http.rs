//! A minimal blocking HTTP/1.1 client for the load test: one keep-alive connection, one
//! request at a time, responses framed by `Content-Length` (what `nanodb serve` sends for
//! every JSON answer) or chunked.
//!
//! It does only what the load generator needs, as cheaply as possible, so that the client
//! costs little of the CPU the server is measured on.
//!
//! Thread safety: a `Connection` is used by one thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest response head accepted, in bytes.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Longest a request may wait for its answer.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One keep-alive connection.
pub struct Connection {
    address: SocketAddr,
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
}

/// A response: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Connection {
    /// Connects to `address`.
    pub fn open(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Connection { address, reader: BufReader::new(stream), request: Vec::new() })
    }

    /// Sends a request (`token` as the raw `Authorization`, `body` as JSON) and reads the
    /// whole answer.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> std::io::Result<Answer> {
        self.request.clear();
        let body = body.unwrap_or_default();
        write!(self.request, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.address)?;
        if let Some(token) = token {
            write!(self.request, "Authorization: {token}\r\n")?;
        }
        write!(
            self.request,
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        self.request.extend_from_slice(body);
        self.reader.get_mut().write_all(&self.request)?;
        read_answer(&mut self.reader)
    }
}

/// Reads one response from `reader`.
fn read_answer(reader: &mut impl BufRead) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut head_bytes = line.len();
    loop {
        line.clear();
        head_bytes += reader.read_line(&mut line)?;
        if head_bytes > HEAD_BYTES_MAX {
            return Err(bad("response head too long"));
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let Some((name, value)) = trimmed.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<usize>().map_err(|_| bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad("bad chunk size"))?;
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else if status != 204 && status != 304 {
        return Err(bad("a response without a length"));
    }
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn answers_framed_by_length_or_chunks_follow_each_other() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}\
            HTTP/1.1 204 No Content\r\n\r\n\
            HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
            HTTP/1.1 200 OK\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        let first = read_answer(&mut reader).unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"{\"a\":1}"[..]));
        assert_eq!(read_answer(&mut reader).unwrap(), Answer { status: 204, body: Vec::new() });
        let chunked = read_answer(&mut reader).unwrap();
        assert_eq!((chunked.status, chunked.body.as_slice()), (400, &b"abcde"[..]));
        assert!(read_answer(&mut reader).is_err(), "a 200 without a length");
        assert!(read_answer(&mut reader).is_err(), "the end of the stream");
    }

    #[test]
    fn a_connection_round_trips_requests() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut seen = Vec::new();
            for _ in 0..2 {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.push((head.lines().next().unwrap().to_string(), body));
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
            }
            seen
        });
        let mut connection = Connection::open(address).unwrap();
        let answer = connection.send("GET", "/a", Some("token"), None).unwrap();
        assert_eq!((answer.status, answer.body), (200, b"ok".to_vec()));
        connection.send("POST", "/b", None, Some(b"{\"x\":1}")).unwrap();
        let seen = server.join().unwrap();
        assert_eq!(seen[0].0, "GET /a HTTP/1.1");
        assert_eq!(seen[1], ("POST /b HTTP/1.1".to_string(), b"{\"x\":1}".to_vec()));
    }
}
