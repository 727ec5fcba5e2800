//! The core driven by a scripted node, bytes handed over in memory: no sockets, no TLS.

use super::*;
use ronode_proto::frame::Header;
use ronode_proto::Reason;

/// The node's side: its own receive pipeline and encoder.
struct FakeNode {
    inbound: Inbound,
    encoder: FrameEncoder,
    buf: BytesMut,
}

impl FakeNode {
    fn new() -> FakeNode {
        FakeNode {
            inbound: Inbound::new(Role::Acceptor, MAX_FRAME, ServedApps::NODE),
            encoder: FrameEncoder::new(MAX_FRAME),
            buf: BytesMut::new(),
        }
    }

    /// The frames the client has queued, checked by the node's pipeline.
    fn recv(&mut self, conv: &mut Conversation) -> Vec<Received> {
        self.buf.extend_from_slice(&conv.take_out());
        let mut got = Vec::new();
        while let Some(r) = self
            .inbound
            .poll(&mut self.buf)
            .expect("client frames pass")
        {
            got.push(r);
        }
        got
    }

    /// Sends `frame` to the client (recorded by the node's tracker unless `raw`).
    fn send(&mut self, conv: &mut Conversation, frame: OutFrame<'_>, raw: bool) {
        if !raw {
            self.inbound.tracker_mut().on_send(&frame.header()).unwrap();
        }
        let mut bytes = Vec::new();
        self.encoder.encode(&frame, &mut bytes).unwrap();
        conv.read_buf().extend_from_slice(&bytes);
    }

    fn respond(
        &mut self,
        conv: &mut Conversation,
        corr_id: u64,
        flags: Flags,
        code: u16,
        p: &[u8],
    ) {
        let frame = OutFrame {
            flags: Flags::RESP | flags,
            ..OutFrame::response(APP_OBJECTS, corr_id, code, p)
        };
        self.send(conv, frame, false);
    }

    fn error(&mut self, conv: &mut Conversation, corr_id: u64, reason: Reason) {
        let mut p = Vec::new();
        ErrorBody::new(reason, "scripted", corr_id, 0).encode(APP_OBJECTS, &mut p);
        self.respond(conv, corr_id, Flags::EMPTY, reason.status(), &p);
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        chunk_bytes: 4096,
        ..ClientOptions::default()
    }
}

/// A conversation past HELLO with a node allowing `max_inflight` requests.
fn session() -> (Conversation, FakeNode) {
    let mut conv = Conversation::new(&opts());
    let mut node = FakeNode::new();
    let corr_id = conv.start(Request::Hello).unwrap();
    let hello = node.recv(&mut conv);
    assert_eq!(hello.len(), 1);
    let reply = Control::HelloReply(HelloReply {
        max_frame: MAX_FRAME,
        max_inflight: 8,
        flags_supported: 0,
        versions: vec![VERSION],
        transports: vec![],
    })
    .to_vec();
    node.send(
        &mut conv,
        OutFrame::response(APP_CONTROL, corr_id, STATUS_OK, &reply),
        false,
    );
    conv.process().unwrap();
    assert!(matches!(conv.take(corr_id), Some(Ok(Reply::Hello))));
    assert_eq!(conv.window(), 8);
    (conv, node)
}

/// `data` as a START .. END stream of `parts` frames with status `code`.
fn stream(node: &mut FakeNode, conv: &mut Conversation, corr_id: u64, code: u16, data: &[u8]) {
    let parts: Vec<&[u8]> = data.chunks(data.len().div_ceil(3)).collect();
    for (i, part) in parts.iter().enumerate() {
        let flags = match i {
            0 => Flags::START,
            _ if i + 1 == parts.len() => Flags::END,
            _ => Flags::EMPTY,
        };
        node.respond(conv, corr_id, flags, code, part);
    }
}

