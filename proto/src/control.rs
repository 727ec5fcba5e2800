//! Control plane, app 0 (PROTOCOL.md section 3): JSON payloads told apart by their key.

use crate::limits::{MAX_FRAME, MAX_INFLIGHT, MAX_UA_BYTES, MIN_NEGOTIATED_FRAME};
use crate::reason::Reason;
use serde::{Deserialize, Serialize};

/// The control plane's app_proto_id.
pub const APP_CONTROL: u16 = 0;

/// HELLO request: `{"ua": <string or null>}`, optionally `"max_frame": n` to lower the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub ua: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame: Option<u32>,
}

/// HELLO reply, fields in the order PROTOCOL.md's golden frame has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloReply {
    pub max_frame: u32,
    pub max_inflight: u32,
    pub flags_supported: u16,
    pub versions: Vec<u16>,
    pub transports: Vec<String>,
}

impl HelloReply {
    /// The reply a node with limit `node_max_frame` gives to `hello`: `max_frame` is negotiated
    /// downward only; asking below 4,096 is `malformed`.
    pub fn negotiate(hello: &Hello, node_max_frame: u32) -> Result<HelloReply, Reason> {
        let max_frame = match hello.max_frame {
            Some(asked) if asked < MIN_NEGOTIATED_FRAME => return Err(Reason::Malformed),
            Some(asked) => asked.min(node_max_frame),
            None => node_max_frame,
        };
        Ok(HelloReply {
            max_frame,
            max_inflight: MAX_INFLIGHT as u32,
            flags_supported: crate::flags::Flags::KNOWN.bits(),
            versions: vec![crate::frame::VERSION],
            transports: vec!["tcp+tls".to_owned()],
        })
    }
}

impl Default for HelloReply {
    fn default() -> Self {
        HelloReply::negotiate(
            &Hello {
                ua: None,
                max_frame: None,
            },
            MAX_FRAME,
        )
        .expect("default negotiation")
    }
}

/// GOAWAY body: the sender answers requests up to `last_corr_id`, then closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoAway {
    pub reason: String,
    pub last_corr_id: u64,
}

/// Every control payload, told apart by its one distinguishing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Hello(Hello),
    HelloReply(HelloReply),
    Ping(u64),
    Pong(u64),
    GoAway(GoAway),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PingBody {
    ping: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PongBody {
    pong: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoAwayBody {
    goaway: GoAway,
}

impl Control {
    /// Parses a control payload; anything that is not exactly one of the shapes is `malformed`.
    /// The first key decides which shape is expected.
    pub fn parse(payload: &[u8]) -> Result<Control, Reason> {
        let malformed = |_| Reason::Malformed;
        let key = first_key(payload).ok_or(Reason::Malformed)?;
        let msg = match key {
            "ua" => Control::Hello(serde_json::from_slice(payload).map_err(malformed)?),
            "max_frame" => {
                // Both a HELLO that lists max_frame first and a HELLO reply start this way.
                match serde_json::from_slice::<HelloReply>(payload) {
                    Ok(reply) => Control::HelloReply(reply),
                    Err(_) => Control::Hello(serde_json::from_slice(payload).map_err(malformed)?),
                }
            }
            "ping" => Control::Ping(
                serde_json::from_slice::<PingBody>(payload)
                    .map_err(malformed)?
                    .ping,
            ),
            "pong" => Control::Pong(
                serde_json::from_slice::<PongBody>(payload)
                    .map_err(malformed)?
                    .pong,
            ),
            "goaway" => Control::GoAway(
                serde_json::from_slice::<GoAwayBody>(payload)
                    .map_err(malformed)?
                    .goaway,
            ),
            _ => return Err(Reason::Malformed),
        };
        // Checked here, whichever key came first: a HELLO that lists `max_frame` first is
        // bounded too.
        if let Control::Hello(Hello { ua: Some(ua), .. }) = &msg {
            if ua.len() > MAX_UA_BYTES {
                return Err(Reason::Malformed);
            }
        }
        Ok(msg)
    }

    /// Writes the JSON payload into `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let r = match self {
            Control::Hello(h) => serde_json::to_writer(&mut *out, h),
            Control::HelloReply(r) => serde_json::to_writer(&mut *out, r),
            Control::Ping(n) => serde_json::to_writer(&mut *out, &PingBody { ping: *n }),
            Control::Pong(n) => serde_json::to_writer(&mut *out, &PongBody { pong: *n }),
            Control::GoAway(g) => {
                serde_json::to_writer(&mut *out, &GoAwayBody { goaway: g.clone() })
            }
        };
        r.expect("writing JSON to a Vec cannot fail");
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(&mut v);
        v
    }
}

/// The first key of a JSON object, borrowed when it has no escapes.
fn first_key(payload: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(payload).ok()?.trim_start();
    let rest = s.strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reply_matches_golden_json() {
        assert_eq!(
            String::from_utf8(Control::HelloReply(HelloReply::default()).to_vec()).unwrap(),
            r#"{"max_frame":1048576,"max_inflight":64,"flags_supported":255,"versions":[1],"transports":["tcp+tls"]}"#
        );
    }

    #[test]
    fn negotiation_only_lowers() {
        let ask = |m| Hello {
            ua: None,
            max_frame: Some(m),
        };
        assert_eq!(
            HelloReply::negotiate(&ask(8192), MAX_FRAME)
                .unwrap()
                .max_frame,
            8192
        );
        assert_eq!(
            HelloReply::negotiate(&ask(u32::MAX), MAX_FRAME)
                .unwrap()
                .max_frame,
            MAX_FRAME
        );
        assert_eq!(
            HelloReply::negotiate(&ask(4095), MAX_FRAME),
            Err(Reason::Malformed)
        );
    }

    #[test]
    fn parses_each_shape_and_rejects_others() {
        for msg in [
            Control::Hello(Hello {
                ua: Some("x".into()),
                max_frame: Some(5000),
            }),
            Control::Hello(Hello {
                ua: None,
                max_frame: None,
            }),
            Control::HelloReply(HelloReply::default()),
            Control::Ping(7),
            Control::Pong(u64::MAX),
            Control::GoAway(GoAway {
                reason: "drain".into(),
                last_corr_id: 3,
            }),
        ] {
            assert_eq!(Control::parse(&msg.to_vec()), Ok(msg));
        }
        assert_eq!(
            Control::parse(br#"{"max_frame":5000}"#),
            Ok(Control::Hello(Hello {
                ua: None,
                max_frame: Some(5000)
            }))
        );
        // The ua bound holds whichever key comes first.
        let long = "u".repeat(MAX_UA_BYTES + 1);
        for key_first in [true, false] {
            let payload = if key_first {
                format!(r#"{{"ua":"{long}","max_frame":8192}}"#)
            } else {
                format!(r#"{{"max_frame":8192,"ua":"{long}"}}"#)
            };
            assert_eq!(Control::parse(payload.as_bytes()), Err(Reason::Malformed));
        }
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            br#"{"ping":-1}"#,
            br#"{"ping":1,"x":2}"#,
            br#"{"zz":1}"#,
            b"\xff",
        ] {
            assert_eq!(
                Control::parse(bad),
                Err(Reason::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
