//! Runs the pipeline over 32-frame bursts in a loop, for instruction-level
//! profiles that do not depend on machine noise:
//!
//!     cargo build --release -p sluice-core --example profile_burst --no-default-features
//!     valgrind --tool=callgrind target/release/examples/profile_burst 20000
//!     callgrind_annotate callgrind.out.*
//!
//! It prints nothing; callgrind does the counting.

use sluice_core::craft;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Counters, Fate};
use sluice_core::wire::{tcp, MacAddr};
use std::net::Ipv4Addr;

fn main() {
    let bursts: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let ext = craft::EXAMPLE_EXT_MAC;
    let ex = craft::Example::host();
    let neigh = NeighView::default();
    let cx = ex.cx(&neigh, 0);
    let mut frames: Vec<(Vec<u8>, usize)> = (0..32u16)
        .map(|i| {
            let src = Ipv4Addr::new(198, 18, 0, i as u8);
            let dst = Ipv4Addr::new(203, 0, 113, 200);
            let mut f = if i % 2 == 0 {
                craft::udp_v4(
                    MacAddr([2, 0, 0, 0, 0, 9]),
                    ext,
                    (src, 1024 + i),
                    (dst, 4789),
                    &[0u8; 18],
                )
            } else {
                craft::tcp_v4(
                    MacAddr([2, 0, 0, 0, 0, 9]),
                    ext,
                    (src, 1024 + i),
                    (dst, 443),
                    tcp::Flags::ACK,
                    7,
                    9,
                )
            };
            let len = f.len();
            f.resize(2048, 0);
            (f, len)
        })
        .collect();
    let mut fates = [Fate::Consumed; 32];
    let mut c = Counters::default();
    for _ in 0..bursts {
        process_burst(
            cx,
            PortIndex::new(0),
            std::hint::black_box(&mut frames),
            &mut fates,
            &mut craft::NoLearn,
            &mut c,
        );
    }
    std::hint::black_box(&c);
}
