//! A `multipart/form-data` reader over a body already read into memory (under the body
//! limit), as browsers and the SDK's `FormData` send it.
//!
//! The body is `--boundary CRLF headers CRLF CRLF content CRLF --boundary ... --boundary--`.
//! Each part has a `Content-Disposition: form-data; name="..."` header, and a `filename`
//! parameter when it is a file. Lone LF line ends are accepted too.
//!
//! Thread safety: pure functions.
//!
//! Invariant: malformed input is an `Err` with a reason, never a panic, and at most
//! `MULTIPART_PARTS_MAX` parts are returned.

/// Most parts one multipart body may have.
pub const MULTIPART_PARTS_MAX: usize = 1_000;
/// Longest header block of one part, in bytes.
pub const PART_HEADERS_BYTES_MAX: usize = 8 * 1024;
/// Longest boundary (RFC 2046 allows 70 characters).
const BOUNDARY_LEN_MAX: usize = 70;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The form field name.
    pub name: String,
    /// The file name, for a file part.
    pub filename: Option<String>,
    /// The content bytes.
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = parameters(params).into_iter().find(|(name, _)| name == "boundary")?.1;
    (!value.is_empty() && value.len() <= BOUNDARY_LEN_MAX).then_some(value)
}

/// `; name=value; name="quoted value"` as (lower-case name, value) pairs.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            text.push(next);
                        }
                    }
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    other => text.push(other),
                }
            }
            value = text;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((name, value));
    }
    out
}

/// The first `needle` in `haystack` at or after `from` (linear time, whatever the input).
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = haystack.get(from..)?;
    memchr::memmem::find(rest, needle).map(|at| at + from)
}

/// The parts of `body`, whose boundary is `boundary`.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = match find(body, delimiter, 0) {
        Some(0) => delimiter.len(),
        _ => return Err("the body does not start with the boundary".into()),
    };
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        at += line_end_len(&body[at..]).ok_or("a boundary is not followed by a line end")?;
        if parts.len() == MULTIPART_PARTS_MAX {
            return Err(format!("more than {MULTIPART_PARTS_MAX} parts"));
        }
        // Only the next PART_HEADERS_BYTES_MAX bytes are searched, so a body of many parts
        // is read in linear time.
        let window = &body[..body.len().min(at + PART_HEADERS_BYTES_MAX + 4)];
        let (headers_end, blank_len) = [&b"\r\n\r\n"[..], b"\n\n"]
            .iter()
            .filter_map(|blank| find(window, blank, at).map(|end| (end, blank.len())))
            .min()
            .ok_or_else(|| {
                format!("a part's headers do not end within {PART_HEADERS_BYTES_MAX} bytes")
            })?;
        let headers = std::str::from_utf8(&body[at..headers_end])
            .map_err(|_| "a part's headers are not UTF-8")?;
        let (name, filename) = disposition(headers)?;
        let content_start = headers_end + blank_len;
        let next = find(body, delimiter, content_start).ok_or("the last part does not end")?;
        let mut content_end = next;
        if body[..content_end].ends_with(b"\n") {
            content_end -= 1;
            if body[..content_end].ends_with(b"\r") {
                content_end -= 1;
            }
        } else {
            return Err("a boundary is not at the start of a line".into());
        }
        let data = body.get(content_start..content_end).unwrap_or_default().to_vec();
        parts.push(Part { name, filename, data });
        at = next + delimiter.len();
    }
}

fn line_end_len(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\r\n") {
        Some(2)
    } else if bytes.starts_with(b"\n") {
        Some(1)
    } else {
        None
    }
}

/// The `name` and `filename` of a part's `Content-Disposition: form-data` header.
fn disposition(headers: &str) -> Result<(String, Option<String>), String> {
    for line in headers.lines() {
        let Some((header, value)) = line.split_once(':') else { continue };
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let (kind, params) = value.split_once(';').unwrap_or((value, ""));
        if !kind.trim().eq_ignore_ascii_case("form-data") {
            return Err(format!("a part's disposition is {:?}, not form-data", kind.trim()));
        }
        let params = parameters(params);
        let get = |wanted: &str| params.iter().find(|(n, _)| n == wanted).map(|(_, v)| v.clone());
        let name = get("name").ok_or("a part has no name")?;
        return Ok((name, get("filename")));
    }
    Err("a part has no Content-Disposition header".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nwith file\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{\"meta\":{\"k\":1}}\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"document\"; filename=\"blob\"\r\n\
        Content-Type: text/plain\r\n\r\nhello\r\nfile\r\n--XyZ--\r\n";

    #[test]
    fn parts_are_read_with_names_files_and_content() {
        let content_type = "multipart/form-data; boundary=XyZ";
        let parts = parse(BODY.as_bytes(), &boundary(content_type).unwrap()).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("title", &b"with file"[..])
        );
        assert_eq!(parts[1].name, "@jsonPayload");
        assert_eq!(parts[1].data, br#"{"meta":{"k":1}}"#);
        assert_eq!(parts[2].filename.as_deref(), Some("blob"));
        assert_eq!(parts[2].data, b"hello\r\nfile");
        let lf_only = BODY.replace("\r\n", "\n");
        let parts = parse(lf_only.as_bytes(), "XyZ").unwrap();
        assert_eq!(parts[2].data, b"hello\nfile");
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "b".repeat(71))), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let bad = [
            "",
            "nope",
            "--XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"",
            "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
            "--XyZjunk",
        ];
        for body in bad {
            assert!(parse(body.as_bytes(), "XyZ").is_err(), "{body:?}");
        }
        assert_eq!(parse(b"--XyZ--\r\n", "XyZ").unwrap(), vec![]);
    }

    #[test]
    fn part_count_is_limited_at_the_boundary() {
        let part = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n";
        let at_limit = format!("{}--b--", part.repeat(MULTIPART_PARTS_MAX));
        assert_eq!(parse(at_limit.as_bytes(), "b").unwrap().len(), MULTIPART_PARTS_MAX);
        let over = format!("{}--b--", part.repeat(MULTIPART_PARTS_MAX + 1));
        assert!(parse(over.as_bytes(), "b").unwrap_err().contains("more than"));
        let disposition = "Content-Disposition: form-data; name=\"a\"\r\nX-Pad: ";
        let header_block = |len: usize| {
            let pad = "p".repeat(len - disposition.len());
            format!("--b\r\n{disposition}{pad}\r\n\r\nx\r\n--b--")
        };
        assert!(parse(header_block(PART_HEADERS_BYTES_MAX).as_bytes(), "b").is_ok());
        assert!(parse(header_block(PART_HEADERS_BYTES_MAX + 1).as_bytes(), "b").is_err());
    }
}
