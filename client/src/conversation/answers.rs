//! The answer half of the core: frames received, routed to the requests they answer,
//! reassembled, decoded and checked; the node's own control traffic (PING, GOAWAY); rejects.

use super::*;
use crate::error::NodeError;

impl Conversation {
    /// Hands a frame to the request it answers; handles the node's control traffic (PING,
    /// GOAWAY); anything else is a protocol error.
    pub(super) fn route(&mut self, received: Received) -> Result<(), ClientError> {
        let h = received.frame.header;
        let kind = received.frame.kind();
        if kind == Kind::Resp {
            if let Some(i) = self.pending.iter().position(|p| p.corr_id == h.corr_id) {
                return self.answer(i, received);
            }
        }
        if h.app_proto_id == APP_GOSSIP && kind == Kind::Event {
            // The inbound pipeline checked it (CBOR shape, msg_id) already.
            let event = GossipEvent::decode(&received.frame.payload)
                .map_err(|r| protocol(format!("gossip EVENT refused: {r}")))?;
            self.events.push_back(event);
            return Ok(());
        }
        if h.app_proto_id == APP_CONTROL {
            match (kind, Control::parse(&received.frame.payload)) {
                (Kind::Event, Ok(Control::GoAway(g))) => {
                    // Requests past `last_corr_id` will not be answered.
                    let text = goaway_text(&g);
                    let (lost, kept): (Vec<Pending>, Vec<Pending>) =
                        std::mem::take(&mut self.pending)
                            .into_iter()
                            .partition(|p| p.corr_id > g.last_corr_id);
                    self.pending = kept;
                    for p in lost {
                        self.done
                            .push((p.corr_id, Err(ClientError::Closed(text.clone()))));
                    }
                    self.goaway = Some(g);
                    return Ok(());
                }
                (Kind::Req, Ok(Control::Ping(n))) => {
                    let pong = Control::Pong(n).to_vec();
                    let frame = OutFrame {
                        tenant_id: h.tenant_id,
                        ..OutFrame::response(APP_CONTROL, h.corr_id, STATUS_OK, &pong)
                    };
                    return self.send(&frame);
                }
                _ => {}
            }
        }
        Err(protocol(format!(
            "unexpected {kind:?} frame (app {}, corr_id {}) while waiting for answers",
            h.app_proto_id, h.corr_id
        )))
    }

