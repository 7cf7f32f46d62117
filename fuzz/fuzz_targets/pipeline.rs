//! The whole pipeline (inbound rules of both families and outbound SNAT) on one arbitrary
//! frame received on either port: no panic, and exactly one fate counted
//! for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::craft;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Counters, Fate, Slowpath, Stat};
use sluice_core::wire::MacAddr;
use std::net::IpAddr;
use std::sync::OnceLock;

struct Sink;
impl Slowpath for Sink {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

fn example() -> &'static craft::Example {
    static EX: OnceLock<craft::Example> = OnceLock::new();
    EX.get_or_init(|| craft::Example::lb6_snat(1 << 16, 1))
}

fuzz_target!(|data: &[u8]| {
    let Some((&port, frame)) = data.split_first() else { return };
    let mut room = frame.to_vec();
    let len = room.len();
    if port & 0x80 == 0 {
        room.resize(2048, 0); // usually an mbuf's room; sometimes exactly the frame
    }
    let neigh = NeighView::default();
    let cx = example().cx(&neigh, 0);
    let mut frames = [(room, len)];
    let mut fates = [Fate::Consumed];
    let mut c = Counters::default();
    process_burst(cx, PortIndex::from(port & 1), &mut frames, &mut fates, &mut Sink, &mut c);
    assert_eq!(c.stat(Stat::ToTx) + c.stat(Stat::Held) + c.stat(Stat::Consumed) + c.stat(Stat::Deferred) + c.total_drops(), 1);
});
