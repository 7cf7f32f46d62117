use super::*;
use crate::family::Dir;
use crate::lb::snat::RuleRef;
use crate::neigh::PortIndex;
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn key(i: u32) -> FlowKey {
    FlowKey {
        src: Ipv4Addr::from(0x0a00_0000 | (i >> 8)),
        dst: Ipv4Addr::new(203, 0, 113, 10),
        sport: 1024 + (i & 0xff) as u16,
        dport: 80,
        proto: 6,
    }
}

/// The flow for key `i`: its reply key and next hops derive from `i`, so a
/// reader can tell a torn or foreign entry from the right one.
pub(super) fn flow(i: u32) -> NewFlow {
    let k0 = key(i);
    let member = Ipv4Addr::from(0x0a01_0000 | (i % 7));
    let k1 = FlowKey {
        src: member,
        dst: k0.src,
        sport: 8080,
        dport: k0.sport,
        proto: 6,
    };
    NewFlow {
        key: [k0, k1],
        egress: [PortIndex::new(1), PortIndex::new(0)],
        next_hop: [member, Ipv4Addr::from(i)],
        state: State::SynSent,
        tcp_reset: true,
        idle_timeout: Duration::from_secs(240),
        rule: RuleRef::Service(3),
        member: (i % 7) as u16,
        now: 5,
        generation: false,
        snat: false,
        rfc_timers: false,
    }
}

pub(super) fn check(t: &FlowTable, i: u32) -> bool {
    let f = flow(i);
    let Some((idx, Dir::Original)) = t.lookup(&f.key[0]) else {
        return false;
    };
    let r = t.entry(idx).rewrite(Dir::Original);
    assert_eq!(r.to, f.key[1].reversed(), "torn or foreign entry for {i}");
    assert_eq!(r.next_hop(|| None), f.next_hop[0]);
    let r1 = t.entry(idx).rewrite(Dir::Reply);
    assert_eq!(
        r1.next_hop(|| None),
        Ipv4Addr::from(i),
        "torn entry for {i}"
    );
    assert_eq!(t.lookup(&f.key[1]), Some((idx, Dir::Reply)));
    true
}

#[test]
fn both_keys_find_one_entry_with_each_directions_rewrite() {
    let t = FlowTable::new(16, 0);
    let f = flow(42);
    let idx = t.insert(&f).unwrap();
    assert_eq!(t.lookup(&f.key[0]), Some((idx, Dir::Original)));
    assert_eq!(t.lookup(&f.key[1]), Some((idx, Dir::Reply)));
    let r0 = t.entry(idx).rewrite(Dir::Original);
    assert_eq!(r0.to.dst, f.key[1].src, "original goes to the member");
    assert_eq!(r0.to.dport, 8080);
    assert_eq!(r0.to.src, f.key[0].src, "client address kept");
    assert_eq!(r0.egress, PortIndex::new(1));
    let r1 = t.entry(idx).rewrite(Dir::Reply);
    assert_eq!(r1.to, f.key[0].reversed(), "replies come from the frontend");
    assert_eq!(r1.egress, PortIndex::new(0));
    let info = t.info(idx).unwrap();
    assert_eq!(
        (info.rule, info.member, info.tcp_reset),
        (RuleRef::Service(3), 0, true)
    );
    assert_eq!(info.idle_timeout, Duration::from_secs(240));
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(&key(43)), None);
}

#[test]
fn a_full_table_fails_the_new_flow_only() {
    let t = FlowTable::new(4, 0);
    for i in 0..4 {
        t.insert(&flow(i)).unwrap();
    }
    assert_eq!(t.insert(&flow(99)), Err(InsertError::Full));
    for i in 0..4 {
        assert!(check(&t, i));
    }
    assert!(t.lookup(&key(99)).is_none());
}

#[test]
fn removed_entries_are_reused_only_after_every_worker_was_quiescent() {
    let t = FlowTable::new(2, 2);
    let mut r = Reclaimer::new();
    let a = t.insert(&flow(1)).unwrap();
    t.insert(&flow(2)).unwrap();
    assert!(r.remove(&t, a));
    assert!(!r.remove(&t, a), "removing twice is a no-op");
    assert!(t.lookup(&key(1)).is_none());
    assert_eq!(r.poll(&t), 0, "no worker has been quiescent yet");
    assert_eq!(t.insert(&flow(3)), Err(InsertError::Full));
    t.quiescent(0);
    assert_eq!(r.poll(&t), 0, "worker 1 may still hold it");
    t.quiescent(1);
    assert_eq!(r.poll(&t), 1);
    assert_eq!(t.insert(&flow(3)), Ok(a));
    assert!(check(&t, 3) && check(&t, 2));
    assert_eq!(t.len(), 2);
}

