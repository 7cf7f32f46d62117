//! Sync datagrams: the UDP payload that carries flow records between
//! instances, its MAC, and the Ethernet/IP/UDP frame around it.
//!
//! The MAC is AES-256-GMAC (AES-GCM over no plaintext, the payload as
//! associated data), with AES-NI and carry-less multiply where the CPU
//! has them (chosen at run time): half the cost of a BLAKE3 keyed hash
//! over a datagram of this size, which matters on the new-flow path. Its
//! key is one sender epoch's ([`Mac::of`]: derived from the shared key,
//! the sender's instance and its epoch), and its nonce the stream and
//! sequence number, so no nonce repeats under one key.
//!
//! Payload (little-endian), at most [`MAX_PAYLOAD`] bytes so the frame
//! fits a 1280-byte MTU:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `SLSY` |
//! | 4 | version (1) |
//! | 5 | kind ([`Kind`]) |
//! | 6 | sender's instance index |
//! | 7 | sender's stream (a worker, or control) |
//! | 8..16 | fingerprint of the sender's rule and member ids |
//! | 16..24 | epoch: the sender process's start (ns since 1970) |
//! | 24..32 | sequence number, per stream and epoch, from 1 |
//! | 32..34 | records |
//! | 34..36 | reserved (0) |
//! | .. | records, 64 bytes (IPv4) or 128 (IPv6) each |
//! | last 16 | AES-256-GMAC of everything before it ([`Mac`]) |
//!
//! A record: op (1 upsert, 2 remove), family (4 or 6), 2 reserved bytes,
//! state, rule | member << 16, age (ms), next-hop codes (8), the two
//! sequence numbers, both keys' words (8 each), and for IPv6 the far next
//! hop (16).

use crate::config::SyncKey;
use crate::family::{Family, V4, V6};
use crate::flow::FlowRecord;
use crate::wire::{checksum, ethernet, ipv4, ipv6, udp, EtherType, IpProtocol, MacAddr};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use std::net::IpAddr;

const MAGIC: [u8; 4] = *b"SLSY";
const VERSION: u8 = 1;
/// Payload header bytes.
pub const HEADER: usize = 36;
/// MAC bytes at the end.
pub const TAG: usize = 16;
/// Largest payload: an IPv6 frame of it fits a 1280-byte MTU.
pub const MAX_PAYLOAD: usize = 1200;
/// Record bytes per family.
pub const RECORD_V4: usize = 64;
/// IPv6 record bytes.
pub const RECORD_V6: usize = 128;

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Flow records.
    Records = 1,
    /// A starting instance asks for every flow its peer holds.
    BulkRequest = 2,
    /// The last datagram of a bulk copy.
    BulkDone = 3,
}

/// What a record asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create the flow, or bring it up to date.
    Upsert = 1,
    /// The flow ended.
    Remove = 2,
}

/// A datagram's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What it is.
    pub kind: Kind,
    /// Sender's instance index.
    pub instance: u8,
    /// Sender's stream.
    pub stream: u8,
    /// Sender's rule-id fingerprint.
    pub fingerprint: u64,
    /// Sender's epoch.
    pub epoch: u64,
    /// Sequence number.
    pub seq: u64,
}

/// Why a payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too short, wrong magic or version, records that do not fit.
    Malformed,
    /// The MAC does not match: not from a holder of the key, or altered.
    BadMac,
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// An IPv4 flow.
    V4(Op, FlowRecord<V4>),
    /// An IPv6 flow.
    V6(Op, FlowRecord<V6>),
}

/// Fills a payload buffer with records.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
}

