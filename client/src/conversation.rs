//! The sans-IO core of a client session: everything about OAP/1 that does not touch a socket,
//! driven by both transports ([`crate::blocking`] over std, [`crate::async_client`] over tokio).
//!
//! A transport moves bytes only: it writes out what [`Conversation::take_out`] returns, appends
//! the plaintext it reads to [`Conversation::read_buf`], calls [`Conversation::process`], and
//! collects answers with [`Conversation::take`]. The core encodes requests, runs every received
//! frame through the node's own receive pipeline ([`Inbound`]: frame checks and sequence rules),
//! reassembles streamed answers, decodes error bodies, answers the node's PING, honours GOAWAY,
//! and verifies a whole GET against its address. Answers are keyed by corr_id, so several
//! requests may be in flight (pipelining); each completes on its own.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use ronode_proto::control::{Control, GoAway, Hello, HelloReply, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{Frame, VERSION};
use ronode_proto::inbound::{Inbound, Received, Reject, ServedApps};
use ronode_proto::limits::{
    HEADER_LEN, MAX_CAP_BYTES, MAX_FRAME, MAX_INFLIGHT, MIN_NEGOTIATED_FRAME,
};
use ronode_proto::msg::gossip::{GossipEvent, GossipOk, GossipRequest};
use ronode_proto::msg::objects::{
    ByteRange, Get, Head, HeadResp, ObjectRequest, Put, PutResp, STATUS_OK, STATUS_PARTIAL,
};
use ronode_proto::msg::{APP_GOSSIP, APP_OBJECTS};
use ronode_proto::sequence::{Progress, Role};
use ronode_proto::{Flags, FrameEncoder, Kind, ObjectAddr, OutFrame};

use crate::error::{protocol, ClientError};
use crate::options::ClientOptions;

/// A one-frame request the core can encode.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    Hello,
    Ping,
    Head(ObjectAddr),
    Get(ObjectAddr),
    GetRange(ObjectAddr, u64, u64),
}

/// A finished, checked answer.
#[derive(Debug)]
pub(crate) enum Reply {
    Hello,
    Pong(Duration),
    Size(u64),
    Bytes(Vec<u8>),
    Put(PutResp),
    /// A gossip REQ's `{"ok": true}`, or the acknowledgement of a published EVENT.
    Ok,
}

impl Reply {
    pub(crate) fn pong(self) -> Result<Duration, ClientError> {
        match self {
            Reply::Pong(rtt) => Ok(rtt),
            other => Err(mismatch(other)),
        }
    }
    pub(crate) fn size(self) -> Result<u64, ClientError> {
        match self {
            Reply::Size(n) => Ok(n),
            other => Err(mismatch(other)),
        }
    }
    pub(crate) fn bytes(self) -> Result<Vec<u8>, ClientError> {
        match self {
            Reply::Bytes(b) => Ok(b),
            other => Err(mismatch(other)),
        }
    }
    pub(crate) fn put(self) -> Result<PutResp, ClientError> {
        match self {
            Reply::Put(p) => Ok(p),
            other => Err(mismatch(other)),
        }
    }
    pub(crate) fn ok(self) -> Result<(), ClientError> {
        match self {
            Reply::Ok => Ok(()),
            other => Err(mismatch(other)),
        }
    }
}

fn mismatch(reply: Reply) -> ClientError {
    protocol(format!("internal: unexpected reply {reply:?}"))
}

/// What a request in flight expects, and what has arrived of its answer.
#[derive(Debug)]
enum Op {
    Hello,
    Ping {
        sent: Instant,
    },
    Head,
    Get {
        addr: ObjectAddr,
    },
    GetRange {
        start: u64,
        end: u64,
    },
    Put {
        addr: ObjectAddr,
        size: u64,
    },
    /// A gossip REQ (answered `{"ok": true}`).
    Gossip,
    /// A published EVENT sent with ACK_REQ (answered by an empty RESP 200).
    Publish,
}

impl Op {
    /// The status of a successful answer, and whether it may be streamed.
    fn expects(&self) -> (u16, bool) {
        match self {
            Op::Get { .. } => (STATUS_OK, true),
            Op::GetRange { .. } => (STATUS_PARTIAL, true),
            _ => (STATUS_OK, false),
        }
    }
}

#[derive(Debug)]
struct Pending {
    corr_id: u64,
    op: Op,
    body: Vec<u8>,
}

