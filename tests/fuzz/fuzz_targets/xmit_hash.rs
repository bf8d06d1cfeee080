//! Transmit selection on arbitrary bytes.
//!
//! - `xmit::hash` for every `XmitHashPolicy` over the frame: never panics,
//!   deterministic, 0 for frames shorter than an Ethernet header.
//! - `TxPlan::select` for every plan kind (none, single, round robin,
//!   hash with modulo tables for every policy and stable tables, broadcast): always a usable slave,
//!   `None` only without one; a hash plan picks `slave_for_hash(hash)`.
//! - `rebuild_buckets` on arbitrary usable sets, from the ideal table and
//!   from an arbitrary previous table: every bucket maps to a usable slave,
//!   no bucket moves between slaves usable before and after, a newcomer
//!   gets at most ceil(256/n) buckets, fresh tables ignore list order.
//!
//! Input layout: bytes 0-3 usable mask (little-endian u32, bit i = slave
//! i), 4-7 previous usable mask, 8 list rotation, 9-10 packets_per_slave,
//! 11 flags (bit0: use the next 256 bytes as an arbitrary previous bucket
//! table; bits1-7: the policy of the stable-table plans), then the frame (from the destination MAC on).
#![no_main]

use bondd_core::config::XmitHashPolicy;
use bondd_core::xmit::{self, BUCKETS, Reduce, RrState, TxKind, TxPlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every policy over the raw input as a frame, too: seeds are frames.
    hash_all(data);
    if data.len() < 12 {
        return;
    }
    let mask = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let prev_mask = u32::from_le_bytes(data[4..8].try_into().unwrap());
    let usable = slaves(mask, data[8]);
    let prev_usable = slaves(prev_mask, data[8] / 3);
    let pps = u16::from_le_bytes([data[9], data[10]]);
    let flags = data[11];
    let mut frame = &data[12..];
    let mut arbitrary_prev = None;
    if flags & 1 != 0 && frame.len() >= BUCKETS {
        let (t, f) = frame.split_at(BUCKETS);
        arbitrary_prev = Some(<[u8; BUCKETS]>::try_from(t).unwrap());
        frame = f;
    }

    let policy = XmitHashPolicy::ALL[usize::from(flags >> 1) % XmitHashPolicy::ALL.len()];
    let (fresh, moved) = check_buckets(&prev_usable, &usable, arbitrary_prev.as_ref());
    check_plans(&prev_usable, &usable, pps, policy, frame, [fresh, moved]);
    hash_all(frame);
});

/// The slaves of `mask` in ascending order, rotated by `rot` (config order
/// is arbitrary).
fn slaves(mask: u32, rot: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..32u8).filter(|&s| mask & (1 << s) != 0).collect();
    if !v.is_empty() {
        let k = usize::from(rot) % v.len();
        v.rotate_left(k);
    }
    v
}

fn hash_all(frame: &[u8]) {
    for &p in XmitHashPolicy::ALL {
        let h = xmit::hash(p, frame);
        assert_eq!(h, xmit::hash(p, frame), "{p:?} not deterministic");
        if frame.len() < 14 {
            assert_eq!(h, 0, "{p:?} of a {}-byte frame", frame.len());
        }
    }
}

fn check_table(t: &[u8; BUCKETS], usable: &[u8]) {
    if usable.is_empty() {
        assert_eq!(t, &[0u8; BUCKETS]);
        return;
    }
    for (b, s) in t.iter().enumerate() {
        assert!(
            usable.contains(s),
            "bucket {b} -> slave {s}, usable {usable:?}"
        );
    }
}

fn check_move(prev: &[u8; BUCKETS], prev_usable: &[u8], t: &[u8; BUCKETS], usable: &[u8]) {
    check_table(t, usable);
    let n = usable.len();
    let mut counts = [0usize; 32];
    for b in 0..BUCKETS {
        let (old, new) = (prev[b], t[b]);
        if n > 0 {
            counts[usize::from(new)] += 1;
        }
        if old != new && usable.contains(&old) && prev_usable.contains(&old) {
            assert!(
                !prev_usable.contains(&new),
                "bucket {b} moved between kept slaves {old} -> {new}"
            );
        }
    }
    for &s in usable {
        if !prev_usable.contains(&s) {
            assert!(
                counts[usize::from(s)] <= BUCKETS.div_ceil(n),
                "newcomer {s}: {counts:?}"
            );
        }
    }
}