impl<'a> Writer<'a> {
    /// A payload of `h` in `buf` (at least [`MAX_PAYLOAD`] bytes).
    pub fn new(buf: &'a mut [u8], h: &Header) -> Writer<'a> {
        let buf = &mut buf[..MAX_PAYLOAD];
        buf[..4].copy_from_slice(&MAGIC);
        buf[4] = VERSION;
        buf[5] = h.kind as u8;
        buf[6] = h.instance;
        buf[7] = h.stream;
        buf[8..16].copy_from_slice(&h.fingerprint.to_le_bytes());
        buf[16..24].copy_from_slice(&h.epoch.to_le_bytes());
        buf[24..32].copy_from_slice(&h.seq.to_le_bytes());
        buf[32..36].fill(0);
        Writer {
            buf,
            len: HEADER,
            count: 0,
        }
    }

    /// Records so far.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// True when a record of `A` still fits.
    pub fn has_room<A: Family>(&self) -> bool {
        self.len + record_len::<A>() + TAG <= MAX_PAYLOAD
    }

    /// Appends a record; false (nothing written) when it does not fit.
    pub fn push<A: Family>(&mut self, op: Op, r: &FlowRecord<A>) -> bool {
        if !self.has_room::<A>() {
            return false;
        }
        let b = &mut self.buf[self.len..self.len + record_len::<A>()];
        b[0] = op as u8;
        b[1] = if A::V6 { 6 } else { 4 };
        b[2..4].fill(0);
        b[4..8].copy_from_slice(&r.state.to_le_bytes());
        b[8..12].copy_from_slice(&r.meta.to_le_bytes());
        b[12..16].copy_from_slice(&r.age.to_le_bytes());
        b[16..24].copy_from_slice(&r.next_hop.to_le_bytes());
        b[24..28].copy_from_slice(&r.next_seq[0].to_le_bytes());
        b[28..32].copy_from_slice(&r.next_seq[1].to_le_bytes());
        let mut o = 32;
        for w in r.words.iter().flat_map(|w| w.as_ref().iter()) {
            b[o..o + 8].copy_from_slice(&w.to_le_bytes());
            o += 8;
        }
        if A::V6 {
            b[o..o + 16].copy_from_slice(&r.far.to_le_bytes());
        }
        self.len += record_len::<A>();
        self.count += 1;
        true
    }

    /// Seals the payload with the sender's `mac`; returns its length.
    pub fn finish(self, mac: &Mac) -> usize {
        self.buf[32..34].copy_from_slice(&self.count.to_le_bytes());
        let tag = mac.tag(&self.buf[..self.len]);
        self.buf[self.len..self.len + TAG].copy_from_slice(&tag);
        self.len + TAG
    }
}

/// Writes entry `idx` of `t` as a record; false when it does not fit (a
/// dead entry writes nothing and fits).
pub fn put<A: Family>(
    w: &mut Writer<'_>,
    t: &crate::flow::FlowTable<A>,
    idx: u32,
    now: u32,
    op: Op,
) -> bool {
    if !w.has_room::<A>() {
        return false;
    }
    if let Some(r) = t.export(idx, now) {
        w.push(op, &r);
    }
    true
}

/// Upsert records of `t`'s entries from `pos` into `w` until it is full
/// or the table ends (a bulk copy); returns where to go on.
pub fn fill<A: Family>(
    w: &mut Writer<'_>,
    t: &crate::flow::FlowTable<A>,
    mut pos: u32,
    now: u32,
) -> u32 {
    while pos < t.high_water() && put(w, t, pos, now, Op::Upsert) {
        pos += 1;
    }
    pos
}

fn record_len<A: Family>() -> usize {
    if A::V6 {
        RECORD_V6
    } else {
        RECORD_V4
    }
}

/// The MAC key of one sender epoch: AES-256-GCM keyed with a BLAKE3
/// derivation of the shared key, the sender's instance and its epoch.
#[derive(Clone)]
pub struct Mac(Aes256Gcm);

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mac(..)")
    }
}

impl Mac {
    /// The key of `instance`'s epoch `epoch` under the shared `key`.
    pub fn of(key: &SyncKey, instance: u8, epoch: u64) -> Mac {
        let mut h = blake3::Hasher::new_derive_key("sluice cluster sync epoch key 2026-12 v1");
        h.update(&key.0);
        h.update(&[instance]);
        h.update(&epoch.to_le_bytes());
        Mac(Aes256Gcm::new(h.finalize().as_bytes().into()))
    }

    /// The nonce of a payload: its stream and sequence number, unique
    /// within its epoch.
    fn nonce(body: &[u8]) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
        let mut n = [0u8; 12];
        n[0] = body[7];
        n[4..12].copy_from_slice(&body[24..32]);
        n.into()
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        self.0
            .encrypt_in_place_detached(&Self::nonce(body), body, &mut [])
            .map(|t| t.into())
            .unwrap_or([0; TAG])
    }

    /// Checks a payload's MAC (constant-time).
    pub fn verify(&self, p: &[u8]) -> Result<(), Refusal> {
        let (body, tag) = p.split_at(p.len() - TAG);
        let tag = aes_gcm::Tag::from_slice(tag);
        self.0
            .decrypt_in_place_detached(&Self::nonce(body), body, &mut [], tag)
            .map_err(|_| Refusal::BadMac)
    }
}

/// Reads a payload's header, before its MAC is checked (nothing in it may
/// be trusted until [`Mac::verify`] passes with its sender's key).
pub fn header(p: &[u8]) -> Result<Header, Refusal> {
    if p.len() < HEADER + TAG || p.len() > MAX_PAYLOAD || p[..4] != MAGIC || p[4] != VERSION {
        return Err(Refusal::Malformed);
    }
    let kind = match p[5] {
        1 => Kind::Records,
        2 => Kind::BulkRequest,
        3 => Kind::BulkDone,
        _ => return Err(Refusal::Malformed),
    };
    let u64_at = |o: usize| u64::from_le_bytes(p[o..o + 8].try_into().unwrap_or_default());
    Ok(Header {
        kind,
        instance: p[6],
        stream: p[7],
        fingerprint: u64_at(8),
        epoch: u64_at(16),
        seq: u64_at(24),
    })
}