/// A PUT whose body is being sent; see [`Conversation::put_step`].
#[derive(Debug)]
pub(crate) struct Upload<'a> {
    pub(crate) corr_id: u64,
    rest: &'a [u8],
    /// Body frames queued so far.
    sent: usize,
}

/// What [`Conversation::put_step`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PutStep {
    /// One body frame was queued: write it out, look for an early answer, call again.
    Queued,
    /// The whole body is queued: wait for the answer.
    Sent,
    /// The node answered before the body was sent; the session is ended, the answer is ready.
    AnsweredEarly,
}

/// The state of one session; see the module docs.
#[derive(Debug)]
pub(crate) struct Conversation {
    inbound: Inbound,
    encoder: FrameEncoder,
    /// Plaintext received, not yet taken as frames.
    rbuf: BytesMut,
    /// Encoded frames waiting for the transport.
    out: Vec<u8>,
    next_corr_id: u64,
    hello: HelloReply,
    opts: ClientOptions,
    /// The node closed the connection (TCP or TLS close_notify).
    eof: bool,
    goaway: Option<GoAway>,
    /// Why the session cannot be used any more.
    ended: Option<String>,
    /// A reject's farewell is queued: the transport should send it and close.
    closing: bool,
    pending: Vec<Pending>,
    done: Vec<(u64, Result<Reply, ClientError>)>,
    /// Gossip EVENTs received for this session's subscriptions, oldest first.
    events: std::collections::VecDeque<GossipEvent>,
}

impl Conversation {
    pub(crate) fn new(opts: &ClientOptions) -> Conversation {
        Conversation {
            inbound: Inbound::new(
                Role::Dialer,
                MAX_FRAME,
                ServedApps::of(&[APP_CONTROL, APP_OBJECTS, APP_GOSSIP]),
            ),
            encoder: FrameEncoder::new(MAX_FRAME),
            rbuf: BytesMut::with_capacity(64 * 1024),
            out: Vec::with_capacity(64 * 1024),
            next_corr_id: 1,
            hello: HelloReply::default(),
            opts: opts.clone(),
            eof: false,
            goaway: None,
            ended: None,
            closing: false,
            pending: Vec::new(),
            done: Vec::new(),
            events: std::collections::VecDeque::new(),
        }
    }

    pub(crate) fn opts(&self) -> &ClientOptions {
        &self.opts
    }

    pub(crate) fn hello_reply(&self) -> &HelloReply {
        &self.hello
    }

    /// How many requests may be in flight at once: the node's `max_inflight`, within this
    /// side's own limit, and at least one.
    pub(crate) fn window(&self) -> usize {
        (self.hello.max_inflight as usize).clamp(1, MAX_INFLIGHT)
    }

    // --- session state ---

    /// `Closed` once the session is over (an error ended it, or the node sent GOAWAY).
    pub(crate) fn check_open(&self) -> Result<(), ClientError> {
        if let Some(why) = &self.ended {
            return Err(ClientError::Closed(why.clone()));
        }
        if let Some(g) = &self.goaway {
            return Err(ClientError::Closed(goaway_text(g)));
        }
        Ok(())
    }

    /// Ends the session after an error that leaves it in an unknown state.
    pub(crate) fn note(&mut self, err: &ClientError) {
        if err.ends_session() {
            self.end(format!("an earlier call failed: {err}"));
        }
    }

    pub(crate) fn end(&mut self, why: String) {
        self.ended.get_or_insert(why);
    }

    /// Whether a reject's farewell is queued and the transport should close after sending it.
    pub(crate) fn closing(&self) -> bool {
        self.closing
    }

    // --- bytes in and out ---

    /// Encoded frames to write, in order; the core forgets them.
    pub(crate) fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub(crate) fn has_out(&self) -> bool {
        !self.out.is_empty()
    }

    /// Gives a written-out buffer back so its allocation is reused.
    pub(crate) fn give_back(&mut self, mut buf: Vec<u8>) {
        if self.out.is_empty() {
            buf.clear();
            self.out = buf;
        }
    }

    /// Where the transport appends the plaintext it reads.
    pub(crate) fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Whether reading ahead (without a caller waiting) is reasonable: a flood of unrequested
    /// bytes is not buffered past one frame's worth.
    pub(crate) fn may_read_ahead(&self) -> bool {
        self.rbuf.len() <= self.hello.max_frame.max(MIN_NEGOTIATED_FRAME) as usize
    }

