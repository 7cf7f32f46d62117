//! Per-worker counters. A worker counts into a plain [`Counters`] and copies
//! it into its cache-line-aligned [`SharedCounters`] once per burst; the
//! control thread reads those. No atomic read-modify-write on the fast path.

use std::sync::atomic::{AtomicU64, Ordering};

crate::named_enum! {
    /// Why a frame was dropped. Every drop has exactly one.
    DropReason {
        /// Shorter than an Ethernet header.
        Runt => "runt",
        /// Unicast to another MAC (seen in promiscuous mode).
        NotOurMac => "not_our_mac",
        /// Carries our own source MAC (our transmission seen again).
        Looped => "looped",
        /// 802.1Q/802.1ad tagged: no VLAN is configured.
        VlanTagged => "vlan_tagged",
        /// Neither ARP, IPv4 nor IPv6.
        UnknownEthertype => "unknown_ethertype",
        /// Truncated, or not Ethernet/IPv4 ARP.
        ArpMalformed => "arp_malformed",
        /// A request for an address Sluice does not own on that port.
        ArpNotOurs => "arp_not_ours",
        /// ARP/ND from the external side claiming an internal or own address.
        NeighSpoof => "neigh_spoof",
        /// ARP operation or reply Sluice has no use for.
        ArpUnhandled => "arp_unhandled",
        /// IPv4 header truncated or inconsistent.
        Ipv4Malformed => "ipv4_malformed",
        /// IPv4 header checksum wrong.
        Ipv4BadChecksum => "ipv4_bad_checksum",
        /// IPv6 header or extension headers truncated or inconsistent.
        Ipv6Malformed => "ipv6_malformed",
        /// IPv6 extension headers chained longer than Sluice walks (8).
        Ipv6ExtHeaders => "ipv6_ext_headers",
        /// ICMP/ICMPv6 truncated or with a wrong checksum.
        IcmpMalformed => "icmp_malformed",
        /// ICMP to an owned address that is not an echo request.
        IcmpUnhandled => "icmp_unhandled",
        /// Echo from a source no reply can go to: unspecified, multicast,
        /// broadcast, loopback, or one of Sluice's own addresses.
        MartianSource => "martian_source",
        /// Neighbour discovery message that breaks RFC 4861 checks.
        NdInvalid => "nd_invalid",
        /// Solicitation for an address Sluice does not own on that port.
        NdNotOurs => "nd_not_ours",
        /// A fragment Sluice does not forward: addressed to Sluice itself, or
        /// for a rule other than HA ports.
        Fragment => "fragment",
        /// TCP/UDP/other to an owned address that no rule serves.
        NoService => "no_service",
        /// To an address Sluice does not own, and no rule forwards it.
        NoRule => "no_rule",
        /// No connected subnet or gateway reaches the destination.
        NoRoute => "no_route",
        /// Chained mbuf (jumbo beyond one buffer).
        MultiSegment => "multi_segment",
        /// The ring to the control thread was full.
        SlowpathFull => "slowpath_full",
        /// The TX queue did not take the packet.
        TxFull => "tx_full",
        /// TCP/UDP header truncated or inconsistent.
        L4Malformed => "l4_malformed",
        /// TCP that is not a SYN and matches no flow.
        TcpNoFlow => "tcp_no_flow",
        /// A security rule (or the default deny of public frontends)
        /// refused a new inbound flow.
        SecurityDeny => "security_deny",
        /// No member may take new flows (all down, `no_new_flows`).
        NoHealthyMember => "no_healthy_member",
        /// The flow table is full: the new flow is not created.
        FlowTableFull => "flow_table_full",
        /// TTL would reach zero.
        TtlExceeded => "ttl_exceeded",
        /// An ICMP error about no tracked flow.
        IcmpNoFlow => "icmp_no_flow",
        /// From the internal side to off the internal network, from an
        /// address no outbound rule covers.
        EgressDenied => "egress_denied",
        /// Leaving from a member whose outbound rule does not cover the
        /// protocol (other than TCP/UDP, or not the rule's).
        SnatProtocol => "snat_protocol",
        /// A new outbound flow found every port of its member's slice busy.
        SnatExhausted => "snat_exhausted",
        /// To a public SNAT address with no flow or cone mapping for it.
        SnatNoMapping => "snat_no_mapping",
        /// Larger than the egress port's MTU, and neither an ICMP error sent
        /// for it (rate limit, martian source) nor fragmented (IPv4 without
        /// DF whose next hop is not resolved yet).
        MtuExceeded => "mtu_exceeded",
        /// A hairpin flow found no free frontend port for its member's
        /// tuple (64 tried), or lost the one it took to another worker.
        HairpinExhausted => "hairpin_exhausted",
        /// A datagram to be fragmented found no buffers for its fragments
        /// (the mbuf pool is empty), or would need more than 8.
        FragmentNoBuffer => "fragment_no_buffer",
        /// A probe reply found the ring to the prober full.
        ProbeRingFull => "probe_ring_full",
        /// For the port's kernel interface, and the ring to it was full
        /// (or the port has no kernel interface running).
        KernelRingFull => "kernel_ring_full",

    }
}

