//! Dispatch of a received frame by app: app 0 (HELLO, PING) is answered here; app 1 and app 2
//! go to their planes through the [`SessionHost`].

use super::{Answered, Now, SessionCfg, SessionCore, SessionHost};
use crate::gossip::{ok_payload, Reply};
use ronode_proto::control::{Control, HelloReply, APP_CONTROL};
use ronode_proto::frame::OutFrame;
use ronode_proto::inbound::{Received, Reject};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::msg::{APP_GOSSIP, APP_OBJECTS};
use ronode_proto::{Flags, Kind};

impl SessionCore {
    pub(super) fn answer<H: SessionHost>(
        &mut self,
        rx: Received,
        now: Now,
        cfg: &SessionCfg,
        host: &H,
    ) -> Answered {
        let h = rx.frame.header;
        match h.app_proto_id {
            APP_OBJECTS => {
                host.objects_frame(self.id, rx, now);
                Answered::Done
            }
            APP_GOSSIP => self.answer_gossip(&rx, now, host),
            APP_CONTROL if h.flags.kind() == Some(Kind::Req) => self.answer_control(&rx, cfg, host),
            _ => Answered::Done,
        }
    }

    fn answer_gossip<H: SessionHost>(&mut self, rx: &Received, now: Now, host: &H) -> Answered {
        let h = rx.frame.header;
        match host.gossip_frame(self.id, self.peer, rx, now.unix_s) {
            Reply::None => Answered::Done,
            Reply::Ok => {
                let payload = if h.kind() == Some(Kind::Req) {
                    ok_payload()
                } else {
                    Vec::new() // the acknowledgement of an EVENT sent with ACK_REQ
                };
                let frame = OutFrame {
                    tenant_id: h.tenant_id,
                    ..OutFrame::response(APP_GOSSIP, h.corr_id, 200, &payload)
                };
                self.out.send(&mut self.inbound, &frame, host);
                Answered::Done
            }
            Reply::Error(reason, message) => {
                let answers = h.kind() == Some(Kind::Req) || h.flags.contains(Flags::ACK_REQ);
                if answers {
                    let inbound = &mut self.inbound;
                    self.out
                        .error(inbound, APP_GOSSIP, h.corr_id, reason, &message, 0, host);
                } else {
                    host.stats(|s| s.rejected(reason));
                }
                Answered::Refused
            }
        }
    }

    fn answer_control<H: SessionHost>(
        &mut self,
        rx: &Received,
        cfg: &SessionCfg,
        host: &H,
    ) -> Answered {
        let h = rx.frame.header;
        let Ok(msg) = Control::parse(&rx.frame.payload) else {
            return Answered::Done;
        };
        let reply = match msg {
            Control::Hello(hello) => {
                match HelloReply::negotiate(&hello, cfg.max_frame.min(MAX_FRAME)) {
                    Ok(mut reply) => {
                        reply.max_inflight = cfg.inflight;
                        self.inbound.set_max_frame(reply.max_frame);
                        self.out.set_max_frame(reply.max_frame);
                        host.set_max_frame(self.id, reply.max_frame);
                        Control::HelloReply(reply)
                    }
                    // A reject like any of PROTOCOL.md 2.4: answered, then the session closes.
                    Err(reason) => {
                        return Answered::Reject(Reject {
                            reason,
                            header: Some(h),
                            detail: "max_frame below 4096".to_owned(),
                        })
                    }
                }
            }
            Control::Ping(n) => Control::Pong(n),
            _ => return Answered::Done,
        };
        self.out.control_reply(&mut self.inbound, &h, &reply, host);
        Answered::Done
    }
}