    /// One frame of the answer to `pending[i]`: appended, and the answer finished at its end.
    pub(super) fn answer(&mut self, i: usize, received: Received) -> Result<(), ClientError> {
        let Received { frame, progress } = received;
        let p = &mut self.pending[i];
        let code = frame.header.code;
        let (want, streamed) = p.op.expects();
        let step = if code >= 400 {
            Err(error_answer(&frame, progress))
        } else if !streamed && progress != Progress::Whole {
            Err(protocol(format!(
                "a one-frame answer was expected (status {code}, corr_id {})",
                p.corr_id
            )))
        } else if code != want {
            Err(protocol(format!(
                "answer to {} has status {code}, want {want}",
                p.corr_id
            )))
        } else if (p.body.len() + frame.payload.len()) as u64 > self.opts.max_object_bytes {
            Err(protocol(format!(
                "answer to {} passes max_object_bytes ({})",
                p.corr_id, self.opts.max_object_bytes
            )))
        } else {
            p.body.extend_from_slice(&frame.payload);
            Ok(progress.ends())
        };
        let result = match step {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let p = self.pending.swap_remove(i);
                self.finish(p)
            }
            Err(e) => {
                self.pending.swap_remove(i);
                Err(e)
            }
        };
        if let Err(e) = &result {
            self.note(e);
        }
        self.done.push((frame.header.corr_id, result));
        Ok(())
    }

    /// Decodes and checks a complete answer.
    pub(super) fn finish(&mut self, p: Pending) -> Result<Reply, ClientError> {
        let Pending { corr_id, op, body } = p;
        match op {
            Op::Hello => self.hello_done(&body).map(|()| Reply::Hello),
            Op::Ping { sent } => match Control::parse(&body) {
                Ok(Control::Pong(n)) if n == corr_id => Ok(Reply::Pong(sent.elapsed())),
                _ => Err(protocol(format!(
                    "PING {corr_id} answered by {:?}",
                    String::from_utf8_lossy(&body)
                ))),
            },
            Op::Head => HeadResp::decode(&body)
                .map(|h| Reply::Size(h.size))
                .map_err(|_| protocol("HEAD answered by something other than {\"size\": u64}")),
            Op::Get { addr } => {
                let actual = ObjectAddr::of(&body);
                if actual != addr {
                    return Err(ClientError::BadDigest {
                        expected: addr,
                        actual,
                    });
                }
                Ok(Reply::Bytes(body))
            }
            Op::GetRange { start, end } => {
                if body.len() as u64 > end - start {
                    return Err(protocol(format!(
                        "range {start}..{end} answered with {} bytes",
                        body.len()
                    )));
                }
                Ok(Reply::Bytes(body))
            }
            Op::Put { addr, size } => {
                let resp = PutResp::decode(&body).map_err(|_| {
                    protocol("PUT answered by something other than {addr, size, stored}")
                })?;
                if resp.addr != addr || resp.size != size {
                    return Err(protocol(format!(
                        "PUT of {addr} ({size} bytes) acknowledged as {} ({} bytes)",
                        resp.addr, resp.size
                    )));
                }
                Ok(Reply::Put(resp))
            }
            Op::Gossip => GossipOk::decode(&body).map(|_| Reply::Ok).map_err(|_| {
                protocol("gossip REQ answered by something other than {\"ok\": true}")
            }),
            Op::Publish if body.is_empty() => Ok(Reply::Ok),
            Op::Publish => Err(protocol("a published EVENT acknowledged with a payload")),
        }
    }

    /// Checks the HELLO reply and applies the negotiated `max_frame`.
    pub(super) fn hello_done(&mut self, body: &[u8]) -> Result<(), ClientError> {
        let reply = match Control::parse(body) {
            Ok(Control::HelloReply(reply)) => reply,
            _ => {
                return Err(protocol(format!(
                    "HELLO answered by {:?}",
                    String::from_utf8_lossy(body)
                )))
            }
        };
        if !reply.versions.contains(&VERSION) {
            return Err(protocol(format!(
                "node speaks versions {:?}, not {VERSION}",
                reply.versions
            )));
        }
        if !(MIN_NEGOTIATED_FRAME..=MAX_FRAME).contains(&reply.max_frame) {
            return Err(protocol(format!(
                "HELLO reply max_frame {} is outside {MIN_NEGOTIATED_FRAME}..={MAX_FRAME}",
                reply.max_frame
            )));
        }
        self.encoder.set_max_frame(reply.max_frame);
        self.inbound.set_max_frame(reply.max_frame);
        self.hello = reply;
        Ok(())
    }

    /// The node sent a frame the wire rules reject: queue the farewell the rules ask for, end
    /// the session, and report it.
    pub(super) fn reject(&mut self, reject: Reject) -> ClientError {
        let last = self.next_corr_id.saturating_sub(1);
        let mut payload = Vec::new();
        let frame = reject.farewell(last).frame(&mut payload);
        // Best effort, bypassing the tracker: the session ends whatever happens to these bytes.
        let _ = self.encoder.encode(&frame, &mut self.out);
        self.closing = true;
        let err = protocol(format!(
            "the node sent a frame the wire rules reject: {reject}"
        ));
        self.note(&err);
        err
    }
}

pub(super) fn goaway_text(g: &GoAway) -> String {
    format!(
        "the node sent GOAWAY (reason {:?}, last_corr_id {})",
        g.reason, g.last_corr_id
    )
}

/// The error an answer with status 400 or more carries: one whole frame, or a stream's END.
fn error_answer(frame: &Frame, progress: Progress) -> ClientError {
    let code = frame.header.code;
    if !progress.ends() {
        return protocol(format!(
            "status {code} on a frame that does not end its answer"
        ));
    }
    match ErrorBody::decode(frame.app_proto_id(), &frame.payload) {
        Ok(body) => ClientError::Node(NodeError::from_body(body)),
        Err(_) => protocol(format!("status {code} with an unreadable error body")),
    }
}
