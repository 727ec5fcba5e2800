//! CBOR codec micro-benchmarks of the DHT hot path: a FIND_NODE response of K = 20 realistic
//! NodeInfos encoded by reference into a reused buffer and decoded, and a FIND_NODE request
//! decoded.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ronode_bench::{node_infos, random_ids};
use ronode_proto::limits::K;
use ronode_proto::msg::dht::{DhtRequest, FindNode, FindNodeResp, FindNodeRespRef, NodeInfo};
use std::hint::black_box;

fn find_node(c: &mut Criterion) {
    let nodes = node_infos(K, 42);
    let refs: Vec<&NodeInfo> = nodes.iter().collect();
    let mut wire = Vec::new();
    FindNodeRespRef {
        closest: refs.iter().copied(),
    }
    .encode(&mut wire);
    assert_eq!(
        FindNodeResp::decode(&wire).expect("decodes").closest,
        nodes,
        "round trip"
    );

    let mut g = c.benchmark_group("cbor_find_node");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    let mut out = Vec::with_capacity(wire.len());
    g.bench_function("encode_resp_20", |b| {
        b.iter(|| {
            out.clear();
            FindNodeRespRef {
                closest: black_box(&refs).iter().copied(),
            }
            .encode(&mut out);
            out.len()
        })
    });
    g.bench_function("decode_resp_20", |b| {
        b.iter(|| {
            FindNodeResp::decode(black_box(&wire))
                .unwrap()
                .closest
                .len()
        })
    });

    let mut req = Vec::new();
    DhtRequest::FindNode(FindNode {
        target: random_ids(1, 7)[0],
    })
    .encode(&mut req);
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("decode_req", |b| {
        b.iter(|| match DhtRequest::decode(black_box(&req)).unwrap() {
            DhtRequest::FindNode(f) => f.target[0],
            _ => unreachable!("a FIND_NODE request"),
        })
    });
    g.finish();
}

criterion_group!(benches, find_node);
criterion_main!(benches);
