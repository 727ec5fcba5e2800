//! OAP/1 framing, COMP, hashing and selection micro-benchmarks, with a 1 MiB memcpy as the
//! yardstick measured in the same run.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ronode_bench::{pseudo_text, random_ids};
use ronode_proto::frame::{FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::id::select_closest;
use ronode_proto::limits::{HEADER_LEN, MAX_FRAME};
use ronode_proto::Flags;
use std::hint::black_box;

const MIB: usize = 1 << 20;

fn frame_bytes(payload: &[u8], flags: Flags) -> Bytes {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    let frame = OutFrame {
        flags,
        ..OutFrame::request(1, 7, payload)
    };
    FrameEncoder::new(MAX_FRAME)
        .encode(&frame, &mut out)
        .expect("encodes");
    Bytes::from(out)
}

fn sizes() -> [(&'static str, usize); 3] {
    [
        ("1KiB", 1024),
        ("64KiB", 64 * 1024),
        ("full_frame", MAX_FRAME as usize - HEADER_LEN),
    ]
}

fn oap1(c: &mut Criterion) {
    let mut g = c.benchmark_group("oap1");
    for (name, n) in sizes() {
        let payload = vec![0xa5u8; n];
        g.throughput(Throughput::Bytes((n + HEADER_LEN) as u64));
        let mut enc = FrameEncoder::new(MAX_FRAME);
        let mut out = Vec::with_capacity(MAX_FRAME as usize);
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                out.clear();
                enc.encode(&OutFrame::request(1, 7, black_box(&payload)), &mut out)
                    .unwrap()
            })
        });
        let wire = frame_bytes(&payload, Flags::REQ);
        let mut dec = FrameDecoder::new(MAX_FRAME);
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| dec.decode_one(black_box(&wire)).unwrap().0.payload.len())
        });
    }
    g.finish();
}

fn comp(c: &mut Criterion) {
    let mut g = c.benchmark_group("comp_64KiB");
    let text = pseudo_text(64 * 1024);
    g.throughput(Throughput::Bytes(text.len() as u64));
    for (name, flags) in [("off", Flags::REQ), ("on", Flags::REQ | Flags::COMP)] {
        let mut enc = FrameEncoder::new(MAX_FRAME);
        let mut out = Vec::with_capacity(MAX_FRAME as usize);
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                out.clear();
                let frame = OutFrame {
                    flags,
                    ..OutFrame::request(1, 7, black_box(&text))
                };
                enc.encode(&frame, &mut out).unwrap()
            })
        });
        let wire = frame_bytes(&text, flags);
        assert_eq!(
            wire.len() < text.len(),
            flags.contains(Flags::COMP),
            "COMP kept by the sender rule"
        );
        let mut dec = FrameDecoder::new(MAX_FRAME);
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| dec.decode_one(black_box(&wire)).unwrap().0.payload.len())
        });
    }
    g.finish();
}

fn hashing_and_copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("yardstick_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    let src = pseudo_text(MIB);
    let mut dst = vec![0u8; MIB];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&src))));
    g.finish();
}

fn closest(c: &mut Criterion) {
    // Selection works in place on a reused scratch of ids; each run starts from the previous
    // run's order, which costs the O(n) selection the same as a fresh order would.
    let mut ids = random_ids(10_000, 42);
    let target = random_ids(1, 7)[0];
    c.bench_function("closest_20_of_10000", |b| {
        b.iter(|| select_closest(&mut ids, black_box(&target), 20, |id| *id))
    });
}

criterion_group!(benches, oap1, comp, hashing_and_copy, closest);
criterion_main!(benches);
