//! Objects through a running two-shard node: PUT with a capability, GET and HEAD byte for byte,
//! whichever shard owns the address (half of them cross the mesh), and the refusals.

mod common;

use common::{bytes, mint, scratch, start_local, WAIT};
use ronode_client::{Client, ClientError, ClientOptions};
use ronode_proto::ObjectAddr;
use ronode_shards::shard_of;

fn node_error(e: &ClientError) -> (u16, String) {
    match e {
        ClientError::Node(n) => (n.status, n.label.clone()),
        other => panic!("expected a node error, got {other}"),
    }
}

#[test]
fn put_then_get_across_shards_with_capabilities() {
    let dir = scratch("objects");
    let node = start_local(&dir, &[]);
    let put_cap = mint(&dir, "put");
    let opts = ClientOptions {
        timeout: WAIT,
        ..Default::default()
    };
    let mut client = Client::connect(node.listen, &opts).unwrap();

    let mut owners = [0usize; 2];
    let sizes = [1024, 300 * 1024, 3 * 1024 * 1024, 10, 2000, 5000, 70_000, 1];
    for (seed, &size) in sizes.iter().enumerate() {
        let data = bytes(size, seed as u64 + 1);
        let addr = ObjectAddr::of(&data);
        owners[shard_of(addr.as_bytes(), 2).0 as usize] += 1;
        let resp = client
            .put(&data, Some(&put_cap))
            .unwrap_or_else(|e| panic!("PUT {size} bytes: {e}"));
        assert_eq!(
            (resp.addr, resp.size, resp.stored),
            (addr, size as u64, true)
        );
        assert_eq!(client.head(&addr).unwrap(), size as u64);
        assert_eq!(
            client.get(&addr).unwrap(),
            data,
            "GET {size} bytes byte for byte"
        );
        // A second session, maybe on the other shard, reads it too.
        let mut other = Client::connect(node.listen, &opts).unwrap();
        assert_eq!(other.get(&addr).unwrap(), data);
    }
    assert!(
        owners.iter().all(|&n| n > 0),
        "both shards own objects: {owners:?}"
    );

    let again = bytes(1024, 1);
    assert!(
        !client.put(&again, Some(&put_cap)).unwrap().stored,
        "duplicates are deduplicated"
    );

    let fresh = bytes(4096, 99);
    assert_eq!(
        node_error(&client.put(&fresh, None).unwrap_err()),
        (401, "unauthorized".into())
    );
    let mut c2 = Client::connect(node.listen, &opts).unwrap();
    let get_cap = mint(&dir, "get");
    assert_eq!(
        node_error(&c2.put(&fresh, Some(&get_cap)).unwrap_err()),
        (403, "forbidden".into())
    );
    let mut c3 = Client::connect(node.listen, &opts).unwrap();
    let missing = c3.get(&ObjectAddr::of(b"never stored")).unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
