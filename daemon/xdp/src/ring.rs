//! Single-producer single-consumer rings shared with the kernel (AF_XDP fill,
//! completion, RX and TX rings), or with a test harness standing in for it.
//!
//! The memory layout is the kernel's: a producer index, a consumer index and a
//! flags word (each a `u32`), and a power-of-two array of entries. Indexes run
//! freely and wrap; `index & mask` is the slot. One side only ever writes the
//! producer, the other only the consumer.

use std::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};

/// An AF_XDP RX/TX descriptor (`struct xdp_desc`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpDesc {
    /// Offset of the frame data in the UMEM.
    pub addr: u64,
    /// Length of the frame in bytes.
    pub len: u32,
    /// Option flags (unused by bondd; always 0 on TX).
    pub options: u32,
}

/// Raw pointers into one ring's memory. Keeps the owner of that memory alive
/// only through the struct that holds it (socket mmap or test buffer).
pub(crate) struct RawRing<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    size: u32,
}

impl<T: Copy> RawRing<T> {
    /// # Safety
    /// The pointers must be valid, aligned and live for as long as the ring
    /// (and its owner) is used; `entries` must point at `size` entries; `size`
    /// must be a power of two.
    pub(crate) unsafe fn new(
        producer: NonNull<AtomicU32>,
        consumer: NonNull<AtomicU32>,
        flags: NonNull<AtomicU32>,
        entries: NonNull<T>,
        size: u32,
    ) -> Self {
        debug_assert!(size.is_power_of_two());
        Self {
            producer,
            consumer,
            flags,
            entries,
            size,
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: valid for the ring's lifetime per `RawRing::new`'s contract.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: valid for the ring's lifetime per `RawRing::new`'s contract.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: valid for the ring's lifetime per `RawRing::new`'s contract.
        unsafe { self.flags.as_ref() }
    }

    fn read(&self, idx: u32) -> T {
        let slot = (idx & (self.size - 1)) as usize;
        // SAFETY: slot < size and `entries` points at `size` entries; the slot
        // was published by the producer (acquire on the producer index).
        unsafe { self.entries.as_ptr().add(slot).read_volatile() }
    }

    fn write(&self, idx: u32, val: T) {
        let slot = (idx & (self.size - 1)) as usize;
        // SAFETY: slot < size; the slot is free (the consumer released it,
        // acquire on the consumer index) and only this producer writes it.
        unsafe { self.entries.as_ptr().add(slot).write_volatile(val) }
    }
}

// SAFETY: a ring is owned by exactly one thread at a time (the worker); the
// memory behind it is shared with the kernel only through the atomics.
unsafe impl<T: Send> Send for RawRing<T> {}

/// The side of a ring that bondd fills (fill ring, TX ring).
pub struct ProdRing<T> {
    raw: RawRing<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ProdRing<T> {
    pub(crate) fn new(raw: RawRing<T>) -> Self {
        let prod = raw.producer().load(Ordering::Relaxed);
        let cons = raw.consumer().load(Ordering::Acquire);
        Self {
            raw,
            cached_prod: prod,
            cached_cons: cons,
        }
    }

    /// Ring capacity in entries.
    pub fn size(&self) -> u32 {
        self.raw.size
    }

    /// Free slots, refreshing the consumer index only when the cached view
    /// cannot satisfy `want` (one shared-cache-line read per batch at most).
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.raw.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.raw.consumer().load(Ordering::Acquire);
        self.raw.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Entries produced and not yet consumed by the other side.
    pub fn outstanding(&mut self) -> u32 {
        self.cached_cons = self.raw.consumer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes as many of `items` as fit and publishes them with one release
    /// store. Returns how many were written.
    pub fn produce(&mut self, items: &[T]) -> usize {
        let n = (self.free(items.len() as u32) as usize).min(items.len());
        for (i, item) in items[..n].iter().enumerate() {
            self.raw
                .write(self.cached_prod.wrapping_add(i as u32), *item);
        }
        if n > 0 {
            self.cached_prod = self.cached_prod.wrapping_add(n as u32);
            self.raw
                .producer()
                .store(self.cached_prod, Ordering::Release);
        }
        n
    }

    /// Writes entries produced by `next` until it returns `None` or the ring
    /// is full; publishes once. Returns how many were written.
    pub fn produce_with(&mut self, max: u32, mut next: impl FnMut() -> Option<T>) -> u32 {
        let room = self.free(max).min(max);
        let mut n = 0;
        while n < room {
            match next() {
                Some(v) => {
                    self.raw.write(self.cached_prod.wrapping_add(n), v);
                    n += 1;
                }
                None => break,
            }
        }
        if n > 0 {
            self.cached_prod = self.cached_prod.wrapping_add(n);
            self.raw
                .producer()
                .store(self.cached_prod, Ordering::Release);
        }
        n
    }

    /// Entries produced but not consumed by the other side. Only sound once
    /// the other side is gone (socket closed), or it may still take them.
    pub(crate) fn take_unconsumed(&mut self) -> Vec<T> {
        let cons = self.raw.consumer().load(Ordering::Acquire);
        let n = self.cached_prod.wrapping_sub(cons);
        (0..n)
            .map(|i| self.raw.read(cons.wrapping_add(i)))
            .collect()
    }

    /// The kernel sets `XDP_RING_NEED_WAKEUP` when it will not look at this
    /// ring again until bondd makes a syscall.
    pub fn needs_wakeup(&self) -> bool {
        self.raw.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

/// The side of a ring that bondd drains (RX ring, completion ring).
pub struct ConsRing<T> {
    raw: RawRing<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ConsRing<T> {
    pub(crate) fn new(raw: RawRing<T>) -> Self {
        let prod = raw.producer().load(Ordering::Acquire);
        let cons = raw.consumer().load(Ordering::Relaxed);
        Self {
            raw,
            cached_prod: prod,
            cached_cons: cons,
        }
    }

    /// Ring capacity in entries.
    pub fn size(&self) -> u32 {
        self.raw.size
    }

    /// Reads up to `out.len()` entries and releases them with one store.
    pub fn consume(&mut self, out: &mut [T]) -> usize {
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if (avail as usize) < out.len() {
            self.cached_prod = self.raw.producer().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        let n = (avail as usize).min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.raw.read(self.cached_cons.wrapping_add(i as u32));
        }
        if n > 0 {
            self.cached_cons = self.cached_cons.wrapping_add(n as u32);
            self.raw
                .consumer()
                .store(self.cached_cons, Ordering::Release);
        }
        n
    }

    /// Every entry waiting to be consumed, consumed.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        let prod = self.raw.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(self.cached_cons);
        let out = (0..n)
            .map(|i| self.raw.read(self.cached_cons.wrapping_add(i)))
            .collect();
        self.cached_cons = prod;
        self.cached_prod = prod;
        out
    }

    /// Entries waiting to be consumed (refreshes the producer index).
    pub fn available(&mut self) -> u32 {
        self.cached_prod = self.raw.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }
}

/// Ring memory in the process heap, for tests that stand in for the kernel.
/// Both ends of a ring can be made from it: [`MemRing::producer`] and
/// [`MemRing::consumer`] each hand out one side.
pub struct MemRing<T> {
    // Boxed so the addresses handed to the rings never move.
    header: Box<[AtomicU32; 3]>,
    // A raw allocation, not a `Box<[T]>`: both ring sides write entries
    // through pointers while `self` is only shared, which a pointer taken
    // from a shared borrow of a box would not allow (Miri: Stacked Borrows).
    entries: NonNull<T>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T> Drop for MemRing<T> {
    fn drop(&mut self) {
        // SAFETY: `entries`/`len` came from `Box::into_raw` of a boxed slice
        // in `new`, and are freed once, here.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.entries.as_ptr(),
                self.len,
            )));
        }
    }
}

// SAFETY: the ring owns its allocation; access goes through atomics and the
// SPSC protocol, as for kernel rings.
unsafe impl<T: Send> Send for MemRing<T> {}

impl<T: Copy + Default> MemRing<T> {
    /// A ring of `size` entries (power of two).
    pub fn new(size: u32) -> Self {
        assert!(size.is_power_of_two(), "ring size must be a power of two");
        let raw = Box::into_raw(vec![T::default(); size as usize].into_boxed_slice());
        Self {
            header: Box::new([AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)]),
            entries: NonNull::new(raw as *mut T).expect("Box::into_raw is never null"),
            len: size as usize,
            _t: PhantomData,
        }
    }

