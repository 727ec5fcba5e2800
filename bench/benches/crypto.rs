//! Signature and capability micro-benchmarks: Ed25519 single vs batch verification (reported per
//! signature), ML-DSA-87 verification, full validation of a dual-signed provider record, and a
//! capability of 3 caveats verified.
//!
//! The signed messages are real provider records' canonical signed bytes, from fixed identities.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ronode_bench::identity;
use ronode_proto::cap::{CapRequest, Capability, Op};
use ronode_proto::limits::DEFAULT_RECORD_TTL_S;
use ronode_proto::record::{
    encode_record, sign_record, signed_bytes, validate, verify_ed25519, verify_ed25519_batch,
    verify_ml_dsa_87, ProviderRecord, RecordPolicy, ALG_ED25519, ALG_ML_DSA_87,
};
use std::hint::black_box;

const BATCH: usize = 64;
const NOW: u64 = 1_700_000_000;

fn record(n: u16, with_ml_dsa: bool) -> ProviderRecord {
    let mut key = [0u8; 32];
    key[..2].copy_from_slice(&n.to_be_bytes());
    sign_record(
        &identity(n),
        key,
        vec![
            "198.51.100.7:7000".to_owned(),
            "[2001:db8::7]:7000".to_owned(),
        ],
        DEFAULT_RECORD_TTL_S,
        NOW,
        with_ml_dsa,
    )
}

fn sig_of<'a>(rec: &'a ProviderRecord, alg: &str) -> &'a [u8] {
    &rec.sigs
        .iter()
        .find(|s| s.alg == alg)
        .expect("record carries the signature")
        .sig
}

/// `(public key, signed bytes, signature)` of one Ed25519-signed record.
struct EdItem {
    pk: [u8; 32],
    msg: Vec<u8>,
    sig: Vec<u8>,
}

fn ed_item(rec: &ProviderRecord) -> EdItem {
    let mut msg = Vec::new();
    signed_bytes(rec, &mut msg);
    EdItem {
        pk: *rec.ed25519_pk,
        msg,
        sig: sig_of(rec, ALG_ED25519).to_vec(),
    }
}

fn ed25519(c: &mut Criterion) {
    let items: Vec<EdItem> = (0..BATCH as u16)
        .map(|n| ed_item(&record(n, false)))
        .collect();
    let batch: Vec<(&[u8; 32], &[u8], &[u8])> = items
        .iter()
        .map(|i| (&i.pk, &i.msg[..], &i.sig[..]))
        .collect();
    assert!(verify_ed25519_batch(&batch), "batch verifies");

    let mut g = c.benchmark_group("ed25519_verify");
    g.throughput(Throughput::Elements(1));
    let one = &items[0];
    assert!(verify_ed25519(&one.pk, &one.msg, &one.sig));
    g.bench_function(BenchmarkId::new("single", 1), |b| {
        b.iter(|| verify_ed25519(black_box(&one.pk), black_box(&one.msg), black_box(&one.sig)))
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("batch", BATCH), |b| {
        b.iter(|| verify_ed25519_batch(black_box(&batch)))
    });
    g.finish();
}

fn ml_dsa_and_records(c: &mut Criterion) {
    let dual = record(1, true);
    let mut msg = Vec::new();
    signed_bytes(&dual, &mut msg);
    let pk = dual
        .ml_dsa_pk
        .as_ref()
        .expect("dual-signed record has ml_dsa_pk");
    let sig = sig_of(&dual, ALG_ML_DSA_87);
    assert!(verify_ml_dsa_87(pk, &msg, sig));
    c.bench_function("ml_dsa_87_verify", |b| {
        b.iter(|| verify_ml_dsa_87(black_box(pk), black_box(&msg), black_box(sig)))
    });

    let mut g = c.benchmark_group("record_validate");
    let policy = RecordPolicy::default();
    for (name, rec, policy) in [
        ("dual_signed", dual.clone(), policy),
        (
            "ed25519_only",
            record(2, false),
            RecordPolicy {
                require_pq_sig: false,
            },
        ),
    ] {
        let mut enc = Vec::new();
        encode_record(&rec, &mut enc);
        let len = enc.len();
        assert_eq!(validate(&rec, len, NOW, &policy), Ok(()), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| validate(black_box(&rec), len, NOW, &policy).is_ok())
        });
    }
    g.finish();
}

fn capability(c: &mut Criterion) {
    const ROOT: [u8; 32] = [0x42; 32];
    const KID: [u8; 8] = *b"bench-k1";
    let cap = Capability::mint(
        &ROOT,
        KID,
        &["scope=get,put", "tenant=0xaa", "exp=1767225600"],
    );
    let wire = cap.encode();
    let keys = |kid: &[u8; 8]| (*kid == KID).then_some(ROOT);
    let req = CapRequest {
        op: Op::Put,
        now: NOW,
        tenant: 0xaa,
        bytes: Some(1 << 20),
    };
    assert_eq!(cap.verify(keys, &req), Ok(()));

    let mut g = c.benchmark_group("cap_3_caveats");
    g.bench_function("verify", |b| {
        b.iter(|| black_box(&cap).verify(keys, black_box(&req)).is_ok())
    });
    g.bench_function("decode_verify", |b| {
        b.iter(|| {
            Capability::decode(black_box(&wire))
                .unwrap()
                .verify(keys, black_box(&req))
                .is_ok()
        })
    });
    g.finish();
}

criterion_group!(benches, ed25519, ml_dsa_and_records, capability);
criterion_main!(benches);