    /// The node closed the connection.
    pub(crate) fn on_eof(&mut self) {
        self.eof = true;
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Takes every whole frame off the read buffer. An error means the session is over (the
    /// node broke the wire rules; a farewell may be queued, see [`Conversation::closing`]).
    pub(crate) fn process(&mut self) -> Result<(), ClientError> {
        loop {
            match self.inbound.poll(&mut self.rbuf) {
                Ok(Some(received)) => {
                    if let Err(e) = self.route(received) {
                        self.note(&e);
                        return Err(e);
                    }
                }
                Ok(None) => return Ok(()),
                Err(reject) => return Err(self.reject(reject)),
            }
        }
    }

    /// The answer to `corr_id` once it is complete (or can never come).
    pub(crate) fn take(&mut self, corr_id: u64) -> Option<Result<Reply, ClientError>> {
        if let Some(i) = self.done.iter().position(|(c, _)| *c == corr_id) {
            return Some(self.done.swap_remove(i).1);
        }
        let gone = if let Some(why) = &self.ended {
            why.clone()
        } else if self.eof {
            let why = match self.inbound.at_eof(&self.rbuf) {
                Ok(()) => "the node closed the connection".to_owned(),
                Err(r) => format!("the node closed the connection inside a frame ({r})"),
            };
            self.end(why.clone());
            why
        } else {
            return None;
        };
        self.pending.retain(|p| p.corr_id != corr_id);
        Some(Err(ClientError::Closed(gone)))
    }

    // --- requests ---

    /// Queues a one-frame request; returns its corr_id.
    pub(crate) fn start(&mut self, req: Request) -> Result<u64, ClientError> {
        self.check_open()?;
        let corr_id = self.next_corr_id;
        let (app, payload, op) = match req {
            Request::Hello => {
                let hello = Hello {
                    ua: Some(self.opts.ua.clone()),
                    max_frame: None,
                };
                (APP_CONTROL, Control::Hello(hello).to_vec(), Op::Hello)
            }
            Request::Ping => {
                let sent = Instant::now();
                (
                    APP_CONTROL,
                    Control::Ping(corr_id).to_vec(),
                    Op::Ping { sent },
                )
            }
            Request::Head(addr) => (
                APP_OBJECTS,
                encode(&ObjectRequest::Head(Head { addr })),
                Op::Head,
            ),
            Request::Get(addr) => {
                let get = Get::whole(addr);
                (
                    APP_OBJECTS,
                    encode(&ObjectRequest::Get(get)),
                    Op::Get { addr },
                )
            }
            Request::GetRange(addr, start, end) => {
                if start >= end {
                    return Err(ClientError::InvalidRequest(format!(
                        "range {start}..{end} is empty or inverted"
                    )));
                }
                let range = Some(ByteRange { start, end });
                let get = ObjectRequest::Get(Get {
                    addr,
                    range,
                    hops: 0,
                });
                (APP_OBJECTS, encode(&get), Op::GetRange { start, end })
            }
        };
        self.send(&self.request_frame(app, corr_id, &payload))?;
        self.opened(corr_id, op);
        Ok(corr_id)
    }

    /// Queues the START frame of a PUT of `bytes` with `cap` (its request and capability); the
    /// body follows by [`Conversation::put_step`]. An empty body is one whole frame.
    pub(crate) fn start_put<'a>(
        &mut self,
        bytes: &'a [u8],
        cap: &[u8],
    ) -> Result<Upload<'a>, ClientError> {
        if cap.len() > MAX_CAP_BYTES {
            return Err(ClientError::InvalidRequest(format!(
                "capability of {} bytes is over the {MAX_CAP_BYTES}-byte limit",
                cap.len()
            )));
        }
        self.check_open()?;
        let (addr, size) = (ObjectAddr::of(bytes), bytes.len() as u64);
        let corr_id = self.next_corr_id;
        let request = encode(&ObjectRequest::Put(Put { addr, size }));
        let end = if bytes.is_empty() {
            Flags::END
        } else {
            Flags::EMPTY
        };
        let start = OutFrame {
            flags: Flags::REQ | Flags::START | end,
            cap,
            ..self.request_frame(APP_OBJECTS, corr_id, &request)
        };
        self.send(&start)?;
        self.opened(corr_id, Op::Put { addr, size });
        Ok(Upload {
            corr_id,
            rest: bytes,
            sent: 0,
        })
    }

