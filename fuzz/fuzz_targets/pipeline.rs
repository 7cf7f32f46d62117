//! The whole pipeline (inbound rules of both families and outbound SNAT) on one arbitrary
//! frame received on either port: no panic, exactly one fate counted for
//! it, and a datagram to be fragmented cut into fragments that fit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::craft;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Counters, Fate, Slowpath, Split, Stat};
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
    let counted = c.stat(Stat::ToTx)
        + c.stat(Stat::Held)
        + c.stat(Stat::Consumed)
        + c.stat(Stat::Deferred)
        + c.stat(Stat::ToProber)
        + c.total_drops();
    assert_eq!(counted, 1);
    // A datagram to be sent in fragments: every fragment fits the MTU and
    // their payloads add up to the datagram's.
    if let Fate::Split { len, mtu, .. } = fates[0] {
        let (room, _) = &mut frames[0];
        let whole = room[..usize::from(len)].to_vec();
        let plan = Split::plan(&whole, mtu).expect("the pipeline split a splittable datagram");
        let mut sizes = 0;
        for k in 1..plan.count() {
            let mut out = vec![0u8; 2048];
            let n = plan.write_later(&whole, k, &mut out).expect("a later fragment");
            assert!(n - 14 <= usize::from(mtu));
            sizes += n - 14 - usize::from(whole[14] & 15) * 4;
        }
        let n = plan.cut_first(room);
        assert!(n - 14 <= usize::from(mtu));
        sizes += n - 14 - usize::from(whole[14] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([whole[16], whole[17]]));
        assert_eq!(sizes, total - usize::from(whole[14] & 15) * 4);
    }
});
