//! A fast, fixed, seedless hasher for the small integer keys of maps the
//! fast path reads (service match, neighbours). The keys come from config
//! and from control's own resolution, not from packets an attacker picks
//! freely, so a keyed hash buys nothing there and SipHash costs ~200
//! instructions per lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's): rotate, xor, multiply per word.
#[derive(Default, Debug, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
