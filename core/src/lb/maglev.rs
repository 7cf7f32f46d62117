//! Maglev consistent hashing (Eisenbud et al., NSDI 2016): every member
//! walks its own permutation of a prime-sized table and takes turns filling
//! the next free slot, so members get equal shares (within one slot) and a
//! change of membership moves few slots. Permutations depend only on the
//! member's address and the turns go in address order, so the table
//! depends only on the set of members: two instances with the same pool
//! agree, whatever order each lists it in.

use crate::family::Family;
use crate::flow::FlowKey;
use std::net::IpAddr;

/// A lookup table: slot -> member index in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev {
    table: Box<[u16]>,
}

/// FNV-1a over the bytes, then a finaliser: fixed, seedless.
fn hash_bytes(b: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// The table size for `members`: the smallest prime above 100 x members,
/// with the member count rounded up to a power of two (at least 8) so that
/// adding or removing a member rarely changes the size (which would remap
/// nearly every key).
pub fn table_size(members: usize) -> usize {
    let mut n = 100 * members.max(8).next_power_of_two() as u64 + 1;
    while !is_prime(n) {
        n += 1;
    }
    n as usize
}

/// Maglev's population: members take turns claiming the next free slot of
/// their permutation (offset, skip) until the table is full. The turns go
/// in address order, not in the config's: the same set of members gives
/// the same table (slot -> address) whatever their order, in every
/// instance, across reloads and restarts.
fn populate(members: &[IpAddr]) -> Vec<u16> {
    let m = table_size(members.len());
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| members[i]);
    let perm: Vec<(usize, usize, u16)> = order
        .iter()
        .map(|&i| {
            let b = addr_bytes(&members[i]);
            let offset = hash_bytes(&b, 0) as usize % m;
            let skip = hash_bytes(&b, 0x5bd1_e995) as usize % (m - 1) + 1;
            (offset, skip, i as u16)
        })
        .collect();
    let mut next = vec![0usize; members.len()];
    let mut table = vec![u16::MAX; m];
    let mut filled = 0;
    loop {
        for (j, &(offset, skip, member)) in perm.iter().enumerate() {
            let mut c = (offset + next[j] * skip) % m;
            while table[c] != u16::MAX {
                next[j] += 1;
                c = (offset + next[j] * skip) % m;
            }
            table[c] = member;
            next[j] += 1;
            filled += 1;
            if filled == m {
                return table;
            }
        }
    }
}

impl Maglev {
    /// Builds the table for a pool's `members`, giving slots only to those
    /// with `eligible[i]`. `None` when no member is eligible.
    ///
    /// The Maglev table is always populated with every configured member,
    /// so it depends on the config only; the slots of members that may not
    /// take new flows (probe or admin down) are then handed to eligible
    /// members by rendezvous hashing on the slot. A member going down thus
    /// moves exactly its own slots and no other, and coming back restores
    /// the table as it was.
    pub fn build(members: &[IpAddr], eligible: &[bool]) -> Option<Maglev> {
        let ok = |i: usize| eligible.get(i).copied().unwrap_or(false);
        let up: Vec<usize> = (0..members.len()).filter(|&i| ok(i)).collect();
        if up.is_empty() {
            return None;
        }
        let mut table = populate(members);
        if up.len() < members.len() {
            let ids: Vec<u64> = members
                .iter()
                .map(|a| hash_bytes(&addr_bytes(a), 0x2545_f491))
                .collect();
            for (slot, owner) in table.iter_mut().enumerate() {
                if ok(usize::from(*owner)) {
                    continue;
                }
                let score = |i: &usize| hash_bytes(&(slot as u64 ^ ids[*i]).to_le_bytes(), 7);
                *owner = up
                    .iter()
                    .copied()
                    .max_by_key(score)
                    .expect("up is not empty") as u16;
            }
        }
        Some(Maglev {
            table: table.into_boxed_slice(),
        })
    }

    /// The member for a flow hash.
    #[inline]
    pub fn pick(&self, hash: u64) -> u16 {
        self.table[(hash % self.table.len() as u64) as usize]
    }

    /// The table itself (for tests and listings).
    pub fn slots(&self) -> &[u16] {
        &self.table
    }
}

