//! The session rows of PROTOCOL.md's reject table (section 2.4) (`bad_sequence`, `unknown_app`, `malformed`),
//! produced through the receive pipeline, plus what a session sends before it closes.

use bytes::BytesMut;
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{FrameEncoder, OutFrame};
use ronode_proto::inbound::{Farewell, Inbound, ServedApps};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::msg::gossip::GossipEvent;
use ronode_proto::msg::objects::{Get, ObjectRequest, Put};
use ronode_proto::msg::{APP_GOSSIP, APP_OBJECTS};
use ronode_proto::sequence::{Progress, Role};
use ronode_proto::{Flags, ObjectAddr, Reason};

struct Peer {
    enc: FrameEncoder,
    buf: BytesMut,
    node: Inbound,
}

impl Peer {
    fn new() -> Peer {
        Peer {
            enc: FrameEncoder::new(MAX_FRAME),
            buf: BytesMut::new(),
            node: Inbound::new(Role::Acceptor, MAX_FRAME, ServedApps::NODE),
        }
    }

    fn greeted() -> Peer {
        let mut p = Peer::new();
        let hello = Control::Hello(Hello {
            ua: Some("test".into()),
            max_frame: None,
        })
        .to_vec();
        assert_eq!(
            p.send(&OutFrame::request(APP_CONTROL, 1, &hello)),
            Ok(Progress::Whole)
        );
        // The node answers the HELLO.
        let reply = OutFrame::response(APP_CONTROL, 1, 200, b"{}").header();
        p.node
            .tracker_mut()
            .on_send(&reply)
            .expect("HELLO answered");
        p
    }

    /// Sends one frame to the node; returns what the pipeline made of it, or the reject label.
    fn send(&mut self, f: &OutFrame<'_>) -> Result<Progress, Reason> {
        self.enc
            .encode(f, &mut self.buf)
            .expect("test frame encodes");
        self.poll()
    }

    fn poll(&mut self) -> Result<Progress, Reason> {
        match self.node.poll(&mut self.buf) {
            Ok(Some(r)) => Ok(r.progress),
            Ok(None) => panic!("a whole frame was buffered"),
            Err(reject) => Err(reject.reason),
        }
    }
}

fn get(addr: ObjectAddr) -> Vec<u8> {
    let mut v = Vec::new();
    ObjectRequest::Get(Get::whole(addr)).encode(&mut v);
    v
}

#[test]
fn bad_sequence_rows() {
    // Anything before HELLO.
    let mut p = Peer::new();
    assert_eq!(
        p.send(&OutFrame::request(
            APP_OBJECTS,
            1,
            &get(ObjectAddr::of(b"x"))
        )),
        Err(Reason::BadSequence)
    );
    // START twice on one corr_id.
    let mut p = Peer::greeted();
    let put = {
        let mut v = Vec::new();
        ObjectRequest::Put(Put {
            addr: ObjectAddr::of(b"abc"),
            size: 3,
        })
        .encode(&mut v);
        v
    };
    let start = OutFrame {
        flags: Flags::REQ | Flags::START,
        ..OutFrame::request(APP_OBJECTS, 2, &put)
    };
    assert_eq!(p.send(&start), Ok(Progress::Opened));
    assert_eq!(p.send(&start), Err(Reason::BadSequence));
    // END with no stream open.
    let mut p = Peer::greeted();
    let end = OutFrame {
        flags: Flags::REQ | Flags::END,
        ..OutFrame::request(APP_OBJECTS, 3, b"abc")
    };
    assert_eq!(p.send(&end), Err(Reason::BadSequence));
    // A RESP for a request the node never sent.
    let mut p = Peer::greeted();
    assert_eq!(
        p.send(&OutFrame::response(APP_OBJECTS, 4, 200, b"")),
        Err(Reason::BadSequence)
    );
}

#[test]
fn put_stream_passes_and_body_frames_are_not_parsed() {
    let mut p = Peer::greeted();
    let mut put = Vec::new();
    ObjectRequest::Put(Put {
        addr: ObjectAddr::of(b"abcdef"),
        size: 6,
    })
    .encode(&mut put);
    let start = OutFrame {
        flags: Flags::REQ | Flags::START,
        ..OutFrame::request(APP_OBJECTS, 2, &put)
    };
    assert_eq!(p.send(&start), Ok(Progress::Opened));
    assert_eq!(
        p.send(&OutFrame::request(APP_OBJECTS, 2, b"abc")),
        Ok(Progress::Continued)
    );
    let end = OutFrame {
        flags: Flags::REQ | Flags::END,
        ..OutFrame::request(APP_OBJECTS, 2, b"def")
    };
    assert_eq!(p.send(&end), Ok(Progress::Closed));
    assert_eq!(
        p.node.tracker_mut().unanswered(),
        1,
        "the PUT awaits its answer"
    );
}

