//! The blocking client against an in-process fake node: a std thread serving rustls
//! `ServerConnection`s (the SDK's own `server_config`) on 127.0.0.1:0, speaking OAP/1 as
//! `docs/PROTOCOL.md` says, and checking every client frame with the node's receive pipeline.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ronode_client::tls::{peer_node_id, server_config};
use ronode_client::{Client, ClientError, ClientOptions, NodeId, ObjectAddr, PqMode, Reason};
use ronode_proto::cert::node_certificate;
use ronode_proto::control::{Control, GoAway, HelloReply, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::identity::{Identity, IdentitySeeds};
use ronode_proto::inbound::{Inbound, ServedApps};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::msg::objects::{Get, ObjectRequest, PutResp};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::sequence::{Progress, Role};
use ronode_proto::{Flags, Frame, FrameEncoder, OutFrame};
use rustls::{ServerConnection, StreamOwned};

/// Every socket wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);
/// 300 KiB: five frames of the fake node's 64 KiB chunks.
const BIG: usize = 300 * 1024;

fn identity(n: u8) -> Identity {
    Identity::from_seeds(&IdentitySeeds {
        ed25519: [n; 32],
        ml_dsa: [n.wrapping_add(100); 32],
    })
}

/// Deterministic bytes that are not a repeating pattern.
fn object(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut counter = 0u64;
    while out.len() < len {
        let block = ObjectAddr::of(&[&[seed][..], &counter.to_le_bytes()].concat());
        out.extend_from_slice(&block.0);
        counter += 1;
    }
    out.truncate(len);
    out
}

/// What the fake node does.
#[derive(Clone)]
struct Behaviour {
    identity: u8,
    pq_mode: PqMode,
    objects: HashMap<ObjectAddr, Vec<u8>>,
    /// PUT needs a non-empty capability (any bytes); without one: 401 on the START frame.
    require_cap: bool,
    chunk_bytes: usize,
    /// Right after the HELLO reply: GOAWAY naming the HELLO as the last request answered.
    goaway_after_hello: bool,
    /// How many connections to serve before the thread ends.
    connections: usize,
    /// Completes the TLS handshake, then answers nothing.
    mute: bool,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            identity: 1,
            pq_mode: PqMode::Hybrid,
            objects: HashMap::new(),
            require_cap: false,
            chunk_bytes: 64 * 1024,
            goaway_after_hello: false,
            connections: 1,
            mute: false,
        }
    }
}

/// How a served connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The client left; the node id it presented, if any.
    Done(Option<NodeId>),
    Tls(String),
    Io(String),
    /// The client broke the wire rules.
    Reject(String),
}

struct FakeNode {
    addr: SocketAddr,
    node_id: NodeId,
    thread: JoinHandle<Vec<Outcome>>,
}

impl FakeNode {
    fn start(behaviour: Behaviour) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let id = identity(behaviour.identity);
        let (cert, key) = node_certificate(&id).unwrap();
        let config = server_config(&cert, &key, behaviour.pq_mode).unwrap();
        let thread = thread::spawn(move || {
            let objects = Arc::new(Mutex::new(behaviour.objects.clone()));
            let behaviour = Arc::new(behaviour);
            let sessions: Vec<JoinHandle<Outcome>> = (0..behaviour.connections)
                .map(|_| {
                    let (sock, _) = listener.accept().unwrap();
                    sock.set_read_timeout(Some(WAIT)).unwrap();
                    sock.set_write_timeout(Some(WAIT)).unwrap();
                    let conn = ServerConnection::new(config.clone()).unwrap();
                    let (behaviour, objects) = (behaviour.clone(), objects.clone());
                    thread::spawn(move || {
                        Session {
                            stream: StreamOwned::new(conn, sock),
                            behaviour,
                            objects,
                            inbound: Inbound::new(Role::Acceptor, MAX_FRAME, ServedApps::NODE),
                            encoder: FrameEncoder::new(MAX_FRAME),
                            puts: HashMap::new(),
                        }
                        .serve()
                    })
                })
                .collect();
            sessions
                .into_iter()
                .map(|s| s.join().expect("fake node session panicked"))
                .collect()
        });
        FakeNode {
            addr,
            node_id: id.node_id(),
            thread,
        }
    }

    /// Waits for the node to finish its connections (the clients must be gone).
    fn finish(self) -> Vec<Outcome> {
        self.thread.join().expect("fake node panicked")
    }
}