/// The distribution hash of a flow: fixed and seedless, over the tuple the
/// rule's distribution names. The flow key's own hash
/// ([`crate::flow::hash_words`]) over its words, with the ports word cut
/// to what the distribution keeps.
#[inline]
pub fn flow_hash<A: Family>(k: &FlowKey<A>, dist: crate::config::Distribution) -> u64 {
    use crate::config::Distribution::*;
    let mut w = k.words();
    let ports = &mut w.as_mut()[A::ADDR_WORDS];
    match dist {
        Default => {}
        SourceIpProtocol => *ports = u64::from(k.proto),
        SourceIp => *ports = 0,
    }
    crate::flow::hash_words(w.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn members(n: usize) -> Vec<IpAddr> {
        (0..n)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 11 + i as u32)))
            .collect()
    }

    fn counts(t: &Maglev, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &s in t.slots() {
            c[usize::from(s)] += 1;
        }
        c
    }

    #[test]
    fn the_order_of_the_members_changes_nothing() {
        let a = members(40);
        let mut b = a.clone();
        b.reverse();
        b.swap(3, 17);
        let all = vec![true; 40];
        let (ta, tb) = (
            Maglev::build(&a, &all).unwrap(),
            Maglev::build(&b, &all).unwrap(),
        );
        for (x, y) in ta.slots().iter().zip(tb.slots()) {
            assert_eq!(a[usize::from(*x)], b[usize::from(*y)]);
        }
        // With members down too: the same addresses get the same slots.
        let mut ea = all.clone();
        ea[5] = false;
        let eb: Vec<bool> = b.iter().map(|m| *m != a[5]).collect();
        let (ta, tb) = (
            Maglev::build(&a, &ea).unwrap(),
            Maglev::build(&b, &eb).unwrap(),
        );
        for (x, y) in ta.slots().iter().zip(tb.slots()) {
            assert_eq!(a[usize::from(*x)], b[usize::from(*y)]);
        }
    }

    #[test]
    fn sizes_are_primes_above_100_per_member() {
        assert_eq!(table_size(1), 809);
        assert_eq!(table_size(3), 809);
        assert_eq!(table_size(9), 1601);
        assert_eq!(table_size(1000), 102_407);
        assert_eq!(table_size(1000), table_size(999));
    }

    #[test]
    fn ineligible_members_get_nothing_and_none_means_none() {
        let m = members(3);
        let t = Maglev::build(&m, &[true, false, true]).unwrap();
        assert_eq!(counts(&t, 3)[1], 0);
        assert!(Maglev::build(&m, &[false; 3]).is_none());
    }

    fn check_balance_and_disruption(n: usize, gone: usize) {
        let m = members(n);
        let all = vec![true; n];
        let t = Maglev::build(&m, &all).unwrap();
        let size = t.slots().len();
        let ideal = size as f64 / n as f64;
        for c in counts(&t, n) {
            // Maglev hands slots out in turns: shares differ by one slot at
            // most, well within 1% of the table for 3..1000 members.
            assert!(
                (c as f64 - ideal).abs() <= ideal * 0.01 + 1.0,
                "n={n}: share {c} vs {ideal}"
            );
        }
        let mut fewer = all.clone();
        fewer[gone] = false;
        let t2 = Maglev::build(&m, &fewer).unwrap();
        let moved = t
            .slots()
            .iter()
            .zip(t2.slots())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            moved,
            counts(&t, n)[gone],
            "only the gone member's slots move"
        );
        let frac = moved as f64 / size as f64;
        assert!(
            frac <= 1.0 / n as f64 + 0.01,
            "n={n}: removing one member moved {frac:.4} of keys"
        );
    }

    #[test]
    fn balanced_and_minimal_disruption_at_the_edges() {
        for n in [3, 4, 10, 100, 1000] {
            check_balance_and_disruption(n, n / 2);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn balanced_and_minimal_disruption(n in 3usize..400, g in 0usize..400) {
            check_balance_and_disruption(n, g % n);
        }

        #[test]
        fn same_pool_same_choice(h in any::<u64>()) {
            let m = members(7);
            let a = Maglev::build(&m, &[true; 7]).unwrap();
            let b = Maglev::build(&m, &[true; 7]).unwrap();
            prop_assert_eq!(a.pick(h), b.pick(h));
        }
    }
}
