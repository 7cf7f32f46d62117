//! Fragments, for both families: a fragment after the first carries no L4
//! header, so it follows the flow its first fragment went with (recorded
//! in the family's fragment table), or waits for it on control.

use super::fast::{ip_len, rewrite_headers, send, split, too_big_flow, NeighMemo, Oversize};
use super::l3::{Header, Ip, ETH};
use super::{Context, Counters, Fate, Stat};
use crate::family::{V4, V6};

/// A fragment after the first: it follows the flow its first fragment went
/// with (addresses only: it carries no L4 header), or waits for it.
pub(super) fn later_fragment<A: Ip>(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    h: &Header<A>,
    c: &mut Counters,
) -> Fate {
    let id = h.frag.map_or(0, |f| f.id);
    let Some((idx, dir)) = A::frags(&cx).lookup(h.src, h.dst, h.proto, id, cx.now) else {
        return Fate::Defer;
    };
    let ip = &mut room[ETH..];
    let e = A::flows(&cx).entry(idx);
    e.touch(dir, cx.now);
    let rw = e.raw_rewrite(dir);
    let (rule, member) = e.ids();
    cx.traffic.count(
        cx.services.traffic_slot(rule, member),
        dir,
        ip_len::<A>(ip),
        false,
    );
    let mut mtu = 0;
    if len > ETH + usize::from(cx.dataplane.min_mtu) {
        match too_big_flow::<A>(cx, (idx, dir), room, h.l4, h.proto, true, c) {
            Oversize::Fits => {}
            Oversize::Refused(f) => return f,
            Oversize::Split(m) => mtu = m,
        }
    }
    rewrite_headers::<A>(&mut room[ETH..], h.l4, 0, &rw);
    c.add(Stat::FragmentsForwarded, 1);
    let f = send(cx, room, len, &rw, &mut NeighMemo::default());
    if mtu == 0 {
        f
    } else {
        split(f, mtu)
    }
}

/// See [`super::retry_fragment`].
pub(super) fn retry_fragment(cx: Context<'_>, room: &mut [u8], len: usize) -> Option<Fate> {
    let b = room.get(..len)?;
    if b.len() > ETH && b[12..14] == [0x86, 0xdd] {
        retry::<V6>(cx, room, len)
    } else {
        retry::<V4>(cx, room, len)
    }
}

fn retry<A: Ip>(cx: Context<'_>, room: &mut [u8], len: usize) -> Option<Fate> {
    let h = A::parse(room.get(ETH..len)?).ok()?;
    let f = h.frag.filter(|f| !f.first)?;
    A::frags(&cx).lookup(h.src, h.dst, h.proto, f.id, cx.now)?;
    let mut c = Counters::default();
    Some(later_fragment(cx, room, len, &h, &mut c))
}