crate::named_enum! {
    /// What a worker did, other than drops.
    Stat {
        /// Frames received.
        Rx => "rx",
        /// Frames the pipeline sent towards a TX queue.
        ToTx => "to_tx",
        /// Frames the TX queues took.
        Tx => "tx",
        /// Datagrams larger than their egress MTU (IPv4 without DF) handed
        /// on to be sent as fragments (counted in `to_tx` too).
        Fragmented => "fragmented",
        /// Fragments made of them (worker or control), all sent to TX.
        FragmentsMade => "fragments_made",
        /// Frames handed to control to wait for a neighbour.
        Held => "held",
        /// Frames used up without a reply (ARP replies, NAs learned from).
        Consumed => "consumed",
        /// ARP replies sent.
        ArpReplies => "arp_replies",
        /// Neighbour advertisements sent.
        NdAdverts => "nd_adverts",
        /// Echo replies (ICMP and ICMPv6).
        EchoReplies => "echo_replies",
        /// Learned neighbours not passed on (control ring full).
        LearnLost => "learn_lost",
        /// Packets control asked this worker to send.
        FromControl => "from_control",
        /// Non-empty bursts processed.
        Bursts => "bursts",
        /// Flows created.
        FlowsCreated => "flows_created",
        /// TCP flows picked up mid-stream (a segment that was not a SYN,
        /// on a rule with `pickup`), unconfirmed until the member answers
        /// (included in `flows_created`).
        PickedUp => "picked_up",
        /// Hairpin flows created: a client on an internal subnet, its
        /// source rewritten to the frontend (included in `flows_created`).
        HairpinCreated => "hairpin_created",
        /// Outbound SNAT flows created (included in `flows_created`).
        SnatCreated => "snat_created",
        /// Packets forwarded through a flow.
        Forwarded => "forwarded",
        /// TCP RSTs outside the receiver's window: forwarded, the flow's
        /// state unchanged.
        TcpRstOutOfWindow => "tcp_rst_out_of_window",
        /// TCP SYNs (no ACK) on an established or half-closed flow:
        /// forwarded, the flow's state unchanged.
        TcpSynOnEstablished => "tcp_syn_on_established",
        /// ICMP errors translated for a flow.
        IcmpTranslated => "icmp_translated",
        /// ICMP Time Exceeded sent for packets whose TTL / hop limit ran
        /// out here (their frames; the rate-limited rest are
        /// `drop.ttl_exceeded`).
        TimeExceededSent => "time_exceeded_sent",
        /// ICMP "fragmentation needed" / ICMPv6 Packet Too Big sent for
        /// packets larger than their egress port's MTU.
        TooBigSent => "too_big_sent",
        /// Fragments forwarded after their first fragment.
        FragmentsForwarded => "fragments_forwarded",
        /// Later fragments handed to control to wait for their first one.
        Deferred => "deferred",
        /// Replies to health probes handed to the prober.
        ToProber => "to_prober",
        /// Frames handed to their port's kernel interface (the exception
        /// path: BGP, BFD, SSH to the port's own addresses).
        ToKernel => "to_kernel",
        /// Copies of ARP and neighbour discovery frames handed to the
        /// kernel interface (the data plane acted on them too).
        KernelCopies => "kernel_copies",
        /// Copies not handed over: no buffer, or the ring was full.
        KernelCopiesLost => "kernel_copies_lost",
        /// Sync datagrams taken from peers (accepted or refused: the
        /// cluster counters tell).
        SyncReceived => "sync_received",
        /// TSC cycles of loop iterations that received frames (RX burst,
        /// processing, TX), read once per iteration: divided by `rx`, the
        /// cost per packet.
        BusyCycles => "busy_cycles",
    }
}

