//! Sans-IO streaming parsers of answers: OAP/1 frames and HTTP/1.1 responses. Body bytes are
//! handed to the sink as slices of the caller's buffer (no copy, nothing buffered but a header),
//! so a 1 MiB answer costs no allocation here.

use ronode_proto::limits::{HEADER_LEN, MAX_FRAME};

/// Flags of the OAP/1 header this client looks at (PROTOCOL.md section 2).
pub const FLAG_RESP: u16 = 0x0002;
pub const FLAG_EVENT: u16 = 0x0004;
pub const FLAG_START: u16 = 0x0008;
pub const FLAG_END: u16 = 0x0010;

/// What the parsers report, in order: `head`, then `body` zero or more times, then `end`.
pub trait Sink {
    /// A frame (OAP/1) or a response (HTTP) begins. `corr_id` is `None` for HTTP (answers come
    /// in request order); `start`/`end` are the OAP/1 stream flags (both false for HTTP).
    fn head(
        &mut self,
        corr_id: Option<u64>,
        code: u16,
        start: bool,
        end: bool,
    ) -> Result<(), String>;
    fn body(&mut self, data: &[u8]);
    /// The frame or response is complete.
    fn end(&mut self) -> Result<(), String>;
}

/// OAP/1 answers: one frame after another.
#[derive(Debug)]
pub struct OapParser {
    head: [u8; HEADER_LEN],
    have: usize,
    /// Payload bytes (and cap bytes, skipped) still to come of the current frame.
    remaining: usize,
    in_body: bool,
}

impl Default for OapParser {
    fn default() -> OapParser {
        OapParser {
            head: [0; HEADER_LEN],
            have: 0,
            remaining: 0,
            in_body: false,
        }
    }
}