#[test]
fn streamed_get_is_reassembled_and_verified() {
    let (mut conv, mut node) = session();
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let addr = ObjectAddr::of(&data);
    let corr_id = conv.start(Request::Get(addr)).unwrap();
    node.recv(&mut conv);
    stream(&mut node, &mut conv, corr_id, STATUS_OK, &data);
    conv.process().unwrap();
    assert_eq!(conv.take(corr_id).unwrap().unwrap().bytes().unwrap(), data);

    // Bytes that do not hash to the address are bad_digest, and the session goes on.
    let corr_id = conv.start(Request::Get(addr)).unwrap();
    node.recv(&mut conv);
    stream(&mut node, &mut conv, corr_id, STATUS_OK, b"not the object");
    conv.process().unwrap();
    let err = conv.take(corr_id).unwrap().unwrap_err();
    assert_eq!(err.reason(), Some(Reason::BadDigest), "{err}");
    conv.check_open().unwrap();
}

#[test]
fn ranges_errors_and_status_mismatches() {
    let (mut conv, mut node) = session();
    let addr = ObjectAddr::of(b"x");
    let corr_id = conv.start(Request::GetRange(addr, 2, 6)).unwrap();
    node.recv(&mut conv);
    node.respond(&mut conv, corr_id, Flags::EMPTY, STATUS_PARTIAL, b"abcd");
    conv.process().unwrap();
    assert_eq!(
        conv.take(corr_id).unwrap().unwrap().bytes().unwrap(),
        b"abcd"
    );

    let corr_id = conv.start(Request::Head(addr)).unwrap();
    node.recv(&mut conv);
    node.error(&mut conv, corr_id, Reason::NotFound);
    conv.process().unwrap();
    assert!(conv.take(corr_id).unwrap().unwrap_err().is_not_found());
    conv.check_open().unwrap();

    assert!(matches!(
        conv.start(Request::GetRange(addr, 5, 5)),
        Err(ClientError::InvalidRequest(_))
    ));

    // A range answered 200 breaks the protocol: the session is over.
    let corr_id = conv.start(Request::GetRange(addr, 0, 4)).unwrap();
    node.recv(&mut conv);
    node.respond(&mut conv, corr_id, Flags::EMPTY, STATUS_OK, b"abcd");
    conv.process().unwrap();
    assert!(matches!(
        conv.take(corr_id),
        Some(Err(ClientError::Protocol(_)))
    ));
    assert!(matches!(conv.check_open(), Err(ClientError::Closed(_))));
}

#[test]
fn pipelined_answers_complete_out_of_order() {
    let (mut conv, mut node) = session();
    let objects: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 5000 + i as usize]).collect();
    let ids: Vec<u64> = objects
        .iter()
        .map(|o| conv.start(Request::Get(ObjectAddr::of(o))).unwrap())
        .collect();
    assert_eq!(node.recv(&mut conv).len(), 3);
    for i in [2, 0, 1] {
        stream(&mut node, &mut conv, ids[i], STATUS_OK, &objects[i]);
    }
    conv.process().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            conv.take(*id).unwrap().unwrap().bytes().unwrap(),
            objects[i]
        );
    }
}

