//! Displacement: no insert refused below the design load and well past
//! it, and lookups that race the moves never miss.

use super::tests::{check, flow};
use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Inserts flows 0.. until `n` are in or one is refused: (inserted,
/// refused for want of a slot).
fn fill(t: &FlowTable, n: u32) -> (u32, u32) {
    let mut refused = 0;
    for i in 0..n {
        match t.insert(&flow(i)) {
            Ok(_) => {}
            Err(InsertError::NoSlot) => refused += 1,
            Err(InsertError::Full) => return (i - refused, refused),
        }
    }
    (n - refused, refused)
}

#[test]
fn a_full_table_at_its_design_load_refuses_no_insert() {
    // 52,428 flows: both keys of each at 80% of 16,384 buckets' slots, the
    // load `FlowTable::new` sizes for. Before displacement about 0.05% of
    // the inserts at this load found both buckets full.
    let t = FlowTable::new(52_428, 1);
    assert_eq!(t.buckets.len(), 16_384);
    assert_eq!(fill(&t, 52_428), (52_428, 0));
    assert!((0..52_428).all(|i| check(&t, i)), "every flow, both keys");
}

#[test]
fn buckets_at_95_percent_of_their_slots_refuse_no_insert() {
    // 1,024 buckets, 8,192 slots; 3,891 flows take 7,782 of them.
    let t = FlowTable::<crate::family::V4>::with_buckets(8_192, 1_024, 1);
    assert_eq!(fill(&t, 3_891), (3_891, 0));
    assert!((0..3_891).all(|i| check(&t, i)));
    let placed: usize = (0..1_024)
        .map(|b| {
            t.buckets[b]
                .0
                .iter()
                .filter(|s| s.load(Relaxed) != 0)
                .count()
        })
        .sum();
    assert_eq!(placed, 2 * 3_891, "each key in exactly one slot");
}

#[test]
fn past_what_displacement_can_reach_only_the_new_flow_fails() {
    // More keys than slots: refusals, but every flow that was inserted
    // stays findable and every refused one took nothing with it.
    let t = FlowTable::<crate::family::V4>::with_buckets(8_192, 512, 1);
    let (inserted, refused) = fill(&t, 3_000);
    assert!(
        refused > 0 && inserted > 1_900,
        "{inserted} in, {refused} refused"
    );
    let found = (0..3_000)
        .filter(|&i| t.lookup(&flow(i).key[0]).is_some())
        .count();
    assert_eq!(found as u32, inserted);
    assert_eq!(t.len() as u32, inserted);
}

#[test]
fn lookups_racing_the_moves_never_miss() {
    // A reader looks up 2,000 resident flows over and over while a writer
    // fills the rest of a table to 95% of its slots and empties it again,
    // for a third of a second: the fills move resident keys between their
    // buckets thousands of times.
    let t = Arc::new(FlowTable::<crate::family::V4>::with_buckets(
        8_192, 1_024, 2,
    ));
    for i in 0..2_000 {
        t.insert(&flow(i)).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (t, done) = (t.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut misses, mut rounds) = (0u64, 0u64);
            while !done.load(Relaxed) {
                t.quiescent(1);
                for i in 0..2_000 {
                    let f = flow(i);
                    if t.lookup(&f.key[0]).is_none() || t.lookup(&f.key[1]).is_none() {
                        misses += 1;
                    }
                }
                rounds += 1;
            }
            (misses, rounds)
        })
    };
    let mut r = Reclaimer::new();
    let (mut fills, mut refused) = (0, 0);
    let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    while std::time::Instant::now() < until || fills == 0 {
        t.quiescent(0);
        let mut mine = Vec::new();
        for i in 2_000..3_891 {
            match t.insert(&flow(i)) {
                Ok(idx) => mine.push(idx),
                Err(_) => refused += 1,
            }
        }
        for idx in mine {
            r.remove(&t, idx);
        }
        // Entries come back after both threads were quiescent.
        while r.pending() > 0 {
            t.quiescent(0);
            r.poll(&t);
            std::thread::yield_now();
        }
        fills += 1;
    }
    let moved = t.moves.0.load(Relaxed);
    done.store(true, Relaxed);
    let (misses, rounds) = reader.join().unwrap();
    assert!(moved > 1_000, "{fills} fills moved only {moved} slots");
    assert_eq!(
        misses, 0,
        "{misses} misses in {rounds} rounds ({moved} moves)"
    );
    assert_eq!(refused, 0);
}