/// Returns the fresh table for `usable` and the one moved to it from the
/// fresh table of `prev_usable`.
fn check_buckets(
    prev_usable: &[u8],
    usable: &[u8],
    arbitrary: Option<&[u8; BUCKETS]>,
) -> ([u8; BUCKETS], [u8; BUCKETS]) {
    let fresh = xmit::rebuild_buckets(None, &[], usable);
    check_table(&fresh, usable);
    let mut sorted = usable.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        fresh,
        xmit::rebuild_buckets(None, &[], &sorted),
        "order matters"
    );

    let t0 = xmit::rebuild_buckets(None, &[], prev_usable);
    let t1 = xmit::rebuild_buckets(Some(&t0), prev_usable, usable);
    if prev_usable.is_empty() {
        assert_eq!(t1, fresh);
    } else {
        check_move(&t0, prev_usable, &t1, usable);
    }
    // And back.
    let t2 = xmit::rebuild_buckets(Some(&t1), usable, prev_usable);
    if !usable.is_empty() {
        check_move(&t1, usable, &t2, prev_usable);
    }
    if let Some(prev) = arbitrary {
        let t = xmit::rebuild_buckets(Some(prev), prev_usable, usable);
        if prev_usable.is_empty() {
            assert_eq!(t, fresh);
        } else {
            check_move(prev, prev_usable, &t, usable);
        }
    }
    (fresh, t1)
}

fn check_plans(
    prev_usable: &[u8],
    usable: &[u8],
    pps: u16,
    policy: XmitHashPolicy,
    frame: &[u8],
    tables: [[u8; BUCKETS]; 2],
) {
    let mut rr = RrState::new(u64::from(pps) << 7);
    let in_usable = |p: &TxPlan, s: Option<u8>| match s {
        Some(s) => assert!(p.usable().contains(&s), "{p:?} chose {s}"),
        None => assert!(
            p.usable().is_empty() || p.kind() == TxKind::None,
            "{p:?} dropped"
        ),
    };

    let none = TxPlan::none();
    assert_eq!(none.select(frame, &mut rr), None);
    let one = usable.first().copied().unwrap_or(31);
    let single = TxPlan::single(one);
    assert_eq!(single.select(frame, &mut rr), Some(one));
    let bc = TxPlan::broadcast(usable);
    assert_eq!(bc.select(frame, &mut rr), usable.first().copied());
    assert_eq!(bc.usable(), usable);

    let rrp = TxPlan::round_robin(usable, pps);
    for _ in 0..4 {
        let s = rrp.select(frame, &mut rr);
        in_usable(&rrp, s);
        assert_eq!(s.is_none(), usable.is_empty());
    }

    // Modulo plans for every policy; Stable plans (each one rebuilds the
    // 256-bucket table, the expensive part) for the input's policy only.
    for &pol in XmitHashPolicy::ALL {
        let p = TxPlan::hash(usable, pol, Reduce::Modulo, None);
        let s = p.select(frame, &mut rr);
        in_usable(&p, s);
        assert_eq!(s, p.slave_for_hash(xmit::hash(pol, frame)));
        assert_eq!(s.is_none(), usable.is_empty());
    }
    let h = xmit::hash(policy, frame);
    let prev = TxPlan::hash(prev_usable, policy, Reduce::Stable, None);
    for (previous, want) in [(None, &tables[0]), (Some(&prev), &tables[1])] {
        let p = TxPlan::hash(usable, policy, Reduce::Stable, previous);
        assert_eq!(p.usable(), usable);
        let s = p.select(frame, &mut rr);
        in_usable(&p, s);
        assert_eq!(s, p.slave_for_hash(h));
        assert_eq!(s.is_none(), usable.is_empty());
        if !usable.is_empty() {
            assert_eq!(p.buckets(), want);
        }
    }
}