impl OapParser {
    pub fn feed(&mut self, mut data: &[u8], sink: &mut impl Sink) -> Result<(), String> {
        while !data.is_empty() {
            if !self.in_body {
                let take = (HEADER_LEN - self.have).min(data.len());
                self.head[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                data = &data[take..];
                if self.have < HEADER_LEN {
                    return Ok(());
                }
                self.have = 0;
                self.begin_frame(sink)?;
                if self.remaining == 0 {
                    self.in_body = false;
                    sink.end()?;
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            sink.body(&data[..take]);
            data = &data[take..];
            self.remaining -= take;
            if self.remaining == 0 {
                self.in_body = false;
                sink.end()?;
            }
        }
        Ok(())
    }

    fn begin_frame(&mut self, sink: &mut impl Sink) -> Result<(), String> {
        let h = &self.head;
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let ver = u16::from_be_bytes([h[4], h[5]]);
        let flags = u16::from_be_bytes([h[6], h[7]]);
        let code = u16::from_be_bytes([h[8], h[9]]);
        let cap_len = u16::from_be_bytes([h[28], h[29]]) as usize;
        let corr_id = u64::from_be_bytes(h[30..38].try_into().expect("8 bytes"));
        if !(HEADER_LEN..=MAX_FRAME as usize).contains(&len) || ver != 1 || cap_len != 0 {
            return Err(format!(
                "bad frame header: len {len}, ver {ver}, cap_len {cap_len}"
            ));
        }
        if flags & FLAG_RESP == 0 {
            return Err(match flags & FLAG_EVENT != 0 {
                true => "the node sent an EVENT (GOAWAY: it is draining or closing the session)"
                    .to_owned(),
                false => format!("unexpected non-RESP frame (flags {flags:#06x})"),
            });
        }
        self.remaining = len - HEADER_LEN;
        self.in_body = true;
        sink.head(
            Some(corr_id),
            code,
            flags & FLAG_START != 0,
            flags & FLAG_END != 0,
        )
    }
}

/// HTTP/1.1 responses with a `Content-Length` (a static file server's answers).
#[derive(Debug, Default)]
pub struct HttpParser {
    head: Vec<u8>,
    remaining: usize,
    in_body: bool,
}

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

impl HttpParser {
    pub fn feed(&mut self, mut data: &[u8], sink: &mut impl Sink) -> Result<(), String> {
        while !data.is_empty() {
            if !self.in_body {
                // Look for the blank line; copy into `head` only when a head spans two reads.
                let (head_end, consumed) = if self.head.is_empty() {
                    match find(data, b"\r\n\r\n") {
                        Some(p) => (p + 4, p + 4),
                        None => {
                            self.head.extend_from_slice(data);
                            return Ok(());
                        }
                    }
                } else {
                    let old = self.head.len();
                    let from = old.saturating_sub(3);
                    let take = data.len().min(MAX_HEAD + 4);
                    self.head.extend_from_slice(&data[..take]);
                    match find(&self.head[from..], b"\r\n\r\n") {
                        Some(p) => {
                            let end = from + p + 4;
                            self.head.truncate(end);
                            (end, end - old)
                        }
                        None if self.head.len() > MAX_HEAD => {
                            return Err("HTTP response head over 16 KiB".to_owned())
                        }
                        None => return Ok(()),
                    }
                };
                let head: &[u8] = if self.head.is_empty() {
                    &data[..head_end]
                } else {
                    &self.head[..head_end]
                };
                let (status, len) = parse_head(head)?;
                data = &data[consumed..];
                self.head.clear();
                self.remaining = len;
                self.in_body = true;
                sink.head(None, status, false, false)?;
                if len == 0 {
                    self.in_body = false;
                    sink.end()?;
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            sink.body(&data[..take]);
            data = &data[take..];
            self.remaining -= take;
            if self.remaining == 0 {
                self.in_body = false;
                sink.end()?;
            }
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Status and `Content-Length` of a response head (status line through the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, usize), String> {
    let text = std::str::from_utf8(head).map_err(|_| "HTTP head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad HTTP status line {status_line:?}"))?;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            return value
                .trim()
                .parse()
                .map(|len| (status, len))
                .map_err(|_| format!("bad Content-Length {value:?}"));
        }
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked HTTP responses are not supported".to_owned());
        }
    }
    Err("HTTP response without Content-Length".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<String>, usize);

    impl Sink for Log {
        fn head(&mut self, corr: Option<u64>, code: u16, s: bool, e: bool) -> Result<(), String> {
            self.0.push(format!("head {corr:?} {code} {s} {e}"));
            Ok(())
        }
        fn body(&mut self, data: &[u8]) {
            self.1 += data.len();
        }
        fn end(&mut self) -> Result<(), String> {
            self.0.push(format!("end {}", self.1));
            self.1 = 0;
            Ok(())
        }
    }

    fn frame(flags: u16, corr: u64, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&((HEADER_LEN + payload.len()) as u32).to_be_bytes());
        f.extend_from_slice(&1u16.to_be_bytes());
        f.extend_from_slice(&flags.to_be_bytes());
        f.extend_from_slice(&200u16.to_be_bytes());
        f.extend_from_slice(&1u16.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&corr.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn oap_frames_split_anywhere() {
        let mut wire = frame(FLAG_RESP, 7, b"hello world");
        wire.extend(frame(FLAG_RESP | FLAG_START, 8, &[1; 100]));
        wire.extend(frame(FLAG_RESP | FLAG_END, 8, &[]));
        for step in [1, 3, 37, 38, 39, 1000] {
            let (mut p, mut log) = (OapParser::default(), Log::default());
            for chunk in wire.chunks(step) {
                p.feed(chunk, &mut log).unwrap();
            }
            assert_eq!(
                log.0,
                [
                    "head Some(7) 200 false false",
                    "end 11",
                    "head Some(8) 200 true false",
                    "end 100",
                    "head Some(8) 200 false true",
                    "end 0"
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn http_responses_split_anywhere() {
        let one = b"HTTP/1.1 200 OK\r\nServer: x\r\ncontent-length: 5\r\n\r\nhello";
        let mut wire = one.to_vec();
        wire.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        wire.extend_from_slice(one);
        for step in [1, 2, 5, 17, 1000] {
            let (mut p, mut log) = (HttpParser::default(), Log::default());
            for chunk in wire.chunks(step) {
                p.feed(chunk, &mut log).unwrap();
            }
            assert_eq!(
                log.0,
                [
                    "head None 200 false false",
                    "end 5",
                    "head None 404 false false",
                    "end 0",
                    "head None 200 false false",
                    "end 5"
                ],
                "step {step}"
            );
        }
        let mut p = HttpParser::default();
        let err = p
            .feed(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                &mut Log::default(),
            )
            .unwrap_err();
        assert!(err.contains("chunked"), "{err}");
    }
}