/// A worker's counters, plain integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by [`Stat`].
    pub stats: [u64; Stat::COUNT],
    /// Indexed by [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
    /// Not a count: the keys of the flows this worker inserted in the
    /// current chunk, as a filter of their hashes. A frame the chunk's
    /// lookup pass did not find is looked up again only when a flow
    /// inserted since may be its own; empty between chunks.
    pub(super) inserted: KeyFilter,
    /// Not a count: the budget of ICMP errors this worker originates.
    pub(super) icmp_limit: super::time_exceeded::Limiter,
    /// Not a count: the flows the current burst created or moved to
    /// another TCP state, for the worker to sync to the cluster's peers.
    pub(super) touched: Touched,
}

/// Entries a burst created or changed: index | family << 31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    idx: [u32; TOUCHED],
    len: usize,
    /// Noted while full (the worker counts them as not synced).
    pub overflow: u64,
}

/// Entries [`Touched`] holds: a burst creates at most two per frame (an
/// SNAT flow and its cone mapping) and changes one.
const TOUCHED: usize = 3 * crate::MAX_BURST;

impl Default for Touched {
    fn default() -> Self {
        Touched {
            idx: [0; TOUCHED],
            len: 0,
            overflow: 0,
        }
    }
}

impl Touched {
    /// Notes entry `idx` of the IPv4 (`v6` false) or IPv6 table.
    #[inline]
    pub(super) fn note(&mut self, v6: bool, idx: u32) {
        match self.idx.get_mut(self.len) {
            Some(slot) => {
                *slot = idx | u32::from(v6) << 31;
                self.len += 1;
            }
            None => self.overflow += 1,
        }
    }
    /// (IPv6, entry) of each noted entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (bool, u32)> + '_ {
        self.idx[..self.len]
            .iter()
            .map(|&v| (v >> 31 != 0, v & !(1 << 31)))
    }
    /// True when nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Forgets what was noted.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = 0;
    }
}

/// A 256-bit filter of flow key hashes: no false negatives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KeyFilter([u64; 4]);

impl KeyFilter {
    /// Notes the hash of a key.
    #[inline(always)]
    pub(super) fn note(&mut self, h: u64) {
        let b = (h >> 56) as usize;
        self.0[b >> 6] |= 1 << (b & 63);
    }
    /// False when no key of hash `h` has been noted.
    #[inline(always)]
    pub(super) fn may_hold(&self, h: u64) -> bool {
        let b = (h >> 56) as usize;
        self.0[b >> 6] >> (b & 63) & 1 != 0
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            stats: [0; Stat::COUNT],
            drops: [0; DropReason::COUNT],
            inserted: KeyFilter::default(),
            icmp_limit: Default::default(),
            touched: Touched::default(),
        }
    }
}

impl Counters {
    /// Counts flow `idx` this worker inserted in `A`'s table, whose keys
    /// hash to `hashes`.
    #[inline]
    pub(super) fn flow_created<A: crate::family::Family>(&mut self, idx: u32, hashes: [u64; 2]) {
        self.add(Stat::FlowsCreated, 1);
        self.touched.note(A::V6, idx);
        self.inserted.note(hashes[0]);
        self.inserted.note(hashes[1]);
    }
    /// The flows this burst created or moved in TCP state.
    pub fn touched(&mut self) -> &mut Touched {
        &mut self.touched
    }
    /// Notes entry `idx` of `A`'s table as changed (TCP state), or created
    /// without being a flow of its own (a cone mapping).
    #[inline]
    pub(super) fn touch<A: crate::family::Family>(&mut self, idx: u32) {
        self.touched.note(A::V6, idx);
    }
    /// Adds `n` to a stat.
    #[inline]
    pub fn add(&mut self, s: Stat, n: u64) {
        self.stats[s as usize] += n;
    }
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    /// A stat's value.
    pub fn stat(&self, s: Stat) -> u64 {
        self.stats[s as usize]
    }
    /// A drop counter's value.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    /// Sum of every drop reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// Adds another worker's counters (for totals).
    pub fn merge(&mut self, o: &Counters) {
        for (a, b) in self.stats.iter_mut().zip(o.stats) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
    }
}

