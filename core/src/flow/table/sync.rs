//! A flow as a sync record, and a record back into a flow: the entry's
//! words as they are (keys with their egress and window bits, next-hop
//! codes, state, rule and member ids, sequence numbers), so a peer with
//! the same config holds the same flow. A child of the table module: it
//! reaches the entry's private parts.

use super::entry::load;
use super::{Family, FlowTable, InsertError, GENERATION, LIVE, SNAT};
use crate::family::Dir;
use crate::flow::key::{hash_words, KEY_MASK};
use crate::flow::tcp::State;
use std::sync::atomic::Ordering::Relaxed;

/// State bits a record carries: TCP state, tcp_reset, SNAT, RFC timers and
/// the idle timeout; never `LIVE` or the generation, which are the
/// receiver's.
const CARRIED: u32 = !(LIVE | GENERATION);

/// One flow as sync carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord<A: Family> {
    /// Both keys' words, data bits included.
    pub words: [A::Words; 2],
    /// Next-hop codes, direction 1 in the high half.
    pub next_hop: u64,
    /// IPv6: the far next hop; 0 for IPv4.
    pub far: u128,
    /// State word, less what is the receiver's own.
    pub state: u32,
    /// Rule | member << 16.
    pub meta: u32,
    /// Sequence number after the last segment, per direction.
    pub next_seq: [u32; 2],
    /// Milliseconds since its last packet, at the sender.
    pub age: u32,
}

/// What [`FlowTable::import`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// A new flow, at this entry, under keys of these hashes.
    New(u32, [u64; 2]),
    /// The flow was known: its state and last-seen tick were brought up
    /// to the record's.
    Updated(u32),
    /// A new flow, made after taking out a local SNAT flow that held one
    /// of its keys: a member's reply that came here before the record of
    /// its inbound flow looked like a new outbound flow.
    Displaced(u32, [u64; 2]),
    /// Another flow holds one of its keys (two instances made a flow for
    /// one packet tuple at once): the one here stays, nothing changed.
    Conflict,
}

impl<A: Family> FlowTable<A> {
    /// Live flow `idx` as a record, aged at tick `now`.
    pub fn export(&self, idx: u32, now: u32) -> Option<FlowRecord<A>> {
        let e = self.entries.get(idx as usize)?;
        let state = e.state.load(Relaxed);
        if state & LIVE == 0 {
            return None;
        }
        Some(FlowRecord {
            words: [load::<A>(&e.key[0]), load::<A>(&e.key[1])],
            next_hop: e.next_hop.load(Relaxed),
            far: A::load_far(&e.far_hop).bits(),
            state: state & CARRIED,
            meta: e.meta.load(Relaxed),
            next_seq: [e.next_seq[0].load(Relaxed), e.next_seq[1].load(Relaxed)],
            age: now
                .wrapping_sub(e.last_seen.load(Relaxed))
                .min(u32::MAX >> 1),
        })
    }

    /// The live entry holding exactly the record's two keys.
    pub fn find_record(&self, r: &FlowRecord<A>) -> Option<u32> {
        let w0 = masked::<A>(&r.words[0]);
        let (idx, dir) = self.lookup_words(w0.as_ref(), hash_words(w0.as_ref()))?;
        let e = &self.entries[idx as usize];
        let same = dir == Dir::Original
            && Self::matches(&e.key[1], masked::<A>(&r.words[1]).as_ref())
            && e.state.load(Relaxed) & LIVE != 0;
        same.then_some(idx)
    }

    /// Inserts the record's flow, stamped with tick `now` less its age and
    /// the receiver's rules `generation`; a flow already there takes the
    /// record's TCP state and a later last-seen tick.
    pub fn import(
        &self,
        r: &FlowRecord<A>,
        now: u32,
        generation: bool,
    ) -> Result<Imported, InsertError> {
        let seen = now.wrapping_sub(r.age);
        if let Some(idx) = self.find_record(r) {
            let e = &self.entries[idx as usize];
            let cur = e.state.load(Relaxed);
            let merged = merge(State::from_bits(cur), State::from_bits(r.state));
            if merged as u32 != cur & 7 {
                let _ = e
                    .state
                    .compare_exchange(cur, cur & !7 | merged as u32, Relaxed, Relaxed);
            }
            e.refresh(seen);
            for d in Dir::BOTH {
                if r.next_seq[d.index()] != 0 {
                    e.track_seq(d, r.next_seq[d.index()]);
                }
            }
            return Ok(Imported::Updated(idx));
        }
        let keys = [masked::<A>(&r.words[0]), masked::<A>(&r.words[1])];
        let h = [hash_words(keys[0].as_ref()), hash_words(keys[1].as_ref())];
        let mut displaced = false;
        for d in 0..2 {
            let Some((other, _)) = self.lookup_words(keys[d].as_ref(), h[d]) else {
                continue;
            };
            let snat = self.entries[other as usize].state.load(Relaxed) & SNAT != 0;
            if !snat || r.state & SNAT != 0 {
                return Ok(Imported::Conflict);
            }
            self.withdraw(other);
            displaced = true;
        }
        let idx = self.alloc().ok_or(InsertError::Full)?;
        let e = &self.entries[idx as usize];
        for d in 0..2 {
            for (s, v) in e.key[d].as_ref().iter().zip(r.words[d].as_ref()) {
                s.store(*v, Relaxed);
            }
            e.next_seq[d].store(r.next_seq[d], Relaxed);
        }
        e.packets.store(0, Relaxed);
        if r.far != 0 {
            A::hop_code_far(A::from_bits(r.far), A::UNSPECIFIED, &e.far_hop);
        }
        e.next_hop.store(r.next_hop, Relaxed);
        let g = if generation { GENERATION } else { 0 };
        e.state.store(r.state & CARRIED | LIVE | g, Relaxed);
        e.last_seen.store(seen, Relaxed);
        e.meta.store(r.meta, Relaxed);
        if !self.place(h[1], Dir::Reply, idx) {
            self.abandon(idx);
            return Err(InsertError::NoSlot);
        }
        if !self.place(h[0], Dir::Original, idx) {
            self.unplace(&e.key(Dir::Reply), Dir::Reply, idx);
            self.abandon(idx);
            return Err(InsertError::NoSlot);
        }
        self.live.fetch_add(1, Relaxed);
        Ok(if displaced {
            Imported::Displaced(idx, h)
        } else {
            Imported::New(idx, h)
        })
    }
}

/// The TCP state of a flow two instances each saw part of: the later of
/// the two in a connection's life, so a record that crossed a newer local
/// change (a refresh sent before the peer learned of it) never takes the
/// state back; a FIN seen here and the other one there is both.
pub(super) fn merge(local: State, remote: State) -> State {
    fn rank(s: State) -> u8 {
        match s {
            State::Other | State::SynSent | State::Unconfirmed => 0,
            State::SynRecv => 1,
            State::Established => 2,
            State::FinOrig | State::FinReply => 3,
            State::Closing => 4,
            State::Reset => 5,
        }
    }
    match (local, remote) {
        (State::FinOrig, State::FinReply) | (State::FinReply, State::FinOrig) => State::Closing,
        _ if rank(remote) > rank(local) => remote,
        _ => local,
    }
}

/// Key words with the data bits of the ports word cleared.
fn masked<A: Family>(w: &A::Words) -> A::Words {
    let mut k = *w;
    k.as_mut()[A::ADDR_WORDS] &= KEY_MASK;
    k
}
