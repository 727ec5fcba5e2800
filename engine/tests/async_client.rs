//! The async SDK client (tokio, no glommio) against a running two-shard node: ping, PUT and GET
//! byte for byte (one frame and a multi-frame stream), a 206 range, HEAD, pipelined GETs, and a
//! typed not-found.

mod common;

use common::{bytes, mint, scratch, start_local, WAIT};
use ronode_client::{AsyncClient, ClientOptions};
use ronode_proto::ObjectAddr;

#[test]
fn async_client_on_a_current_thread_runtime() {
    let dir = scratch("async-client");
    let node = start_local(&dir, &[]);
    let put_cap = mint(&dir, "put");
    let opts = ClientOptions {
        timeout: WAIT,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = AsyncClient::connect(node.listen, &opts).await.unwrap();
        assert_eq!(
            client.peer_node_id().map(|id| id.to_string()),
            Some(node.node_id.clone())
        );
        assert_eq!(client.negotiated_group().as_deref(), Some("X25519MLKEM768"));
        client.ping().await.unwrap();

        let small = bytes(1024, 1);
        let large = bytes(300 * 1024, 2);
        for data in [&small, &large] {
            let addr = ObjectAddr::of(data);
            let resp = client.put(data, Some(&put_cap)).await.unwrap();
            assert_eq!((resp.addr, resp.size), (addr, data.len() as u64));
            assert_eq!(client.head(&addr).await.unwrap(), data.len() as u64);
            assert_eq!(&client.get(&addr).await.unwrap(), data, "byte for byte");
        }

        let addr = ObjectAddr::of(&large);
        let part = client.get_range(&addr, 1000, 200_000).await.unwrap();
        assert_eq!(part, large[1000..200_000], "206 range");
        let tail = client
            .get_range(&addr, large.len() as u64 - 10, large.len() as u64 + 50)
            .await
            .unwrap();
        assert_eq!(
            tail,
            large[large.len() - 10..],
            "a range past the end is cut"
        );

        let missing = ObjectAddr::of(b"never stored");
        let err = client.get(&missing).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(client.head(&missing).await.unwrap_err().is_not_found());

        // Pipelined: several GETs in flight, each answered on its own.
        let many = [
            ObjectAddr::of(&small),
            missing,
            addr,
            ObjectAddr::of(&small),
        ];
        let answers = client.get_many(&many).await.unwrap();
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0].as_ref().unwrap(), &small);
        assert!(answers[1].as_ref().unwrap_err().is_not_found());
        assert_eq!(answers[2].as_ref().unwrap(), &large);
        assert_eq!(answers[3].as_ref().unwrap(), &small);

        // The session is still good after the not-found answers.
        client.ping().await.unwrap();
        client.close().await.unwrap();

        // Without a capability the node refuses the PUT with a typed error.
        let mut other = AsyncClient::connect(node.listen, &opts).await.unwrap();
        let err = other.put(&bytes(4096, 3), None).await.unwrap_err();
        assert_eq!(
            err.reason(),
            Some(ronode_proto::Reason::Unauthorized),
            "{err}"
        );
    });
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
