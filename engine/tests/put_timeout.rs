//! `objects.put_timeout_s`: an upload whose frames keep coming (so the read timeout never ends
//! it) but whose body is not complete within the put timeout of its START frame is answered 408
//! `slow_client`, the room its store reserved is given back, and the session goes on.

mod common;

use common::{bytes, local_command, metric_sum, raw_session, scratch, start_with, WAIT};
use ronode_proto::control::{Control, APP_CONTROL};
use ronode_proto::frame::{Frame, FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::msg::objects::{ObjectRequest, Put};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::{Flags, ObjectAddr};
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

/// The put timeout the node runs with.
const PUT_TIMEOUT_S: &str = "2";
/// One body frame per pause: well within the read timeout (5 s), so only the put timeout can
/// end the upload. The whole body takes `FRAMES` pauses (16 s), far past the put timeout.
const PAUSE: Duration = Duration::from_millis(500);
const FRAMES: usize = 32;
const FRAME_BYTES: usize = 1024;

/// A TLS session whose reads wait at most `PAUSE`: the wait paces the trickle.
struct Session {
    s: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    enc: FrameEncoder,
    dec: FrameDecoder,
    buf: bytes::BytesMut,
}

impl Session {
    fn send(&mut self, frame: &OutFrame<'_>) {
        let mut out = Vec::new();
        self.enc
            .encode(frame, &mut out)
            .expect("encode a test frame");
        self.s.write_all(&out).expect("write to the node");
        self.s.flush().expect("flush to the node");
    }

    /// The next frame, or `None` when none came within the socket's read timeout.
    fn poll(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self
                .dec
                .decode(&mut self.buf)
                .expect("the node's frames decode")
            {
                return Some(f);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("the node closed the session"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) => panic!("reading from the node: {e}"),
            }
        }
    }

    /// The next frame that is not the HELLO's answer, within `WAIT`.
    fn answer(&mut self, what: &str) -> Frame {
        for _ in 0..(WAIT.as_millis() / PAUSE.as_millis()) {
            match self.poll() {
                Some(f) if f.header.app_proto_id == APP_CONTROL && f.header.corr_id == 1 => {}
                Some(f) => return f,
                None => {}
            }
        }
        panic!("no {what} within {WAIT:?}");
    }
}

fn reserved(admin: std::net::SocketAddr) -> f64 {
    metric_sum(admin, "store_reserved_bytes{")
}

#[test]
fn an_upload_trickled_past_put_timeout_gets_408_and_frees_its_reservation() {
    let dir = scratch("put-timeout");
    let mut cmd = local_command(&dir, &[]);
    cmd.env("RONODE_OBJECTS__PUT_TIMEOUT_S", PUT_TIMEOUT_S)
        .env("RONODE_OBJECTS__PUT_POLICY", "open");
    let node = start_with(cmd);

    let tls = raw_session(&node);
    tls.sock.set_read_timeout(Some(PAUSE)).unwrap();
    let mut s = Session {
        s: tls,
        enc: FrameEncoder::new(1 << 20),
        dec: FrameDecoder::new(1 << 20),
        buf: bytes::BytesMut::new(),
    };
    let hello = Control::Hello(ronode_proto::control::Hello {
        ua: Some("put-timeout".into()),
        max_frame: None,
    })
    .to_vec();
    s.send(&OutFrame::request(APP_CONTROL, 1, &hello));

    let body = bytes(FRAMES * FRAME_BYTES, 7);
    let mut put = Vec::new();
    ObjectRequest::Put(Put {
        addr: ObjectAddr::of(&body),
        size: body.len() as u64,
    })
    .encode(&mut put);
    s.send(&OutFrame {
        flags: Flags::REQ | Flags::START,
        ..OutFrame::request(APP_OBJECTS, 2, &put)
    });

    // Trickle the body, all but its END frame, one frame per pause; the node's answer may come
    // at any pause.
    let mut answer = None;
    let mut saw_reservation = false;
    let mut sent = 0;
    for chunk in body.chunks(FRAME_BYTES).take(FRAMES - 1) {
        s.send(&OutFrame::request(APP_OBJECTS, 2, chunk));
        sent += 1;
        saw_reservation |= reserved(node.admin) == body.len() as f64;
        match s.poll() {
            Some(f) if f.header.app_proto_id == APP_CONTROL && f.header.corr_id == 1 => {}
            Some(f) => {
                answer = Some(f);
                break;
            }
            None => {}
        }
    }
    let answer = answer.unwrap_or_else(|| {
        // The whole body but its END went through: finish it to show what the node did.
        let last = &body[(FRAMES - 1) * FRAME_BYTES..];
        s.send(&OutFrame {
            flags: Flags::REQ | Flags::END,
            ..OutFrame::request(APP_OBJECTS, 2, last)
        });
        let f = s.answer("answer to the finished upload");
        panic!(
            "the upload was not cut at put_timeout_s = {PUT_TIMEOUT_S}: {FRAMES} frames over \
             {} s, answered {}",
            FRAMES as u64 * PAUSE.as_millis() as u64 / 1000,
            f.header.code
        )
    });
    assert_eq!(answer.header.corr_id, 2, "{answer:?}");
    assert_eq!(answer.header.code, 408, "{answer:?}");
    let err: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(err["reason"], "slow_client", "{err}");
    assert!(sent < FRAMES - 1, "answered only once the trickle was over");
    assert!(
        saw_reservation,
        "store_reserved_bytes never showed the upload's {} bytes while it trickled",
        body.len()
    );
    common::eventually("store_reserved_bytes back to 0 after the 408", || {
        reserved(node.admin) == 0.0
    });
    assert!(metric_sum(node.admin, "rejected_total{reason=\"slow_client\"") >= 1.0);

    // The session goes on: the rest of the answered upload is discarded, a PING is answered.
    let last = &body[(FRAMES - 1) * FRAME_BYTES..];
    s.send(&OutFrame {
        flags: Flags::REQ | Flags::END,
        ..OutFrame::request(APP_OBJECTS, 2, last)
    });
    s.send(&OutFrame::request(
        APP_CONTROL,
        3,
        &Control::Ping(9).to_vec(),
    ));
    let pong = s.answer("PONG after the 408");
    assert_eq!(
        (
            pong.header.app_proto_id,
            pong.header.corr_id,
            pong.header.code
        ),
        (APP_CONTROL, 3, 200),
        "{pong:?}"
    );
    assert_eq!(
        reserved(node.admin),
        0.0,
        "nothing reserved by the discarded frame"
    );
    let _ = node.sigterm_and_wait();
    let _ = std::fs::remove_dir_all(dir);
}