/// The copy of a worker's counters that other threads read.
#[repr(align(64))]
#[derive(Debug)]
pub struct SharedCounters {
    stats: [AtomicU64; Stat::COUNT],
    drops: [AtomicU64; DropReason::COUNT],
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            stats: std::array::from_fn(|_| AtomicU64::new(0)),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SharedCounters {
    /// Called by the owning worker only (single writer: plain stores).
    pub fn publish(&self, c: &Counters) {
        for (a, v) in self.stats.iter().zip(c.stats) {
            a.store(v, Ordering::Relaxed);
        }
        for (a, v) in self.drops.iter().zip(c.drops) {
            a.store(v, Ordering::Relaxed);
        }
    }
    /// A consistent-enough copy for reporting.
    pub fn read(&self) -> Counters {
        Counters {
            stats: std::array::from_fn(|i| self.stats[i].load(Ordering::Relaxed)),
            drops: std::array::from_fn(|i| self.drops[i].load(Ordering::Relaxed)),
            inserted: KeyFilter::default(),
            icmp_limit: Default::default(),
            touched: Touched::default(),
        }
    }
}

/// Rule ids a [`Traffic`] has a slot for: every `u16`, so a flow's rule id
/// (services below [`crate::lb::snat::RULE_BASE`], SNAT members above)
/// always has one.
pub const TRAFFIC_SLOTS: usize = 1 << 16;

/// One slot's traffic in one worker, by direction (0: as the flow's first
/// packet went, client to member or member to internet; 1: the replies).
#[repr(C, align(64))]
#[derive(Debug, Default)]
struct TrafficSlot {
    /// packets, bytes, SYNs (SYN or SYN-ACK) per direction.
    v: [[AtomicU64; 3]; 2],
    /// Flows started.
    flows: AtomicU64,
}

/// What one slot's flows carried in one worker, or summed over workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCount {
    /// Packets per direction.
    pub packets: [u64; 2],
    /// IP bytes (header included) per direction.
    pub bytes: [u64; 2],
    /// SYN and SYN-ACK segments per direction.
    pub syns: [u64; 2],
    /// Flows started (connections; UDP: new 5-tuples).
    pub flows: u64,
}

impl TrafficCount {
    /// Adds another count (for totals over workers).
    pub fn merge(&mut self, o: &TrafficCount) {
        for d in 0..2 {
            self.packets[d] += o.packets[d];
            self.bytes[d] += o.bytes[d];
            self.syns[d] += o.syns[d];
        }
        self.flows += o.flows;
    }
}

/// A worker's traffic counters, written by that worker only (plain load and
/// store, no locked instruction) and read by control. One 64-byte slot per
/// traffic slot id (`Services::traffic_slot`: a load-balancing rule's
/// member, a NAT rule, an SNAT member): 4 MiB per worker, of which a packet
/// touches the one line of its flow's slot.
#[derive(Debug)]
pub struct Traffic {
    slots: Box<[TrafficSlot]>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            slots: (0..TRAFFIC_SLOTS).map(|_| TrafficSlot::default()).collect(),
        }
    }
}

impl Traffic {
    /// Counts one forwarded packet of `ip_bytes` in slot `slot`, direction
    /// `dir`. Single writer: the owning worker.
    #[inline]
    pub fn count(&self, slot: u16, dir: crate::family::Dir, ip_bytes: usize, syn: bool) {
        let Some(s) = self.slots.get(usize::from(slot)) else {
            return;
        };
        let v = &s.v[dir.index()];
        let add = |a: &AtomicU64, n: u64| a.store(a.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        add(&v[0], 1);
        add(&v[1], ip_bytes as u64);
        if syn {
            add(&v[2], 1);
        }
    }

    /// Counts one flow started in slot `slot`. Single writer.
    #[inline]
    pub fn flow(&self, slot: u16) {
        if let Some(s) = self.slots.get(usize::from(slot)) {
            s.flows
                .store(s.flows.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Slot `slot`'s counts so far.
    pub fn read(&self, slot: u16) -> TrafficCount {
        let mut c = TrafficCount::default();
        if let Some(s) = self.slots.get(usize::from(slot)) {
            for d in 0..2 {
                c.packets[d] = s.v[d][0].load(Ordering::Relaxed);
                c.bytes[d] = s.v[d][1].load(Ordering::Relaxed);
                c.syns[d] = s.v[d][2].load(Ordering::Relaxed);
            }
            c.flows = s.flows.load(Ordering::Relaxed);
        }
        c
    }
}