    /// Queues the next body frame of `up`. The node may answer before the body is complete
    /// (401, 403, 413, ...): after the first body frame, an answer that has arrived stops the
    /// upload, and the session, which holds an unfinished stream, is ended. The first body frame
    /// goes right after START, so a body of one frame is always sent whole.
    pub(crate) fn put_step(&mut self, up: &mut Upload<'_>) -> Result<PutStep, ClientError> {
        if up.rest.is_empty() {
            return Ok(PutStep::Sent);
        }
        if up.sent > 0 && self.done.iter().any(|(c, _)| *c == up.corr_id) {
            self.end(format!(
                "the PUT with corr_id {} was answered before its body was sent, \
                 leaving its stream unfinished",
                up.corr_id
            ));
            return Ok(PutStep::AnsweredEarly);
        }
        let max_payload = self.hello.max_frame as usize - HEADER_LEN;
        let chunk = self.opts.chunk_bytes.clamp(1, max_payload);
        let (part, rest) = up.rest.split_at(chunk.min(up.rest.len()));
        let flags = if rest.is_empty() {
            Flags::REQ | Flags::END
        } else {
            Flags::REQ
        };
        let frame = OutFrame {
            flags,
            payload: part,
            ..self.request_frame(APP_OBJECTS, up.corr_id, &[])
        };
        self.send(&frame)?;
        up.rest = rest;
        up.sent += 1;
        Ok(PutStep::Queued)
    }

    /// Queues a gossip REQ (subscribe, unsubscribe); returns its corr_id.
    pub(crate) fn start_gossip(&mut self, req: &GossipRequest) -> Result<u64, ClientError> {
        self.check_open()?;
        let corr_id = self.next_corr_id;
        let mut payload = Vec::new();
        req.encode(&mut payload);
        self.send(&self.request_frame(APP_GOSSIP, corr_id, &payload))?;
        self.opened(corr_id, Op::Gossip);
        Ok(corr_id)
    }

    /// Queues an EVENT publishing `data` on `topic` (`ts`: now, in unix milliseconds) with
    /// ACK_REQ, so that the node's verdict comes back; returns its corr_id.
    pub(crate) fn start_publish(
        &mut self,
        topic: &str,
        data: &[u8],
        cap: &[u8],
    ) -> Result<u64, ClientError> {
        self.check_open()?;
        if cap.len() > MAX_CAP_BYTES {
            return Err(protocol(format!("capability over {MAX_CAP_BYTES} bytes")));
        }
        let corr_id = self.next_corr_id;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut payload = Vec::new();
        GossipEvent::new(topic, ts, data.to_vec())
            .relayed(0)
            .encode(&mut payload);
        // A capability rides on a START frame only: the one frame is then START|END.
        let whole = if cap.is_empty() {
            Flags::EMPTY
        } else {
            Flags::START | Flags::END
        };
        let frame = OutFrame {
            flags: Flags::EVENT | Flags::ACK_REQ | whole,
            cap,
            ..self.request_frame(APP_GOSSIP, corr_id, &payload)
        };
        self.send(&frame)?;
        self.opened(corr_id, Op::Publish);
        Ok(corr_id)
    }

    /// The oldest gossip EVENT received and not yet taken.
    pub(crate) fn take_event(&mut self) -> Option<GossipEvent> {
        self.events.pop_front()
    }

    fn opened(&mut self, corr_id: u64, op: Op) {
        self.next_corr_id += 1;
        self.pending.push(Pending {
            corr_id,
            op,
            body: Vec::new(),
        });
    }

    fn request_frame<'a>(&self, app: u16, corr_id: u64, payload: &'a [u8]) -> OutFrame<'a> {
        OutFrame {
            tenant_id: self.opts.tenant_id,
            ..OutFrame::request(app, corr_id, payload)
        }
    }

    /// Records `frame` with the sequence tracker and queues it.
    fn send(&mut self, frame: &OutFrame<'_>) -> Result<(), ClientError> {
        self.inbound
            .tracker_mut()
            .on_send(&frame.header())
            .map_err(|r| protocol(format!("this client broke the stream rules ({r})")))?;
        self.encoder
            .encode(frame, &mut self.out)
            .map(drop)
            .map_err(|e| protocol(format!("cannot encode a frame: {e}")))
    }
}

fn encode(req: &ObjectRequest) -> Vec<u8> {
    let mut payload = Vec::new();
    req.encode(&mut payload);
    payload
}

mod answers;
use answers::goaway_text;
#[cfg(test)]
mod tests;