#[test]
fn seq_tracking_keeps_the_latest_modulo_2_32() {
    let t = FlowTable::new(1, 0);
    let e = t.entry(t.insert(&flow(1)).unwrap());
    e.track_seq(Dir::Original, u32::MAX - 10);
    e.track_seq(Dir::Original, 5); // wrapped: later
    e.track_seq(Dir::Original, u32::MAX - 3); // a retransmission: earlier
    assert_eq!(t.info(0).unwrap().next_seq[0], 5);
}

#[test]
fn a_blind_segment_cannot_move_the_sequence_number_far() {
    let t = FlowTable::new(1, 0);
    let e = t.entry(t.insert(&flow(1)).unwrap());
    e.track_seq(Dir::Original, 1000);
    e.track_seq(Dir::Original, 1000 + (1 << 30)); // far beyond any window
    assert_eq!(t.info(0).unwrap().next_seq[0], 1000);
    e.track_seq(Dir::Original, 1000 + 60_000);
    assert_eq!(t.info(0).unwrap().next_seq[0], 61_000);
    // The receiver advertised 1 MiB (16 KiB << 6): twice that plus 1 MiB
    // of slack is how far one segment may move it.
    e.note_wscale(Dir::Original, 2);
    e.note_wscale(Dir::Reply, 6);
    e.note_window(Dir::Reply, 16384);
    assert_eq!(e.window(Dir::Reply), 16384 << 6);
    e.track_seq(Dir::Original, 61_000 + (3 << 20) - 1);
    assert_eq!(t.info(0).unwrap().next_seq[0], 61_000 + (3 << 20) - 1);
    // The key is untouched by what the ports word also holds.
    assert_eq!(t.lookup(&flow(1).key[0]), Some((0, Dir::Original)));
    assert_eq!(t.info(0).unwrap().key, flow(1).key);
}

#[test]
fn windows_scale_only_when_both_syns_offered_it() {
    let t = FlowTable::new(1, 0);
    let e = t.entry(t.insert(&flow(1)).unwrap());
    assert_eq!(e.window(Dir::Original), 0, "nothing advertised yet");
    e.note_window(Dir::Original, 1000);
    e.note_window(Dir::Original, 500); // the maximum stays
    assert_eq!(e.window(Dir::Original), 1008, "16-byte units, rounded up");
    e.note_wscale(Dir::Original, 7);
    assert_eq!(e.window(Dir::Original), 1008, "the other side offered none");
    e.note_wscale(Dir::Reply, 0);
    assert_eq!(e.window(Dir::Original), 1008 << 7);
    e.restart_tcp();
    assert_eq!(e.window(Dir::Original), 0);
}

#[test]
fn a_rst_is_judged_against_the_receivers_window() {
    let t = FlowTable::new(1, 0);
    let e = t.entry(t.insert(&flow(1)).unwrap());
    // Nothing seen from either side: no ground to refuse.
    assert!(e.rst_acceptable(Dir::Reply, 12345, None));
    e.track_seq(Dir::Original, 1001);
    // The reply side has sent nothing: it must acknowledge the SYN.
    assert!(!e.rst_acceptable(Dir::Reply, 0, Some(1000)));
    assert!(!e.rst_acceptable(Dir::Reply, 0, None));
    assert!(e.rst_acceptable(Dir::Reply, 0, Some(1001)));
    e.track_seq(Dir::Reply, 9001);
    // Without an advertised window the bound is 65535 either way.
    assert!(e.rst_acceptable(Dir::Original, 1001 + 65535, None));
    assert!(e.rst_acceptable(Dir::Original, 1001u32.wrapping_sub(65535), None));
    assert!(!e.rst_acceptable(Dir::Original, 1001 + 65536, None));
    assert!(!e.rst_acceptable(Dir::Original, 1001 + (1 << 31), None));
    // The member's window widens what the client's RST may carry.
    e.note_window(Dir::Reply, 65535);
    e.note_wscale(Dir::Original, 4);
    e.note_wscale(Dir::Reply, 4);
    assert!(e.rst_acceptable(Dir::Original, 1001 + 1_000_000, None));
    assert!(!e.rst_acceptable(Dir::Original, 1001 + 2_000_000, None));
}

#[test]
fn states_move_only_from_the_expected_one() {
    let t = FlowTable::new(1, 0);
    let e = t.entry(t.insert(&flow(1)).unwrap());
    e.set_tcp_state(State::SynSent, State::SynRecv);
    e.set_tcp_state(State::SynSent, State::Reset);
    assert_eq!(e.tcp_state(), State::SynRecv);
    assert!(t.info(0).unwrap().tcp_reset, "flags survive state changes");
}

