//! The `ronode` binary.

mod cap_cmd;
mod cli;
mod config;
mod init;
mod inspect;
mod keystore;
mod logging;
mod node;
mod put_cmd;

#[cfg(feature = "count-allocs")]
#[global_allocator]
static ALLOCATOR: ronode_admin::alloc_count::Counting = ronode_admin::alloc_count::Counting;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand, FrameCommand};
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Ping(args) => ping(&args),
        Command::Put(args) => put(&args),
        Command::Get(args) => client_cmd(&args.node, |c| {
            let bytes = c.get(&args.addr)?;
            match &args.output {
                Some(path) => std::fs::write(path, &bytes).map_err(ronode_client::ClientError::Io),
                None => std::io::stdout()
                    .write_all(&bytes)
                    .map_err(ronode_client::ClientError::Io),
            }
        }),
        Command::Gossip(cli::GossipCommand::Pub(args)) => client_cmd(&args.node, |c| {
            let cap = cap_arg(args.cap.as_deref())?;
            c.publish(&args.topic, args.message.as_bytes(), cap.as_deref())
        }),
        Command::Gossip(cli::GossipCommand::Sub(args)) => client_cmd(&args.node, |c| {
            c.subscribe(&args.topic)?;
            loop {
                match c.next_event() {
                    Ok(ev) => println!("{}", event_json(&ev)),
                    // Quiet for a while: a PING keeps the session from the node's idle timeout.
                    Err(ronode_client::ClientError::Timeout(_)) => drop(c.ping()?),
                    Err(e) => return Err(e),
                }
            }
        }),
        Command::Head(args) => client_cmd(&args.node, |c| {
            println!("{} bytes", c.head(&args.addr)?);
            Ok(())
        }),
        Command::Cap(cli::CapCommand::Mint(args)) => {
            let req = cap_cmd::MintRequest {
                scope: &args.scope,
                ttl_s: args.ttl,
                max_bytes: args.max_bytes,
                tenant: args.tenant,
            };
            match cap_cmd::check_scope(&args.scope)
                .and_then(|()| cap_cmd::mint(&args.data_dir, args.cap_key.as_deref(), &req))
            {
                Ok(token) => print_line(&token),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Init(args) => match init::ensure_keys(&args.data_dir) {
            Ok(keys) => {
                for file in &keys.created {
                    eprintln!("created {}", args.data_dir.join(file).display());
                }
                println!("data_dir {}", args.data_dir.display());
                println!("cap_kid {}", hex::encode(keys.cap_kid));
                print_line(&format!("node_id {}", keys.identity.node_id()))
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Frame(FrameCommand::Decode(args)) => frame_decode(&args.hex),
        Command::Frame(FrameCommand::Hello(args)) => {
            match inspect::hello_frame(&args.ua, args.corr, args.tenant, args.max_frame) {
                Ok(bytes) => print_line(&hex::encode(bytes)),
                Err(e) => fail(&e, 1),
            }
        }
        Command::Config(ConfigCommand::Show(args)) => config_show(&args),
        Command::Config(ConfigCommand::Knobs) => print_line(&format!(
            "{}\n{}",
            config::markdown::knob_table(),
            config::markdown::profile_table().trim_end()
        )),
    }
}

/// `ronode run`: a configuration error exits 2, a start-up failure 1, a drained node 0.
fn run(args: &cli::RunArgs) -> ExitCode {
    logging::init(args.log_format);
    let cfg = match config::process_env()
        .and_then(|env| config::NodeConfig::load(&args.node.overrides(), &env))
    {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!("configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match node::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// Parses `IP:port` or `IP:port#NodeId`.
fn parse_peer(s: &str) -> Result<(std::net::SocketAddr, Option<ronode_proto::NodeId>), String> {
    let (addr, id) = match s.split_once('#') {
        Some((a, id)) => (a, Some(id)),
        None => (s, None),
    };
    let addr = addr
        .parse()
        .map_err(|e| format!("peer address {addr:?}: {e}"))?;
    let id = id
        .map(|id| {
            ronode_proto::NodeId::parse_hex(id).map_err(|e| format!("peer NodeId {id:?}: {e}"))
        })
        .transpose()?;
    Ok((addr, id))
}

/// Connects to `--peer`, runs `f`, closes; a `not found` is its own clear error.
/// `--cap`: a token's hex, decoded.
fn cap_arg(cap: Option<&str>) -> Result<Option<Vec<u8>>, ronode_client::ClientError> {
    cap.map(hex::decode)
        .transpose()
        .map_err(|e| ronode_client::ClientError::InvalidRequest(format!("--cap is not hex: {e}")))
}

/// One line of `ronode gossip sub`: the data as text when it is UTF-8, else as hex.
fn event_json(ev: &ronode_proto::msg::gossip::GossipEvent) -> serde_json::Value {
    let mut line = serde_json::json!({
        "topic": ev.topic,
        "msg_id": ev.msg_id.to_string(),
        "ts": ev.ts,
        "hops": ev.hops,
    });
    match std::str::from_utf8(&ev.data) {
        Ok(text) => line["data"] = text.into(),
        Err(_) => line["data_hex"] = hex::encode(&ev.data).into(),
    }
    line
}

/// Where `--peer` points and how to connect to it.
fn client_options(
    peer: &cli::PeerArgs,
) -> Result<(std::net::SocketAddr, ronode_client::ClientOptions), String> {
    let (addr, pin) = parse_peer(&peer.peer)?;
    let opts = ronode_client::ClientOptions {
        pq_mode: peer.pq_mode,
        pin,
        ..Default::default()
    };
    Ok((addr, opts))
}

fn client_cmd(
    peer: &cli::PeerArgs,
    f: impl FnOnce(&mut ronode_client::Client) -> Result<(), ronode_client::ClientError>,
) -> ExitCode {
    let (addr, opts) = match client_options(peer) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = ronode_client::Client::connect(addr, &opts).and_then(|mut c| {
        f(&mut c)?;
        c.close()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_not_found() => {
            eprintln!("error: not found: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `ronode put`: the file stored, with retries of a shed PUT ([`put_cmd`]).
fn put(args: &cli::PutArgs) -> ExitCode {
    let (addr, opts) = match client_options(&args.node) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = std::fs::read(&args.file)
        .map_err(ronode_client::ClientError::Io)
        .and_then(|bytes| Ok((bytes, cap_arg(args.cap.as_deref())?)))
        .and_then(|(bytes, cap)| put_cmd::put(addr, &opts, &bytes, cap.as_deref()));
    match result {
        Ok(resp) => {
            let note = if resp.stored {
                "stored"
            } else {
                "already there"
            };
            eprintln!("{} bytes, {note}", resp.size);
            print_line(&resp.addr.to_string())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `ronode ping`: RTT, negotiated TLS group and the node's NodeId, `--count` times.
fn ping(args: &cli::PingArgs) -> ExitCode {
    client_cmd(&args.node, |client| {
        for _ in 0..args.count.max(1) {
            let rtt = client.ping()?;
            println!(
                "pong from {}: rtt {:.3} ms, tls {}, node_id {}",
                args.node.peer,
                rtt.as_secs_f64() * 1e3,
                client.negotiated_group().unwrap_or_else(|| "?".into()),
                client
                    .peer_node_id()
                    .map_or_else(|| "?".into(), |id| id.to_string())
            );
        }
        Ok(())
    })
}

/// `ronode config show`: the effective configuration, or exit 2 naming what is wrong.
fn config_show(args: &cli::NodeArgs) -> ExitCode {
    let shown = config::process_env()
        .and_then(|env| config::NodeConfig::load(&args.overrides(), &env))
        .and_then(|c| c.to_toml_string());
    match shown {
        Ok(text) => print_line(text.trim_end()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn frame_decode(arg: &str) -> ExitCode {
    let text = if arg == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("error: io: reading stdin: {e}");
            return ExitCode::from(2);
        }
        s
    } else {
        arg.to_owned()
    };
    let bytes = match inspect::parse_hex(&text) {
        Ok(b) => b,
        Err(e) => return fail(&e, 2),
    };
    match inspect::decode(bytes) {
        Ok(report) => print_line(&serde_json::to_string(&report).expect("report serializes")),
        Err(e) => fail(&e, 1),
    }
}

fn print_line(s: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

fn fail(e: &inspect::InspectError, code: u8) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(code)
}