#[test]
fn unknown_app_row() {
    let mut p = Peer::greeted();
    assert_eq!(
        p.send(&OutFrame::request(200, 2, b"hello world")),
        Err(Reason::UnknownApp)
    );
    // The order of the table: a sequence fault on an unknown app is `bad_sequence`.
    let mut p = Peer::greeted();
    assert_eq!(
        p.send(&OutFrame::response(200, 9, 200, b"")),
        Err(Reason::BadSequence)
    );
    // A node serving only control and objects refuses gossip.
    let mut p = Peer::greeted();
    p.node = Inbound::new(Role::Dialer, MAX_FRAME, ServedApps::of(&[0, 1]));
    let ev = GossipEvent::new("t", 1, b"d".to_vec());
    let mut v = Vec::new();
    ev.encode(&mut v);
    let frame = OutFrame {
        flags: Flags::EVENT,
        ..OutFrame::request(APP_GOSSIP, 0, &v)
    };
    assert_eq!(p.send(&frame), Err(Reason::UnknownApp));
}

#[test]
fn malformed_rows() {
    let cases: Vec<(OutFrame<'static>, &str)> = vec![
        (
            OutFrame::request(APP_OBJECTS, 2, b"\xa1\x63get\xa0"),
            "GET without addr",
        ),
        (
            OutFrame::request(APP_OBJECTS, 2, b"not cbor"),
            "garbage on objects",
        ),
        (
            OutFrame::request(APP_CONTROL, 2, br#"{"pong":1}"#),
            "PONG as a request",
        ),
        (
            OutFrame::request(APP_CONTROL, 2, br#"{"ping":"x"}"#),
            "PING with a string",
        ),
        (OutFrame::request(3, 2, b"\xa0"), "empty DHT request"),
        (
            OutFrame {
                flags: Flags::EVENT,
                ..OutFrame::request(APP_GOSSIP, 0, b"\xa0")
            },
            "empty gossip event",
        ),
        (
            OutFrame {
                flags: Flags::EVENT,
                ..OutFrame::request(APP_OBJECTS, 0, b"")
            },
            "EVENT on objects",
        ),
    ];
    for (frame, what) in cases {
        let mut p = Peer::greeted();
        assert_eq!(p.send(&frame), Err(Reason::Malformed), "{what}");
    }
    // HELLO asking below 4,096 is malformed at negotiation, not here: the message is valid.
    let mut p = Peer::new();
    let low = Control::Hello(Hello {
        ua: None,
        max_frame: Some(100),
    })
    .to_vec();
    assert_eq!(
        p.send(&OutFrame::request(APP_CONTROL, 1, &low)),
        Ok(Progress::Whole)
    );
}

#[test]
fn ack_req_events_are_acknowledged_with_an_empty_resp_200() {
    let mut p = Peer::greeted();
    let ev = GossipEvent::new("t", 1, b"d".to_vec());
    let mut v = Vec::new();
    ev.encode(&mut v);
    // The node sends an EVENT asking for an acknowledgement; the peer's empty RESP 200 passes.
    let out = OutFrame {
        flags: Flags::EVENT | Flags::ACK_REQ,
        ..OutFrame::request(APP_GOSSIP, 7, &v)
    };
    p.node.tracker_mut().on_send(&out.header()).unwrap();
    assert_eq!(
        p.send(&OutFrame::response(APP_GOSSIP, 7, 200, b"")),
        Ok(Progress::Whole)
    );
    assert_eq!(p.node.tracker_mut().outstanding(), 0);
}

#[test]
fn app_e2e_payloads_are_never_inspected() {
    let mut p = Peer::greeted();
    let frame = OutFrame {
        flags: Flags::EVENT | Flags::APP_E2E,
        ..OutFrame::request(APP_GOSSIP, 0, b"\x00opaque")
    };
    assert_eq!(p.send(&frame), Ok(Progress::Whole));
}

#[test]
fn farewell_answers_a_request_or_says_goaway() {
    let mut p = Peer::greeted();
    p.enc
        .encode(&OutFrame::request(200, 5, b"x"), &mut p.buf)
        .unwrap();
    let reject = p.node.poll(&mut p.buf).unwrap_err();
    match reject.farewell(1) {
        Farewell::Respond {
            app_proto_id,
            corr_id,
            body,
        } => {
            assert_eq!((app_proto_id, corr_id), (200, 5));
            assert_eq!((body.code, body.reason.as_str()), (400, "unknown_app"));
        }
        other => panic!("expected a response, got {other:?}"),
    }
    // A frame whose header cannot be trusted gets a GOAWAY naming the label.
    let mut p = Peer::greeted();
    let mut bad = ronode_proto::frame::Header::parse(&[0u8; 38]);
    bad.len = 38;
    bad.ver = 7;
    p.buf.extend_from_slice(&bad.to_bytes());
    let reject = p.node.poll(&mut p.buf).unwrap_err();
    assert_eq!(reject.reason, Reason::BadVersion);
    match reject.farewell(1) {
        Farewell::GoAway(g) => assert_eq!((g.reason.as_str(), g.last_corr_id), ("bad_version", 1)),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
}

#[test]
fn truncated_at_end_of_input() {
    let mut p = Peer::greeted();
    p.enc
        .encode(
            &OutFrame::request(APP_OBJECTS, 2, &get(ObjectAddr::of(b"y"))),
            &mut p.buf,
        )
        .unwrap();
    p.buf.truncate(p.buf.len() - 1);
    assert!(p.node.poll(&mut p.buf).unwrap().is_none());
    assert_eq!(p.node.at_eof(&p.buf).unwrap_err().reason, Reason::Truncated);
    assert!(p.node.at_eof(&BytesMut::new()).is_ok());
}

#[test]
fn too_many_unanswered_requests_is_quota() {
    let mut p = Peer::greeted();
    for corr in 0..64u64 {
        assert!(p
            .send(&OutFrame::request(
                APP_OBJECTS,
                10 + corr,
                &get(ObjectAddr::of(b"z"))
            ))
            .is_ok());
    }
    assert_eq!(
        p.send(&OutFrame::request(
            APP_OBJECTS,
            99,
            &get(ObjectAddr::of(b"z"))
        )),
        Err(Reason::Quota)
    );
}

#[test]
fn mid_request_covers_partial_frames_and_open_request_streams() {
    let mut p = Peer::greeted();
    assert!(!p.node.mid_request(&p.buf), "between requests");
    let mut put = Vec::new();
    ObjectRequest::Put(Put {
        addr: ObjectAddr::of(b"abcdef"),
        size: 6,
    })
    .encode(&mut put);
    let start = OutFrame {
        flags: Flags::REQ | Flags::START,
        ..OutFrame::request(APP_OBJECTS, 2, &put)
    };
    assert_eq!(p.send(&start), Ok(Progress::Opened));
    assert!(p.node.mid_request(&p.buf), "a request stream is open");
    // No header yet: the farewell is a GOAWAY naming the label.
    let stalled = p.node.stalled(&p.buf, 5_000);
    assert_eq!(stalled.reason, Reason::SlowClient);
    assert!(matches!(stalled.farewell(0), Farewell::GoAway(g) if g.reason == "slow_client"));

    // Part of the next frame: the farewell answers that request with 408.
    let end = OutFrame {
        flags: Flags::REQ | Flags::END,
        ..OutFrame::request(APP_OBJECTS, 2, b"abcdef")
    };
    let mut bytes = BytesMut::new();
    p.enc.encode(&end, &mut bytes).unwrap();
    p.buf.extend_from_slice(&bytes[..40]);
    assert!(
        matches!(p.node.poll(&mut p.buf), Ok(None)),
        "the frame is not whole yet"
    );
    match p.node.stalled(&p.buf, 5_000).farewell(0) {
        Farewell::Respond { corr_id, body, .. } => {
            assert_eq!((corr_id, body.code), (2, 408));
        }
        other => panic!("expected a 408 answer, got {other:?}"),
    }
    p.buf.extend_from_slice(&bytes[40..]);
    assert_eq!(p.poll(), Ok(Progress::Closed));
    assert!(!p.node.mid_request(&p.buf), "the upload arrived whole");
}