/// Four workers insert their own flows and look up everything they have
/// inserted, while control removes every third flow and reclaims: no flow
/// is lost, none is torn, removed ones vanish, and entries are recycled.
#[test]
fn concurrent_inserts_lookups_and_removals() {
    const WORKERS: usize = 4;
    const PER: u32 = 20_000;
    let t = Arc::new(FlowTable::new(PER * WORKERS as u32 / 2 + 4096, WORKERS));
    let done = Arc::new(AtomicBool::new(false));
    let removable = Arc::new(ArrayQueue::<u32>::new(1 << 17));
    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let (t, removable) = (t.clone(), removable.clone());
        handles.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            let mut full = 0u32;
            for n in 0..PER {
                let i = w as u32 * PER + n;
                t.quiescent(w);
                match t.insert(&flow(i)) {
                    Ok(_) => {
                        if i.is_multiple_of(3) {
                            removable.push(i).unwrap();
                        } else {
                            mine.push(i);
                        }
                    }
                    Err(_) => full += 1,
                }
                // Re-check a sample of what this worker owns, every time.
                if let Some(&j) = mine.get((n as usize * 7919) % mine.len().max(1)) {
                    assert!(check(&t, j), "flow {j} lost");
                }
            }
            t.quiescent(w);
            for &j in &mine {
                assert!(check(&t, j), "flow {j} lost");
            }
            (mine, full)
        }));
    }
    let control = {
        let (t, done, removable) = (t.clone(), done.clone(), removable.clone());
        std::thread::spawn(move || {
            let mut r = Reclaimer::new();
            let mut gone = Vec::new();
            loop {
                let finished = done.load(Relaxed);
                while let Some(i) = removable.pop() {
                    let (idx, _) = t.lookup(&key(i)).expect("inserted flow is there");
                    assert!(r.remove(&t, idx));
                    gone.push(i);
                }
                r.poll(&t);
                if finished {
                    break;
                }
                std::thread::yield_now();
            }
            (gone, r.removed())
        })
    };
    let mut kept = Vec::new();
    let mut failed = 0;
    for h in handles {
        let (mine, full) = h.join().unwrap();
        kept.extend(mine);
        failed += full;
    }
    done.store(true, Relaxed);
    let (gone, removed) = control.join().unwrap();
    for &i in &kept {
        assert!(check(&t, i), "flow {i} lost");
    }
    for &i in &gone {
        assert!(t.lookup(&key(i)).is_none(), "removed flow {i} still found");
    }
    assert_eq!(removed as usize, gone.len());
    assert_eq!(t.len(), kept.len());
    // Capacity is about half the flows: without recycling most would fail.
    assert!(
        (failed as usize) < (WORKERS * PER as usize) / 2,
        "entries were not recycled: {failed} inserts failed"
    );
    assert_eq!(t.leaked(), 0);
}

#[test]
fn entry_size_fits_the_budget() {
    let t = FlowTable::<Ipv4Addr>::new(1 << 20, 1);
    let per_flow = t.memory_bytes() / t.capacity();
    const { assert!(ENTRY_BYTES == 64) };
    assert!(per_flow <= 96, "{per_flow} bytes per IPv4 flow");
    let t = FlowTable::<std::net::Ipv6Addr>::new(1 << 20, 1);
    let per_flow = t.memory_bytes() / t.capacity();
    const { assert!(ENTRY_BYTES_V6 == 128) };
    assert!(per_flow <= 160, "{per_flow} bytes per IPv6 flow");
}

#[test]
fn retag_moves_a_live_flow_to_new_ids_and_generation() {
    let t = FlowTable::new(16, 1);
    let idx = t.insert(&flow(1)).unwrap();
    let before = t.info(idx).unwrap();
    assert!(!before.generation);
    t.retag(idx, RuleRef::Snat(9), 4, true);
    let after = t.info(idx).unwrap();
    assert_eq!(
        (after.rule, after.member, after.generation),
        (RuleRef::Snat(9), 4, true)
    );
    assert_eq!(after.key, before.key, "only the ids change");
    assert_eq!(after.state, before.state);
    assert_eq!(t.lookup(&before.key[1]), Some((idx, Dir::Reply)));
}

#[test]
fn passed_since_waits_for_every_worker() {
    let t = FlowTable::<Ipv4Addr>::new(16, 2);
    let then = t.epochs();
    assert!(!t.passed_since(&then));
    t.quiescent(0);
    assert!(!t.passed_since(&then), "worker 1 has not passed yet");
    t.quiescent(1);
    assert!(t.passed_since(&then));
}
