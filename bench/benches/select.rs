//! Per-packet transmit selection (`bondd_core::xmit`): one iteration is a
//! batch of 64 frames, as a worker sees them, so criterion's element
//! throughput reads directly as packets per second (and its time per
//! element as ns/packet).
//!
//! Frames are 64-byte IPv4/UDP (Ethernet 14 + IPv4 20 + UDP 8 + 22 payload,
//! no FCS) between a few hosts with varied ports, over three usable slaves
//! (a count that makes `hash % n` a real remainder).
//!
//! `cargo bench -p bondd-bench --bench select -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use bondd_core::config::XmitHashPolicy;
use bondd_core::xmit::{Reduce, RrState, TxPlan};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 64;
const USABLE: [u8; 3] = [0, 1, 2];

/// 64 realistic 64-byte UDP frames: 4 client hosts, 2 servers, varied ports.
fn frames() -> Vec<[u8; 64]> {
    let mut x: u32 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    (0..BATCH)
        .map(|i| {
            let mut f = [0u8; 64];
            f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x10 + (i % 2) as u8]);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 1, 0x20 + (i % 4) as u8]);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut f[14..34];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&50u16.to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&[198, 18, 0, 10 + (i % 4) as u8]);
            ip[16..20].copy_from_slice(&[198, 18, 1, 1 + (i % 2) as u8]);
            let r = next();
            let udp = &mut f[34..42];
            udp[0..2].copy_from_slice(&(1024 + (r & 0x7fff) as u16).to_be_bytes());
            udp[2..4]
                .copy_from_slice(&[443u16, 53, 4789, 8080][(r >> 16) as usize % 4].to_be_bytes());
            udp[4..6].copy_from_slice(&30u16.to_be_bytes());
            f
        })
        .collect()
}

fn run(c: &mut Criterion, name: &str, plan: TxPlan, frames: &[[u8; 64]]) {
    let mut group = c.benchmark_group("select");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut rr = RrState::new(0x5eed);
    group.bench_function(name, |b| {
        b.iter(|| {
            let plan = black_box(&plan);
            let mut acc = 0u32;
            for f in black_box(frames) {
                acc = acc.wrapping_add(u32::from(plan.select(f, &mut rr).unwrap_or(0xff)));
            }
            acc
        })
    });
    group.finish();
}

fn select(c: &mut Criterion) {
    let frames = frames();
    run(c, "active-backup", TxPlan::single(1), &frames);
    run(
        c,
        "balance-rr/pps=1",
        TxPlan::round_robin(&USABLE, 1),
        &frames,
    );
    run(
        c,
        "balance-rr/pps=3",
        TxPlan::round_robin(&USABLE, 3),
        &frames,
    );
    run(
        c,
        "balance-rr/pps=0",
        TxPlan::round_robin(&USABLE, 0),
        &frames,
    );
    run(c, "broadcast", TxPlan::broadcast(&USABLE), &frames);
    for &policy in XmitHashPolicy::ALL {
        for (reduce, r) in [(Reduce::Modulo, "modulo"), (Reduce::Stable, "stable")] {
            let plan = TxPlan::hash(&USABLE, policy, reduce, None);
            run(c, &format!("balance-xor/{policy}/{r}"), plan, &frames);
        }
    }
}

criterion_group!(benches, select);
criterion_main!(benches);
