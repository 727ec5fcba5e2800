//! Raw OAP/1 over TLS for the session-rule and drain tests: frames written as the tests choose
//! (pipelined, cut short, past the limits), and frames read back one by one with a bounded wait.
#![allow(dead_code)]

use crate::common::{raw_session, Node};
use bytes::BytesMut;
use ronode_proto::control::{Control, GoAway, Hello, APP_CONTROL};
use ronode_proto::frame::{Frame, FrameDecoder, FrameEncoder, OutFrame};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A raw session: TLS done, nothing sent yet.
pub struct Raw {
    pub s: Tls,
    enc: FrameEncoder,
    dec: FrameDecoder,
    buf: BytesMut,
}

/// What the node did next.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    /// The node closed the session (close_notify, EOF or a reset).
    Closed,
}

impl Raw {
    pub fn connect(node: &Node) -> Raw {
        Raw {
            s: raw_session(node),
            enc: FrameEncoder::new(1 << 20),
            dec: FrameDecoder::new(1 << 20),
            buf: BytesMut::new(),
        }
    }

    /// Appends a frame to `out` (frames are written by [`Raw::send`], several at once).
    pub fn frame(&mut self, frame: &OutFrame<'_>, out: &mut Vec<u8>) {
        self.enc.encode(frame, out).expect("encode a test frame");
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write to the node");
        self.s.flush().expect("flush to the node");
    }

    /// The next frame the node sends, or `Closed`; panics past the socket's read timeout.
    pub fn next(&mut self) -> Next {
        loop {
            if let Some(f) = self
                .dec
                .decode(&mut self.buf)
                .expect("the node's frames decode")
            {
                return Next::Frame(f);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("the node neither answered nor closed within the read timeout")
                }
                Err(_) => return Next::Closed,
            }
        }
    }

    /// The next frame; panics when the node closed instead.
    pub fn frame_or_panic(&mut self, what: &str) -> Frame {
        match self.next() {
            Next::Frame(f) => f,
            Next::Closed => panic!("the node closed the session before {what}"),
        }
    }

    /// Every frame up to the node's close.
    pub fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Next::Frame(f) = self.next() {
            frames.push(f);
        }
        frames
    }
}

pub fn hello(max_frame: Option<u32>) -> Vec<u8> {
    Control::Hello(Hello {
        ua: Some("session-rules".into()),
        max_frame,
    })
    .to_vec()
}

/// `OutFrame::request` on app 0.
pub fn control(corr_id: u64, payload: &[u8]) -> OutFrame<'_> {
    OutFrame::request(APP_CONTROL, corr_id, payload)
}

/// The GOAWAY a frame carries, if it is one.
pub fn goaway(f: &Frame) -> Option<GoAway> {
    if f.header.app_proto_id != APP_CONTROL {
        return None;
    }
    match Control::parse(&f.payload) {
        Ok(Control::GoAway(g)) => Some(g),
        _ => None,
    }
}

/// The `reason` of a JSON error body.
pub fn reason(f: &Frame) -> String {
    let body: serde_json::Value =
        serde_json::from_slice(&f.payload).expect("an error body is JSON");
    body["reason"].as_str().unwrap_or_default().to_owned()
}