/// A PUT being received: its address, size, the body so far, and whether it was answered.
struct PendingPut {
    addr: ObjectAddr,
    size: u64,
    body: Vec<u8>,
    answered: bool,
}

struct Session {
    stream: StreamOwned<ServerConnection, TcpStream>,
    behaviour: Arc<Behaviour>,
    objects: Arc<Mutex<HashMap<ObjectAddr, Vec<u8>>>>,
    inbound: Inbound,
    encoder: FrameEncoder,
    puts: HashMap<u64, PendingPut>,
}

impl Session {
    fn serve(&mut self) -> Outcome {
        let mut buf = BytesMut::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            loop {
                match self.inbound.poll(&mut buf) {
                    Ok(Some(r)) => {
                        if let Err(e) = self.handle(r.frame, r.progress) {
                            return Outcome::Io(e.to_string());
                        }
                    }
                    Ok(None) => break,
                    Err(reject) => return Outcome::Reject(reject.to_string()),
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => {
                    return match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(tls) => Outcome::Tls(tls.to_string()),
                        None => Outcome::Io(e.to_string()),
                    }
                }
            }
        }
        if let Err(r) = self.inbound.at_eof(&buf) {
            return Outcome::Reject(r.to_string());
        }
        Outcome::Done(peer_node_id(&self.stream.conn))
    }

    fn send(&mut self, frame: OutFrame<'_>) -> io::Result<()> {
        self.inbound
            .tracker_mut()
            .on_send(&frame.header())
            .expect("fake node breaks the stream rules");
        let mut out = Vec::new();
        self.encoder.encode(&frame, &mut out).unwrap();
        self.stream.write_all(&out)?;
        self.stream.flush()
    }

    fn respond(&mut self, app: u16, corr_id: u64, code: u16, payload: &[u8]) -> io::Result<()> {
        self.send(OutFrame::response(app, corr_id, code, payload))
    }

    fn error(&mut self, app: u16, corr_id: u64, reason: Reason, msg: &str) -> io::Result<()> {
        let mut body = Vec::new();
        ErrorBody::new(reason, msg, corr_id, 250).encode(app, &mut body);
        self.respond(app, corr_id, reason.status(), &body)
    }

    fn handle(&mut self, frame: Frame, progress: Progress) -> io::Result<()> {
        if self.behaviour.mute {
            return Ok(());
        }
        let h = frame.header;
        let corr = h.corr_id;
        match h.app_proto_id {
            APP_CONTROL => match Control::parse(&frame.payload).unwrap() {
                Control::Hello(hello) => {
                    assert!(hello.ua.is_some_and(|ua| !ua.is_empty()));
                    let reply = Control::HelloReply(HelloReply::default()).to_vec();
                    self.respond(APP_CONTROL, corr, 200, &reply)?;
                    if self.behaviour.goaway_after_hello {
                        let goaway = Control::GoAway(GoAway {
                            reason: "draining".into(),
                            last_corr_id: corr,
                        })
                        .to_vec();
                        self.send(OutFrame {
                            flags: Flags::EVENT,
                            ..OutFrame::request(APP_CONTROL, 0, &goaway)
                        })?;
                    }
                    Ok(())
                }
                Control::Ping(n) => {
                    self.respond(APP_CONTROL, corr, 200, &Control::Pong(n).to_vec())
                }
                other => panic!("unexpected control message {other:?}"),
            },
            APP_OBJECTS if progress.begins() => {
                match ObjectRequest::decode(&frame.payload).unwrap() {
                    ObjectRequest::Head(head) => match self.object(&head.addr) {
                        Some(obj) => {
                            let mut out = Vec::new();
                            ronode_proto::msg::objects::HeadResp {
                                size: obj.len() as u64,
                            }
                            .encode(&mut out);
                            self.respond(APP_OBJECTS, corr, 200, &out)
                        }
                        None => self.not_found(corr, &head.addr),
                    },
                    ObjectRequest::Get(get) => self.get(corr, &get),
                    ObjectRequest::Put(put) => {
                        self.puts.insert(
                            corr,
                            PendingPut {
                                addr: put.addr,
                                size: put.size,
                                body: Vec::new(),
                                answered: false,
                            },
                        );
                        if self.behaviour.require_cap && frame.cap.is_empty() {
                            self.puts.get_mut(&corr).unwrap().answered = true;
                            self.error(
                                APP_OBJECTS,
                                corr,
                                Reason::Unauthorized,
                                "PUT needs a capability",
                            )?;
                        }
                        if progress.ends() {
                            self.finish_put(corr)?;
                        }
                        Ok(())
                    }
                }
            }
            APP_OBJECTS => {
                let put = self.puts.get_mut(&corr).expect("body frame of a PUT");
                put.body.extend_from_slice(&frame.payload);
                if progress.ends() {
                    self.finish_put(corr)?;
                }
                Ok(())
            }
            app => panic!("unexpected app {app}"),
        }
    }

    fn object(&self, addr: &ObjectAddr) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(addr).cloned()
    }

    fn not_found(&mut self, corr: u64, addr: &ObjectAddr) -> io::Result<()> {
        self.error(
            APP_OBJECTS,
            corr,
            Reason::NotFound,
            &format!("no object {addr}"),
        )
    }

    fn get(&mut self, corr: u64, get: &Get) -> io::Result<()> {
        let Some(obj) = self.object(&get.addr) else {
            return self.not_found(corr, &get.addr);
        };
        let (code, body) = match get.range {
            None => (200, &obj[..]),
            Some(r) => {
                let span = r.clamp(obj.len() as u64);
                (206, &obj[span.start as usize..span.end as usize])
            }
        };
        let chunk = self.behaviour.chunk_bytes;
        if body.len() <= chunk {
            return self.respond(APP_OBJECTS, corr, code, body);
        }
        let parts: Vec<&[u8]> = body.chunks(chunk).collect();
        for (i, part) in parts.iter().enumerate() {
            let flags = match i {
                0 => Flags::RESP | Flags::START,
                _ if i + 1 == parts.len() => Flags::RESP | Flags::END,
                _ => Flags::RESP,
            };
            self.send(OutFrame {
                flags,
                ..OutFrame::response(APP_OBJECTS, corr, code, part)
            })?;
        }
        Ok(())
    }

    fn finish_put(&mut self, corr: u64) -> io::Result<()> {
        let put = self.puts.remove(&corr).unwrap();
        if put.answered {
            return Ok(());
        }
        if put.body.len() as u64 != put.size || ObjectAddr::of(&put.body) != put.addr {
            return self.error(
                APP_OBJECTS,
                corr,
                Reason::BadDigest,
                "body does not hash to addr",
            );
        }
        let stored = self
            .objects
            .lock()
            .unwrap()
            .insert(put.addr, put.body)
            .is_none();
        let mut out = Vec::new();
        PutResp {
            addr: put.addr,
            size: put.size,
            stored,
        }
        .encode(&mut out);
        self.respond(APP_OBJECTS, corr, 200, &out)
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        ua: "sdk-test/0.1".into(),
        timeout: WAIT,
        ..ClientOptions::default()
    }
}