#[test]
fn node_ping_is_answered_and_goaway_fails_what_it_drops() {
    let (mut conv, mut node) = session();
    let ping = Control::Ping(77).to_vec();
    node.send(&mut conv, OutFrame::request(APP_CONTROL, 77, &ping), false);
    let a = conv.start(Request::Head(ObjectAddr::of(b"a"))).unwrap();
    let b = conv.start(Request::Head(ObjectAddr::of(b"b"))).unwrap();
    conv.process().unwrap();
    let frames = node.recv(&mut conv);
    let pong = frames
        .iter()
        .find(|r| r.frame.kind() == Kind::Resp)
        .expect("PONG");
    assert_eq!(Control::parse(&pong.frame.payload), Ok(Control::Pong(77)));

    let mut g = Vec::new();
    Control::GoAway(GoAway {
        reason: "draining".into(),
        last_corr_id: a,
    })
    .write(&mut g);
    let goaway = OutFrame {
        flags: Flags::EVENT,
        ..OutFrame::request(APP_CONTROL, 0, &g)
    };
    node.send(&mut conv, goaway, false);
    conv.process().unwrap();
    assert!(matches!(conv.take(b), Some(Err(ClientError::Closed(_)))));
    assert!(conv.take(a).is_none(), "a is still to be answered");
    node.respond(&mut conv, a, Flags::EMPTY, STATUS_OK, &{
        let mut p = Vec::new();
        HeadResp { size: 1 }.encode(&mut p);
        p
    });
    conv.process().unwrap();
    assert_eq!(conv.take(a).unwrap().unwrap().size().unwrap(), 1);
    assert!(matches!(
        conv.start(Request::Ping),
        Err(ClientError::Closed(_))
    ));
}

#[test]
fn put_streams_its_body_and_stops_at_an_early_answer() {
    let (mut conv, mut node) = session();
    let body = vec![9u8; 10_000];
    let mut up = conv.start_put(&body, b"cap").unwrap();
    let mut steps = Vec::new();
    loop {
        let step = conv.put_step(&mut up).unwrap();
        steps.push(step);
        if steps.last() == Some(&PutStep::Sent) {
            break;
        }
    }
    // START, then 4096 + 4096 + 1808.
    assert_eq!(steps.len(), 4);
    let frames = node.recv(&mut conv);
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0].frame.cap.as_ref(), b"cap");
    assert_eq!(frames[3].progress, Progress::Closed);
    let mut p = Vec::new();
    PutResp {
        addr: ObjectAddr::of(&body),
        size: body.len() as u64,
        stored: true,
    }
    .encode(&mut p);
    node.respond(&mut conv, up.corr_id, Flags::EMPTY, STATUS_OK, &p);
    conv.process().unwrap();
    assert!(
        conv.take(up.corr_id)
            .unwrap()
            .unwrap()
            .put()
            .unwrap()
            .stored
    );

    // Refused after its first body frame: the rest is not sent, the session ends.
    let mut up = conv.start_put(&body, &[]).unwrap();
    assert_eq!(conv.put_step(&mut up).unwrap(), PutStep::Queued);
    node.recv(&mut conv);
    node.error(&mut conv, up.corr_id, Reason::Unauthorized);
    conv.process().unwrap();
    assert_eq!(conv.put_step(&mut up).unwrap(), PutStep::AnsweredEarly);
    let err = conv.take(up.corr_id).unwrap().unwrap_err();
    assert_eq!(err.reason(), Some(Reason::Unauthorized));
    assert!(matches!(conv.check_open(), Err(ClientError::Closed(_))));
}

#[test]
fn a_frame_breaking_the_rules_ends_the_session_with_a_farewell() {
    let (mut conv, mut node) = session();
    let a = conv.start(Request::Ping).unwrap();
    node.recv(&mut conv);
    // An answer to a request never sent.
    node.send(
        &mut conv,
        OutFrame::response(APP_OBJECTS, 999, STATUS_OK, b"?"),
        true,
    );
    assert!(matches!(conv.process(), Err(ClientError::Protocol(_))));
    assert!(conv.closing());
    let farewell = conv.take_out();
    let header = Header::parse(farewell[..HEADER_LEN].try_into().unwrap());
    assert_eq!(header.app_proto_id, APP_CONTROL, "a GOAWAY");
    assert!(matches!(conv.take(a), Some(Err(ClientError::Closed(_)))));
}

#[test]
fn eof_fails_what_is_waiting() {
    let (mut conv, mut node) = session();
    let a = conv.start(Request::Ping).unwrap();
    node.recv(&mut conv);
    assert!(conv.take(a).is_none());
    conv.on_eof();
    conv.process().unwrap();
    assert!(matches!(conv.take(a), Some(Err(ClientError::Closed(_)))));
}
