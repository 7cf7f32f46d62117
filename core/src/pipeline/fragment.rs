//! Fragments (IPv4): a fragment after the first carries no L4 header, so
//! it follows the flow its first fragment went with (recorded in the
//! fragment table), or waits for it on control.

use super::fast::{rewrite_headers, send, NeighMemo};
use super::l3::ETH;
use super::l4::rd16;
use super::{Context, Counters, Fate, Stat};
use crate::family::V4;
use crate::wire::ipv4;
use std::net::Ipv4Addr;

/// A fragment after the first: it follows the flow its first fragment went
/// with (addresses only: it carries no L4 header), or waits for it.
pub(super) fn later_fragment(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    hl: usize,
    (src, dst, proto, id): (Ipv4Addr, Ipv4Addr, u8, u16),
    c: &mut Counters,
) -> Fate {
    let Some((idx, dir)) = cx.frags.lookup(src, dst, proto, id, cx.now) else {
        return Fate::Defer;
    };
    let ip = &mut room[ETH..];
    let e = cx.flows.entry(idx);
    e.touch(dir, cx.now);
    let rw = e.raw_rewrite(dir);
    cx.traffic
        .count(e.rule(), dir, usize::from(rd16(ip, 2)), false);
    rewrite_headers::<V4>(ip, hl, 0, &rw);
    c.add(Stat::FragmentsForwarded, 1);
    send(cx, room, len, &rw, &mut NeighMemo::default())
}

/// See [`super::retry_fragment`].
pub(super) fn retry_fragment(cx: Context<'_>, room: &mut [u8], len: usize) -> Option<Fate> {
    let ip = ipv4::Packet::new_checked(&room[ETH..len]).ok()?;
    let key = (
        ip.src_addr(),
        ip.dst_addr(),
        u8::from(ip.protocol()),
        ip.ident(),
    );
    let hl = ip.header_len();
    cx.frags.lookup(key.0, key.1, key.2, key.3, cx.now)?;
    let mut c = Counters::default();
    Some(later_fragment(cx, room, len, hl, key, &mut c))
}