fn all_done(outcomes: &[Outcome]) {
    for o in outcomes {
        assert!(matches!(o, Outcome::Done(_)), "{outcomes:?}");
    }
}

#[test]
fn connect_ping_and_identity() {
    let node = FakeNode::start(Behaviour::default());
    let pinned = ClientOptions {
        pin: Some(node.node_id),
        ..opts()
    };
    let mut client = Client::connect(node.addr, &pinned).unwrap();
    assert_eq!(client.negotiated_group().as_deref(), Some("X25519MLKEM768"));
    assert_eq!(client.peer_node_id(), Some(node.node_id));
    assert_eq!(client.hello_reply(), &HelloReply::default());
    for _ in 0..3 {
        assert!(client.ping().unwrap() < WAIT);
    }
    client.close().unwrap();
    assert_eq!(node.finish(), [Outcome::Done(None)]);
}

#[test]
fn classical_group_when_asked() {
    let node = FakeNode::start(Behaviour::default());
    let off = ClientOptions {
        pq_mode: PqMode::Off,
        ..opts()
    };
    let mut client = Client::connect(node.addr, &off).unwrap();
    assert_eq!(client.negotiated_group().as_deref(), Some("X25519"));
    client.ping().unwrap();
    drop(client);
    all_done(&node.finish());
}

