//! The flow table and what goes in it: connection tracking shared by every
//! worker (RSS may send the two directions of a flow to different cores).
//!
//! - [`FlowTable`]: fixed capacity, lock-free lookups and inserts from any
//!   worker (compare-and-swap into cache-line buckets with a 16-bit
//!   signature per slot, compared eight at a time with SSE2; a full pair of
//!   buckets makes room by moving keys to their other bucket), removal by
//!   the control thread only, slot reuse after every worker has passed a
//!   quiescent point ([`Reclaimer`]).
//! - Each flow sits under two keys, original and reply, both pointing at one
//!   [`Entry`] that holds what each direction is rewritten to (its checksum
//!   deltas derived from the two keys), egress port and next hop, the TCP
//!   state, a coarse last-seen tick and a packet count.
//! - [`tcp`]: the state table and per-state timeouts.
//!
//! One table per family: an IPv4 entry is one 64-byte line, an IPv6 entry
//! two (see ARCHITECTURE.md).

pub mod age;
pub mod frag;
mod key;
pub(crate) mod table;
pub mod tcp;

pub use key::{hash_words, Delta, FlowKey};
pub use table::{
    Entry, FlowInfo, FlowKind, FlowRecord, FlowTable, Imported, InsertError, NewFlow, Opened,
    RawRewrite, Reclaimer, Rewrite, ENTRY_BYTES, ENTRY_BYTES_V6,
};