/// [`header`], then the MAC under the key of the epoch it names.
pub fn open(p: &[u8], key: &SyncKey) -> Result<Header, Refusal> {
    let h = header(p)?;
    Mac::of(key, h.instance, h.epoch).verify(p)?;
    Ok(h)
}

/// The records of a payload [`open`] accepted; stops at the first that
/// does not decode (and reports it with `Err`).
pub fn records(p: &[u8]) -> impl Iterator<Item = Result<Record, Refusal>> + '_ {
    let count = u16::from_le_bytes([p[32], p[33]]);
    let body = &p[HEADER..p.len() - TAG];
    let mut o = 0usize;
    let mut left = count;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        left -= 1;
        let r = decode(body.get(o..)?);
        match r {
            Some((rec, n)) => {
                o += n;
                Some(Ok(rec))
            }
            None => {
                left = 0;
                Some(Err(Refusal::Malformed))
            }
        }
    })
}

fn decode(b: &[u8]) -> Option<(Record, usize)> {
    let op = match *b.first()? {
        1 => Op::Upsert,
        2 => Op::Remove,
        _ => return None,
    };
    match *b.get(1)? {
        4 => Some((Record::V4(op, read::<V4>(b.get(..RECORD_V4)?)), RECORD_V4)),
        6 => Some((Record::V6(op, read::<V6>(b.get(..RECORD_V6)?)), RECORD_V6)),
        _ => None,
    }
}

fn read<A: Family>(b: &[u8]) -> FlowRecord<A> {
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let n = A::ADDR_WORDS + 1;
    let mut words = [A::Words::default(); 2];
    for (i, w) in words
        .iter_mut()
        .flat_map(|w| w.as_mut().iter_mut())
        .enumerate()
    {
        *w = u64_at(32 + 8 * i);
    }
    let far = if A::V6 {
        u128::from_le_bytes(b[32 + 16 * n..48 + 16 * n].try_into().unwrap_or_default())
    } else {
        0
    };
    FlowRecord {
        words,
        next_hop: u64_at(16),
        far,
        state: u32_at(4),
        meta: u32_at(8),
        next_seq: [u32_at(24), u32_at(28)],
        age: u32_at(12),
    }
}

/// Where a sync frame goes: Ethernet and IP ends, UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    /// This port's MAC.
    pub src_mac: MacAddr,
    /// The peer's (or its next hop's) MAC.
    pub dst_mac: MacAddr,
    /// This instance's internal address.
    pub src: IpAddr,
    /// The peer's.
    pub dst: IpAddr,
    /// Source port (the stream's).
    pub sport: u16,
    /// The sync port.
    pub dport: u16,
}

/// Bytes before the payload in a frame to `dst`.
pub fn frame_header_len(dst: IpAddr) -> usize {
    ethernet::HEADER_LEN
        + udp::HEADER_LEN
        + if dst.is_ipv4() {
            ipv4::HEADER_LEN
        } else {
            ipv6::HEADER_LEN
        }
}

/// Writes the Ethernet, IP and UDP headers in front of the `len`-byte
/// payload that sits at [`frame_header_len`] in `frame`; returns the
/// frame's length. `None` when the two addresses are of two families.
pub fn wrap(frame: &mut [u8], e: &Ends, len: usize) -> Option<usize> {
    let at = frame_header_len(e.dst);
    let ulen = udp::HEADER_LEN + len;
    let eth = ethernet::HEADER_LEN;
    let (ethertype, pseudo) = match (e.src, e.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ipv4::Repr {
                src: s,
                dst: d,
                protocol: IpProtocol::Udp,
                payload_len: ulen,
                ttl: 64,
            }
            .emit(&mut ipv4::Packet::new_unchecked(&mut frame[eth..at - 8]));
            (
                EtherType::Ipv4,
                checksum::pseudo_header_v4(s, d, 17, ulen as u32),
            )
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ipv6::Repr {
                src: s,
                dst: d,
                next_header: IpProtocol::Udp,
                payload_len: ulen,
                hop_limit: 64,
            }
            .emit(&mut ipv6::Packet::new_unchecked(&mut frame[eth..at - 8]));
            (
                EtherType::Ipv6,
                checksum::pseudo_header_v6(s, d, 17, ulen as u32),
            )
        }
        _ => return None,
    };
    let mut f = ethernet::Frame::new_unchecked(&mut frame[..eth]);
    f.set_dst_addr(e.dst_mac);
    f.set_src_addr(e.src_mac);
    f.set_ethertype(ethertype);
    let mut u = udp::Packet::new_unchecked(&mut frame[at - 8..at + len]);
    u.set_src_port(e.sport);
    u.set_dst_port(e.dport);
    u.set_len(ulen as u16);
    // The MAC covers the payload; IPv4 lets UDP go without a checksum
    // (RFC 768), which saves a pass over the datagram; IPv6 does not
    // (RFC 8200, 8.1).
    if ethertype == EtherType::Ipv6 {
        u.fill_checksum(pseudo);
    } else {
        u.set_checksum(0);
    }
    Some(at + len)
}