#[test]
fn pin_mismatch_is_refused_naming_both_ids() {
    let node = FakeNode::start(Behaviour::default());
    let wrong = identity(9).node_id();
    let pinned = ClientOptions {
        pin: Some(wrong),
        ..opts()
    };
    let err = Client::connect(node.addr, &pinned).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert!(msg.contains(&wrong.to_string()), "{msg}");
    assert!(msg.contains(&node.node_id.to_string()), "{msg}");
    assert!(matches!(&node.finish()[..], [Outcome::Tls(_)]));
}

#[test]
fn pq_only_node_refuses_a_classical_client() {
    let node = FakeNode::start(Behaviour {
        pq_mode: PqMode::PqOnly,
        ..Behaviour::default()
    });
    let off = ClientOptions {
        pq_mode: PqMode::Off,
        ..opts()
    };
    let err = Client::connect(node.addr, &off).unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert!(matches!(&node.finish()[..], [Outcome::Tls(_)]));
}

#[test]
fn head_get_and_ranges() {
    let small = b"hello world".to_vec();
    let big = object(BIG, 1);
    let empty = Vec::new();
    let objects: HashMap<_, _> = [&small, &big, &empty]
        .into_iter()
        .map(|o| (ObjectAddr::of(o), o.clone()))
        .collect();
    let node = FakeNode::start(Behaviour {
        objects,
        ..Behaviour::default()
    });
    let mut client = Client::connect(node.addr, &opts()).unwrap();

    let (small_addr, big_addr) = (ObjectAddr::of(&small), ObjectAddr::of(&big));
    assert_eq!(client.head(&small_addr).unwrap(), 11);
    assert_eq!(client.head(&big_addr).unwrap(), BIG as u64);
    assert_eq!(client.get(&small_addr).unwrap(), small);
    // Five RESP frames, START..END, reassembled and verified.
    assert_eq!(client.get(&big_addr).unwrap(), big);
    assert_eq!(client.get(&ObjectAddr::of(b"")).unwrap(), b"");

    assert_eq!(client.get_range(&small_addr, 6, 100).unwrap(), b"world");
    assert_eq!(client.get_range(&small_addr, 11, 20).unwrap(), b"");
    assert_eq!(
        client.get_range(&big_addr, 100_000, 250_000).unwrap(),
        &big[100_000..250_000]
    );
    let err = client.get_range(&small_addr, 5, 5).unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");

    // 404, as a typed error; the session goes on.
    let abc = ObjectAddr::of(b"abc");
    for err in [
        client.head(&abc).unwrap_err(),
        client.get(&abc).unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!(err.reason(), Some(Reason::NotFound));
        let ClientError::Node(e) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(e.status, 404);
        assert_eq!(e.message, format!("no object {abc}"));
    }
    client.ping().unwrap();
    drop(client);
    all_done(&node.finish());
}

#[test]
fn put_then_get() {
    let node = FakeNode::start(Behaviour {
        require_cap: true,
        connections: 2,
        ..Behaviour::default()
    });
    let mut client = Client::connect(node.addr, &opts()).unwrap();
    let cap = b"test capability".as_slice();

    let big = object(BIG, 2);
    let resp = client.put(&big, Some(cap)).unwrap();
    assert_eq!(resp.addr, ObjectAddr::of(&big));
    assert_eq!(resp.size, BIG as u64);
    assert!(resp.stored);
    assert_eq!(client.get(&resp.addr).unwrap(), big);
    // A duplicate succeeds without storing.
    assert!(!client.put(&big, Some(cap)).unwrap().stored);

    let small = client.put(b"hello world", Some(cap)).unwrap();
    assert_eq!(
        small.addr.to_string(),
        "b3:d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
    );
    assert_eq!(client.head(&small.addr).unwrap(), 11);
    // An empty object is one START|END frame.
    let empty = client.put(b"", Some(cap)).unwrap();
    assert_eq!(empty.addr, ObjectAddr::of(b""));
    assert_eq!(client.get(&empty.addr).unwrap(), b"");

    // Small chunks: 75 body frames, the same object.
    let mut small_chunks = Client::connect(
        node.addr,
        &ClientOptions {
            chunk_bytes: 4096,
            ..opts()
        },
    )
    .unwrap();
    let other = object(BIG, 5);
    assert!(small_chunks.put(&other, Some(cap)).unwrap().stored);
    assert_eq!(client.get(&ObjectAddr::of(&other)).unwrap(), other);
    drop((client, small_chunks));
    all_done(&node.finish());
}