    fn raw(&self) -> RawRing<T> {
        let h = &self.header;
        // SAFETY: the pointers come from live boxes owned by `self`; callers of
        // `producer`/`consumer` must keep `self` alive (documented there).
        unsafe {
            RawRing::new(
                NonNull::from(&h[0]),
                NonNull::from(&h[1]),
                NonNull::from(&h[2]),
                self.entries,
                self.len as u32,
            )
        }
    }

    /// The producer side. `self` must outlive it (tests keep both in scope).
    pub fn producer(&self) -> ProdRing<T> {
        ProdRing::new(self.raw())
    }

    /// The consumer side. `self` must outlive it (tests keep both in scope).
    pub fn consumer(&self) -> ConsRing<T> {
        ConsRing::new(self.raw())
    }

    /// Sets or clears the need-wakeup flag, as the kernel would.
    pub fn set_need_wakeup(&self, on: bool) {
        let v = if on { libc::XDP_RING_NEED_WAKEUP } else { 0 };
        self.header[2].store(v, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_consume_wraps_and_respects_capacity() {
        let ring = MemRing::<u64>::new(8);
        let mut p = ring.producer();
        let mut c = ring.consumer();
        let mut out = [0u64; 8];
        let mut next = 0u64;
        let mut expect = 0u64;
        for round in 0..100 {
            let items: Vec<u64> = (next..next + 5).collect();
            let n = p.produce(&items);
            next += n as u64;
            assert!(p.outstanding() <= 8);
            let take = if round % 3 == 0 { 2 } else { 8 };
            let got = c.consume(&mut out[..take]);
            for v in &out[..got] {
                assert_eq!(*v, expect);
                expect += 1;
            }
        }
        // Drain and check nothing was lost or duplicated.
        loop {
            let got = c.consume(&mut out);
            if got == 0 {
                break;
            }
            for v in &out[..got] {
                assert_eq!(*v, expect);
                expect += 1;
            }
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn full_ring_refuses_more() {
        let ring = MemRing::<u64>::new(4);
        let mut p = ring.producer();
        assert_eq!(p.produce(&[1, 2, 3, 4, 5, 6]), 4);
        assert_eq!(p.produce(&[7]), 0);
        let mut c = ring.consumer();
        let mut out = [0; 1];
        assert_eq!(c.consume(&mut out), 1);
        assert_eq!(out[0], 1);
        assert_eq!(p.produce(&[7]), 1);
    }

    #[test]
    fn producer_and_consumer_on_two_threads() {
        // The SPSC protocol across threads (Miri checks the orderings):
        // everything arrives once, in order, and never more than the ring
        // holds is outstanding.
        const N: u64 = 200;
        let ring = MemRing::<u64>::new(4);
        let (mut p, mut c) = (ring.producer(), ring.consumer());
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut next = 0;
                while next < N {
                    let n = p.produce_with(3, || {
                        let v = next;
                        next += 1;
                        (v < N).then_some(v)
                    });
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
            });
            let mut out = [0u64; 3];
            let mut expect = 0;
            while expect < N {
                let got = c.consume(&mut out);
                assert!(got <= 3);
                for v in &out[..got] {
                    assert_eq!(*v, expect);
                    expect += 1;
                }
                if got == 0 {
                    std::thread::yield_now();
                }
            }
        });
    }

    #[test]
    fn need_wakeup_flag_is_read() {
        let ring = MemRing::<XdpDesc>::new(4);
        let p = ring.producer();
        assert!(!p.needs_wakeup());
        ring.set_need_wakeup(true);
        assert!(p.needs_wakeup());
    }
}
