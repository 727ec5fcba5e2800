//! Client certificates: a session presenting a node certificate ([`ClientIdentity`]) is known
//! to the node by that NodeId, over both clients; a plain session presents none. The node here
//! is a minimal in-process ron/oap1 server (tokio-rustls with the node's own TLS configuration)
//! that answers HELLO and PING and reports the NodeId it saw.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;

use bytes::BytesMut;
use ronode_client::tls::{peer_node_id, server_config};
use ronode_client::{AsyncClient, Client, ClientIdentity, ClientOptions, NodeId};
use ronode_proto::cert::node_certificate;
use ronode_proto::control::{Control, HelloReply, APP_CONTROL};
use ronode_proto::identity::{Identity, IdentitySeeds};
use ronode_proto::inbound::{Inbound, ServedApps};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::sequence::Role;
use ronode_proto::{FrameEncoder, OutFrame};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn identity(n: u8) -> Identity {
    Identity::from_seeds(&IdentitySeeds {
        ed25519: [n; 32],
        ml_dsa: [n.wrapping_add(100); 32],
    })
}

/// Serves sessions one after another; sends each one's client NodeId on `seen`.
async fn serve(listener: TcpListener, cfg: Arc<ServerConfig>, seen: mpsc::Sender<Option<NodeId>>) {
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = TlsAcceptor::from(cfg.clone()).accept(tcp).await else {
            continue;
        };
        seen.send(peer_node_id(tls.get_ref().1)).unwrap();
        let mut inbound = Inbound::new(Role::Acceptor, MAX_FRAME, ServedApps::NODE);
        let mut encoder = FrameEncoder::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        loop {
            buf.reserve(4096);
            if tls.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                break;
            }
            while let Some(r) = inbound.poll(&mut buf).unwrap() {
                let answer = match Control::parse(&r.frame.payload).unwrap() {
                    Control::Hello(h) => {
                        Control::HelloReply(HelloReply::negotiate(&h, MAX_FRAME).unwrap())
                    }
                    Control::Ping(n) => Control::Pong(n),
                    other => panic!("unexpected {other:?}"),
                }
                .to_vec();
                let frame = OutFrame::response(APP_CONTROL, r.frame.header.corr_id, 200, &answer);
                inbound.tracker_mut().on_send(&frame.header()).unwrap();
                let mut out = Vec::new();
                encoder.encode(&frame, &mut out).unwrap();
                tls.write_all(&out).await.unwrap();
                tls.flush().await.unwrap();
            }
        }
    }
}

/// A node on a loopback port, run on its own thread.
fn start_node(server: &Identity) -> (SocketAddr, mpsc::Receiver<Option<NodeId>>) {
    let (cert, key) = node_certificate(server).unwrap();
    let cfg = server_config(&cert, &key, Default::default()).unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            serve(listener, cfg, tx).await
        });
    });
    (addr, rx)
}

#[test]
fn the_node_sees_the_client_node_id_over_both_clients() {
    let server = identity(1);
    let (addr, seen) = start_node(&server);
    let me = ClientIdentity::new(&identity(7)).unwrap();
    assert_eq!(me.node_id(), identity(7).node_id());
    assert!(
        !format!("{me:?}").contains("key"),
        "Debug shows no key: {me:?}"
    );
    let with_id = ClientOptions {
        identity: Some(me),
        pin: Some(server.node_id()),
        ..ClientOptions::default()
    };

    let mut client = Client::connect(addr, &with_id).unwrap();
    client.ping().unwrap();
    assert_eq!(client.peer_node_id(), Some(server.node_id()));
    client.close().unwrap();
    assert_eq!(seen.recv().unwrap(), Some(identity(7).node_id()));

    let plain = Client::connect(addr, &ClientOptions::default()).unwrap();
    plain.close().unwrap();
    assert_eq!(
        seen.recv().unwrap(),
        None,
        "a plain client presents no certificate"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = AsyncClient::connect(addr, &with_id).await.unwrap();
        client.ping().await.unwrap();
        assert_eq!(client.peer_node_id(), Some(server.node_id()));
        assert_eq!(client.hello_reply().max_frame, MAX_FRAME);
        client.close().await.unwrap();
    });
    assert_eq!(seen.recv().unwrap(), Some(identity(7).node_id()));
}

#[test]
fn a_pinned_node_id_that_differs_is_a_typed_tls_error_on_the_async_client() {
    let (addr, _seen) = start_node(&identity(2));
    let opts = ClientOptions {
        pin: Some(identity(3).node_id()),
        ..ClientOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(AsyncClient::connect(addr, &opts))
        .expect_err("the pin does not match");
    let ronode_client::ClientError::Tls(tls) = &err else {
        panic!("expected a TLS error, got {err}");
    };
    assert!(tls.to_string().contains("was pinned"), "{tls}");
}