#[test]
fn put_without_capability_is_unauthorized() {
    let node = FakeNode::start(Behaviour {
        require_cap: true,
        connections: 2,
        ..Behaviour::default()
    });
    // A small body: the 401 comes after the whole stream was sent; the session goes on.
    let mut client = Client::connect(node.addr, &opts()).unwrap();
    let err = client.put(b"hello world", None).unwrap_err();
    let ClientError::Node(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((e.status, e.reason), (401, Some(Reason::Unauthorized)));
    assert!(!err.is_not_found());

    // 3 MiB in 4 KiB frames: the node answers on the START frame, usually long before the
    // client is done; either way the call returns the 401.
    let mut small_chunks = Client::connect(
        node.addr,
        &ClientOptions {
            chunk_bytes: 4096,
            ..opts()
        },
    )
    .unwrap();
    let err = small_chunks.put(&object(3 << 20, 3), None).unwrap_err();
    assert_eq!(err.reason(), Some(Reason::Unauthorized), "{err:?}");
    match small_chunks.ping() {
        // Answered early: the unfinished stream ended the session.
        Err(ClientError::Closed(why)) => assert!(why.contains("unfinished"), "{why}"),
        Ok(_) => {}
        Err(other) => panic!("{other:?}"),
    }
    client.ping().unwrap();
    drop((client, small_chunks));
    all_done(&node.finish());
}

#[test]
fn wrong_bytes_are_bad_digest() {
    // The node holds bytes under an address they do not hash to: once in one frame, once
    // streamed over several.
    let small_addr = ObjectAddr::of(b"original");
    let big_addr = ObjectAddr::of(&object(BIG, 4));
    let mut tampered = object(BIG, 4);
    tampered[BIG - 1] ^= 1;
    let objects = HashMap::from([(small_addr, b"tampered".to_vec()), (big_addr, tampered)]);
    let node = FakeNode::start(Behaviour {
        objects,
        ..Behaviour::default()
    });
    let mut client = Client::connect(node.addr, &opts()).unwrap();
    for addr in [small_addr, big_addr] {
        let err = client.get(&addr).unwrap_err();
        let ClientError::BadDigest { expected, actual } = err else {
            panic!("{err:?}")
        };
        assert_eq!(expected, addr);
        assert_ne!(actual, addr);
        assert_eq!(
            ClientError::BadDigest { expected, actual }.reason(),
            Some(Reason::BadDigest)
        );
    }
    // The stream was read to its end: the session is still good.
    client.ping().unwrap();
    drop(client);
    all_done(&node.finish());
}

#[test]
fn goaway_ends_the_session() {
    let node = FakeNode::start(Behaviour {
        goaway_after_hello: true,
        ..Behaviour::default()
    });
    let mut client = Client::connect(node.addr, &opts()).unwrap();
    let err = client.ping().unwrap_err();
    let ClientError::Closed(why) = &err else {
        panic!("{err:?}")
    };
    assert!(why.contains("GOAWAY") && why.contains("draining"), "{why}");
    // No new request on that session.
    assert!(matches!(
        client.head(&ObjectAddr::of(b"x")),
        Err(ClientError::Closed(_))
    ));
    drop(client);
    node.finish();
}

#[test]
fn silent_node_times_out() {
    // Accepts TCP and never speaks TLS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        // Until the client gives up and closes.
        let mut sink = Vec::new();
        let _ = sock.read_to_end(&mut sink);
    });
    let quick = ClientOptions {
        timeout: Duration::from_millis(300),
        ..opts()
    };
    let started = Instant::now();
    let err = Client::connect(addr, &quick).unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    holder.join().unwrap();
}

#[test]
fn mute_node_times_out_hello() {
    let node = FakeNode::start(Behaviour {
        mute: true,
        ..Behaviour::default()
    });
    let quick = ClientOptions {
        timeout: Duration::from_millis(500),
        ..opts()
    };
    let started = Instant::now();
    let err = Client::connect(node.addr, &quick).unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    all_done(&node.finish());
}

#[test]
fn options_are_checked_before_dialling() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for bad in [
        ClientOptions {
            ua: "u".repeat(257),
            ..opts()
        },
        ClientOptions {
            timeout: Duration::ZERO,
            ..opts()
        },
    ] {
        let err = Client::connect(addr, &bad).unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");
    }
}
