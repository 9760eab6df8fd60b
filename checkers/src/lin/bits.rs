//! Small bitsets over the "slots" of pending operations, and a fast hasher for them.
//!
//! The search keeps, per configuration, which pending operations are already linearized.
//! Slots are reused once an operation returns, so most keys need far fewer than 128 bits:
//! `u128` is the fast path; [`Wide`] covers any width.

use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A set of slot numbers.
pub(crate) trait Bits: Clone + Eq + Hash {
    /// The empty set able to hold `width` slots.
    fn empty(width: usize) -> Self;
    /// Adds slot `i`.
    fn set(&mut self, i: usize);
    /// Removes slot `i`.
    fn clear(&mut self, i: usize);
    /// Whether slot `i` is in the set.
    fn get(&self, i: usize) -> bool;
    /// `self & other`.
    fn and(&self, other: &Self) -> Self;
    /// `self & !other`.
    fn and_not(&self, other: &Self) -> Self;
    /// Whether every slot of `self` is in `other`.
    fn subset_of(&self, other: &Self) -> bool;
    /// Calls `f` on every slot in the set, in increasing order.
    fn for_each(&self, f: impl FnMut(usize));
    /// How many slots are in the set.
    fn count(&self) -> u32;
}

impl Bits for u128 {
    #[inline]
    fn empty(_: usize) -> Self {
        0
    }
    #[inline]
    fn set(&mut self, i: usize) {
        *self |= 1u128 << i;
    }
    #[inline]
    fn clear(&mut self, i: usize) {
        *self &= !(1u128 << i);
    }
    #[inline]
    fn get(&self, i: usize) -> bool {
        (*self >> i) & 1 == 1
    }
    #[inline]
    fn and(&self, other: &Self) -> Self {
        self & other
    }
    #[inline]
    fn and_not(&self, other: &Self) -> Self {
        self & !other
    }
    #[inline]
    fn subset_of(&self, other: &Self) -> bool {
        self & !other == 0
    }
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        let mut x = *self;
        while x != 0 {
            let i = x.trailing_zeros() as usize;
            f(i);
            x &= x - 1;
        }
    }
    #[inline]
    fn count(&self) -> u32 {
        self.count_ones()
    }
}

/// A bitset of any width, for keys with more than 128 operations pending at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Wide(Box<[u64]>);

impl Bits for Wide {
    fn empty(width: usize) -> Self {
        Wide(vec![0; width.div_ceil(64).max(1)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn get(&self, i: usize) -> bool {
        (self.0[i / 64] >> (i % 64)) & 1 == 1
    }
    fn and(&self, other: &Self) -> Self {
        Wide(
            self.0
                .iter()
                .zip(other.0.iter())
                .map(|(a, b)| a & b)
                .collect(),
        )
    }
    fn and_not(&self, other: &Self) -> Self {
        Wide(
            self.0
                .iter()
                .zip(other.0.iter())
                .map(|(a, b)| a & !b)
                .collect(),
        )
    }
    fn subset_of(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
    fn for_each(&self, mut f: impl FnMut(usize)) {
        for (w, word) in self.0.iter().enumerate() {
            let mut x = *word;
            while x != 0 {
                f(w * 64 + x.trailing_zeros() as usize);
                x &= x - 1;
            }
        }
    }
    fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
}

/// A multiply-rotate hasher (FxHash's scheme): fast for the integer keys hashed here.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashSet` with [`FxHasher`].
pub(crate) type FxSet<T> = std::collections::HashSet<T, BuildHasherDefault<FxHasher>>;
/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise<B: Bits + std::fmt::Debug>(width: usize) {
        let mut a = B::empty(width);
        let hi = width - 1;
        a.set(0);
        a.set(hi);
        assert!(a.get(0) && a.get(hi) && !a.get(1));
        let mut seen = Vec::new();
        a.for_each(|i| seen.push(i));
        assert_eq!(seen, vec![0, hi]);
        let mut b = B::empty(width);
        b.set(hi);
        assert!(b.subset_of(&a) && !a.subset_of(&b));
        assert_eq!(a.and_not(&b), {
            let mut c = B::empty(width);
            c.set(0);
            c
        });
        assert_eq!(a.and(&b), b);
        a.clear(hi);
        assert!(!a.get(hi));
    }

    #[test]
    fn both_widths_behave_alike() {
        exercise::<u128>(128);
        exercise::<Wide>(200);
        exercise::<Wide>(64);
    }
}
