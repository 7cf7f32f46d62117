//! The whole pipeline on one arbitrary frame received on either port: no
//! panic, and exactly one fate counted for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::config::Config;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Context, Counters, Dataplane, Fate, Slowpath, Stat};
use sluice_core::wire::MacAddr;
use std::net::IpAddr;
use std::sync::OnceLock;

struct Sink;
impl Slowpath for Sink {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

fn dataplane() -> &'static Dataplane {
    static DP: OnceLock<Dataplane> = OnceLock::new();
    DP.get_or_init(|| {
        let cfg = Config::from_toml_str(
            r#"
[dpdk]
eal_args = ["-l", "0-1"]
[[port]]
name = "ext"
device = 0
role = "external"
addresses = ["203.0.113.1/24", "2001:db8:1::1/64"]
gateway = "203.0.113.254"
[[port]]
name = "int"
device = 1
role = "internal"
addresses = ["10.0.0.1/24"]
[[frontend]]
name = "web"
address = "203.0.113.10"
kind = "public"
"#,
        )
        .expect("fuzz config");
        Dataplane::new(&cfg, &[MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])])
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&port, frame)) = data.split_first() else { return };
    let mut room = frame.to_vec();
    let len = room.len();
    if port & 0x80 == 0 {
        room.resize(2048, 0); // usually an mbuf's room; sometimes exactly the frame
    }
    let neigh = NeighView::default();
    let cx = Context { dataplane: dataplane(), neigh: &neigh };
    let mut frames = [(room, len)];
    let mut fates = [Fate::Consumed];
    let mut c = Counters::default();
    process_burst(cx, PortIndex::from(port & 1), &mut frames, &mut fates, &mut Sink, &mut c);
    assert_eq!(c.stat(Stat::ToTx) + c.stat(Stat::Held) + c.stat(Stat::Consumed) + c.total_drops(), 1);
});
